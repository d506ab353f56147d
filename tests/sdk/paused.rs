//! The login limit on paused tokio time. The emulator runs on its own
//! real-time runtime in another thread; the SDK runs on the test's paused
//! runtime without timers ([`without_timers`]), so the paused clock moves
//! only when the test advances it.
//!
//! Also backends that never answer: there the SDK's own bounds are the only
//! timers, and the paused clock jumps straight to them.

use std::time::Duration;

use coderunner::emulator::{Emulator, EmulatorConfig, Inspector};
use coderunner::sdk::{
    Backendless, LoginError, LoginErrorKind, SdkConfig, SdkError, SuperuserCredentials,
};
use tokio::time::Instant;

use crate::helpers::{ADMIN, ADMIN_PASS, APP, CLOUD, REST, api_path};

/// No cap and no bound: the SDK starts no timer, so the paused clock does
/// not jump while a real socket is being read.
fn without_timers(sdk: &mut SdkConfig) {
    sdk.request_timeout = Duration::ZERO;
    sdk.login_timeout = Duration::ZERO;
    sdk.logout_timeout = Duration::ZERO;
    sdk.shutdown_timeout = Duration::ZERO;
}

/// A backend that accepts connections and never answers; how many it accepted.
async fn silent_backend() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}

pub(crate) fn superuser_config(url: String) -> SdkConfig {
    let mut sdk = SdkConfig::new(url, APP, CLOUD.into());
    sdk.superuser = Some(SuperuserCredentials {
        login: ADMIN.into(),
        password: ADMIN_PASS.into(),
    });
    sdk
}

/// Starts the emulator on a thread of its own, logs the admin in there (the
/// session "elsewhere") and returns its URL and inspector.
pub(crate) fn emulator_elsewhere(config: EmulatorConfig) -> (String, Inspector) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let emulator = Emulator::new(config).unwrap();
            let inspect = emulator.inspect();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let served = tokio::spawn(emulator.serve(listener, std::future::pending()));
            let reply = reqwest::Client::new()
                .post(format!("{url}/{APP}/{REST}/users/login"))
                .json(&serde_json::json!({"login": ADMIN, "password": ADMIN_PASS}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 200);
            tx.send((url, inspect)).unwrap();
            let _ = served.await;
        });
    });
    rx.recv().unwrap()
}

#[tokio::test(start_paused = true)]
async fn login_limit_is_typed_and_attempts_stay_bounded_over_a_minute() {
    let _lock = crate::helpers::login_metric_lock().await;
    let mut config = EmulatorConfig::dev();
    config.max_sessions_per_user = 1;
    let (url, inspect) = emulator_elsewhere(config);
    assert_eq!(inspect.login_count(ADMIN), 1);

    let mut sdk = superuser_config(url);
    without_timers(&mut sdk);
    let backendless = Backendless::new(sdk).unwrap();

    let started = Instant::now();
    let (mut calls, mut fast) = (0, 0);
    while started.elapsed() < Duration::from_secs(60) {
        let err = backendless
            .superuser()
            .counters()
            .get("c")
            .await
            .unwrap_err();
        match &err {
            SdkError::Login(LoginError {
                kind: LoginErrorKind::LoginLimit,
                code: Some(3044),
                retry_in,
                ..
            }) => fast += usize::from(retry_in.is_some()),
            other => panic!("expected a login-limit error, got {other:?}"),
        }
        assert!(!format!("{err} {err:?}").contains(ADMIN_PASS));
        calls += 1;
        tokio::time::advance(Duration::from_millis(250)).await;
    }
    assert_eq!(calls, 240);

    let requests = inspect.requests();
    let attempts = requests
        .iter()
        .filter(|r| api_path(&r.path) == "users/login" && r.status != 200)
        .count();
    // 1 s doubling: attempts at 0, 1, 3, 7, 15 and 31 s.
    assert!(
        (3..=8).contains(&attempts),
        "{attempts} login attempts in a minute"
    );
    assert_eq!(
        fast,
        calls - attempts,
        "calls while backing off fail at once"
    );
    assert_eq!(inspect.login_count(ADMIN), 1, "no login succeeded");
    assert!(
        !requests
            .iter()
            .any(|r| api_path(&r.path).starts_with("counters/")),
        "no superuser call went out without a token"
    );
    let status = backendless.session_status();
    assert_eq!(status.failed_logins as usize, attempts, "{status:?}");
    assert_eq!(
        (status.logins, status.last_error, status.last_error_code),
        (0, Some("login_limit"), Some(3044))
    );
    assert!(status.backoff_ms.is_some_and(|ms| ms > 0), "{status:?}");
    assert!(status.logged_in_since_ms.is_none(), "{status:?}");
}

