//! User routes (spec §4.1): register, login, logout, token validation, roles,
//! update; with the user events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::event::user;

use super::auth::{Anonymous, Requester};
use super::config::KeyKind;
use super::dispatch::RunnerBefore;
use super::error::ApiError;
use super::store::{self, Object};
use super::{PathParams, Reply, Shared, json_object};

/// POST /users/register: creates the user; does not log in.
pub(crate) async fn register(
    State(st): State<Shared>,
    Anonymous(caller): Anonymous,
    body: Bytes,
) -> Reply {
    let user = json_object(&body)?;
    register_user(&st, &caller, user).await.map(Json)
}

pub(crate) async fn register_user(
    st: &Shared,
    caller: &Requester,
    user: Object,
) -> Result<Value, ApiError> {
    let args = match st
        .dispatcher
        .before(
            caller,
            user::BEFORE_REGISTER,
            "*",
            vec![Value::Object(user)],
        )
        .await?
    {
        RunnerBefore::Continue(a) => a,
        RunnerBefore::Premature(v) => return Ok(v),
    };
    let mut user = match args[0].clone() {
        Value::Object(m) => m,
        _ => {
            return Err(ApiError::new(
                0,
                "business logic changed the user into a non-object",
            ));
        }
    };
    let password = match user.remove("password") {
        Some(Value::String(p)) => p,
        _ => String::new(),
    };
    let saved = st
        .store
        .call(move |c| store::create_user(c, user, &password, &[]))
        .await?;
    // The after-event sees the stored user, never the password.
    let mut shown_args = args;
    if let Some(Value::Object(u)) = shown_args.get_mut(0) {
        u.remove("password");
    }
    st.dispatcher
        .after(
            caller,
            user::AFTER_REGISTER,
            "*",
            shown_args,
            Value::Object(saved),
        )
        .await
}

fn invalid_login() -> ApiError {
    ApiError::new(3003, "Invalid login or password").with_status(StatusCode::UNAUTHORIZED)
}

/// POST /users/login {login, password}; with the CloudCode key also {objectId}.
pub(crate) async fn login(
    State(st): State<Shared>,
    Anonymous(caller): Anonymous,
    body: Bytes,
) -> Reply {
    let body = json_object(&body)?;
    if let Some(Value::String(id)) = body.get("objectId") {
        return passwordless(&st, &caller, id.clone()).await;
    }
    let text = |k: &str| match body.get(k) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let args = vec![
        Value::String(text("login")),
        Value::String(text("password")),
    ];
    let args = match st
        .dispatcher
        .before(&caller, user::BEFORE_LOGIN, "*", args)
        .await?
    {
        RunnerBefore::Continue(a) => a,
        RunnerBefore::Premature(v) => return Ok(Json(v)),
    };
    let login = args[0].as_str().unwrap_or_default().to_owned();
    let password = args[1].as_str().unwrap_or_default().to_owned();
    if login.is_empty() || password.is_empty() {
        return Err(invalid_login());
    }
    let l = login.clone();
    let creds = st
        .store
        .call(move |c| store::check_password(c, &l, &password))
        .await?
        .ok_or_else(invalid_login)?;
    let (user, session) = open_session(&st, creds.user_id, creds.roles).await?;
    let as_user = caller.as_user(session);
    st.dispatcher
        .after(&as_user, user::AFTER_LOGIN, "*", args, user)
        .await
        .map(Json)
}

async fn passwordless(st: &Shared, caller: &Requester, user_id: String) -> Reply {
    if caller.key_kind != KeyKind::CloudCode {
        return Err(ApiError::new(
            3003,
            "Login by objectId is allowed only with the CloudCode key",
        )
        .with_status(StatusCode::UNAUTHORIZED));
    }
    let id = user_id.clone();
    let roles = st
        .store
        .call(move |c| store::user_roles(c, &id))
        .await?
        .ok_or_else(invalid_login)?;
    let (user, _) = open_session(st, user_id, roles).await?;
    Ok(Json(user))
}

/// Opens a session for a checked user: the user object with `user-token`.
async fn open_session(
    st: &Shared,
    user_id: String,
    roles: Vec<String>,
) -> Result<(Value, super::sessions::SessionUser), ApiError> {
    let id = user_id.clone();
    let mut user = st
        .store
        .call(move |c| store::get(c, "Users", &id))
        .await?
        .ok_or_else(invalid_login)?;
    let login = user
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if user.get("userStatus").and_then(Value::as_str) == Some("DISABLED") {
        return Err(
            ApiError::new(3090, "User account is disabled").with_status(StatusCode::UNAUTHORIZED)
        );
    }
    let session = st.sessions.open(&user_id, &login, roles)?;
    st.log.login(&login);
    user.insert("lastLogin".into(), Value::from(store::now_ms()));
    user.insert("user-token".into(), Value::String(session.token.clone()));
    Ok((Value::Object(user), session))
}

