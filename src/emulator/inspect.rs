//! What the emulator saw, for tests and for curious users: the request log,
//! login counts and the tasks sent to the runner. Also reachable over HTTP
//! under `/__emulator/`, where secrets are masked ([`mask`]) and only
//! loopback clients, or clients with the inspection token, are answered
//! ([`guard`]).

use crate::event::EventId;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{PathParams, Shared, path_param};

use super::config::KeyKind;
use super::sessions::Sessions;

/// One request as the emulator saw it.
#[derive(Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path (no query string).
    pub path: String,
    /// The `user-token` header as sent, if any. Not shown by `Debug`.
    pub user_token: Option<String>,
    /// The user the token resolved to, if it did.
    pub user_id: Option<String>,
    /// The kind of API key used, if the app id and key were valid.
    pub key_kind: Option<KeyKind>,
    /// The response status.
    pub status: u16,
}

impl fmt::Debug for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRecord")
            .field("method", &self.method)
            .field("path", &mask_path(&self.path))
            .field(
                "user_token",
                &self.user_token.as_ref().map(|_| "[redacted]"),
            )
            .field("user_id", &self.user_id)
            .field("key_kind", &self.key_kind)
            .field("status", &self.status)
            .finish()
    }
}

/// How many characters of a secret the inspection routes keep.
const SHOWN_PREFIX: usize = 4;

/// A secret as the inspection routes show it: at most a short prefix, then
/// `…` (`"3F2A…"`).
pub(super) fn mask(secret: &str) -> String {
    if secret == "[redacted]" {
        return secret.to_owned();
    }
    let count = secret.chars().count();
    let keep = if count > 2 * SHOWN_PREFIX {
        SHOWN_PREFIX
    } else {
        count / 4
    };
    let prefix: String = secret.chars().take(keep).collect();
    format!("{prefix}…")
}

/// A request path with its secrets masked: the API key of
/// `/{appId}/{apiKey}/...` and the token of `users/isvalidusertoken/{token}`.
pub(super) fn mask_path(path: &str) -> String {
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    // ["", appId, apiKey, ...]
    if segments.len() > 2 && !segments[1].starts_with("__") {
        segments[2] = mask(&segments[2]);
    }
    if let Some(i) = segments.iter().position(|s| s == "isvalidusertoken") {
        if let Some(token) = segments.get_mut(i + 1) {
            *token = mask(token);
        }
    }
    segments.join("/")
}

/// Property names whose string values are secrets in a task body or a
/// header map (compared without case).
const SECRET_PROPERTIES: &[&str] = &[
    "usertoken",
    "user-token",
    "apikey",
    "secretkey",
    "password",
    "authorization",
    "cookie",
];

/// `value` with every secret property masked, at any depth.
pub(super) fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let secret = SECRET_PROPERTIES.contains(&k.to_ascii_lowercase().as_str());
                match v {
                    Value::String(s) if secret => *s = mask(s),
                    other => mask_secrets(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

impl RequestRecord {
    /// The record as the inspection route shows it: token and key masked.
    pub fn masked(&self) -> RequestRecord {
        RequestRecord {
            path: mask_path(&self.path),
            user_token: self.user_token.as_deref().map(mask),
            ..self.clone()
        }
    }
}

impl SentTask {
    /// The task as the inspection route shows it: tokens, the API key and
    /// passwords masked.
    pub fn masked(&self) -> SentTask {
        let mut task = self.clone();
        mask_secrets(&mut task.body);
        task
    }
}

/// The header that carries the inspection token.
pub const TOKEN_HEADER: &str = "x-emulator-token";

/// Guards `/__emulator/*`: answered when the peer is a loopback address and
/// the `Host` is a loopback name (no DNS rebinding), or when the request
/// carries the inspection token in `x-emulator-token`. Anything else, or a
/// server that does not know its peers, gets 403.
pub(crate) async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let token_ok = req.headers().get(TOKEN_HEADER).is_some_and(|t| {
        subtle::ConstantTimeEq::ct_eq(t.as_bytes(), st.inspect_token.as_bytes()).into()
    });
    let peer_ok = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|ConnectInfo(addr)| addr.ip().to_canonical().is_loopback());
    let host_ok = req
        .headers()
        .get(axum::http::header::HOST)
        .is_none_or(|h| h.to_str().is_ok_and(is_loopback_host));
    if token_ok || (peer_ok && host_ok) {
        return next.run(req).await;
    }
    ApiError::new(
        0,
        format!(
            "the emulator's inspection routes answer loopback clients only; \
             from elsewhere send the header {TOKEN_HEADER} printed by `coderunner dev`"
        ),
    )
    .with_status(StatusCode::FORBIDDEN)
    .into_response()
}

