//! Tests of the SDK against wiremock servers on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::session::Backoff;
use super::transport::{Call, Service};
use super::*;
use crate::event::UserToken;

const APP: &str = "APP";
const KEY: &str = "SECRET-API-KEY";
const PASSWORD: &str = "hunter2-superuser-password";

fn config(server: &MockServer) -> SdkConfig {
    let mut config = SdkConfig::new(server.uri(), APP, KEY.into());
    config.superuser = Some(SuperuserCredentials {
        login: "admin@example.com".to_owned(),
        password: PASSWORD.into(),
    });
    config
}

/// The full path of `rest` under the root.
fn p(rest: &str) -> String {
    format!("/{APP}/{KEY}/{rest}")
}

fn user_token(request: &Request) -> Option<String> {
    request
        .headers
        .get("user-token")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn backend_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "code": code, "message": message }))
}

/// A login endpoint that issues `su-1`, `su-2`, … and records the valid one.
#[derive(Default)]
struct Sessions {
    logins: AtomicUsize,
    logouts: AtomicUsize,
    valid: parking_lot::Mutex<Option<String>>,
}

impl Sessions {
    async fn mount(self: &Arc<Self>, server: &MockServer, delay: Duration) {
        let this = Arc::clone(self);
        Mock::given(method("POST"))
            .and(path(p("users/login")))
            .and(body_json(
                json!({"login": "admin@example.com", "password": PASSWORD}),
            ))
            .respond_with(move |request: &Request| {
                assert_eq!(user_token(request), None, "login must carry no token");
                let n = this.logins.fetch_add(1, Ordering::SeqCst) + 1;
                let token = format!("su-{n}");
                *this.valid.lock() = Some(token.clone());
                ResponseTemplate::new(200)
                    .set_body_json(json!({"objectId": "SU", "user-token": token}))
                    .set_delay(delay)
            })
            .mount(server)
            .await;
        let this = Arc::clone(self);
        Mock::given(method("GET"))
            .and(path(p("users/logout")))
            .respond_with(move |_: &Request| {
                this.logouts.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(200)
            })
            .mount(server)
            .await;
    }

    fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    fn is_valid(&self, token: Option<&str>) -> bool {
        token.is_some() && self.valid.lock().as_deref() == token
    }
}

