//! The superuser session and what the SDK reports of it (session status,
//! metrics, logs), against the project's emulator on 127.0.0.1:0.

use std::io::{Read, Seek};

use coderunner::emulator::{EmulatorConfig, Inspector, RequestRecord};
use coderunner::event::UserToken;
use coderunner::sdk::{Backendless, LoginErrorKind, Query, SdkError};
use serde_json::Value;

use crate::helpers::{ADMIN, ADMIN_PASS, CLOUD, api_path, login_metric_lock};
use crate::paused::{emulator_elsewhere, superuser_config};
use crate::surface::emulator_with;

/// The requests the emulator saw on `path` (app id and key stripped).
fn requests_to(inspect: &Inspector, path: &str) -> Vec<RequestRecord> {
    inspect
        .requests()
        .into_iter()
        .filter(|r| api_path(&r.path) == path)
        .collect()
}

/// The superuser's token, as the emulator saw it on a counters call.
fn superuser_token(inspect: &Inspector) -> String {
    inspect
        .requests()
        .into_iter()
        .find(|r| api_path(&r.path).starts_with("counters/"))
        .and_then(|r| r.user_token)
        .expect("a superuser call")
}

#[tokio::test]
async fn a_wrong_superuser_password_fails_fast_while_backing_off() {
    let _lock = login_metric_lock().await;
    let (sdk, inspect) = emulator_with(|sdk| {
        if let Some(su) = &mut sdk.superuser {
            su.password = "not-the-admin-pass".into();
        }
    })
    .await;
    let first = sdk.superuser().counters().get("c").await.unwrap_err();
    assert!(
        matches!(&first, SdkError::Login(e) if e.kind == LoginErrorKind::BadCredentials
            && e.code == Some(3003) && e.retry_in.is_none()),
        "{first:?}"
    );
    let second = sdk.superuser().counters().get("c").await.unwrap_err();
    assert!(
        matches!(&second, SdkError::Login(e) if e.kind == LoginErrorKind::BadCredentials
            && e.retry_in.is_some()),
        "{second:?}"
    );
    for err in [first, second] {
        assert!(!format!("{err} {err:?}").contains("not-the-admin-pass"));
    }
    assert_eq!(
        requests_to(&inspect, "users/login").len(),
        1,
        "the second call sent none"
    );
    assert_eq!(requests_to(&inspect, "counters/c").len(), 0);
    let status = sdk.session_status();
    assert_eq!(
        (
            status.failed_logins,
            status.last_error,
            status.last_error_code
        ),
        (1, Some("bad_credentials"), Some(3003)),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_superuser_without_credentials_fails_without_a_request() {
    let (sdk, inspect) = emulator_with(|sdk| sdk.superuser = None).await;
    let err = sdk.superuser().counters().get("c").await.unwrap_err();
    assert!(
        matches!(&err, SdkError::Login(e) if e.kind == LoginErrorKind::NotConfigured),
        "{err:?}"
    );
    assert!(inspect.requests().is_empty(), "nothing was sent");
    assert!(!sdk.session_status().configured);
}

#[tokio::test]
async fn shutdown_logs_out_the_session_it_holds_and_no_other() {
    let _lock = login_metric_lock().await;
    let (sdk, inspect) = emulator_with(|_| {}).await;
    sdk.shutdown().await;
    assert!(inspect.requests().is_empty(), "no session, no logout");

    sdk.superuser().counters().get("c").await.unwrap();
    let token = superuser_token(&inspect);
    sdk.shutdown().await;
    let logouts = requests_to(&inspect, "users/logout");
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].user_token.as_deref(), Some(token.as_str()));
    assert_eq!(logouts[0].status, 200);
    let probe = UserToken::new(token);
    assert!(
        !sdk.server_key()
            .users()
            .is_valid_token(&probe)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_token_the_backend_ends_counts_as_one_relogin() {
    let _lock = login_metric_lock().await;
    let (sdk, inspect) = emulator_with(|_| {}).await;
    sdk.superuser().counters().get("c").await.unwrap();
    let first = sdk.session_status();
    assert_eq!((first.logins, first.relogins), (1, 0), "{first:?}");
    assert!(first.logged_in_since_ms.is_some(), "{first:?}");

    assert_eq!(inspect.expire_sessions(ADMIN), 1);
    sdk.superuser().counters().get("c").await.unwrap();
    let status = sdk.session_status();
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
    assert!(status.backoff_ms.is_none() && status.last_error.is_none());
    assert_eq!(inspect.login_count(ADMIN), 2);
    let refused = requests_to(&inspect, "counters/c")
        .iter()
        .filter(|r| r.status != 200)
        .count();
    assert_eq!(refused, 1, "the ended token was tried once");
}

/// The value of one series, written as Prometheus renders it
/// (`name{label="value",…}`), in `text`; `None` when absent.
fn series(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The runtime of a test that installs a recorder or subscriber on its own
/// thread; the emulator runs on another thread, out of their sight.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn metrics_count_logins_and_requests_with_bounded_labels() {
    let (url, _) = emulator_elsewhere(EmulatorConfig::dev());
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let sdk = Backendless::new(superuser_config(url)).unwrap();
            sdk.superuser().counters().get("c").await.unwrap();
            sdk.superuser().counters().get("c").await.unwrap();
            // The key alone may not read Audit_log.
            let err = sdk
                .server_key()
                .table::<Value>("Audit_log")
                .find(&Query::new())
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some(1013), "{err:?}");
        })
    });
    let text = handle.render();
    for (name, expected) in [
        (
            r#"coderunner_superuser_logins_total{outcome="ok",store="memory"}"#,
            1,
        ),
        (
            r#"coderunner_backend_requests_total{service="counters",identity="superuser",outcome="ok"}"#,
            2,
        ),
        // The login.
        (
            r#"coderunner_backend_requests_total{service="users",identity="superuser",outcome="ok"}"#,
            1,
        ),
        (
            r#"coderunner_backend_requests_total{service="data",identity="server_key",outcome="backend_error"}"#,
            1,
        ),
        (
            r#"coderunner_backend_request_duration_seconds_count{service="counters",identity="superuser"}"#,
            2,
        ),
    ] {
        assert_eq!(series(&text, name), Some(expected), "{name} in\n{text}");
    }
}

