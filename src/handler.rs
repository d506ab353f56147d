//! What a handler sees and returns: the [`Context`] of one invocation, the
//! outcomes of before- and after-handlers, and [`HandlerError`].

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::event::wire::ExceptionWrapper;
use crate::event::{EventDef, RunnerContext};
use crate::sdk::{Backendless, Client, SdkError};

/// Everything a handler knows about one invocation: the caller (the
/// RunnerContext), the event and target, and the task's deadline.
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    runner: RunnerContext,
    task_id: String,
    event: &'static EventDef,
    target: String,
    /// When the task's timeout expires; SDK calls made through this context
    /// give up at that point.
    deadline: Option<tokio::time::Instant>,
    /// The process-wide SDK the identity clients are made from.
    sdk: Option<Backendless>,
}

impl Context {
    /// A context for one invocation.
    pub fn new(
        runner: RunnerContext,
        task_id: impl Into<String>,
        event: &'static EventDef,
        target: impl Into<String>,
        deadline: Option<tokio::time::Instant>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                runner,
                task_id: task_id.into(),
                event,
                target: target.into(),
                deadline,
                sdk: None,
            }),
        }
    }

    /// The same context with the SDK its identity clients are made from.
    pub fn with_sdk(mut self, sdk: Backendless) -> Self {
        // A context not yet shared (the dispatcher's, before the handler
        // runs) is completed in place, with no second allocation.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.sdk = Some(sdk);
            return self;
        }
        let shared = &self.inner;
        Self {
            inner: Arc::new(ContextInner {
                runner: shared.runner.clone(),
                task_id: shared.task_id.clone(),
                event: shared.event,
                target: shared.target.clone(),
                deadline: shared.deadline,
                sdk: Some(sdk),
            }),
        }
    }

    /// The SDK, or without one a stand-in whose every call fails with
    /// [`SdkError::NotConfigured`](crate::sdk::SdkError::NotConfigured).
    fn sdk(&self) -> Backendless {
        match &self.inner.sdk {
            Some(sdk) => sdk.clone(),
            None => Backendless::unconfigured(),
        }
    }

    fn bounded(&self, client: Client) -> Client {
        match self.inner.deadline {
            Some(deadline) => client.with_deadline(deadline),
            None => client,
        }
    }

    /// A client acting **as the caller**: it sends the caller's user-token
    /// from the RunnerContext (none for an anonymous caller), so the
    /// caller's roles and ACLs apply and rows it creates are owned by the
    /// caller. No password is needed. The usual choice.
    pub fn caller(&self) -> Client {
        self.bounded(self.sdk().caller(self.inner.runner.user_token.clone()))
    }

    /// A client acting **as the shared superuser** configured in
    /// `[backendless.superuser]`: one login for the whole process, reused
    /// and refreshed when it expires.
    pub fn superuser(&self) -> Client {
        self.bounded(self.sdk().superuser())
    }

    /// A client with **the server key alone** (no user-token): the API
    /// key's own role, ServerCodeUser with the CloudCode key.
    pub fn server_key(&self) -> Client {
        self.bounded(self.sdk().server_key())
    }

    /// The RunnerContext the backend sent: app id, caller, roles, headers.
    pub fn runner(&self) -> &RunnerContext {
        &self.inner.runner
    }

    /// The caller's objectId; `None` when anonymous.
    pub fn user_id(&self) -> Option<&str> {
        self.inner.runner.user_id.as_deref()
    }

    /// The caller's roles.
    pub fn user_roles(&self) -> &[String] {
        &self.inner.runner.user_roles
    }

    /// The task id (the reply's `requestId`).
    pub fn task_id(&self) -> &str {
        &self.inner.task_id
    }

    /// The event being handled.
    pub fn event(&self) -> &'static EventDef {
        self.inner.event
    }

    /// The target (table, channel, ...) the task was sent for.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// When the task's timeout expires, if it has one.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.inner.deadline
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("task_id", &self.inner.task_id)
            .field("event", &self.inner.event.name)
            .field("target", &self.inner.target)
            .field("runner", &self.inner.runner)
            .finish()
    }
}

/// What a before-handler decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Before<A> {
    /// Go on with the built-in logic, with these (possibly changed) arguments.
    Continue(A),
    /// Skip the built-in logic and give the client this value instead
    /// (sent back as the context's `prematureResult`).
    ShortCircuit(Value),
}

/// What an after-handler decided.
#[derive(Debug, Clone, PartialEq)]
pub enum After<R> {
    /// The client gets the result the built-in logic produced.
    Keep,
    /// The client gets this value instead.
    Replace(R),
}

/// What the built-in logic produced, as an after-handler sees it.
///
/// ```
/// use coderunner::{After, Context, HandlerError, Outcome};
/// use serde_json::Value;
///
/// async fn after_update(_ctx: Context, _row: Value, updated: Outcome<Value>) -> Result<After<Value>, HandlerError> {
///     match updated {
///         Outcome::Ok(Some(row)) => tracing::info!(id = %row["objectId"], "updated"),
///         Outcome::Ok(None) => {}
///         Outcome::Failed(error) => tracing::warn!(code = error.code(), "the update failed"),
///     }
///     Ok(After::Keep)
/// }
/// # let _ = after_update;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<R> {
    /// The operation succeeded, with its result (`None` when it returned
    /// nothing).
    Ok(Option<R>),
    /// The operation failed with this error.
    Failed(BuiltInError),
}

