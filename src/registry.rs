//! Typed handler registration, stored type-erased and keyed by
//! (event id, target).
//!
//! A handler is a plain `async fn` over the invocation [`Context`] and typed
//! arguments. The catalog's arity decides how arguments are decoded: for an
//! event with one argument (`beforeCreate(item)`) the handler's type is that
//! argument (`Post`); for any other arity it is the array of arguments (a
//! tuple such as `(String, Password)` for `beforeLogin(login, password)`, or
//! `serde_json::Value` for raw JSON).
//!
//! ```
//! use coderunner::event::persistence;
//! use coderunner::{Before, Context, HandlerError, Registry};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Post { title: String }
//!
//! async fn before_create(_ctx: Context, mut post: Post) -> Result<Before<Post>, HandlerError> {
//!     post.title = post.title.trim().to_owned();
//!     Ok(Before::Continue(post))
//! }
//!
//! let mut registry = Registry::new();
//! registry.before(persistence::BEFORE_CREATE, "Post", before_create).unwrap();
//! assert_eq!(registry.handlers().len(), 1);
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::wire::ExecutionResult;
use crate::event::{EventDef, EventId, Phase};
use crate::event::{custom, timer};
use crate::handler::{After, Before, BuiltInError, Context, HandlerError, Outcome};
use crate::service::{RegisteredService, Service};
use crate::timer::{Schedule, ScheduleError};

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a type-erased handler produced, in wire terms.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Before: continue with these argument values (context excluded).
    Continue(Vec<Value>),
    /// Before: short-circuit with this value.
    ShortCircuit(Value, Received),
    /// After: keep the result.
    Keep(Received),
    /// After: replace the result with this value.
    Replace(Value, Received),
    /// A service method's return value and what it set on the HTTP reply.
    Service(Value, crate::service::ServiceResponse),
}

/// The wire arguments and result a handler was called with, handed back
/// for a reply that repeats them (so they are never copied).
#[derive(Debug)]
pub(crate) struct Received {
    /// The arguments after the context (the result excluded).
    pub args: Vec<Value>,
    /// The after-event's result as received.
    pub result: Option<ExecutionResult>,
}

/// Inputs of a type-erased call.
pub(crate) struct Call {
    pub ctx: Context,
    /// The wire arguments after the context (the result excluded).
    pub args: Vec<Value>,
    /// The after-event's result, if the event has one.
    pub result: Option<ExecutionResult>,
}

/// A handler's run, ready to be awaited: its arguments are already decoded.
pub(crate) type Prepared = BoxFuture<Result<Decision, HandlerError>>;

/// Decodes the typed arguments (synchronously, so that a mistyped argument
/// is refused before the task is acknowledged) and returns the run.
type Erased = dyn Fn(Call) -> Result<Prepared, ArgumentError> + Send + Sync;

/// The wire arguments do not fit the handler's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid task field `{field}`: {message}")]
pub struct ArgumentError {
    /// The offending argument, e.g. `arguments[1].title`.
    pub field: String,
    /// What does not fit, naming the event.
    pub message: String,
}

/// One registered handler.
#[derive(Clone)]
pub struct Registered {
    /// The event handled.
    pub event: &'static EventDef,
    /// The exact target (`*` for a generic handler).
    pub target: String,
    /// Whether the backend should not wait for this handler.
    pub is_async: bool,
    /// The handler function's path, for messages.
    pub handler_name: &'static str,
    pub(crate) call: Arc<Erased>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("event", &self.event.name)
            .field("target", &self.target)
            .field("is_async", &self.is_async)
            .field("handler", &self.handler_name)
            .finish()
    }
}

