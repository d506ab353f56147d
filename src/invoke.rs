//! Sending a task to a running runner by hand: `coderunner invoke`.
//!
//! A task is built from an event, a target and arguments, or read from a
//! JSON file (such as one the emulator recorded), its RunnerContext is set
//! to a chosen caller (logged in through the backend to get a real token) or
//! to an anonymous one, and it is signed and sent.

use serde_json::{Map, Value, json};

use crate::event::wire::TASK_CLASS;
use crate::event::{EventDef, EventId};
use crate::signature::WebhookSecret;

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    /// The event name is not `provider.eventName` from the catalog.
    #[error(
        "unknown event `{0}`: use provider.eventName, e.g. persistence.afterCreate, or an event id"
    )]
    UnknownEvent(String),
    /// The file or argument is not usable JSON.
    #[error("{0}")]
    BadInput(String),
    /// Logging the caller in failed.
    #[error("cannot log in {login}: {message}")]
    Login {
        /// The login.
        login: String,
        /// The backend's answer.
        message: String,
    },
    /// The runner could not be reached.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// A caller to replay a task as: who the RunnerContext says called.
#[derive(Clone)]
pub(crate) struct Caller {
    /// The user's objectId.
    pub user_id: String,
    /// A real user token from a login.
    pub token: String,
    /// The user's roles as the backend reports them.
    pub roles: Vec<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user_id", &self.user_id)
            .field("token", &"[redacted]")
            .field("roles", &self.roles)
            .finish()
    }
}

/// Finds an event by id (`101`) or by `provider.eventName`.
pub(crate) fn find_event(name: &str) -> Result<&'static EventDef, ReplayError> {
    let found = match name.parse::<u32>() {
        Ok(id) => EventDef::by_id(EventId(id)),
        Err(_) => name
            .split_once('.')
            .and_then(|(provider, event)| EventDef::by_name(provider, event)),
    };
    found.ok_or_else(|| ReplayError::UnknownEvent(name.to_owned()))
}

/// Logs `login` in through the backend's REST API (`root` is
/// `{server}/{appId}/{apiKey}`) and reads the user's roles.
pub(crate) async fn login(
    http: &reqwest::Client,
    root: &str,
    login: &str,
    password: &str,
) -> Result<Caller, ReplayError> {
    let fail = |message: String| ReplayError::Login {
        login: login.to_owned(),
        message,
    };
    let response = http
        .post(format!("{root}/users/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    if !status.is_success() {
        return Err(fail(format!(
            "HTTP {status}: {}",
            body["message"].as_str().unwrap_or("no message")
        )));
    }
    let token = body["user-token"]
        .as_str()
        .ok_or_else(|| fail("no user-token in the reply".into()))?
        .to_owned();
    let user_id = body["objectId"]
        .as_str()
        .ok_or_else(|| fail("no objectId in the reply".into()))?
        .to_owned();
    let roles = http
        .get(format!("{root}/users/userroles"))
        .header("user-token", &token)
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?
        .json::<Vec<String>>()
        .await
        .unwrap_or_else(|_| vec!["AuthenticatedUser".to_owned()]);
    Ok(Caller {
        user_id,
        token,
        roles,
    })
}

/// A new task for `event` on `target` with `args` (after the context).
pub(crate) fn build_task(
    app_id: &str,
    event: &EventDef,
    target: &str,
    args: Vec<Value>,
    is_async: bool,
    timeout_ms: i64,
) -> Value {
    let mut arguments = vec![json!({
        "appId": app_id, "userId": null, "userToken": null,
        "userRoles": ["NotAuthenticatedUser", "RestUser"], "deviceType": "REST", "httpHeaders": {}
    })];
    arguments.extend(args);
    json!({
        "___jsonclass": TASK_CLASS,
        "id": format!("invoke-{}", uuid::Uuid::new_v4()),
        "applicationId": app_id,
        "eventId": event.id.0,
        "target": target,
        "async": is_async,
        "timeout": timeout_ms,
        "timestamp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        "arguments": arguments,
    })
}

/// Decodes byte-encoded `arguments` into plain JSON in place.
pub(crate) fn decode_arguments(task: &mut Value) -> Result<(), ReplayError> {
    let Some(args) = task.get_mut("arguments") else {
        return Ok(());
    };
    if let Some(items) = args.as_array() {
        if items.first().is_some_and(Value::is_number) {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|b| b as u8)
                .collect();
            *args = serde_json::from_slice(&bytes)
                .map_err(|e| ReplayError::BadInput(format!("byte-encoded arguments: {e}")))?;
        }
    }
    Ok(())
}

