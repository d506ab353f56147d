//! Caps on tasks in flight and on asynchronous tasks, and tasks of another
//! application.

use std::sync::Arc;
use std::time::Duration;

use coderunner::event::persistence;
use coderunner::signature::unix_now;
use coderunner::{Before, Context, Registry};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::probe::{self, Executions, deliver};
use crate::support::{SECRET, TestRunner};

/// `Gated` waits for a permit of `gate`; every execution is recorded.
fn gated(gate: &Arc<Semaphore>, executions: &Executions) -> Registry {
    let mut registry = Registry::new();
    let (gate, seen) = (Arc::clone(gate), executions.clone());
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Gated",
            move |ctx: Context, row: Value| {
                let (gate, seen) = (Arc::clone(&gate), seen.clone());
                async move {
                    seen.record(ctx.task_id());
                    gate.acquire().await.expect("open").forget();
                    Ok(Before::Continue(row))
                }
            },
        )
        .unwrap();
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_over_the_caps_get_503_with_retry_after_and_run_when_retried() {
    let _serial = probe::one_at_a_time().await;
    let (gate, executions) = (Arc::new(Semaphore::new(0)), Executions::default());
    let runner = TestRunner::start_config(
        gated(&gate, &executions),
        &format!(
            "[security]\nwebhook_secrets = [\"{SECRET}\"]\n\
             [server]\nmax_tasks_in_flight = 2\nmax_async_tasks = 2"
        ),
    )
    .await;
    let (addr, secret, http) = (runner.addr, runner.secret.clone(), runner.http.clone());

    for is_async in [false, true] {
        let kind = if is_async { "async" } else { "sync" };
        let send = |n: usize| {
            let (secret, http) = (secret.clone(), http.clone());
            let body = probe::before_create(&format!("{kind}-{n}"), "Gated", 5000, is_async);
            async move {
                deliver(
                    &http,
                    addr,
                    &secret,
                    &format!("msg_{kind}_{n}"),
                    unix_now(),
                    &body,
                )
                .await
            }
        };
        let held: Vec<_> = (0..2).map(|n| tokio::spawn(send(n))).collect();
        while executions.of(&format!("{kind}-1")) + executions.of(&format!("{kind}-0")) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let refused = send(2).await;
        assert_eq!(refused.status, 503, "{kind}: {:?}", refused.body);
        let code = if is_async { "async_queue_full" } else { "busy" };
        assert_eq!(refused.body["code"], code);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert_eq!(executions.of(&format!("{kind}-2")), 0);

        gate.add_permits(2);
        for reply in held {
            let reply = reply.await.unwrap();
            assert_eq!(reply.status, if is_async { 202 } else { 200 });
        }
        // Slots come back once the handlers return (async ones too).
        gate.add_permits(1);
        let mut retried = send(2).await;
        for _ in 0..50 {
            if retried.status != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            retried = send(2).await;
        }
        assert_eq!(retried.status, if is_async { 202 } else { 200 }, "{kind}");
        assert!(retried.body["exception"].is_null(), "{:?}", retried.body);
        while executions.of(&format!("{kind}-2")) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(executions.of(&format!("{kind}-2")), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_of_another_application_is_refused_naming_the_field() {
    let _serial = probe::one_at_a_time().await;
    let executions = Executions::default();
    let gate = Arc::new(Semaphore::new(100));
    let runner = TestRunner::start_config(
        gated(&gate, &executions),
        &format!(
            "[security]\nwebhook_secrets = [\"{SECRET}\"]\n[backendless]\napp_id = \"test-app\"\napi_key = \"k\""
        ),
    )
    .await;
    let (addr, secret, http) = (runner.addr, &runner.secret, &runner.http);
    let task = |id: &str, application: Value, context_app: Value| {
        serde_json::to_vec(&json!({
            "id": id, "applicationId": application, "eventId": 100, "target": "Gated",
            "arguments": [{"appId": context_app}, {"title": id}]
        }))
        .unwrap()
    };
    for (id, body, field) in [
        (
            "other-application",
            task("other-application", json!("other-app"), json!("test-app")),
            "applicationId",
        ),
        (
            "other-context",
            task("other-context", json!("test-app"), json!("other-app")),
            "arguments[0].appId",
        ),
        (
            "no-context-app",
            task("no-context-app", Value::Null, Value::Null),
            "arguments[0].appId",
        ),
    ] {
        let reply = deliver(http, addr, secret, &format!("msg_{id}"), unix_now(), &body).await;
        assert_eq!(reply.status, 400, "{id}: {:?}", reply.body);
        assert_eq!(reply.body["field"], field, "{id}");
        assert_eq!(executions.of(id), 0);
    }
    let body = task("same-app", Value::Null, json!("test-app"));
    let reply = deliver(http, addr, secret, "msg_same", unix_now(), &body).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(executions.of("same-app"), 1);
}
