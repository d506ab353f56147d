//! A fleet of runners sharing one real Redis (`[store] kind = "redis"`):
//! one superuser login across three `coderunner serve` processes (read from
//! the project's emulator); a delivery accepted by one replica refused by
//! the others; and what happens while Redis is down. The store's own fleet
//! tests (SDK replicas sharing a session, schedulers sharing timers) are
//! unit tests of `store`.
//!
//! Every test has its own key prefix on the machine's Redis on
//! 127.0.0.1:6379 (nothing is flushed); the outage test runs a private
//! `redis-server` it can stop.

#[allow(dead_code)]
#[path = "../redis/support.rs"]
mod redis_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use coderunner::emulator::{Emulator, EmulatorConfig, Inspector};
use coderunner::event::persistence;
use coderunner::signature::WebhookSecret;
use coderunner::testing::TestApp;
use coderunner::{Before, Context, Registry};
use redis_support::{PrivateRedis, SHARED_REDIS, fresh_prefix};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const APP: &str = "dev-app";
const CLOUD: &str = "dev-cloudcode-key";
const ADMIN: &str = "admin@example.com";
const ADMIN_PASS: &str = "admin-pass";
const SECRET: &str = "whsec_ZmxlZXQtdGVzdHMtc2VjcmV0LWZvci10aGUtcnVubmVycw==";

/// The emulator with the dev app on 127.0.0.1:0; stops with `stop`.
async fn emulator(stop: &CancellationToken) -> (String, Inspector) {
    let emulator = Emulator::new(EmulatorConfig::dev()).expect("emulator starts");
    let inspect = emulator.inspect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = stop.clone();
    tokio::spawn(emulator.serve(listener, async move { stop.cancelled().await }));
    (url, inspect)
}

/// Counts the `beforeCreate` of `Count` it runs.
fn counting_registry(runs: &Arc<AtomicUsize>) -> Registry {
    let mut registry = Registry::new();
    let runs = Arc::clone(runs);
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Count",
            move |_ctx: Context, item: Value| {
                let runs = Arc::clone(&runs);
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(Before::Continue(item))
                }
            },
        )
        .unwrap();
    registry
}

/// A runner with the Redis store; stops when dropped.
async fn fleet_runner(registry: Registry, redis_url: &str, prefix: &str) -> TestApp {
    TestApp::builder()
        .without_emulator()
        .registry(registry)
        .webhook_secrets([SECRET])
        .config(&format!(
            "[redis]\nurl = \"{redis_url}\"\n[store]\nkind = \"redis\"\nprefix = \"{prefix}\"\n"
        ))
        .start()
        .await
}

