//! Runs one task: registry lookup, typed decode, deadline, panic
//! containment, and the reply in the encoding the task used.
//!
//! Handlers are placed by a [`HandlerRuntime`] when one is set (on the
//! server's threads while one of them stays free, else on a runtime of their
//! own), and their deadline is kept by a timer of the caller's runtime: a
//! handler that blocks its thread can neither stall the server nor delay the
//! timeout reply. Its thread stays blocked (a thread cannot be stopped), and
//! the slot it was given is held until it returns.
//!
//! Knows nothing of HTTP: the server hands it a decoded [`Task`] and sends
//! back the [`InvocationResult`] it returns.

use crate::event::EventId;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::Deserialize;
use serde_json::Value;
use tracing::{Instrument, field};

use crate::app_log::{AppLogLine, AppLogTarget, TaskLog};
use crate::event::wire::{
    AnyTask, Arguments, Encoding, ExceptionWrapper, ExecutionResult, InvocationResult, ServiceTask,
    TIMEOUT_MESSAGE, Task,
};
use crate::event::{EventDef, Provider, RunnerContext, SERVICE_INVOCATION};
use crate::handler::Context;
use crate::invocation_log::{CallLog, InvocationLog, InvocationRecord, RecordedError, bounded};
use crate::registry::{ArgumentError, Call, Decision, Prepared, Received, Registered, Registry};
use crate::telemetry::InvocationMetrics;

/// A task's execution ([`Dispatcher::execute`]): resolves to its reply.
pub(crate) type Execution = futures::future::BoxFuture<'static, InvocationResult>;

pub(crate) use crate::handler_runtime::HandlerRuntime;

/// How long tasks may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskLimits {
    /// Applied when a task has no `timeout` (or `0`).
    pub default_timeout: Duration,
    /// The most any task gets, also one with a negative ("none") or larger timeout.
    pub max_timeout: Duration,
}

impl Default for TaskLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(20),
        }
    }
}

impl TaskLimits {
    /// The time a task gets, from its `timeout` field (ms).
    pub(crate) fn timeout_for(&self, timeout_ms: Option<i64>) -> Duration {
        match timeout_ms {
            None | Some(0) => self.default_timeout.min(self.max_timeout),
            Some(ms) if ms < 0 => self.max_timeout,
            Some(ms) => Duration::from_millis(ms as u64).min(self.max_timeout),
        }
    }
}

/// How an invocation ended, for logs and metrics (a bounded label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvocationOutcome {
    /// The handler returned normally.
    Ok,
    /// The handler returned an error.
    Error,
    /// The handler ran out of time.
    Timeout,
    /// The handler panicked.
    Panic,
    /// No handler for the event and target.
    NoHandler,
    /// The event id is not in the catalog.
    UnknownEvent,
}

impl InvocationOutcome {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvocationOutcome::Ok => "ok",
            InvocationOutcome::Error => "error",
            InvocationOutcome::Timeout => "timeout",
            InvocationOutcome::Panic => "panic",
            InvocationOutcome::NoHandler => "no_handler",
            InvocationOutcome::UnknownEvent => "unknown_event",
        }
    }
}

/// Why a task cannot be routed to a handler.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RouteError {
    /// The event id is not in the catalog.
    #[error("Integrity violation. Unknown event id: [{event_id}]")]
    UnknownEvent {
        /// The id sent.
        event_id: EventId,
        /// The target sent.
        target: String,
    },
    /// No handler is registered for the event and target.
    #[error("{}({target}) event handler does not exist", event.name)]
    NoHandler {
        /// The event.
        event: &'static EventDef,
        /// The target sent.
        target: String,
    },
    /// Argument 0 is not a RunnerContext.
    #[error("invalid task field `arguments[0]`: {0}")]
    BadContext(String),
    /// The other arguments do not fit the handler's types.
    #[error(transparent)]
    BadArguments(#[from] ArgumentError),
    /// No API service of this name is registered (the official runner's message).
    #[error("[{service}] service does not exist")]
    NoService {
        /// The service's name sent.
        service: String,
    },
    /// The service has no such method (the official runner's message).
    #[error("[{method}] method does not exist in [{service}] service or is not a function")]
    NoMethod {
        /// The service.
        service: String,
        /// The method's name sent.
        method: String,
    },
    /// A service method's parameters do not fit its declaration: the
    /// client's mistake, answered as a reply with HTTP status 400.
    #[error("{service}.{method}: {error}", error = .error.message)]
    BadParameters {
        /// The service.
        service: String,
        /// The method.
        method: String,
        /// Which parameter, and why.
        error: ArgumentError,
    },
}

