//! A runner taking tasks from a real Redis, and a driver that pushes tasks
//! the way a Backendless server does and collects every reply published.
//!
//! Each runner gets its own queue and channel names (a fresh prefix), so the
//! tests share the machine's Redis on 127.0.0.1:6379 and run in parallel;
//! nothing is flushed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coderunner::Registry;
use coderunner::testing::{TestApp, framing};
use futures::StreamExt;
use serde_json::{Value, json};

/// The shared Redis of the machine (DEVELOPERS.md).
pub(crate) const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// A runner alone (a `TestApp`) taking tasks from Redis.
pub(crate) struct RedisRunner {
    pub prefix: String,
    pub redis_url: String,
    pub http_addr: std::net::SocketAddr,
    pub compression: bool,
    pub app: TestApp,
}

pub(crate) fn fresh_prefix() -> String {
    format!("test-{}:", uuid::Uuid::new_v4().simple())
}

impl RedisRunner {
    pub(crate) async fn start(registry: Registry, compression: bool) -> Self {
        Self::start_on(registry, compression, SHARED_REDIS, "").await
    }

    pub(crate) async fn start_on(
        registry: Registry,
        compression: bool,
        redis_url: &str,
        extra: &str,
    ) -> Self {
        Self::start_prefixed(registry, compression, redis_url, &fresh_prefix(), extra).await
    }

    /// A runner whose lists and channels start with `prefix`; `extra` is
    /// TOML added inside `[redis]` (later tables may follow).
    pub(crate) async fn start_prefixed(
        registry: Registry,
        compression: bool,
        redis_url: &str,
        prefix: &str,
        extra: &str,
    ) -> Self {
        let prefix = prefix.to_owned();
        let overlay = format!(
            r#"
[transport]
http = false
redis = true
[redis]
url = "{redis_url}"
queue = "{prefix}CODE_RUNNER_DRIVER"
low_priority_queue = "{prefix}JS_CR_QUEUE_LP"
service_channel = "{prefix}SERVICE_QUEUE_P_CR"
compression = {compression}
compression_threshold = 256
poll_timeout_ms = 200
{extra}
"#
        );
        let app = TestApp::builder()
            .without_emulator()
            .registry(registry)
            .config(&overlay)
            .start()
            .await;
        let runner = Self {
            prefix,
            redis_url: redis_url.to_owned(),
            http_addr: app.runner_addr(),
            compression,
            app,
        };
        runner.wait_ready().await;
        runner
    }

    pub(crate) fn queue(&self) -> String {
        format!("{}CODE_RUNNER_DRIVER", self.prefix)
    }

    pub(crate) async fn readyz(&self) -> u16 {
        reqwest::get(format!("http://{}/readyz", self.http_addr))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    pub(crate) async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.readyz().await == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the runner did not become ready");
    }

    pub(crate) async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub(crate) fn driver(&self) -> Driver {
        Driver {
            client: redis::Client::open(self.redis_url.as_str()).unwrap(),
            queue: self.queue(),
            prefix: self.prefix.clone(),
            compression: self.compression,
        }
    }
}

/// Pushes tasks as the Backendless server does and reads the replies.
#[derive(Clone)]
pub(crate) struct Driver {
    pub client: redis::Client,
    pub queue: String,
    pub prefix: String,
    pub compression: bool,
}

/// Every message published on one reply channel.
pub(crate) struct Replies {
    pub messages: Vec<Vec<u8>>,
}

impl Replies {
    /// The only reply, decoded (unframed, arguments byte-decoded).
    pub(crate) fn single(&self, compression: bool) -> Value {
        assert_eq!(
            self.messages.len(),
            1,
            "expected exactly one reply, got {}",
            self.messages.len()
        );
        decode_reply(&self.messages[0], compression)
    }
}

pub(crate) fn decode_reply(message: &[u8], compression: bool) -> Value {
    let json = if compression {
        framing::unframe(message).expect("a framed reply")
    } else {
        message.to_vec()
    };
    let mut reply: Value = serde_json::from_slice(&json).expect("a JSON reply");
    if let Some(Value::Array(bytes)) = reply.get("arguments") {
        let bytes: Vec<u8> = bytes.iter().map(|b| b.as_u64().unwrap() as u8).collect();
        reply["arguments"] = serde_json::from_slice(&bytes).expect("byte-encoded arguments");
    }
    reply
}

/// A task in the shape spec §2.2 describes, its arguments byte-encoded.
pub(crate) fn method_task(id: &str, event_id: u32, target: &str, args: Value) -> Value {
    let bytes: Vec<Value> = serde_json::to_vec(&args)
        .unwrap()
        .into_iter()
        .map(Value::from)
        .collect();
    json!({
        "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestMethodInvocation",
        "id": id,
        "applicationId": "6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
        "timestamp": now_ms(),
        "timeout": 5000,
        "mode": "PRODUCTION",
        "initAppData": {"url": "http://127.0.0.1:9", "apiKey": "F0E1D2C3-B4A5-4968-8776-655443322110"},
        "relativePath": "servercode/JS/default",
        "provider": "handlers/persistence/post.js",
        "eventId": event_id,
        "target": target,
        "async": false,
        "invocationContextDto": {"userId": "U1", "userToken": "T1"},
        "arguments": bytes,
    })
}

pub(crate) fn context() -> Value {
    json!({"___jsonclass": "com.backendless.servercode.InvocationContext",
           "appId": "6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", "userId": "U1", "userToken": "T1",
           "userRoles": ["AuthenticatedUser"], "deviceType": "REST", "httpHeaders": {}})
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Driver {
    /// The reply channel of a task id.
    pub(crate) fn channel(&self, id: &str) -> String {
        format!("{}RESP:{id}", self.prefix)
    }

    /// Pushes `task` (its `responseChannelId` set here) and collects what is
    /// published on its channel until `quiet` passes with no message after
    /// the first one, or `wait` passes with none.
    pub(crate) async fn call(&self, mut task: Value, wait: Duration, quiet: Duration) -> Replies {
        let id = task["id"].as_str().unwrap().to_owned();
        let channel = self.channel(&id);
        task["responseChannelId"] = Value::from(channel.clone());
        let mut pubsub = self.client.get_async_pubsub().await.unwrap();
        pubsub.subscribe(&channel).await.unwrap();
        self.push(&task).await;
        let mut stream = pubsub.on_message();
        let mut messages = Vec::new();
        let mut limit = wait;
        while let Ok(Some(message)) = tokio::time::timeout(limit, stream.next()).await {
            messages.push(message.get_payload_bytes().to_vec());
            limit = quiet;
        }
        Replies { messages }
    }

    /// `RPUSH`es a task, framed when compression is on.
    pub(crate) async fn push(&self, task: &Value) {
        let json = serde_json::to_vec(task).unwrap();
        let payload = if self.compression {
            framing::frame(&json, 256)
        } else {
            json
        };
        self.push_raw(payload).await;
    }

    pub(crate) async fn push_raw(&self, payload: Vec<u8>) {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: i64 = redis::cmd("RPUSH")
            .arg(&self.queue)
            .arg(payload)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// A private `redis-server` on a free loopback port, for the tests that stop
/// and restart Redis (the shared one must keep serving other tests).
pub(crate) struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
