//! Acceptance tests of the handler SDK: a real runner whose handlers call the
//! project's emulator, everything over HTTP on 127.0.0.1:0. Each test reads
//! the backend's side (the emulator's request log, login counts) as well as
//! the handlers' results.

mod areas;
mod data;
mod helpers;
mod paused;
mod superuser;
mod surface;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coderunner::emulator::{EmulatorConfig, KeyKind};
use coderunner::event::persistence;
use coderunner::sdk::{Client, SdkError};
use coderunner::{After, Before, Context, HandlerError, Outcome, Registry};
use futures::future::join_all;
use helpers::*;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// One Latest_post write: the identity, and the row's ownerId or the error code.
type LatestPost = (&'static str, Result<Option<String>, Option<i64>>);

/// What the handlers share with the test.
#[derive(Default)]
struct Probe {
    /// Gate handlers that made their first call ("gate") or arrived ("barrier").
    first_done: AtomicUsize,
    first_done_notify: tokio::sync::Notify,
    /// Opened by the test; gate handlers then make their second call.
    gate: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
    /// Results of the Latest_post story: (identity, Ok(ownerId) or Err(code)).
    latest: Mutex<Vec<LatestPost>>,
    /// Written by the async afterCreate on Comment.
    comment_done: tokio::sync::Notify,
}

fn sdk_err(e: SdkError) -> HandlerError {
    HandlerError::new(e.code().unwrap_or(0), e.to_string())
}

fn identity(ctx: &Context, name: &str) -> Client {
    match name {
        "caller" => ctx.caller(),
        "superuser" => ctx.superuser(),
        "server_key" => ctx.server_key(),
        other => panic!("unknown identity {other}"),
    }
}

/// One beforeCreate handler on `Probe`, whose object says what to do.
async fn probe(
    probe: Arc<Probe>,
    ctx: Context,
    item: Value,
) -> Result<Before<Value>, HandlerError> {
    let marker = item["marker"].as_u64().unwrap_or_default();
    if item["barrier"].as_bool().unwrap_or(false) {
        // Wait until every invocation of the test is in its handler.
        let mut gate = probe.gate.lock().clone().expect("gate set");
        probe.first_done.fetch_add(1, Ordering::SeqCst);
        probe.first_done_notify.notify_one();
        gate.wait_for(|open| *open).await.expect("gate open");
    }
    match item["op"].as_str().unwrap_or_default() {
        // One superuser call.
        "superuser" => {
            ctx.superuser()
                .counters()
                .get(&format!("su-{marker}"))
                .await
                .map_err(sdk_err)?;
        }
        // Wait until the test opens the gate (all invocations are in
        // flight), then one superuser call: truly concurrent first uses.
        "barrier" => {
            let mut gate = probe.gate.lock().clone().expect("gate set");
            probe.first_done.fetch_add(1, Ordering::SeqCst);
            probe.first_done_notify.notify_one();
            gate.wait_for(|open| *open).await.expect("gate open");
            ctx.superuser()
                .counters()
                .get(&format!("su-{marker}"))
                .await
                .map_err(sdk_err)?;
        }
        // Three superuser calls, counting the first; the third waits for
        // the gate.
        "triple" => {
            let mut gate = probe.gate.lock().clone().expect("gate set");
            for step in 0..3 {
                if step == 2 {
                    gate.wait_for(|open| *open).await.expect("gate open");
                }
                ctx.superuser()
                    .counters()
                    .get(&format!("triple-{step}-{marker}"))
                    .await
                    .map_err(sdk_err)?;
                if step == 0 {
                    probe.first_done.fetch_add(1, Ordering::SeqCst);
                    probe.first_done_notify.notify_one();
                }
            }
        }
        // A superuser call, wait for the gate, another superuser call.
        "gate" => {
            let mut gate = probe.gate.lock().clone().expect("gate set");
            ctx.superuser()
                .counters()
                .get(&format!("first-{marker}"))
                .await
                .map_err(sdk_err)?;
            probe.first_done.fetch_add(1, Ordering::SeqCst);
            probe.first_done_notify.notify_one();
            gate.wait_for(|open| *open).await.expect("gate open");
            ctx.superuser()
                .counters()
                .get(&format!("second-{marker}"))
                .await
                .map_err(sdk_err)?;
        }
        // A cache put under a key naming the invocation, as `as`.
        "mark" => {
            let client = identity(&ctx, item["as"].as_str().unwrap());
            client
                .cache()
                .put(&format!("probe-{marker}"), &marker, None)
                .await
                .map_err(sdk_err)?;
        }
        // expire_in with `secs` seconds on a key put before when `put`.
        "expire" => {
            let cache = ctx.server_key();
            let cache = cache.cache();
            let key = format!("ttl-{marker}");
            if item["put"].as_bool().unwrap_or(false) {
                cache.put(&key, &"v", None).await.map_err(sdk_err)?;
            }
            let secs = item["secs"].as_u64().unwrap();
            cache
                .expire_in(&key, Duration::from_secs(secs))
                .await
                .map_err(sdk_err)?;
            let held = cache.contains(&key).await.map_err(sdk_err)?;
            let value: Option<String> = cache.get(&key).await.map_err(sdk_err)?;
            return Ok(Before::ShortCircuit(
                json!({"contains": held, "value": value}),
            ));
        }
        other => return Err(HandlerError::msg(format!("unknown op {other:?}"))),
    }
    Ok(Before::Continue(item))
}

/// The thread's story: afterCreate on Post writes Latest_post as each identity.
async fn latest_post(
    probe: Arc<Probe>,
    ctx: Context,
    post: Value,
) -> Result<After<Value>, HandlerError> {
    for name in ["server_key", "caller", "superuser"] {
        let row = json!({"title": post["title"], "by": name});
        let result = identity(&ctx, name)
            .table::<Value>("Latest_post")
            .create(&row)
            .await
            .map(|saved| saved.owner_id)
            .map_err(|e| e.code());
        probe.latest.lock().push((name, result));
    }
    Ok(After::Keep)
}

fn registry(shared: &Arc<Probe>) -> Registry {
    let mut r = Registry::new();
    let p = Arc::clone(shared);
    r.before(
        persistence::BEFORE_CREATE,
        "Probe",
        move |ctx: Context, item: Value| probe(Arc::clone(&p), ctx, item),
    )
    .unwrap();
    let p = Arc::clone(shared);
    r.after(
        persistence::AFTER_CREATE,
        "Post",
        move |ctx: Context, post: Value, _result: Outcome<Value>| {
            latest_post(Arc::clone(&p), ctx, post)
        },
    )
    .unwrap();
    let p = Arc::clone(shared);
    r.after_async(
        persistence::AFTER_CREATE,
        "Comment",
        move |ctx: Context, comment: Value, _result: Outcome<Value>| {
            let p = Arc::clone(&p);
            async move {
                let row = json!({"title": comment["text"], "by": "async"});
                let result = ctx
                    .caller()
                    .table::<Value>("Latest_post")
                    .create(&row)
                    .await;
                p.latest.lock().push((
                    "async caller",
                    result.map(|s| s.owner_id).map_err(|e| e.code()),
                ));
                p.comment_done.notify_one();
                Ok(After::<Value>::Keep)
            }
        },
    )
    .unwrap();
    r
}

async fn stack(config: EmulatorConfig) -> (Stack, Arc<Probe>) {
    let shared = Arc::new(Probe::default());
    let stack = Stack::start(config, registry(&shared), "").await;
    (stack, shared)
}

/// Sends all `tasks` at once; panics on a non-200 reply; returns the replies.
async fn invoke_all(stack: &Stack, tasks: Vec<Value>) -> Vec<Value> {
    join_all(tasks.iter().map(|t| stack.invoke(t)))
        .await
        .into_iter()
        .map(|(status, reply)| {
            assert_eq!(status, 200, "{reply}");
            reply
        })
        .collect()
}

fn probe_task(id: String, ctx: Value, item: Value) -> Value {
    before_create(&id, "Probe", ctx, item)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_superuser_invocations_log_in_once() {
    let _lock = login_metric_lock().await;
    let (stack, shared) = stack(EmulatorConfig::dev()).await;
    let (open, gate) = tokio::sync::watch::channel(false);
    *shared.gate.lock() = Some(gate);
    let before = stack.superuser_logins("ok").await;
    let superuser_counters = [
        ("service", "counters"),
        ("identity", "superuser"),
        ("outcome", "ok"),
    ];
    let calls_before = stack
        .counter("coderunner_backend_requests_total", &superuser_counters)
        .await;

    const N: usize = 1000;
    let tasks = (0..N)
        .map(|i| {
            probe_task(
                format!("su-{i}"),
                context(None),
                json!({"op": "barrier", "marker": i}),
            )
        })
        .collect();
    let run = invoke_all(&stack, tasks);
    let release = async {
        // All invocations are in their handlers before any uses the superuser.
        while shared.first_done.load(Ordering::SeqCst) < N {
            shared.first_done_notify.notified().await;
        }
        assert_eq!(stack.inspect.login_count(ADMIN), 0);
        open.send(true).unwrap();
    };
    let (replies, ()) = tokio::join!(run, release);
    for reply in replies {
        assert_eq!(exception(&reply), None, "{reply}");
    }

    assert_eq!(stack.inspect.login_count(ADMIN), 1, "backend saw one login");
    assert_eq!(
        stack.superuser_logins("ok").await - before,
        1,
        "metric counts one login"
    );
    let su_calls = stack
        .paths()
        .iter()
        .filter(|p| p.starts_with("counters/su-"))
        .count();
    assert_eq!(su_calls, 1000);
    let calls = stack
        .counter("coderunner_backend_requests_total", &superuser_counters)
        .await;
    assert_eq!(
        calls - calls_before,
        1000,
        "each call counted as the superuser's"
    );
    let logins = stack.paths().iter().filter(|p| *p == "users/login").count();
    assert_eq!(logins, 1, "one login request reached the backend");
    assert!(
        !stack.paths().iter().any(|p| p.starts_with("cache/")),
        "the token is not kept in the app's cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_superuser_session_ended_mid_load_is_re_established_once() {
    let _lock = login_metric_lock().await;
    let (stack, shared) = stack(EmulatorConfig::dev()).await;
    let (open, gate) = tokio::sync::watch::channel(false);
    *shared.gate.lock() = Some(gate);
    let before = stack.superuser_logins("ok").await;

    const N: usize = 1000;
    let tasks: Vec<Value> = (0..N)
        .map(|i| {
            probe_task(
                format!("gate-{i}"),
                context(None),
                json!({"op": "gate", "marker": i}),
            )
        })
        .collect();
    let run = {
        let stack = &stack;
        async move { invoke_all(stack, tasks).await }
    };
    let expire = async {
        // Every invocation is in flight and has used the session once.
        while shared.first_done.load(Ordering::SeqCst) < N {
            shared.first_done_notify.notified().await;
        }
        assert_eq!(stack.inspect.login_count(ADMIN), 1);
        assert!(
            stack.inspect.expire_sessions(ADMIN) >= 1,
            "a session was ended"
        );
        open.send(true).unwrap();
    };
    let (replies, ()) = tokio::join!(run, expire);
    for reply in replies {
        assert_eq!(exception(&reply), None, "{reply}");
    }

    assert_eq!(stack.inspect.login_count(ADMIN), 2, "exactly one re-login");
    assert_eq!(stack.superuser_logins("ok").await - before, 2);
    let requests = stack.inspect.requests();
    let second: Vec<_> = requests
        .iter()
        .filter(|r| api_path(&r.path).starts_with("counters/second-"))
        .collect();
    let ok = second.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok, N,
        "every second call succeeded, after one retry at most"
    );
    assert!(second.len() <= 2 * N, "each call was retried at most once");
    let tokens: HashSet<_> = second
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.user_token.clone())
        .collect();
    assert_eq!(tokens.len(), 1, "all retries used the one new token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_carries_exactly_the_token_of_its_identity() {
    let _lock = login_metric_lock().await;
    const USERS: usize = 50;
    let (stack, shared) = stack(dev_with_users(USERS)).await;
    let users: Vec<(String, String)> = join_all((0..USERS).map(|u| {
        let stack = &stack;
        async move {
            stack
                .login(&format!("user{u}@example.com"), &format!("user{u}-pass"))
                .await
        }
    }))
    .await;
    let (_, admin_id) = stack.login(ADMIN, ADMIN_PASS).await;
    let caller_tokens: HashSet<&str> = users.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(caller_tokens.len(), USERS);

    const N: usize = 1000;
    let identity_of = |i: usize| ["caller", "superuser", "server_key", "anonymous"][i % 4];
    let user_of = |i: usize| &users[(i / 4) % USERS];
    let tasks = (0..N)
        .map(|i| {
            // The RunnerContext names a caller (but for anonymous callers):
            // the identity chosen in the handler decides the token.
            let (token, id) = user_of(i);
            let (ctx, identity) = match identity_of(i) {
                "anonymous" => (context(None), "caller"),
                other => (context(Some((id, token))), other),
            };
            probe_task(
                format!("mix-{i}"),
                ctx,
                json!({"op": "mark", "marker": i, "as": identity, "barrier": true}),
            )
        })
        .collect();
    let (open, gate) = tokio::sync::watch::channel(false);
    *shared.gate.lock() = Some(gate);
    let run = invoke_all(&stack, tasks);
    let release = async {
        while shared.first_done.load(Ordering::SeqCst) < N {
            shared.first_done_notify.notified().await;
        }
        open.send(true).unwrap();
    };
    let (replies, ()) = tokio::join!(run, release);
    for reply in replies {
        assert_eq!(exception(&reply), None, "{reply}");
    }

    let mut by_marker = HashMap::new();
    for r in stack.inspect.requests() {
        if let Some(marker) = api_path(&r.path).strip_prefix("cache/probe-") {
            let marker: usize = marker.parse().unwrap();
            assert!(
                by_marker.insert(marker, r).is_none(),
                "one request per invocation"
            );
        }
    }
    assert_eq!(by_marker.len(), N);
    let mut superuser_tokens = HashSet::new();
    for (i, r) in by_marker {
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert_eq!(r.key_kind, Some(KeyKind::CloudCode));
        match identity_of(i) {
            "caller" => {
                let (token, id) = user_of(i);
                assert_eq!(r.user_token.as_deref(), Some(token.as_str()), "request {i}");
                assert_eq!(r.user_id.as_deref(), Some(id.as_str()), "request {i}");
            }
            "superuser" => {
                let token = r.user_token.clone().expect("the superuser sends a token");
                assert!(!caller_tokens.contains(token.as_str()), "request {i}");
                assert_eq!(r.user_id.as_deref(), Some(admin_id.as_str()), "request {i}");
                superuser_tokens.insert(token);
            }
            _ => {
                assert_eq!(
                    r.user_token, None,
                    "request {i}: the server key and an anonymous caller send no token"
                );
                assert_eq!(r.user_id, None, "request {i}");
            }
        }
    }
    assert_eq!(superuser_tokens.len(), 1, "one shared superuser session");
}

#[tokio::test]
async fn expire_in_out_of_range_is_refused_before_any_request() {
    let (stack, _) = stack(EmulatorConfig::dev()).await;
    for (i, secs) in [7_200_000u64, 0].into_iter().enumerate() {
        let (status, reply) = stack
            .invoke(&probe_task(
                format!("bad-ttl-{i}"),
                context(None),
                json!({"op": "expire", "marker": i, "secs": secs, "put": false}),
            ))
            .await;
        assert_eq!(status, 200, "{reply}");
        let (_, message) = exception(&reply).expect("the handler failed");
        assert!(
            message.contains("7200"),
            "the error names the limit: {message}"
        );
    }
    let cache_requests: Vec<_> = stack
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("cache/"))
        .collect();
    assert!(cache_requests.is_empty(), "{cache_requests:?}");

    let (status, reply) = stack
        .invoke(&probe_task(
            "good-ttl".into(),
            context(None),
            json!({"op": "expire", "marker": 9, "secs": 7200, "put": true}),
        ))
        .await;
    assert_eq!((status, exception(&reply)), (200, None), "{reply}");
    let result = serde_json::to_string(&reply).unwrap();
    assert!(
        result.contains(r#""contains":true"#) && result.contains(r#""value":"v""#),
        "{reply}"
    );
    let paths = stack.paths();
    assert!(
        paths.iter().any(|p| p == "cache/ttl-9/expireIn"),
        "{paths:?}"
    );
    // The backend's side: the key is still there for another client.
    let (status, held) = stack
        .rest(reqwest::Method::GET, REST, "cache/ttl-9/check", None, None)
        .await;
    assert_eq!((status, held), (200, json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_post_fails_as_server_key_and_succeeds_as_caller_and_superuser() {
    let _lock = login_metric_lock().await;
    let (stack, shared) = stack(EmulatorConfig::dev()).await;
    let (token, alice) = stack.login("alice@example.com", "alice-pass").await;
    let (status, post) = stack
        .rest(
            reqwest::Method::POST,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": "hello"})),
        )
        .await;
    assert_eq!(status, 200, "{post}");
    let latest = shared.latest.lock().clone();
    let (_, admin) = stack.login(ADMIN, ADMIN_PASS).await;
    assert_eq!(
        latest,
        vec![
            ("server_key", Err(Some(1011))),
            ("caller", Ok(Some(alice))),
            ("superuser", Ok(Some(admin))),
        ]
    );
    let tasks = stack.inspect.tasks();
    assert!(
        tasks
            .iter()
            .any(|t| t.event_name == "afterCreate" && t.target == "Post")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_through_rest_while_calls_are_in_flight_causes_one_re_login() {
    let _lock = login_metric_lock().await;
    let (stack, shared) = stack(EmulatorConfig::dev()).await;
    let (open, gate) = tokio::sync::watch::channel(false);
    *shared.gate.lock() = Some(gate);
    let before = stack.superuser_logins("ok").await;

    const N: usize = 600;
    let tasks = (0..N)
        .map(|i| {
            probe_task(
                format!("triple-{i}"),
                context(None),
                json!({"op": "triple", "marker": i}),
            )
        })
        .collect();
    let run = invoke_all(&stack, tasks);
    let logout = async {
        // A third of the invocations have used the session: log it out
        // through the REST API while calls are in flight. The third call
        // of each waits until then, so the logout cannot come too late.
        while shared.first_done.load(Ordering::SeqCst) < N / 3 {
            shared.first_done_notify.notified().await;
        }
        let token = stack
            .inspect
            .requests()
            .into_iter()
            .find(|r| api_path(&r.path).starts_with("counters/triple-"))
            .and_then(|r| r.user_token)
            .expect("the superuser's token");
        let (status, body) = stack
            .rest(
                reqwest::Method::GET,
                REST,
                "users/logout",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        open.send(true).unwrap();
    };
    let (replies, ()) = tokio::join!(run, logout);
    for reply in replies {
        assert_eq!(exception(&reply), None, "{reply}");
    }
    assert_eq!(stack.inspect.login_count(ADMIN), 2, "exactly one re-login");
    assert_eq!(stack.superuser_logins("ok").await - before, 2);
    let done = stack
        .inspect
        .requests()
        .iter()
        .filter(|r| api_path(&r.path).starts_with("counters/triple-") && r.status == 200)
        .count();
    assert_eq!(done, 3 * N);
}

#[tokio::test]
async fn stopping_the_runner_logs_the_superuser_out() {
    let _lock = login_metric_lock().await;
    let mut config = EmulatorConfig::dev();
    config.max_sessions_per_user = 1;
    let (mut stack, _) = stack(config).await;
    let (status, reply) = stack
        .invoke(&probe_task(
            "one".into(),
            context(None),
            json!({"op": "superuser", "marker": 1}),
        ))
        .await;
    assert_eq!((status, exception(&reply)), (200, None), "{reply}");
    // The runner's session holds the only slot.
    let (status, body) = stack
        .rest(
            reqwest::Method::POST,
            REST,
            "users/login",
            None,
            Some(json!({"login": ADMIN, "password": ADMIN_PASS})),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(3044)), "{body}");

    stack.stop_runner().await;
    assert!(stack.paths().iter().any(|p| p == "users/logout"));
    stack.login(ADMIN, ADMIN_PASS).await;
}

#[tokio::test]
async fn an_expired_caller_token_is_reported_and_never_replaced() {
    let (stack, _) = stack(EmulatorConfig::dev()).await;
    let (token, id) = stack.login("alice@example.com", "alice-pass").await;
    assert_eq!(stack.inspect.expire_sessions("alice@example.com"), 1);
    let (status, reply) = stack
        .invoke(&probe_task(
            "expired".into(),
            context(Some((&id, &token))),
            json!({"op": "mark", "marker": 7, "as": "caller"}),
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(exception(&reply).map(|e| e.0), Some(3064), "{reply}");
    let sent: Vec<_> = stack
        .inspect
        .requests()
        .into_iter()
        .filter(|r| api_path(&r.path) == "cache/probe-7")
        .collect();
    assert_eq!(sent.len(), 1, "no retry as another identity");
    assert_eq!(sent[0].user_token.as_deref(), Some(token.as_str()));
    assert_eq!(
        stack.inspect.login_count(ADMIN),
        0,
        "no fallback to the superuser"
    );
    let (status, _) = stack
        .rest(
            reqwest::Method::GET,
            REST,
            "cache/probe-7/check",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_login_is_not_repeated_by_a_thousand_concurrent_invocations() {
    let _lock = login_metric_lock().await;
    let mut config = EmulatorConfig::dev();
    config.max_sessions_per_user = 1;
    let (stack, shared) = stack(config).await;
    stack.login(ADMIN, ADMIN_PASS).await; // the only session, held elsewhere
    let (open, gate) = tokio::sync::watch::channel(false);
    *shared.gate.lock() = Some(gate);
    let refused_before = stack.superuser_logins("login_limit").await;

    const N: usize = 1000;
    let tasks = (0..N)
        .map(|i| {
            probe_task(
                format!("refused-{i}"),
                context(None),
                json!({"op": "barrier", "marker": i}),
            )
        })
        .collect();
    let run = invoke_all(&stack, tasks);
    let release = async {
        while shared.first_done.load(Ordering::SeqCst) < N {
            shared.first_done_notify.notified().await;
        }
        open.send(true).unwrap();
    };
    let (replies, ()) = tokio::join!(run, release);
    for reply in replies {
        assert_eq!(exception(&reply).map(|e| e.0), Some(3044), "{reply}");
    }
    let attempts = stack.paths().iter().filter(|p| *p == "users/login").count();
    // One from the test itself, one from the runner.
    assert_eq!(attempts, 2, "the refused login was not repeated");
    assert_eq!(
        stack.superuser_logins("login_limit").await - refused_before,
        1
    );
    assert!(!stack.paths().iter().any(|p| p.starts_with("counters/")));
}

#[tokio::test]
async fn an_async_after_handler_acts_as_the_caller() {
    let (stack, shared) = stack(EmulatorConfig::dev()).await;
    let (token, alice) = stack.login("alice@example.com", "alice-pass").await;
    let done = shared.comment_done.notified();
    let (status, body) = stack
        .rest(
            reqwest::Method::POST,
            REST,
            "data/Comment",
            Some(&token),
            Some(json!({"text": "later"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    done.await;
    assert_eq!(
        shared.latest.lock().clone(),
        vec![("async caller", Ok(Some(alice.clone())))]
    );
    let task = stack
        .inspect
        .tasks()
        .into_iter()
        .find(|t| t.event_name == "afterCreate" && t.target == "Comment")
        .expect("the afterCreate task");
    assert!(task.is_async);
    let write = stack
        .inspect
        .requests()
        .into_iter()
        .find(|r| api_path(&r.path) == "data/Latest_post")
        .expect("the handler's write");
    assert_eq!(write.user_token.as_deref(), Some(token.as_str()));
    assert_eq!(write.user_id, Some(alice));
}