/// Code of the reply to a service that does not exist (Backendless 14001).
pub(crate) const SERVICE_NOT_FOUND: i64 = 14001;
/// Code of the reply to a service method that does not exist (14002).
pub(crate) const METHOD_NOT_FOUND: i64 = 14002;
/// Code of the reply to a service method that ran out of time (14005).
pub(crate) const SERVICE_TIMED_OUT: i64 = 14005;

impl RouteError {
    /// The outcome label of this failure.
    pub(crate) fn outcome(&self) -> InvocationOutcome {
        match self {
            RouteError::UnknownEvent { .. } => InvocationOutcome::UnknownEvent,
            RouteError::NoHandler { .. }
            | RouteError::NoService { .. }
            | RouteError::NoMethod { .. } => InvocationOutcome::NoHandler,
            RouteError::BadContext(_)
            | RouteError::BadArguments(_)
            | RouteError::BadParameters { .. } => InvocationOutcome::Error,
        }
    }

    /// The reply every transport sends for this refusal, when it is one
    /// (unknown event, handler, service or method; a service's parameters);
    /// `None` for a task the sender built wrong (context, arguments).
    pub(crate) fn exception(&self) -> Option<ExceptionWrapper> {
        let (code, status) = match self {
            RouteError::UnknownEvent { .. } | RouteError::NoHandler { .. } => (0, None),
            RouteError::NoService { .. } => (SERVICE_NOT_FOUND, Some(404)),
            RouteError::NoMethod { .. } => (METHOD_NOT_FOUND, Some(404)),
            RouteError::BadParameters { .. } => (0, Some(400)),
            RouteError::BadContext(_) | RouteError::BadArguments(_) => return None,
        };
        Some(ExceptionWrapper::new(code, self.to_string(), status))
    }
}

/// A task matched to its handler, its arguments decoded, ready to run.
pub(crate) struct Routed {
    request_id: String,
    handler: Registered,
    encoding: Encoding,
    /// Argument 0 as received, sent back (with `prematureResult` when set).
    context: Value,
    deadline: tokio::time::Instant,
    run: Prepared,
    /// Where the handler's lines go, when the app's log is on and the task names one.
    app_log: Option<AppLogTarget>,
    /// Held until the handler returns, also past its deadline: what a
    /// transport counts its tasks in flight with.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The backend calls the handler makes, when the console records them.
    calls: Option<CallLog>,
}

impl Routed {
    /// Holds `slot` until the handler returns (past the timeout reply if it
    /// blocks), so that a handler still running counts as in flight.
    pub(crate) fn hold(mut self, slot: tokio::sync::OwnedSemaphorePermit) -> Self {
        self.slot = Some(slot);
        self
    }

    /// The handler that will run.
    pub(crate) fn handler(&self) -> &Registered {
        &self.handler
    }

