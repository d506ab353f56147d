//! Cache limits and codes; counter semantics.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{JS, REST, TestApp};

#[tokio::test]
async fn cache_round_trip_and_limits() {
    let app = TestApp::dev().await;
    app.call(
        Method::PUT,
        JS,
        "cache/k1",
        None,
        Some(json!({"a": [1, 2]})),
    )
    .await
    .ok();
    assert_eq!(
        app.call(Method::GET, JS, "cache/k1", None, None).await.ok(),
        json!({"a": [1, 2]})
    );
    assert_eq!(
        app.call(Method::GET, JS, "cache/k1/check", None, None)
            .await
            .ok(),
        json!(true)
    );
    assert_eq!(
        app.call(Method::GET, JS, "cache/missing", None, None)
            .await
            .ok(),
        json!(null)
    );
    assert_eq!(
        app.call(Method::GET, JS, "cache/missing/check", None, None)
            .await
            .ok(),
        json!(false)
    );

    app.call(
        Method::PUT,
        JS,
        "cache/k2?timeout=7200",
        None,
        Some(json!("v")),
    )
    .await
    .ok();
    app.call(
        Method::PUT,
        JS,
        "cache/k2?timeout=7201",
        None,
        Some(json!("v")),
    )
    .await
    .err(1028, 400);
    let big = "x".repeat(10_240);
    app.call(Method::PUT, JS, "cache/big", None, Some(json!(big)))
        .await
        .err(1026, 400);
    let fits = "x".repeat(10_238);
    app.call(Method::PUT, JS, "cache/big", None, Some(json!(fits)))
        .await
        .ok();

    app.call(
        Method::PUT,
        JS,
        "cache/k1/expireIn?timeout=7200",
        None,
        Some(json!({})),
    )
    .await
    .ok();
    app.call(
        Method::PUT,
        JS,
        "cache/k1/expireIn?timeout=7201",
        None,
        Some(json!({})),
    )
    .await
    .err(1028, 400);
    // The support thread's mistake: milliseconds where seconds are expected.
    app.call(
        Method::PUT,
        JS,
        "cache/k1/expireIn?timeout=3600000",
        None,
        Some(json!({})),
    )
    .await
    .err(1028, 400);
    app.call(
        Method::PUT,
        JS,
        "cache/k1/expireIn?timeout=0",
        None,
        Some(json!({})),
    )
    .await
    .err(16002, 400);
    app.call(
        Method::PUT,
        JS,
        "cache/nope/expireIn?timeout=10",
        None,
        Some(json!({})),
    )
    .await
    .err(16001, 400);

    let now = coderunner::signature::unix_now() * 1000;
    app.call(
        Method::PUT,
        JS,
        &format!("cache/k1/expireAt?timestamp={}", now + 60_000),
        None,
        None,
    )
    .await
    .ok();
    app.call(
        Method::PUT,
        JS,
        &format!("cache/k1/expireAt?timestamp={}", now - 1000),
        None,
        None,
    )
    .await
    .err(1031, 400);
    app.call(
        Method::PUT,
        JS,
        &format!("cache/k1/expireAt?timestamp={}", now + 7_300_000),
        None,
        None,
    )
    .await
    .err(16003, 400);
    app.call(
        Method::PUT,
        JS,
        &format!("cache/nope/expireAt?timestamp={}", now + 60_000),
        None,
        None,
    )
    .await
    .err(16001, 400);

    app.call(Method::DELETE, JS, "cache/k1", None, None)
        .await
        .ok();
    assert_eq!(
        app.call(Method::GET, JS, "cache/k1/check", None, None)
            .await
            .ok(),
        json!(false)
    );
}

#[tokio::test]
async fn counters_return_new_or_previous_values() {
    let app = TestApp::dev().await;
    let c = |path: &'static str| {
        let app = &app;
        async move {
            let method = if path.ends_with("/list") || !path.contains('/') {
                Method::GET
            } else {
                Method::PUT
            };
            app.call(method, REST, &format!("counters/{path}"), None, None)
                .await
                .ok()
        }
    };
    assert_eq!(c("hits").await, json!(0));
    assert_eq!(c("hits/increment/get").await, json!(1));
    assert_eq!(c("hits/get/increment").await, json!(1));
    assert_eq!(c("hits").await, json!(2));
    assert_eq!(c("hits/decrement/get").await, json!(1));
    assert_eq!(c("hits/get/decrement").await, json!(1));
    assert_eq!(c("hits").await, json!(0));
    assert_eq!(c("hits/incrementby/get?value=5").await, json!(5));
    assert_eq!(c("hits/get/incrementby?value=3").await, json!(5));
    assert_eq!(c("hits").await, json!(8));
    assert_eq!(
        c("hits/get/compareandset?expected=8&updatedvalue=10").await,
        json!(true)
    );
    assert_eq!(
        c("hits/get/compareandset?expected=8&updatedvalue=11").await,
        json!(false)
    );
    assert_eq!(c("hits").await, json!(10));
    c("other/increment/get").await;
    assert_eq!(c("h*/list").await, json!(["hits"]));
    assert_eq!(c("*/list").await, json!(["hits", "other"]));
    c("hits/reset").await;
    assert_eq!(c("hits").await, json!(0));
    app.call(
        Method::PUT,
        REST,
        "counters/hits/incrementby/get?value=abc",
        None,
        None,
    )
    .await
    .err(8002, 400);
}
