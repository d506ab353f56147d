//! The runner core against the real daemon on 127.0.0.1:0.

mod deploy_doc;
mod protocol_doc;
mod services;
mod support;

use std::sync::Arc;
use std::time::Duration;

use coderunner::event::{persistence, user};
use coderunner::{After, Before, Context, HandlerError, Outcome, Registry};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Post {
    title: String,
    #[serde(rename = "___class")]
    class: String,
    #[serde(rename = "objectId", default, skip_serializing_if = "Option::is_none")]
    object_id: Option<String>,
}

/// A post as a handler saw it: caller id, caller token, row.
type SeenPost = (Option<String>, Option<String>, Post);

/// What handlers saw, for the tests to assert on.
#[derive(Default)]
struct Seen {
    posts: Mutex<Vec<SeenPost>>,
    async_done: Mutex<Vec<String>>,
    notify: tokio::sync::Notify,
}

fn registry(seen: Arc<Seen>) -> Registry {
    let mut r = Registry::new();
    let s = Arc::clone(&seen);
    r.after(
        persistence::AFTER_CREATE,
        "Post",
        move |ctx: Context, post: Post, result: Outcome<Post>| {
            let s = Arc::clone(&s);
            async move {
                let token = ctx
                    .runner()
                    .user_token
                    .as_ref()
                    .map(|t| t.expose().to_owned());
                s.posts
                    .lock()
                    .push((ctx.user_id().map(str::to_owned), token, post));
                assert!(result.into_result().is_some());
                Ok(After::Keep)
            }
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_CREATE,
        "Post",
        |_ctx: Context, mut post: Post| async move {
            post.title = post.title.to_uppercase();
            Ok(Before::Continue(post))
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_CREATE,
        "Cached",
        |_ctx: Context, _item: Value| async move {
            Ok(Before::<Value>::ShortCircuit(
                json!({"objectId": "FROM-CACHE", "title": "cached"}),
            ))
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_CREATE,
        "Locked",
        |_ctx: Context, _item: Value| async move {
            Err::<Before<Value>, _>(HandlerError::new(4003, "Locked table").with_status(403))
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_CREATE,
        "Plain",
        |_ctx: Context, _item: Value| async move {
            Err::<Before<Value>, _>(std::io::Error::other("disk on fire").into())
        },
    )
    .unwrap();
    r.after(
        persistence::AFTER_UPDATE,
        "Post",
        |_ctx: Context, _post: Value, result: Outcome<Value>| async move {
            let mut replaced = result.into_result().unwrap_or_default();
            replaced["title"] = json!("replaced by afterUpdate");
            Ok(After::Replace(replaced))
        },
    )
    .unwrap();
    let s = Arc::clone(&seen);
    r.after_async(
        persistence::AFTER_CREATE,
        "Async",
        move |ctx: Context, _post: Value, _r: Outcome<Value>| {
            let s = Arc::clone(&s);
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                s.async_done.lock().push(ctx.task_id().to_owned());
                s.notify.notify_one();
                Ok(After::<Value>::Keep)
            }
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_REMOVE,
        "Panics",
        |_ctx: Context, _id: String| async move {
            if true {
                panic!("handler bug");
            }
            Ok(Before::Continue(String::new()))
        },
    )
    .unwrap();
    r.before(
        persistence::BEFORE_REMOVE,
        "Slow",
        |_ctx: Context, id: String| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Before::Continue(id))
        },
    )
    .unwrap();
    r.before(
        user::BEFORE_LOGIN,
        "*",
        |_ctx: Context, (login, password): (String, String)| async move {
            Ok(Before::Continue((login.to_lowercase(), password)))
        },
    )
    .unwrap();
    r
}

fn new_post(title: &str) -> Value {
    json!({"title": title, "___class": "Post"})
}

fn created(title: &str) -> Value {
    json!({"___jsonclass": "com.backendless.servercode.ExecutionResult",
           "result": {"title": title, "___class": "Post", "objectId": "ABC"}, "exception": null})
}

#[tokio::test]
async fn after_create_reaches_the_handler_in_both_encodings() {
    let seen = Arc::new(Seen::default());
    let runner = TestRunner::start(registry(Arc::clone(&seen))).await;
    let args = vec![
        context(Some(("U1", "tok-1"))),
        new_post("hello"),
        created("hello"),
    ];
    let plain = task("t-plain", 101, "Post", args.clone());
    for (i, t) in [plain.clone(), byte_encoded(plain)].into_iter().enumerate() {
        let mut t = t;
        t["id"] = json!(format!("t-{i}"));
        let (status, reply) = runner.invoke(&t).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["requestId"], json!(format!("t-{i}")));
        assert_eq!(
            reply["___jsonclass"],
            "com.backendless.coderunner.commons.protocol.InvocationResult"
        );
        assert!(reply["exception"].is_null());
        assert!(
            reply.get("httpResponseHeaders").is_some()
                && reply.get("httpResponseCookies").is_some()
        );
        assert_eq!(
            reply["arguments"][0].is_number(),
            i == 1,
            "reply uses the encoding received"
        );
        let back = reply_args(&reply);
        assert_eq!(
            back[0]["futureField"],
            json!({"kept": true}),
            "unknown context fields survive"
        );
        assert_eq!(back[1], new_post("hello"), "___class survives");
        assert_eq!(back[2]["result"]["objectId"], "ABC");
    }
    let posts = seen.posts.lock().clone();
    assert_eq!(posts.len(), 2);
    for (user_id, token, post) in posts {
        assert_eq!(user_id.as_deref(), Some("U1"));
        assert_eq!(token.as_deref(), Some("tok-1"));
        assert_eq!(
            post,
            Post {
                title: "hello".into(),
                class: "Post".into(),
                object_id: None
            }
        );
    }
}

#[tokio::test]
async fn before_handlers_change_short_circuit_and_reject() {
    let runner = TestRunner::start(registry(Arc::default())).await;

    let (status, reply) = runner
        .invoke(&task(
            "c1",
            100,
            "Post",
            vec![context(None), new_post("quiet")],
        ))
        .await;
    assert_eq!(status, 200);
    let args = reply_args(&reply);
    assert_eq!(
        args[1]["title"], "QUIET",
        "the changed argument is sent back"
    );
    assert!(args[0].get("prematureResult").is_none());

    let (_, reply) = runner
        .invoke(&task(
            "c2",
            100,
            "Cached",
            vec![context(None), json!({"title": "x"})],
        ))
        .await;
    let args = reply_args(&reply);
    assert_eq!(args[0]["prematureResult"]["objectId"], "FROM-CACHE");
    assert_eq!(
        args[1],
        json!({"title": "x"}),
        "arguments are sent back unchanged"
    );

    let (status, reply) = runner
        .invoke(&task("c3", 100, "Locked", vec![context(None), json!({})]))
        .await;
    assert_eq!(status, 200);
    assert!(
        reply.get("arguments").is_none(),
        "an exception reply has no arguments"
    );
    assert_eq!(reply["exception"]["code"], 4003);
    assert_eq!(reply["exception"]["exceptionMessage"], "Locked table");
    assert_eq!(reply["exception"]["httpStatusCode"], 403);

    let (_, reply) = runner
        .invoke(&task("c4", 100, "Plain", vec![context(None), json!({})]))
        .await;
    assert_eq!(reply["exception"]["code"], 0);
    assert_eq!(reply["exception"]["httpStatusCode"], -1);
    assert_eq!(reply["exception"]["exceptionMessage"], "disk on fire");

    let (_, reply) = runner
        .invoke(&task(
            "c5",
            200,
            "*",
            vec![context(None), json!("ALICE@x.com"), json!("pw")],
        ))
        .await;
    assert_eq!(reply_args(&reply)[1..], [json!("alice@x.com"), json!("pw")]);
}

#[tokio::test]
async fn after_handler_replaces_the_result() {
    let runner = TestRunner::start(registry(Arc::default())).await;
    let args = vec![context(None), new_post("t"), created("t")];
    let (_, reply) = runner.invoke(&task("u1", 109, "Post", args)).await;
    let args = reply_args(&reply);
    assert_eq!(args[2]["result"]["title"], "replaced by afterUpdate");
    assert_eq!(args[2]["result"]["objectId"], "ABC");
    assert_eq!(
        args[2]["___jsonclass"],
        "com.backendless.servercode.ExecutionResult"
    );
}

#[tokio::test]
async fn async_task_is_acknowledged_and_still_runs() {
    let seen = Arc::new(Seen::default());
    let runner = TestRunner::start(registry(Arc::clone(&seen))).await;
    let mut t = task(
        "a1",
        101,
        "Async",
        vec![context(None), json!({}), created("x")],
    );
    t["async"] = json!(true);
    let notified = seen.notify.notified();
    let (status, body) = runner.invoke(&t).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["requestId"], "a1");
    assert!(
        seen.async_done.lock().is_empty(),
        "acknowledged before the handler finished"
    );
    tokio::time::timeout(Duration::from_secs(10), notified)
        .await
        .expect("async handler ran");
    assert_eq!(*seen.async_done.lock(), vec!["a1".to_owned()]);
}