/// A counter endpoint that accepts only the currently valid superuser token.
async fn mount_counter_for_valid_token(
    server: &MockServer,
    sessions: &Arc<Sessions>,
) -> Arc<AtomicUsize> {
    let served = Arc::new(AtomicUsize::new(0));
    let (sessions, count) = (Arc::clone(sessions), Arc::clone(&served));
    Mock::given(method("GET"))
        .and(path(p("counters/c")))
        .respond_with(move |request: &Request| {
            count.fetch_add(1, Ordering::SeqCst);
            if sessions.is_valid(user_token(request).as_deref()) {
                ResponseTemplate::new(200).set_body_json(json!(7))
            } else {
                backend_error(400, 3064, "Not existing user token")
            }
        })
        .mount(server)
        .await;
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_first_superuser_calls_log_in_once() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::from_millis(200)).await;
    let served = mount_counter_for_valid_token(&server, &sessions).await;
    let backendless = Backendless::new(config(&server)).unwrap();

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let backendless = backendless.clone();
            tokio::spawn(async move { backendless.superuser().counters().get("c").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 7);
    }
    assert_eq!(sessions.logins(), 1);
    assert_eq!(served.load(Ordering::SeqCst), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_invalidated_mid_load_causes_one_relogin_and_every_call_succeeds() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::from_millis(50)).await;
    let served = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(AtomicUsize::new(0));
    {
        let (sessions, served, rejected) = (
            Arc::clone(&sessions),
            Arc::clone(&served),
            Arc::clone(&rejected),
        );
        Mock::given(method("GET"))
            .and(path(p("counters/c")))
            .respond_with(move |request: &Request| {
                // The backend ends the first session at the 300th call.
                if served.fetch_add(1, Ordering::SeqCst) + 1 == 300 {
                    let mut valid = sessions.valid.lock();
                    if valid.as_deref() == Some("su-1") {
                        *valid = None;
                    }
                }
                if sessions.is_valid(user_token(request).as_deref()) {
                    ResponseTemplate::new(200).set_body_json(json!(7))
                } else {
                    rejected.fetch_add(1, Ordering::SeqCst);
                    backend_error(400, 3064, "Not existing user token")
                }
            })
            .mount(&server)
            .await;
    }
    let backendless = Backendless::new(config(&server)).unwrap();
    assert_eq!(
        backendless.superuser().counters().get("c").await.unwrap(),
        7
    );

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let backendless = backendless.clone();
            tokio::spawn(async move { backendless.superuser().counters().get("c").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 7);
    }
    assert!(
        rejected.load(Ordering::SeqCst) >= 1,
        "the old token was never rejected"
    );
    assert_eq!(sessions.logins(), 2, "exactly one re-login");
    let status = backendless.session_status();
    assert_eq!(
        (
            status.logins,
            status.relogins,
            status.renewals,
            status.failed_logins
        ),
        (2, 1, 0, 0),
        "{status:?}"
    );
    assert!(status.logged_in_since_ms.is_some() && status.backoff_ms.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mixed_identities_each_send_only_their_own_token() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::ZERO).await;
    let mismatches = Arc::new(AtomicUsize::new(0));
    let probes = Arc::new(AtomicUsize::new(0));
    {
        let (mismatches, probes) = (Arc::clone(&mismatches), Arc::clone(&probes));
        Mock::given(method("GET"))
            .and(wiremock::matchers::path_regex(format!(
                "^/{APP}/{KEY}/data/Probe/[^/]+$"
            )))
            .respond_with(move |request: &Request| {
                probes.fetch_add(1, Ordering::SeqCst);
                let intended = request
                    .url
                    .path_segments()
                    .unwrap()
                    .next_back()
                    .unwrap()
                    .to_owned();
                let sent = user_token(request);
                let ok = match intended.as_str() {
                    "anonymous" | "server-key" => sent.is_none(),
                    token => sent.as_deref() == Some(token),
                };
                if !ok {
                    mismatches.fetch_add(1, Ordering::SeqCst);
                    return ResponseTemplate::new(418);
                }
                ResponseTemplate::new(200)
                    .set_body_json(json!({"objectId": intended, "who": intended}))
            })
            .mount(&server)
            .await;
    }
    let backendless = Backendless::new(config(&server)).unwrap();

    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let backendless = backendless.clone();
            tokio::spawn(async move {
                let (client, intended) = match i % 4 {
                    0 => {
                        let token = format!("caller-{i}");
                        (
                            backendless.caller(Some(UserToken::new(token.clone()))),
                            token,
                        )
                    }
                    1 => (backendless.caller(None), "anonymous".to_owned()),
                    2 => (backendless.superuser(), "su-1".to_owned()),
                    _ => (backendless.server_key(), "server-key".to_owned()),
                };
                let row = client
                    .table::<Value>("Probe")
                    .find_by_id(&intended)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(row.object_id, intended);
                assert_eq!(row.data["who"], json!(intended));
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(mismatches.load(Ordering::SeqCst), 0);
    assert_eq!(probes.load(Ordering::SeqCst), 1000);
    assert_eq!(sessions.logins(), 1);
}

#[tokio::test]
async fn cache_durations_out_of_range_are_rejected_before_any_request() {
    let server = MockServer::builder().start().await;
    let backendless = Backendless::new(config(&server)).unwrap();
    let cache = backendless.server_key();
    let cache = cache.cache();

    for bad in [Duration::from_secs(7_200_000), Duration::ZERO] {
        let err = cache.expire_in("k", bad).await.unwrap_err();
        assert!(
            matches!(
                err,
                SdkError::InvalidArgument {
                    argument: "expire_in",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("1..=7200"), "{err}");
    }
    let err = cache
        .put("k", &1, Some(Duration::from_secs(7201)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::InvalidArgument {
                argument: "ttl",
                ..
            }
        ),
        "{err:?}"
    );
    let far = std::time::SystemTime::now() + Duration::from_secs(7_200_000);
    let err = cache.expire_at("k", far).await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::InvalidArgument {
                argument: "expire_at",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());

    Mock::given(method("PUT"))
        .and(path(p("cache/k/expireIn")))
        .and(query_param("timeout", "60"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    cache.expire_in("k", Duration::from_secs(60)).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn cache_routes_and_units() {
    let server = MockServer::builder().start().await;
    Mock::given(method("PUT"))
        .and(path(p("cache/greeting")))
        .and(query_param("timeout", "7200"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"text": "hi"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("cache/greeting")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"text": "hi"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("cache/missing")))
        .respond_with(ResponseTemplate::new(200).set_body_string("null"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("cache/greeting/check")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(true)))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(p("cache/greeting/expireAt")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(p("cache/greeting")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    let backendless = Backendless::new(config(&server)).unwrap();
    let client = backendless.server_key();
    let cache = client.cache();
    cache
        .put(
            "greeting",
            &json!({"text": "hi"}),
            Some(Duration::from_millis(7_200_000)),
        )
        .await
        .unwrap();
    assert_eq!(
        cache.get::<Value>("greeting").await.unwrap(),
        Some(json!({"text": "hi"}))
    );
    assert_eq!(cache.get::<Value>("missing").await.unwrap(), None);
    assert!(cache.contains("greeting").await.unwrap());
    let at = std::time::SystemTime::now() + Duration::from_secs(600);
    cache.expire_at("greeting", at).await.unwrap();
    cache.delete("greeting").await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let expire_at = requests
        .iter()
        .find(|r| r.url.path().ends_with("expireAt"))
        .unwrap();
    let (_, sent) = expire_at
        .url
        .query_pairs()
        .find(|(k, _)| k == "timestamp")
        .unwrap();
    let expected = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(
        sent.parse::<u128>().unwrap(),
        expected,
        "expireAt is sent in ms"
    );
}

#[tokio::test(start_paused = true)]
async fn login_limit_is_a_typed_error_and_repeated_attempts_back_off() {
    let server = MockServer::builder().start().await;
    let logins = Arc::new(AtomicUsize::new(0));
    {
        let logins = Arc::clone(&logins);
        Mock::given(method("POST"))
            .and(path(p("users/login")))
            .respond_with(move |_: &Request| {
                logins.fetch_add(1, Ordering::SeqCst);
                backend_error(
                    400,
                    3044,
                    "Unable to login. Multiple login limit for the same user account has been reached",
                )
            })
            .mount(&server)
            .await;
    }
    let backendless = Backendless::new_untimed(config(&server)).unwrap();

    let started = Instant::now();
    let mut backed_off = 0;
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
            }) => backed_off += usize::from(retry_in.is_some()),
            other => panic!("expected a login-limit error, got {other:?}"),
        }
        assert_eq!(err.code(), Some(3044));
        tokio::time::advance(Duration::from_millis(250)).await;
    }
    let sent = logins.load(Ordering::SeqCst);
    // 1 s doubling: attempts at 0, 1, 3, 7, 15 and 31 s.
    assert!(
        (3..=8).contains(&sent),
        "{sent} login requests in one minute"
    );
    assert!(backed_off > 200, "calls while backing off must fail fast");
    let status = backendless.session_status();
    assert_eq!(status.failed_logins as usize, sent, "{status:?}");
    assert_eq!(
        (status.logins, status.last_error, status.last_error_code),
        (0, Some("login_limit"), Some(3044))
    );
    assert!(status.backoff_ms.is_some_and(|ms| ms > 0), "{status:?}");
    assert!(status.logged_in_since_ms.is_none());
    let counter_calls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("counters"))
        .count();
    assert_eq!(counter_calls, 0);
}

#[tokio::test]
async fn bad_credentials_fail_fast_while_backing_off() {
    let server = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(p("users/login")))
        .respond_with(backend_error(401, 3003, "Invalid login or password"))
        .expect(1)
        .mount(&server)
        .await;
    let backendless = Backendless::new(config(&server)).unwrap();
    let first = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(
        matches!(&first, SdkError::Login(e) if e.kind == LoginErrorKind::BadCredentials && e.retry_in.is_none()),
        "{first:?}"
    );
    let second = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(
        matches!(&second, SdkError::Login(e) if e.kind == LoginErrorKind::BadCredentials && e.retry_in.is_some()),
        "{second:?}"
    );
    assert!(!second.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn superuser_without_credentials_is_a_typed_error_without_requests() {
    let server = MockServer::builder().start().await;
    let mut config = config(&server);
    config.superuser = None;
    let backendless = Backendless::new(config).unwrap();
    let err = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdkError::Login(e) if e.kind == LoginErrorKind::NotConfigured),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn superuser_session_is_renewed_before_the_inactivity_timeout() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::ZERO).await;
    let served = mount_counter_for_valid_token(&server, &sessions).await;
    let mut config = config(&server);
    config.session_timeout = Some(Duration::from_secs(100));
    let backendless = Backendless::new_untimed(config).unwrap();
    let su = backendless.superuser();

    su.counters().get("c").await.unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    su.counters().get("c").await.unwrap();
    assert_eq!(
        (sessions.logins(), sessions.logouts.load(Ordering::SeqCst)),
        (1, 0)
    );

    // 95 s since the last use: past 90 % of the timeout, still alive.
    tokio::time::advance(Duration::from_secs(95)).await;
    su.counters().get("c").await.unwrap();
    assert_eq!(
        (sessions.logins(), sessions.logouts.load(Ordering::SeqCst)),
        (2, 1)
    );

    // Long idle: the session has lapsed; log in again without a logout.
    tokio::time::advance(Duration::from_secs(500)).await;
    su.counters().get("c").await.unwrap();
    assert_eq!(
        (sessions.logins(), sessions.logouts.load(Ordering::SeqCst)),
        (3, 1)
    );
    assert_eq!(
        served.load(Ordering::SeqCst),
        4,
        "no call was sent with an expired token"
    );
    // Both later logins replaced a token that was not rejected: renewals.
    let status = backendless.session_status();
    assert_eq!(
        (status.logins, status.renewals, status.relogins),
        (3, 2, 0),
        "{status:?}"
    );
}

#[tokio::test]
async fn shutdown_logs_the_superuser_out() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::ZERO).await;
    mount_counter_for_valid_token(&server, &sessions).await;
    let backendless = Backendless::new(config(&server)).unwrap();
    backendless.shutdown().await;
    assert_eq!(
        sessions.logouts.load(Ordering::SeqCst),
        0,
        "no session, no logout"
    );
    backendless.superuser().counters().get("c").await.unwrap();
    backendless.shutdown().await;
    assert_eq!(sessions.logouts.load(Ordering::SeqCst), 1);
    let logout = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("users/logout"))
        .unwrap();
    assert_eq!(user_token(&logout).as_deref(), Some("su-1"));
}