    /// The task id.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// Calls `make` (a handler building its run, which decodes its arguments)
/// with a panic there contained: it then panics when run, where panics are
/// contained.
fn prepare(make: impl FnOnce() -> Result<Prepared, ArgumentError>) -> Result<Prepared, RouteError> {
    match std::panic::catch_unwind(AssertUnwindSafe(make)) {
        Ok(prepared) => Ok(prepared?),
        Err(panic) => Ok(Box::pin(futures::future::lazy(
            move |_| -> Result<Decision, crate::handler::HandlerError> {
                std::panic::resume_unwind(panic)
            },
        )) as Prepared),
    }
}

/// Sends a task's handler lines to the app's log; the dispatcher knows
/// nothing of how (see `app_log.rs`).
pub(crate) type AppLogHook = Arc<dyn Fn(AppLogTarget, &str, Vec<AppLogLine>) + Send + Sync>;

/// Builds the extra parts of a handler's [`Context`] (such as SDK clients)
/// from the RunnerContext; the dispatcher knows nothing of them.
pub(crate) type ContextHook = Arc<dyn Fn(Context) -> Context + Send + Sync>;

/// Runs tasks against a registry.
///
/// One `Arc` inside: every task's execution holds a clone, and a clone that
/// is one reference count (not one per shared part) keeps the cache lines the
/// server's threads write for each task to one.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    parts: Arc<Parts>,
}

/// What a [`Dispatcher`] is made of, shared by its clones.
#[derive(Clone)]
struct Parts {
    registry: Arc<Registry>,
    limits: TaskLimits,
    hook: Option<ContextHook>,
    app_log: Option<AppLogHook>,
    /// Made once from the registry, so that recording allocates nothing.
    metrics: Arc<InvocationMetrics>,
    /// Where handlers run; `None`: on the caller's runtime.
    handlers: Option<HandlerRuntime>,
    /// The recent invocations the console shows; `None` when it is off
    /// (then recording costs nothing).
    invocations: Option<Arc<InvocationLog>>,
}

impl Dispatcher {
    /// A dispatcher over `registry`.
    pub(crate) fn new(registry: Arc<Registry>, limits: TaskLimits) -> Self {
        let metrics = Arc::new(InvocationMetrics::new(&registry));
        Self {
            parts: Arc::new(Parts {
                registry,
                limits,
                hook: None,
                app_log: None,
                metrics,
                handlers: None,
                invocations: None,
            }),
        }
    }

    /// Records every task's invocation (and its handler's backend calls)
    /// in `log`, which the console reads.
    pub(crate) fn with_invocation_log(mut self, log: Arc<InvocationLog>) -> Self {
        Arc::make_mut(&mut self.parts).invocations = Some(log);
        self
    }

    /// Runs handlers on `runtime` rather than on the caller's.
    pub(crate) fn with_handler_runtime(mut self, runtime: HandlerRuntime) -> Self {
        Arc::make_mut(&mut self.parts).handlers = Some(runtime);
        self
    }

    /// Logs and counts a task that could not be routed; every transport
    /// calls this for the tasks it answers with a routing error.
    pub(crate) fn refused(&self, task_id: &str, error: &RouteError, started: std::time::Instant) {
        let event = match error {
            RouteError::NoHandler { event, .. } => Some(*event),
            _ => None,
        };
        tracing::warn!(task.id = %task_id, error = %error, "task not routed");
        let elapsed = started.elapsed();
        self.parts
            .metrics
            .record_unroutable(event, error.outcome(), elapsed);
        if let Some(log) = &self.parts.invocations {
            let target = match error {
                RouteError::UnknownEvent { target, .. } | RouteError::NoHandler { target, .. } => {
                    target.as_str()
                }
                _ => "",
            };
            log.push(InvocationRecord {
                seq: 0,
                at_ms: arrived_ms(elapsed),
                task_id: bounded(task_id),
                event: event.map_or("unknown", |e| e.name),
                provider: event.map_or("unknown", |e| e.provider.as_str()),
                target: bounded(target),
                is_async: false,
                outcome: error.outcome().as_str(),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                error: Some(RecordedError {
                    code: 0,
                    message: bounded(&error.to_string()),
                }),
                calls: Vec::new(),
                calls_dropped: 0,
            });
        }
    }