/// The SDK and the emulator on the same paused clock: the emulator's
/// sessions lapse when the test advances time.
#[tokio::test(start_paused = true)]
async fn the_superuser_session_is_renewed_before_it_lapses_under_a_one_session_limit() {
    let _lock = crate::helpers::login_metric_lock().await;
    let mut config = EmulatorConfig::dev();
    config.max_sessions_per_user = 1;
    config.session_timeout_secs = 100;
    let emulator = Emulator::new(config).unwrap();
    let inspect = emulator.inspect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.serve(listener, std::future::pending()));

    let mut sdk = superuser_config(url);
    without_timers(&mut sdk);
    sdk.session_timeout = Some(Duration::from_secs(100));
    let backendless = Backendless::new(sdk).unwrap();
    let su = backendless.superuser();
    let logouts = || {
        inspect
            .requests()
            .iter()
            .filter(|r| api_path(&r.path) == "users/logout")
            .count()
    };

    su.counters().get("c").await.unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    su.counters().get("c").await.unwrap();
    assert_eq!((inspect.login_count(ADMIN), logouts()), (1, 0));

    // 95 s idle: past 90 % of the timeout, the session is still alive. The
    // renewal logs it out first, so the one-session limit lets it log in.
    tokio::time::advance(Duration::from_secs(95)).await;
    su.counters().get("c").await.unwrap();
    assert_eq!((inspect.login_count(ADMIN), logouts()), (2, 1));

    // Long idle: the backend ended the session; a new login, no logout.
    tokio::time::advance(Duration::from_secs(500)).await;
    su.counters().get("c").await.unwrap();
    assert_eq!((inspect.login_count(ADMIN), logouts()), (3, 1));

    let refused = inspect
        .requests()
        .iter()
        .filter(|r| api_path(&r.path).starts_with("counters/") && r.status != 200)
        .count();
    assert_eq!(refused, 0, "no call was sent with a lapsed token");
    // Both later logins replaced a token the backend had not rejected.
    let status = backendless.session_status();
    assert_eq!(
        (status.logins, status.renewals, status.relogins),
        (3, 2, 0),
        "{status:?}"
    );
}

/// `request_timeout: Duration::ZERO` removes the cap, not a client's
/// deadline: a backend that never answers still ends in a deadline timeout.
#[tokio::test(start_paused = true)]
async fn without_a_request_cap_a_deadline_still_ends_a_silent_call() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // never answers
        }
    });
    let mut sdk = SdkConfig::new(url, APP, CLOUD.into());
    sdk.request_timeout = Duration::ZERO;
    let backendless = Backendless::new(sdk).unwrap();

    let started = Instant::now();
    let err = backendless
        .server_key()
        .with_deadline(started + Duration::from_secs(3))
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::Timeout {
                limit: coderunner::sdk::TimeoutLimit::Deadline,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

/// Waiting for the superuser login counts against each caller's deadline,
/// while the one login goes on for the others.
#[tokio::test(start_paused = true)]
async fn waiting_for_the_login_counts_against_the_deadline_and_the_login_goes_on() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket); // the login never gets an answer
        }
    });
    let mut sdk = SdkConfig::new(url, APP, CLOUD.into());
    sdk.superuser = Some(SuperuserCredentials {
        login: ADMIN.into(),
        password: ADMIN_PASS.into(),
    });
    sdk.request_timeout = Duration::ZERO;
    let backendless = Backendless::new(sdk).unwrap();

    let started = Instant::now();
    let call = |secs: u64| {
        let client = backendless
            .superuser()
            .with_deadline(started + Duration::from_secs(secs));
        async move {
            let err = client.counters().get("c").await.unwrap_err();
            (err, started.elapsed())
        }
    };
    let ((short, at_short), (long, at_long)) = tokio::join!(call(1), call(5));
    for (err, at, secs) in [(short, at_short, 1), (long, at_long, 5)] {
        assert!(
            matches!(
                err,
                SdkError::Timeout {
                    limit: coderunner::sdk::TimeoutLimit::Deadline,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(at, Duration::from_secs(secs));
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one login for both callers, not restarted when the first gave up"
    );
}

/// With no request cap, a login to a backend that never answers still ends
/// at `login_timeout`, and frees the login lock for the next caller.
#[tokio::test(start_paused = true)]
async fn a_login_to_a_silent_backend_ends_at_the_login_timeout() {
    let (url, accepted) = silent_backend().await;
    let mut sdk = superuser_config(url);
    sdk.request_timeout = Duration::ZERO;
    let backendless = Backendless::new(sdk).unwrap();

    let started = Instant::now();
    let err = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    match &err {
        SdkError::Login(LoginError {
            kind: LoginErrorKind::Unreachable,
            message,
            ..
        }) => assert!(message.contains("login_timeout"), "{message}"),
        other => panic!("expected an unreachable login, got {other:?}"),
    }
    assert_eq!(started.elapsed(), coderunner::sdk::LOGIN_TIMEOUT);
    // The lock is free: the next caller is told at once (backing off).
    let again = Instant::now();
    let err = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdkError::Login(e) if e.retry_in.is_some()),
        "{err:?}"
    );
    assert_eq!(again.elapsed(), Duration::ZERO);
    // One connection at most (the clock may jump before it is accepted):
    // the backed-off call sent nothing.
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) <= 1);
}

