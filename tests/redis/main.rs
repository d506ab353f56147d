//! The Redis transport against a real Redis: tasks pushed as a Backendless
//! server pushes them (spec §1-§2 of the transport spec), replies read from
//! the task's Pub/Sub channel.

#[path = "../../handlers/mod.rs"]
#[allow(dead_code)]
mod app;
mod management;
mod services;
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coderunner::event::persistence;
use coderunner::{After, Before, Context, HandlerError, Outcome, Registry};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{PrivateRedis, RedisRunner, context, decode_reply, method_task, now_ms};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);

fn example_app() -> Registry {
    let mut registry = Registry::new();
    app::register(&mut registry).unwrap();
    registry
}

/// Handlers whose run time the task chooses, counting how many run at once.
#[derive(Default)]
struct Load {
    running: AtomicUsize,
    most: AtomicUsize,
    done: AtomicUsize,
}

fn slow_registry(load: Arc<Load>) -> Registry {
    let mut registry = Registry::new();
    let after = Arc::clone(&load);
    registry
        .before(
            persistence::BEFORE_REMOVE,
            "Slow",
            move |_ctx: Context, ms: u64| {
                let load = Arc::clone(&load);
                async move {
                    let now = load.running.fetch_add(1, Ordering::SeqCst) + 1;
                    load.most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    load.running.fetch_sub(1, Ordering::SeqCst);
                    load.done.fetch_add(1, Ordering::SeqCst);
                    Ok(Before::Continue(ms))
                }
            },
        )
        .unwrap()
        .after_async(
            persistence::AFTER_CREATE,
            "Order",
            move |_ctx: Context, _item: Value, _result: Outcome<Value>| {
                let load = Arc::clone(&after);
                async move {
                    load.done.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, HandlerError>(After::<Value>::Keep)
                }
            },
        )
        .unwrap();
    registry
}