/// A registered handler as `GET /handlers` and `coderunner handlers` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandlerInfo {
    /// `persistence`, `user`, ...
    pub provider: String,
    /// `beforeCreate`, `afterLogin`, ...
    pub event: String,
    /// The catalog id.
    pub event_id: EventId,
    /// The exact target.
    pub target: String,
    /// Whether the handler runs asynchronously.
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// Why a registration was refused at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The event id is not in the catalog.
    #[error("event id {0} is not in the Backendless catalog")]
    UnknownEvent(u32),
    /// A before-registration for an after-event, or the reverse.
    #[error("{event} is an {actual:?} event; register it with `{expected}` (handler {handler})")]
    WrongPhase {
        /// The event.
        event: String,
        /// Its phase.
        actual: Phase,
        /// The registration method to use.
        expected: &'static str,
        /// The handler given.
        handler: &'static str,
    },
    /// The same event and target registered twice.
    #[error("{event} on target `{target}` is registered twice: by {first} and by {second}")]
    Duplicate {
        /// The event.
        event: String,
        /// The target.
        target: String,
        /// The handler registered first.
        first: &'static str,
        /// The handler registered second.
        second: &'static str,
    },
    /// A timer's schedule is not valid.
    #[error("timer `{name}`: {error}")]
    Schedule {
        /// The timer.
        name: String,
        /// What is wrong.
        error: ScheduleError,
    },
    /// A service declaration is not valid, or the name is taken.
    #[error("service `{service}`: {message}")]
    Service {
        /// The service.
        service: String,
        /// What is wrong.
        message: String,
    },
    /// An empty target.
    #[error("{event}: the target must not be empty (use `*` for a generic handler)")]
    EmptyTarget {
        /// The event.
        event: String,
    },
}

/// The handlers of an application, keyed by (event id, exact target).
#[derive(Default, Clone)]
pub struct Registry {
    by_event: HashMap<EventId, HashMap<String, Registered>>,
    /// Timer schedules by timer name (their handlers are event 800's).
    timers: std::collections::BTreeMap<String, Schedule>,
    /// API services by name.
    services: std::collections::BTreeMap<String, RegisteredService>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers()).finish()
    }
}

/// Decodes `T` from the deserializer `make` returns. Tracking the path of a
/// failure allocates for every key, so a value that decodes goes without it
/// and only one that fails is decoded again with it, for the message.
fn tracked<'de, T, D>(make: impl Fn() -> D) -> Result<T, serde_path_to_error::Error<D::Error>>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(make()).or_else(|_| serde_path_to_error::deserialize(make()))
}

/// Decodes the handler's typed arguments from the wire values.
fn decode_args<A: DeserializeOwned>(event: &EventDef, args: &[Value]) -> Result<A, ArgumentError> {
    let (decoded, first_index) = match event.args.len() {
        0 => (
            tracked(|| Value::Null).or_else(|_| tracked(|| Value::Array(Vec::new()))),
            None,
        ),
        1 => (tracked(|| args.first().unwrap_or(&Value::Null)), Some(1)),
        n => (
            tracked(|| Value::Array(args.iter().take(n).cloned().collect())),
            None,
        ),
    };
    decoded.map_err(|e| {
        let field = argument_field(e.path(), first_index);
        ArgumentError {
            field,
            message: format!(
                "{} (the arguments of {event} do not match the handler's types)",
                e.inner()
            ),
        }
    })
}

/// A path inside a value, as `.key[0]...` (empty for the value itself).
fn dotted(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        String::new()
    } else if text.starts_with('[') {
        text
    } else {
        format!(".{text}")
    }
}

/// `arguments[i]...` for a path inside one argument (`first_index`) or
/// inside the array of arguments (whose index 0 is argument 1 on the wire).
fn argument_field(path: &serde_path_to_error::Path, first_index: Option<usize>) -> String {
    use serde_path_to_error::Segment;
    let mut field = String::from("arguments");
    let mut segments = path.iter().peekable();
    match first_index {
        Some(i) => field.push_str(&format!("[{i}]")),
        None => {
            if let Some(Segment::Seq { index }) = segments.peek() {
                field.push_str(&format!("[{}]", index + 1));
                segments.next();
            }
        }
    }
    for segment in segments {
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                field.push('.');
                field.push_str(key);
            }
            Segment::Enum { variant } => {
                field.push('.');
                field.push_str(variant);
            }
            Segment::Unknown => field.push_str(".?"),
        }
    }
    field
}