/// GET /users/logout; the `user-token` header is mandatory.
pub(crate) async fn logout(
    State(st): State<Shared>,
    caller: Requester,
) -> Result<StatusCode, ApiError> {
    let Some(session) = caller.user.clone() else {
        return Err(ApiError::new(
            3007,
            "Unable to logout: the user-token header is missing",
        ));
    };
    if let RunnerBefore::Premature(_) = st
        .dispatcher
        .before(&caller, user::BEFORE_LOGOUT, "*", vec![])
        .await?
    {
        return Ok(StatusCode::OK);
    }
    st.sessions.close(&session.token);
    st.dispatcher
        .after(&caller, user::AFTER_LOGOUT, "*", vec![], Value::Null)
        .await?;
    Ok(StatusCode::OK)
}

/// POST /users/verifypassword (and the JS SDK v8's `verifypassowrd`)
/// {password} -> {"valid": bool}: whether the
/// logged-in caller's password is this one (the SDK's `verifyPassword`).
/// Needs a valid token (none: 3007, a guess; stale: 3064). Fires no event.
pub(crate) async fn verify_password(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Reply {
    let Some(session) = caller.user.clone() else {
        return Err(ApiError::new(
            3007,
            "Unable to verify the password: the user-token header is missing",
        ));
    };
    let password = match json_object(&body)?.get("password") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(ApiError::parse("`password` must be a string")),
    };
    let creds = st
        .store
        .call(move |c| store::check_password(c, &session.login, &password))
        .await?;
    let valid = creds.is_some_and(|c| Some(c.user_id.as_str()) == caller.user_id());
    Ok(Json(serde_json::json!({ "valid": valid })))
}

/// GET /users/isvalidusertoken/{token} -> true/false.
pub(crate) async fn is_valid_token(
    State(st): State<Shared>,
    _caller: Anonymous,
    Path(p): PathParams,
) -> Json<Value> {
    let token = p.get("token").map_or("", String::as_str);
    Json(Value::Bool(st.sessions.is_valid(token)))
}

/// GET /users/userroles -> the caller's roles.
pub(crate) async fn user_roles(caller: Requester) -> Json<Value> {
    Json(Value::Array(
        caller.roles.iter().cloned().map(Value::String).collect(),
    ))
}

/// GET /users/userroles/{id} -> that user's custom roles and `AuthenticatedUser`.
pub(crate) async fn roles_of(
    State(st): State<Shared>,
    _caller: Requester,
    Path(p): PathParams,
) -> Reply {
    let id = p.get("id").cloned().unwrap_or_default();
    let mut roles = st
        .store
        .call(move |c| store::user_roles(c, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    roles.push("AuthenticatedUser".to_owned());
    Ok(Json(Value::Array(
        roles.into_iter().map(Value::String).collect(),
    )))
}

/// PUT /users/{id}: update a user (a password in the body changes it).
pub(crate) async fn update(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Reply {
    let changes: Map<String, Value> = json_object(&body)?;
    let id = p.get("id").cloned().unwrap_or_default();
    super::data::update_object(&st, &caller, "Users", id, changes)
        .await
        .map(Json)
}

/// 2011: an operation only business logic (the CloudCode key) may do.
fn server_code_only(what: &str) -> ApiError {
    ApiError::new(
        2011,
        format!("{what} is allowed only from business logic (the CloudCode key)"),
    )
}

/// POST /users/assignRole {user, roleName}: CloudCode key only (2011).
pub(crate) async fn assign_role(State(st): State<Shared>, caller: Requester, body: Bytes) -> Reply {
    change_role(&st, &caller, &body, true).await
}

/// POST /users/unassignRole {user, roleName}: CloudCode key only (2011).
pub(crate) async fn unassign_role(
    State(st): State<Shared>,
    caller: Requester,
    body: Bytes,
) -> Reply {
    change_role(&st, &caller, &body, false).await
}

async fn change_role(st: &Shared, caller: &Requester, body: &[u8], assign: bool) -> Reply {
    if caller.key_kind != KeyKind::CloudCode {
        return Err(server_code_only("Assigning and unassigning roles"));
    }
    let body = json_object(body)?;
    let user = match body.get("user") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::parse("`user` must be a user's objectId or login")),
    };
    let role = match body.get("roleName") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ApiError::parse("`roleName` must be a role name")),
    };
    if super::security::is_system_role(&role) {
        return Err(ApiError::new(
            2010,
            format!("{role} is a system role: it cannot be assigned or unassigned"),
        ));
    }
    let roles = st
        .store
        .call(
            move |c| -> Result<Option<(String, Vec<String>)>, ApiError> {
                let Some((id, _)) = store::find_user(c, &user)? else {
                    return Ok(None);
                };
                let mut roles = store::user_roles(c, &id)?.unwrap_or_default();
                roles.retain(|r| *r != role);
                if assign {
                    roles.push(role);
                }
                store::set_roles(c, &id, &roles)?;
                Ok(Some((id, roles)))
            },
        )
        .await?;
    let Some((id, roles)) = roles else {
        return Err(user_not_found());
    };
    st.sessions.set_roles(&id, &roles);
    Ok(Json(Value::Null))
}

