//! Handlers that block their thread: the server keeps answering and the
//! task gets the timeout reply at its deadline; the blocked handler keeps
//! its task slot until it returns.

use std::time::{Duration, Instant};

use coderunner::event::persistence;
use coderunner::event::wire::TIMEOUT_MESSAGE;
use coderunner::signature::unix_now;
use coderunner::{Before, Context, Registry};
use serde_json::Value;

use crate::probe::{self, Executions, HealthWatch, deliver};
use crate::support::{SECRET, TestRunner};

/// How long a blocking handler holds its thread.
const BLOCKED_FOR: Duration = Duration::from_secs(3);

fn blocking(executions: &Executions) -> Registry {
    let mut registry = Registry::new();
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Sleep",
            |_ctx: Context, row: Value| async move {
                std::thread::sleep(BLOCKED_FOR);
                Ok(Before::Continue(row))
            },
        )
        .unwrap()
        .before(
            persistence::BEFORE_CREATE,
            "Spin",
            |_ctx: Context, row: Value| async move {
                let until = Instant::now() + BLOCKED_FOR;
                let mut spins = 0u64;
                while Instant::now() < until {
                    spins = std::hint::black_box(spins + 1);
                }
                Ok(Before::Continue(row))
            },
        )
        .unwrap();
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
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_that_block_their_thread_do_not_freeze_the_server() {
    let _serial = probe::one_at_a_time().await;
    let executions = Executions::default();
    let runner = TestRunner::start_config(
        blocking(&executions),
        &format!(
            "[security]\nwebhook_secrets = [\"{SECRET}\"]\n\
             [server]\nmax_tasks_in_flight = 4\n[tasks]\nhandler_threads = 2"
        ),
    )
    .await;
    let watch = HealthWatch::start(runner.addr);
    let (addr, secret, http) = (runner.addr, &runner.secret, &runner.http);

    // Four blocking handlers: twice the handler threads, on a 2-core machine.
    let started = Instant::now();
    let blocked: Vec<_> = ["Sleep", "Spin", "Sleep", "Sleep"]
        .into_iter()
        .enumerate()
        .map(|(i, target)| {
            let body = probe::before_create(&format!("blocked-{i}"), target, 500, false);
            let (secret, http) = (secret.clone(), http.clone());
            tokio::spawn(async move {
                let reply = deliver(
                    &http,
                    addr,
                    &secret,
                    &format!("msg_b{i}"),
                    unix_now(),
                    &body,
                )
                .await;
                (reply, started.elapsed())
            })
        })
        .collect();
    for task in blocked {
        let (reply, elapsed) = task.await.unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(
            reply.body["exception"]["exceptionMessage"], TIMEOUT_MESSAGE,
            "{:?}",
            reply.body
        );
        assert!(
            elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(2500),
            "the timeout reply came after {elapsed:?}, not at the 500 ms deadline"
        );
    }

    // The blocked handlers still hold their slots: a fifth task is refused
    // for load (and not remembered: its retry later runs).
    let body = probe::before_create("after", "Post", 1000, false);
    let busy = deliver(http, addr, secret, "msg_after", unix_now(), &body).await;
    assert_eq!(busy.status, 503, "{:?}", busy.body);
    assert_eq!(busy.body["code"], "busy");
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert_eq!(executions.of("after"), 0);

    // Once they return, tasks run again.
    tokio::time::sleep(BLOCKED_FOR).await;
    let done = deliver(http, addr, secret, "msg_after", unix_now(), &body).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert!(done.body["exception"].is_null(), "{:?}", done.body);
    assert_eq!(executions.of("after"), 1);
    watch.assert_healthy_throughout().await;
}