    /// Runs a routed task as every transport does: in a span carrying the
    /// task id, event, target and outcome, with the invocation's log line
    /// and metrics; resolves to the reply.
    ///
    /// Boxed where it is made: the future is over a kilobyte and a
    /// transport moves it a few times (into its own future, then into a
    /// task), each move a copy of all of it (a profile under load had these
    /// copies at about 3 % of the server's CPU).
    pub(crate) fn execute(
        &self,
        routed: Routed,
        started: std::time::Instant,
        is_async: bool,
    ) -> Execution {
        let handler = routed.handler();
        let event = handler.event;
        let target = handler.target.clone();
        // At `debug`: formatting a span's fields costs every task about as
        // much as the rest of the dispatch (docs/benchmarks.md). At the
        // default `info`, a task that succeeds logs nothing (the metrics
        // count it) and one that fails logs one line with its own fields.
        let span = tracing::debug_span!(
            "invocation",
            task.id = %routed.request_id(),
            event = event.name,
            event_id = event.id.0,
            target = %target,
            is_async,
            outcome = field::Empty,
            duration_ms = field::Empty,
        );
        let dispatcher = self.clone();
        let calls = routed.calls.clone();
        async move {
            let (reply, outcome) = dispatcher.run(routed).await;
            let elapsed = started.elapsed();
            let duration_ms = elapsed.as_secs_f64() * 1000.0;
            let span = tracing::Span::current();
            span.record("outcome", outcome.as_str());
            span.record("duration_ms", duration_ms);
            match outcome {
                InvocationOutcome::Ok => tracing::debug!("invocation finished"),
                _ => tracing::warn!(
                    task.id = %reply.request_id,
                    event = event.name,
                    target = %target,
                    outcome = outcome.as_str(),
                    duration_ms,
                    error = reply
                        .exception
                        .as_ref()
                        .map(|e| e.exception_message.as_str())
                        .unwrap_or_default(),
                    "invocation failed"
                ),
            }
            dispatcher
                .parts
                .metrics
                .record(event, &target, outcome, elapsed);
            if let (Some(log), Some(calls)) = (&dispatcher.parts.invocations, &calls) {
                let record = InvocationRecord {
                    seq: 0,
                    at_ms: arrived_ms(elapsed),
                    task_id: bounded(&reply.request_id),
                    event: event.name,
                    provider: event.provider.as_str(),
                    target: bounded(&target),
                    is_async,
                    outcome: outcome.as_str(),
                    duration_ms,
                    error: reply.exception.as_ref().map(|e| RecordedError {
                        code: e.code,
                        message: bounded(&e.exception_message),
                    }),
                    calls: Vec::new(),
                    calls_dropped: 0,
                };
                log.push(record.with_calls(calls));
            }
            reply
        }
        .instrument(span)
        .boxed()
    }

    /// Sends what each handler logs to the app's log with `hook`.
    pub(crate) fn with_app_log(mut self, hook: AppLogHook) -> Self {
        Arc::make_mut(&mut self.parts).app_log = Some(hook);
        self
    }

    /// Sets a hook that completes every handler context (e.g. with SDK clients).
    pub(crate) fn with_context_hook(mut self, hook: ContextHook) -> Self {
        Arc::make_mut(&mut self.parts).hook = Some(hook);
        self
    }

    /// The registry.
    pub(crate) fn registry(&self) -> &Registry {
        &self.parts.registry
    }