/// One signed delivery, sent as is to any runner.
struct Delivery {
    headers: [(&'static str, String); 3],
    body: Vec<u8>,
}

impl Delivery {
    fn new(id: &str) -> Self {
        let task = json!({
            "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestMethodInvocation",
            "id": id, "applicationId": APP, "eventId": persistence::BEFORE_CREATE.0,
            "target": "Count", "async": false, "timeout": 2000,
            "arguments": [
                {"appId": APP, "userId": null, "userToken": null,
                 "userRoles": ["NotAuthenticatedUser"], "deviceType": "REST", "httpHeaders": {}},
                {"title": "x"}
            ]
        });
        let body = serde_json::to_vec(&task).unwrap();
        let headers = WebhookSecret::parse(SECRET).unwrap().sign_headers(&body);
        Self { headers, body }
    }

    async fn send(&self, to: SocketAddr) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("http://{to}/invoke"))
            .header("content-type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request.body(self.body.clone()).send().await.unwrap()
    }
}

async fn readyz(addr: SocketAddr) -> (u16, String) {
    match reqwest::get(format!("http://{addr}/readyz")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

async fn wait_readyz(addr: SocketAddr, status: u16, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let (now, body) = readyz(addr).await;
        if now == status {
            return body;
        }
        assert!(
            started.elapsed() < within,
            "/readyz stayed {now} ({body}), expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_accepted_by_one_replica_is_refused_by_the_others() {
    let prefix = fresh_prefix();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut replicas = Vec::new();
    let mut apps = Vec::new();
    for _ in 0..3 {
        let app = fleet_runner(counting_registry(&runs), SHARED_REDIS, &prefix).await;
        wait_readyz(app.runner_addr(), 200, Duration::from_secs(5)).await;
        replicas.push(app.runner_addr());
        apps.push(app);
    }
    let delivery = Delivery::new("fleet-1");
    assert_eq!(delivery.send(replicas[0]).await.status(), 200);
    for other in &replicas[1..] {
        let refused = delivery.send(*other).await;
        assert_eq!(refused.status(), 409);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "duplicate_delivery", "{body}");
    }
    // The replica that ran it still answers a retry with its kept reply.
    let again = delivery.send(replicas[0]).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["webhook-replayed"], "true");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "executed once in the fleet");
    drop(apps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_the_runner_is_not_ready_refuses_tasks_and_recovers() {
    let mut redis = PrivateRedis::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let app = fleet_runner(counting_registry(&runs), &redis.url(), &fresh_prefix()).await;
    let addr = app.runner_addr();
    wait_readyz(addr, 200, Duration::from_secs(5)).await;
    assert_eq!(Delivery::new("before").send(addr).await.status(), 200);

    redis.stop();
    let message = wait_readyz(addr, 503, Duration::from_secs(5)).await;
    assert!(message.contains("store"), "{message}");
    let delivery = Delivery::new("during");
    let refused = delivery.send(addr).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "store_unavailable", "{body}");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "nothing ran while Redis was down"
    );

    redis.restart();
    wait_readyz(addr, 200, Duration::from_secs(10)).await;
    // The backend's retry of the refused delivery now runs, once.
    assert_eq!(delivery.send(addr).await.status(), 200);
    assert_eq!(delivery.send(addr).await.status(), 200, "the kept reply");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    app.stop().await;
}

/// A `coderunner serve` process of the example app on a free port, in the
/// fleet of `prefix`; killed when dropped.
struct ServeProcess {
    addr: SocketAddr,
    child: std::process::Child,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_process(emulator_url: &str, prefix: &str) -> ServeProcess {
    serve_process_with(emulator_url, SHARED_REDIS, prefix, &[])
}

/// A `coderunner serve` process with its backend at `backend_url`, its
/// store in the Redis at `redis_url`, and more settings from `extra`.
fn serve_process_with(
    backend_url: &str,
    redis_url: &str,
    prefix: &str,
    extra: &[(&str, &str)],
) -> ServeProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_coderunner"))
        .arg("serve")
        .env_remove("CODERUNNER_CONFIG")
        .env("CODERUNNER__SERVER__LISTEN", addr.to_string())
        .env("CODERUNNER__SECURITY__WEBHOOK_SECRETS", SECRET)
        .env("CODERUNNER__BACKENDLESS__SERVER_URL", backend_url)
        .env("CODERUNNER__BACKENDLESS__APP_ID", APP)
        .env("CODERUNNER__BACKENDLESS__API_KEY", CLOUD)
        .env("CODERUNNER__BACKENDLESS__SUPERUSER__LOGIN", ADMIN)
        .env("CODERUNNER__BACKENDLESS__SUPERUSER__PASSWORD", ADMIN_PASS)
        .env("CODERUNNER__STORE__KIND", "redis")
        .env("CODERUNNER__STORE__PREFIX", prefix)
        .env("CODERUNNER__REDIS__URL", redis_url)
        .envs(extra.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("coderunner serve starts");
    ServeProcess { addr, child }
}

/// Logs alice in at the emulator; her id and token.
async fn alice_session(url: &str) -> (Value, Value) {
    let login: Value = reqwest::Client::new()
        .post(format!("{url}/{APP}/dev-rest-key/users/login"))
        .json(&json!({"login": "alice@example.com", "password": "alice-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (login["objectId"].clone(), login["user-token"].clone())
}

/// A signed afterCreate of post `i` by alice (the example app writes an
/// `Audit_log` row for it as the superuser), sent to `to`.
async fn send_after_create(to: SocketAddr, i: usize, alice: &(Value, Value)) -> reqwest::Response {
    let (id, token) = alice;
    let task = json!({
        "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestMethodInvocation",
        "id": format!("p{i}"), "applicationId": APP,
        "eventId": persistence::AFTER_CREATE.0, "target": "Post", "timeout": 10000,
        "arguments": [
            {"appId": APP, "userId": id, "userToken": token,
             "userRoles": ["AuthenticatedUser", "RestUser"], "deviceType": "REST", "httpHeaders": {}},
            {"title": format!("post {i}")},
            {"___jsonclass": "com.backendless.servercode.ExecutionResult",
             "result": {"objectId": format!("P{i}"), "title": format!("post {i}")}, "exception": null}
        ]
    });
    let body = serde_json::to_vec(&task).unwrap();
    let headers = WebhookSecret::parse(SECRET).unwrap().sign_headers(&body);
    let mut request = reqwest::Client::new()
        .post(format!("http://{to}/invoke"))
        .header("content-type", "application/json");
    for (name, value) in &headers {
        request = request.header(*name, value);
    }
    request.body(body).send().await.unwrap()
}

/// Sends posts `from..from + count` round-robin through `fleet`, 30 at a
/// time; each reply must carry no exception.
async fn send_batch(fleet: &[ServeProcess], alice: &(Value, Value), from: usize, count: usize) {
    use futures::StreamExt;
    let sends = (from..from + count).map(|i| async move {
        let reply = send_after_create(fleet[i % fleet.len()].addr, i, alice).await;
        assert_eq!(reply.status(), 200);
        reply.json::<Value>().await.unwrap()
    });
    let replies: Vec<Value> = futures::stream::iter(sends)
        .buffer_unordered(30)
        .collect()
        .await;
    for reply in replies {
        assert_eq!(reply["exception"], Value::Null, "{reply}");
    }
}

/// Three `coderunner serve` processes of the example app share one Redis
/// store and the emulator as their backend: afterCreate tasks spread across
/// them (3,000), each writing an `Audit_log` row as the superuser, cause
/// exactly one superuser login, as the emulator counts it, and one re-login
/// after the backend ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_log_the_superuser_in_once() {
    let stop = CancellationToken::new();
    let (url, inspect) = emulator(&stop).await;
    let prefix = fresh_prefix();
    let fleet: Vec<ServeProcess> = (0..3).map(|_| serve_process(&url, &prefix)).collect();
    for replica in &fleet {
        wait_readyz(replica.addr, 200, Duration::from_secs(30)).await;
    }
    let alice = alice_session(&url).await;

    send_batch(&fleet, &alice, 0, 3000).await;
    assert_eq!(
        inspect.rows("Audit_log").len(),
        3000,
        "every task wrote its row"
    );
    assert_eq!(
        inspect.login_count(ADMIN),
        1,
        "one superuser login for the fleet"
    );

    // The backend ends the session: one re-login for the whole fleet.
    assert!(inspect.expire_sessions(ADMIN) > 0);
    send_batch(&fleet, &alice, 3000, 300).await;
    assert_eq!(inspect.rows("Audit_log").len(), 3300);
    assert_eq!(inspect.login_count(ADMIN), 2, "one re-login for the fleet");
    drop(fleet);
    stop.cancel();
}

/// The emulator at `url` behind a proxy that never answers a login: a
/// superuser login sent through it hangs for as long as its sender lives,
/// everything else is passed on.
async fn login_never_answers(url: &str, stop: &CancellationToken) -> String {
    use axum::body::Bytes;
    use axum::extract::{Request, State};
    use axum::response::IntoResponse;

    async fn pass_on(State(upstream): State<String>, request: Request) -> axum::response::Response {
        if request.uri().path().ends_with("/users/login") {
            return std::future::pending().await;
        }
        let (parts, body) = request.into_parts();
        let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let mut forwarded = reqwest::Client::new()
            .request(parts.method, format!("{upstream}{}", parts.uri))
            .body(body);
        for (name, value) in &parts.headers {
            if name != "host" {
                forwarded = forwarded.header(name, value);
            }
        }
        let reply = forwarded.send().await.unwrap();
        let status = reply.status();
        let headers = reply.headers().clone();
        let body = reply.bytes().await.unwrap();
        (status, headers, body).into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .fallback(pass_on)
        .with_state(url.to_owned());
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

/// Two `coderunner serve` processes of one fleet. One is killed (SIGKILL)
/// while it holds the fleet's login lease, in the middle of a login its
/// backend never answers; the other, already waiting for that lease with
/// a task that needs the superuser, logs in once the lease lapses and its
/// task succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_process_killed_mid_login_does_not_block_the_fleet_past_its_lease() {
    let stop = CancellationToken::new();
    let (url, inspect) = emulator(&stop).await;
    let hanging = login_never_answers(&url, &stop).await;
    let prefix = fresh_prefix();
    let lease = Duration::from_millis(3_000);
    let lease_env = [("CODERUNNER__STORE__SESSION_LEASE_MS", "3000")];
    let alice = alice_session(&url).await;
    let mut doomed = serve_process_with(&hanging, SHARED_REDIS, &prefix, &lease_env);
    let survivor = serve_process_with(&url, SHARED_REDIS, &prefix, &lease_env);
    wait_readyz(doomed.addr, 200, Duration::from_secs(30)).await;
    wait_readyz(survivor.addr, 200, Duration::from_secs(30)).await;

    let to = doomed.addr;
    let pending = {
        let alice = alice.clone();
        tokio::spawn(async move {
            // Its reply never comes: the process dies first.
            let _ = tokio::time::timeout(Duration::from_secs(20), send_after_create(to, 0, &alice))
                .await;
        })
    };
    // It took the lease and is logging in through the silent proxy.
    let client = redis::Client::open(SHARED_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let lease_key = format!("{prefix}session:lease");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held: bool = redis::cmd("EXISTS")
            .arg(&lease_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if held {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the doomed process never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taken = Instant::now();

    // The survivor's task waits for the lease; the holder dies meanwhile.
    let waiting = {
        let alice = alice.clone();
        let to = survivor.addr;
        tokio::spawn(async move { send_after_create(to, 1, &alice).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    doomed.child.kill().unwrap(); // SIGKILL: nothing of it runs any more
    doomed.child.wait().unwrap();
    pending.abort();

    let reply = waiting.await.unwrap();
    let served = taken.elapsed();
    assert_eq!(reply.status(), 200);
    let reply: Value = reply.json().await.unwrap();
    assert_eq!(reply["exception"], Value::Null, "{reply}");
    assert!(
        served < lease + Duration::from_millis(1_500),
        "the survivor logged in within the lease time: {served:?}"
    );
    assert_eq!(inspect.rows("Audit_log").len(), 1, "the survivor's row");
    assert_eq!(inspect.login_count(ADMIN), 1, "one login, by the survivor");
    stop.cancel();
}

/// Three `coderunner serve` processes through a Redis outage: while it is
/// down every replica is not ready and refuses tasks with 503 (nothing
/// runs); when it is back (empty: it keeps nothing on disk) they serve
/// again by themselves, still on the one superuser session they had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_rides_out_a_redis_outage_with_one_session() {
    let mut redis = PrivateRedis::start();
    let stop = CancellationToken::new();
    let (url, inspect) = emulator(&stop).await;
    let prefix = fresh_prefix();
    let fleet: Vec<ServeProcess> = (0..3)
        .map(|_| serve_process_with(&url, &redis.url(), &prefix, &[]))
        .collect();
    for replica in &fleet {
        wait_readyz(replica.addr, 200, Duration::from_secs(30)).await;
    }
    let alice = alice_session(&url).await;
    send_batch(&fleet, &alice, 0, 300).await;
    assert_eq!(inspect.login_count(ADMIN), 1);

    redis.stop();
    for (n, replica) in fleet.iter().enumerate() {
        let message = wait_readyz(replica.addr, 503, Duration::from_secs(10)).await;
        assert!(message.contains("store"), "{message}");
        let refused = send_after_create(replica.addr, 1000 + n, &alice).await;
        assert_eq!(refused.status(), 503);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "store_unavailable", "{body}");
    }
    assert_eq!(
        inspect.rows("Audit_log").len(),
        300,
        "nothing ran while Redis was down"
    );

    redis.restart();
    for replica in &fleet {
        wait_readyz(replica.addr, 200, Duration::from_secs(15)).await;
    }
    // The refused deliveries, retried, run once each; then more work.
    for (n, replica) in fleet.iter().enumerate() {
        let retried = send_after_create(replica.addr, 1000 + n, &alice).await;
        assert_eq!(retried.status(), 200);
    }
    send_batch(&fleet, &alice, 2000, 300).await;
    assert_eq!(inspect.rows("Audit_log").len(), 603);
    assert_eq!(
        inspect.login_count(ADMIN),
        1,
        "one session for the fleet afterwards: each replica kept the token it holds"
    );
    drop(fleet);
    stop.cancel();
}
