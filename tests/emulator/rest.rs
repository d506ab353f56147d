//! Users, data routes (REST docs' and JS SDK's), errors, inspection and
//! persistence across a restart.

use coderunner::emulator::{EmulatorConfig, KeyKind};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{APP, CLOUD, JS, REST, TestApp};

#[tokio::test]
async fn register_login_logout_and_token_checks() {
    let app = TestApp::dev().await;
    let user = app
        .call(
            Method::POST,
            JS,
            "users/register",
            None,
            Some(json!({"email": "carol@example.com", "password": "c-pass", "name": "Carol"})),
        )
        .await
        .ok();
    assert_eq!(user["email"], json!("carol@example.com"));
    assert_eq!(user["___class"], json!("Users"));
    assert!(user.get("password").is_none(), "{user}");
    assert!(
        user.get("user-token").is_none(),
        "register must not log in: {user}"
    );
    app.call(
        Method::POST,
        JS,
        "users/register",
        None,
        Some(json!({"email": "carol@example.com", "password": "x"})),
    )
    .await
    .err(3033, 400);

    app.call(
        Method::POST,
        JS,
        "users/login",
        None,
        Some(json!({"login": "carol@example.com", "password": "wrong"})),
    )
    .await
    .err(3003, 401);
    let (token, id) = app.login(JS, "carol@example.com", "c-pass").await;
    assert_eq!(app.inspect.login_count("carol@example.com"), 1);
    let me = app
        .call(
            Method::GET,
            JS,
            &format!("data/Users/{id}"),
            Some(&token),
            None,
        )
        .await
        .ok();
    assert_eq!(me["name"], json!("Carol"));
    assert!(me.get("password").is_none());
    let valid = app
        .call(
            Method::GET,
            JS,
            &format!("users/isvalidusertoken/{token}"),
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(valid, json!(true));

    app.call(Method::GET, JS, "users/logout", None, None)
        .await
        .err(3007, 400);
    app.call(Method::GET, JS, "users/logout", Some(&token), None)
        .await
        .ok();
    let valid = app
        .call(
            Method::GET,
            JS,
            &format!("users/isvalidusertoken/{token}"),
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(valid, json!(false));
    app.call(Method::GET, JS, "users/logout", Some(&token), None)
        .await
        .err(3064, 401);
    app.call(Method::GET, JS, "data/Post", Some(&token), None)
        .await
        .err(3064, 401);
    app.call(Method::GET, JS, "data/Post", Some("NOT-A-TOKEN"), None)
        .await
        .err(3064, 401);
    // Login, register and token validation ignore a stale token header.
    let valid = app
        .call(
            Method::GET,
            JS,
            &format!("users/isvalidusertoken/{token}"),
            Some(&token),
            None,
        )
        .await
        .ok();
    assert_eq!(valid, json!(false));
    let relogin = app
        .call(
            Method::POST,
            JS,
            "users/login",
            Some(&token),
            Some(json!({"login": "carol@example.com", "password": "c-pass"})),
        )
        .await
        .ok();
    assert_ne!(relogin["user-token"], json!(token));
    app.call(
        Method::GET,
        "bad-key",
        &format!("users/isvalidusertoken/{token}"),
        None,
        None,
    )
    .await
    .err(2002, 401);

    // Only the user (or business logic) may change a user.
    let (bob, _) = app.login(JS, "bob@example.com", "bob-pass").await;
    app.call(
        Method::PUT,
        JS,
        &format!("users/{id}"),
        Some(&bob),
        Some(json!({"password": "x"})),
    )
    .await
    .err(1012, 400);
    app.call(
        Method::PUT,
        JS,
        &format!("data/Users/{id}"),
        None,
        Some(json!({"name": "x"})),
    )
    .await
    .err(1012, 400);
    app.call(
        Method::DELETE,
        JS,
        &format!("data/Users/{id}"),
        Some(&bob),
        None,
    )
    .await
    .err(1014, 400);
    // A password change through PUT /users/{id}.
    let (token, _) = app.login(JS, "carol@example.com", "c-pass").await;
    app.call(
        Method::PUT,
        JS,
        &format!("users/{id}"),
        Some(&token),
        Some(json!({"password": "new-pass", "name": "C"})),
    )
    .await
    .ok();
    app.call(
        Method::POST,
        JS,
        "users/login",
        None,
        Some(json!({"login": "carol@example.com", "password": "c-pass"})),
    )
    .await
    .err(3003, 401);
    let (token, _) = app.login(JS, "carol@example.com", "new-pass").await;
    // Removing a user ends its sessions and its login.
    app.call(
        Method::DELETE,
        JS,
        &format!("data/Users/{id}"),
        Some(&token),
        None,
    )
    .await
    .ok();
    app.call(Method::GET, JS, "data/Post", Some(&token), None)
        .await
        .err(3064, 401);
    app.call(
        Method::POST,
        JS,
        "users/login",
        None,
        Some(json!({"login": "carol@example.com", "password": "new-pass"})),
    )
    .await
    .err(3003, 401);
    app.call(
        Method::POST,
        JS,
        "users/register",
        None,
        Some(json!({"email": "carol@example.com", "password": "again"})),
    )
    .await
    .ok();
}

#[tokio::test]
async fn passwordless_login_needs_the_cloudcode_key() {
    let app = TestApp::dev().await;
    let (_, alice_id) = app.login(REST, "alice@example.com", "alice-pass").await;
    app.call(
        Method::POST,
        REST,
        "users/login",
        None,
        Some(json!({"objectId": alice_id})),
    )
    .await
    .err(3003, 401);
    let user = app
        .call(
            Method::POST,
            CLOUD,
            "users/login",
            None,
            Some(json!({"objectId": alice_id})),
        )
        .await
        .ok();
    assert!(user["user-token"].is_string());
    assert_eq!(app.inspect.login_count("alice@example.com"), 2);
}

#[tokio::test]
async fn unknown_app_or_key_and_malformed_json() {
    let app = TestApp::dev().await;
    let r = app
        .raw(
            Method::GET,
            &format!("{}/nope/{REST}/data/Post", app.base),
            None,
            None,
        )
        .await;
    r.err(2002, 401);
    let r = app
        .raw(
            Method::GET,
            &format!("{}/{APP}/nope/data/Post", app.base),
            None,
            None,
        )
        .await;
    r.err(2002, 401);
    let r = app
        .raw(
            Method::POST,
            &format!("{}/{APP}/{REST}/users/login", app.base),
            None,
            Some("{not json".into()),
        )
        .await;
    r.err(8002, 400);
    let r = app
        .raw(
            Method::POST,
            &format!("{}/{APP}/{CLOUD}/data/Post", app.base),
            None,
            Some("[1,2]".into()),
        )
        .await;
    r.err(8002, 400);
    let preflight = app
        .client
        .request(
            Method::OPTIONS,
            format!("{}/{APP}/{JS}/data/Post", app.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let info = app.call(Method::GET, JS, "info", None, None).await.ok();
    assert_eq!(info["appId"], json!(APP));
}

async fn seed(app: &TestApp, table: &str, n: i64) {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"n": i, "name": format!("item{i}")}))
        .collect();
    let ids = app
        .call(
            Method::POST,
            CLOUD,
            &format!("data/bulk/{table}"),
            None,
            Some(Value::Array(items)),
        )
        .await
        .ok();
    assert_eq!(ids.as_array().unwrap().len(), n as usize);
}

#[tokio::test]
async fn find_count_paging_sorting_props_on_both_routes() {
    let app = TestApp::dev().await;
    seed(&app, "Thing", 25).await;
    let page = app
        .call(Method::GET, REST, "data/Thing", None, None)
        .await
        .ok();
    assert_eq!(page.as_array().unwrap().len(), 10, "default page size");
    let page = app
        .call(
            Method::GET,
            REST,
            "data/Thing?where=n%20%3E%3D%2010&pageSize=5&offset=2&sortBy=n%20desc&props=n",
            None,
            None,
        )
        .await
        .ok();
    let ns: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, vec![22, 21, 20, 19, 18]);
    assert!(
        page[0].get("name").is_none(),
        "props keeps only n: {}",
        page[0]
    );
    let page = app
        .call(
            Method::POST,
            JS,
            "data/Thing/find",
            None,
            Some(json!({"where": "n < 3", "sortBy": ["name DESC"], "props": ["name", "n"]})),
        )
        .await
        .ok();
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["item2", "item1", "item0"]);
    let all = app
        .call(
            Method::POST,
            JS,
            "data/Thing/find",
            None,
            Some(json!({"props": "*", "pageSize": 1})),
        )
        .await
        .ok();
    assert!(all[0]["name"].is_string() && all[0]["n"].is_i64(), "{all}");
    let n = app
        .call(
            Method::GET,
            REST,
            "data/Thing/count?where=n%3C5",
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(n, json!(5));
    let n = app
        .call(
            Method::POST,
            JS,
            "data/Thing/count",
            None,
            Some(json!({"where": "n >= 20"})),
        )
        .await
        .ok();
    assert_eq!(n, json!(5));
    let n = app
        .call(Method::POST, JS, "data/Thing/count", None, Some(json!({})))
        .await
        .ok();
    assert_eq!(n, json!(25));
    for bad in ["pageSize=0", "pageSize=101", "offset=-1", "sortBy=n%3Bdrop"] {
        app.call(Method::GET, REST, &format!("data/Thing?{bad}"), None, None)
            .await
            .err(8002, 400);
    }
    let page = app
        .call(Method::GET, REST, "data/Thing?pageSize=100", None, None)
        .await
        .ok();
    assert_eq!(page.as_array().unwrap().len(), 25);
}