    /// Finds the handler of a task, decodes its context and typed
    /// arguments, and starts its deadline.
    pub(crate) fn route(&self, task: Task) -> Result<Routed, RouteError> {
        let Some(event) = EventDef::by_id(task.event_id) else {
            return Err(RouteError::UnknownEvent {
                event_id: task.event_id,
                target: task.target,
            });
        };
        let Some(handler) = self.parts.registry.lookup(task.event_id, &task.target) else {
            return Err(RouteError::NoHandler {
                event,
                target: task.target,
            });
        };
        let handler = handler.clone();
        let Arguments {
            encoding,
            mut values,
        } = task.arguments;
        if values.is_empty() {
            return Err(RouteError::BadContext(
                "the RunnerContext is missing".to_owned(),
            ));
        }
        let context = values.remove(0);
        let runner = RunnerContext::deserialize(&context)
            .map_err(|e| RouteError::BadContext(e.to_string()))?;
        let n_args = event.args.iter().filter(|a| **a != "result").count();
        let result = if event.has_result() && values.len() > n_args {
            let raw = values.remove(n_args);
            Some(ExecutionResult::deserialize(&raw).unwrap_or_else(|_| ExecutionResult::ok(raw)))
        } else {
            None
        };

        let deadline = tokio::time::Instant::now() + self.parts.limits.timeout_for(task.timeout);
        let app_log = self.app_log_target(
            task.init_app_data.as_ref(),
            task.application_id.as_deref(),
            &runner,
        );
        let mut ctx = Context::new(runner, task.id.clone(), event, task.target, Some(deadline));
        if let Some(hook) = &self.parts.hook {
            ctx = hook(ctx);
        }
        let call = Call {
            ctx,
            args: values,
            result,
        };
        let run = prepare(|| (handler.call)(call))?;
        Ok(Routed {
            request_id: task.id,
            handler,
            encoding,
            context,
            deadline,
            run,
            app_log,
            slot: None,
            calls: self.parts.invocations.as_ref().map(|_| CallLog::default()),
        })
    }

    fn app_log_target(
        &self,
        init_app_data: Option<&Value>,
        application_id: Option<&str>,
        runner: &RunnerContext,
    ) -> Option<AppLogTarget> {
        self.parts.app_log.as_ref().and_then(|_| {
            AppLogTarget::of(
                init_app_data,
                application_id.or(Some(runner.app_id.as_str())),
                runner.user_token.as_ref().map(|t| t.expose()),
            )
        })
    }

    /// Finds the method of a service task, decodes its caller and typed
    /// parameters, and starts its deadline.
    pub(crate) fn route_service(&self, task: ServiceTask) -> Result<Routed, RouteError> {
        let name = task.service_name().to_owned();
        let Some(service) = self.parts.registry.lookup_service(&name) else {
            return Err(RouteError::NoService { service: name });
        };
        let Some(method) = service.method(&task.method) else {
            return Err(RouteError::NoMethod {
                service: name,
                method: task.method,
            });
        };
        // The caller and the HTTP request are in `invocationContextDto`; a
        // null the server sends for an absent value counts as absent.
        let mut dto = task.invocation_context_dto;
        dto.retain(|_, v| !v.is_null());
        // Configuration values may be secrets (an API key of another
        // service): they go to the method's configuration only, not into
        // the RunnerContext that `Debug` shows.
        let configuration_items = dto.remove("configurationItems");
        let mut runner = RunnerContext::deserialize(Value::Object(dto))
            .map_err(|e| RouteError::BadContext(format!("invalid `invocationContextDto`: {e}")))?;
        if runner.app_id.is_empty() {
            runner.app_id = task.application_id.clone().unwrap_or_default();
        }
        let args = match task.arguments.into_value() {
            Value::Array(values) => values,
            Value::Null => Vec::new(),
            _ => {
                return Err(RouteError::BadParameters {
                    service: name,
                    method: task.method,
                    error: ArgumentError {
                        field: "arguments".to_owned(),
                        message: "the parameters must be an array".to_owned(),
                    },
                });
            }
        };
        // The task's time, no more than the method's own limit.
        let allowed = self.parts.limits.timeout_for(task.timeout);
        let allowed = method
            .decl
            .execution_timeout()
            .map_or(allowed, |own| own.min(allowed));
        let deadline = tokio::time::Instant::now() + allowed;
        let app_log = self.app_log_target(
            task.init_app_data.as_ref(),
            task.application_id.as_deref(),
            &runner,
        );
        let mut ctx = Context::new(
            runner,
            task.id.clone(),
            &SERVICE_INVOCATION,
            method.label.target.clone(),
            Some(deadline),
        );
        if let Some(hook) = &self.parts.hook {
            ctx = hook(ctx);
        }
        let call = Call {
            ctx,
            args,
            result: None,
        };
        let run =
            prepare(|| service.prepare(method, call, configuration_items)).map_err(
                |e| match e {
                    RouteError::BadArguments(error) => RouteError::BadParameters {
                        service: name.clone(),
                        method: task.method.clone(),
                        error,
                    },
                    other => other,
                },
            )?;
        let handler = method.label.clone();
        Ok(Routed {
            request_id: task.id,
            handler,
            encoding: Encoding::Value,
            context: Value::Null,
            deadline,
            run,
            app_log,
            slot: None,
            calls: self.parts.invocations.as_ref().map(|_| CallLog::default()),
        })
    }

