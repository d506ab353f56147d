//! The runner's HTTP server: `POST /invoke`, `GET /handlers`, `/healthz`,
//! `/readyz`, `/metrics`, and graceful shutdown.
//!
//! Bytes flow one way: raw body -> signature check -> seen-id check -> task
//! decode -> dispatcher -> reply. The server knows nothing of the SDK.

mod error;
pub mod seen;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{field, Instrument};

pub use error::ApiError;
use seen::{BoundedSeenIds, SeenIds};

use crate::dispatch::{Dispatcher, Outcome, RouteError};
use crate::event::wire::{ExceptionWrapper, InvocationResult, Task};
use crate::signature::{self, SignedHeaders, Verifier};

/// How the server behaves; built from the configuration.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest accepted body in bytes.
    pub body_limit_bytes: usize,
    /// How many webhook ids are remembered.
    pub seen_ids_capacity: usize,
    /// Time in-flight tasks get after shutdown starts.
    pub grace_period: Duration,
    /// Time between readiness turning 503 and the listener closing.
    pub drain_delay: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            seen_ids_capacity: 200_000,
            grace_period: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
        }
    }
}

struct AppState {
    dispatcher: Dispatcher,
    /// `None` only in explicitly enabled unsigned mode.
    verifier: Option<Verifier>,
    seen: Box<dyn SeenIds>,
    body_limit: usize,
    /// False once shutdown has begun.
    ready: AtomicBool,
    /// Tracks asynchronous tasks so shutdown can wait for them.
    tracker: TaskTracker,
    /// Per-handler metric handles, by event id then target.
    metrics: HashMap<u32, HashMap<String, HandlerMetrics>>,
}

/// The runner's HTTP server.
#[derive(Clone)]
pub struct Server {
    state: Arc<AppState>,
    options: ServerOptions,
}

impl Server {
    /// A server dispatching to `dispatcher`; `verifier` is `None` only in
    /// unsigned mode.
    pub fn new(dispatcher: Dispatcher, verifier: Option<Verifier>, options: ServerOptions) -> Self {
        let window = verifier
            .as_ref()
            .map_or(signature::DEFAULT_TOLERANCE, Verifier::tolerance)
            * 2;
        let state = AppState {
            dispatcher,
            verifier,
            seen: Box::new(BoundedSeenIds::new(options.seen_ids_capacity, window)),
            body_limit: options.body_limit_bytes,
            ready: AtomicBool::new(true),
            tracker: TaskTracker::new(),
            metrics: HashMap::new(),
        };
        crate::telemetry::metrics();
        let state = AppState {
            metrics: handler_metrics(state.dispatcher.registry()),
            ..state
        };
        Self {
            state: Arc::new(state),
            options,
        }
    }

