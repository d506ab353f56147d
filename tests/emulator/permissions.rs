//! The dev app's permission matrix, cell by cell.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{CLOUD, REST, TestApp};

#[derive(Clone, Copy, Debug)]
enum Who {
    AnonRest,
    AliceRest,
    AdminRest,
    CloudCode,
    CloudCodeAlice,
}

const OK: Option<i64> = None;

/// (table, identity, [create, find, update, remove]); rows being updated or
/// removed belong to bob (Audit_log rows to admin: its owner policy shows).
fn matrix() -> Vec<(&'static str, Who, [Option<i64>; 4])> {
    use Who::*;
    vec![
        ("Post", AnonRest, [Some(1011), OK, Some(1012), Some(1014)]),
        ("Post", AliceRest, [OK, OK, OK, Some(1014)]),
        ("Post", AdminRest, [OK, OK, OK, Some(1014)]),
        ("Post", CloudCode, [OK, OK, OK, OK]),
        ("Post", CloudCodeAlice, [OK, OK, OK, OK]),
        (
            "Latest_post",
            AnonRest,
            [Some(1011), Some(1013), Some(1012), Some(1014)],
        ),
        ("Latest_post", AliceRest, [OK, OK, Some(1012), Some(1014)]),
        ("Latest_post", AdminRest, [OK, OK, Some(1012), Some(1014)]),
        (
            "Latest_post",
            CloudCode,
            [Some(1011), Some(1013), Some(1012), Some(1014)],
        ),
        (
            "Latest_post",
            CloudCodeAlice,
            [OK, OK, Some(1012), Some(1014)],
        ),
        (
            "Audit_log",
            AnonRest,
            [Some(1011), Some(1013), Some(1012), Some(1014)],
        ),
        (
            "Audit_log",
            AliceRest,
            [Some(1011), Some(1013), Some(1012), Some(1014)],
        ),
        ("Audit_log", AdminRest, [OK, OK, OK, OK]),
        (
            "Audit_log",
            CloudCode,
            [Some(1011), Some(1013), Some(1012), Some(1014)],
        ),
        (
            "Audit_log",
            CloudCodeAlice,
            [Some(1011), Some(1013), Some(1012), Some(1014)],
        ),
    ]
}

#[tokio::test]
async fn dev_app_permission_matrix() {
    let app = TestApp::dev().await;
    let (alice, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let (bob, bob_id) = app.login(REST, "bob@example.com", "bob-pass").await;
    let (admin, _) = app.login(REST, "admin@example.com", "admin-pass").await;
    let identity = |who: Who| -> (&str, Option<&str>) {
        match who {
            Who::AnonRest => (REST, None),
            Who::AliceRest => (REST, Some(alice.as_str())),
            Who::AdminRest => (REST, Some(admin.as_str())),
            Who::CloudCode => (CLOUD, None),
            Who::CloudCodeAlice => (CLOUD, Some(alice.as_str())),
        }
    };
    // A fresh row owned by bob (or admin for Audit_log), made through the API.
    let new_row = |table: &'static str| {
        let (owner_token, owner_id) = if table == "Audit_log" {
            (admin.clone(), None)
        } else {
            (bob.clone(), Some(bob_id.clone()))
        };
        let app = &app;
        async move {
            let row = app
                .call(
                    Method::POST,
                    REST,
                    &format!("data/{table}"),
                    Some(&owner_token),
                    Some(json!({"title": "row"})),
                )
                .await
                .ok();
            if let Some(id) = owner_id {
                assert_eq!(row["ownerId"], json!(id));
            }
            row["objectId"].as_str().unwrap().to_owned()
        }
    };
    let check =
        |table: &str, who: Who, op: &str, expected: Option<i64>, r: crate::helpers::Resp| {
            match expected {
                None => assert!(
                    (200..300).contains(&r.status),
                    "{table} {who:?} {op}: expected success, got {} {}",
                    r.status,
                    r.body
                ),
                Some(code) => {
                    assert_eq!(r.code(), Some(code), "{table} {who:?} {op}: {}", r.body);
                    assert_eq!(r.status, 400, "{table} {who:?} {op}");
                }
            }
        };
    for (table, who, [create, find, update, remove]) in matrix() {
        let (key, token) = identity(who);
        let r = app
            .call(
                Method::POST,
                key,
                &format!("data/{table}"),
                token,
                Some(json!({"title": "x"})),
            )
            .await;
        check(table, who, "create", create, r);
        let r = app
            .call(Method::GET, key, &format!("data/{table}"), token, None)
            .await;
        check(table, who, "find", find, r);
        let id = new_row(table).await;
        let r = app
            .call(Method::GET, key, &format!("data/{table}/{id}"), token, None)
            .await;
        check(table, who, "find by id", find, r);
        let r = app
            .call(
                Method::PUT,
                key,
                &format!("data/{table}/{id}"),
                token,
                Some(json!({"title": "y"})),
            )
            .await;
        check(table, who, "update", update, r);
        let r = app
            .call(
                Method::DELETE,
                key,
                &format!("data/{table}/{id}"),
                token,
                None,
            )
            .await;
        check(table, who, "remove", remove, r);
    }
}

