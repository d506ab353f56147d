//! What the JS SDK's Logging talks to: `GET /info` (asked at init; the
//! logger levels are read from it) and `PUT /log` (batches of log messages,
//! recorded for [`Inspector::log_messages`](super::Inspector::log_messages)
//! and traced as one line each).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth::Requester;
use super::error::ApiError;
use super::inspect::LogMessage;
use super::{Shared, json_body};

/// GET /info: what the JS SDK asks at init.
pub(crate) async fn info(State(st): State<Shared>, _caller: Requester) -> Json<Value> {
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
    caller: Requester,
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
}
