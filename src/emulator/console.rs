//! The emulator's console (`/__emulator/console/`, behind the inspection
//! guard): tables with their rows and permissions, users with their roles
//! and sessions, the request and task logs, all masked; and the buttons a
//! developer would otherwise type in curl: log in as a dev user, create a
//! row as them, call the API as them (custom events today, any route below
//! the API root), fire a timer, replay a recorded task as another user.
//!
//! Actions go through the emulator's own routes (the router, in-process),
//! so they are logged, checked and dispatched exactly as a client's
//! request. The tokens of the users logged in here stay on the server: the
//! page and its API only ever see a masked prefix.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::auth::Requester;
use super::config::KeyKind;
use super::error::ApiError;
use super::inspect::{mask, mask_secrets};
use super::sessions::SessionUser;
use super::{Emulator, Shared, store};
use crate::server::console::asset;

const EMULATOR_HTML: &str = include_str!("../../assets/console/emulator.html");
const EMULATOR_JS: &str = include_str!("../../assets/console/emulator.js");
const CONSOLE_CSS: &str = include_str!("../../assets/console/console.css");
/// The pages' Content-Security-Policy.
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'";

/// Rows shown per table, newest first.
const ROWS_SHOWN: u32 = 25;
/// Requests and tasks shown, newest first.
const LOG_SHOWN: usize = 50;
/// The largest reply an action shows.
const REPLY_LIMIT: usize = 1 << 20;

/// The users logged in from the console: login (lower case) -> their
/// session. Bounded by the configured users, the only ones it can log in.
#[derive(Default)]
pub(crate) struct ActingAs(Mutex<HashMap<String, SessionUser>>);

/// The console's routes, merged into `/__emulator`: the page at
/// `/console/` (its asset paths are relative), `/console` redirected there.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/__emulator/console/") }),
        )
        .route("/console/", get(page))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/emulator.js", get(js))
        .route("/console/api/state", get(state))
        .route("/console/api/login", post(login))
        .route("/console/api/create", post(create))
        .route("/console/api/call", post(call))
        .route("/console/api/replay", post(replay))
}

async fn page() -> Response {
    asset(CSP, "text/html; charset=utf-8", EMULATOR_HTML)
}

async fn css() -> Response {
    asset(CSP, "text/css; charset=utf-8", CONSOLE_CSS)
}

async fn js() -> Response {
    asset(CSP, "text/javascript; charset=utf-8", EMULATOR_JS)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(0, message).with_status(StatusCode::BAD_REQUEST)
}

/// The JSON body of an action, or a 400/415 naming the problem.
fn body<T>(input: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    input.map(|Json(t)| t).map_err(|e| {
        ApiError::new(
            0,
            format!("the console action needs a JSON body: {}", e.body_text()),
        )
        .with_status(e.status())
    })
}

/// The API key the console's requests use: a client key (REST first), never
/// the CloudCode key, whose requests fire no events.
fn client_key(st: &Shared) -> Result<String, ApiError> {
    let keys = &st.config.keys;
    keys.iter()
        .find(|k| k.kind == KeyKind::Rest)
        .or_else(|| keys.iter().find(|k| k.kind != KeyKind::CloudCode))
        .map(|k| k.key.clone())
        .ok_or_else(|| bad_request("the emulator has no client API key (`emulator.keys`)"))
}

/// `path` below the API root: relative, no dot segments, no fragment.
fn checked_path(path: &str) -> Result<&str, ApiError> {
    let path = path.trim().trim_start_matches('/');
    if path.is_empty()
        || path.contains('#')
        || path.chars().any(char::is_whitespace)
        || path.split(['/', '?']).any(|s| s == "." || s == "..")
    {
        return Err(bad_request(format!(
            "`{path}` is not a path below the API root (such as `servercode/events/NAME` or `data/Post`)"
        )));
    }
    Ok(path)
}

/// Sends a request through the emulator's own routes, as a client would;
/// the status and the reply (JSON, or its text), secrets masked.
async fn through_api(
    st: &Shared,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), ApiError> {
    let uri = format!("/{}/{}/{}", st.config.app_id, client_key(st)?, path);
    let mut request = Request::builder()
        .method(method)
        .uri(&uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header("user-token", token);
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = request
        .body(Body::from(bytes))
        .map_err(|_| bad_request(format!("`{path}` is not a valid request path")))?;
    let response = Emulator { state: st.clone() }
        .router()
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), REPLY_LIMIT)
        .await
        .map_err(|_| ApiError::internal("the reply is larger than the console shows"))?;
    let mut value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    mask_secrets(&mut value);
    Ok((status, value))
}

