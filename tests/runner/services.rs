//! API services through `/invoke`: typed parameters and return values,
//! configuration items, the HTTP status, headers and cookies a method sets,
//! unknown services and methods.

use coderunner::service::{ConfigItem, ConfigType, ParamType, Service, ServiceMethod};
use coderunner::{HandlerError, Registry, ServiceContext};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::support::*;

#[derive(Debug, Deserialize)]
struct CalcConfig {
    #[serde(rename = "roundUp")]
    round_up: bool,
    since: Option<i64>,
    unit: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    title: String,
    total: f64,
}

#[derive(Debug, Serialize)]
struct Receipt {
    title: String,
    total: f64,
    caller: Option<String>,
    path: Option<String>,
    query: Option<String>,
    header: Option<String>,
}

fn calc() -> Service {
    Service::new("CalcService")
        .config(ConfigItem::new("roundUp", ConfigType::Bool).default_value(false))
        .config(ConfigItem::new("since", ConfigType::Date))
        .config(ConfigItem::new("unit", ConfigType::String).default_value("EUR"))
        .method(
            ServiceMethod::new("sum")
                .param("a", ParamType::Number)
                .param("b", ParamType::Number)
                .returns(ParamType::Number)
                .route("POST /sum"),
            |ctx: ServiceContext, (a, b): (f64, f64)| async move {
                let config: CalcConfig = ctx.config()?;
                ctx.set_status(202);
                ctx.set_header("x-unit", config.unit);
                ctx.add_cookie("calc=1; Path=/");
                Ok(if config.round_up {
                    (a + b).ceil()
                } else {
                    a + b
                })
            },
        )
        .method(
            ServiceMethod::new("config").returns(ParamType::Object),
            |ctx: ServiceContext, (): ()| async move {
                let config: CalcConfig = ctx.config()?;
                Ok(json!({"roundUp": config.round_up, "since": config.since, "unit": config.unit}))
            },
        )
        .method(
            ServiceMethod::new("receipt")
                .param("order", ParamType::Object)
                .returns(ParamType::Object),
            |ctx: ServiceContext, order: Order| async move {
                Ok(Receipt {
                    title: order.title,
                    total: order.total,
                    caller: ctx.user_id().map(str::to_owned),
                    path: ctx.path().map(str::to_owned),
                    query: ctx.query_params().get("q").cloned(),
                    header: ctx.header("X-A").map(str::to_owned),
                })
            },
        )
        .method(
            ServiceMethod::new("debugView").returns(ParamType::String),
            |ctx: ServiceContext, (): ()| async move { Ok(format!("{ctx:?}")) },
        )
        .method(
            ServiceMethod::new("refuse"),
            |_ctx: ServiceContext, (): ()| async move {
                Err::<(), _>(HandlerError::new(4002, "refused").with_status(403))
            },
        )
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.service(calc()).unwrap();
    r
}

/// A service task as spec §2.5 shows it, its parameters byte-encoded.
fn service_task(id: &str, class: &str, method: &str, params: Value, dto: Value) -> Value {
    let bytes: Vec<Value> = serde_json::to_vec(&params)
        .unwrap()
        .into_iter()
        .map(Value::from)
        .collect();
    json!({
        "___jsonclass": "com.backendless.coderunner.commons.protocol.RequestServiceInvocation",
        "id": id, "applicationId": "test-app", "timeout": 2000,
        "serviceId": "SVC", "className": class, "method": method,
        "provider": "services/calc.js", "properties": {},
        "arguments": bytes, "invocationContextDto": dto,
    })
}

fn dto() -> Value {
    json!({"userId": "U1", "userToken": "T1", "userRoles": ["AuthenticatedUser"],
           "httpHeaders": {"x-a": "1"}, "httpPath": "/receipt",
           "httpQueryParams": {"q": "yes"}, "httpPathParams": {}, "configurationItems": []})
}

/// The reply's bare return value.
fn returned(reply: &Value) -> Value {
    let bytes: Vec<u8> = reply["arguments"]
        .as_array()
        .expect("a reply with arguments")
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_method_returns_its_typed_result_with_the_status_headers_and_cookies_it_set() {
    let runner = TestRunner::start(registry()).await;
    let (status, reply) = runner
        .invoke(&service_task(
            "s1",
            "services.CalcService",
            "sum",
            json!([2, 3.5]),
            dto(),
        ))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["exception"], Value::Null, "{reply}");
    assert_eq!(returned(&reply), json!(5.5));
    assert_eq!(reply["requestId"], "s1");
    assert_eq!(reply["httpResponseStatusCode"], 202);
    assert_eq!(reply["httpResponseHeaders"], json!({"x-unit": "EUR"}));
    assert_eq!(reply["httpResponseCookies"], json!(["calc=1; Path=/"]));

    // One parameter of a serde type; the request's context reaches the method.
    let order = json!([{"title": "Tea", "total": 3}]);
    let (_, reply) = runner
        .invoke(&service_task(
            "s2",
            "services.CalcService",
            "receipt",
            order,
            dto(),
        ))
        .await;
    assert_eq!(
        returned(&reply),
        json!({"title": "Tea", "total": 3.0, "caller": "U1", "path": "/receipt",
               "query": "yes", "header": "1"})
    );
    assert!(
        reply.get("httpResponseStatusCode").is_none(),
        "absent unless set: {reply}"
    );

    // A method's error keeps its code and status.
    let (_, reply) = runner
        .invoke(&service_task(
            "s3",
            "services.CalcService",
            "refuse",
            json!([]),
            dto(),
        ))
        .await;
    assert_eq!(reply["exception"]["code"], 4002);
    assert_eq!(reply["exception"]["httpStatusCode"], 403);
    assert!(reply.get("arguments").is_none());
}

