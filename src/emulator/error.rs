//! Backendless-style errors: `{"code", "message", "errorData"}` with an HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::store::StorageError;

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The Backendless error code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
}

/// The code of a relation the emulator cannot make: an undeclared relation
/// column, a second child in a `1:1` column, a column declared again
/// differently (a guess: the real code is undocumented).
pub(super) const RELATION_ERROR: i64 = 1018;

impl ApiError {
    /// An error with HTTP 400.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// The same error with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// 1000: no object with that id (HTTP 404, a guess).
    pub fn not_found() -> Self {
        Self::new(1000, "Entity with the specified ID cannot be found")
            .with_status(StatusCode::NOT_FOUND)
    }

    /// 1017: the where clause is not understood.
    pub fn invalid_where(detail: impl std::fmt::Display) -> Self {
        Self::new(1017, format!("Invalid where clause: {detail}"))
    }

    /// 2002: unknown application id or API key.
    pub fn unknown_app() -> Self {
        Self::new(
            2002,
            "Application not found: invalid application id or API key",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    }

    /// 3064: unknown, expired or logged-out user token (HTTP 401, a guess).
    pub fn bad_token() -> Self {
        Self::new(
            3064,
            "Not existing user token. Relogin user to update your user token",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    }

    /// 1018 (`RELATION_ERROR`): the relation cannot be made as asked.
    pub fn relation(detail: impl Into<String>) -> Self {
        Self::new(RELATION_ERROR, detail)
    }

    /// 8002: the body could not be parsed.
    pub fn parse(detail: impl std::fmt::Display) -> Self {
        Self::new(
            8002,
            format!("Could not parse request with message: {detail}"),
        )
    }

    /// 0: no such route in the emulator (HTTP 404).
    pub fn no_route() -> Self {
        Self::new(0, "No such route in the emulator").with_status(StatusCode::NOT_FOUND)
    }

    /// An internal failure; the detail is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "emulator.internal_error");
        Self::new(0, "Internal emulator error").with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        let code = match &e {
            StorageError::DuplicateId(_) => 1155,
            StorageError::EmailTaken(_) => 3033,
            StorageError::Required(_) | StorageError::InvalidPassword => 3011,
            StorageError::RelationConflict(_) => RELATION_ERROR,
            StorageError::Sqlite(_) | StorageError::Json(_) | StorageError::Thread(_) => {
                return Self::internal(e);
            }
        };
        Self::new(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"code": self.code, "message": self.message, "errorData": {}})),
        )
            .into_response()
    }
}

/// A known path with another method (e.g. `POST users/{id}`): a Backendless
/// error body rather than an empty 405.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(0, "Method not allowed on this route in the emulator")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Any other route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::no_route()
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::json;

    use super::super::test_call as call;
    use super::super::{Emulator, EmulatorConfig};
    use super::*;

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
