//! Dispatch throughput: the runner's `/invoke` against a bare axum server
//! doing the same signature check and JSON parse (the limit), side by side.
//!
//! Run: `cargo bench --bench dispatch -- [tasks] [concurrency]`
//! Both servers run in this process on 127.0.0.1; requests are signed ahead
//! of time so signing costs are not measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use coderunner::config::Config;
use coderunner::event::persistence;
use coderunner::runner::Runner;
use coderunner::signature::{self, SignedHeaders, Verifier, WebhookSecret};
use coderunner::{Before, Context, HandlerError, Registry};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_YmVuY2htYXJrLXNlY3JldC1mb3ItZGlzcGF0Y2g=";

async fn keep(_ctx: Context, post: Value) -> Result<Before<Value>, HandlerError> {
    Ok(Before::Continue(post))
}

async fn start_runner() -> String {
    let mut registry = Registry::new();
    registry
        .before(persistence::BEFORE_CREATE, "Post", keep)
        .unwrap();
    let config = Config::from_toml(&format!(
        "[security]\nwebhook_secrets = [\"{SECRET}\"]\nseen_ids_capacity = 2000000\n[log]\nlevel = \"warn\""
    ))
    .unwrap();
    let runner = Runner::new(&config, registry).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runner.serve(listener, CancellationToken::new()));
    format!("http://{addr}/invoke")
}

async fn start_bare() -> String {
    let verifier = Arc::new(Verifier::new(
        vec![WebhookSecret::parse(SECRET).unwrap()],
        signature::DEFAULT_TOLERANCE,
    ));
    let app = Router::new().route(
        "/invoke",
        post(move |headers: HeaderMap, body: Bytes| {
            let verifier = Arc::clone(&verifier);
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                let signed = SignedHeaders {
                    id: h(signature::ID_HEADER),
                    timestamp: h(signature::TIMESTAMP_HEADER),
                    signature: h(signature::SIGNATURE_HEADER),
                };
                if verifier.verify(signed, &body, signature::unix_now()).is_err() {
                    return (StatusCode::UNAUTHORIZED, Bytes::new());
                }
                let task: Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(_) => return (StatusCode::BAD_REQUEST, Bytes::new()),
                };
                let reply = json!({"requestId": task["id"], "arguments": task["arguments"], "exception": null});
                (StatusCode::OK, Bytes::from(serde_json::to_vec(&reply).unwrap()))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/invoke")
}

/// Signature headers and body of one pre-signed request.
type Signed = (Vec<(&'static str, String)>, Vec<u8>);

fn requests(n: usize) -> Vec<Signed> {
    let secret = WebhookSecret::parse(SECRET).unwrap();
    (0..n)
        .map(|i| {
            let body = serde_json::to_vec(&json!({
                "id": format!("bench-{i}"), "eventId": 100, "target": "Post", "timeout": 5000,
                "arguments": [
                    {"appId": "bench", "userId": "U", "userToken": "T", "userRoles": ["AuthenticatedUser"], "deviceType": "REST", "httpHeaders": {}},
                    {"___class": "Post", "title": "A benchmark post", "body": "x".repeat(200)}
                ]
            }))
            .unwrap();
            let headers = secret.sign_headers(&body).to_vec();
            (headers, body)
        })
        .collect()
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(url: &str, tasks: usize, concurrency: usize) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let reqs = Arc::new(parking_lot::Mutex::new(requests(tasks)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, reqs, url) = (client.clone(), Arc::clone(&reqs), url.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some((headers, body)) = reqs.lock().pop() else {
                    break;
                };
                let mut req = client.post(&url).header("content-type", "application/json");
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                let t = Instant::now();
                let resp = req.body(body).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(tasks);
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    Figures {
        per_second: tasks as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

const ROUNDS: usize = 5;

fn median(mut rounds: Vec<Figures>) -> Figures {
    rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    rounds.swap_remove(rounds.len() / 2)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--") && !a.starts_with("only="));
    let tasks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let bare = start_bare().await;
    let runner = start_runner().await;
    // `only=bare` or `only=runner`: one server alone, for instruction counts
    // under `valgrind --tool=callgrind` (repeatable where timings are not).
    if let Some(only) = std::env::args().find_map(|a| a.strip_prefix("only=").map(str::to_owned)) {
        let url = if only == "bare" { &bare } else { &runner };
        let f = load(url, tasks, concurrency).await;
        println!("{only}: {tasks} tasks, {:.0} tasks/s", f.per_second);
        return;
    }
    // Warm up both (connections, allocator), then run them back to back in
    // pairs so that the machine's drifting speed hits both alike; the ratio
    // of each pair is the figure that matters.
    load(&bare, 2_000, concurrency).await;
    load(&runner, 2_000, concurrency).await;
    println!("dispatch benchmark: {tasks} signed tasks per round, {concurrency} concurrent connections, loopback, {ROUNDS} paired rounds");
    println!(
        "{:<7} {:>14} {:>14} {:>8}",
        "round", "bare tasks/s", "runner tasks/s", "ratio"
    );
    let (mut bares, mut runners, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let b = load(&bare, tasks, concurrency).await;
        let r = load(&runner, tasks, concurrency).await;
        let ratio = r.per_second / b.per_second;
        println!(
            "{round:<7} {:>14.0} {:>14.0} {:>8.2}",
            b.per_second, r.per_second, ratio
        );
        bares.push(b);
        runners.push(r);
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let (b, r) = (median(bares), median(runners));
    println!();
    println!(
        "{:<28} {:>12} {:>10} {:>10}",
        "median round", "tasks/s", "p50", "p99"
    );
    println!(
        "{:<28} {:>12.0} {:>10.2?} {:>10.2?}",
        "bare axum (verify + parse)", b.per_second, b.p50, b.p99
    );
    println!(
        "{:<28} {:>12.0} {:>10.2?} {:>10.2?}",
        "coderunner /invoke", r.per_second, r.p50, r.p99
    );
    println!(
        "coderunner / bare, median of the paired ratios: {:.2}",
        ratios[ratios.len() / 2]
    );
}
