//! The runner's HTTP server: `POST /invoke`, `GET /handlers`, `/healthz`,
//! `/readyz`, `/metrics`, and graceful shutdown.
//!
//! Bytes flow one way: a `VerifiedTask` (signature headers -> raw body,
//! bounded in size and time -> signature check -> task decode -> app id,
//! in `extract.rs`) -> a task slot -> replay check -> route -> dispatcher ->
//! reply. The server knows nothing of the SDK.

mod completion;
mod connections;
pub(crate) mod console;
pub(crate) mod dedupe;
mod error;
mod extract;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use connections::ConnectionLimits;
use dedupe::{Admission, Dedupe, KeptReply, Ticket};
pub(crate) use error::ErrorReply;
use extract::{Delivery, VerifiedTask};

use crate::dispatch::{Dispatcher, Execution, RouteError};
use crate::event::wire::{ExceptionWrapper, InvocationResult};
use crate::signature::{self, Verifier};
use crate::store::SeenIds;
use crate::transport::Readiness;

/// The `Retry-After` (seconds) of refusals about load.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

/// The header marking a reply sent again to a retried delivery.
pub(crate) const REPLAYED_HEADER: &str = "webhook-replayed";

/// How the server behaves; built from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    /// Largest accepted body in bytes.
    pub body_limit_bytes: usize,
    /// Time a client gets to send a complete request head.
    pub header_read_timeout: Duration,
    /// Time a client gets to send the body, once the head is read.
    pub body_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Synchronous tasks running at once (a handler past its timeout that
    /// has not returned still counts).
    pub max_tasks_in_flight: usize,
    /// Asynchronous tasks accepted and not finished.
    pub max_async_tasks: usize,
    /// How many webhook ids are remembered.
    pub seen_ids_capacity: usize,
    /// Bytes of replies kept for retried deliveries.
    pub reply_cache_bytes: usize,
    /// Refuse tasks of another application (`backendless.app_id`), if set.
    pub app_id: Option<String>,
    /// Time in-flight tasks get after shutdown starts.
    pub grace_period: Duration,
    /// Time between readiness turning 503 and the listener closing.
    pub drain_delay: Duration,
    /// Serve `POST /invoke` (the HTTP transport); off when tasks come only
    /// from Redis.
    pub invoke: bool,
    /// Other transports' (and the shared store's) readiness, all of which
    /// `/readyz` requires.
    pub readiness: Vec<Readiness>,
    /// The fleet's set of accepted webhook ids (`[store] kind = "redis"`),
    /// claimed after this process's own replay check; `None` = this
    /// process's set alone.
    pub seen_ids: Option<Arc<dyn SeenIds>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_tasks_in_flight: 1024,
            max_async_tasks: 1024,
            seen_ids_capacity: 400_000,
            reply_cache_bytes: 32 << 20,
            app_id: None,
            grace_period: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            invoke: true,
            readiness: Vec::new(),
            seen_ids: None,
        }
    }
}

struct AppState {
    dispatcher: Dispatcher,
    /// `None` only in explicitly enabled unsigned mode.
    verifier: Option<Verifier>,
    dedupe: Dedupe,
    /// The fleet's seen ids, when shared.
    seen_ids: Option<Arc<dyn SeenIds>>,
    body_limit: usize,
    body_read_timeout: Duration,
    /// Slots of synchronous tasks.
    tasks: Arc<Semaphore>,
    /// Slots of asynchronous tasks.
    async_tasks: Arc<Semaphore>,
    app_id: Option<String>,
    /// False once shutdown has begun.
    ready: AtomicBool,
    /// Transports that must be ready too.
    readiness: Vec<Readiness>,
    /// Tracks tasks (not connections) so shutdown can wait for them.
    tracker: TaskTracker,
}

/// The runner's HTTP server.
#[derive(Clone)]
pub(crate) struct Server {
    state: Arc<AppState>,
    options: ServerOptions,
    /// The web console, when `[console] enabled`.
    console: Option<Arc<console::Console>>,
}

