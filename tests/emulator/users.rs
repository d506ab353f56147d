//! Users against hostile clients: the per-row rule in bulk routes, no
//! password in a row, deleted users' credentials and sessions, emails that
//! belong to someone else.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{CLOUD, REST, TestApp};

const ALICE: &str = "email%3D'alice%40example.com'";

async fn can_log_in(app: &TestApp, email: &str, password: &str) -> bool {
    let r = app
        .call(
            Method::POST,
            REST,
            "users/login",
            None,
            Some(json!({"login": email, "password": password})),
        )
        .await;
    r.status == 200
}

#[tokio::test]
async fn bulk_routes_apply_the_per_user_rule() {
    let app = TestApp::dev().await;
    let (bob, bob_id) = app.login(REST, "bob@example.com", "bob-pass").await;

    // Anonymous and another user may neither rewrite nor delete alice.
    for token in [None, Some(bob.as_str())] {
        app.call(
            Method::PUT,
            REST,
            &format!("data/bulk/Users?where={ALICE}"),
            token,
            Some(json!({"name": "pwned"})),
        )
        .await
        .err(1012, 400);
        app.call(
            Method::DELETE,
            REST,
            &format!("data/bulk/Users?where={ALICE}"),
            token,
            None,
        )
        .await
        .err(1014, 400);
        app.call(
            Method::POST,
            REST,
            "data/bulk/Users/delete",
            token,
            Some(json!({"where": "email = 'alice@example.com'"})),
        )
        .await
        .err(1014, 400);
    }
    // One row bob may not touch refuses the whole operation.
    app.call(
        Method::PUT,
        REST,
        "data/bulk/Users?where=email%20LIKE%20'%25'",
        Some(&bob),
        Some(json!({"name": "everyone"})),
    )
    .await
    .err(1012, 400);
    let rows = app.inspect.rows("Users");
    assert!(rows.iter().all(|u| u.get("name").is_none()), "{rows:?}");
    assert!(can_log_in(&app, "alice@example.com", "alice-pass").await);

    // Bob may change his own row, and business logic anyone's.
    let n = app
        .call(
            Method::PUT,
            REST,
            &format!("data/bulk/Users?where=objectId%3D'{bob_id}'"),
            Some(&bob),
            Some(json!({"name": "Bob"})),
        )
        .await
        .ok();
    assert_eq!(n, json!(1));
    let n = app
        .call(
            Method::PUT,
            CLOUD,
            &format!("data/bulk/Users?where={ALICE}"),
            None,
            Some(json!({"name": "Alice"})),
        )
        .await
        .ok();
    assert_eq!(n, json!(1));
}

#[tokio::test]
async fn a_password_never_reaches_a_user_row() {
    let app = TestApp::dev().await;
    let (alice, alice_id) = app.login(REST, "alice@example.com", "alice-pass").await;
    // Through the bulk route, the single-row routes and the data save route.
    app.call(
        Method::PUT,
        REST,
        &format!("data/bulk/Users?where=objectId%3D'{alice_id}'"),
        Some(&alice),
        Some(json!({"password": "bulk-pass"})),
    )
    .await
    .ok();
    assert!(can_log_in(&app, "alice@example.com", "bulk-pass").await);
    app.call(
        Method::PUT,
        REST,
        &format!("data/Users/{alice_id}"),
        Some(&alice),
        Some(json!({"password": "row-pass"})),
    )
    .await
    .ok();
    app.call(
        Method::PUT,
        REST,
        "data/Users",
        Some(&alice),
        Some(json!({"objectId": alice_id, "password": "save-pass"})),
    )
    .await
    .ok();
    assert!(can_log_in(&app, "alice@example.com", "save-pass").await);
    assert!(!can_log_in(&app, "alice@example.com", "alice-pass").await);

    for row in app.inspect.rows("Users") {
        assert!(row.get("password").is_none(), "{row}");
    }
    let found = app
        .call(
            Method::GET,
            REST,
            "data/Users?where=password%20IS%20NOT%20NULL",
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(found, json!([]));
}

#[tokio::test]
async fn a_bulk_deleted_user_can_register_again_and_its_token_is_dead() {
    let app = TestApp::dev().await;
    let (alice, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let removed = app
        .call(
            Method::DELETE,
            CLOUD,
            &format!("data/bulk/Users?where={ALICE}"),
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(removed, json!(1));
    app.call(Method::GET, REST, "users/userroles", Some(&alice), None)
        .await
        .err(3064, 401);
    assert!(!can_log_in(&app, "alice@example.com", "alice-pass").await);
    let again = app
        .call(
            Method::POST,
            REST,
            "users/register",
            None,
            Some(json!({"email": "alice@example.com", "password": "new-pass"})),
        )
        .await
        .ok();
    assert!(again["objectId"].is_string(), "{again}");
    assert!(can_log_in(&app, "alice@example.com", "new-pass").await);
}

#[tokio::test]
async fn a_user_cannot_take_another_users_email() {
    let app = TestApp::dev().await;
    let (bob, bob_id) = app.login(REST, "bob@example.com", "bob-pass").await;
    for path in [format!("users/{bob_id}"), format!("data/Users/{bob_id}")] {
        app.call(
            Method::PUT,
            REST,
            &path,
            Some(&bob),
            Some(json!({"email": "ALICE@example.com"})),
        )
        .await
        .err(3033, 400);
    }
    assert!(can_log_in(&app, "alice@example.com", "alice-pass").await);
    let emails: Vec<Value> = app
        .inspect
        .rows("Users")
        .into_iter()
        .map(|u| u["email"].clone())
        .collect();
    assert_eq!(
        emails
            .iter()
            .filter(|e| **e == json!("bob@example.com"))
            .count(),
        1
    );

    // A free email moves the login with it.
    app.call(
        Method::PUT,
        REST,
        &format!("users/{bob_id}"),
        Some(&bob),
        Some(json!({"email": "robert@example.com"})),
    )
    .await
    .ok();
    assert!(can_log_in(&app, "robert@example.com", "bob-pass").await);
    assert!(!can_log_in(&app, "bob@example.com", "bob-pass").await);
}
