//! Heap allocations per task on the dispatch path, counted by a counting
//! global allocator: a regression that adds allocations to every task fails
//! here. Its own test binary, because the count is process-wide.
//!
//! Each task goes through the runner's router in-process (`oneshot`), as
//! `POST /invoke` does under `coderunner serve` minus hyper: signature
//! check, seen-id set, decode, routing, the example app's `beforeCreate`
//! handler, span, metrics, the reply's serialisation and its log lines at
//! the default level (`info`, formatted, written nowhere).

#[path = "../../handlers/mod.rs"]
mod app;

use std::alloc::System;

use axum::body::Body;
use axum::http::Request;
use coderunner::config::Config;
use coderunner::signature::WebhookSecret;
use coderunner::{Registry, Runner};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SECRET: &str = "whsec_YmVuY2htYXJrLXNlY3JldC1mb3ItZGlzcGF0Y2g=";

/// The recorded figure (docs/benchmarks.md, "Allocations per task"):
/// allocations and reallocations per task, measured plus a little slack.
/// Lower it when an improvement lands; raise it only with a reason there.
const MAX_ALLOCATIONS_PER_TASK: f64 = 84.0;

/// Tasks run before counting (lazy initialisation, first growth of the
/// seen-id set) and counted.
const WARM_UP: usize = 2_000;
const COUNTED: usize = 2_000;

fn request(secret: &WebhookSecret, i: usize) -> Request<Body> {
    let body = serde_json::to_vec(&serde_json::json!({
        "id": format!("alloc-{i}"), "eventId": 100, "target": "Post", "timeout": 5000,
        "arguments": [
            {"appId": "bench", "userId": "U", "userToken": "T", "userRoles": ["AuthenticatedUser"], "deviceType": "REST", "httpHeaders": {}},
            {"___class": "Post", "title": "A benchmark post", "body": "x".repeat(200)}
        ]
    }))
    .unwrap();
    let mut builder = Request::post("/invoke")
        .header("content-type", "application/json")
        .header("content-length", body.len());
    for (name, value) in secret.sign_headers(&body) {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body)).unwrap()
}

/// Allocations per task with the console on (`[console] enabled`): the
/// task's record in the ring (its id and target, copied to their own size)
/// and its call log (one shared list). Measured 3 above the figure without
/// the console; the bound is the same slack above that.
const MAX_ALLOCATIONS_PER_TASK_WITH_CONSOLE: f64 = MAX_ALLOCATIONS_PER_TASK + 4.0;

/// Runs `COUNTED` tasks (after `WARM_UP`) through a runner built from
/// `config_toml`; the allocations per task.
fn allocations_per_task(config_toml: &str) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = Config::from_toml(config_toml).unwrap();
        let mut registry = Registry::new();
        app::register(&mut registry).unwrap();
        let runner = Runner::new(&config, registry).unwrap();
        let router = runner.router();
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let send = |request: Request<Body>| {
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await.unwrap();
                assert_eq!(response.status(), 200);
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap()
                    .len()
            }
        };
        for i in 0..WARM_UP {
            send(request(&secret, i)).await;
        }
        let requests: Vec<_> = (WARM_UP..WARM_UP + COUNTED)
            .map(|i| request(&secret, i))
            .collect();
        let region = Region::new(GLOBAL);
        for request in requests {
            send(request).await;
        }
        let change = region.change();
        let per_task = (change.allocations + change.reallocations) as f64 / COUNTED as f64;
        let bytes_per_task = change.bytes_allocated as f64 / COUNTED as f64;
        println!("{per_task:.1} allocations and {bytes_per_task:.0} bytes per task");
        per_task
    })
}

/// One test, so that the two measurements never overlap (the count is
/// process-wide). That the console's ring stays flat over a million records
/// is a unit test of `runner` (it counts in a process of its own too).
#[test]
fn a_task_allocates_no_more_than_the_recorded_count() {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let base = format!("[security]\nwebhook_secrets = [\"{SECRET}\"]\n");
    let per_task = allocations_per_task(&base);
    assert!(
        per_task <= MAX_ALLOCATIONS_PER_TASK,
        "{per_task:.1} allocations per task, more than the recorded {MAX_ALLOCATIONS_PER_TASK}"
    );
    let with_console = allocations_per_task(&format!(
        "{base}[console]\nenabled = true\nring_size = 100\n"
    ));
    assert!(
        with_console <= MAX_ALLOCATIONS_PER_TASK_WITH_CONSOLE,
        "with the console: {with_console:.1} allocations per task, more than the recorded \
         {MAX_ALLOCATIONS_PER_TASK_WITH_CONSOLE}"
    );
}