#[tokio::test]
async fn deadline_and_request_timeout_end_slow_calls() {
    let server = MockServer::builder().start().await;
    Mock::given(method("GET"))
        .and(path(p("counters/slow")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!(1))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let backendless = Backendless::new(config(&server)).unwrap();
    let started = Instant::now();
    let client = backendless
        .server_key()
        .with_deadline(Instant::now() + Duration::from_millis(100));
    let err = client.counters().get("slow").await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::Timeout {
                service: "counters",
                limit: TimeoutLimit::Deadline
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // A deadline already passed: nothing is sent.
    let before = server.received_requests().await.unwrap().len();
    let err = client.counters().get("slow").await.unwrap_err();
    assert!(matches!(err, SdkError::Timeout { .. }), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), before);

    let mut config = config(&server);
    config.request_timeout = Duration::from_millis(100);
    let backendless = Backendless::new(config).unwrap();
    let err = backendless
        .server_key()
        .counters()
        .get("slow")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::Timeout {
                limit: TimeoutLimit::RequestTimeout,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_errors() {
    let server = MockServer::builder().start().await;
    let config = config(&server);
    let debug = format!("{config:?}");
    assert!(!debug.contains(PASSWORD) && !debug.contains(KEY), "{debug}");
    assert!(debug.contains("[redacted]"));

    Mock::given(method("GET"))
        .and(path(p("counters/c")))
        .respond_with(backend_error(
            400,
            3048,
            &format!("Session timeout. Url: /{APP}/{KEY}/counters/c token caller-secret-token"),
        ))
        .mount(&server)
        .await;
    let backendless = Backendless::new(config).unwrap();
    let client = backendless.caller(Some(UserToken::new("caller-secret-token")));
    assert!(!format!("{client:?}").contains("caller-secret-token"));
    let err = client.counters().get("c").await.unwrap_err();
    assert!(err.is_invalid_session());
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !text.contains("caller-secret-token") && !text.contains(KEY),
            "{text}"
        );
    }

    // A transport error: its URL (holding the key) is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let backendless = Backendless::new(SdkConfig::new(
        format!("http://127.0.0.1:{port}"),
        APP,
        KEY.into(),
    ))
    .unwrap();
    let err = backendless
        .server_key()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::Transport { .. }), "{err:?}");
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&s.to_string());
        source = s.source();
    }
    assert!(!text.contains(KEY), "{text}");
}