/// The open console session of `login`, logging them in (with the password
/// of `emulator.users`) when there is none.
async fn session_of(st: &Shared, login: &str) -> Result<SessionUser, ApiError> {
    let key = login.trim().to_ascii_lowercase();
    let open = st.acting.0.lock().get(&key).cloned();
    if let Some(user) = open.filter(|u| st.sessions.is_valid(&u.token)) {
        return Ok(user);
    }
    let Some(seeded) = st
        .config
        .users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(&key))
    else {
        return Err(bad_request(format!(
            "`{login}` is not one of the emulator's users (`emulator.users`): the console logs in only those"
        )));
    };
    let uri = format!("/{}/{}/users/login", st.config.app_id, client_key(st)?);
    let credentials = json!({"login": seeded.email, "password": seeded.password.expose()});
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(credentials.to_string()))
        .map_err(ApiError::internal)?;
    let response = Emulator { state: st.clone() }
        .router()
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), REPLY_LIMIT)
        .await
        .map_err(ApiError::internal)?;
    let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let token = reply.get("user-token").and_then(Value::as_str);
    let Some(user) = token.and_then(|t| st.sessions.resolve(t).ok()) else {
        let message = reply
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no session");
        return Err(ApiError::new(
            reply.get("code").and_then(Value::as_i64).unwrap_or(0),
            format!("the login of {login} failed (HTTP {status}): {message}"),
        )
        .with_status(StatusCode::BAD_GATEWAY));
    };
    st.acting.0.lock().insert(key, user.clone());
    Ok(user)
}

fn shown_user(user: &SessionUser) -> Value {
    json!({
        "login": user.login,
        "objectId": user.user_id,
        "roles": user.roles,
        "token": mask(&user.token),
    })
}

