//! API services through Redis: the same `RequestServiceInvocation` tasks
//! get the same replies as through `/invoke`.

use coderunner::service::{ParamType, Service, ServiceMethod};
use coderunner::testing::TestApp;
use coderunner::{HandlerError, Registry, ServiceContext};
use serde_json::{Value, json};

use crate::support::{RedisRunner, decode_reply, now_ms};
use crate::{QUIET, WAIT};

const SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLXRoZS1ydW5uZXItdGVzdHM=";

fn registry() -> Registry {
    let mut r = Registry::new();
    r.service(
        Service::new("CalcService")
            .method(
                ServiceMethod::new("sum")
                    .param("a", ParamType::Number)
                    .param("b", ParamType::Number)
                    .returns(ParamType::Number),
                |ctx: ServiceContext, (a, b): (f64, f64)| async move {
                    ctx.set_status(202);
                    ctx.set_header("x-caller", ctx.user_id().unwrap_or("anonymous").to_owned());
                    ctx.add_cookie("calc=1");
                    Ok(a + b)
                },
            )
            .method(
                ServiceMethod::new("refuse"),
                |_ctx: ServiceContext, (): ()| async move {
                    Err::<(), _>(HandlerError::new(4002, "refused").with_status(403))
                },
            ),
    )
    .unwrap();
    r
}

fn service_task(id: &str, class: &str, method: &str, params: Value) -> Value {
    let bytes: Vec<Value> = serde_json::to_vec(&params)
        .unwrap()
        .into_iter()
        .map(Value::from)
        .collect();
    json!({
        "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestServiceInvocation",
        "id": id, "applicationId": "6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D",
        "timestamp": now_ms(), "timeout": 5000, "mode": "PRODUCTION",
        "initAppData": {"url": "http://127.0.0.1:9", "apiKey": "F0E1D2C3-B4A5-4968-8776-655443322110"},
        "serviceId": "SVC", "className": class, "method": method,
        "provider": "services/calc.js", "properties": {}, "arguments": bytes,
        "invocationContextDto": {"userId": "U1", "userToken": "T1", "userRoles": [],
            "httpHeaders": {}, "httpPath": "/sum", "httpQueryParams": {},
            "httpPathParams": {}, "configurationItems": []},
    })
}

/// A runner serving `/invoke` alone, with the same services.
async fn http_runner() -> TestApp {
    TestApp::builder()
        .without_emulator()
        .registry(registry())
        .webhook_secrets([SECRET])
        .start()
        .await
}

async fn over_http(app: &TestApp, task: &Value) -> Value {
    let reply = app
        .send_signed(serde_json::to_vec(task).unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    decode_reply(&reply, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tasks_get_the_same_replies_through_redis_and_invoke() {
    let http = http_runner().await;
    let cases = [
        (
            "sum",
            service_task("sum", "services.CalcService", "sum", json!([2, 3])),
        ),
        (
            "missing",
            service_task("missing", "services.CalcService", "sum", json!([2])),
        ),
        (
            "refuse",
            service_task("refuse", "services.CalcService", "refuse", json!([])),
        ),
        (
            "noMethod",
            service_task("noMethod", "services.CalcService", "nope", json!([])),
        ),
        (
            "noService",
            service_task("noService", "services.Nope", "sum", json!([])),
        ),
    ];
    for compression in [false, true] {
        let runner = RedisRunner::start(registry(), compression).await;
        let driver = runner.driver();
        for (name, task) in &cases {
            let through_redis = driver
                .call(task.clone(), WAIT, QUIET)
                .await
                .single(compression);
            let through_http = over_http(&http, task).await;
            assert_eq!(
                through_redis, through_http,
                "{name} (compression {compression})"
            );
            match *name {
                "sum" => {
                    assert_eq!(through_redis["arguments"], json!(5.0));
                    assert_eq!(through_redis["httpResponseStatusCode"], 202);
                    assert_eq!(
                        through_redis["httpResponseHeaders"],
                        json!({"x-caller": "U1"})
                    );
                    assert_eq!(through_redis["httpResponseCookies"], json!(["calc=1"]));
                }
                "missing" => assert_eq!(
                    through_redis["exception"]["exceptionMessage"],
                    "CalcService.sum: parameter `b` is missing"
                ),
                "refuse" => assert_eq!(through_redis["exception"]["code"], 4002),
                "noMethod" => assert_eq!(through_redis["exception"]["code"], 14002),
                _ => assert_eq!(through_redis["exception"]["code"], 14001),
            }
        }
        runner.app.shutdown();
        runner.app.wait().await.unwrap();
    }
    http.stop().await;
}