#[test]
fn logs_name_identity_service_and_path_but_no_secret() {
    let (url, inspect) = emulator_elsewhere(EmulatorConfig::dev());
    let logs = std::sync::Arc::new(tempfile::tempfile().unwrap());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(std::sync::Arc::clone(&logs))
        .finish();
    let alice_token = tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            let sdk = Backendless::new(superuser_config(url)).unwrap();
            let alice = sdk
                .server_key()
                .users()
                .login("alice@example.com", &"alice-pass".into())
                .await
                .unwrap();
            let caller = sdk.caller(Some(alice.token.clone()));
            let probe = UserToken::new("path-secret-token");
            assert!(!caller.users().is_valid_token(&probe).await.unwrap());
            sdk.superuser().counters().get("c").await.unwrap();
            sdk.superuser().counters().get("c").await.unwrap();
            alice.token.expose().to_owned()
        })
    });
    let mut text = String::new();
    let mut file: &std::fs::File = &logs;
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut text).unwrap();
    for expected in [
        "identity=caller service=\"users\" method=GET path=/users/isvalidusertoken/[redacted]",
        "identity=superuser service=\"counters\" method=GET path=/counters/c",
        "superuser logged in",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let superuser = superuser_token(&inspect);
    for secret in [
        "path-secret-token",
        alice_token.as_str(),
        "alice-pass",
        superuser.as_str(),
        ADMIN_PASS,
        CLOUD,
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into the logs:\n{text}"
        );
    }
}
