//! The inspection routes (`/__emulator/*`) against web pages and other
//! hosts: secrets masked, no CORS, loopback names only without the token.

use coderunner::emulator::INSPECT_TOKEN_HEADER;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{CLOUD, REST, TestApp};

#[tokio::test]
async fn the_request_log_masks_tokens_and_keys() {
    let app = TestApp::dev().await;
    let (token, _) = app.login(REST, "alice@example.com", "alice-pass").await;
    app.call(Method::GET, REST, "data/Post", Some(&token), None)
        .await
        .ok();
    app.call(Method::GET, CLOUD, "data/Post", None, None)
        .await
        .ok();
    app.call(
        Method::GET,
        REST,
        &format!("users/isvalidusertoken/{token}"),
        None,
        None,
    )
    .await
    .ok();
    let log = app
        .raw(
            Method::GET,
            &format!("{}/__emulator/requests", app.base),
            None,
            None,
        )
        .await
        .ok();
    let text = log.to_string();
    assert!(!text.contains(&token), "{text}");
    assert!(!text.contains(CLOUD), "{text}");
    assert!(text.contains(&format!("{}…", &token[..4])), "{text}");
    // In-process inspection (tests, tools) keeps the real values.
    assert!(
        app.inspect
            .requests()
            .iter()
            .any(|r| r.user_token.as_deref() == Some(token.as_str()))
    );
}

#[tokio::test]
async fn inspection_routes_send_no_cors_headers() {
    let app = TestApp::dev().await;
    for method in [Method::GET, Method::OPTIONS] {
        let r = app
            .client
            .request(method.clone(), format!("{}/__emulator/requests", app.base))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{method}: {:?}",
            r.headers()
        );
    }
    // The Backendless API keeps them, for browser apps.
    let r = app
        .client
        .get(format!("{}/dev-app/{REST}/info", app.base))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn a_foreign_host_name_needs_the_token() {
    // A page that rebinds its own name to 127.0.0.1 sends its name as Host.
    let app = TestApp::dev().await;
    let url = format!("{}/__emulator/logins", app.base);
    let get = |token: Option<String>| {
        let mut req = app.client.get(&url).header("host", "evil.example:8100");
        if let Some(t) = token {
            req = req.header(INSPECT_TOKEN_HEADER, t);
        }
        req.send()
    };
    let refused = get(None).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(INSPECT_TOKEN_HEADER),
        "{body}"
    );
    let token = app.token.clone();
    assert_eq!(get(Some(token)).await.unwrap().status(), 200);
    let local = app.raw(Method::GET, &url, None, None).await.ok();
    assert_eq!(local, json!({}));
}