/// `GET api/state`: what the page shows.
async fn state(State(st): State<Shared>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let (classes, tables, users) = store
        .call(|c| -> Result<_, store::StorageError> {
            let classes = store::classes(c)?;
            let mut tables = Vec::new();
            for (class, count) in &classes {
                let rows = store::recent(c, class, ROWS_SHOWN)?;
                tables.push((class.clone(), *count, rows));
            }
            let mut users = Vec::new();
            for user in store::recent(c, store::USERS, 200)? {
                let id = user.get("objectId").and_then(Value::as_str).unwrap_or("");
                let roles = store::user_roles(c, id)?.unwrap_or_default();
                users.push((user, roles));
            }
            Ok((classes, tables, users))
        })
        .await?;
    let sessions = st.sessions.list();
    let permissions = |name: &str| -> Value {
        st.config
            .tables
            .iter()
            .find(|t| t.name == name)
            .map_or(Value::Null, |t| {
                json!({
                    "default": format!("{:?}", t.default).to_uppercase(),
                    "roles": t.permissions.iter().map(|p| json!({
                        "role": p.role,
                        "grant": p.grant.iter().map(|o| format!("{o:?}").to_lowercase()).collect::<Vec<_>>(),
                        "deny": p.deny.iter().map(|o| format!("{o:?}").to_lowercase()).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
    };
    let mut names: Vec<String> = classes.iter().map(|(c, _)| c.clone()).collect();
    for t in &st.config.tables {
        if !names.contains(&t.name) {
            names.push(t.name.clone());
        }
    }
    names.sort();
    let tables: Vec<Value> = names
        .iter()
        .map(|name| {
            let (count, rows) = tables
                .iter()
                .find(|(c, _, _)| c == name)
                .map_or((0, Vec::new()), |(_, n, rows)| (*n, rows.clone()));
            let mut rows = Value::Array(rows.into_iter().map(Value::Object).collect());
            mask_secrets(&mut rows);
            json!({"name": name, "count": count, "rows": rows, "permissions": permissions(name)})
        })
        .collect();
    let users: Vec<Value> = users
        .into_iter()
        .map(|(user, roles)| {
            let id = user.get("objectId").and_then(Value::as_str).unwrap_or("");
            let email = user.get("email").and_then(Value::as_str).unwrap_or("");
            let open: Vec<Value> = sessions
                .iter()
                .filter(|(s, _)| s.user_id == id)
                .map(|(s, idle)| json!({"token": mask(&s.token), "idleSecs": idle}))
                .collect();
            json!({
                "objectId": id,
                "email": email,
                "roles": roles,
                "sessions": open,
                "canLogIn": st.config.users.iter().any(|u| u.email.eq_ignore_ascii_case(email)),
            })
        })
        .collect();
    let inspector = Emulator { state: st.clone() }.inspect();
    let requests: Vec<_> = inspector
        .requests()
        .iter()
        .rev()
        .take(LOG_SHOWN)
        .map(|r| r.masked())
        .collect();
    let tasks: Vec<Value> = inspector
        .tasks()
        .iter()
        .rev()
        .take(LOG_SHOWN)
        .map(|t| {
            let t = t.masked();
            json!({
                "id": t.body.get("id"),
                "eventName": t.event_name,
                "target": t.target,
                "isAsync": t.is_async,
                "userId": t.body.pointer("/arguments/0/userId"),
                "body": t.body,
            })
        })
        .collect();
    let timers: Vec<String> = st
        .dispatcher
        .timers()
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let custom_events = st.dispatcher.custom_events().await;
    let acting: Vec<Value> = st.acting.0.lock().values().map(shown_user).collect();
    // The runner's console, when the runner is linked over HTTP (`coderunner dev`).
    let runner_console = st
        .config
        .runner
        .as_ref()
        .filter(|r| r.transport == super::config::LinkTransport::Http && !r.url.is_empty())
        .map(|r| format!("{}/console/", r.url.trim_end_matches('/')));
    Ok(Json(json!({
        "appId": st.config.app_id,
        "runnerConsole": runner_console,
        "tables": tables,
        "users": users,
        "actingAs": acting,
        "requests": requests,
        "tasks": tasks,
        "timers": timers,
        "customEvents": custom_events,
    })))
}

#[derive(Deserialize)]
struct LoginInput {
    /// The user's email.
    user: String,
}

/// `POST api/login {"user"}`: logs a dev user in through `users/login`.
async fn login(
    State(st): State<Shared>,
    input: Result<Json<LoginInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let input = body(input)?;
    st.acting.0.lock().remove(&input.user.to_ascii_lowercase());
    let user = session_of(&st, &input.user).await?;
    Ok(Json(json!({"loggedIn": shown_user(&user)})))
}

#[derive(Deserialize)]
struct CreateInput {
    /// Who creates it: a dev user's email, or none (anonymous).
    user: Option<String>,
    table: String,
    row: Value,
}

/// `POST api/create {"user", "table", "row"}`: `POST data/{table}` as the user.
async fn create(
    State(st): State<Shared>,
    input: Result<Json<CreateInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let input = body(input)?;
    if !input.row.is_object() {
        return Err(bad_request("`row` must be a JSON object"));
    }
    let path = checked_path(&format!("data/{}", input.table))?.to_owned();
    let user = match input.user.as_deref().filter(|u| !u.is_empty()) {
        Some(login) => Some(session_of(&st, login).await?),
        None => None,
    };
    let token = user.as_ref().map(|u| u.token.as_str());
    let (status, reply) = through_api(&st, Method::POST, &path, token, Some(&input.row)).await?;
    Ok(Json(json!({"status": status, "reply": reply})))
}

#[derive(Deserialize)]
struct CallInput {
    user: Option<String>,
    /// `GET`, `POST`, `PUT` or `DELETE`; `POST` when absent.
    method: Option<String>,
    /// Below the API root: `servercode/events/NAME`, `data/Post`, ... (API
    /// services, when the emulator serves them, are called the same way).
    path: String,
    #[serde(default)]
    body: Option<Value>,
}

/// `POST api/call {"user", "method", "path", "body"}`: any API route as
/// the user: a custom event, a service, a query.
async fn call(
    State(st): State<Shared>,
    input: Result<Json<CallInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let input = body(input)?;
    let method = match input
        .method
        .as_deref()
        .unwrap_or("POST")
        .to_ascii_uppercase()
        .as_str()
    {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        other => {
            return Err(bad_request(format!(
                "`method` must be GET, POST, PUT or DELETE, not `{other}`"
            )));
        }
    };
    let path = checked_path(&input.path)?.to_owned();
    let user = match input.user.as_deref().filter(|u| !u.is_empty()) {
        Some(login) => Some(session_of(&st, login).await?),
        None => None,
    };
    let token = user.as_ref().map(|u| u.token.as_str());
    let (status, reply) = through_api(&st, method, &path, token, input.body.as_ref()).await?;
    Ok(Json(json!({"status": status, "reply": reply})))
}

#[derive(Deserialize)]
struct ReplayInput {
    /// The recorded task's id.
    task: String,
    /// Who sends it this time (a dev user's email), or none (anonymous).
    user: Option<String>,
}

/// `POST api/replay {"task", "user"}`: sends a recorded task again, its
/// arguments as recorded, with the context of another caller.
async fn replay(
    State(st): State<Shared>,
    input: Result<Json<ReplayInput>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let input = body(input)?;
    let recorded = st.log.task_by_id(&input.task).ok_or_else(|| {
        ApiError::new(
            0,
            format!(
                "no recorded task has the id `{}` (the task log keeps the latest only)",
                input.task
            ),
        )
        .with_status(StatusCode::NOT_FOUND)
    })?;
    let user = match input.user.as_deref().filter(|u| !u.is_empty()) {
        Some(login) => Some(session_of(&st, login).await?),
        None => None,
    };
    let kind = st
        .config
        .keys
        .iter()
        .find(|k| Some(k.key.as_str()) == client_key(&st).ok().as_deref())
        .map_or(KeyKind::Rest, |k| k.kind);
    let caller = Requester {
        key_kind: kind,
        roles: Requester::roles_for(kind, user.as_ref()),
        user,
        headers: serde_json::Map::new(),
    };
    let reply = st.dispatcher.replay(&caller, &recorded).await?;
    let mut reply = serde_json::to_value(reply).map_err(ApiError::internal)?;
    mask_secrets(&mut reply);
    Ok(Json(json!({"reply": reply})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_api_root() {
        assert_eq!(
            checked_path("/servercode/events/x").unwrap(),
            "servercode/events/x"
        );
        assert_eq!(
            checked_path("data/Post?pageSize=5").unwrap(),
            "data/Post?pageSize=5"
        );
        for bad in [
            "",
            "../__emulator/requests",
            "data/../x",
            "data/Post#x",
            "a b",
            "data/./x",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }
}
