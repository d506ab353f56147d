//! A real runner and the project's emulator, linked over HTTP on 127.0.0.1:0.
//!
//! The runner's SDK points at the emulator with the CloudCode key and the
//! admin as superuser; the emulator fires events at the runner. Tasks can also
//! be posted to the runner directly, signed like the emulator signs them.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::OnceLock;

use coderunner::Registry;
use coderunner::emulator::{EmulatorConfig, Inspector, Secret, UserConfig};
use coderunner::testing::TestApp;
use serde_json::{Value, json};

pub(crate) const APP: &str = "dev-app";
pub(crate) const REST: &str = "dev-rest-key";
pub(crate) const CLOUD: &str = "dev-cloudcode-key";
pub(crate) const SECRET: &str = "whsec_c2RrLWFjY2VwdGFuY2UtdGVzdHMtc2VjcmV0LWtleQ==";
pub(crate) const ADMIN: &str = "admin@example.com";
pub(crate) const ADMIN_PASS: &str = "admin-pass";

/// Tests whose handlers log the superuser in hold this, so that the deltas of
/// the process-wide login metric belong to one test.
pub(crate) async fn login_metric_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}

/// The dev app plus `n` users `user{i}@example.com` / `user{i}-pass`.
pub(crate) fn dev_with_users(n: usize) -> EmulatorConfig {
    let mut config = EmulatorConfig::dev();
    config.users.extend((0..n).map(|i| UserConfig {
        email: format!("user{i}@example.com"),
        password: Secret::new(format!("user{i}-pass")),
        roles: vec![],
    }));
    config
}

/// A running emulator and runner (a `TestApp`); both stop when dropped.
pub(crate) struct Stack {
    pub emulator: String,
    pub runner: SocketAddr,
    pub inspect: Inspector,
    pub http: reqwest::Client,
    app: TestApp,
}

impl Stack {
    /// Starts the emulator (`emulator`, linked to the runner) and a runner
    /// serving `registry`; `extra` is appended to the runner's TOML overlay.
    pub(crate) async fn start(emulator: EmulatorConfig, registry: Registry, extra: &str) -> Stack {
        // The runner's SDK points at the emulator (`backendless.server_url`
        // is the emulator's), which gives tasks 15 s (`default_timeout_ms`).
        let overlay = format!(
            r#"
[tasks]
default_timeout_ms = 15000
max_timeout_ms = 20000
[backendless]
app_id = "{APP}"
api_key = "{CLOUD}"
[backendless.superuser]
login = "{ADMIN}"
password = "{ADMIN_PASS}"
{extra}
"#
        );
        let app = TestApp::builder()
            .emulator(emulator)
            .default_config()
            .webhook_secrets([SECRET])
            .config(&overlay)
            .registry(registry)
            .start()
            .await;
        Stack {
            emulator: app.emulator_url().to_owned(),
            runner: app.runner_addr(),
            inspect: app.inspect(),
            http: app.http().clone(),
            app,
        }
    }

    /// Stops the runner alone and waits until it has shut down (the
    /// emulator keeps serving).
    pub(crate) async fn stop_runner(&mut self) {
        self.app.stop_runner().await.unwrap();
    }

    /// A REST call to the emulator: `/{app}/{key}/{path}`; status and JSON.
    pub(crate) async fn rest(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/{APP}/{key}/{path}", self.emulator));
        if let Some(t) = token {
            req = req.header("user-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    /// Logs in through REST; returns (user-token, objectId).
    pub(crate) async fn login(&self, email: &str, password: &str) -> (String, String) {
        let (status, user) = self
            .rest(
                reqwest::Method::POST,
                REST,
                "users/login",
                None,
                Some(json!({"login": email, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "{user}");
        (
            user["user-token"].as_str().unwrap().to_owned(),
            user["objectId"].as_str().unwrap().to_owned(),
        )
    }

    /// Posts a signed task to the runner; status and JSON reply.
    pub(crate) async fn invoke(&self, task: &Value) -> (u16, Value) {
        let (status, reply) = self.app.send_task(task).await;
        assert!(!reply.is_null(), "a JSON reply");
        (status, reply)
    }

    /// The runner's `/metrics` text.
    pub(crate) async fn metrics(&self) -> String {
        self.http
            .get(format!("http://{}/metrics", self.runner))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `coderunner_superuser_logins_total{outcome}` now (0 when absent).
    pub(crate) async fn superuser_logins(&self, outcome: &str) -> u64 {
        self.counter("coderunner_superuser_logins_total", &[("outcome", outcome)])
            .await
    }

    /// The value of the counter `name` whose labels include all of `labels`
    /// (summed over the matching series; 0 when none).
    pub(crate) async fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The paths of the requests the emulator saw (no query string), with
    /// the app id and key stripped: `users/login`, `cache/k`...
    pub(crate) fn paths(&self) -> Vec<String> {
        self.inspect
            .requests()
            .iter()
            .map(|r| api_path(&r.path))
            .collect()
    }
}

/// `/{app}/{key}/rest` -> `rest`.
pub(crate) fn api_path(path: &str) -> String {
    path.trim_start_matches('/')
        .splitn(3, '/')
        .nth(2)
        .unwrap_or_default()
        .to_owned()
}

/// A RunnerContext for a caller with a real token (or anonymous).
pub(crate) fn context(user: Option<(&str, &str)>) -> Value {
    match user {
        Some((id, token)) => json!({
            "appId": APP, "userId": id, "userToken": token,
            "userRoles": ["AuthenticatedUser", "RestUser"], "deviceType": "REST",
            "httpHeaders": {"user-token": token}
        }),
        None => json!({
            "appId": APP, "userId": null, "userToken": null,
            "userRoles": ["NotAuthenticatedUser", "RestUser"], "deviceType": "REST",
            "httpHeaders": {}
        }),
    }
}

/// A beforeCreate task on `target` with `item` as the object.
pub(crate) fn before_create(id: &str, target: &str, ctx: Value, item: Value) -> Value {
    json!({
        "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestMethodInvocation",
        "id": id, "applicationId": APP, "eventId": 100, "target": target,
        "async": false, "timeout": 15000, "arguments": [ctx, item]
    })
}

/// The `(code, message)` of a reply's exception, if any.
pub(crate) fn exception(reply: &Value) -> Option<(i64, String)> {
    let e = &reply["exception"];
    if e.is_null() {
        return None;
    }
    Some((
        e["code"].as_i64().unwrap_or_default(),
        e["exceptionMessage"]
            .as_str()
            .or(e["message"].as_str())
            .unwrap_or_default()
            .to_owned(),
    ))
}
