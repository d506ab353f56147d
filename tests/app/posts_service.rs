//! The `Posts` API service through the emulator, called as a client calls
//! it (REST, and the SDK a handler uses), with the custom event beside it.

use coderunner::sdk::{Backendless, SdkConfig, SdkError};
use coderunner::testing::TestApp;
use serde_json::{Value, json};

use crate::handlers;
use crate::handlers::posts_service::PostCount;

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(
        method,
        format!("{}/services/Posts{path}", app.api_root("dev-rest-key")),
    );
    if let Some(token) = token {
        request = request.header("user-token", token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn my_post_count_answers_as_the_caller_with_its_header() {
    let app = TestApp::start(handlers::register).await;
    let alice = app.login("alice@example.com").await;
    let bob = app.login("bob@example.com").await;
    for title in ["one", "two"] {
        app.create(Some(&alice), "Post", json!({"title": title}))
            .await
            .unwrap();
    }
    app.create(Some(&bob), "Post", json!({"title": "bob's"}))
        .await
        .unwrap();

    let response = call(
        &app,
        reqwest::Method::POST,
        "/myPostCount",
        Some(alice.token.expose()),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-counted-for"].to_str().unwrap(),
        alice.id,
        "the header the method set"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"count": 2, "label": "posts"})
    );
    let response = call(
        &app,
        reqwest::Method::POST,
        "/myPostCount",
        Some(bob.token.expose()),
    )
    .await;
    assert_eq!(response.json::<Value>().await.unwrap()["count"], 1);

    // Anonymous: the method's own error, with the status it chose.
    let response = call(&app, reqwest::Method::POST, "/myPostCount", None).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["code"],
        handlers::posts_service::NOT_LOGGED_IN,
        "{body}"
    );

    // The task carried the caller, as the context a service gets.
    let task = app
        .inspect()
        .tasks()
        .into_iter()
        .rev()
        .find(|t| t.target == "Posts.myPostCount")
        .expect("a service task was sent");
    assert_eq!(
        task.body["___jsonclass"],
        "com.backendless.coderunner.commons.protocol.RequestServiceInvocation"
    );
    assert_eq!(task.body["className"], "services.Posts");
}

#[tokio::test]
async fn unknown_services_and_methods_are_backendless_errors() {
    let app = TestApp::start(handlers::register).await;
    let response = reqwest::Client::new()
        .post(format!("{}/services/Nope/x", app.api_root("dev-rest-key")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 14001);
    let response = call(&app, reqwest::Method::POST, "/nope", None).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 14002);
    // The method's default route is POST.
    let response = call(&app, reqwest::Method::GET, "/myPostCount", None).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_sdk_invokes_services_and_dispatches_events_as_its_identity() {
    let app = TestApp::start(handlers::register).await;
    let alice = app.login("alice@example.com").await;
    app.create(Some(&alice), "Post", json!({"title": "one"}))
        .await
        .unwrap();
    let sdk = Backendless::new(SdkConfig::new(
        app.emulator_url(),
        "dev-app",
        "dev-rest-key".into(),
    ))
    .unwrap();
    let as_alice = sdk.caller(Some(alice.token.clone()));

    let count: PostCount = as_alice
        .services()
        .invoke("Posts", "myPostCount", &())
        .await
        .unwrap();
    assert_eq!(
        count,
        PostCount {
            count: 1,
            label: "posts".into()
        }
    );
    let stats: Value = as_alice
        .events()
        .dispatch("postStats", &json!({}))
        .await
        .unwrap();
    assert_eq!(stats, json!({"mine": 1}));
    as_alice
        .services()
        .invoke_async("Posts", "myPostCount", &())
        .await
        .unwrap();
    as_alice
        .events()
        .dispatch_async("postStats", &json!({}))
        .await
        .unwrap();

    // Anonymous: the method's error, with its Backendless code.
    let anonymous = sdk.caller(None);
    let error = anonymous
        .services()
        .invoke::<_, Value>("Posts", "myPostCount", &())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(handlers::posts_service::NOT_LOGGED_IN));
    let error = anonymous
        .services()
        .invoke::<_, Value>("Nope", "x", &())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(14001));
    // Arguments of an event must be an object: refused before any request.
    let error = anonymous
        .events()
        .dispatch::<_, Value>("postStats", &json!([1]))
        .await
        .unwrap_err();
    assert!(matches!(error, SdkError::InvalidArgument { .. }), "{error}");

    // Deadline-aware: a client whose deadline passed sends nothing.
    let late = as_alice.with_deadline(tokio::time::Instant::now());
    let error = late
        .services()
        .invoke::<_, Value>("Posts", "myPostCount", &())
        .await
        .unwrap_err();
    assert!(matches!(error, SdkError::Timeout { .. }), "{error}");
}

