//! The SDK's one error type.
//!
//! No variant carries a token, a password or the API key: URLs are stripped
//! from transport errors and secrets are masked in backend messages.

use std::fmt;
use std::time::Duration;

/// Codes with which the backend says a user token is no longer valid
/// (spec §5): 3064 "Not existing user token", 3048 and 3091 "Session timeout".
pub const INVALID_SESSION_CODES: &[i64] = &[3064, 3048, 3091];

/// Login refused because of a multiple-login limit (3044) or because the
/// account is logged in elsewhere and multiple logins are off (3002).
pub const LOGIN_LIMIT_CODES: &[i64] = &[3044, 3002];

/// "Invalid login or password".
pub const BAD_CREDENTIALS_CODE: i64 = 3003;

/// Why a call through the SDK failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The backend answered with a non-2xx status (body `{"code","message"}`).
    #[error("backend error {code} (HTTP {status}) from {service}: {message}", code = display_code(*.code))]
    Backend {
        /// Which service was called (`users`, `data`, `cache`, `counters`,
        /// `files`, `messaging`, `logging`).
        service: &'static str,
        /// The HTTP status.
        status: u16,
        /// The Backendless error code, when the body had one.
        code: Option<i64>,
        /// The backend's message, with any secret of this call masked.
        message: String,
    },
    /// The backend answered with a redirect (3xx). The SDK follows none: a
    /// redirect could send the caller's token or the superuser's password to
    /// another host.
    #[error(
        "the backend ({service}) answered with a redirect (HTTP {status}), which the SDK does not follow; check `server_url` and `custom_domain`"
    )]
    Redirected {
        /// Which service was called.
        service: &'static str,
        /// The HTTP status (301, 302, 307...).
        status: u16,
    },
    /// The request could not be sent or the reply not read.
    #[error("could not reach the backend ({service})")]
    Transport {
        /// Which service was called.
        service: &'static str,
        /// The cause, without the URL (it holds the API key).
        #[source]
        source: reqwest::Error,
    },
    /// The call did not finish before the client's deadline or the
    /// configured `request_timeout`, whichever came first.
    #[error("backend call to {service} timed out ({limit})")]
    Timeout {
        /// Which service was called.
        service: &'static str,
        /// Which limit expired.
        limit: TimeoutLimit,
    },
    /// The runner was started without a Backendless SDK (no `[backendless]`
    /// configuration, or a `Context` made without one): nothing was sent.
    #[error("this runner has no Backendless SDK configured ([backendless] in the configuration)")]
    NotConfigured,
    /// An argument was rejected before any request was sent.
    #[error("invalid argument `{argument}`: {message}")]
    InvalidArgument {
        /// The argument's name, e.g. `expire_in`.
        argument: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The operation is reserved to another identity; no request was sent
    /// (assigning roles needs the server key, i.e. the CloudCode key).
    #[error("{operation} needs the {needed} identity, not {actual}")]
    WrongIdentity {
        /// The operation, e.g. `assignRole`.
        operation: &'static str,
        /// The identity it needs.
        needed: crate::sdk::IdentityKind,
        /// The identity of the client it was called on.
        actual: crate::sdk::IdentityKind,
    },
    /// The shared superuser session could not be established.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// An operation of a transaction failed: the backend wrote nothing. The
    /// error names the operation (its `opResultId` and index).
    #[error(transparent)]
    Transaction(Box<super::transaction::TransactionError>),
    /// The backend's reply did not have the expected shape.
    #[error("could not decode the reply of {service}: {message}")]
    Decode {
        /// Which service was called.
        service: &'static str,
        /// What did not match.
        message: String,
    },
}

fn display_code(code: Option<i64>) -> String {
    code.map_or_else(|| "without code".to_owned(), |c| c.to_string())
}

