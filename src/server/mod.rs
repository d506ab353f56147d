//! The runner's HTTP server: `POST /invoke`, `GET /handlers`, `/healthz`,
//! `/readyz`, `/metrics`, and graceful shutdown.
//!
//! Bytes flow one way: raw body -> signature check -> seen-id check -> task
//! decode -> dispatcher -> reply. The server knows nothing of the SDK.

mod error;
pub mod seen;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::ApiError;
use seen::{BoundedSeenIds, SeenIds};

use crate::dispatch::{Dispatcher, RouteError};
use crate::event::wire::{ExceptionWrapper, InvocationResult, Task};
use crate::signature::{self, SignedHeaders, Verifier};
use crate::transport::Readiness;

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
    /// Serve `POST /invoke` (the HTTP transport); off when tasks come only
    /// from Redis.
    pub invoke: bool,
    /// Other transports' readiness, all of which `/readyz` requires.
    pub readiness: Vec<Readiness>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            seen_ids_capacity: 200_000,
            grace_period: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            invoke: true,
            readiness: Vec::new(),
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
    /// Transports that must be ready too.
    readiness: Vec<Readiness>,
    /// Tracks asynchronous tasks so shutdown can wait for them.
    tracker: TaskTracker,
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
            readiness: options.readiness.clone(),
            tracker: TaskTracker::new(),
        };
        crate::telemetry::metrics();
        Self {
            state: Arc::new(state),
            options,
        }
    }

    /// The router, for embedding or for tests.
    pub fn router(&self) -> Router {
        let router = if self.options.invoke {
            Router::new().route("/invoke", post(invoke))
        } else {
            Router::new()
        };
        router
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

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn invoke(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    // The parts are borrowed, not copied as the `HeaderMap` extractor does.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
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
        header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.body_limit) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, state.body_limit)
        .await
        .map_err(|_| too_large())?;

    if let Some(verifier) = &state.verifier {
        let signed = SignedHeaders {
            id: header_str(headers, signature::ID_HEADER),
            timestamp: header_str(headers, signature::TIMESTAMP_HEADER),
            signature: header_str(headers, signature::SIGNATURE_HEADER),
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
            state.dispatcher.refused(&request_id, &e, started);
            let reply = InvocationResult::with_exception(
                request_id,
                ExceptionWrapper::new(0, e.to_string(), None),
            );
            return Ok((StatusCode::NOT_FOUND, Json(reply)).into_response());
        }
    };
    let run = state.dispatcher.execute(routed, started, is_async);

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
    Ok(json_response(&reply, body.len()))
}

/// A 200 reply of `value` as JSON, written into a buffer of `size_hint`
/// bytes: a reply repeats the task's arguments, so the task's size is a
/// close guess and the buffer is not grown while writing.
fn json_response<T: serde::Serialize>(value: &T, size_hint: usize) -> Response {
    let mut buf = Vec::with_capacity(size_hint + 256);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buf,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a reply could not be serialised");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the reply could not be serialised",
            )
            .into_response()
        }
    }
}
