//! One HTTP exchange with the backend: URL building, the identity header,
//! the per-call time limit, error decoding, the debug log line and metrics.
//!
//! This module knows nothing of identities beyond the token it is handed;
//! choosing the token is [`super::client`]'s job.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::IdentityKind;
use super::error::{SdkError, TimeoutLimit};
use crate::invocation_log::{BackendCall, CallLog, bounded};

/// The backend service a call belongs to; a bounded metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Users,
    Data,
    Cache,
    Counters,
    Files,
    Messaging,
    Logging,
    Services,
    Events,
}

impl Service {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Service::Users => "users",
            Service::Data => "data",
            Service::Cache => "cache",
            Service::Counters => "counters",
            Service::Files => "files",
            Service::Messaging => "messaging",
            Service::Logging => "logging",
            Service::Services => "services",
            Service::Events => "events",
        }
    }
}

/// A path segment; secret segments (a token in the path) are masked in logs.
#[derive(Clone)]
pub(crate) enum Segment {
    Plain(String),
    Secret(String),
}

/// A request body.
#[derive(Clone)]
pub(crate) enum Payload {
    /// `application/json`.
    Json(Value),
    /// `text/plain` (a file's bytes in base64, as the JS SDK's `saveFile` sends them).
    Text(String),
    /// `multipart/form-data` with one part `file` (the file upload).
    File { name: String, bytes: Bytes },
    /// `multipart/form-data` with one streamed part `file`. A stream can be
    /// sent once: a second attempt (a superuser retry) fails.
    FileStream {
        name: String,
        body: Arc<Mutex<Option<reqwest::Body>>>,
    },
}

/// One backend request, before the identity is applied.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) service: Service,
    pub(crate) method: Method,
    pub(crate) segments: Vec<Segment>,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Payload>,
    /// Keeps a trailing `/` after the last segment (the JS SDK's directory URLs).
    pub(crate) trailing_slash: bool,
    /// Extra request headers (`bl-execution-type`).
    pub(crate) headers: Vec<(&'static str, &'static str)>,
}

impl Call {
    /// A call to `segments` (each percent-encoded on its own) of `service`.
    pub(crate) fn new<I, S>(service: Service, method: Method, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Call {
            service,
            method,
            segments: segments
                .into_iter()
                .map(|s| Segment::Plain(s.into()))
                .collect(),
            query: Vec::new(),
            body: None,
            trailing_slash: false,
            headers: Vec::new(),
        }
    }

    /// Adds a request header.
    pub(crate) fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Appends a segment that must never be logged (a token).
    pub(crate) fn secret_segment(mut self, value: &str) -> Self {
        self.segments.push(Segment::Secret(value.to_owned()));
        self
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    /// Sets the JSON body.
    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(Payload::Json(body));
        self
    }

    /// Sets another kind of body.
    pub(crate) fn payload(mut self, body: Payload) -> Self {
        self.body = Some(body);
        self
    }

    /// The path relative to the root, with secret segments masked: what logs show.
    pub(crate) fn log_path(&self) -> String {
        let mut path = String::new();
        for segment in &self.segments {
            path.push('/');
            match segment {
                Segment::Plain(s) => path.push_str(s),
                Segment::Secret(_) => path.push_str("[redacted]"),
            }
        }
        path
    }
}

/// Resources of a service that a name picks (`cache/{key}`,
/// `counters/{name}`): their paths start with the service's name, and an
/// empty name is refused before any request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named {
    pub(crate) service: Service,
    /// The argument an empty name is reported as (`key`).
    pub(crate) argument: &'static str,
    /// What the name names, for the message (`cache key`).
    pub(crate) what: &'static str,
}

impl Named {
    /// A call to `{service}/{name}/{rest...}`; an empty `name` is
    /// [`SdkError::InvalidArgument`].
    pub(crate) fn call<const N: usize>(
        self,
        method: Method,
        name: &str,
        rest: [&str; N],
    ) -> Result<Call, SdkError> {
        SdkError::non_empty(self.argument, self.what, name)?;
        let segments = [self.service.as_str(), name].into_iter().chain(rest);
        Ok(Call::new(self.service, method, segments))
    }
}

/// How a successful reply is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// As JSON.
    Json,
    /// As the bytes that came.
    Bytes,
}

/// A successful reply, read as [`Want`] said.
pub(crate) enum Reply {
    Json(Value),
    Bytes(Bytes),
}

impl Reply {
    pub(crate) fn into_json(self) -> Value {
        match self {
            Reply::Json(v) => v,
            Reply::Bytes(_) => Value::Null,
        }
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Reply::Bytes(b) => b,
            Reply::Json(v) => Bytes::from(v.to_string()),
        }
    }
}

