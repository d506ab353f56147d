//! Starting an emulator on a free port and talking to it.

use coderunner::emulator::{Emulator, EmulatorConfig, Inspector};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub(crate) const APP: &str = "dev-app";
pub(crate) const REST: &str = "dev-rest-key";
pub(crate) const JS: &str = "dev-js-key";
pub(crate) const CLOUD: &str = "dev-cloudcode-key";

/// A running emulator; stops when dropped.
pub(crate) struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub inspect: Inspector,
    /// The emulator's inspection token (`Emulator::inspect_token`).
    pub token: String,
    stop: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A response: status and JSON body (Null when empty).
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    /// The Backendless error code, if the body is an error.
    pub(crate) fn code(&self) -> Option<i64> {
        self.body.get("code").and_then(Value::as_i64)
    }

    /// Asserts success and returns the body.
    #[track_caller]
    pub(crate) fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self.body
    }

    /// Asserts an error with this code and HTTP status.
    #[track_caller]
    pub(crate) fn err(&self, code: i64, status: u16) {
        assert_eq!(
            (self.code(), self.status),
            (Some(code), status),
            "body: {}",
            self.body
        );
        assert!(self.body["message"].is_string(), "{}", self.body);
    }
}

impl TestApp {
    pub(crate) async fn start(config: EmulatorConfig) -> TestApp {
        let emulator = Emulator::new(config).expect("emulator starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let inspect = emulator.inspect();
        let token = emulator.inspect_token().to_owned();
        let s = stop.clone();
        tokio::spawn(emulator.serve(listener, async move { s.cancelled().await }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            inspect,
            token,
            stop,
        }
    }

    pub(crate) async fn dev() -> TestApp {
        Self::start(EmulatorConfig::dev()).await
    }

    /// A request to `/{app}/{key}/{path}`.
    pub(crate) async fn call(
        &self,
        method: Method,
        key: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let url = format!("{}/{APP}/{key}/{path}", self.base);
        self.raw(method, &url, token, body.map(|b| b.to_string()))
            .await
    }

    pub(crate) async fn raw(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.header("user-token", t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp { status, body }
    }

    /// Logs in and returns (user-token, objectId).
    pub(crate) async fn login(&self, key: &str, email: &str, password: &str) -> (String, String) {
        let user = self
            .call(
                Method::POST,
                key,
                "users/login",
                None,
                Some(json!({"login": email, "password": password})),
            )
            .await
            .ok();
        (
            user["user-token"].as_str().unwrap().to_owned(),
            user["objectId"].as_str().unwrap().to_owned(),
        )
    }
}
