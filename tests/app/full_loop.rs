//! The emulator fires business logic at the real runner over HTTP and
//! applies what the handlers decided.

use std::sync::Arc;

use coderunner::event::persistence;
use coderunner::testing::TestApp;
use coderunner::{After, Before, Context, HandlerError, Outcome, Registry, RegistryError};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// (event, userId, userToken, roles) as each handler saw them.
type Calls = Arc<Mutex<Vec<(&'static str, Option<String>, Option<String>, Vec<String>)>>>;

fn record(calls: &Calls, event: &'static str, ctx: &Context) {
    let runner = ctx.runner();
    let token = runner.user_token.as_ref().map(|t| t.expose().to_owned());
    calls.lock().push((
        event,
        runner.user_id.clone(),
        token,
        runner.user_roles.clone(),
    ));
}

fn handlers(calls: Calls) -> impl FnOnce(&mut Registry) -> Result<(), RegistryError> {
    move |registry| {
        let seen = Arc::clone(&calls);
        registry.before(
            persistence::BEFORE_CREATE,
            "Post",
            move |ctx: Context, mut row: Value| {
                let seen = Arc::clone(&seen);
                async move {
                    record(&seen, "beforeCreate", &ctx);
                    match row["title"].as_str() {
                        Some("forbidden") => {
                            Err(HandlerError::new(4242, "not this title").with_status(409))
                        }
                        _ => {
                            row["stamped"] = json!(true);
                            Ok(Before::Continue(row))
                        }
                    }
                }
            },
        )?;
        let seen = Arc::clone(&calls);
        registry.after(
            persistence::AFTER_CREATE,
            "Post",
            move |ctx: Context, _row: Value, created: Outcome<Value>| {
                let seen = Arc::clone(&seen);
                async move {
                    record(&seen, "afterCreate", &ctx);
                    let mut result = created.into_result().unwrap_or_default();
                    result["decoratedBy"] = json!("afterCreate");
                    Ok(After::Replace(result))
                }
            },
        )?;
        Ok(())
    }
}

#[tokio::test]
async fn handlers_see_the_real_caller_and_their_outcomes_reach_the_client() {
    let calls: Calls = Arc::default();
    let app = TestApp::start(handlers(Arc::clone(&calls))).await;
    let alice = app.login("alice@example.com").await;

    let post = app
        .create(Some(&alice), "Post", json!({"title": "hello"}))
        .await
        .unwrap();
    assert_eq!(
        post["decoratedBy"], "afterCreate",
        "the after-handler's replacement reaches the client"
    );
    assert_eq!(
        post["stamped"], true,
        "the before-handler's change was stored"
    );
    let stored = app.rows("Post");
    assert_eq!(stored[0]["stamped"], true);
    assert!(
        stored[0].get("decoratedBy").is_none(),
        "the replacement is not stored"
    );

    {
        let seen = calls.lock();
        assert_eq!(seen.len(), 2);
        for (event, user_id, token, roles) in seen.iter() {
            assert_eq!(user_id.as_deref(), Some(alice.id.as_str()), "{event}");
            assert_eq!(token.as_deref(), Some(alice.token.expose()), "{event}");
            assert!(
                roles.iter().any(|r| r == "AuthenticatedUser"),
                "{event}: {roles:?}"
            );
        }
    }

    let err = app
        .create(Some(&alice), "Post", json!({"title": "forbidden"}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code, err.message.as_str()),
        (409, 4242, "not this title")
    );
    assert_eq!(
        app.rows("Post").len(),
        1,
        "the rejected create stored nothing"
    );

    calls.lock().clear();
    let with_cloudcode: Value = reqwest::Client::new()
        .post(format!("{}/data/Post", app.api_root("dev-cloudcode-key")))
        .json(&json!({"title": "from server code"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(with_cloudcode["title"], "from server code");
    assert!(with_cloudcode.get("decoratedBy").is_none());
    assert!(
        calls.lock().is_empty(),
        "a create with the CloudCode key reaches no handler"
    );
}