impl Server {
    /// A server dispatching to `dispatcher`; `verifier` is `None` only in
    /// unsigned mode.
    pub(crate) fn new(
        dispatcher: Dispatcher,
        verifier: Option<Verifier>,
        options: ServerOptions,
    ) -> Self {
        let tolerance = verifier
            .as_ref()
            .map_or(signature::DEFAULT_TOLERANCE, Verifier::tolerance);
        // The recorder before any metric handle is made (the replay set's).
        crate::telemetry::metrics();
        let state = AppState {
            dispatcher,
            verifier,
            dedupe: Dedupe::new(
                options.seen_ids_capacity,
                options.reply_cache_bytes,
                tolerance.as_secs(),
            ),
            seen_ids: options.seen_ids.clone(),
            body_limit: options.body_limit_bytes,
            body_read_timeout: options.body_read_timeout,
            tasks: Arc::new(Semaphore::new(options.max_tasks_in_flight)),
            async_tasks: Arc::new(Semaphore::new(options.max_async_tasks)),
            app_id: options.app_id.clone(),
            ready: AtomicBool::new(true),
            readiness: options.readiness.clone(),
            tracker: TaskTracker::new(),
        };
        Self {
            state: Arc::new(state),
            options,
            console: None,
        }
    }

    /// Serves `console` on a listener of its own until `shutdown` is
    /// cancelled (then its connections are closed).
    pub(crate) async fn serve_console(
        console: Arc<console::Console>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 64,
        };
        connections::serve(listener, console.router(), limits, shutdown).await;
    }

    /// Serves `console` under `/console`.
    pub(crate) fn with_console(mut self, console: Arc<console::Console>) -> Self {
        self.console = Some(console);
        self
    }

    /// The router, for embedding or for tests.
    pub(crate) fn router(&self) -> Router {
        let router = if self.options.invoke {
            Router::new().route("/invoke", post(invoke))
        } else {
            Router::new()
        };
        let router = router
            .route("/handlers", get(handlers))
            .route("/model", get(model))
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .fallback(|| async {
                ErrorReply::new(StatusCode::NOT_FOUND, "not_found", "no such route")
            })
            .with_state(Arc::clone(&self.state));
        match &self.console {
            Some(console) => router.merge(console.router()),
            None => router,
        }
    }

    /// Serves on `listener` until `shutdown` is cancelled, then drains:
    /// readiness turns 503, the listener and the idle connections close
    /// after the drain delay, and tasks in flight (asynchronous ones too)
    /// get the grace period to finish; then it returns, whatever still runs.
    pub(crate) async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let stop_accepting = CancellationToken::new();
        let limits = ConnectionLimits {
            header_read_timeout: self.options.header_read_timeout,
            max_connections: self.options.max_connections,
        };
        let serving = tokio::spawn(connections::serve(
            listener,
            self.router(),
            limits,
            stop_accepting.clone(),
        ));
        shutdown.cancelled().await;
        self.state.ready.store(false, Ordering::SeqCst);
        tracing::info!(
            grace_period_secs = self.options.grace_period.as_secs(),
            "shutting down: draining in-flight tasks"
        );
        tokio::time::sleep(self.options.drain_delay).await;
        stop_accepting.cancel();
        self.state.tracker.close();
        let tracker = self.state.tracker.clone();
        let drained = tokio::time::timeout(self.options.grace_period, async move {
            let served = serving.await;
            tracker.wait().await;
            served
        })
        .await;
        match drained {
            Ok(Ok(())) => {
                tracing::info!("shutdown complete");
                Ok(())
            }
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => {
                tracing::warn!(
                    tasks_running = self.state.tracker.len(),
                    "grace period over: tasks still running are abandoned"
                );
                Ok(())
            }
        }
    }
}

async fn handlers(State(state): State<Arc<AppState>>) -> Response {
    Json(state.dispatcher.registry().handlers()).into_response()
}

async fn model(State(state): State<Arc<AppState>>) -> Response {
    Json(crate::model::Model::of(state.dispatcher.registry())).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting down"})),
        )
            .into_response();
    }
    let down: Vec<&str> = state
        .readiness
        .iter()
        .filter(|r| !r.is_ready())
        .map(|r| r.name)
        .collect();
    if down.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        let message = format!("not connected: {}", down.join(", "));
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "message": message})),
        )
            .into_response()
    }
}

