//! The verified task of `POST /invoke`: the extractor that turns a request
//! into a task the runner may act on, or into the refusal naming why not.
//!
//! Each check before the next: the signature headers (present, an id of
//! bounded size, a timestamp within the tolerance) before a byte of the body
//! is read; the body, within the size limit (a declared `content-length`
//! over it is refused unread) and the body deadline; the signature over the
//! raw bytes; the task, decoded in one parse; its application.
//!
//! The limit and the deadline are kept here rather than by axum's
//! `DefaultBodyLimit` or tower-http's `RequestBodyLimitLayer`: both box the
//! request body (an allocation per task), and the layer answers 413 in its
//! own plain text rather than the JSON naming the limit. tower-http's body
//! timeout bounds the wait for each chunk, not the whole body, so a body
//! trickled a byte at a time would never reach it.
//!
//! This module must not take a task slot, remember a delivery or run
//! anything: a request it refuses leaves a log line or a metric, nothing
//! else.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::dedupe::Fingerprint;
use super::{AppState, ErrorReply};
use crate::event::wire::AnyTask;
use crate::signature::{self, SignatureError, SignedHeaders};

/// A task whose body arrived whole and in time, whose signature matched
/// (unless the runner is in unsigned mode) and which is of the configured
/// application.
pub(super) struct VerifiedTask {
    /// The task, decoded.
    pub(super) task: AnyTask,
    /// What the replay check knows the delivery by; `None` in unsigned mode.
    pub(super) delivery: Option<Delivery>,
    /// When the request was received: a task's duration counts from here,
    /// its body's transfer included.
    pub(super) received: Instant,
    /// The body's length: a synchronous reply, which mostly carries the
    /// arguments back, is written into a buffer of this size.
    pub(super) body_len: usize,
}

/// A signed delivery, as the replay check remembers it.
pub(super) struct Delivery {
    /// `webhook-id`, taken out of the request's headers rather than copied.
    id: HeaderValue,
    /// `webhook-timestamp`, as signed: the id is remembered until it leaves
    /// the tolerance.
    pub(super) timestamp: i64,
    /// The body's fingerprint: a retry with the same id and body gets the
    /// kept reply, another body a refusal.
    pub(super) body: Fingerprint,
    /// SHA-256 of the body, for the fleet's replay check (which other
    /// processes must be able to compare); `None` without a fleet store.
    pub(super) body_hash: Option<[u8; 32]>,
}

impl Delivery {
    /// `webhook-id`.
    pub(super) fn id(&self) -> &str {
        self.id
            .to_str()
            .expect("the signature check read the id as text")
    }
}

impl FromRequest<Arc<AppState>> for VerifiedTask {
    type Rejection = ErrorReply;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ErrorReply> {
        let received = Instant::now();
        let (mut parts, body) = request.into_parts();
        let id = parts.headers.remove(signature::ID_HEADER);
        // The signature headers are checked before a byte of the body is read.
        let checked = match &state.verifier {
            Some(verifier) => {
                let signed = SignedHeaders {
                    id: id.as_ref().and_then(|id| id.to_str().ok()),
                    timestamp: header_str(&parts.headers, signature::TIMESTAMP_HEADER),
                    signature: header_str(&parts.headers, signature::SIGNATURE_HEADER),
                };
                let checked = verifier
                    .check_headers(signed, signature::unix_now())
                    .map_err(refused)?;
                Some((verifier, checked))
            }
            None => None,
        };
        let body = read_body(state, &parts.headers, body).await?;
        let signed = match checked {
            Some((verifier, checked)) => {
                verifier.verify_body(&checked, &body).map_err(refused)?;
                Some(checked.timestamp)
            }
            None => None,
        };
        let task = AnyTask::from_slice(&body)?;
        if let Some(app_id) = &state.app_id {
            if let Some(field) = task.other_app_field(app_id) {
                return Err(ErrorReply::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_task",
                    format!(
                        "invalid task field `{field}`: not the configured application `{app_id}`"
                    ),
                )
                .with_field(field));
            }
        }
        let delivery = signed.zip(id).map(|(timestamp, id)| Delivery {
            id,
            timestamp,
            body: state.dedupe.fingerprint(&body),
            body_hash: state
                .seen_ids
                .is_some()
                .then(|| Sha256::digest(&body).into()),
        });
        Ok(VerifiedTask {
            task,
            delivery,
            received,
            body_len: body.len(),
        })
    }
}

/// The refusal of a signature, logged once here.
fn refused(error: SignatureError) -> ErrorReply {
    tracing::warn!(%error, "refused a task with an invalid signature");
    error.into()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the body within the size limit and the body read timeout.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ErrorReply> {
    let too_large = || {
        ErrorReply::new(
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
    let read = axum::body::to_bytes(body, state.body_limit);
    match tokio::time::timeout(state.body_read_timeout, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => {
            metrics::counter!("coderunner_http_body_timeouts_total").increment(1);
            Err(ErrorReply::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the task body was not received within {} ms",
                    state.body_read_timeout.as_millis()
                ),
            ))
        }
    }
}
