//! Who is calling: the app id and API key from the path, the `user-token`
//! header, the resulting roles (spec §6); and the request-log middleware that
//! records what was resolved.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::Shared;
use super::config::KeyKind;
use super::error::ApiError;
use super::inspect::RequestRecord;
use super::sessions::SessionUser;

/// The resolved caller of a request. `Debug` hides the token and credential headers.
#[derive(Clone)]
pub struct Requester {
    /// The kind of the API key in the path.
    pub key_kind: KeyKind,
    /// The logged-in user, when a valid `user-token` was sent.
    pub user: Option<SessionUser>,
    /// Custom roles, then system roles.
    pub roles: Vec<String>,
    /// The request headers (for the RunnerContext).
    pub headers: Map<String, Value>,
}

impl std::fmt::Debug for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        f.debug_struct("Requester")
            .field("key_kind", &self.key_kind)
            .field("user", &self.user)
            .field("roles", &self.roles)
            .field("header_names", &headers)
            .finish()
    }
}

impl Requester {
    /// The caller's roles for a key and an optional user.
    ///
    /// Anonymous: `NotAuthenticatedUser` + the key's role, except with the
    /// CloudCode key, which gets `ServerCodeUser` alone (a guess, see
    /// docs/emulator.md). With a user: custom roles + `AuthenticatedUser` +
    /// the key's role.
    pub fn roles_for(key_kind: KeyKind, user: Option<&SessionUser>) -> Vec<String> {
        match user {
            Some(u) => {
                let mut roles = u.roles.clone();
                roles.push("AuthenticatedUser".to_owned());
                roles.push(key_kind.role().to_owned());
                roles
            }
            None if key_kind == KeyKind::CloudCode => vec![key_kind.role().to_owned()],
            None => vec![
                "NotAuthenticatedUser".to_owned(),
                key_kind.role().to_owned(),
            ],
        }
    }

    /// The caller's user id.
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.user_id.as_str())
    }

    /// The same request, made by `user` (afterLogin's context).
    pub fn as_user(&self, user: SessionUser) -> Requester {
        Requester {
            key_kind: self.key_kind,
            roles: Self::roles_for(self.key_kind, Some(&user)),
            user: Some(user),
            headers: self.headers.clone(),
        }
    }
}

/// What the request log learns while the request is handled.
#[derive(Default)]
struct Resolved {
    key_kind: Option<KeyKind>,
    user_id: Option<String>,
}

#[derive(Clone, Default)]
pub(crate) struct Slot(Arc<Mutex<Resolved>>);

/// A caller whose `user-token` header, if any, is ignored: for login,
/// register and token validation, which a client may call with a stale
/// token still in its headers.
#[derive(Debug, Clone)]
pub(super) struct Anonymous(pub Requester);

impl FromRequestParts<Shared> for Anonymous {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        resolve(parts, state, false).await.map(Anonymous)
    }
}

impl FromRequestParts<Shared> for Requester {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        resolve(parts, state, true).await
    }
}

async fn resolve(
    parts: &mut Parts,
    state: &Shared,
    use_token: bool,
) -> Result<Requester, ApiError> {
    {
        // Inside the nested router the URI has lost its prefix: read the
        // prefix's path parameters instead.
        let params = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::unknown_app())?;
        let app = params.get("app_id").map_or("", String::as_str);
        let key = params.get("api_key").map_or("", String::as_str).to_owned();
        if app != state.config.app_id {
            return Err(ApiError::unknown_app());
        }
        let key_kind = *state.keys.get(&key).ok_or_else(ApiError::unknown_app)?;
        let slot = parts.extensions.get::<Slot>().cloned().unwrap_or_default();
        slot.0.lock().key_kind = Some(key_kind);
        let token = parts
            .headers
            .get("user-token")
            .map(|v| v.to_str().unwrap_or_default().trim().to_owned())
            .filter(|t| use_token && !t.is_empty());
        let user = match token {
            Some(t) => Some(state.sessions.resolve(&t)?),
            None => None,
        };
        slot.0.lock().user_id = user.as_ref().map(|u| u.user_id.clone());
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                )
            })
            .collect();
        Ok(Requester {
            key_kind,
            roles: Requester::roles_for(key_kind, user.as_ref()),
            user,
            headers,
        })
    }
}

/// Records every Backendless request (not `/__emulator/`) in the request log.
pub(crate) async fn log_requests(
    State(state): State<Shared>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/__emulator") {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let user_token = req
        .headers()
        .get("user-token")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let slot = Slot::default();
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    let resolved = std::mem::take(&mut *slot.0.lock());
    state.log.request(RequestRecord {
        method,
        path,
        user_token,
        user_id: resolved.user_id,
        key_kind: resolved.key_kind,
        status: response.status().as_u16(),
    });
    response
}