#[test]
fn token_in_the_path_is_redacted_in_logs() {
    let call = Call::new(
        Service::Users,
        reqwest::Method::GET,
        ["users", "isvalidusertoken"],
    )
    .secret_segment("the-token");
    assert_eq!(call.log_path(), "/users/isvalidusertoken/[redacted]");
}

#[test]
fn backoff_doubles_up_to_the_cap_and_resets_on_success() {
    let mut backoff = Backoff::new(LoginBackoffConfig {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
    });
    let t0 = Instant::now();
    let error = LoginError {
        kind: LoginErrorKind::LoginLimit,
        code: Some(3044),
        message: "limit".to_owned(),
        retry_in: None,
    };
    assert!(backoff.check(t0).is_ok());
    let waits: Vec<u64> = (0..9)
        .map(|_| backoff.on_failure(t0, error.clone()).as_secs())
        .collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    let blocked = backoff.check(t0 + Duration::from_secs(59)).unwrap_err();
    assert_eq!(blocked.retry_in, Some(Duration::from_secs(1)));
    assert_eq!(blocked.kind, LoginErrorKind::LoginLimit);
    assert!(backoff.check(t0 + Duration::from_secs(60)).is_ok());
    backoff.on_success();
    assert_eq!(backoff.on_failure(t0, error).as_secs(), 1);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

#[tokio::test]
async fn data_routes_bodies_and_system_fields() {
    let server = MockServer::builder().start().await;
    let saved = json!({"objectId": "ID-1", "ownerId": "U-1", "created": 1000, "updated": null,
                       "___class": "Order", "item": "tea", "qty": 2});
    Mock::given(method("POST"))
        .and(path(p("data/Order")))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"item": "tea", "qty": 2, "___class": "Order"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(saved.clone()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(p("data/Order/ID-1")))
        .and(body_partial_json(json!({"qty": 3})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"objectId": "ID-1", "item": "tea", "qty": 3, "updated": 2000}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("data/Order")))
        .and(query_param("where", "qty > 1"))
        .and(query_param("pageSize", "50"))
        .and(query_param("offset", "10"))
        .and(query_param("sortBy", "created desc,item"))
        .and(query_param("props", "item,qty"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([saved])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("data/Order/count")))
        .and(query_param("where", "qty > 1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(42)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("data/Order/NOPE")))
        .respond_with(backend_error(
            404,
            1000,
            "Entity with the specified ID cannot be found",
        ))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(p("data/Order/ID-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"deletionTime": 1234})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(p("data/bulk/Order")))
        .and(body_json(json!([{"item": "a", "qty": 1, "___class": "Order"}, {"item": "b", "qty": 2, "___class": "Order"}])))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(["A", "B"])))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(p("data/bulk/Order")))
        .and(query_param("where", "qty = 1"))
        .and(body_json(json!({"qty": 5})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(3)))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(p("data/bulk/Order")))
        .and(query_param("where", "qty = 5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(3)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(p("data/Order")))
        .and(body_json(json!({"raw": true, "___class": "Order"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"objectId": "R", "raw": true})),
        )
        .mount(&server)
        .await;

    let backendless = Backendless::new(config(&server)).unwrap();
    let client = backendless.caller(Some(UserToken::new("tok")));
    let orders = client.table::<Order>("Order");
    let order = Order {
        item: "tea".to_owned(),
        qty: 2,
    };

    let row = orders.create(&order).await.unwrap();
    assert_eq!(row.object_id, "ID-1");
    assert_eq!(row.owner_id.as_deref(), Some("U-1"));
    assert_eq!(row.created, Some(1000));
    assert_eq!(row.updated, None);
    assert_eq!(row.class.as_deref(), Some("Order"));
    assert_eq!(row.data, order);

    let updated = orders.update("ID-1", &json!({"qty": 3})).await.unwrap();
    assert_eq!((updated.data.qty, updated.updated), (3, Some(2000)));

    let query = Query::new()
        .where_clause("qty > 1")
        .page_size(50)
        .offset(10)
        .sort_by("created desc")
        .sort_by("item")
        .props(["item", "qty"]);
    assert_eq!(orders.find(&query).await.unwrap(), vec![row.clone()]);
    let err = orders.find(&Query::new().page_size(101)).await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::InvalidArgument {
                argument: "page_size",
                ..
            }
        ),
        "{err:?}"
    );

    assert_eq!(orders.count(Some("qty > 1")).await.unwrap(), 42);
    assert_eq!(orders.find_by_id("NOPE").await.unwrap(), None);
    assert_eq!(orders.delete("ID-1").await.unwrap(), 1234);
    let items = [
        Order {
            item: "a".into(),
            qty: 1,
        },
        Order {
            item: "b".into(),
            qty: 2,
        },
    ];
    assert_eq!(orders.bulk_create(&items).await.unwrap(), ["A", "B"]);
    assert_eq!(
        orders
            .bulk_update("qty = 1", &json!({"qty": 5}))
            .await
            .unwrap(),
        3
    );
    assert_eq!(orders.bulk_delete("qty = 5").await.unwrap(), 3);

    let raw = client
        .data()
        .table::<Value>("Order")
        .create(&json!({"raw": true}))
        .await
        .unwrap();
    assert_eq!(
        (raw.object_id.as_str(), &raw.data["raw"]),
        ("R", &json!(true))
    );

    for request in server.received_requests().await.unwrap() {
        assert_eq!(user_token(&request).as_deref(), Some("tok"));
    }
}