#[tokio::test]
async fn missing_or_mistyped_parameters_are_refused_naming_the_parameter() {
    let runner = TestRunner::start(registry()).await;
    let cases = [
        (json!([2]), "parameter `b` is missing"),
        (json!([2, "three"]), "parameter `b` is invalid"),
        (json!(["two", 3]), "parameter `a` is invalid"),
        (
            json!([1, 2, 3]),
            "3 parameters were sent; the method takes 2",
        ),
    ];
    for (params, message) in cases {
        let (status, reply) = runner
            .invoke(&service_task(
                "bad",
                "services.CalcService",
                "sum",
                params.clone(),
                dto(),
            ))
            .await;
        assert_eq!(status, 200, "{reply}");
        let exception = &reply["exception"];
        assert_eq!(exception["httpStatusCode"], 400, "{params}: {reply}");
        let text = exception["exceptionMessage"].as_str().unwrap();
        assert!(
            text.starts_with("CalcService.sum: ") && text.contains(message),
            "{params}: {text}"
        );
    }
    let (_, reply) = runner
        .invoke(&service_task(
            "bad-order",
            "services.CalcService",
            "receipt",
            json!([{"title": "Tea", "total": "three"}]),
            dto(),
        ))
        .await;
    let text = reply["exception"]["exceptionMessage"].as_str().unwrap();
    assert!(
        text.contains("parameter `order` is invalid: at `total`"),
        "{text}"
    );
}

#[tokio::test]
async fn configuration_items_reach_the_method_typed_with_their_defaults() {
    let runner = TestRunner::start(registry()).await;
    let (_, reply) = runner
        .invoke(&service_task(
            "c1",
            "services.CalcService",
            "config",
            json!([]),
            dto(),
        ))
        .await;
    assert_eq!(
        returned(&reply),
        json!({"roundUp": false, "since": null, "unit": "EUR"})
    );
    let mut set = dto();
    set["configurationItems"] = json!([
        {"name": "roundUp", "value": "true", "productId": null},
        {"name": "since", "value": "1764460800000"},
        {"name": "unit", "value": "USD"}
    ]);
    let (_, reply) = runner
        .invoke(&service_task(
            "c2",
            "services.CalcService",
            "config",
            json!([]),
            set.clone(),
        ))
        .await;
    assert_eq!(
        returned(&reply),
        json!({"roundUp": true, "since": 1_764_460_800_000_i64, "unit": "USD"})
    );
    let (_, reply) = runner
        .invoke(&service_task(
            "c3",
            "services.CalcService",
            "sum",
            json!([1, 0.5]),
            set.clone(),
        ))
        .await;
    assert_eq!(returned(&reply), json!(2.0), "rounded up by the item");
    assert_eq!(reply["httpResponseHeaders"]["x-unit"], "USD");

    // Configuration values (maybe secrets) stay out of `Debug`; so does the token.
    let (_, reply) = runner
        .invoke(&service_task(
            "c5",
            "services.CalcService",
            "debugView",
            json!([]),
            set.clone(),
        ))
        .await;
    let shown = returned(&reply);
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("CalcService") && shown.contains("U1"),
        "{shown}"
    );
    assert!(!shown.contains("USD") && !shown.contains("T1"), "{shown}");

    // A value that does not fit its item's type is named.
    set["configurationItems"] = json!([{"name": "roundUp", "value": "perhaps"}]);
    let (_, reply) = runner
        .invoke(&service_task(
            "c4",
            "services.CalcService",
            "config",
            json!([]),
            set,
        ))
        .await;
    let text = reply["exception"]["exceptionMessage"].as_str().unwrap();
    assert!(text.contains("item `roundUp`"), "{text}");
}

#[tokio::test]
async fn unknown_services_and_methods_get_the_official_messages_and_codes() {
    let runner = TestRunner::start(registry()).await;
    let (status, reply) = runner
        .invoke(&service_task(
            "u1",
            "services.Nope",
            "sum",
            json!([]),
            dto(),
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(reply["exception"]["code"], 14001);
    assert_eq!(
        reply["exception"]["exceptionMessage"],
        "[Nope] service does not exist"
    );
    let (status, reply) = runner
        .invoke(&service_task(
            "u2",
            "services.CalcService",
            "nope",
            json!([]),
            dto(),
        ))
        .await;
    assert_eq!(status, 404);
    assert_eq!(reply["exception"]["code"], 14002);
    assert_eq!(
        reply["exception"]["exceptionMessage"],
        "[nope] method does not exist in [CalcService] service or is not a function"
    );
    // A malformed service task is a 400 naming its field.
    let mut task = service_task("u3", "services.CalcService", "sum", json!([]), dto());
    task.as_object_mut().unwrap().remove("method");
    let (status, reply) = runner.invoke(&task).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("method"),
        "{reply}"
    );
}

#[test]
fn invalid_service_declarations_are_refused_at_startup() {
    let mut r = Registry::new();
    r.service(calc()).unwrap();
    let err = r.service(calc()).unwrap_err().to_string();
    assert!(
        err.contains("CalcService") && err.contains("twice"),
        "{err}"
    );
}
