//! `/info`, cache (spec §4.3), counters (§4.4), the inspection routes and the
//! fallback.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use super::cache::CounterOp;
use super::error::ApiError;
use super::inspect::LogMessage;
use super::{json_body, query_map, Shared};

type Params = Path<HashMap<String, String>>;
type Reply = Result<Json<Value>, ApiError>;

fn param<'a>(p: &'a HashMap<String, String>, name: &str) -> &'a str {
    p.get(name).map_or("", String::as_str)
}

fn int_query(uri: &Uri, name: &str) -> Result<Option<i64>, ApiError> {
    match query_map(uri).get(name) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| {
                ApiError::parse(format!("query parameter `{name}` must be an integer"))
            })
        }
    }
}

fn required(uri: &Uri, name: &str) -> Result<i64, ApiError> {
    int_query(uri, name)?
        .ok_or_else(|| ApiError::parse(format!("query parameter `{name}` is required")))
}

/// GET /info: what the JS SDK asks at init.
pub(crate) async fn info(State(st): State<Shared>, _caller: Caller) -> Json<Value> {
    Json(json!({
        "appId": st.config.app_id,
        "emulator": "coderunner",
        "version": env!("CARGO_PKG_VERSION"),
        // The SDK's Logging reads the configured logger levels from here
        // (`loggers.forEach`): none are configured, so every level is sent.
        "loggers": [],
    }))
}

/// PUT /log: a batch of `{logger, message, exception?, "log-level", timestamp}`
/// from the SDK's Logging; recorded for `Inspector::log_messages` and traced.
pub(crate) async fn log_messages(
    State(st): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Value::Array(items) = json_body(&body)? else {
        return Err(ApiError::parse("expected a JSON array of log messages"));
    };
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let mut messages = Vec::with_capacity(items.len());
    for item in &items {
        let Value::Object(m) = item else {
            return Err(ApiError::parse("every log message must be a JSON object"));
        };
        messages.push(LogMessage {
            logger: text(m.get("logger")).unwrap_or_default(),
            level: text(m.get("log-level").or_else(|| m.get("level")))
                .unwrap_or_else(|| "INFO".to_owned()),
            message: text(m.get("message")).unwrap_or_default(),
            exception: text(m.get("exception")),
            timestamp: m.get("timestamp").and_then(Value::as_i64),
            user_id: caller.user_id().map(str::to_owned),
        });
    }
    for m in messages {
        tracing::info!(
            logger = %escape_controls(&m.logger),
            level = %escape_controls(&m.level),
            "client log: {}",
            escape_controls(&m.message)
        );
        st.log.message(m);
    }
    Ok(StatusCode::OK)
}

/// `text` with its control characters (newlines, carriage returns, escape
/// sequences) written as escapes, so that a client's message stays one log
/// line and cannot forge others.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// PUT /cache/{key}?timeout=sec
pub(crate) async fn cache_put(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
    uri: Uri,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let value = json_body(&body)?;
    st.cache
        .put(param(&p, "key"), value, int_query(&uri, "timeout")?)?;
    Ok(StatusCode::OK)
}

/// GET /cache/{key}
pub(crate) async fn cache_get(State(st): State<Shared>, _c: Caller, Path(p): Params) -> Reply {
    st.cache.get(param(&p, "key")).map(Json)
}

/// GET /cache/{key}/check
pub(crate) async fn cache_check(State(st): State<Shared>, _c: Caller, Path(p): Params) -> Reply {
    st.cache
        .contains(param(&p, "key"))
        .map(|b| Json(Value::Bool(b)))
}

/// PUT /cache/{key}/expireIn?timeout=sec
pub(crate) async fn cache_expire_in(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    st.cache
        .expire_in(param(&p, "key"), required(&uri, "timeout")?)?;
    Ok(StatusCode::OK)
}

/// PUT /cache/{key}/expireAt?timestamp=ms
pub(crate) async fn cache_expire_at(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    st.cache
        .expire_at(param(&p, "key"), required(&uri, "timestamp")?)?;
    Ok(StatusCode::OK)
}

/// DELETE /cache/{key}
pub(crate) async fn cache_delete(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
) -> Result<StatusCode, ApiError> {
    st.cache.delete(param(&p, "key"))?;
    Ok(StatusCode::OK)
}