/// A service of the test's own: routes, status, cookies, async.
fn shop(registry: &mut coderunner::Registry) -> Result<(), coderunner::RegistryError> {
    use coderunner::ServiceContext;
    use coderunner::service::{ParamType, Service, ServiceMethod};
    registry.service(
        Service::new("Shop")
            .method(
                ServiceMethod::new("sum")
                    .param("a", ParamType::Number)
                    .param("b", ParamType::Number)
                    .returns(ParamType::Number)
                    .route("POST /sum"),
                |ctx: ServiceContext, (a, b): (i64, i64)| async move {
                    ctx.set_status(201);
                    ctx.add_cookie("cart=1; Path=/");
                    ctx.add_cookie("seen=yes");
                    Ok(a + b)
                },
            )
            .method(
                ServiceMethod::new("item")
                    .param("id", ParamType::String)
                    .returns(ParamType::Object)
                    .route("GET /items/{id}"),
                |ctx: ServiceContext, id: String| async move {
                    Ok(json!({"id": id, "pathId": ctx.path_params().get("id"),
                              "path": ctx.path(), "q": ctx.query_params().get("id")}))
                },
            ),
    )?;
    Ok(())
}

#[tokio::test]
async fn routes_statuses_and_cookies_reach_the_client() {
    let app = TestApp::start(shop).await;
    let root = app.api_root("dev-rest-key");
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{root}/services/Shop/sum"))
        .json(&json!({"a": 2, "b": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["cart=1; Path=/", "seen=yes"]);
    assert_eq!(response.json::<Value>().await.unwrap(), json!(5));

    // A missing parameter: 400 naming it.
    let response = http
        .post(format!("{root}/services/Shop/sum"))
        .json(&json!({"a": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("parameter `b` is missing"),
        "{body}"
    );

    // A declared GET route: the parameter from the query, the path's own.
    let response = http
        .get(format!("{root}/services/Shop/items/42?id=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"id": "7", "pathId": "42", "path": "/items/42", "q": "7"})
    );

    // Asynchronous: answered at once, the method still runs.
    let before = app.inspect().tasks().len();
    let response = http
        .post(format!("{root}/services/Shop/sum"))
        .header("bl-execution-type", "async")
        .json(&json!({"a": 1, "b": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(app.inspect().tasks().len(), before + 1);
}

#[tokio::test]
async fn the_emulator_s_service_configuration_reaches_the_method_typed() {
    use coderunner::emulator::{EmulatorConfig, Secret};
    let mut config = EmulatorConfig::dev();
    config.service_config.insert(
        "Posts".to_owned(),
        [("label".to_owned(), Secret::new("articles"))].into(),
    );
    let app = TestApp::start_with(config, handlers::register).await;
    let alice = app.login("alice@example.com").await;
    let response = call(
        &app,
        reqwest::Method::POST,
        "/myPostCount",
        Some(alice.token.expose()),
    )
    .await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"count": 0, "label": "articles"})
    );
    // What the emulator shows of the task hides the value.
    let task = app
        .inspect()
        .tasks()
        .into_iter()
        .find(|t| t.target == "Posts.myPostCount")
        .unwrap();
    assert_eq!(
        task.body["invocationContextDto"]["configurationItems"],
        json!([{"name": "label", "value": "[redacted]", "productId": null}])
    );
}

/// A custom event whose handler leaves a trace: a `Note` row.
fn noting(registry: &mut coderunner::Registry) -> Result<(), coderunner::RegistryError> {
    registry.custom_event("note", |ctx: coderunner::Context, args: Value| async move {
        ctx.server_key()
            .table::<Value>("Note")
            .create(&args)
            .await?;
        Ok(json!({"noted": true}))
    })?;
    Ok(())
}

#[tokio::test]
async fn a_custom_event_dispatched_async_answers_at_once_and_its_handler_runs() {
    let app = TestApp::start(noting).await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/servercode/events/note",
            app.api_root("dev-rest-key")
        ))
        .header("bl-execution-type", "async")
        .json(&json!({"text": "later"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    // The handler runs after the answer: its row appears (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.rows("Note").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the async handler never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.rows("Note")[0]["text"], "later");
    // Dispatched sync, the handler's result comes back.
    let response = reqwest::Client::new()
        .post(format!(
            "{}/servercode/events/note",
            app.api_root("dev-rest-key")
        ))
        .json(&json!({"text": "now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"noted": true})
    );
    assert_eq!(app.rows("Note").len(), 2);
}
