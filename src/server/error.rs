//! The server's error replies: a status and a JSON body with a code and a
//! message naming the problem; and how the refusals of the checks a task
//! goes through (signature, decoding, routing) become one.
//!
//! This module must not log: a refusal is logged once, where it is made.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::dispatch::RouteError;
use crate::event::wire::TaskError;
use crate::signature::SignatureError;

/// An error answered to a request that cannot be executed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ErrorReply {
    #[serde(skip)]
    status: StatusCode,
    /// A stable machine-readable code, e.g. `invalid_signature`.
    pub code: &'static str,
    /// What is wrong, naming the field or header.
    pub message: String,
    /// The offending field of the task, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`), for refusals
    /// that are about load rather than about the request.
    #[serde(skip)]
    retry_after_secs: Option<u64>,
}

impl ErrorReply {
    /// An error with a status, a code and a message.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    /// Adds a `Retry-After` header.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Names the offending task field.
    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        if !field.is_empty() {
            self.field = Some(field);
        }
        self
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// A signature that cannot be accepted: 400 for an id too long to remember,
/// 401 for the rest (a header missing, a stale timestamp, no match).
impl From<SignatureError> for ErrorReply {
    fn from(error: SignatureError) -> Self {
        let status = match error {
            SignatureError::IdTooLong => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        ErrorReply::new(status, "invalid_signature", error.to_string())
    }
}

/// A body that is not a task: 400 naming the field.
impl From<TaskError> for ErrorReply {
    fn from(error: TaskError) -> Self {
        ErrorReply::new(StatusCode::BAD_REQUEST, "invalid_task", error.message)
            .with_field(error.field)
    }
}

/// A task built wrong for its handler (its context or its arguments) is
/// the sender's mistake: 400 naming the field. The other routing errors
/// (an unknown event, handler, service or method; a service's parameters)
/// are answered in the protocol, with an `InvocationResult`: they come
/// back as the `Err`.
impl TryFrom<RouteError> for ErrorReply {
    type Error = RouteError;

    fn try_from(error: RouteError) -> Result<Self, RouteError> {
        let invalid = |message| ErrorReply::new(StatusCode::BAD_REQUEST, "invalid_task", message);
        match error {
            RouteError::BadContext(_) => Ok(invalid(error.to_string()).with_field("arguments[0]")),
            RouteError::BadArguments(e) => Ok(invalid(e.to_string()).with_field(e.field)),
            other => Err(other),
        }
    }
}