/// GET /counters/{name}
pub(crate) async fn counter_get(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
) -> Json<Value> {
    Json(Value::from(
        st.counters.apply(param(&p, "name"), CounterOp::Get),
    ))
}

/// PUT /counters/{name}/reset
pub(crate) async fn counter_reset(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
) -> Json<Value> {
    Json(Value::from(
        st.counters.apply(param(&p, "name"), CounterOp::Reset),
    ))
}

/// GET /counters/{pattern}/list
pub(crate) async fn counter_list(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
) -> Json<Value> {
    Json(json!(st.counters.list(param(&p, "name"))))
}

/// PUT /counters/{name}/get/compareandset?expected=&updatedvalue=
pub(crate) async fn counter_cas(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
    uri: Uri,
) -> Reply {
    let expected = required(&uri, "expected")?;
    let updated = required(&uri, "updatedvalue")?;
    Ok(Json(Value::Bool(st.counters.compare_and_set(
        param(&p, "name"),
        expected,
        updated,
    ))))
}

/// PUT /counters/{name}/{increment|decrement|incrementby}/get and /get/{...}.
pub(crate) async fn counter_op(
    State(st): State<Shared>,
    _c: Caller,
    Path(p): Params,
    uri: Uri,
) -> Reply {
    let (a, b) = (param(&p, "a"), param(&p, "b"));
    let (verb, new_value) = match (a, b) {
        (v, "get") => (v, true),
        ("get", v) => (v, false),
        _ => return Err(not_found_error()),
    };
    let delta = match verb {
        "increment" => 1,
        "decrement" => -1,
        "incrementby" => required(&uri, "value")?,
        _ => return Err(not_found_error()),
    };
    let op = if new_value {
        CounterOp::AddGet(delta)
    } else {
        CounterOp::GetAdd(delta)
    };
    Ok(Json(Value::from(st.counters.apply(param(&p, "name"), op))))
}

/// GET /__emulator/requests (tokens and keys masked)
pub(crate) async fn inspect_requests(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    let requests: Vec<_> = inspector.requests().iter().map(|r| r.masked()).collect();
    Json(json!(requests))
}

/// GET /__emulator/logins
pub(crate) async fn inspect_logins(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    Json(json!(inspector.logins()))
}

/// GET /__emulator/tasks (tokens, keys and passwords masked)
pub(crate) async fn inspect_tasks(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    let tasks: Vec<_> = inspector.tasks().iter().map(|t| t.masked()).collect();
    Json(json!(tasks))
}

/// GET /__emulator/log
pub(crate) async fn inspect_log(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    Json(json!(inspector.log_messages()))
}

/// POST /__emulator/sessions/{user}/expire -> {"expired": n}
pub(crate) async fn inspect_expire(State(st): State<Shared>, Path(p): Params) -> Json<Value> {
    let n = st.sessions.close_user(param(&p, "user"));
    Json(json!({"expired": n}))
}

fn not_found_error() -> ApiError {
    ApiError::new(0, "No such route in the emulator").with_status(StatusCode::NOT_FOUND)
}

