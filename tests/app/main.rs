//! The example app of `handlers/` end to end: through the emulator's REST
//! API as real clients, through the test harness, and through replay.

mod digest;
mod full_loop;
#[path = "../../handlers/mod.rs"]
mod handlers;
mod posts_service;
mod replay;

use coderunner::event::persistence;
use coderunner::sdk::{Backendless, Query, SdkConfig};
use coderunner::testing::TestApp;
use coderunner::{After, Context, Outcome, Registry, RegistryError};
use serde_json::{Value, json};

const ADMIN: &str = "admin@example.com";

#[tokio::test]
async fn before_create_trims_and_rejects_titles() {
    let app = TestApp::start(handlers::register).await;
    let reply = app
        .invoke(persistence::BEFORE_CREATE, "Post")
        .arg(json!({"title": "  Hello  "}))
        .send()
        .await;
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(reply.arg(1)["title"], "Hello");

    for title in [json!("   "), Value::Null, json!("x".repeat(201))] {
        let reply = app
            .invoke(persistence::BEFORE_CREATE, "Post")
            .arg(json!({"title": title}))
            .send()
            .await;
        let error = reply.error().expect("rejected");
        assert_eq!(
            (error.code, error.http_status_code),
            (handlers::posts::INVALID_TITLE, 400)
        );
    }
    let reply = app
        .invoke(persistence::BEFORE_CREATE, "Post")
        .arg(json!({"title": "x".repeat(200)}))
        .send()
        .await;
    assert!(reply.is_ok());
}

