//! Replay protection under a flood, and retries of a delivery whose reply
//! was lost.

use std::time::Duration;

use coderunner::event::persistence;
use coderunner::signature::unix_now;
use coderunner::{Before, Context, Registry};
use futures::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::probe::{self, Executions, HealthWatch, deliver, signed_head};
use crate::support::{SECRET, TestRunner};

/// A `beforeCreate` on `Post` that records each execution by task id;
/// `Slow` sleeps 300 ms first.
fn counting(executions: &Executions) -> Registry {
    let mut registry = Registry::new();
    let seen = executions.clone();
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Post",
            move |ctx: Context, row: Value| {
                seen.record(ctx.task_id());
                async move { Ok(Before::Continue(row)) }
            },
        )
        .unwrap();
    let seen = executions.clone();
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Slow",
            move |ctx: Context, row: Value| {
                let seen = seen.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    seen.record(ctx.task_id());
                    Ok(Before::Continue(row))
                }
            },
        )
        .unwrap();
    registry
}

async fn flood_around_a_replay(capacity: usize, flood: usize) {
    let _serial = probe::one_at_a_time().await;
    let executions = Executions::default();
    let runner = TestRunner::start_config(
        counting(&executions),
        &format!("[security]\nwebhook_secrets = [\"{SECRET}\"]\nseen_ids_capacity = {capacity}"),
    )
    .await;
    let watch = HealthWatch::start(runner.addr);
    let (addr, secret, http) = (runner.addr, &runner.secret, &runner.http);

    // The delivery an attacker captured, signed half a minute ago.
    let captured = probe::before_create("captured", "Post", 2000, false);
    let signed_at = unix_now() - 30;
    let first = deliver(http, addr, secret, "msg_captured", signed_at, &captured).await;
    assert_eq!(first.status, 200, "{:?}", first.body);

    // A flood of other valid deliveries, many times the capacity.
    let replies: Vec<(usize, u16)> = futures::stream::iter(0..flood)
        .map(|i| async move {
            let body = probe::before_create(&format!("flood-{i}"), "Post", 2000, false);
            let reply = deliver(http, addr, secret, &format!("msg_{i}"), unix_now(), &body).await;
            (i, reply.status)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut accepted = 0;
    for (i, status) in replies {
        let runs = executions.of(&format!("flood-{i}"));
        match status {
            200 => {
                accepted += 1;
                assert_eq!(runs, 1, "flood-{i}");
            }
            503 => assert_eq!(runs, 0, "flood-{i} refused yet executed"),
            other => panic!("flood-{i}: {other}"),
        }
    }
    assert!(accepted > 0);

    // The captured delivery, replayed after the flood: not executed again.
    let replay = deliver(http, addr, secret, "msg_captured", signed_at, &captured).await;
    assert_eq!(replay.status, 503, "{:?}", replay.body);
    assert_eq!(replay.body["code"], "replay_window_full");
    assert_eq!(replay.header("retry-after"), Some("1"));
    assert_eq!(executions.of("captured"), 1);
    assert_eq!(executions.max(), 1, "nothing executed twice");
    assert_eq!(executions.total(), accepted + 1);
    let metrics = runner.get("/metrics").await.1;
    assert!(
        metrics.contains("coderunner_replay_horizon_seconds"),
        "the horizon is a metric"
    );
    // Every delivery accepted past what the set holds forgot an id: at most
    // the capacity plus one per shard (16), as each shard holds its share
    // rounded up. (The process's total: other runners only add to it.)
    let forgotten: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("coderunner_replay_ids_forgotten_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("ids forgotten early are counted");
    assert!(
        forgotten >= (accepted + 1).saturating_sub(capacity + 16) as f64,
        "{forgotten} forgotten, {accepted} accepted"
    );
    watch.assert_healthy_throughout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_deliveries_cannot_flush_a_captured_one() {
    flood_around_a_replay(64, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_deliveries_cannot_flush_a_captured_one_larger_run() {
    flood_around_a_replay(1000, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_reply_was_lost_gets_the_same_reply() {
    let _serial = probe::one_at_a_time().await;
    let executions = Executions::default();
    let runner = TestRunner::start_config(
        counting(&executions),
        &format!("[security]\nwebhook_secrets = [\"{SECRET}\"]"),
    )
    .await;
    let (addr, secret, http) = (runner.addr, &runner.secret, &runner.http);
    let body = probe::before_create("slow", "Slow", 2000, false);
    let signed_at = unix_now();

    // The first delivery's connection drops before its reply.
    let mut lost = TcpStream::connect(addr).await.unwrap();
    let head = signed_head(secret, "msg_slow", signed_at, &body, body.len());
    lost.write_all(head.as_bytes()).await.unwrap();
    lost.write_all(&body).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(lost);

    // A retry while it runs is told to come back; then it gets the reply.
    let running = deliver(http, addr, secret, "msg_slow", signed_at, &body).await;
    assert_eq!(running.status, 409, "{:?}", running.body);
    assert_eq!(running.body["code"], "delivery_in_progress");
    assert_eq!(running.header("retry-after"), Some("1"));
    let mut replayed = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = deliver(http, addr, secret, "msg_slow", unix_now(), &body).await;
        if reply.status != 409 {
            replayed = Some(reply);
            break;
        }
    }
    let replayed = replayed.expect("the kept reply comes back");
    assert_eq!(replayed.status, 200, "{:?}", replayed.body);
    assert_eq!(replayed.header("webhook-replayed"), Some("true"));
    assert_eq!(replayed.body["requestId"], "slow");
    assert!(replayed.body["exception"].is_null(), "{:?}", replayed.body);
    assert_eq!(executions.of("slow"), 1, "executed once");

    // The same id with another body is refused, not executed.
    let other = probe::before_create("other", "Slow", 2000, false);
    let refused = deliver(http, addr, secret, "msg_slow", signed_at, &other).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["code"], "duplicate_delivery");
    assert_eq!(executions.of("other"), 0);
}