/// Writes the handler's (possibly changed) arguments back into wire values.
fn encode_args<A: Serialize>(
    event: &EventDef,
    args: A,
    mut wire: Vec<Value>,
) -> Result<Vec<Value>, HandlerError> {
    let value = serde_json::to_value(args)
        .map_err(|e| HandlerError::msg(format!("cannot encode the arguments of {event}: {e}")))?;
    match event.args.len() {
        0 => {}
        1 => match wire.first_mut() {
            Some(slot) => *slot = value,
            None => wire.push(value),
        },
        _ => match value {
            Value::Array(values) => {
                let tail = wire.len().saturating_sub(values.len());
                let rest: Vec<Value> = wire.drain(..).skip(values.len()).take(tail).collect();
                wire = values;
                wire.extend(rest);
            }
            other => {
                return Err(HandlerError::msg(format!(
                    "the arguments of {event} must encode to an array, got {other}"
                )));
            }
        },
    }
    Ok(wire)
}

/// Writes the registration methods of one phase from one list of its
/// handler bounds: the public ones, which differ only in whether the
/// backend waits for the handler (`before`, `before_async`), and the
/// private one they forward to (`add_before`), whose body type-erases the
/// handler.
macro_rules! phase_registrations {
    (
        $generics:tt where $bounds:tt
        $(
            $(#[$doc:meta])*
            pub fn $name:ident = $is_async:literal;
        )+
        fn $add:ident(
            &mut $self:ident,
            $event:ident,
            $target:ident,
            $is_async_arg:ident,
            $handler:ident: $handler_type:ident
        ) $body:block
    ) => {
        $(
            phase_registrations! {
                @fn $generics $bounds $(#[$doc])* pub $name(
                    &mut self,
                    event: EventId,
                    target: &str,
                    handler: $handler_type,
                ) {
                    self.$add(event, target, $is_async, handler)
                }
            }
        )+
        phase_registrations! {
            @fn $generics $bounds $add(
                &mut $self,
                $event: EventId,
                $target: &str,
                $is_async_arg: bool,
                $handler: $handler_type,
            ) $body
        }
    };
    (
        @fn [$($generic:ident),*] { $($bounds:tt)* }
        $(#[$doc:meta])* $vis:vis $name:ident($($params:tt)*) $body:block
    ) => {
        $(#[$doc])*
        $vis fn $name<$($generic),*>($($params)*) -> Result<&mut Self, RegistryError>
        where
            $($bounds)*
        $body
    };
}

/// The catalog entry of `event`, refused when the event is unknown or is
/// not of the registration's phase: one with a result (`after`) or without.
fn phase_checked(
    event: EventId,
    after: bool,
    handler: &'static str,
) -> Result<&'static EventDef, RegistryError> {
    let def = event.def().ok_or(RegistryError::UnknownEvent(event.0))?;
    if def.has_result() != after {
        return Err(RegistryError::WrongPhase {
            event: def.to_string(),
            actual: def.phase,
            expected: if def.has_result() { "after" } else { "before" },
            handler,
        });
    }
    Ok(def)
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a timer: `handler` runs on `schedule` (event 800, target
    /// `name`). An invalid schedule is refused here, at startup.
    ///
    /// ```
    /// use coderunner::timer::{Frequency, Schedule};
    /// use coderunner::{Context, HandlerError, Registry};
    ///
    /// async fn digest(_ctx: Context) -> Result<(), HandlerError> {
    ///     Ok(())
    /// }
    ///
    /// let mut registry = Registry::new();
    /// let hourly = Schedule::new(1_767_225_600_000, Frequency::Custom { every_secs: 3600 });
    /// registry.timer("digest", hourly, digest).unwrap();
    /// assert_eq!(registry.timers().count(), 1);
    /// ```
    pub fn timer<F, Fut>(
        &mut self,
        name: &str,
        schedule: Schedule,
        handler: F,
    ) -> Result<&mut Self, RegistryError>
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        schedule
            .validate()
            .map_err(|error| RegistryError::Schedule {
                name: name.to_owned(),
                error,
            })?;
        let handler_name = std::any::type_name::<F>();
        self.add_before(timer::EXECUTE, name, false, move |ctx: Context, (): ()| {
            let run = handler(ctx);
            async move { run.await.map(|()| Before::Continue(())) }
        })?;
        self.rename(timer::EXECUTE, name, handler_name);
        self.timers.insert(name.to_owned(), schedule);
        Ok(self)
    }

    /// Registers a custom event's handler (event 900, target `name`): it
    /// takes the event's arguments object and returns the event's result
    /// (an object as it is; any other value reaches the client as
    /// `{"result": value}`).
    pub fn custom_event<A, R, F, Fut>(
        &mut self,
        name: &str,
        handler: F,
    ) -> Result<&mut Self, RegistryError>
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    {
        let handler_name = std::any::type_name::<F>();
        self.add_after(
            custom::EXECUTE,
            name,
            false,
            move |ctx: Context, args: A, _: Outcome<Value>| {
                let run = handler(ctx, args);
                async move {
                    let value = serde_json::to_value(run.await?).map_err(|e| {
                        HandlerError::msg(format!(
                            "the custom event's result cannot be encoded: {e}"
                        ))
                    })?;
                    Ok(After::Replace(value))
                }
            },
        )?;
        self.rename(custom::EXECUTE, name, handler_name);
        Ok(self)
    }

    /// Registers an API service with its methods (see [`crate::service`]).
    /// An invalid declaration, or a second service of the same name, is
    /// refused here, at startup.
    pub fn service(&mut self, service: Service) -> Result<&mut Self, RegistryError> {
        let name = service.name().to_owned();
        let refuse = |message: String| RegistryError::Service {
            service: name.clone(),
            message,
        };
        service.check().map_err(refuse)?;
        if self.services.contains_key(&name) {
            return Err(refuse("is registered twice".to_owned()));
        }
        self.services.insert(name, service.into_registered());
        Ok(self)
    }

    /// The service named `name`.
    pub(crate) fn lookup_service(&self, name: &str) -> Option<&RegisteredService> {
        self.services.get(name)
    }

    /// Every service's name with its methods' declarations (services by
    /// name, methods in declaration order).
    pub fn services(&self) -> impl Iterator<Item = (&str, Vec<&crate::service::ServiceMethod>)> {
        self.services.values().map(|s| {
            (
                s.name(),
                s.methods.iter().map(|m| &m.decl).collect::<Vec<_>>(),
            )
        })
    }

    /// Every registered service, by name.
    pub(crate) fn registered_services(&self) -> impl Iterator<Item = &RegisteredService> {
        self.services.values()
    }

    fn rename(&mut self, event: EventId, target: &str, handler_name: &'static str) {
        if let Some(r) = self
            .by_event
            .get_mut(&event)
            .and_then(|t| t.get_mut(target))
        {
            r.handler_name = handler_name;
        }
    }

    /// Every timer with its schedule, by name.
    pub fn timers(&self) -> impl Iterator<Item = (&str, &Schedule)> {
        self.timers
            .iter()
            .map(|(name, schedule)| (name.as_str(), schedule))
    }

    phase_registrations! {
        [A, F, Fut] where {
            A: DeserializeOwned + Serialize + Send + 'static,
            F: Fn(Context, A) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<Before<A>, HandlerError>> + Send + 'static,
        }
        /// Registers a before-handler (also for standalone events without a
        /// result, such as timers).
        pub fn before = false;
        /// Registers a before-handler the backend does not wait for: it cannot
        /// change the call, only observe it.
        pub fn before_async = true;
        fn add_before(&mut self, event, target, is_async, handler: F)
        {
            let name = std::any::type_name::<F>();
            let def = phase_checked(event, false, name)?;
            let call: Arc<Erased> = Arc::new(move |call: Call| {
                let Call {
                    ctx, args: wire, ..
                } = call;
                let event = ctx.event();
                let args: A = decode_args(event, &wire)?;
                let run = handler(ctx, args);
                Ok(Box::pin(async move {
                    match run.await? {
                        Before::Continue(args) => {
                            Ok(Decision::Continue(encode_args(event, args, wire)?))
                        }
                        Before::ShortCircuit(value) => Ok(Decision::ShortCircuit(
                            value,
                            Received {
                                args: wire,
                                result: None,
                            },
                        )),
                    }
                }) as Prepared)
            });
            self.insert(def, target, is_async, name, call)
        }
    }

    phase_registrations! {
        [A, R, F, Fut] where {
            A: DeserializeOwned + Send + 'static,
            R: DeserializeOwned + Serialize + Send + 'static,
            F: Fn(Context, A, Outcome<R>) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<After<R>, HandlerError>> + Send + 'static,
        }
        /// Registers an after-handler (also for standalone events with a result,
        /// such as custom events).
        pub fn after = false;
        /// Registers an after-handler the backend does not wait for (its result
        /// is not sent back; the task is acknowledged with `202`).
        pub fn after_async = true;
        fn add_after(&mut self, event, target, is_async, handler: F)
        {
            let name = std::any::type_name::<F>();
            let def = phase_checked(event, true, name)?;
            let call: Arc<Erased> = Arc::new(move |call: Call| {
                let Call {
                    ctx,
                    args: wire,
                    result,
                } = call;
                let event = ctx.event();
                let args: A = decode_args(event, &wire)?;
                let outcome = match &result {
                    Some(ExecutionResult {
                        exception: Some(exception),
                        ..
                    }) => Outcome::Failed(BuiltInError::from_exception(exception)),
                    Some(ExecutionResult { result, .. }) if !result.is_null() => {
                        Outcome::Ok(Some(tracked(|| result).map_err(|e| ArgumentError {
                            field: format!(
                                "arguments[{}].result{}",
                                wire.len() + 1,
                                dotted(e.path())
                            ),
                            message: format!(
                                "{} (the result of {event} does not match the handler's type)",
                                e.inner()
                            ),
                        })?))
                    }
                    _ => Outcome::Ok(None),
                };
                let run = handler(ctx, args, outcome);
                Ok(Box::pin(async move {
                    let received = Received { args: wire, result };
                    match run.await? {
                        After::Keep => Ok(Decision::Keep(received)),
                        After::Replace(value) => serde_json::to_value(value)
                            .map(|value| Decision::Replace(value, received))
                            .map_err(|e| {
                                HandlerError::msg(format!(
                                    "cannot encode the result of {event}: {e}"
                                ))
                            }),
                    }
                }) as Prepared)
            });
            self.insert(def, target, is_async, name, call)
        }
    }

    fn insert(
        &mut self,
        event: &'static EventDef,
        target: &str,
        is_async: bool,
        handler_name: &'static str,
        call: Arc<Erased>,
    ) -> Result<&mut Self, RegistryError> {
        if target.is_empty() {
            return Err(RegistryError::EmptyTarget {
                event: event.to_string(),
            });
        }
        let slot = self.by_event.entry(event.id).or_default();
        if let Some(existing) = slot.get(target) {
            return Err(RegistryError::Duplicate {
                event: event.to_string(),
                target: target.to_owned(),
                first: existing.handler_name,
                second: handler_name,
            });
        }
        slot.insert(
            target.to_owned(),
            Registered {
                event,
                target: target.to_owned(),
                is_async,
                handler_name,
                call,
            },
        );
        Ok(self)
    }

    /// The handler for exactly this event id and target (no `*` fallback:
    /// the backend sends `*` to reach a generic handler).
    pub fn lookup(&self, event_id: EventId, target: &str) -> Option<&Registered> {
        self.by_event.get(&event_id)?.get(target)
    }

    /// Every registered handler, sorted by event id and target.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        let mut all: Vec<HandlerInfo> = self
            .by_event
            .values()
            .flat_map(|targets| targets.values())
            .map(|r| HandlerInfo {
                provider: r.event.provider.as_str().to_owned(),
                event: r.event.name.to_owned(),
                event_id: r.event.id,
                target: r.target.clone(),
                is_async: r.is_async,
            })
            .collect();
        all.sort_by(|a, b| (a.event_id, &a.target).cmp(&(b.event_id, &b.target)));
        all
    }

    /// Every registered handler with its function, sorted by event id and target.
    pub fn registered(&self) -> impl Iterator<Item = &Registered> {
        let mut all: Vec<&Registered> = self
            .by_event
            .values()
            .flat_map(|targets| targets.values())
            .collect();
        all.sort_by(|a, b| (a.event.id, &a.target).cmp(&(b.event.id, &b.target)));
        all.into_iter()
    }

    /// Whether no handler and no service is registered.
    pub fn is_empty(&self) -> bool {
        self.by_event.is_empty() && self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{persistence, user};

    async fn keep(_: Context, v: Value) -> Result<Before<Value>, HandlerError> {
        Ok(Before::Continue(v))
    }
    async fn keep_too(_: Context, v: Value) -> Result<Before<Value>, HandlerError> {
        Ok(Before::Continue(v))
    }

    #[test]
    fn duplicate_registration_names_both_handlers() {
        let mut r = Registry::new();
        r.before(persistence::BEFORE_CREATE, "Post", keep).unwrap();
        let err = r
            .before(persistence::BEFORE_CREATE, "Post", keep_too)
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("keep") && msg.contains("keep_too") && msg.contains("beforeCreate"),
            "{msg}"
        );
        r.before(persistence::BEFORE_CREATE, "*", keep_too).unwrap();
        assert_eq!(r.handlers().len(), 2);
    }

    #[test]
    fn phase_is_checked() {
        let mut r = Registry::new();
        let err = r
            .before(persistence::AFTER_CREATE, "Post", keep)
            .unwrap_err();
        assert!(matches!(err, RegistryError::WrongPhase { .. }), "{err}");
        assert_eq!(
            r.before(EventId(4242), "x", keep).unwrap_err(),
            RegistryError::UnknownEvent(4242)
        );
    }

    #[test]
    fn lookup_is_exact() {
        let mut r = Registry::new();
        r.before(user::BEFORE_LOGIN, "*", keep).unwrap();
        assert!(r.lookup(EventId(200), "*").is_some());
        assert!(r.lookup(EventId(200), "Users").is_none());
        assert!(r.lookup(EventId(201), "*").is_none());
    }

    #[test]
    fn arguments_follow_the_catalog_arity() {
        let create = persistence::BEFORE_CREATE.def().unwrap();
        let post: Value = decode_args(create, &[serde_json::json!({"t": 1})]).unwrap();
        assert_eq!(post, serde_json::json!({"t": 1}));
        let login = user::BEFORE_LOGIN.def().unwrap();
        let (l, p): (String, crate::Password) =
            decode_args(login, &[Value::from("a"), Value::from("b")]).unwrap();
        assert_eq!((l.as_str(), p.expose()), ("a", "b"));
        assert!(!format!("{p:?}").contains('b'), "{p:?}");
        let wire = encode_args(
            login,
            ("x", crate::Password::from("y".to_owned())),
            vec![Value::from("a"), Value::from("b"), Value::from(9)],
        )
        .unwrap();
        assert_eq!(
            wire,
            vec![Value::from("x"), Value::from("y"), Value::from(9)]
        );
        let err = decode_args::<(String, String)>(login, &[Value::from(1)]).unwrap_err();
        assert!(err.message.contains("beforeLogin"), "{}", err.message);
        assert_eq!(err.field, "arguments[1]");
    }
}
