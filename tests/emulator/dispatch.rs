//! Business-logic dispatch against a stand-in runner (an axum server in the
//! test) that verifies signatures and replies with `InvocationResult`s.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use coderunner::emulator::{EmulatorConfig, RunnerLinkConfig, Secret};
use coderunner::event::wire::{Arguments, Encoding, ExceptionWrapper, InvocationResult, Task};
use coderunner::signature::{DEFAULT_TOLERANCE, SignedHeaders, Verifier, WebhookSecret};
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{CLOUD, REST, TestApp};

struct Received {
    handlers: Mutex<Value>,
    tasks: Mutex<Vec<Task>>,
    bad_signatures: Mutex<u32>,
}

impl Received {
    fn of(&self, event_id: u32) -> Vec<Task> {
        self.tasks
            .lock()
            .iter()
            .filter(|t| t.event_id.0 == event_id)
            .cloned()
            .collect()
    }
}

fn handlers() -> Value {
    json!([
        {"provider": "persistence", "event": "beforeCreate", "eventId": 100, "target": "Post", "async": false},
        {"provider": "persistence", "event": "afterCreate", "eventId": 101, "target": "Latest_post", "async": false},
        {"provider": "persistence", "event": "beforeRemove", "eventId": 106, "target": "Post", "async": false},
        {"provider": "persistence", "event": "afterUpdate", "eventId": 109, "target": "Post", "async": true},
        {"provider": "persistence", "event": "afterFind", "eventId": 113, "target": "Post", "async": false},
        {"provider": "persistence", "event": "beforeUpdateBulk", "eventId": 118, "target": "Thing", "async": false},
        {"provider": "persistence", "event": "afterRemoveBulk", "eventId": 121, "target": "Thing", "async": false},
        {"provider": "user", "event": "beforeLogin", "eventId": 200, "target": "*", "async": false},
        {"provider": "user", "event": "afterLogin", "eventId": 201, "target": "*", "async": false},
        {"provider": "user", "event": "beforeRegister", "eventId": 202, "target": "*", "async": false},
        {"provider": "user", "event": "afterLogout", "eventId": 213, "target": "*", "async": false},
    ])
}

/// What the stand-in handlers do.
fn respond(task: &Task) -> InvocationResult {
    let mut values = task.arguments.values.clone();
    let reply = |values: Vec<Value>| {
        InvocationResult::with_arguments(task.id.clone(), Arguments::new(Encoding::Bytes, values))
    };
    match task.event_id.0 {
        100 => match values[1]["title"].as_str() {
            Some("reject") => InvocationResult::with_exception(
                task.id.clone(),
                ExceptionWrapper::new(4001, "titles may not be reject", Some(403)),
            ),
            Some("short") => {
                values[0]["prematureResult"] = json!({"short": true});
                reply(values)
            }
            _ => {
                values[1]["title"] = json!("changed by handler");
                reply(values)
            }
        },
        101 => {
            let last = values.len() - 1;
            let id = values[last]["result"]["objectId"].clone();
            values[last]["result"] = json!({"replaced": true, "was": id});
            reply(values)
        }
        106 => InvocationResult::with_exception(
            task.id.clone(),
            ExceptionWrapper::new(0, "posts are forever", None),
        ),
        113 => {
            let last = values.len() - 1;
            let n = values[last]["result"].as_array().map_or(0, Vec::len);
            values[last]["result"] = json!({"count": n});
            reply(values)
        }
        118 => {
            values[3]["bulk"] = json!("handler");
            reply(values)
        }
        121 => {
            let last = values.len() - 1;
            let n = values[last]["result"].clone();
            values[last]["result"] = json!({"removed": n});
            reply(values)
        }
        202 => {
            values[1]["registeredBy"] = json!("handler");
            reply(values)
        }
        _ => reply(values),
    }
}

