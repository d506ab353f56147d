//! Session expiry and the login limit, with paused time and in-process calls
//! (the router as a tower service).

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use coderunner::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

struct InProcess(axum::Router);

impl InProcess {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/dev-app/dev-rest-key/{path}"));
        if let Some(t) = token {
            req = req.header("user-token", t);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.0.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn login(&self, email: &str, password: &str) -> Result<String, (u16, Value)> {
        let (status, body) = self
            .call(
                "POST",
                "users/login",
                None,
                Some(json!({"login": email, "password": password})),
            )
            .await;
        if status == 200 {
            Ok(body["user-token"].as_str().unwrap().to_owned())
        } else {
            Err((status, body))
        }
    }
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_after_inactivity_and_each_use_resets_the_clock() {
    let config = EmulatorConfig {
        session_timeout_secs: 60,
        ..EmulatorConfig::dev()
    };
    let app = InProcess(Emulator::new(config).unwrap().router());
    let used = app.login("alice@example.com", "alice-pass").await.unwrap();
    let idle = app.login("alice@example.com", "alice-pass").await.unwrap();
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(40)).await;
        let (status, _) = app.call("GET", "data/Post", Some(&used), None).await;
        assert_eq!(status, 200, "a token in use stays valid");
    }
    let (status, body) = app.call("GET", "data/Post", Some(&idle), None).await;
    assert_eq!((status, body["code"].clone()), (401, json!(3064)), "{body}");
    // Expired is expired: no fallback to anonymous, even on public routes.
    let (_, valid) = app
        .call("GET", &format!("users/isvalidusertoken/{idle}"), None, None)
        .await;
    assert_eq!(valid, json!(false));
    tokio::time::advance(Duration::from_secs(61)).await;
    let (status, body) = app.call("GET", "users/userroles", Some(&used), None).await;
    assert_eq!((status, body["code"].clone()), (401, json!(3064)));
}

#[tokio::test(start_paused = true)]
async fn login_limit_refuses_extra_sessions_until_one_ends() {
    let config = EmulatorConfig {
        session_timeout_secs: 60,
        max_sessions_per_user: 2,
        ..EmulatorConfig::dev()
    };
    let emulator = Emulator::new(config).unwrap();
    let inspect = emulator.inspect();
    let app = InProcess(emulator.router());
    let first = app.login("bob@example.com", "bob-pass").await.unwrap();
    let _second = app.login("bob@example.com", "bob-pass").await.unwrap();
    let (status, body) = app.login("bob@example.com", "bob-pass").await.unwrap_err();
    assert_eq!(status, 400);
    assert_eq!(body["code"], json!(3044));
    assert_eq!(
        body["message"],
        json!("Unable to login. Multiple login limit for the same user account has been reached")
    );
    // Other users are not affected.
    app.login("alice@example.com", "alice-pass").await.unwrap();
    // Logging out frees a slot; the logged-out token is dead.
    let (status, _) = app.call("GET", "users/logout", Some(&first), None).await;
    assert_eq!(status, 200);
    let (status, body) = app.call("GET", "data/Post", Some(&first), None).await;
    assert_eq!((status, body["code"].clone()), (401, json!(3064)));
    let third = app.login("bob@example.com", "bob-pass").await.unwrap();
    assert!(app.login("bob@example.com", "bob-pass").await.is_err());
    // Expired sessions free their slots too.
    tokio::time::advance(Duration::from_secs(61)).await;
    app.login("bob@example.com", "bob-pass").await.unwrap();
    let (status, _) = app.call("GET", "data/Post", Some(&third), None).await;
    assert_eq!(status, 401);
    assert_eq!(
        inspect.login_count("bob@example.com"),
        4,
        "refused logins are not counted"
    );
}