/// A runner with `slots` task slots and `count` slow tasks of `ms` pushed,
/// named `{name}{i}`, their replies followed on one pattern subscription.
async fn pushed(
    load: &Arc<Load>,
    slots: usize,
    name: &str,
    count: usize,
    ms: u64,
) -> (RedisRunner, support::Driver, redis::aio::PubSub) {
    let runner = RedisRunner::start_on(
        slow_registry(Arc::clone(load)),
        false,
        support::SHARED_REDIS,
        &format!("max_in_flight = {slots}"),
    )
    .await;
    let driver = runner.driver();
    let mut pubsub = driver.client.get_async_pubsub().await.unwrap();
    pubsub
        .psubscribe(format!("{}RESP:*", driver.prefix))
        .await
        .unwrap();
    for i in 0..count {
        let id = format!("{name}{i}");
        let mut task = method_task(&id, 106, "Slow", json!([context(), ms]));
        task["responseChannelId"] = json!(driver.channel(&id));
        driver.push(&task).await;
    }
    (runner, driver, pubsub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_answers_in_both_compression_modes_with_one_reply() {
    for compression in [false, true] {
        let runner = RedisRunner::start(example_app(), compression).await;
        let driver = runner.driver();

        let task = method_task(
            "create",
            100,
            "Post",
            json!([context(), {"___class": "Post", "title": "  Hello  "}]),
        );
        let reply = driver.call(task, WAIT, QUIET).await.single(compression);
        assert_eq!(
            reply["___jsonclass"],
            "com.backendless.coderunner.commons.protocol.InvocationResult"
        );
        assert_eq!(reply["requestId"], "create");
        assert_eq!(reply["exception"], Value::Null);
        assert!(reply.get("httpResponseStatusCode").is_none(), "{reply}");
        assert_eq!(reply["httpResponseCookies"], json!([]));
        assert_eq!(
            reply["arguments"][1]["title"], "Hello",
            "compression {compression}: {reply}"
        );
        assert_eq!(reply["arguments"][0]["userId"], "U1");
        assert_eq!(reply["arguments"][0]["httpResponseHeaders"], json!({}));

        // A rejection: the exception, and no arguments.
        let task = method_task(
            "reject",
            100,
            "Post",
            json!([context(), {"___class": "Post", "title": "   "}]),
        );
        let reply = driver.call(task, WAIT, QUIET).await.single(compression);
        assert_eq!(reply["exception"]["code"], app::posts::INVALID_TITLE);
        assert_eq!(reply["exception"]["httpStatusCode"], 400);
        assert!(reply.get("arguments").is_none(), "{reply}");

        // A reply over the threshold is zlib-framed when compression is on.
        let body = "x".repeat(2000);
        let task = method_task(
            "long",
            100,
            "Post",
            json!([context(), {"title": "t", "body": body}]),
        );
        let replies = driver.call(task, WAIT, QUIET).await;
        let reply = replies.single(compression);
        assert_eq!(
            reply["arguments"][1]["body"].as_str().map(str::len),
            Some(2000)
        );
        if compression {
            assert_eq!(replies.messages[0][0], 1, "a long reply is compressed");
            assert!(replies.messages[0].len() < 1000);
        } else {
            assert_eq!(replies.messages[0][0], b'{');
        }
        runner.app.shutdown();
        runner.app.wait().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_references_and_dates_are_resolved_before_the_handler_runs() {
    let runner = RedisRunner::start(example_app(), false).await;
    // 0 = the arguments array, 1 = the context, 2 = userRoles, 3 = httpHeaders, 4 = the post.
    let args = json!([context(), {"title": " T ", "when": "1764460800000", "___dates___": ["1764460800000"],
                                  "copy": {"___objectref": 3}}]);
    let reply = runner
        .driver()
        .call(method_task("refs", 100, "Post", args), WAIT, QUIET)
        .await
        .single(false);
    let post = &reply["arguments"][1];
    assert_eq!(post["title"], "T");
    assert_eq!(post["when"], json!(1_764_460_800_000_i64));
    assert_eq!(post["copy"], json!({}), "{post}");
    assert!(post.get("___dates___").is_none());
    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_task_is_dropped_without_a_reply_and_counted() {
    let runner = RedisRunner::start(example_app(), false).await;
    let mut task = method_task("stale", 100, "Post", json!([context(), {"title": "x"}]));
    task["timestamp"] = json!(now_ms() - 60_000);
    task["invocationOverheadTimeoutInMillis"] = json!(1000);
    let replies = runner
        .driver()
        .call(task, Duration::from_millis(800), QUIET)
        .await;
    assert!(replies.messages.is_empty(), "a stale task gets no reply");
    let metrics = runner.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("coderunner_redis_tasks_dropped_total{reason=\"stale\"}")),
        "{metrics}"
    );
    // A fresh task with the same fields is answered.
    let mut task = method_task("fresh", 100, "Post", json!([context(), {"title": "x"}]));
    task["invocationOverheadTimeoutInMillis"] = json!(1000);
    assert_eq!(
        runner.driver().call(task, WAIT, QUIET).await.messages.len(),
        1
    );
    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_with_32_in_flight_all_get_their_own_reply_once() {
    let load = Arc::new(Load::default());
    let (runner, driver, mut pubsub) = pushed(&load, 32, "t", 1000, 2).await;
    let mut stream = pubsub.on_message();
    let mut seen = HashSet::new();
    let mut total = 0;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(20), stream.next()).await
    {
        let reply = decode_reply(message.get_payload_bytes(), false);
        let id = reply["requestId"].as_str().unwrap().to_owned();
        assert_eq!(message.get_channel_name(), driver.channel(&id));
        assert_eq!(reply["exception"], Value::Null, "{reply}");
        assert_eq!(reply["arguments"][1], 2);
        seen.insert(id);
        total += 1;
        if total == 1000 {
            break;
        }
    }
    assert_eq!(seen.len(), 1000, "every task answered");
    // Nothing more arrives: each reply was published once.
    assert!(
        tokio::time::timeout(QUIET, stream.next()).await.is_err(),
        "an extra reply"
    );
    let most = load.most.load(Ordering::SeqCst);
    assert!(most <= 32, "{most} handlers ran at once with 32 slots");
    assert!(most > 1, "tasks ran concurrently");
    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_task_is_answered_with_an_empty_message_and_still_runs() {
    let load = Arc::new(Load::default());
    let runner = RedisRunner::start(slow_registry(Arc::clone(&load)), false).await;
    let result = json!({"___jsonclass": "com.backendless.servercode.ExecutionResult", "result": {"objectId": "O1"}, "exception": null});
    let mut task = method_task(
        "async",
        101,
        "Order",
        json!([context(), {"title": "x"}, result]),
    );
    task["async"] = json!(true);
    let replies = runner.driver().call(task, WAIT, QUIET).await;
    assert_eq!(replies.messages, vec![Vec::<u8>::new()]);
    for _ in 0..100 {
        if load.done.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(load.done.load(Ordering::SeqCst), 1, "the handler ran");
    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyse_server_code_is_answered_with_the_model() {
    let runner = RedisRunner::start(example_app(), true).await;
    let task = json!({"___jsonclass": "com.backendless.coderunner.commons.protocol.RequestActionInvocation",
                      "id": "analyse", "applicationId": "A", "timestamp": now_ms(), "timeout": 5000,
                      "actionType": "ANALYSE_SERVER_CODE"});
    let reply = runner.driver().call(task, WAIT, QUIET).await.single(true);
    let model = &reply["arguments"];
    assert!(
        model.is_object(),
        "the model is an object, not an array: {reply}"
    );
    let handlers = model["handlers"].as_array().unwrap();
    // Every handler but the timer, which the model lists with its schedule.
    assert_eq!(handlers.len(), example_app().handlers().len() - 1);
    assert_eq!(model["timers"][0]["name"], "hourlyDigest");
    assert!(
        handlers
            .iter()
            .any(|h| h["eventId"] == 100 && h["target"] == "Post")
    );

    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_tasks_get_the_official_runner_s_messages() {
    let runner = RedisRunner::start(example_app(), false).await;
    let driver = runner.driver();
    let cases = [
        (
            method_task("nohandler", 103, "Post", json!([context(), {}, {}])),
            "afterFindById(Post) event handler does not exist",
        ),
        (
            method_task("unknown", 99_999, "Post", json!([context()])),
            "Integrity violation. Unknown event id: [99999]",
        ),
        (
            json!({"___jsonclass": "com.example.Other", "id": "class", "timestamp": now_ms(), "timeout": 5000}),
            "Unknown task [com.example.Other]",
        ),
        (
            json!({"___jsonclass": "com.backendless.coderunner.commons.protocol.RequestActionInvocation",
                   "id": "action", "actionType": "FLY"}),
            "Unknown action type: [FLY]",
        ),
    ];
    for (task, message) in cases {
        let reply = driver.call(task, WAIT, QUIET).await.single(false);
        assert_eq!(reply["exception"]["exceptionMessage"], message, "{reply}");
        assert_eq!(reply["exception"]["code"], 0);
        assert!(reply.get("arguments").is_none());
    }
    // An unparseable task gets no reply and the loop goes on.
    driver.push_raw(b"{not json".to_vec()).await;
    let task = method_task("after", 100, "Post", json!([context(), {"title": "x"}]));
    assert_eq!(driver.call(task, WAIT, QUIET).await.messages.len(), 1);
    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_task_stops_the_runner_gracefully_without_a_reply() {
    for shutdown in [
        method_task("stop", 32768, "*", json!([])),
        json!({"___jsonclass": "com.backendless.coderunner.commons.protocol.RequestActionInvocation",
               "id": "stop", "actionType": "SHUTDOWN"}),
    ] {
        let load = Arc::new(Load::default());
        let runner = RedisRunner::start(slow_registry(Arc::clone(&load)), false).await;
        let driver = runner.driver();
        // A task in flight when the shutdown arrives still gets its reply.
        let slow = tokio::spawn({
            let driver = driver.clone();
            async move {
                driver
                    .call(
                        method_task("slow", 106, "Slow", json!([context(), 500])),
                        WAIT,
                        QUIET,
                    )
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        let replies = driver
            .call(shutdown, Duration::from_millis(500), QUIET)
            .await;
        assert!(replies.messages.is_empty(), "SHUTDOWN gets no reply");
        let stopped = tokio::time::timeout(Duration::from_secs(10), runner.app.wait()).await;
        assert!(
            matches!(stopped, Ok(Ok(()))),
            "the runner stopped cleanly: {stopped:?}"
        );
        assert_eq!(slow.await.unwrap().single(false)["arguments"][1], 500);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_50_tasks_in_flight_publishes_all_50_replies() {
    let load = Arc::new(Load::default());
    let (runner, driver, mut pubsub) = pushed(&load, 64, "s", 50, 700).await;
    for _ in 0..200 {
        if load.running.load(Ordering::SeqCst) == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        load.running.load(Ordering::SeqCst),
        50,
        "all 50 are in flight"
    );
    // What SIGTERM does (`runner::shutdown_signal` cancels this token).
    runner.app.shutdown();
    // A task pushed after the stop is left in Redis for another runner.
    let mut late = method_task("late", 106, "Slow", json!([context(), 1]));
    late["responseChannelId"] = json!(driver.channel("late"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    driver.push(&late).await;
    let mut stream = pubsub.on_message();
    let mut ids = HashSet::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await
    {
        ids.insert(
            decode_reply(message.get_payload_bytes(), false)["requestId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 50, "{ids:?}");
    assert!(!ids.contains("late"));
    let stopped = tokio::time::timeout(Duration::from_secs(10), runner.app.wait()).await;
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
    let mut conn = driver
        .client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let left: i64 = redis::cmd("LLEN")
        .arg(&driver.queue)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 1, "the late task is still queued");
    let _: i64 = redis::cmd("DEL")
        .arg(&driver.queue)
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_task_readiness_drops_and_the_reply_still_arrives() {
    let mut redis = PrivateRedis::start();
    let load = Arc::new(Load::default());
    let runner =
        RedisRunner::start_on(slow_registry(Arc::clone(&load)), false, &redis.url(), "").await;
    let driver = runner.driver();
    let mut task = method_task("survivor", 106, "Slow", json!([context(), 2000]));
    task["responseChannelId"] = json!(driver.channel("survivor"));
    driver.push(&task).await;
    for _ in 0..200 {
        if load.running.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(load.running.load(Ordering::SeqCst), 1, "the task was taken");

    redis.stop();
    let mut saw_unready = false;
    for _ in 0..100 {
        if runner.readyz().await == 503 {
            saw_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_unready, "/readyz turns 503 while Redis is down");
    redis.restart();
    let mut pubsub = driver.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(driver.channel("survivor")).await.unwrap();
    let mut stream = pubsub.on_message();
    let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the reply is published once Redis is back")
        .unwrap();
    let reply = decode_reply(message.get_payload_bytes(), false);
    assert_eq!(reply["requestId"], "survivor");
    assert!(
        tokio::time::timeout(QUIET, stream.next()).await.is_err(),
        "published once"
    );
    runner.wait_ready().await;
    // And new tasks flow again.
    let reply = driver
        .call(
            method_task("after", 106, "Slow", json!([context(), 1])),
            WAIT,
            QUIET,
        )
        .await
        .single(false);
    assert_eq!(reply["arguments"][1], 1);
    runner.app.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_handler_logs_reaches_the_apps_log_once_per_task() {
    use coderunner::emulator::{Emulator, EmulatorConfig};
    use tracing_subscriber::layer::SubscriberExt;
    // The layer `telemetry::init_logging` installs, without printing.
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(coderunner::AppLogLayer),
    );
    let emulator = Emulator::new(EmulatorConfig::dev()).unwrap();
    let inspect = emulator.inspect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(emulator.serve(listener, std::future::pending()));

    let mut registry = Registry::new();
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Order",
            |_: Context, order: Value| async move {
                tracing::info!(total = 3, "checking the order");
                tracing::warn!("the order has no title");
                Ok(Before::Continue(order))
            },
        )
        .unwrap();
    let runner = RedisRunner::start(registry, false).await;
    let mut task = method_task(
        "logged",
        100,
        "Order",
        json!([{"appId": "dev-app"}, {"total": 3}]),
    );
    task["applicationId"] = json!("dev-app");
    task["initAppData"] = json!({"url": url, "apiKey": "dev-cloudcode-key"});
    let reply = runner.driver().call(task, WAIT, QUIET).await.single(false);
    assert_eq!(reply["exception"], Value::Null);

    let mut lines = Vec::new();
    for _ in 0..200 {
        lines = inspect.log_messages();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shown: Vec<(String, String, String)> = lines
        .iter()
        .map(|l| (l.logger.clone(), l.level.clone(), l.message.clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            (
                "SERVER_CODE".to_owned(),
                "INFO".to_owned(),
                "[logged] checking the order total=3".to_owned()
            ),
            (
                "SERVER_CODE".to_owned(),
                "WARN".to_owned(),
                "[logged] the order has no title".to_owned()
            ),
        ]
    );
    runner.app.shutdown();
}