impl<R> Outcome<R> {
    /// The result, when the operation succeeded and returned something.
    pub fn into_result(self) -> Option<R> {
        match self {
            Outcome::Ok(result) => result,
            Outcome::Failed(_) => None,
        }
    }

    /// The result, borrowed.
    pub fn result(&self) -> Option<&R> {
        match self {
            Outcome::Ok(result) => result.as_ref(),
            Outcome::Failed(_) => None,
        }
    }

    /// The error, when the operation failed.
    pub fn error(&self) -> Option<&BuiltInError> {
        match self {
            Outcome::Ok(_) => None,
            Outcome::Failed(error) => Some(error),
        }
    }
}

/// The error of a built-in operation an after-handler is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltInError {
    code: i64,
    message: String,
    http_status: Option<u16>,
}

impl BuiltInError {
    pub(crate) fn from_exception(exception: &ExceptionWrapper) -> Self {
        Self {
            code: exception.code,
            message: exception.exception_message.clone(),
            http_status: u16::try_from(exception.http_status_code).ok(),
        }
    }

    /// The Backendless error code (0 when none was given).
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The message the client gets.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status for the client, when one was set.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }
}

/// A handler's rejection: the client receives `code` and `message`, with
/// `http_status` when given (else the server decides).
///
/// Any `std::error::Error` converts into one with code 0, so `?` works in
/// handlers.
#[derive(Clone, PartialEq, Eq)]
pub struct HandlerError {
    code: i64,
    message: String,
    http_status: Option<u16>,
}

impl HandlerError {
    /// An error with a Backendless-style code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
        }
    }

    /// An error with code 0 and a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }

    /// Sets the HTTP status the client receives.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// The error code.
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The message the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, if the handler chose one.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The wire form of this error.
    pub fn to_exception(&self) -> ExceptionWrapper {
        ExceptionWrapper::new(self.code, self.message.clone(), self.http_status)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandlerError({}: {}", self.code, self.message)?;
        if let Some(s) = self.http_status {
            write!(f, ", HTTP {s}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    /// Code 0 and the error's message; an SDK error from the backend (or a
    /// refused superuser login) keeps its Backendless code and message, so
    /// the client sees e.g. 1011 or 3044.
    fn from(error: E) -> Self {
        let any: &dyn std::any::Any = &error;
        if let Some(sdk) = any.downcast_ref::<SdkError>() {
            match sdk {
                SdkError::Backend {
                    code: Some(code),
                    message,
                    ..
                } => return HandlerError::new(*code, message.clone()),
                SdkError::Login(login) if login.code.is_some() => {
                    return HandlerError::new(
                        login.code.unwrap_or_default(),
                        login.message.clone(),
                    );
                }
                _ => {}
            }
        }
        HandlerError::msg(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_errors_keep_their_backendless_code() {
        let denied = SdkError::Backend {
            service: "data",
            status: 400,
            code: Some(1011),
            message: "User has no permission to create entity".into(),
        };
        let error = HandlerError::from(denied);
        assert_eq!(
            (error.code(), error.message()),
            (1011, "User has no permission to create entity")
        );
        assert_eq!(error.http_status(), None, "the server decides the status");

        let plain = HandlerError::from(std::io::Error::other("disk on fire"));
        assert_eq!((plain.code(), plain.message()), (0, "disk on fire"));
        let wire = HandlerError::new(7, "m").with_status(418).to_exception();
        assert_eq!((wire.code, wire.http_status_code), (7, 418));
    }

    #[tokio::test]
    async fn a_context_without_an_sdk_fails_each_call_with_a_typed_error() {
        let event = crate::event::persistence::BEFORE_CREATE.def().unwrap();
        let ctx = Context::new(RunnerContext::default(), "t1", event, "Post", None);
        for client in [ctx.caller(), ctx.superuser(), ctx.server_key()] {
            let counted = client.table::<Value>("Post").count(None).await;
            assert!(
                matches!(counted, Err(SdkError::NotConfigured)),
                "{counted:?}"
            );
        }
        let error = HandlerError::from(SdkError::NotConfigured);
        assert!(
            error.message().contains("[backendless]"),
            "{}",
            error.message()
        );
    }
}

/// A password as a handler receives it (the second argument of
/// `beforeLogin`/`afterLogin`, the user's `password` field of a
/// `beforeRegister`): a secret that never shows in `Debug` output, logs or
/// panics. Read it with [`Password::expose`] where it must be used.
///
/// ```
/// use coderunner::{After, Context, HandlerError, Outcome, Password};
/// use serde_json::Value;
///
/// async fn after_login(
///     _ctx: Context,
///     (login, password): (String, Password),
///     _result: Outcome<Value>,
/// ) -> Result<After<Value>, HandlerError> {
///     assert_eq!(format!("{password:?}"), "Password([REDACTED])");
///     let _strong = password.expose().len() >= 12;
///     tracing::info!(%login, "logged in");
///     Ok(After::Keep)
/// }
/// # let _ = after_login;
/// ```
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Password(secrecy::SecretString);

impl Password {
    /// The password itself.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self(password.into())
    }
}

/// On the wire only (a before-handler continuing with its arguments sends
/// the password back to the server).
impl serde::Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}