async fn metrics() -> Response {
    let body = crate::telemetry::metrics().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// A JSON body already serialized.
fn json_reply(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `POST /invoke`: a verified task takes a task slot, passes the replay
/// check, is routed and runs; its answer is kept for a retry of the delivery.
async fn invoke(
    State(state): State<Arc<AppState>>,
    VerifiedTask {
        task,
        delivery,
        received,
        body_len,
    }: VerifiedTask,
) -> Result<Response, ErrorReply> {
    let is_async = task.is_async();
    let request_id = task.id().to_owned();
    // The slot before the replay check, so that a delivery refused for load
    // is not remembered and the backend's retry of it runs (a retry of an
    // answered delivery needs a slot too: under load it gets the 503, later
    // its kept answer). The replay check before routing, which calls the
    // handler to build its future.
    let slot = take_slot(&state, is_async)?;
    let ticket = match admit(&state, delivery.as_ref()).await? {
        Admitted::Run(ticket) => ticket,
        Admitted::Replay(kept) => return Ok(kept),
    };
    // From here the delivery counts as seen: whatever it is answered is kept.
    let routed = match state.dispatcher.route_any(task) {
        Ok(routed) => routed,
        Err(e) => {
            let (status, body) = unroutable(&state, &request_id, e, received);
            return Ok(answer(ticket, status, body));
        }
    };
    // Every task runs to completion even if the caller hangs up (its answer
    // is then kept for a retry), and shutdown waits for it.
    let run = state
        .dispatcher
        .execute(routed.hold(slot), received, is_async);
    if is_async {
        let accepted = serde_json::to_vec(&json!({"requestId": request_id, "status": "accepted"}))
            .expect("JSON serializes");
        let accepted = answer(ticket, StatusCode::ACCEPTED, Bytes::from(accepted));
        state.tracker.spawn(run);
        return Ok(accepted);
    }
    let answering = Answering {
        run,
        ticket,
        body_len,
    };
    Ok(completion::run_to_completion(&state.tracker, answering).await)
}

/// A synchronous task's execution, then its reply serialized and kept for
/// a retry. Written by hand rather than as an `async` block so that it is
/// `Unpin` (the execution is boxed already) and
/// [`completion::run_to_completion`] need not box it again.
struct Answering {
    run: Execution,
    /// Keeps the reply (`None` unsigned); taken when the reply is ready
    /// (the boxed execution panics if polled again after that).
    ticket: Option<Ticket>,
    /// The task's size: the reply's buffer starts at it.
    body_len: usize,
}

impl Future for Answering {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Response> {
        let reply = std::task::ready!(self.run.as_mut().poll(cx));
        let ticket = self.ticket.take();
        let mut body = Vec::with_capacity(self.body_len);
        serde_json::to_writer(&mut body, &reply).expect("a reply serializes");
        Poll::Ready(answer(ticket, StatusCode::OK, Bytes::from(body)))
    }
}

/// The answer to a delivery, kept for a retry of it when it is signed.
fn answer(ticket: Option<Ticket>, status: StatusCode, body: Bytes) -> Response {
    if let Some(ticket) = ticket {
        ticket.finish(status.as_u16(), &body);
    }
    json_reply(status, body)
}

/// A slot of the task's kind (synchronous or asynchronous), or 503 with
/// `Retry-After` when they are all taken.
fn take_slot(state: &AppState, is_async: bool) -> Result<OwnedSemaphorePermit, ErrorReply> {
    let (slots, reason, code, what, limit) = if is_async {
        (
            &state.async_tasks,
            "async_full",
            "async_queue_full",
            "asynchronous tasks",
            "server.max_async_tasks",
        )
    } else {
        (
            &state.tasks,
            "busy",
            "busy",
            "tasks",
            "server.max_tasks_in_flight",
        )
    };
    Arc::clone(slots).try_acquire_owned().map_err(|_| {
        metrics::counter!("coderunner_tasks_refused_total", "reason" => reason).increment(1);
        ErrorReply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            format!("too many {what} in flight (`{limit}`); retry later"),
        )
        .retry_after(RETRY_AFTER_SECS)
    })
}

/// What the replay check says about a delivery it does not refuse.
enum Admitted {
    /// Run it, with the ticket that keeps its answer (`None` unsigned).
    Run(Option<Ticket>),
    /// A retry of a delivery already answered: that answer again.
    Replay(Response),
}

/// The replay check of a signed delivery (unsigned ones always run): this
/// process's own, then the fleet's when the store is shared.
async fn admit(state: &AppState, delivery: Option<&Delivery>) -> Result<Admitted, ErrorReply> {
    let Some(delivery) = delivery else {
        return Ok(Admitted::Run(None));
    };
    let id = delivery.id();
    let admission =
        state
            .dedupe
            .admit(id, delivery.timestamp, delivery.body, signature::unix_now());
    let ticket = match admission {
        Admission::New(ticket) => ticket,
        Admission::Replay(KeptReply { status, body }) => {
            tracing::info!(webhook_id = id, "a retried delivery gets its reply again");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = json_reply(status, body);
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            return Ok(Admitted::Replay(response));
        }
        Admission::Running => {
            return Err(ErrorReply::new(
                StatusCode::CONFLICT,
                "delivery_in_progress",
                format!("webhook-id `{id}` is still running; retry for its reply"),
            )
            .retry_after(RETRY_AFTER_SECS));
        }
        Admission::OtherBody => {
            duplicate_refused("memory");
            tracing::warn!(webhook_id = id, "refused a seen id with another body");
            return Err(ErrorReply::new(
                StatusCode::CONFLICT,
                "duplicate_delivery",
                format!(
                    "webhook-id `{id}` was already received with a different body; \
                     it is not executed"
                ),
            ));
        }
        Admission::ReplyNotKept => {
            duplicate_refused("memory");
            tracing::warn!(webhook_id = id, "refused a replayed delivery");
            return Err(ErrorReply::new(
                StatusCode::CONFLICT,
                "duplicate_delivery",
                format!(
                    "webhook-id `{id}` was already received and its reply is no longer \
                     kept; it is not executed again"
                ),
            ));
        }
        Admission::BeyondHorizon { horizon } => {
            tracing::warn!(
                webhook_id = id,
                horizon,
                "refused a delivery signed before the replay horizon"
            );
            metrics::counter!("coderunner_replay_refused_total").increment(1);
            return Err(ErrorReply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "replay_window_full",
                format!(
                    "too many recent deliveries are remembered: deliveries signed at or \
                     before {horizon} cannot be told from replays; send it again with a \
                     fresh signature"
                ),
            )
            .retry_after(RETRY_AFTER_SECS));
        }
    };
    let ticket = claim_in_fleet(state, delivery, ticket).await?;
    Ok(Admitted::Run(Some(ticket)))
}