#[tokio::test]
async fn panic_and_timeout_are_exception_replies_and_the_daemon_keeps_serving() {
    let runner = TestRunner::start(registry(Arc::default())).await;
    let (status, reply) = runner
        .invoke(&task("p1", 106, "Panics", vec![context(None), json!("X")]))
        .await;
    assert_eq!(status, 200);
    assert!(
        reply["exception"]["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("panicked"),
        "{reply}"
    );

    let mut slow = task("s1", 106, "Slow", vec![context(None), json!("X")]);
    slow["timeout"] = json!(100);
    let (_, reply) = runner.invoke(&slow).await;
    assert_eq!(
        reply["exception"]["exceptionMessage"],
        "Task execution is aborted due to timeout"
    );

    let (status, reply) = runner
        .invoke(&task(
            "ok",
            100,
            "Post",
            vec![context(None), new_post("still")],
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply_args(&reply)[1]["title"], "STILL");
}

#[tokio::test]
async fn unknown_event_and_missing_handler_are_named() {
    let runner = TestRunner::start(registry(Arc::default())).await;
    let (status, reply) = runner
        .invoke(&task("x1", 4242, "Post", vec![context(None)]))
        .await;
    assert_eq!(status, 404);
    let msg = reply["exception"]["exceptionMessage"].as_str().unwrap();
    assert_eq!(msg, "Integrity violation. Unknown event id: [4242]");
    assert_eq!(reply["requestId"], "x1");

    let (status, reply) = runner
        .invoke(&task("x2", 101, "Comment", vec![context(None), json!({})]))
        .await;
    assert_eq!(status, 404);
    let msg = reply["exception"]["exceptionMessage"].as_str().unwrap();
    assert_eq!(msg, "afterCreate(Comment) event handler does not exist");
}

async fn send(runner: &TestRunner, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let mut req = runner.http.post(runner.url("/invoke"));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.body(body.to_vec()).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn signatures_are_enforced() {
    let runner = TestRunner::start(registry(Arc::default())).await;
    let body = serde_json::to_vec(&task(
        "sig",
        100,
        "Post",
        vec![context(None), new_post("a")],
    ))
    .unwrap();
    let now = coderunner::signature::unix_now();

    let (status, err) = send(&runner, &[], &body).await;
    assert_eq!(status, 401);
    assert!(
        err["message"].as_str().unwrap().contains("webhook-id"),
        "{err}"
    );

    let wrong = coderunner::signature::WebhookSecret::parse(
        &coderunner::signature::WebhookSecret::generate(),
    )
    .unwrap();
    let sig = wrong.sign("m1", now, &body);
    let headers = [
        ("webhook-id", "m1".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", sig),
    ];
    let (status, err) = send(&runner, &headers, &body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("invalid_signature"))
    );

    let stale = now - 301;
    let sig = runner.secret.sign("m2", stale, &body);
    let headers = [
        ("webhook-id", "m2".to_owned()),
        ("webhook-timestamp", stale.to_string()),
        ("webhook-signature", sig),
    ];
    let (status, err) = send(&runner, &headers, &body).await;
    assert_eq!(status, 401);
    assert!(
        err["message"].as_str().unwrap().contains("tolerance"),
        "{err}"
    );

    let rotated = coderunner::signature::WebhookSecret::parse(OTHER_SECRET).unwrap();
    let sig = format!("v1,bm90LWl0 {}", rotated.sign("m3", now, &body));
    let headers = [
        ("webhook-id", "m3".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", sig),
    ];
    let (status, reply) = send(&runner, &headers, &body).await;
    assert_eq!(status, 200, "the rotated secret is accepted: {reply}");

    let (status, again) = send(&runner, &headers, &body).await;
    assert_eq!(
        (status, &again),
        (200, &reply),
        "a retry gets the kept reply, not a second execution"
    );
    let other = serde_json::to_vec(&task(
        "sig",
        100,
        "Post",
        vec![context(None), new_post("b")],
    ))
    .unwrap();
    let sig = rotated.sign("m3", now, &other);
    let headers = [
        ("webhook-id", "m3".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", sig),
    ];
    let (status, err) = send(&runner, &headers, &other).await;
    assert_eq!(status, 409, "a seen id with another body is not executed");
    assert_eq!(err["code"], "duplicate_delivery");

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let sig = runner.secret.sign("m4", now, &body);
    let headers = [
        ("webhook-id", "m4".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", sig),
    ];
    let (status, _) = send(&runner, &headers, &tampered).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_input_gets_a_named_4xx() {
    let runner = TestRunner::start_with(
        registry(Arc::default()),
        "[server]\nbody_limit_bytes = 4096",
    )
    .await;
    let resp = runner.invoke_raw(b"{not json".to_vec()).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], "invalid_task");

    let (status, err) = runner
        .invoke(&json!({"id": "m", "target": "Post", "arguments": []}))
        .await;
    assert_eq!(status, 400);
    assert!(
        err["message"].as_str().unwrap().contains("eventId"),
        "{err}"
    );

    let (status, err) = runner
        .invoke(&json!({"id": "m", "eventId": "100", "arguments": []}))
        .await;
    assert_eq!((status, err["field"].as_str()), (400, Some("eventId")));

    let (status, err) = runner
        .invoke(&task(
            "m",
            100,
            "Post",
            vec![json!("not a context"), json!({})],
        ))
        .await;
    assert_eq!((status, err["field"].as_str()), (400, Some("arguments[0]")));

    let big = task(
        "big",
        100,
        "Post",
        vec![context(None), json!({"title": "x".repeat(10_000)})],
    );
    let (status, err) = runner.invoke(&big).await;
    assert_eq!(status, 413);
    assert!(err["message"].as_str().unwrap().contains("4096"));

    let mistyped = task(
        "typed",
        101,
        "Post",
        vec![
            context(None),
            json!({"title": 5, "___class": "Post"}),
            created("x"),
        ],
    );
    let (status, err) = runner.invoke(&mistyped).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("arguments[1].title")),
        "{err}"
    );
    assert!(
        err["message"].as_str().unwrap().contains("afterCreate"),
        "{err}"
    );

    let (status, _) = runner
        .invoke(&task(
            "fine",
            100,
            "Post",
            vec![context(None), new_post("ok")],
        ))
        .await;
    assert_eq!(status, 200, "the daemon keeps serving");
}

#[tokio::test]
async fn operations_endpoints() {
    let runner = TestRunner::start(registry(Arc::default())).await;
    assert_eq!(runner.get("/healthz").await.0, 200);
    assert_eq!(runner.get("/readyz").await.0, 200);
    let (status, body) = runner.get("/handlers").await;
    assert_eq!(status, 200);
    let handlers: Value = serde_json::from_str(&body).unwrap();
    assert!(handlers.as_array().unwrap().contains(&json!({
        "provider": "persistence", "event": "afterCreate", "eventId": 101, "target": "Async", "async": true
    })));
    runner
        .invoke(&task(
            "metric",
            100,
            "Post",
            vec![context(None), new_post("m")],
        ))
        .await;
    let (status, metrics) = runner.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains(r#"coderunner_invocations_total{provider="persistence",event="beforeCreate",target="Post",outcome="ok"}"#), "{metrics}");
    assert!(
        metrics.contains("coderunner_invocation_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_tasks_and_turns_unready() {
    let seen = Arc::new(Seen::default());
    let runner = TestRunner::start_with(
        registry(Arc::clone(&seen)),
        "[shutdown]\ndrain_delay_ms = 300\ngrace_period_secs = 10",
    )
    .await;
    let mut t = task(
        "late",
        101,
        "Async",
        vec![context(None), json!({}), created("x")],
    );
    t["async"] = json!(true);
    assert_eq!(runner.invoke(&t).await.0, 202);
    runner.app.shutdown();
    tokio::task::yield_now().await;
    let (status, _) = runner.get("/readyz").await;
    assert_eq!(status, 503);
    runner.app.wait().await.unwrap();
    assert_eq!(
        *seen.async_done.lock(),
        vec!["late".to_owned()],
        "the async task finished before exit"
    );
}

fn build(overlay: &str) -> Result<(), String> {
    coderunner::Runner::new(&config(overlay), Registry::new())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn serve_refuses_to_start_without_a_secret() {
    let err = build("").expect_err("refused without a secret");
    assert!(err.contains("security.webhook_secrets"), "{err}");
    assert!(build("[security]\nallow_unsigned = true").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_and_a_timeout_do_not_disturb_100_concurrent_tasks() {
    let runner = Arc::new(TestRunner::start(registry(Arc::default())).await);
    let mut slow = task("slow", 106, "Slow", vec![context(None), json!("X")]);
    slow["timeout"] = json!(300);
    let bad = [
        task("panic", 106, "Panics", vec![context(None), json!("X")]),
        slow,
    ];
    let bad = bad.map(|t| {
        let runner = Arc::clone(&runner);
        tokio::spawn(async move { runner.invoke(&t).await })
    });
    let good: Vec<_> = (0..100)
        .map(|i| {
            let runner = Arc::clone(&runner);
            tokio::spawn(async move {
                let (status, reply) = runner
                    .invoke(&task(
                        &format!("ok-{i}"),
                        100,
                        "Post",
                        vec![context(None), new_post(&format!("post {i}"))],
                    ))
                    .await;
                (i, status, reply)
            })
        })
        .collect();
    for handle in good {
        let (i, status, reply) = handle.await.unwrap();
        assert_eq!(status, 200);
        assert!(reply["exception"].is_null(), "{reply}");
        assert_eq!(reply_args(&reply)[1]["title"], json!(format!("POST {i}")));
    }
    let [panicked, timed_out] = bad;
    let (_, reply) = panicked.await.unwrap();
    assert!(
        reply["exception"]["exceptionMessage"]
            .as_str()
            .unwrap()
            .contains("panicked")
    );
    let (_, reply) = timed_out.await.unwrap();
    assert_eq!(
        reply["exception"]["exceptionMessage"],
        "Task execution is aborted due to timeout"
    );
}