#[tokio::test]
async fn users_service_routes() {
    let server = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(p("users/register")))
        .and(body_json(
            json!({"email": "a@b.c", "name": "Ann", "password": "pw"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"objectId": "U1", "email": "a@b.c", "name": "Ann", "___class": "Users"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(p("users/login")))
        .and(body_json(json!({"login": "a@b.c", "password": "pw"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"objectId": "U1", "email": "a@b.c", "user-token": "T1"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("users/isvalidusertoken/T1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(true)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("users/userroles")))
        .and(header("user-token", "T1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!(["AuthenticatedUser", "RestUser"])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("data/Users/U1")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"objectId": "U1", "email": "a@b.c"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p("users/logout")))
        .and(header("user-token", "T1"))
        .respond_with(backend_error(400, 3064, "Not existing user token"))
        .expect(1)
        .mount(&server)
        .await;

    #[derive(Debug, Serialize, Deserialize)]
    struct Person {
        email: String,
        name: String,
    }
    let backendless = Backendless::new(config(&server)).unwrap();
    let anonymous = backendless.caller(None);
    let person = Person {
        email: "a@b.c".into(),
        name: "Ann".into(),
    };
    let saved = anonymous
        .users()
        .register(&person, &"pw".into())
        .await
        .unwrap();
    assert_eq!(
        (saved.object_id.as_str(), saved.data.name.as_str()),
        ("U1", "Ann")
    );

    let logged_in = anonymous
        .users()
        .login("a@b.c", &"pw".into())
        .await
        .unwrap();
    assert_eq!(logged_in.token.expose(), "T1");
    assert_eq!(logged_in.user.object_id, "U1");
    assert!(logged_in.user.data.get("user-token").is_none());

    let server_key = backendless.server_key();
    assert!(server_key
        .users()
        .is_valid_token(&logged_in.token)
        .await
        .unwrap());
    let user = server_key
        .users()
        .find_by_id::<Value>("U1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.data["email"], json!("a@b.c"));

    let caller = backendless.caller(Some(logged_in.token));
    assert_eq!(
        caller.users().roles().await.unwrap(),
        ["AuthenticatedUser", "RestUser"]
    );
    caller.users().logout().await.unwrap();
    let err = backendless.superuser().users().logout().await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::InvalidArgument {
                argument: "identity",
                ..
            }
        ),
        "{err:?}"
    );

    let requests = server.received_requests().await.unwrap();
    assert!(requests
        .iter()
        .filter(|r| !r.url.path().contains("userroles") && !r.url.path().contains("logout"))
        .all(|r| user_token(r).is_none()));
}

#[tokio::test]
async fn counters_routes() {
    let server = MockServer::builder().start().await;
    type Route<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>, Value);
    let routes: [Route<'_>; 9] = [
        ("GET", "counters/n", None, json!(5)),
        ("PUT", "counters/n/increment/get", None, json!(6)),
        ("PUT", "counters/n/get/increment", None, json!(6)),
        ("PUT", "counters/n/decrement/get", None, json!(6)),
        ("PUT", "counters/n/get/decrement", None, json!(6)),
        (
            "PUT",
            "counters/n/incrementby/get",
            Some(("value", "10")),
            json!(16),
        ),
        (
            "PUT",
            "counters/n/get/incrementby",
            Some(("value", "-3")),
            json!(16),
        ),
        (
            "PUT",
            "counters/n/get/compareandset",
            Some(("expected", "16")),
            json!(true),
        ),
        ("PUT", "counters/n/reset", None, Value::Null),
    ];
    for (verb, route, query, reply) in routes {
        let mut mock = Mock::given(method(verb)).and(path(p(route)));
        if let Some((k, v)) = query {
            mock = mock.and(query_param(k, v));
        }
        mock.respond_with(ResponseTemplate::new(200).set_body_json(reply))
            .expect(1)
            .mount(&server)
            .await;
    }
    let backendless = Backendless::new(config(&server)).unwrap();
    let client = backendless.server_key();
    let c = client.counters();
    assert_eq!(c.get("n").await.unwrap(), 5);
    assert_eq!(c.increment_and_get("n").await.unwrap(), 6);
    assert_eq!(c.get_and_increment("n").await.unwrap(), 6);
    assert_eq!(c.decrement_and_get("n").await.unwrap(), 6);
    assert_eq!(c.get_and_decrement("n").await.unwrap(), 6);
    assert_eq!(c.add_and_get("n", 10).await.unwrap(), 16);
    assert_eq!(c.get_and_add("n", -3).await.unwrap(), 16);
    assert!(c.compare_and_set("n", 16, 0).await.unwrap());
    c.reset("n").await.unwrap();
    let cas = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("compareandset"))
        .unwrap();
    assert_eq!(cas.url.query(), Some("expected=16&updatedvalue=0"));
}

#[tokio::test]
async fn custom_domain_root_and_backend_errors() {
    let server = MockServer::builder().start().await;
    Mock::given(method("GET"))
        .and(path("/api/counters/c"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 1011, "message": "User has no permission to create entity", "errorData": {}})))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.server_url = "http://unused.invalid".to_owned();
    config.custom_domain = Some(format!("{}/", server.uri()));
    let backendless = Backendless::new(config).unwrap();
    let err = backendless
        .server_key()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(1011), Some(400)));
    assert!(!err.is_invalid_session());
    assert!(err.to_string().contains("1011"), "{err}");

    let bad = Backendless::new(SdkConfig::new("not a url", APP, KEY.into())).unwrap_err();
    assert!(matches!(
        bad,
        SdkError::InvalidArgument {
            argument: "server_url",
            ..
        }
    ));
    assert!(!bad.to_string().contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_bounds_the_wait_for_login_but_not_the_shared_login() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::from_millis(500)).await;
    mount_counter_for_valid_token(&server, &sessions).await;
    let backendless = Backendless::new(config(&server)).unwrap();

    let hurried = backendless
        .superuser()
        .with_deadline(Instant::now() + Duration::from_millis(50));
    let err = hurried.counters().get("c").await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::Timeout {
                limit: TimeoutLimit::Deadline,
                ..
            }
        ),
        "{err:?}"
    );
    // The login the hurried call started goes on; the next call uses it.
    assert_eq!(
        backendless.superuser().counters().get("c").await.unwrap(),
        7
    );
    assert_eq!(sessions.logins(), 1);
}