/// Rewrites the task's RunnerContext to describe `caller` (or an anonymous
/// caller), keeping everything else.
pub(crate) fn set_caller(task: &mut Value, caller: Option<&Caller>) -> Result<(), ReplayError> {
    decode_arguments(task)?;
    let ctx = task
        .get_mut("arguments")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            ReplayError::BadInput("the task's arguments[0] is not a RunnerContext object".into())
        })?;
    let headers = ctx
        .entry("httpHeaders")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(h) = headers {
        h.retain(|k, _| !k.eq_ignore_ascii_case("user-token"));
        if let Some(c) = caller {
            h.insert("user-token".into(), json!(c.token));
        }
    }
    match caller {
        Some(c) => {
            ctx.insert("userId".into(), json!(c.user_id));
            ctx.insert("userToken".into(), json!(c.token));
            ctx.insert("userRoles".into(), json!(c.roles));
        }
        None => {
            ctx.insert("userId".into(), Value::Null);
            ctx.insert("userToken".into(), Value::Null);
            ctx.insert(
                "userRoles".into(),
                json!(["NotAuthenticatedUser", "RestUser"]),
            );
        }
    }
    Ok(())
}

/// Signs `task` with `secret` and posts it to `{runner}/invoke`; returns the
/// status and the reply (with byte-encoded arguments decoded for reading).
pub(crate) async fn send(
    http: &reqwest::Client,
    runner: &str,
    secret: &WebhookSecret,
    task: &Value,
) -> Result<(u16, Value), ReplayError> {
    let url = format!("{}/invoke", runner.trim_end_matches('/'));
    let body = serde_json::to_vec(task).map_err(|e| ReplayError::BadInput(e.to_string()))?;
    let mut request = http.post(&url).header("content-type", "application/json");
    for (name, value) in secret.sign_headers(&body) {
        request = request.header(name, value);
    }
    let unreachable = |e: reqwest::Error| ReplayError::Unreachable {
        url: url.clone(),
        message: e.without_url().to_string(),
    };
    let response = request.body(body).send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    let mut reply: Value = response.json().await.map_err(unreachable)?;
    decode_arguments(&mut reply)?;
    Ok((status, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_by_name_or_id() {
        assert_eq!(find_event("persistence.afterCreate").unwrap().id.0, 101);
        assert_eq!(find_event("101").unwrap().name, "afterCreate");
        assert!(find_event("persistence.afterNothing").is_err());
    }

    #[test]
    fn set_caller_rewrites_the_context_of_byte_encoded_tasks() {
        let event = find_event("persistence.afterCreate").unwrap();
        let mut task = build_task(
            "dev-app",
            event,
            "Post",
            vec![json!({"title": "x"})],
            false,
            5000,
        );
        let args = task["arguments"].take();
        task["arguments"] = Value::Array(
            serde_json::to_vec(&args)
                .unwrap()
                .into_iter()
                .map(Value::from)
                .collect(),
        );
        let bob = Caller {
            user_id: "B".into(),
            token: "tok-b".into(),
            roles: vec!["AuthenticatedUser".into()],
        };
        set_caller(&mut task, Some(&bob)).unwrap();
        assert_eq!(task["arguments"][0]["userId"], "B");
        assert_eq!(task["arguments"][0]["httpHeaders"]["user-token"], "tok-b");
        assert_eq!(task["arguments"][1]["title"], "x");
        set_caller(&mut task, None).unwrap();
        assert!(task["arguments"][0]["userToken"].is_null());
        assert!(
            task["arguments"][0]["httpHeaders"]
                .get("user-token")
                .is_none()
        );
        assert!(!format!("{bob:?}").contains("tok-b"));
    }
}