#[tokio::test]
async fn create_update_delete_routes_and_bulk() {
    let app = TestApp::dev().await;
    // POST and the SDK's PUT both create; PUT with an existing objectId updates.
    let a = app
        .call(
            Method::POST,
            REST,
            "data/Thing",
            None,
            Some(json!({"v": 1})),
        )
        .await
        .ok();
    let b = app
        .call(Method::PUT, JS, "data/Thing", None, Some(json!({"v": 2})))
        .await
        .ok();
    assert_ne!(a["objectId"], b["objectId"]);
    let id = a["objectId"].as_str().unwrap();
    let a2 = app
        .call(
            Method::PUT,
            JS,
            "data/Thing",
            None,
            Some(json!({"objectId": id, "w": 9})),
        )
        .await
        .ok();
    assert_eq!(
        (a2["v"].clone(), a2["w"].clone(), a2["created"].clone()),
        (json!(1), json!(9), a["created"].clone())
    );
    let a3 = app
        .call(
            Method::PUT,
            REST,
            &format!("data/Thing/{id}"),
            None,
            Some(json!({"v": 5, "created": 1})),
        )
        .await
        .ok();
    assert_eq!(
        (a3["v"].clone(), a3["w"].clone(), a3["created"].clone()),
        (json!(5), json!(9), a["created"].clone())
    );
    app.call(
        Method::PUT,
        REST,
        "data/Thing/NO-SUCH-ID",
        None,
        Some(json!({"v": 1})),
    )
    .await
    .err(1000, 404);
    app.call(Method::DELETE, REST, "data/Thing/NO-SUCH-ID", None, None)
        .await
        .err(1000, 404);

    seed(&app, "Bulk", 6).await;
    let n = app
        .call(
            Method::PUT,
            REST,
            "data/bulk/Bulk?where=n%20%3C%203",
            None,
            Some(json!({"flag": true})),
        )
        .await
        .ok();
    assert_eq!(n, json!(3));
    let n = app
        .call(
            Method::GET,
            REST,
            "data/Bulk/count?where=flag%20%3D%20true",
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(n, json!(3));
    let n = app
        .call(
            Method::DELETE,
            REST,
            "data/bulk/Bulk?where=flag%20%3D%20true",
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(n, json!(3));
    let n = app
        .call(
            Method::POST,
            JS,
            "data/bulk/Bulk/delete",
            None,
            Some(json!({"where": "n = 5"})),
        )
        .await
        .ok();
    assert_eq!(n, json!(1));
    let n = app
        .call(Method::GET, REST, "data/Bulk/count", None, None)
        .await
        .ok();
    assert_eq!(n, json!(2));
    // Bulk routes obey table permissions too.
    app.call(
        Method::DELETE,
        REST,
        "data/bulk/Post?where=title%3D'x'",
        None,
        None,
    )
    .await
    .err(1014, 400);
    app.call(
        Method::PUT,
        REST,
        "data/bulk/Latest_post",
        None,
        Some(json!({"a": 1})),
    )
    .await
    .err(1012, 400);
    app.call(
        Method::POST,
        REST,
        "data/bulk/Post",
        None,
        Some(json!([{"a": 1}])),
    )
    .await
    .err(1011, 400);
}

#[tokio::test]
async fn request_log_and_inspection_routes() {
    let app = TestApp::dev().await;
    let (token, alice_id) = app.login(REST, "alice@example.com", "alice-pass").await;
    app.call(Method::GET, JS, "data/Post", Some(&token), None)
        .await
        .ok();
    app.call(Method::GET, CLOUD, "data/Post", None, None)
        .await
        .ok();
    let log = app.inspect.requests();
    let find = log
        .iter()
        .find(|r| r.path == "/dev-app/dev-js-key/data/Post")
        .unwrap();
    assert_eq!(find.method, "GET");
    assert_eq!(find.user_token.as_deref(), Some(token.as_str()));
    assert_eq!(find.user_id.as_deref(), Some(alice_id.as_str()));
    assert_eq!(find.key_kind, Some(KeyKind::Js));
    assert!(
        !format!("{find:?}").contains(&token),
        "Debug hides the token"
    );
    let bl = log
        .iter()
        .find(|r| r.path == "/dev-app/dev-cloudcode-key/data/Post")
        .unwrap();
    assert_eq!(
        (bl.user_token.clone(), bl.user_id.clone(), bl.key_kind),
        (None, None, Some(KeyKind::CloudCode))
    );

    let over_http = app
        .raw(
            Method::GET,
            &format!("{}/__emulator/requests", app.base),
            None,
            None,
        )
        .await
        .ok();
    assert!(
        over_http
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["userId"] == json!(alice_id))
    );
    let logins = app
        .raw(
            Method::GET,
            &format!("{}/__emulator/logins", app.base),
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(logins["alice@example.com"], json!(1));
    let expired = app
        .raw(
            Method::POST,
            &format!("{}/__emulator/sessions/alice@example.com/expire", app.base),
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(expired["expired"], json!(1));
    app.call(Method::GET, JS, "data/Post", Some(&token), None)
        .await
        .err(3064, 401);
    let (token2, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    assert_eq!(app.inspect.expire_sessions(&alice_id), 1);
    app.call(Method::GET, JS, "data/Post", Some(&token2), None)
        .await
        .err(3064, 401);
}

#[tokio::test]
async fn file_database_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig {
        database: dir.path().join("emu.sqlite").to_string_lossy().into_owned(),
        ..EmulatorConfig::dev()
    };
    let id = {
        let app = TestApp::start(config.clone()).await;
        let row = app
            .call(
                Method::POST,
                CLOUD,
                "data/Post",
                None,
                Some(json!({"title": "kept"})),
            )
            .await
            .ok();
        app.call(
            Method::POST,
            REST,
            "users/register",
            None,
            Some(json!({"email": "dave@example.com", "password": "d"})),
        )
        .await
        .ok();
        row["objectId"].as_str().unwrap().to_owned()
    };
    let app = TestApp::start(config).await;
    let row = app
        .call(Method::GET, CLOUD, &format!("data/Post/{id}"), None, None)
        .await
        .ok();
    assert_eq!(row["title"], json!("kept"));
    app.login(REST, "dave@example.com", "d").await;
    // Seeding is idempotent: still one alice.
    let n = app
        .call(
            Method::GET,
            CLOUD,
            "data/Users/count?where=email%3D'alice%40example.com'",
            None,
            None,
        )
        .await
        .ok();
    assert_eq!(n, json!(1));
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let emulator = coderunner::emulator::Emulator::new(EmulatorConfig::dev()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(emulator.serve(listener, async move {
        let _ = rx.await;
    }));
    let url = format!("http://{addr}/{APP}/{REST}/info");
    assert!(reqwest::get(&url).await.unwrap().status().is_success());
    tx.send(()).unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    assert!(reqwest::get(&url).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn concurrent_requests_are_all_served() {
    let app = std::sync::Arc::new(TestApp::dev().await);
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            app.call(
                Method::POST,
                REST,
                "data/Post",
                Some(&token),
                Some(json!({"i": i})),
            )
            .await
            .ok()["objectId"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 50);
    let n = app
        .call(Method::GET, REST, "data/Post/count", Some(&token), None)
        .await
        .ok();
    assert_eq!(n, json!(50));
}