async fn start_runner(secret: &str) -> (String, Arc<Received>) {
    let received = Arc::new(Received {
        handlers: Mutex::new(handlers()),
        tasks: Mutex::default(),
        bad_signatures: Mutex::default(),
    });
    let verifier = Verifier::new(
        vec![WebhookSecret::parse(secret).unwrap()],
        DEFAULT_TOLERANCE,
    );
    let r = received.clone();
    let listed = received.clone();
    let invoke = move |headers: HeaderMap, body: Bytes| {
        let r = r.clone();
        let verifier = verifier.clone();
        async move {
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
            let signed = SignedHeaders {
                id: h("webhook-id"),
                timestamp: h("webhook-timestamp"),
                signature: h("webhook-signature"),
            };
            if verifier
                .verify(signed, &body, coderunner::signature::unix_now())
                .is_err()
            {
                *r.bad_signatures.lock() += 1;
                return Err(StatusCode::UNAUTHORIZED);
            }
            let task = Task::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
            let reply = respond(&task);
            r.tasks.lock().push(task);
            Ok(Json(reply))
        }
    };
    let app = Router::new()
        .route(
            "/handlers",
            // A null list stands for a runner that cannot list its handlers.
            get(move || async move {
                let list = listed.handlers.lock().clone();
                if list.is_null() {
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Ok(Json(list))
                }
            }),
        )
        .route("/invoke", post(invoke));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn linked(record_dir: Option<std::path::PathBuf>) -> (TestApp, Arc<Received>) {
    let secret = WebhookSecret::generate();
    let (url, received) = start_runner(&secret).await;
    let config = EmulatorConfig {
        runner: Some(RunnerLinkConfig {
            record_dir,
            ..RunnerLinkConfig::http(url, Secret::new(secret))
        }),
        ..EmulatorConfig::dev()
    };
    (TestApp::start(config).await, received)
}

#[tokio::test]
async fn before_create_changes_the_stored_item_and_sees_the_caller() {
    let (app, received) = linked(None).await;
    let (token, alice_id) = app.login(REST, "alice@example.com", "alice-pass").await;
    let saved = app
        .call(
            Method::POST,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": "hello"})),
        )
        .await
        .ok();
    assert_eq!(saved["title"], json!("changed by handler"));
    let id = saved["objectId"].as_str().unwrap();
    let stored = app
        .call(
            Method::GET,
            REST,
            &format!("data/Post/{id}"),
            Some(&token),
            None,
        )
        .await
        .ok();
    assert_eq!(stored["title"], json!("changed by handler"));
    assert_eq!(stored["ownerId"], json!(alice_id));

    let tasks = received.of(100);
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    assert_eq!((task.target.as_str(), task.is_async), ("Post", false));
    assert_eq!(task.timeout, Some(5000));
    assert_eq!(task.application_id.as_deref(), Some("dev-app"));
    let init = task.init_app_data.as_ref().unwrap();
    assert_eq!(
        init["url"],
        json!(app.base),
        "handlers call back the bound address"
    );
    assert_eq!(init["apiKey"], json!(CLOUD));
    let ctx = &task.arguments.values[0];
    assert_eq!(ctx["appId"], json!("dev-app"));
    assert_eq!(ctx["userId"], json!(alice_id));
    assert_eq!(ctx["userToken"], json!(token));
    assert_eq!(ctx["userRoles"], json!(["AuthenticatedUser", "RestUser"]));
    assert_eq!(ctx["deviceType"], json!("REST"));
    assert_eq!(ctx["eventContext"], json!("Post"));
    assert_eq!(ctx["httpHeaders"]["user-token"], json!(token));
    assert_eq!(task.arguments.values[1]["title"], json!("hello"));
    assert_eq!(*received.bad_signatures.lock(), 0);
}

#[tokio::test]
async fn rejection_and_premature_result_skip_the_operation() {
    let (app, _received) = linked(None).await;
    let r = app
        .call(
            Method::PUT,
            REST,
            "data/Post",
            None,
            Some(json!({"title": "reject"})),
        )
        .await;
    // Anonymous REST may not create Posts: permissions are checked first.
    r.err(1011, 400);
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let r = app
        .call(
            Method::PUT,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": "reject"})),
        )
        .await;
    r.err(4001, 403);
    assert_eq!(r.body["message"], json!("titles may not be reject"));
    let r = app
        .call(
            Method::POST,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": "short"})),
        )
        .await
        .ok();
    assert_eq!(r, json!({"short": true}));
    let n = app
        .call(Method::GET, CLOUD, "data/Post/count", None, None)
        .await
        .ok();
    assert_eq!(
        n,
        json!(0),
        "neither rejected nor short-circuited items were stored"
    );
    // A rejection without a status gets HTTP 400.
    let row = app
        .call(
            Method::POST,
            CLOUD,
            "data/Post",
            None,
            Some(json!({"title": "t"})),
        )
        .await
        .ok();
    let id = row["objectId"].as_str().unwrap();
    let (admin, _) = app.login(REST, "admin@example.com", "admin-pass").await;
    let _ = admin;
    let r = app
        .call(
            Method::DELETE,
            crate::helpers::JS,
            &format!("data/Post/{id}"),
            Some(&token),
            None,
        )
        .await;
    // alice does not own it and has no remove grant: permissions first.
    r.err(1014, 400);
    let mine = app
        .call(
            Method::POST,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": "m"})),
        )
        .await
        .ok();
    let mine = mine["objectId"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            REST,
            &format!("data/Post/{mine}"),
            Some(&token),
            None,
        )
        .await;
    r.err(0, 400);
    assert_eq!(r.body["message"], json!("posts are forever"));
}

#[tokio::test]
async fn after_handlers_replace_the_result() {
    let (app, received) = linked(None).await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let r = app
        .call(
            Method::POST,
            REST,
            "data/Latest_post",
            Some(&token),
            Some(json!({"title": "x"})),
        )
        .await
        .ok();
    assert_eq!(r["replaced"], json!(true));
    let tasks = received.of(101);
    assert_eq!(tasks.len(), 1);
    let result = tasks[0].arguments.values.last().unwrap();
    assert_eq!(
        result["___jsonclass"],
        json!("com.backendless.servercode.ExecutionResult")
    );
    assert_eq!(result["result"]["title"], json!("x"));
    assert_eq!(r["was"], result["result"]["objectId"]);
    let n = app
        .call(
            Method::GET,
            REST,
            "data/Latest_post/count",
            Some(&token),
            None,
        )
        .await
        .ok();
    assert_eq!(n, json!(1), "the object was stored");
    let found = app
        .call(Method::GET, REST, "data/Post", Some(&token), None)
        .await
        .ok();
    assert_eq!(found, json!({"count": 0}), "afterFind replaced the list");
}

#[tokio::test]
async fn cloudcode_key_requests_fire_no_events() {
    let (app, received) = linked(None).await;
    let saved = app
        .call(
            Method::POST,
            CLOUD,
            "data/Post",
            None,
            Some(json!({"title": "from BL"})),
        )
        .await
        .ok();
    assert_eq!(saved["title"], json!("from BL"));
    let (token, _) = app.login(CLOUD, "alice@example.com", "alice-pass").await;
    let saved = app
        .call(
            Method::POST,
            CLOUD,
            "data/Post",
            Some(&token),
            Some(json!({"title": "as alice from BL"})),
        )
        .await
        .ok();
    assert_eq!(saved["title"], json!("as alice from BL"));
    app.call(Method::GET, CLOUD, "data/Post", None, None)
        .await
        .ok();
    assert!(
        received.tasks.lock().is_empty(),
        "{:?}",
        received.tasks.lock()
    );
    assert!(app.inspect.tasks().is_empty());
}

#[tokio::test]
async fn login_events_carry_the_logged_in_user_and_passwords_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let (app, received) = linked(Some(dir.path().to_owned())).await;
    let (token, alice_id) = app.login(REST, "alice@example.com", "alice-pass").await;
    let before = received.of(200);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].arguments.values[0]["userId"], json!(null));
    assert_eq!(
        before[0].arguments.values[0]["userRoles"],
        json!(["NotAuthenticatedUser", "RestUser"])
    );
    assert_eq!(before[0].arguments.values[1], json!("alice@example.com"));
    let after = received.of(201);
    assert_eq!(after.len(), 1);
    let ctx = &after[0].arguments.values[0];
    assert_eq!(ctx["userId"], json!(alice_id));
    assert_eq!(ctx["userToken"], json!(token));
    assert_eq!(ctx["userRoles"], json!(["AuthenticatedUser", "RestUser"]));

    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for name in &files {
        let parts: Vec<&str> = name.trim_end_matches(".json").splitn(3, '-').collect();
        assert!(parts[0].parse::<u64>().is_ok(), "{name}");
        assert!(["beforeLogin", "afterLogin"].contains(&parts[1]), "{name}");
        assert!(uuid::Uuid::parse_str(parts[2]).is_ok(), "{name}");
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(!text.contains("alice-pass"), "{text}");
        assert!(text.contains("[redacted]"));
        let task = Task::from_slice(text.as_bytes()).unwrap();
        assert_eq!(task.arguments.values[2], json!("[redacted]"));
    }
    let logged = app.inspect.tasks();
    assert_eq!(logged.len(), 2);
    assert!(!logged[0].body.to_string().contains("alice-pass"));

    app.call(Method::GET, REST, "users/logout", Some(&token), None)
        .await
        .ok();
    let out = received.of(213);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].arguments.values[0]["userId"], json!(alice_id));

    let user = app
        .call(
            Method::POST,
            REST,
            "users/register",
            None,
            Some(json!({"email": "eve@example.com", "password": "eve-secret-pass"})),
        )
        .await
        .ok();
    assert_eq!(user["registeredBy"], json!("handler"));
    assert!(user.get("password").is_none());
    // The runner gets the user as sent; records and the inspector do not show the password.
    assert_eq!(
        received.of(202)[0].arguments.values[1]["password"],
        json!("eve-secret-pass")
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("eve-secret-pass"), "{text}");
    }
    assert!(
        app.inspect
            .tasks()
            .iter()
            .all(|t| !t.body.to_string().contains("eve-secret-pass"))
    );
    app.login(REST, "eve@example.com", "eve-secret-pass").await;
}