/// Whether a `Host` header names this machine: `localhost`, a loopback IPv4
/// address or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A task sent to the runner (passwords are redacted; the caller's token is
/// not, so `Debug` leaves the body out).
#[derive(Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SentTask {
    /// The event id.
    pub event_id: EventId,
    /// The event name (`beforeCreate`).
    pub event_name: String,
    /// The target (`Post`, `*`).
    pub target: String,
    /// Whether it was fired without waiting.
    pub is_async: bool,
    /// The task body as JSON.
    pub body: Value,
}

impl fmt::Debug for SentTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentTask")
            .field("event_id", &self.event_id)
            .field("event_name", &self.event_name)
            .field("target", &self.target)
            .field("is_async", &self.is_async)
            .finish_non_exhaustive()
    }
}

/// A message a client sent to the Logging service (`PUT /log`, what the JS
/// SDK's `Backendless.Logging` flushes).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogMessage {
    /// The logger's name.
    pub logger: String,
    /// `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL` or `TRACE`, as sent.
    pub level: String,
    /// The message.
    pub message: String,
    /// The exception text, if any.
    pub exception: Option<String>,
    /// The client's timestamp (ms since the epoch), if sent.
    pub timestamp: Option<i64>,
    /// The user whose token came with the message, if any.
    pub user_id: Option<String>,
}

/// The recorded history, shared by the emulator and its [`Inspector`]s.
pub(crate) struct Log {
    requests: Mutex<VecDeque<RequestRecord>>,
    capacity: usize,
    logins: Mutex<BTreeMap<String, u64>>,
    tasks: Mutex<VecDeque<SentTask>>,
    messages: Mutex<VecDeque<LogMessage>>,
    /// Published messages and pushes (captured, not delivered).
    sent_messages: Mutex<VecDeque<super::messaging::SentMessage>>,
    /// Emails (captured, not sent).
    sent_emails: Mutex<VecDeque<super::messaging::SentEmail>>,
}

impl Log {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            requests: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            logins: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(VecDeque::new()),
            messages: Mutex::new(VecDeque::new()),
            sent_messages: Mutex::new(VecDeque::new()),
            sent_emails: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn sent_message(&self, m: super::messaging::SentMessage) {
        push_bounded(&self.sent_messages, self.capacity, m);
    }

    pub(crate) fn sent_email(&self, m: super::messaging::SentEmail) {
        push_bounded(&self.sent_emails, self.capacity, m);
    }

    pub(crate) fn message(&self, m: LogMessage) {
        let mut q = self.messages.lock();
        if q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(m);
    }

    pub(crate) fn request(&self, r: RequestRecord) {
        let mut q = self.requests.lock();
        if q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(r);
    }

    pub(crate) fn login(&self, login: &str) {
        *self
            .logins
            .lock()
            .entry(login.to_ascii_lowercase())
            .or_insert(0) += 1;
    }

    /// The recorded task with this id, if still kept.
    pub(crate) fn task_by_id(&self, id: &str) -> Option<SentTask> {
        self.tasks
            .lock()
            .iter()
            .rev()
            .find(|t| t.body.get("id").and_then(Value::as_str) == Some(id))
            .cloned()
    }