/// The body of a non-2xx reply.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// The process-wide HTTP pool and the root URL.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// `{server_url}/{app_id}/{api_key}` or `{custom_domain}/api`. Holds the
    /// API key: never logged.
    root: Url,
    /// Kept to mask it should the backend echo it in a message.
    api_key: SecretString,
    request_timeout: Duration,
}

impl Transport {
    pub(crate) fn new(
        http: reqwest::Client,
        root: Url,
        api_key: SecretString,
        request_timeout: Duration,
    ) -> Self {
        Transport {
            http,
            root,
            api_key,
            request_timeout,
        }
    }

    /// The call's URL: each segment percent-encoded on its own (a `/`, `?`
    /// or `#` in an id stays inside its segment); `.` and `..`, which URL
    /// normalisation would drop or resolve into another route, are refused.
    fn url(&self, call: &Call) -> Result<Url, SdkError> {
        for segment in &call.segments {
            let (Segment::Plain(s) | Segment::Secret(s)) = segment;
            if s == "." || s == ".." {
                return Err(SdkError::invalid(
                    "path",
                    format!(
                        "`{s}` cannot be an object id, key or name: it would change the route of {} {}",
                        call.method,
                        call.log_path()
                    ),
                ));
            }
        }
        let mut url = self.root.clone();
        {
            // The root was checked to be a base URL in `Backendless::new`.
            let mut segments = url.path_segments_mut().expect("the root URL can be a base");
            segments.pop_if_empty();
            for segment in &call.segments {
                match segment {
                    Segment::Plain(s) | Segment::Secret(s) => segments.push(s),
                };
            }
            if call.trailing_slash {
                segments.push("");
            }
        }
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &call.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends `call` with `token` in the `user-token` header (none when
    /// `None`), within `min(deadline, now + request_timeout)`; logs and
    /// counts it. Returns the reply's JSON (`Null` for an empty body).
    pub(crate) async fn execute(
        &self,
        call: &Call,
        token: Option<&str>,
        identity: IdentityKind,
        deadline: Option<Instant>,
    ) -> Result<Value, SdkError> {
        self.run(call, token, identity, deadline, json_reply).await
    }

    /// Like [`Transport::execute`], with the reply as `want` says: JSON, or
    /// the bytes as they came (a download), at most [`MAX_REPLY_BYTES`].
    pub(crate) async fn execute_as(
        &self,
        call: &Call,
        token: Option<&str>,
        identity: IdentityKind,
        deadline: Option<Instant>,
        want: Want,
    ) -> Result<Reply, SdkError> {
        match want {
            Want::Json => self
                .run(call, token, identity, deadline, json_reply)
                .await
                .map(Reply::Json),
            Want::Bytes => self
                .run(call, token, identity, deadline, |_, bytes| Ok(bytes))
                .await
                .map(Reply::Bytes),
        }
    }

    async fn run<T>(
        &self,
        call: &Call,
        token: Option<&str>,
        identity: IdentityKind,
        deadline: Option<Instant>,
        finish: impl FnOnce(&'static str, Bytes) -> Result<T, SdkError>,
    ) -> Result<T, SdkError> {
        let service = call.service.as_str();
        let path = call.log_path();
        tracing::debug!(
            identity = %identity,
            service,
            method = %call.method,
            path = %path,
            "backend call"
        );
        let started = Instant::now();
        let mut status = None;
        let result = match self.exchange(call, token, deadline, &mut status).await {
            Ok(bytes) => finish(service, bytes),
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SdkError::Backend { .. }) => "backend_error",
            Err(SdkError::Timeout { .. }) => "timeout",
            Err(SdkError::Redirected { .. }) => "redirect",
            Err(SdkError::Decode { .. }) => "decode_error",
            Err(SdkError::InvalidArgument { .. }) => "invalid_argument",
            Err(_) => "transport_error",
        };
        let identity_label = identity.as_str();
        metrics::counter!(
            "coderunner_backend_requests_total",
            "service" => service,
            "identity" => identity_label,
            "outcome" => outcome
        )
        .increment(1);
        metrics::histogram!(
            "coderunner_backend_request_duration_seconds",
            "service" => service,
            "identity" => identity_label
        )
        .record(elapsed.as_secs_f64());
        tracing::debug!(
            identity = %identity,
            service,
            method = %call.method,
            path = %path,
            outcome,
            code = result.as_ref().err().and_then(SdkError::code),
            duration_ms = elapsed.as_millis() as u64,
            "backend call finished"
        );
        // The console's record of the task's calls (nothing when it is off).
        CallLog::record(|| BackendCall {
            identity: identity_label,
            route: bounded(&format!("{} {path}", call.method)),
            status,
            outcome,
            code: result.as_ref().err().and_then(SdkError::code),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
        });
        result
    }

    async fn exchange(
        &self,
        call: &Call,
        token: Option<&str>,
        deadline: Option<Instant>,
        replied: &mut Option<u16>,
    ) -> Result<Bytes, SdkError> {
        let service = call.service.as_str();
        let now = Instant::now();
        // A zero request_timeout is no cap (`SdkConfig::request_timeout`).
        let cap = Some(self.request_timeout)
            .filter(|t| !t.is_zero())
            .map(|t| now + t);
        let limit = match (deadline, cap) {
            (Some(d), Some(c)) if d < c => Some((d, TimeoutLimit::Deadline)),
            (_, Some(c)) => Some((c, TimeoutLimit::RequestTimeout)),
            (Some(d), None) => Some((d, TimeoutLimit::Deadline)),
            (None, None) => None,
        };
        if let Some((until, limit)) = limit {
            if until <= now {
                return Err(SdkError::Timeout { service, limit });
            }
        }

        let mut request = self.http.request(call.method.clone(), self.url(call)?);
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                SdkError::invalid("user_token", "the token is not a valid header value")
            })?;
            value.set_sensitive(true);
            request = request.header("user-token", value);
        }
        for (name, value) in &call.headers {
            request = request.header(*name, *value);
        }
        match &call.body {
            None => {}
            Some(Payload::Json(body)) => {
                let bytes = serde_json::to_vec(body).map_err(|e| SdkError::Decode {
                    service,
                    message: format!("could not encode the request body: {e}"),
                })?;
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(bytes);
            }
            Some(Payload::Text(text)) => {
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static("text/plain"))
                    .body(text.clone());
            }
            Some(Payload::File { name, bytes }) => {
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::from(bytes.clone()),
                    bytes.len() as u64,
                )
                .file_name(name.clone());
                request = request.multipart(reqwest::multipart::Form::new().part("file", part));
            }
            Some(Payload::FileStream { name, body }) => {
                let body = body.lock().take().ok_or_else(|| {
                    SdkError::invalid(
                        "stream",
                        "a streamed upload can be sent once; it was already sent (upload bytes to allow a retry)",
                    )
                })?;
                let part = reqwest::multipart::Part::stream(body).file_name(name.clone());
                request = request.multipart(reqwest::multipart::Form::new().part("file", part));
            }
        }

        let transport_err = |e: reqwest::Error| SdkError::Transport {
            service,
            source: e.without_url(),
        };
        let send = async {
            let mut response = request.send().await.map_err(transport_err)?;
            let status = response.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_err)? {
                if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                    return Err(SdkError::Decode {
                        service,
                        message: format!("the reply is larger than {MAX_REPLY_BYTES} bytes"),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, SdkError>((status, Bytes::from(bytes)))
        };
        let (status, bytes) = match limit {
            Some((until, limit)) => tokio::time::timeout_at(until, send)
                .await
                .map_err(|_| SdkError::Timeout { service, limit })??,
            None => send.await?,
        };
        *replied = Some(status.as_u16());

        if status.is_redirection() {
            return Err(SdkError::Redirected {
                service,
                status: status.as_u16(),
            });
        }
        if status.is_success() {
            return Ok(bytes);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (
                body.code,
                body.message.unwrap_or_else(|| "no message".to_owned()),
            ),
            Err(_) => (
                None,
                format!("a non-JSON error body of {} bytes", bytes.len()),
            ),
        };
        Err(SdkError::Backend {
            service,
            status: status.as_u16(),
            code,
            message: self.mask(message, token),
        })
    }

    /// Masks the API key and the token of this call in a backend message.
    fn mask(&self, mut message: String, token: Option<&str>) -> String {
        for secret in [Some(self.api_key.expose_secret()), token]
            .into_iter()
            .flatten()
        {
            if !secret.is_empty() && message.contains(secret) {
                message = message.replace(secret, "[redacted]");
            }
        }
        message
    }
}

/// The most bytes a reply may have (a download included): replies are held
/// in memory.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// A successful reply as JSON (`Null` for an empty body).
fn json_reply(service: &'static str, bytes: Bytes) -> Result<Value, SdkError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| SdkError::Decode {
        service,
        message: format!("the reply is not JSON: {e}"),
    })
}

/// Decodes a reply into `T`; the error names the service.
pub(crate) fn decode<T: DeserializeOwned>(service: Service, value: Value) -> Result<T, SdkError> {
    serde_json::from_value(value).map_err(|e| SdkError::Decode {
        service: service.as_str(),
        message: e.to_string(),
    })
}