#[tokio::test]
async fn a_handler_registered_after_start_is_found() {
    let secret = WebhookSecret::generate();
    let (url, received) = start_runner(&secret).await;
    *received.handlers.lock() = json!([]);
    let config = EmulatorConfig {
        runner: Some(RunnerLinkConfig::http(url, Secret::new(secret))),
        ..EmulatorConfig::dev()
    };
    let app = TestApp::start(config).await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let post = |title: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.call(
                Method::POST,
                REST,
                "data/Post",
                Some(&token),
                Some(json!({"title": title})),
            )
            .await
            .ok()
        }
    };
    assert_eq!(post("plain").await["title"], json!("plain"));
    *received.handlers.lock() = handlers();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post("plain").await["title"], json!("changed by handler"));
}

#[tokio::test]
async fn async_handlers_are_not_awaited_but_are_sent() {
    let (app, received) = linked(None).await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let row = app
        .call(
            Method::POST,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": "a"})),
        )
        .await
        .ok();
    let id = row["objectId"].as_str().unwrap();
    let updated = app
        .call(
            Method::PUT,
            REST,
            &format!("data/Post/{id}"),
            Some(&token),
            Some(json!({"body": "b"})),
        )
        .await
        .ok();
    assert_eq!(
        updated["body"],
        json!("b"),
        "the async handler's reply is ignored"
    );
    let mut tries = 0;
    while received.of(109).is_empty() {
        tries += 1;
        assert!(tries < 200, "the async task never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(received.of(109)[0].is_async);
}

#[tokio::test]
async fn a_runner_with_another_secret_refuses_and_the_client_sees_an_error() {
    let (url, received) = start_runner(&WebhookSecret::generate()).await;
    let config = EmulatorConfig {
        runner: Some(RunnerLinkConfig::http(
            url,
            Secret::new(WebhookSecret::generate()),
        )),
        ..EmulatorConfig::dev()
    };
    let app = TestApp::start(config).await;
    let r = app
        .call(
            Method::POST,
            REST,
            "users/login",
            None,
            Some(json!({"login": "bob@example.com", "password": "bob-pass"})),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(*received.bad_signatures.lock(), 1);
    assert!(received.tasks.lock().is_empty());
}

#[tokio::test]
async fn bulk_update_and_delete_fire_their_events() {
    let (app, received) = linked(None).await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let items = json!([{"n": 0}, {"n": 1}, {"n": 2}]);
    app.call(
        Method::POST,
        REST,
        "data/bulk/Thing",
        Some(&token),
        Some(items),
    )
    .await
    .ok();
    let n = app
        .call(
            Method::PUT,
            REST,
            "data/bulk/Thing?where=n%3C2",
            Some(&token),
            Some(json!({"x": 1})),
        )
        .await
        .ok();
    assert_eq!(n, json!(2));
    let task = &received.of(118)[0];
    assert_eq!(
        task.arguments.values[1..],
        [json!("Thing"), json!("n<2"), json!({"x": 1})]
    );
    let changed = app
        .call(
            Method::GET,
            REST,
            "data/Thing/count?where=bulk%3D'handler'%20and%20x%3D1",
            Some(&token),
            None,
        )
        .await
        .ok();
    assert_eq!(changed, json!(2), "the handler's changes were applied");
    let removed = app
        .call(
            Method::POST,
            REST,
            "data/bulk/Thing/delete",
            Some(&token),
            Some(json!({"where": "n >= 0"})),
        )
        .await
        .ok();
    assert_eq!(removed, json!({"removed": 3}));
    assert_eq!(received.of(121)[0].arguments.values[2], json!("n >= 0"));
}

#[tokio::test]
async fn the_task_log_masks_tokens_keys_and_passwords() {
    let (app, received) = linked(None).await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    app.call(
        Method::POST,
        REST,
        "data/Post",
        Some(&token),
        Some(json!({"title": "hello"})),
    )
    .await
    .ok();
    // The runner got the real values.
    let sent = received.of(100)[0].arguments.values[0].clone();
    assert_eq!(sent["userToken"], json!(token));
    let tasks = app
        .raw(
            Method::GET,
            &format!("{}/__emulator/tasks", app.base),
            None,
            None,
        )
        .await
        .ok();
    assert!(tasks.as_array().is_some_and(|t| t.len() >= 3), "{tasks}");
    let text = tasks.to_string();
    for secret in [token.as_str(), CLOUD, "alice-pass"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn without_a_handler_list_requests_are_refused_not_run_without_handlers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = EmulatorConfig {
        runner: Some(RunnerLinkConfig::http(
            url,
            Secret::new(WebhookSecret::generate()),
        )),
        ..EmulatorConfig::dev()
    };
    let app = TestApp::start(config).await;
    let users = app.inspect.rows("Users").len();
    let r = app
        .call(
            Method::POST,
            REST,
            "users/register",
            None,
            Some(json!({"email": "new@example.com", "password": "p"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (502, Some(0)), "{}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains("handler list") && message.contains("cannot be reached"),
        "{message}"
    );
    assert_eq!(app.inspect.rows("Users").len(), users, "nothing was stored");
    let r = app.call(Method::GET, REST, "data/Post", None, None).await;
    assert_eq!(r.status, 502, "{}", r.body);
    // Business logic's own calls fire no events, so they need no list.
    app.call(Method::GET, CLOUD, "data/Post", None, None)
        .await
        .ok();
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_handler_list() {
    let (app, received) = linked(None).await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let post = |title: &'static str| {
        app.call(
            Method::POST,
            REST,
            "data/Post",
            Some(&token),
            Some(json!({"title": title})),
        )
    };
    assert_eq!(post("a").await.ok()["title"], json!("changed by handler"));

    *received.handlers.lock() = Value::Null;
    app.inspect.expire_handler_list();
    // The refresh fails; the before-handler still runs and still validates.
    assert_eq!(post("b").await.ok()["title"], json!("changed by handler"));
    app.inspect.expire_handler_list();
    post("reject").await.err(4001, 403);
    assert_eq!(received.of(100).len(), 3);
    let titles: Vec<Value> = app
        .inspect
        .rows("Post")
        .into_iter()
        .map(|p| p["title"].clone())
        .collect();
    assert!(!titles.contains(&json!("reject")), "{titles:?}");
}
