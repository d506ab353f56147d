//! The hourly digest timer and the `postStats` custom event through the
//! emulator, as a backend fires and dispatches them.

use coderunner::testing::TestApp;
use serde_json::{Value, json};

use crate::handlers;

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", app.api_root("dev-rest-key")))
        .json(&body);
    if let Some(token) = token {
        request = request.header("user-token", token);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn post_stats_answers_as_the_caller_and_refuses_anonymous_callers() {
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

    let (status, stats) = post(
        &app,
        "/servercode/events/postStats",
        Some(alice.token.expose()),
        json!({}),
    )
    .await;
    assert_eq!((status, &stats), (200, &json!({"mine": 2})));
    let (_, stats) = post(
        &app,
        "/servercode/events/postStats",
        Some(bob.token.expose()),
        json!({}),
    )
    .await;
    assert_eq!(stats, json!({"mine": 1}));

    let (status, refused) = post(&app, "/servercode/events/postStats", None, json!({})).await;
    assert_eq!((status, &refused["code"]), (401, &json!(4010)), "{refused}");

    let (status, missing) = post(&app, "/servercode/events/nobodyListens", None, json!({})).await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test]
async fn post_stats_dispatched_asynchronously_answers_at_once() {
    let app = TestApp::start(handlers::register).await;
    let alice = app.login("alice@example.com").await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/servercode/events/postStats",
            app.api_root("dev-rest-key")
        ))
        .header("user-token", alice.token.expose())
        .header("bl-execution-type", "async")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
}

#[tokio::test]
async fn the_digest_timer_counts_the_posts_as_the_superuser() {
    let app = TestApp::start(handlers::register).await;
    let alice = app.login("alice@example.com").await;
    app.create(Some(&alice), "Post", json!({"title": "counted"}))
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/__emulator/timers/{}/run",
            app.emulator_url(),
            handlers::digest::DIGEST_TIMER
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let rows = app.rows("Digest");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["posts"], 1);
    // A timer nobody registered.
    let response = reqwest::Client::new()
        .post(format!("{}/__emulator/timers/nope/run", app.emulator_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
