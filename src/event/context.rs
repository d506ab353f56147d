//! The RunnerContext (spec §2): who called, from where, with which roles.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A Backendless `user-token`. Its `Debug` and `Display` never show the
/// value; read it with [`UserToken::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserToken(String);

impl UserToken {
    /// Wraps a token value.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the `user-token` header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserToken([redacted])")
    }
}

impl fmt::Display for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Headers whose values are credentials and are redacted from `Debug`.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "user-token",
    "authorization",
    "cookie",
    "set-cookie",
    "auth-key",
    "secret-key",
    "webhook-signature",
];

/// Whether a header (any case) carries a credential.
pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Describes the caller of the event: argument 0 of every task.
///
/// Unknown fields sent by the backend are kept in [`RunnerContext::extra`]
/// and sent back unchanged.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerContext {
    /// The application id.
    #[serde(default)]
    pub app_id: String,
    /// The caller's objectId; `None` when anonymous.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The caller's `user-token`; `None` when anonymous.
    #[serde(default)]
    pub user_token: Option<UserToken>,
    /// The caller's roles (anonymous: `NotAuthenticatedUser` plus the key's role).
    #[serde(default)]
    pub user_roles: Vec<String>,
    /// `IOS`, `ANDROID`, `JS`, `REST` or `BL`.
    #[serde(default)]
    pub device_type: Option<String>,
    /// Headers of the original request.
    #[serde(default)]
    pub http_headers: Map<String, Value>,
    /// The asset the event is about (table, channel, directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_context: Option<String>,
    /// The short-circuit value a before-handler returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premature_result: Option<Value>,
    /// Undocumented; kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_properties: Option<Value>,
    /// Java runner only; kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_handler_data: Option<Value>,
    /// Every other field, kept so that the reply carries it back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RunnerContext {
    /// Whether the caller is anonymous (no user token).
    pub fn is_anonymous(&self) -> bool {
        self.user_token.is_none()
    }

    /// Whether the caller has this role.
    pub fn has_role(&self, role: &str) -> bool {
        self.user_roles.iter().any(|r| r == role)
    }
}

impl fmt::Debug for RunnerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&String, &dyn fmt::Debug)> = self
            .http_headers
            .iter()
            .map(|(k, v)| {
                let shown: &dyn fmt::Debug = if is_sensitive_header(k) {
                    &"[redacted]"
                } else {
                    v
                };
                (k, shown)
            })
            .collect();
        let extra: Vec<(&String, &dyn fmt::Debug)> = self
            .extra
            .iter()
            .map(|(k, v)| {
                let shown: &dyn fmt::Debug = if k.to_ascii_lowercase().contains("token") {
                    &"[redacted]"
                } else {
                    v
                };
                (k, shown)
            })
            .collect();
        f.debug_struct("RunnerContext")
            .field("app_id", &self.app_id)
            .field("user_id", &self.user_id)
            .field("user_token", &self.user_token)
            .field("user_roles", &self.user_roles)
            .field("device_type", &self.device_type)
            .field("http_headers", &headers)
            .field("event_context", &self.event_context)
            .field("premature_result", &self.premature_result)
            .field("missing_properties", &self.missing_properties)
            .field("cross_handler_data", &self.cross_handler_data)
            .field("extra", &extra)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_unknown_fields() {
        let raw = json!({
            "appId": "A", "userId": "U", "userToken": "T-secret", "userRoles": ["AuthenticatedUser"],
            "deviceType": "REST", "httpHeaders": {"user-token": "T-secret", "x": "1"},
            "___jsonclass": "com.backendless.servercode.InvocationContext", "somethingNew": {"a": 1}
        });
        let ctx: RunnerContext = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(ctx.user_token.as_ref().unwrap().expose(), "T-secret");
        assert_eq!(ctx.extra["somethingNew"], json!({"a": 1}));
        let back = serde_json::to_value(&ctx).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn debug_hides_tokens() {
        let ctx: RunnerContext = serde_json::from_value(json!({
            "appId": "A", "userToken": "T-secret", "httpHeaders": {"User-Token": "T-secret"},
            "sessionToken": "T-secret"
        }))
        .unwrap();
        let shown = format!("{ctx:?}");
        assert!(!shown.contains("T-secret"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