/// 3020: no user with that id or login (a guess at the code).
fn user_not_found() -> ApiError {
    ApiError::new(3020, "Unable to find user with the specified identity")
        .with_status(StatusCode::NOT_FOUND)
}

/// GET /users/restorepassword/{identity}: captures the recovery email
/// (`/__emulator/emails`); 3020 for an unknown login.
pub(crate) async fn restore_password(
    State(st): State<Shared>,
    _caller: Anonymous,
    Path(p): PathParams,
) -> Result<StatusCode, ApiError> {
    let identity = p.get("identity").cloned().unwrap_or_default();
    let found = st
        .store
        .call(move |c| store::find_user(c, &identity))
        .await?
        .ok_or_else(user_not_found)?;
    super::messaging::password_recovery(&st, &found.1);
    Ok(StatusCode::OK)
}

/// PUT /users/{id}/status {userStatus}: `ENABLED` or `DISABLED`, CloudCode
/// key only (2011, a guess); disabling ends the user's sessions.
pub(crate) async fn set_status(
    State(st): State<Shared>,
    caller: Requester,
    Path(p): PathParams,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    if caller.key_kind != KeyKind::CloudCode {
        return Err(server_code_only("Changing a user's status"));
    }
    let status = match json_object(&body)?.get("userStatus") {
        Some(Value::String(s)) if s == "ENABLED" || s == "DISABLED" => s.clone(),
        _ => return Err(ApiError::parse("`userStatus` must be ENABLED or DISABLED")),
    };
    let id = p.get("id").cloned().unwrap_or_default();
    let (user, value) = (id.clone(), status.clone());
    let exists = st
        .store
        .call(move |c| store::set_user_status(c, &user, &value))
        .await?;
    if !exists {
        return Err(user_not_found());
    }
    if status == "DISABLED" {
        st.sessions.close_user(&id);
    }
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::super::test_call as call;
    use super::super::{Emulator, EmulatorConfig};
    use super::*;

    #[tokio::test]
    async fn verify_password_checks_the_callers_own_password() {
        let emu = Emulator::new(EmulatorConfig::dev()).unwrap();
        let url = "/dev-app/dev-js-key/users/verifypassword";
        let body = r#"{"login": "alice@example.com", "password": "alice-pass"}"#;
        let (_, user) = call(
            &emu,
            Method::POST,
            "/dev-app/dev-js-key/users/login",
            None,
            body,
        )
        .await;
        let token = user["user-token"].as_str().unwrap().to_owned();
        let check = |pw: &str| serde_json::json!({ "password": pw }).to_string();
        let (status, r) = call(&emu, Method::POST, url, Some(&token), &check("alice-pass")).await;
        assert_eq!(
            (status, r),
            (StatusCode::OK, serde_json::json!({"valid": true}))
        );
        let (_, r) = call(&emu, Method::POST, url, Some(&token), &check("bob-pass")).await;
        assert_eq!(r, serde_json::json!({"valid": false}));
        let (_, err) = call(&emu, Method::POST, url, None, &check("alice-pass")).await;
        assert_eq!(err["code"], serde_json::json!(3007));
        let (status, err) = call(&emu, Method::POST, url, Some("STALE"), &check("x")).await;
        assert_eq!(
            (status, err["code"].clone()),
            (StatusCode::UNAUTHORIZED, serde_json::json!(3064))
        );
        let (_, err) = call(&emu, Method::POST, url, Some(&token), "{}").await;
        assert_eq!(err["code"], serde_json::json!(8002));
        let sdk_url = "/dev-app/dev-js-key/users/verifypassowrd";
        let (_, r) = call(
            &emu,
            Method::POST,
            sdk_url,
            Some(&token),
            &check("alice-pass"),
        )
        .await;
        assert_eq!(r, serde_json::json!({"valid": true}));
    }
}