    /// Routes a task of either class.
    pub(crate) fn route_any(&self, task: AnyTask) -> Result<Routed, RouteError> {
        match task {
            AnyTask::Method(task) => self.route(task),
            AnyTask::Service(task) => self.route_service(task),
        }
    }

    /// Runs a routed task to completion (or to its deadline) and builds the reply.
    pub(crate) async fn run(&self, routed: Routed) -> (InvocationResult, InvocationOutcome) {
        let Routed {
            request_id,
            handler,
            encoding,
            context,
            deadline,
            run,
            app_log,
            slot,
            calls,
        } = routed;
        let event = handler.event;
        // Lines the handler logs are collected inside its own task.
        let lines = app_log.as_ref().map(|_| TaskLog::default());
        let body = AssertUnwindSafe(run).catch_unwind();
        let task = {
            let lines = lines.clone();
            async move {
                let body = async move {
                    match calls {
                        Some(calls) => calls.scope(body).await,
                        None => body.await,
                    }
                };
                let ran = match lines {
                    Some(lines) => lines.scope(body).await,
                    None => body.await,
                };
                drop(slot);
                ran
            }
        }
        .in_current_span();
        let running = match &self.parts.handlers {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        };
        let abort = running.abort_handle();
        // This timer runs on the caller's runtime: it fires even while the
        // handler blocks every thread of its own.
        let ran = match tokio::time::timeout_at(deadline, running).await {
            Err(elapsed) => {
                // A handler awaiting something is stopped; a blocked one
                // keeps its thread (and its slot) until it returns.
                abort.abort();
                Err(elapsed)
            }
            Ok(Ok(ran)) => Ok(ran),
            Ok(Err(join)) if join.is_panic() => Ok(Err(join.into_panic())),
            Ok(Err(_cancelled)) => Ok(Err(
                Box::new("the runner is stopping") as Box<dyn std::any::Any + Send>
            )),
        };
        if let (Some(target), Some(lines), Some(send)) = (app_log, lines, &self.parts.app_log) {
            send(target, &request_id, lines.take());
        }

        let fail = |exception: ExceptionWrapper, outcome| {
            (
                InvocationResult::with_exception(request_id.clone(), exception),
                outcome,
            )
        };
        let decision = match ran {
            Err(_) => {
                // A service's timeout carries Backendless's code for it.
                let code = if event.provider == Provider::Service {
                    SERVICE_TIMED_OUT
                } else {
                    0
                };
                return fail(
                    ExceptionWrapper::new(code, TIMEOUT_MESSAGE, None),
                    InvocationOutcome::Timeout,
                );
            }
            Ok(Err(panic)) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic payload".to_owned());
                tracing::error!(handler = handler.handler_name, panic = %detail, "handler panicked");
                let message = format!("handler {} for {event} panicked", handler.handler_name);
                return fail(
                    ExceptionWrapper::new(0, message, None),
                    InvocationOutcome::Panic,
                );
            }
            Ok(Ok(Err(error))) => return fail(error.to_exception(), InvocationOutcome::Error),
            Ok(Ok(Ok(Decision::Service(value, response)))) => {
                // The bare return value (spec §2.5), and what the method set
                // on the client's HTTP reply.
                let mut reply =
                    InvocationResult::with_arguments(request_id, Arguments::bare(value));
                reply.http_response_status_code = response.status;
                reply.http_response_headers = response.headers;
                reply.http_response_cookies = response.cookies;
                return (reply, InvocationOutcome::Ok);
            }
            Ok(Ok(Ok(decision))) => decision,
        };