fn duplicate_refused(store: &'static str) {
    metrics::counter!("coderunner_replay_duplicates_total", "store" => store).increment(1);
}

/// The fleet-wide replay check of a delivery this process admitted: `Err`
/// with the answer when another replica accepted it first (409) or the
/// store cannot say (503, and the delivery is forgotten so its retry runs).
async fn claim_in_fleet(
    state: &AppState,
    delivery: &Delivery,
    ticket: Ticket,
) -> Result<Ticket, ErrorReply> {
    let Some(seen) = &state.seen_ids else {
        return Ok(ticket);
    };
    let id = delivery.id();
    let tolerance = state
        .verifier
        .as_ref()
        .map_or(signature::DEFAULT_TOLERANCE, Verifier::tolerance);
    let until = delivery
        .timestamp
        .saturating_add(i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX));
    let body_hash = delivery
        .body_hash
        .expect("the body is hashed when a fleet store is set");
    match seen.claim(id, &body_hash, until).await {
        Ok(true) => Ok(ticket),
        Ok(false) => {
            // The ticket is dropped: this replica refuses the id too.
            drop(ticket);
            duplicate_refused(seen.kind());
            tracing::warn!(
                webhook_id = id,
                "refused a delivery another runner of the fleet accepted"
            );
            Err(ErrorReply::new(
                StatusCode::CONFLICT,
                "duplicate_delivery",
                format!(
                    "webhook-id `{id}` was already received by another runner of the fleet; \
                     it is not executed again"
                ),
            ))
        }
        Err(e) => {
            ticket.abandon();
            metrics::counter!("coderunner_tasks_refused_total", "reason" => "store_unavailable")
                .increment(1);
            tracing::warn!(webhook_id = id, error = %e, "refused a delivery: the replay check cannot be made");
            Err(ErrorReply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the fleet's replay check cannot be made (its store is unreachable); \
                 the task was not run: retry later",
            )
            .retry_after(RETRY_AFTER_SECS))
        }
    }
}

/// The answer to a task that cannot be routed: a named 400 for a bad
/// context or arguments, an `InvocationResult` with the official runner's
/// message and 404 for an unknown event or handler.
fn unroutable(
    state: &AppState,
    request_id: &str,
    error: RouteError,
    received: Instant,
) -> (StatusCode, Bytes) {
    let error = match ErrorReply::try_from(error) {
        Ok(invalid) => {
            tracing::warn!(task.id = %request_id, field = invalid.field.as_deref(), "task arguments do not fit the handler");
            let body = serde_json::to_vec(&invalid).expect("an error serializes");
            return (invalid.status(), Bytes::from(body));
        }
        Err(error) => error,
    };
    state.dispatcher.refused(request_id, &error, received);
    // A service's parameters are the client's: its reply, with the 400 for
    // the client inside. The rest are unroutable: 404.
    let status = if matches!(error, RouteError::BadParameters { .. }) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let exception = error
        .exception()
        .unwrap_or_else(|| ExceptionWrapper::new(0, error.to_string(), None));
    let reply = InvocationResult::with_exception(request_id.to_owned(), exception);
    let body = serde_json::to_vec(&reply).expect("a reply serializes");
    (status, Bytes::from(body))
}