/// A recorder that sums counters and counts histogram records, keyed by
/// `name{label=value,…}`.
#[derive(Default)]
struct TestRecorder {
    values: Arc<parking_lot::Mutex<std::collections::BTreeMap<String, u64>>>,
}

struct Sum {
    values: Arc<parking_lot::Mutex<std::collections::BTreeMap<String, u64>>>,
    key: String,
}

impl metrics::CounterFn for Sum {
    fn increment(&self, value: u64) {
        *self.values.lock().entry(self.key.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.values.lock().insert(self.key.clone(), value);
    }
}

impl metrics::HistogramFn for Sum {
    fn record(&self, _value: f64) {
        *self.values.lock().entry(self.key.clone()).or_default() += 1;
    }
}

impl TestRecorder {
    fn sum(&self, key: &metrics::Key) -> Arc<Sum> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Sum {
            values: Arc::clone(&self.values),
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
        })
    }

    fn get(&self, key: &str) -> u64 {
        self.values.lock().get(key).copied().unwrap_or(0)
    }
}

impl metrics::Recorder for TestRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.sum(key))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.sum(key))
    }
}

#[test]
fn metrics_count_logins_and_requests_with_bounded_labels() {
    let recorder = TestRecorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let server = MockServer::builder().start().await;
            let sessions = Arc::new(Sessions::default());
            sessions.mount(&server, Duration::ZERO).await;
            mount_counter_for_valid_token(&server, &sessions).await;
            let backendless = Backendless::new(config(&server)).unwrap();
            backendless.superuser().counters().get("c").await.unwrap();
            backendless.superuser().counters().get("c").await.unwrap();
            let err = backendless
                .server_key()
                .counters()
                .get("c")
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some(3064));
        })
    });
    assert_eq!(
        recorder.get("coderunner_superuser_logins_total{outcome=ok,store=memory}"),
        1
    );
    assert_eq!(
        recorder.get(
            "coderunner_backend_requests_total{service=counters,identity=superuser,outcome=ok}"
        ),
        2
    );
    assert_eq!(
        recorder
            .get("coderunner_backend_requests_total{service=users,identity=superuser,outcome=ok}"),
        1,
        "the login request"
    );
    assert_eq!(
        recorder.get(
            "coderunner_backend_requests_total{service=counters,identity=server_key,outcome=backend_error}"
        ),
        1
    );
    assert_eq!(
        recorder.get(
            "coderunner_backend_request_duration_seconds{service=counters,identity=superuser}"
        ),
        2
    );
}