    pub(crate) fn task(&self, t: SentTask) {
        let mut q = self.tasks.lock();
        if q.len() >= self.capacity {
            q.pop_front();
        }
        q.push_back(t);
    }
}

fn push_bounded<T>(queue: &Mutex<VecDeque<T>>, capacity: usize, item: T) {
    let mut q = queue.lock();
    if q.len() >= capacity {
        q.pop_front();
    }
    q.push_back(item);
}

/// A handle on what the emulator saw. Cheap to clone.
#[derive(Clone)]
pub struct Inspector {
    pub(crate) log: Arc<Log>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) store: crate::emulator::store::Store,
    /// The runner's handler list, when a runner is linked.
    pub(crate) handlers: Option<Arc<Mutex<super::dispatch::HandlerList>>>,
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inspector")
    }
}

impl Inspector {
    /// The logged requests, oldest first (bounded ring buffer).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.requests.lock().iter().cloned().collect()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.log.requests.lock().clear();
    }

    /// Successful logins per login (lower-cased email).
    pub fn logins(&self) -> BTreeMap<String, u64> {
        self.log.logins.lock().clone()
    }

    /// Successful logins of one login (email, any case).
    pub fn login_count(&self, login: &str) -> u64 {
        self.log
            .logins
            .lock()
            .get(&login.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Ends every session of a user (by objectId or email), as if they had
    /// expired: their tokens now get 3064. Returns how many ended.
    pub fn expire_sessions(&self, user: &str) -> usize {
        self.sessions.close_user(user)
    }

    /// Makes the runner's handler list due for a refresh at the next
    /// request, as if its time (1 s) had passed; the current list stays the
    /// last good one, used if the refresh fails.
    pub fn expire_handler_list(&self) {
        if let Some(list) = &self.handlers {
            list.lock().expire();
        }
    }

    /// Every row of `table`, oldest first, read directly from the store
    /// (no permission check): what handlers and clients wrote.
    pub fn rows(&self, table: &str) -> Vec<serde_json::Value> {
        let table = table.to_owned();
        self.store
            .call_sync(move |c| crate::emulator::store::all(c, &table))
            .unwrap_or_default()
            .into_iter()
            .map(serde_json::Value::Object)
            .collect()
    }

    /// The tasks sent to the runner, oldest first.
    pub fn tasks(&self) -> Vec<SentTask> {
        self.log.tasks.lock().iter().cloned().collect()
    }

    /// The messages clients sent to the Logging service, oldest first.
    pub fn log_messages(&self) -> Vec<LogMessage> {
        self.log.messages.lock().iter().cloned().collect()
    }

    /// Published messages and push notifications, oldest first (captured,
    /// not delivered).
    pub fn messages(&self) -> Vec<super::messaging::SentMessage> {
        self.log.sent_messages.lock().iter().cloned().collect()
    }

    /// Emails (basic, template, password recovery), oldest first (captured,
    /// not sent).
    pub fn emails(&self) -> Vec<super::messaging::SentEmail> {
        self.log.sent_emails.lock().iter().cloned().collect()
    }
}

/// GET /__emulator/requests (tokens and keys masked)
pub(crate) async fn inspect_requests(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    let requests: Vec<_> = inspector.requests().iter().map(|r| r.masked()).collect();
    Json(json!(requests))
}

/// GET /__emulator/logins
pub(crate) async fn inspect_logins(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    Json(json!(inspector.logins()))
}

/// GET /__emulator/tasks (tokens, keys and passwords masked)
pub(crate) async fn inspect_tasks(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    let tasks: Vec<_> = inspector.tasks().iter().map(|t| t.masked()).collect();
    Json(json!(tasks))
}

/// GET /__emulator/log
pub(crate) async fn inspect_log(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    Json(json!(inspector.log_messages()))
}

/// GET /__emulator/messages
pub(crate) async fn inspect_messages(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    Json(json!(inspector.messages()))
}

/// GET /__emulator/emails
pub(crate) async fn inspect_emails(State(st): State<Shared>) -> Json<Value> {
    let inspector = super::Emulator { state: st }.inspect();
    Json(json!(inspector.emails()))
}

/// POST /__emulator/sessions/{user}/expire -> {"expired": n}
pub(crate) async fn inspect_expire(State(st): State<Shared>, Path(p): PathParams) -> Json<Value> {
    let n = st.sessions.close_user(path_param(&p, "user"));
    Json(json!({"expired": n}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GET /__emulator/requests from `peer` (none: served without peer
    /// addresses) with an optional inspection token.
    async fn inspect_from(
        emu: &super::super::Emulator,
        peer: Option<[u8; 4]>,
        token: Option<&str>,
    ) -> StatusCode {
        use tower::ServiceExt;
        let mut req = axum::http::Request::get("/__emulator/requests");
        if let Some(t) = token {
            req = req.header(super::super::INSPECT_TOKEN_HEADER, t);
        }
        let mut req = req.body(axum::body::Body::empty()).unwrap();
        if let Some(ip) = peer {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    ip, 40000,
                ))));
        }
        emu.router().oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn inspection_from_another_host_needs_the_token() {
        let emu = super::super::Emulator::new(super::super::EmulatorConfig::dev()).unwrap();
        let token = emu.inspect_token().to_owned();
        assert!(token.len() >= 32, "{token}");
        assert_eq!(
            inspect_from(&emu, Some([127, 0, 0, 1]), None).await,
            StatusCode::OK
        );
        assert_eq!(
            inspect_from(&emu, Some([10, 0, 0, 7]), None).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            inspect_from(&emu, Some([10, 0, 0, 7]), Some("guess")).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            inspect_from(&emu, Some([10, 0, 0, 7]), Some(&token)).await,
            StatusCode::OK
        );
        // A server that does not know its peers fails closed.
        assert_eq!(inspect_from(&emu, None, None).await, StatusCode::FORBIDDEN);
        assert_eq!(inspect_from(&emu, None, Some(&token)).await, StatusCode::OK);
    }

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            method: "GET".into(),
            path: path.into(),
            user_token: Some("SECRET-TOKEN".into()),
            user_id: None,
            key_kind: None,
            status: 200,
        }
    }

    #[test]
    fn request_log_is_a_bounded_ring() {
        let log = Log::new(2);
        for p in ["/a", "/b", "/c"] {
            log.request(record(p));
        }
        let paths: Vec<String> = log.requests.lock().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths, ["/b", "/c"]);
        assert!(!format!("{:?}", record("/x")).contains("SECRET-TOKEN"));
        let shown = format!("{:?}", record("/a/k/users/isvalidusertoken/SECRET-TOKEN"));
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
        let shown = format!("{:?}", record("/app/dev-cloudcode-key/data/Post"));
        assert!(!shown.contains("dev-cloudcode-key"), "{shown}");
    }

    #[test]
    fn masks_keep_at_most_a_short_prefix() {
        assert_eq!(mask("3F2A9C1E-AAAA-BBBB"), "3F2A…");
        assert_eq!(mask("abc"), "…");
        assert_eq!(
            mask_path("/app/dev-cloudcode-key/users/isvalidusertoken/ABCDEFGHIJ"),
            "/app/dev-…/users/isvalidusertoken/ABCD…"
        );
        let mut body = serde_json::json!({
            "initAppData": {"url": "http://x", "apiKey": "dev-cloudcode-key"},
            "arguments": [{"userToken": "ABCDEFGHIJKL", "httpHeaders": {"User-Token": "ABCDEFGHIJKL"}}],
        });
        mask_secrets(&mut body);
        let text = body.to_string();
        assert!(
            !text.contains("ABCDEFGHIJKL") && !text.contains("dev-cloudcode-key"),
            "{text}"
        );
        assert_eq!(body["initAppData"]["url"], "http://x");
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8100",
            "127.0.0.1:8100",
            "[::1]:8100",
            "127.1.2.3",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8100",
            "10.0.0.1:8100",
            "[::2]",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