/// A known path with another method (e.g. `POST users/{id}`): a Backendless
/// error body rather than an empty 405.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(0, "Method not allowed on this route in the emulator")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Any other route.
pub(crate) async fn not_found() -> ApiError {
    not_found_error()
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::super::test_call as call;
    use super::super::{Emulator, EmulatorConfig};
    use super::*;

    #[tokio::test]
    async fn info_lists_loggers_and_log_records_sdk_batches() {
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        let (status, info) = call(&emu, Method::GET, "/dev-app/dev-js-key/info", None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["loggers"], json!([]), "{info}");

        let (_, login) = call(
            &emu,
            Method::POST,
            "/dev-app/dev-js-key/users/login",
            None,
            r#"{"login": "alice@example.com", "password": "alice-pass"}"#,
        )
        .await;
        let token = login["user-token"].as_str().unwrap().to_owned();
        let alice = login["objectId"].as_str().unwrap().to_owned();
        // The JS SDK's Logging.flush() body.
        let batch = json!([
            {"logger": "app", "message": "hi", "exception": null, "log-level": "INFO", "timestamp": 1700000000000_i64},
            {"logger": "app", "message": "boom", "exception": "Error: boom", "log-level": "ERROR", "timestamp": 1700000000001_i64},
        ]);
        let (status, _) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/log",
            Some(&token),
            &batch.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/log",
            None,
            r#"[{"logger": "anon", "message": "m", "log-level": "DEBUG"}]"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let messages = emu.inspect().log_messages();
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[1],
            LogMessage {
                logger: "app".into(),
                level: "ERROR".into(),
                message: "boom".into(),
                exception: Some("Error: boom".into()),
                timestamp: Some(1_700_000_000_001),
                user_id: Some(alice),
            }
        );
        assert_eq!(messages[2].user_id, None);
        let (_, over_http) = call(&emu, Method::GET, "/__emulator/log", None, "").await;
        assert_eq!(over_http.as_array().map(Vec::len), Some(3));
        assert_eq!(over_http[0]["level"], json!("INFO"));

        let (status, err) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/log",
            None,
            r#"{"message": "not a batch"}"#,
        )
        .await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::BAD_REQUEST, json!(8002))
        );
        let (status, err) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/log",
            Some("stale"),
            "[]",
        )
        .await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::UNAUTHORIZED, json!(3064))
        );
        assert_eq!(emu.inspect().log_messages().len(), 3);
    }

    /// GET /__emulator/requests from `peer` (none: served without peer
    /// addresses) with an optional inspection token.
    async fn inspect_from(
        emu: &Emulator,
        peer: Option<[u8; 4]>,
        token: Option<&str>,
    ) -> StatusCode {
        use tower::ServiceExt;
        let mut req = axum::http::Request::get("/__emulator/requests");
        if let Some(t) = token {
            req = req.header(super::super::INSPECT_TOKEN_HEADER, t);
        }
        let mut req = req.body(axum::body::Body::empty()).unwrap();
        if let Some(ip) = peer {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    ip, 40000,
                ))));
        }
        emu.router().oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn inspection_from_another_host_needs_the_token() {
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        let token = emu.inspect_token().to_owned();
        assert!(token.len() >= 32, "{token}");
        assert_eq!(
            inspect_from(&emu, Some([127, 0, 0, 1]), None).await,
            StatusCode::OK
        );
        assert_eq!(
            inspect_from(&emu, Some([10, 0, 0, 7]), None).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            inspect_from(&emu, Some([10, 0, 0, 7]), Some("guess")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            inspect_from(&emu, Some([10, 0, 0, 7]), Some(&token)).await,
            StatusCode::OK
        );
        // A server that does not know its peers fails closed.
        assert_eq!(inspect_from(&emu, None, None).await, StatusCode::FORBIDDEN);
        assert_eq!(inspect_from(&emu, None, Some(&token)).await, StatusCode::OK);
    }

    /// A writer into a shared buffer, for capturing log lines.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_client_log_message_cannot_forge_log_lines() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        let forged = "hi\n2030-01-01T00:00:00Z  INFO coderunner: superuser logged in\r\u{1b}[2K";
        let batch = json!([{"logger": "app\nWARN x", "message": forged, "log-level": "INFO"}]);
        let (status, _) = call(
            &emu,
            Method::PUT,
            "/dev-app/dev-js-key/log",
            None,
            &batch.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(buffer.0.lock().clone()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("client log")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        assert!(lines[0].contains(r"hi\n2030"), "{text}");
        // Inspection keeps the message as sent.
        assert_eq!(emu.inspect().log_messages()[0].message, forged);
    }

    #[tokio::test]
    async fn a_wrong_method_gets_a_backendless_error_body() {
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        for (method, path) in [
            (Method::DELETE, "/dev-app/dev-js-key/users/register"),
            (Method::POST, "/dev-app/dev-js-key/users/SOME-ID"),
            (Method::POST, "/__emulator/requests"),
        ] {
            let (status, err) = call(&emu, method.clone(), path, None, "").await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(err["code"], json!(0), "{method} {path}: {err}");
            assert!(err["message"].is_string(), "{err}");
        }
    }
}