#[tokio::test]
async fn owners_may_update_and_remove_their_own_rows() {
    let app = TestApp::dev().await;
    let (alice, alice_id) = app.login(REST, "alice@example.com", "alice-pass").await;
    let (bob, _) = app.login(REST, "bob@example.com", "bob-pass").await;
    let row = app
        .call(
            Method::POST,
            REST,
            "data/Latest_post",
            Some(&alice),
            Some(json!({"title": "mine"})),
        )
        .await
        .ok();
    assert_eq!(row["ownerId"], json!(alice_id));
    assert_eq!(row["updated"], json!(null));
    let id = row["objectId"].as_str().unwrap();
    app.call(
        Method::PUT,
        REST,
        &format!("data/Latest_post/{id}"),
        Some(&bob),
        Some(json!({"title": "b"})),
    )
    .await
    .err(1012, 400);
    let updated = app
        .call(
            Method::PUT,
            REST,
            &format!("data/Latest_post/{id}"),
            Some(&alice),
            Some(json!({"title": "a"})),
        )
        .await
        .ok();
    assert_eq!(updated["title"], json!("a"));
    assert!(updated["updated"].is_i64());
    let gone = app
        .call(
            Method::DELETE,
            REST,
            &format!("data/Latest_post/{id}"),
            Some(&alice),
            None,
        )
        .await
        .ok();
    assert!(gone["deletionTime"].is_i64());
    app.call(
        Method::GET,
        REST,
        &format!("data/Latest_post/{id}"),
        Some(&alice),
        None,
    )
    .await
    .err(1000, 404);
}

#[tokio::test]
async fn anonymous_rows_have_no_owner_and_roles_are_reported() {
    let app = TestApp::dev().await;
    let row = app
        .call(
            Method::PUT,
            CLOUD,
            "data/Post",
            None,
            Some(json!({"title": "bl"})),
        )
        .await
        .ok();
    assert_eq!(row["ownerId"], json!(null));
    assert_eq!(row["___class"], json!("Post"));
    let id = row["objectId"].as_str().unwrap();
    assert_eq!(id, id.to_uppercase());
    let roles = app
        .call(Method::GET, REST, "users/userroles", None, None)
        .await
        .ok();
    assert_eq!(roles, json!(["NotAuthenticatedUser", "RestUser"]));
    let (admin, _) = app.login(REST, "admin@example.com", "admin-pass").await;
    let roles = app
        .call(
            Method::GET,
            crate::helpers::JS,
            "users/userroles",
            Some(&admin),
            None,
        )
        .await
        .ok();
    assert_eq!(roles, json!(["Admin", "AuthenticatedUser", "JSUser"]));
    let (_, admin_id) = app.login(REST, "admin@example.com", "admin-pass").await;
    let roles = app
        .call(
            Method::GET,
            CLOUD,
            &format!("users/userroles/{admin_id}"),
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(roles, json!(["Admin", "AuthenticatedUser"]));
    app.call(Method::GET, CLOUD, "users/userroles/NOPE", None, None)
        .await
        .err(1000, 404);
}