#[tokio::test]
async fn a_post_through_the_emulator_is_recorded_as_the_caller_and_audited() {
    let app = TestApp::start(handlers::register).await;
    let alice = app.login("alice@example.com").await;
    let post = app
        .create(Some(&alice), "Post", json!({"title": "  First post  "}))
        .await
        .unwrap();
    assert_eq!(
        post["title"], "First post",
        "the stored title is the trimmed one"
    );
    assert_eq!(post["ownerId"], json!(alice.id));

    let latest = app.rows("Latest_post");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["postId"], post["objectId"]);
    assert_eq!(latest[0]["title"], "First post");
    assert_eq!(
        latest[0]["ownerId"],
        json!(alice.id),
        "written with the caller's token"
    );

    let audit: Vec<Value> = app
        .rows("Audit_log")
        .into_iter()
        .filter(|r| r["action"] == "post.created")
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["postId"], post["objectId"]);
    assert_eq!(audit[0]["userId"], json!(alice.id));

    let logins: Vec<Value> = app
        .rows("Audit_log")
        .into_iter()
        .filter(|r| r["action"] == "user.login")
        .collect();
    assert_eq!(logins.len(), 1, "afterLogin audited alice's login");
    assert_eq!(logins[0]["userId"], json!(alice.id));

    // The relations the handlers set in their transactions: the Latest_post
    // row's `post`, the audit row's `user`.
    let admin = app.login("admin@example.com").await;
    let sdk = Backendless::new(SdkConfig::new(
        app.emulator_url(),
        "dev-app",
        "dev-rest-key".to_owned().into(),
    ))
    .unwrap();
    let related = sdk
        .caller(Some(admin.token.clone()))
        .table::<Value>("Audit_log")
        .find(
            &Query::new()
                .where_clause("action = 'post.created'")
                .load_relations(["user"]),
        )
        .await
        .unwrap();
    assert_eq!(related[0].data["user"]["objectId"], json!(alice.id));
    let latest_row = sdk
        .caller(Some(alice.token.clone()))
        .table::<Value>("Latest_post")
        .find_by_id_with(
            latest[0]["objectId"].as_str().unwrap(),
            &Query::new().load_relations(["post"]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest_row.data["post"]["objectId"], post["objectId"]);

    let err = app
        .create(Some(&alice), "Post", json!({"title": " "}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code, err.message.as_str()),
        (400, 4001, "A post needs a title")
    );
    let err = app
        .create(None, "Post", json!({"title": "anonymous"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 1011);
    assert_eq!(app.rows("Post").len(), 1, "rejected creates stored nothing");
    app.stop().await;
}

/// Which identity the thread-story handler writes `Latest_post` with.
fn thread_story(registry: &mut Registry) -> Result<(), RegistryError> {
    registry.after(
        persistence::AFTER_CREATE,
        "Post",
        |ctx: Context, _post: Value, created: Outcome<Value>| async move {
            let post = created.into_result().unwrap_or_default();
            let row = json!({"postId": post["objectId"], "title": post["title"]});
            let client = match post["identity"].as_str() {
                Some("server_key") => ctx.server_key(),
                Some("superuser") => ctx.superuser(),
                _ => ctx.caller(),
            };
            let saved = client.table("Latest_post").create(&row).await?;
            Ok(After::Replace(serde_json::to_value(saved)?))
        },
    )?;
    Ok(())
}

#[tokio::test]
async fn the_support_thread_story() {
    let app = TestApp::start(thread_story).await;
    let alice = app.login("alice@example.com").await;
    let created = |identity: &str| json!({"objectId": format!("P-{identity}"), "title": "t", "identity": identity});

    let reply = app
        .invoke(persistence::AFTER_CREATE, "Post")
        .as_user(&alice)
        .arg(json!({}))
        .result(created("server_key"))
        .send()
        .await;
    let error = reply
        .error()
        .expect("the server key alone may not create in Latest_post");
    assert_eq!(error.code, 1011, "{error:?}");
    assert!(error.exception_message.contains("permission"), "{error:?}");

    let reply = app
        .invoke(persistence::AFTER_CREATE, "Post")
        .as_user(&alice)
        .arg(json!({}))
        .result(created("caller"))
        .send()
        .await;
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(
        reply.result().unwrap()["ownerId"],
        json!(alice.id),
        "the caller owns the row"
    );

    let reply = app
        .invoke(persistence::AFTER_CREATE, "Post")
        .as_user(&alice)
        .arg(json!({}))
        .result(created("superuser"))
        .send()
        .await;
    assert!(reply.is_ok(), "{reply:?}");
    let admin = app.login(ADMIN).await;
    assert_eq!(
        reply.result().unwrap()["ownerId"],
        json!(admin.id),
        "the superuser owns its row"
    );

    let rows = app.rows("Latest_post");
    let ids: Vec<&str> = rows.iter().map(|r| r["postId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["P-caller", "P-superuser"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_posts_one_superuser_login() {
    let app = TestApp::start(handlers::register).await;
    let alice = app.login("alice@example.com").await;
    let bob = app.login("bob@example.com").await;
    let logins_before = app.inspect().login_count(ADMIN);
    assert!(
        logins_before <= 1,
        "the afterLogin audits may have logged the superuser in once"
    );

    let creates = (0..50).map(|i| {
        let user = if i % 2 == 0 { &alice } else { &bob };
        let app = &app;
        async move {
            let post = app
                .create(Some(user), "Post", json!({"title": format!("post {i}")}))
                .await
                .expect("created");
            (
                post["objectId"].as_str().unwrap().to_owned(),
                user.id.clone(),
            )
        }
    });
    let posts: Vec<(String, String)> = futures::future::join_all(creates).await;

    let latest = app.rows("Latest_post");
    assert_eq!(latest.len(), 50);
    for (post_id, owner) in &posts {
        let row = latest
            .iter()
            .find(|r| r["postId"] == json!(post_id))
            .expect("a Latest_post row per post");
        assert_eq!(row["ownerId"], json!(owner));
    }
    let audits = app
        .rows("Audit_log")
        .into_iter()
        .filter(|r| r["action"] == "post.created")
        .count();
    assert_eq!(audits, 50);
    assert_eq!(
        app.inspect().login_count(ADMIN),
        1,
        "exactly one superuser login in the whole run"
    );
}

#[test]
fn registering_the_app_twice_names_both_handlers() {
    let mut registry = Registry::new();
    handlers::register(&mut registry).unwrap();
    let err = handlers::register(&mut registry).unwrap_err().to_string();
    assert!(
        err.contains("before_create") && err.contains("registered twice"),
        "{err}"
    );
}