    /// The router, for embedding or for tests.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/invoke", post(invoke))
            .route("/handlers", get(handlers))
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .fallback(|| async {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
            })
            .with_state(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` is cancelled, then drains:
    /// readiness turns 503, the listener closes after the drain delay, and
    /// in-flight tasks (asynchronous ones too) get the grace period to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let stop_accepting = CancellationToken::new();
        let router = self.router();
        let stop = stop_accepting.clone();
        let serving = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
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
            Ok(Ok(result)) => {
                tracing::info!("shutdown complete");
                result
            }
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => {
                tracing::warn!("grace period over: tasks still running are abandoned");
                Ok(())
            }
        }
    }
}

async fn handlers(State(state): State<Arc<AppState>>) -> Response {
    Json(state.dispatcher.registry().handlers()).into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting down"})),
        )
            .into_response()
    }
}

async fn metrics() -> Response {
    let body = crate::telemetry::metrics().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Metric handles of one registered handler, made once at startup so that
/// recording an invocation allocates nothing.
struct HandlerMetrics {
    /// Indexed by [`outcome_index`].
    invocations: [metrics::Counter; 4],
    duration: metrics::Histogram,
}

fn outcome_index(outcome: Outcome) -> Option<usize> {
    match outcome {
        Outcome::Ok => Some(0),
        Outcome::Error => Some(1),
        Outcome::Timeout => Some(2),
        Outcome::Panic => Some(3),
        Outcome::NoHandler | Outcome::UnknownEvent => None,
    }
}

/// Handles for every registered (event id, target).
fn handler_metrics(
    registry: &crate::registry::Registry,
) -> HashMap<u32, HashMap<String, HandlerMetrics>> {
    let mut all: HashMap<u32, HashMap<String, HandlerMetrics>> = HashMap::new();
    for h in registry.handlers() {
        let base = [
            ("provider", h.provider.clone()),
            ("event", h.event.clone()),
            ("target", h.target.clone()),
        ];
        let counter = |outcome: Outcome| {
            let mut labels = base.to_vec();
            labels.push(("outcome", outcome.as_str().to_owned()));
            metrics::counter!("coderunner_invocations_total", &labels)
        };
        let m = HandlerMetrics {
            invocations: [
                counter(Outcome::Ok),
                counter(Outcome::Error),
                counter(Outcome::Timeout),
                counter(Outcome::Panic),
            ],
            duration: metrics::histogram!("coderunner_invocation_duration_seconds", &base),
        };
        all.entry(h.event_id).or_default().insert(h.target, m);
    }
    all
}

fn record(provider: &str, event: &str, target: &str, outcome: Outcome, started: Instant) {
    let labels = [
        ("provider", provider.to_owned()),
        ("event", event.to_owned()),
        ("target", target.to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ];
    metrics::counter!("coderunner_invocations_total", &labels).increment(1);
    metrics::histogram!("coderunner_invocation_duration_seconds", &labels[..3])
        .record(started.elapsed().as_secs_f64());
}

async fn invoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the task body exceeds the limit of {} bytes",
                state.body_limit
            ),
        )
    };
    let declared =
        header_str(&headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.body_limit) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, state.body_limit)
        .await
        .map_err(|_| too_large())?;

    if let Some(verifier) = &state.verifier {
        let signed = SignedHeaders {
            id: header_str(&headers, signature::ID_HEADER),
            timestamp: header_str(&headers, signature::TIMESTAMP_HEADER),
            signature: header_str(&headers, signature::SIGNATURE_HEADER),
        };
        let id = verifier
            .verify(signed, &body, signature::unix_now())
            .map_err(|e| {
                tracing::warn!(error = %e, "refused a task with an invalid signature");
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string())
            })?;
        if !state.seen.first_time(id) {
            tracing::warn!(webhook_id = id, "refused a replayed delivery");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_delivery",
                format!("webhook-id `{id}` was already received; it is not executed again"),
            ));
        }
    }

    let task = Task::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_task", e.message).with_field(e.field)
    })?;
    let request_id = task.id.clone();
    let is_async = task.is_async;
    let routed = match state.dispatcher.route(task) {
        Ok(routed) => routed,
        Err(RouteError::BadContext(message)) => {
            let message = format!("invalid task field `arguments[0]`: {message}");
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_task", message)
                    .with_field("arguments[0]"),
            );
        }
        Err(RouteError::BadArguments(e)) => {
            tracing::warn!(task.id = %request_id, field = %e.field, "task arguments do not fit the handler");
            let message = e.to_string();
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_task", message).with_field(e.field),
            );
        }
        Err(e) => {
            let (provider, event) = match &e {
                RouteError::NoHandler { event, .. } => (event.provider.as_str(), event.name),
                _ => ("unknown", "unknown"),
            };
            tracing::warn!(task.id = %request_id, error = %e, "task has no handler");
            record(provider, event, "unregistered", e.outcome(), started);
            let reply = InvocationResult::with_exception(
                request_id,
                ExceptionWrapper::new(0, e.to_string(), None),
            );
            return Ok((StatusCode::NOT_FOUND, Json(reply)).into_response());
        }
    };

    let handler = routed.handler();
    let (provider, event, target) = (
        handler.event.provider.as_str(),
        handler.event.name,
        handler.target.clone(),
    );
    let span = tracing::info_span!(
        "invocation",
        task.id = %request_id,
        event = event,
        event_id = handler.event.id.0,
        target = %target,
        is_async,
        outcome = field::Empty,
        duration_ms = field::Empty,
    );
    let dispatcher = state.dispatcher.clone();
    let event_id = handler.event.id.0;
    let shared = Arc::clone(&state);
    let run = async move {
        let (reply, outcome) = dispatcher.run(routed).await;
        let span = tracing::Span::current();
        span.record("outcome", outcome.as_str());
        span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
        match outcome {
            Outcome::Ok => tracing::info!("invocation finished"),
            _ => tracing::warn!(
                error = reply
                    .exception
                    .as_ref()
                    .map(|e| e.exception_message.as_str())
                    .unwrap_or_default(),
                "invocation failed"
            ),
        }
        let cached = shared
            .metrics
            .get(&event_id)
            .and_then(|m| m.get(target.as_str()));
        match (cached, outcome_index(outcome)) {
            (Some(m), Some(i)) => {
                m.invocations[i].increment(1);
                m.duration.record(started.elapsed().as_secs_f64());
            }
            _ => record(provider, event, &target, outcome, started),
        }
        reply
    }
    .instrument(span);

    // Every task runs on the tracker, so it completes even if the caller
    // hangs up, and shutdown waits for it.
    let running = state.tracker.spawn(run);
    if is_async {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"requestId": request_id, "status": "accepted"})),
        )
            .into_response());
    }
    let reply = running.await.map_err(|e| {
        tracing::error!(error = %e, "invocation task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the invocation could not complete",
        )
    })?;
    Ok(Json(reply).into_response())
}