/// SIGTERM while a login hangs: `shutdown` waits for the login lock no
/// longer than `shutdown_timeout`.
#[tokio::test(start_paused = true)]
async fn shutdown_returns_in_time_while_a_login_hangs() {
    let (url, accepted) = silent_backend().await;
    let mut sdk = superuser_config(url);
    sdk.request_timeout = Duration::ZERO;
    let backendless = Backendless::new(sdk).unwrap();
    let su = backendless.superuser();
    let hung = tokio::spawn(async move { su.counters().get("c").await });
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    backendless.shutdown().await;
    assert_eq!(started.elapsed(), coderunner::sdk::SHUTDOWN_TIMEOUT);
    assert!(hung.await.unwrap().is_err());
}

/// A logout the backend never answers ends at `logout_timeout`, so
/// `shutdown` returns.
#[tokio::test(start_paused = true)]
async fn a_logout_the_backend_never_answers_ends_at_the_logout_timeout() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::builder().start().await;
    let root = format!("/{APP}/{CLOUD}");
    Mock::given(method("POST"))
        .and(path(format!("{root}/users/login")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"user-token": "su-1"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{root}/counters/c")))
        .respond_with(ResponseTemplate::new(200).set_body_json(7))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{root}/users/logout")))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)))
        .mount(&server)
        .await;
    let mut sdk = superuser_config(server.uri());
    // No timer while the login is answered (the paused clock stays put).
    sdk.request_timeout = Duration::ZERO;
    sdk.login_timeout = Duration::ZERO;
    let backendless = Backendless::new(sdk).unwrap();
    assert_eq!(
        backendless.superuser().counters().get("c").await.unwrap(),
        7
    );

    // (Whether the logout reaches the server before the paused clock jumps
    // is a race; either way it gets no answer.)
    let started = Instant::now();
    backendless.shutdown().await;
    assert_eq!(started.elapsed(), coderunner::sdk::LOGOUT_TIMEOUT);
}

/// Waits (in real time, at most `wait_ms`) until the emulator holds `n` log
/// messages, letting the paused runtime run the SDK's sends meanwhile.
async fn log_messages(
    inspect: &Inspector,
    n: usize,
    wait_ms: u64,
) -> Vec<coderunner::emulator::LogMessage> {
    let until = std::time::Instant::now() + Duration::from_millis(wait_ms);
    loop {
        let messages = inspect.log_messages();
        if messages.len() >= n || std::time::Instant::now() > until {
            return messages;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(start_paused = true)]
async fn app_log_batches_by_size_and_by_time_under_each_identity() {
    let (url, inspect) = emulator_elsewhere(EmulatorConfig::dev());
    let mut sdk = SdkConfig::new(url, APP, CLOUD.into());
    without_timers(&mut sdk);
    sdk.log_policy = coderunner::sdk::LogPolicy {
        batch_size: 3,
        interval: Duration::from_secs(1),
        capacity: 100,
    };
    let backendless = Backendless::new(sdk).unwrap();
    let alice = backendless
        .server_key()
        .users()
        .login("alice@example.com", &"alice-pass".into())
        .await
        .unwrap();
    let caller = backendless.caller(Some(alice.token)).logger("orders");
    let service = backendless.server_key().logger("billing");

    // Two messages: not a batch yet, and the interval has not passed.
    caller.info("accepted");
    service.warn("slow");
    assert_eq!(
        log_messages(&inspect, 1, 300).await.len(),
        0,
        "sent before a batch"
    );
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(
        log_messages(&inspect, 1, 300).await.len(),
        0,
        "sent before the interval"
    );
    // The interval passes: both go, each under its own identity.
    tokio::time::advance(Duration::from_millis(1)).await;
    let sent = log_messages(&inspect, 2, 5000).await;
    assert_eq!(sent.len(), 2);
    let by_logger = |name: &str| sent.iter().find(|m| m.logger == name).cloned().unwrap();
    assert_eq!(
        (
            by_logger("orders").level.as_str(),
            by_logger("orders").user_id.clone()
        ),
        ("INFO", Some(alice.user.object_id.clone()))
    );
    assert_eq!(
        (
            by_logger("billing").level.as_str(),
            by_logger("billing").user_id
        ),
        ("WARN", None)
    );

    // Three at once: a full batch goes without waiting for the interval.
    service.error_with("declined", "card expired");
    service.debug("retrying");
    service.fatal("gave up");
    let sent = log_messages(&inspect, 5, 5000).await;
    assert_eq!(sent.len(), 5, "a full batch left at once");
    assert_eq!(sent[2].exception.as_deref(), Some("card expired"));
    let levels: Vec<&str> = sent[2..].iter().map(|m| m.level.as_str()).collect();
    assert_eq!(levels, ["ERROR", "DEBUG", "FATAL"]);

    // flush() sends what waits now.
    caller.trace("one more");
    caller.flush().await.unwrap();
    assert_eq!(inspect.log_messages().len(), 6);

    // Shutdown sends what waits.
    service.info("last words");
    backendless.shutdown().await;
    let sent = inspect.log_messages();
    assert_eq!(sent.len(), 7);
    assert_eq!(sent[6].message, "last words");
}