        // As the official runner does, the context comes back with the
        // response headers and cookies, and with `prematureResult` whenever
        // the handler returned a value (spec §2.2).
        let mut context_value = context;
        if let Value::Object(map) = &mut context_value {
            map.entry("httpResponseHeaders")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            map.entry("httpResponseCookies")
                .or_insert_with(|| Value::Array(Vec::new()));
        }
        let set_premature = |context: &mut Value, value: &Value| {
            if let Value::Object(map) = context {
                map.insert("prematureResult".to_owned(), value.clone());
            }
        };
        let reply_values: Vec<Value> = match decision {
            Decision::Continue(args) => std::iter::once(context_value).chain(args).collect(),
            Decision::ShortCircuit(value, received) => {
                set_premature(&mut context_value, &value);
                std::iter::once(context_value)
                    .chain(received.args)
                    .collect()
            }
            // A custom event's result is the handler's value itself: an
            // object as it is, anything else as `{"result": value}` (the
            // official runner's `events.js` wrapper).
            Decision::Replace(value, received)
                if event.provider == crate::event::Provider::Custom =>
            {
                set_premature(&mut context_value, &value);
                let result = match value {
                    Value::Object(_) => value,
                    other => serde_json::json!({ "result": other }),
                };
                std::iter::once(context_value)
                    .chain(received.args)
                    .chain(std::iter::once(result))
                    .collect()
            }
            Decision::Keep(received) if event.provider == crate::event::Provider::Custom => {
                std::iter::once(context_value)
                    .chain(received.args)
                    .collect()
            }
            Decision::Keep(received) => with_result(context_value, received, None),
            Decision::Replace(value, received) => {
                set_premature(&mut context_value, &value);
                with_result(context_value, received, Some(value))
            }
            Decision::Service(value, _) => vec![value],
        };
        (
            InvocationResult::with_arguments(request_id, Arguments::new(encoding, reply_values)),
            InvocationOutcome::Ok,
        )
    }
}

/// When a task that took `elapsed` so far arrived, in ms since the Unix epoch.
fn arrived_ms(elapsed: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.saturating_sub(elapsed).as_millis()).unwrap_or(u64::MAX)
}

