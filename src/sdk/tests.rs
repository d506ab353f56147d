//! Tests of the SDK against wiremock servers on 127.0.0.1.
//!
//! The rule of this module: a behaviour the project's emulator can produce
//! is tested against the emulator, in `tests/sdk`. Only what a real backend
//! cannot be made to do on demand is tested here: a redirect, a hang, an
//! error code the emulator never sends (or sends only with its session
//! intact), an error message that echoes a secret, a custom-domain route,
//! and exact request shapes the emulator does not check.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

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

fn backend_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "code": code, "message": message }))
}

/// `GET counters/c` as `client`.
async fn counter_c(client: &Client) -> Result<i64, SdkError> {
    client.counters().get("c").await
}

/// A login endpoint that issues `su-1`, `su-2`, …; how many it issued.
async fn mount_logins(server: &MockServer) -> Arc<AtomicUsize> {
    let logins = Arc::new(AtomicUsize::new(0));
    let issued = Arc::clone(&logins);
    Mock::given(method("POST"))
        .and(path(p("users/login")))
        .and(body_json(
            json!({"login": "admin@example.com", "password": PASSWORD}),
        ))
        .respond_with(move |request: &Request| {
            assert!(
                !request.headers.contains_key("user-token"),
                "login must carry no token"
            );
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(json!({"objectId": "SU", "user-token": format!("su-{n}")}))
        })
        .mount(server)
        .await;
    logins
}

/// The emulator answers 3064 alone when a session ends; Backendless also
/// sends 3048 and 3091, with either status. Each ends the session: one
/// re-login, and the call is sent again with the new token.
#[tokio::test]
async fn each_session_code_ends_the_superuser_session_whatever_the_status() {
    for (status, code) in [(401, 3048), (400, 3091), (401, 3064)] {
        let server = MockServer::builder().start().await;
        let logins = mount_logins(&server).await;
        Mock::given(method("GET"))
            .and(path(p("counters/c")))
            .and(header("user-token", "su-1"))
            .respond_with(backend_error(status, code, "the session is over"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(p("counters/c")))
            .and(header("user-token", "su-2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!(7)))
            .expect(1)
            .mount(&server)
            .await;
        let backendless = Backendless::new(config(&server)).unwrap();
        assert_eq!(
            counter_c(&backendless.superuser()).await.unwrap(),
            7,
            "{code}"
        );
        assert_eq!(logins.load(Ordering::SeqCst), 2, "{code}: one re-login");
        assert_eq!(backendless.session_status().relogins, 1, "{code}");
    }
}

/// A 401 that is not about the session (an API key the backend refuses,
/// or no code at all) is the call's error: no re-login. The emulator
/// cannot refuse a key it has just logged the superuser in with.
#[tokio::test]
async fn only_the_session_codes_end_the_superuser_session() {
    let refusals = [
        (
            backend_error(401, 2002, "Application not found"),
            Some(2002),
        ),
        (ResponseTemplate::new(401), None),
    ];
    for (refusal, code) in refusals {
        let server = MockServer::builder().start().await;
        let logins = mount_logins(&server).await;
        Mock::given(method("GET"))
            .and(path(p("counters/c")))
            .respond_with(refusal)
            .expect(1)
            .mount(&server)
            .await;
        let backendless = Backendless::new(config(&server)).unwrap();
        let err = counter_c(&backendless.superuser()).await.unwrap_err();
        assert_eq!((err.code(), err.status()), (code, Some(401)), "{err:?}");
        assert!(!err.is_invalid_session());
        assert_eq!(
            logins.load(Ordering::SeqCst),
            1,
            "a 401 with {code:?} is no reason to log in again"
        );
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    item: String,
    qty: u32,
}

/// The emulator stores any JSON body: the class name in each row and the
/// JSON content type are checked here.
#[tokio::test]
async fn row_bodies_name_their_class_and_are_sent_as_json() {
    let server = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(p("data/Order")))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"item": "tea", "qty": 2, "___class": "Order"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"objectId": "ID-1", "item": "tea", "qty": 2})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(p("data/bulk/Order")))
        .and(header("content-type", "application/json"))
        .and(body_json(json!([
            {"item": "a", "qty": 1, "___class": "Order"},
            {"item": "b", "qty": 2, "___class": "Order"}
        ])))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(["A", "B"])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(p("cache/greeting")))
        .and(query_param("timeout", "60"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"text": "hi"})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    let backendless = Backendless::new(config(&server)).unwrap();
    let client = backendless.server_key();
    let orders = client.table::<Order>("Order");
    let tea = Order {
        item: "tea".to_owned(),
        qty: 2,
    };
    assert_eq!(orders.create(&tea).await.unwrap().data, tea);
    let items = [("a", 1), ("b", 2)].map(|(item, qty)| Order {
        item: item.to_owned(),
        qty,
    });
    assert_eq!(orders.bulk_create(&items).await.unwrap(), ["A", "B"]);
    client
        .cache()
        .put(
            "greeting",
            &json!({"text": "hi"}),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
}

/// The emulator serves `/{app}/{key}/…` alone: the custom-domain root
/// (`{domain}/api`, no app id or key in the path) is checked here.
#[tokio::test]
async fn a_custom_domain_is_the_root_of_every_call() {
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
    let err = counter_c(&backendless.server_key()).await.unwrap_err();
    assert_eq!((err.code(), err.status()), (Some(1011), Some(400)));
    assert!(!err.is_invalid_session());
    assert!(err.to_string().contains("1011"), "{err}");
}

/// A reply that comes after the bounds (the emulator answers at once).
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

/// A backend message that echoes the key and the token (the emulator's
/// messages never do), and a refused connection.
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
    let err = counter_c(&client).await.unwrap_err();
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
    let err = counter_c(&backendless.server_key()).await.unwrap_err();
    assert!(matches!(err, SdkError::Transport { .. }), "{err:?}");
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&s.to_string());
        source = s.source();
    }
    assert!(!text.contains(KEY), "{text}");
}

/// The emulator never redirects.
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
    let err = counter_c(&caller).await.unwrap_err();
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
    let err = counter_c(&backendless.superuser()).await.unwrap_err();
    assert!(
        matches!(&err, SdkError::Login(e) if e.kind == LoginErrorKind::Unreachable && e.message.contains("redirect")),
        "{err:?}"
    );
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "nothing was sent to the other host"
    );
}
