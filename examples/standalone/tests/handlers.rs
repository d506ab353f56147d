//! The app's handlers through the framework's own test harness.

use coderunner::event::persistence;
use coderunner::testing::TestApp;
use serde_json::json;

#[tokio::test]
async fn orders_get_a_positive_total_rounded_to_cents() {
    let app = TestApp::start(orders_runner::register).await;
    let reply = app
        .invoke(persistence::BEFORE_CREATE, "Order")
        .arg(json!({"total": 12.3456, "item": "book"}))
        .send()
        .await;
    assert!(reply.is_ok(), "{reply:?}");
    assert_eq!(reply.arg(1)["total"], 12.35);
    assert_eq!(reply.arg(1)["item"], "book");

    let refused = app
        .invoke(persistence::BEFORE_CREATE, "Order")
        .arg(json!({"total": 0}))
        .send()
        .await;
    let error = refused.error().expect("refused");
    assert_eq!(
        (error.code, error.http_status_code),
        (orders_runner::BAD_TOTAL, 400)
    );
}