/// The reply arguments of an after-event: the context, then the arguments
/// and the result as received, the result replaced by `replacement` if any.
fn with_result(context: Value, received: Received, replacement: Option<Value>) -> Vec<Value> {
    let mut result = received
        .result
        .unwrap_or_else(|| ExecutionResult::ok(Value::Null));
    if let Some(value) = replacement {
        result.result = value;
        result.exception = None;
    }
    let mut values = Vec::with_capacity(received.args.len() + 2);
    values.push(context);
    values.extend(received.args);
    values.push(serde_json::to_value(result).unwrap_or(Value::Null));
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::persistence;
    use crate::handler::Before;

    fn slow_registry() -> Registry {
        let mut r = Registry::new();
        r.before(
            persistence::BEFORE_REMOVE,
            "T",
            |_ctx: Context, id: String| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(Before::Continue(id))
            },
        )
        .unwrap();
        r
    }

    fn task(timeout: Option<i64>) -> Task {
        let body = serde_json::json!({"id": "t", "eventId": 106, "target": "T", "timeout": timeout,
                                      "arguments": [{"appId": "A"}, "X"]});
        Task::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn task_timeout_is_enforced_with_its_exact_message() {
        let limits = TaskLimits {
            default_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(20),
        };
        let dispatcher = Dispatcher::new(Arc::new(slow_registry()), limits);
        for (timeout, expected) in [
            (Some(1500), 1500),
            (None, 5000),
            (Some(-1), 20_000),
            (Some(60_000), 20_000),
        ] {
            let started = tokio::time::Instant::now();
            let (reply, outcome) = dispatcher
                .run(dispatcher.route(task(timeout)).unwrap())
                .await;
            assert_eq!(outcome, InvocationOutcome::Timeout);
            assert_eq!(reply.exception.unwrap().exception_message, TIMEOUT_MESSAGE);
            assert_eq!(
                started.elapsed(),
                Duration::from_millis(expected),
                "timeout {timeout:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_method_past_its_timeout_gets_code_14005() {
        use crate::service::{Service, ServiceContext, ServiceMethod};
        let mut r = Registry::new();
        async fn wait(_ctx: ServiceContext, (): ()) -> Result<(), crate::HandlerError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        r.service(
            Service::new("Slow")
                .method(ServiceMethod::new("wait"), wait)
                .method(ServiceMethod::new("waitBriefly").timeout_secs(1), wait),
        )
        .unwrap();
        let dispatcher = Dispatcher::new(Arc::new(r), TaskLimits::default());
        let body = serde_json::json!({"___jsonclass": crate::event::wire::SERVICE_TASK_CLASS,
            "id": "s", "className": "services.Slow", "method": "wait", "timeout": 1500,
            "arguments": b"[]".to_vec(), "invocationContextDto": {}});
        let task = match AnyTask::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap() {
            AnyTask::Service(task) => task,
            other => panic!("not a service task: {other:?}"),
        };
        let started = tokio::time::Instant::now();
        let (reply, outcome) = dispatcher
            .run(dispatcher.route_service(task).unwrap())
            .await;
        assert_eq!(outcome, InvocationOutcome::Timeout);
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
        let exception = reply.exception.unwrap();
        assert_eq!(
            (exception.code, exception.exception_message.as_str()),
            (SERVICE_TIMED_OUT, TIMEOUT_MESSAGE)
        );
    }

    use crate::test_support::Captured;

    #[tokio::test]
    async fn at_info_a_success_logs_nothing_and_a_failure_logs_its_task() {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let mut r = Registry::new();
        r.before(
            persistence::BEFORE_REMOVE,
            "T",
            |_ctx: Context, id: String| async move {
                if id == "refuse" {
                    return Err(crate::handler::HandlerError::new(7, "refused"));
                }
                Ok(Before::Continue(id))
            },
        )
        .unwrap();
        let dispatcher = Dispatcher::new(Arc::new(r), TaskLimits::default());
        let task = |id: &str, arg: &str| {
            let body = serde_json::json!({"id": id, "eventId": 106, "target": "T",
                                          "arguments": [{"appId": "A"}, arg]});
            Task::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap()
        };
        let started = std::time::Instant::now();

        let routed = dispatcher.route(task("task-ok", "X")).unwrap();
        let reply = dispatcher.execute(routed, started, false).await;
        assert!(reply.exception.is_none());
        assert_eq!(String::from_utf8_lossy(&logs.0.lock()), "");

        let routed = dispatcher.route(task("task-refused", "refuse")).unwrap();
        let reply = dispatcher.execute(routed, started, false).await;
        assert!(reply.exception.is_some());
        let text = String::from_utf8_lossy(&logs.0.lock()).into_owned();
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in [
            "WARN",
            "invocation failed",
            "task.id=task-refused",
            "event=\"beforeRemove\"",
            "target=T",
            "outcome=\"error\"",
            "error=\"refused\"",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }

    #[test]
    fn timeouts_are_bounded() {
        let limits = TaskLimits {
            default_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(20),
        };
        assert_eq!(limits.timeout_for(None), Duration::from_secs(5));
        assert_eq!(limits.timeout_for(Some(0)), Duration::from_secs(5));
        assert_eq!(limits.timeout_for(Some(-1)), Duration::from_secs(20));
        assert_eq!(limits.timeout_for(Some(1500)), Duration::from_millis(1500));
        assert_eq!(limits.timeout_for(Some(60_000)), Duration::from_secs(20));
    }
}
