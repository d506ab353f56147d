//! Starting a real runner on 127.0.0.1:0 and talking to it over HTTP.

use std::net::SocketAddr;

use coderunner::Registry;
use coderunner::config::Config;
use coderunner::signature::WebhookSecret;
use coderunner::testing::TestApp;
use serde_json::Value;

/// A runner alone (`TestApp` without an emulator), with its address, first
/// secret and a client at hand.
pub(crate) struct TestRunner {
    pub app: TestApp,
    pub addr: SocketAddr,
    pub secret: WebhookSecret,
    pub http: reqwest::Client,
}

pub(crate) fn config(overlay: &str) -> Config {
    Config::from_toml(overlay).unwrap()
}

pub(crate) const SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLXRoZS1ydW5uZXItdGVzdHM=";
pub(crate) const OTHER_SECRET: &str = "whsec_YW5vdGhlci1zZWNyZXQtdXNlZC1mb3Itcm90YXRpb24=";

impl TestRunner {
    pub(crate) async fn start(registry: Registry) -> Self {
        Self::start_with(registry, "").await
    }

    pub(crate) async fn start_with(registry: Registry, extra: &str) -> Self {
        let overlay = format!(
            "[security]\nwebhook_secrets = [\"{SECRET}\", \"{OTHER_SECRET}\"]\n[tasks]\ndefault_timeout_ms = 2000\nmax_timeout_ms = 5000\n{extra}"
        );
        Self::start_config(registry, &overlay).await
    }

    /// A runner configured by the TOML `overlay` alone (over the defaults),
    /// signed with [`SECRET`].
    pub(crate) async fn start_config(registry: Registry, overlay: &str) -> Self {
        let app = TestApp::builder()
            .without_emulator()
            .registry(registry)
            .config(overlay)
            .start()
            .await;
        TestRunner {
            addr: app.runner_addr(),
            secret: WebhookSecret::parse(SECRET).unwrap(),
            http: app.http().clone(),
            app,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a body signed with the first secret.
    pub(crate) async fn invoke_raw(&self, body: Vec<u8>) -> reqwest::Response {
        self.app.send_signed(body).await
    }

    /// Sends a signed task and returns status and JSON body.
    pub(crate) async fn invoke(&self, task: &Value) -> (u16, Value) {
        let (status, reply) = self.app.send_task(task).await;
        assert!(!reply.is_null(), "a JSON reply");
        (status, reply)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// A RunnerContext for a caller.
pub(crate) fn context(user: Option<(&str, &str)>) -> Value {
    match user {
        Some((id, token)) => serde_json::json!({
            "appId": "test-app", "userId": id, "userToken": token,
            "userRoles": ["AuthenticatedUser", "RestUser"], "deviceType": "REST",
            "httpHeaders": {"user-token": token}, "futureField": {"kept": true}
        }),
        None => serde_json::json!({
            "appId": "test-app", "userId": null, "userToken": null,
            "userRoles": ["NotAuthenticatedUser", "RestUser"], "deviceType": "REST", "httpHeaders": {}
        }),
    }
}

/// A task with plain JSON arguments.
pub(crate) fn task(id: &str, event_id: u32, target: &str, args: Vec<Value>) -> Value {
    serde_json::json!({
        "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestMethodInvocation",
        "id": id, "applicationId": "test-app", "eventId": event_id, "target": target,
        "async": false, "timeout": 2000, "arguments": args
    })
}

/// The same task with its arguments in the byte-array encoding.
pub(crate) fn byte_encoded(mut task: Value) -> Value {
    let args = task["arguments"].take();
    let bytes: Vec<Value> = serde_json::to_vec(&args)
        .unwrap()
        .into_iter()
        .map(Value::from)
        .collect();
    task["arguments"] = Value::Array(bytes);
    task
}

/// Decodes reply arguments in either encoding.
pub(crate) fn reply_args(reply: &Value) -> Vec<Value> {
    let args = reply["arguments"].as_array().expect("reply has arguments");
    if args.first().is_some_and(Value::is_number) {
        let bytes: Vec<u8> = args.iter().map(|v| v.as_u64().unwrap() as u8).collect();
        serde_json::from_slice(&bytes).unwrap()
    } else {
        args.clone()
    }
}