impl SdkError {
    /// The Backendless error code, for [`SdkError::Backend`], for the failed
    /// operation of a [`SdkError::Transaction`] and for login failures that
    /// the backend explained; `None` for the SDK's own errors (timeouts,
    /// transport, invalid arguments).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::json;
    /// match ctx.caller().table::<serde_json::Value>("Latest_post").create(&json!({"title": "hi"})).await {
    ///     Ok(_) => {}
    ///     // "User has no permission to create entity": the caller may not write there.
    ///     Err(e) if e.code() == Some(1011) => {
    ///         ctx.server_key().table::<serde_json::Value>("Latest_post").create(&json!({"title": "hi"})).await?;
    ///     }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> Option<i64> {
        match self {
            SdkError::Backend { code, .. } => *code,
            SdkError::Login(e) => e.code,
            SdkError::Transaction(e) => e.code,
            _ => None,
        }
    }

    /// The HTTP status of a [`SdkError::Backend`]; `None` otherwise.
    /// Backendless does not document its statuses: prefer [`SdkError::code`].
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// if let Err(e) = ctx.caller().counters().increment_and_get("visits").await {
    ///     tracing::warn!(status = ?e.status(), code = ?e.code(), "counter not moved");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> Option<u16> {
        match self {
            SdkError::Backend { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the backend said the user token used is no longer valid: one
    /// of [`INVALID_SESSION_CODES`] (3064, 3048, 3091), whatever the HTTP
    /// status. Another 401 (a bad API key, 2002; a refused login, 3003) is
    /// not about the session, and logging in again would not help. For the
    /// superuser the SDK re-logs in by itself; for the caller it is the
    /// caller's session that ended, which a handler reports rather than hides.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::HandlerError> {
    /// match ctx.caller().counters().increment_and_get("visits").await {
    ///     Err(e) if e.is_invalid_session() => {
    ///         return Err(coderunner::HandlerError::new(3064, "your session ended: log in again"));
    ///     }
    ///     other => other?,
    /// };
    /// # Ok(()) }
    /// ```
    pub fn is_invalid_session(&self) -> bool {
        match self {
            SdkError::Backend { code, .. } => {
                code.is_some_and(|c| INVALID_SESSION_CODES.contains(&c))
            }
            _ => false,
        }
    }

    /// Whether the backend said the object does not exist (1000). The
    /// `find_by_id` calls turn it into `Ok(None)` already.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// match ctx.caller().table::<serde_json::Value>("Order").delete("0D4B5E9A-0000-4000-8000-000000000000").await {
    ///     Err(e) if e.is_not_found() => {} // already gone
    ///     other => {
    ///         other?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(1000)
    }

    pub(crate) fn invalid(argument: &'static str, message: impl Into<String>) -> Self {
        SdkError::InvalidArgument {
            argument,
            message: message.into(),
        }
    }

    /// `Ok` when `value` is not empty, else [`SdkError::InvalidArgument`]
    /// naming `argument`: "the {what} is empty".
    pub(crate) fn non_empty(argument: &'static str, what: &str, value: &str) -> Result<(), Self> {
        if value.is_empty() {
            return Err(SdkError::invalid(argument, format!("the {what} is empty")));
        }
        Ok(())
    }
}

/// Which limit ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutLimit {
    /// The deadline given with [`crate::sdk::Client::with_deadline`] (the
    /// invocation's deadline).
    Deadline,
    /// The configured `request_timeout`.
    RequestTimeout,
    /// The configured `login_timeout` (a superuser login).
    LoginTimeout,
}

impl fmt::Display for TimeoutLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutLimit::Deadline => "the invocation deadline passed",
            TimeoutLimit::RequestTimeout => "request_timeout elapsed",
            TimeoutLimit::LoginTimeout => "login_timeout elapsed",
        })
    }
}

/// Why the superuser could not log in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("superuser login failed ({kind}): {message}{}", retry_note(*.retry_in))]
pub struct LoginError {
    /// The class of failure.
    pub kind: LoginErrorKind,
    /// The Backendless error code, when the backend gave one.
    pub code: Option<i64>,
    /// The backend's message or a description of the failure.
    pub message: String,
    /// When this error is returned while backing off: how long until the next
    /// login attempt is allowed.
    pub retry_in: Option<Duration>,
}

fn retry_note(retry_in: Option<Duration>) -> String {
    retry_in.map_or_else(String::new, |d| {
        format!(" (backing off: next attempt in {:.1} s)", d.as_secs_f64())
    })
}

/// The class of a [`LoginError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginErrorKind {
    /// 3044 or 3002: the account's multiple-login limit was reached.
    LoginLimit,
    /// 3003: invalid login or password.
    BadCredentials,
    /// The backend refused the login for another reason.
    Rejected,
    /// The backend could not be reached, or did not answer in time, or its
    /// reply had no token.
    Unreachable,
    /// No superuser credentials are configured.
    NotConfigured,
}

impl LoginErrorKind {
    /// A bounded label for metrics and logs: `login_limit`,
    /// `bad_credentials`, `rejected`, `unreachable` or `not_configured`.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::SdkError;
    /// if let Err(SdkError::Login(e)) = ctx.superuser().counters().get("orders").await {
    ///     tracing::error!(kind = e.kind.as_str(), code = ?e.code, retry_in = ?e.retry_in, "superuser login refused");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            LoginErrorKind::LoginLimit => "login_limit",
            LoginErrorKind::BadCredentials => "bad_credentials",
            LoginErrorKind::Rejected => "rejected",
            LoginErrorKind::Unreachable => "unreachable",
            LoginErrorKind::NotConfigured => "not_configured",
        }
    }
}

impl fmt::Display for LoginErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LoginError {
    /// Classifies the error of a login request.
    pub(crate) fn from_sdk(err: &SdkError) -> Self {
        let (kind, code, message) = match err {
            SdkError::Backend { code, message, .. } => {
                let kind = match code {
                    Some(c) if LOGIN_LIMIT_CODES.contains(c) => LoginErrorKind::LoginLimit,
                    Some(BAD_CREDENTIALS_CODE) => LoginErrorKind::BadCredentials,
                    _ => LoginErrorKind::Rejected,
                };
                (kind, *code, message.clone())
            }
            other => (LoginErrorKind::Unreachable, None, other.to_string()),
        };
        LoginError {
            kind,
            code,
            message,
            retry_in: None,
        }
    }
}