/// A log sink for the tracing subscriber of one test.
#[derive(Clone, Default)]
struct LogBuffer(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_name_identity_service_and_path_but_no_secret() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = MockServer::builder().start().await;
            let sessions = Arc::new(Sessions::default());
            sessions.mount(&server, Duration::ZERO).await;
            mount_counter_for_valid_token(&server, &sessions).await;
            Mock::given(method("GET"))
                .and(path(p("users/isvalidusertoken/path-secret-token")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!(false)))
                .expect(1)
                .mount(&server)
                .await;
            let backendless = Backendless::new(config(&server)).unwrap();
            let caller = backendless.caller(Some(UserToken::new("header-secret-token")));
            let probe = UserToken::new("path-secret-token");
            assert!(!caller.users().is_valid_token(&probe).await.unwrap());
            backendless.superuser().counters().get("c").await.unwrap();
            backendless.superuser().counters().get("c").await.unwrap();
        })
    });
    let text = String::from_utf8(logs.0.lock().clone()).unwrap();
    for expected in [
        "identity=caller service=\"users\" method=GET path=/users/isvalidusertoken/[redacted]",
        "identity=superuser service=\"counters\" method=GET path=/counters/c",
        "superuser logged in",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    for secret in [
        "path-secret-token",
        "header-secret-token",
        "su-1",
        PASSWORD,
        KEY,
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into the logs:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_no_credential_reaches_the_other_host() {
    let elsewhere = MockServer::builder().start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"user-token": "stolen"})))
        .mount(&elsewhere)
        .await;
    let server = MockServer::builder().start().await;
    for status in [302, 307] {
        Mock::given(wiremock::matchers::any())
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}/collect", elsewhere.uri())),
            )
            .up_to_n_times(2)
            .mount(&server)
            .await;
    }
    let backendless = Backendless::new(config(&server)).unwrap();
    let caller = backendless.caller(Some(UserToken::new("caller-token")));
    let err = caller.counters().get("c").await.unwrap_err();
    assert!(
        matches!(
            err,
            SdkError::Redirected {
                service: "counters",
                status: 302
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("redirect"), "{err}");
    let err = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdkError::Login(e) if e.kind == LoginErrorKind::Unreachable && e.message.contains("redirect")),
        "{err:?}"
    );
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "nothing was sent to the other host"
    );
}

#[tokio::test]
async fn only_the_session_codes_end_the_superuser_session() {
    let server = MockServer::builder().start().await;
    let sessions = Arc::new(Sessions::default());
    sessions.mount(&server, Duration::ZERO).await;
    // A 401 that is not about the session (an API key the backend refuses).
    Mock::given(method("GET"))
        .and(path(p("counters/c")))
        .respond_with(backend_error(401, 2002, "Application not found"))
        .mount(&server)
        .await;
    let backendless = Backendless::new(config(&server)).unwrap();
    let err = backendless
        .superuser()
        .counters()
        .get("c")
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(2002), Some(401)));
    assert!(!err.is_invalid_session());
    assert_eq!(
        sessions.logins(),
        1,
        "a 401 with 2002 is no reason to log in again"
    );
    for code in INVALID_SESSION_CODES {
        let err = SdkError::Backend {
            service: "data",
            status: 400,
            code: Some(*code),
            message: String::new(),
        };
        assert!(err.is_invalid_session(), "{code}");
    }
    let no_code = SdkError::Backend {
        service: "data",
        status: 401,
        code: None,
        message: String::new(),
    };
    assert!(!no_code.is_invalid_session());
}
