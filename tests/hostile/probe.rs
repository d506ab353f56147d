//! Raw-socket clients: a health probe that measures its latency, signed
//! deliveries, and checks that the server closed a socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coderunner::signature::WebhookSecret;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The acceptance criterion: `/healthz` answers within this.
pub(crate) const HEALTH_BOUND: Duration = Duration::from_millis(100);

/// One `GET /healthz` on a fresh connection: its latency (connect to the
/// last byte of the reply), after checking it is a 200.
pub(crate) async fn healthz(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: runner\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        reply
    })
    .await
    .expect("/healthz answers within 5 s");
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    elapsed
}

/// Probes `/healthz` every 20 ms until stopped; remembers the slowest.
pub(crate) struct HealthWatch {
    stop: CancellationToken,
    probes: tokio::task::JoinHandle<(usize, Duration)>,
}

impl HealthWatch {
    pub(crate) fn start(addr: SocketAddr) -> Self {
        let stop = CancellationToken::new();
        let until = stop.clone();
        let probes = tokio::spawn(async move {
            let (mut count, mut slowest) = (0, Duration::ZERO);
            while !until.is_cancelled() {
                slowest = slowest.max(healthz(addr).await);
                count += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (count, slowest)
        });
        Self { stop, probes }
    }

    /// Stops probing and asserts every probe answered within [`HEALTH_BOUND`].
    pub(crate) async fn assert_healthy_throughout(self) {
        self.stop.cancel();
        let (count, slowest) = self.probes.await.unwrap();
        assert!(count >= 3, "only {count} probes ran");
        assert!(
            slowest < HEALTH_BOUND,
            "/healthz took {slowest:?} at worst over {count} probes"
        );
    }
}

/// The soft limit of open files of this process (both ends of every test
/// connection count against it).
pub(crate) fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

/// Whether the server closes `stream` within `within` (EOF or reset).
pub(crate) async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A response (e.g. 408) before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

/// The head of a signed `POST /invoke` of `body`.
pub(crate) fn signed_head(
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    content_length: usize,
) -> String {
    format!(
        "POST /invoke HTTP/1.1\r\nHost: runner\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\nwebhook-id: {id}\r\nwebhook-timestamp: {timestamp}\r\n\
         webhook-signature: {}\r\n\r\n",
        secret.sign(id, timestamp, body)
    )
}

/// A reply: status, headers (lowercase names), JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `body` signed as delivery `id` at `timestamp` and reads the reply.
pub(crate) async fn deliver(
    http: &reqwest::Client,
    addr: SocketAddr,
    secret: &WebhookSecret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Reply {
    let response = http
        .post(format!("http://{addr}/invoke"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", secret.sign(id, timestamp, body))
        .body(body.to_vec())
        .send()
        .await
        .expect("the runner answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.json().await.expect("a JSON reply");
    Reply {
        status,
        headers,
        body,
    }
}

/// Counts executions per task id, for "nothing executed twice".
#[derive(Default, Clone)]
pub(crate) struct Executions(Arc<Mutex<std::collections::HashMap<String, usize>>>);

impl Executions {
    pub(crate) fn record(&self, task_id: &str) {
        *self.0.lock().entry(task_id.to_owned()).or_default() += 1;
    }

    pub(crate) fn of(&self, task_id: &str) -> usize {
        self.0.lock().get(task_id).copied().unwrap_or(0)
    }

    pub(crate) fn total(&self) -> usize {
        self.0.lock().values().sum()
    }

    pub(crate) fn max(&self) -> usize {
        self.0.lock().values().copied().max().unwrap_or(0)
    }
}

/// These tests measure latency on a 2-core machine: they run one at a time.
pub(crate) async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A RunnerContext of the test app.
pub(crate) fn context() -> Value {
    serde_json::json!({"appId": "test-app", "userRoles": ["NotAuthenticatedUser"]})
}

/// The body of a `beforeCreate` task on `target`.
pub(crate) fn before_create(
    task_id: &str,
    target: &str,
    timeout_ms: i64,
    is_async: bool,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": task_id, "applicationId": "test-app", "eventId": 100, "target": target,
        "async": is_async, "timeout": timeout_ms,
        "arguments": [context(), {"title": task_id}]
    }))
    .unwrap()
}
