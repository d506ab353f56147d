//! The runner's web console (`/console`, `[console]`): a read-only page over
//! what the runner already records — the registry (handlers, timers,
//! services, custom events as the model), the ring of recent invocations
//! with their backend calls (`invocation_log.rs`), throughput and latency
//! sampled from the figures `/metrics` exports, and the superuser session's
//! state. It adds no second source of truth.
//!
//! With a token configured, every route but the login page needs it (the
//! `Authorization: Bearer` header, or the cookie the login page sets, which
//! is an HMAC of the token, not the token); without one, only loopback
//! clients naming a loopback host are answered. No route returns a token, a
//! key or a password.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::error::ErrorReply;
use crate::dispatch::Dispatcher;
use crate::invocation_log::{Filter, InvocationLog};

/// Where the console's routes live.
pub(crate) const PREFIX: &str = "/console";

/// The cookie the login page sets.
const COOKIE: &str = "coderunner_console";

/// How often the metrics are sampled for the charts.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Samples kept: six minutes.
pub(crate) const SAMPLES: usize = 72;

/// The most invocations one read returns.
const MAX_READ: usize = 200;

const RUNNER_HTML: &str = include_str!("../../assets/console/runner.html");
const LOGIN_HTML: &str = include_str!("../../assets/console/login.html");
const RUNNER_JS: &str = include_str!("../../assets/console/runner.js");
const CONSOLE_CSS: &str = include_str!("../../assets/console/console.css");
/// The pages' Content-Security-Policy.
const CSP: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

/// The superuser session's state as JSON; the server knows nothing of the
/// SDK, the runner supplies this.
pub(crate) type SessionHook = Arc<dyn Fn() -> Value + Send + Sync>;

/// One reading of the process's invocation metrics (totals since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Sample {
    /// When it was read, ms since the Unix epoch.
    pub(crate) at_ms: u64,
    /// `coderunner_invocations_total`, all labels.
    pub(crate) invocations: f64,
    /// The same, outcomes other than `ok`.
    pub(crate) failures: f64,
    /// `coderunner_invocation_duration_seconds_sum`.
    pub(crate) duration_sum: f64,
    /// `coderunner_invocation_duration_seconds_count`.
    pub(crate) duration_count: f64,
}

/// Sums the invocation figures of a Prometheus text rendering.
pub(crate) fn sample_of(text: &str, at_ms: u64) -> Sample {
    let mut sample = Sample {
        at_ms,
        ..Sample::default()
    };
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "coderunner_invocations_total" => {
                sample.invocations += value;
                if !series.contains("outcome=\"ok\"") {
                    sample.failures += value;
                }
            }
            "coderunner_invocation_duration_seconds_sum" => sample.duration_sum += value,
            "coderunner_invocation_duration_seconds_count" => sample.duration_count += value,
            _ => {}
        }
    }
    sample
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The console's state.
pub(crate) struct Console {
    dispatcher: Dispatcher,
    log: Arc<InvocationLog>,
    /// `None`: loopback clients only.
    token: Option<SecretString>,
    /// The cookie value that proves a login: HMAC-SHA256 of a fixed text
    /// keyed by the token, hex. Never the token itself.
    cookie: Option<String>,
    session: Option<SessionHook>,
    /// Metrics readings for the charts, oldest first, at most [`SAMPLES`].
    samples: Mutex<VecDeque<Sample>>,
    /// Other consoles to link to (the emulator's, in `coderunner dev`).
    links: Mutex<Vec<(String, String)>>,
}

impl Console {
    /// A console over `dispatcher`'s invocation log; `token` empty = loopback only.
    pub(crate) fn new(
        dispatcher: Dispatcher,
        log: Arc<InvocationLog>,
        token: &SecretString,
        session: Option<SessionHook>,
    ) -> Self {
        let token = Some(token.clone()).filter(|t| !t.expose_secret().is_empty());
        let cookie = token.as_ref().map(|t| cookie_value(t.expose_secret()));
        Self {
            dispatcher,
            log,
            token,
            cookie,
            session,
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            links: Mutex::new(Vec::new()),
        }
    }

    /// Adds a link shown in the console's header.
    #[cfg(feature = "emulator")]
    pub(crate) fn link(&self, label: &str, url: &str) {
        self.links.lock().push((label.to_owned(), url.to_owned()));
    }

    /// Takes one metrics reading now.
    pub(crate) fn sample(&self) {
        let text = crate::telemetry::metrics().render();
        let sample = sample_of(&text, now_ms());
        let mut samples = self.samples.lock();
        if samples.len() >= SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Samples the metrics every [`SAMPLE_INTERVAL`] until `stop`.
    pub(crate) fn spawn_sampler(self: &Arc<Self>, stop: CancellationToken) {
        let console = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => console.sample(),
                    () = stop.cancelled() => return,
                }
            }
        });
    }

    /// The readings kept, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.samples.lock().iter().copied().collect()
    }

    /// The console's routes, under [`PREFIX`].
    pub(crate) fn router(self: &Arc<Self>) -> Router {
        let at = |path: &str| format!("{PREFIX}{path}");
        let guarded = Router::new()
            .route(&at("/"), get(page))
            .route(&at("/assets/runner.js"), get(js))
            .route(&at("/api/overview"), get(overview))
            .route(&at("/api/invocations"), get(invocations))
            .route(&at("/api/metrics"), get(metrics))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(self),
                guard,
            ));
        // The login page and its stylesheet hold nothing to protect; the
        // bare prefix goes to the page (whose asset paths are relative).
        Router::new()
            .route(&at("/login"), get(login_page).post(login))
            .route(&at("/assets/console.css"), get(css))
            .route(PREFIX, get(|| async { redirect(&format!("{PREFIX}/")) }))
            .merge(guarded)
            .with_state(Arc::clone(self))
    }
}

/// HMAC-SHA256 of a fixed text keyed by `token`, hex.
fn cookie_value(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(b"coderunner console session");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a `Host` header names this machine.
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

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the request may see the console.
fn allowed(console: &Console, req: &Request) -> bool {
    let headers = req.headers();
    match (&console.token, &console.cookie) {
        (Some(token), Some(cookie)) => {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|v| ct_eq(v.trim(), token.expose_secret()));
            bearer || cookie_of(headers, COOKIE).is_some_and(|v| ct_eq(v, cookie))
        }
        _ => {
            let peer_ok = req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .is_some_and(|ConnectInfo(addr)| addr.ip().to_canonical().is_loopback());
            let host_ok = headers
                .get(header::HOST)
                .is_none_or(|h| h.to_str().is_ok_and(is_loopback_host));
            peer_ok && host_ok
        }
    }
}

async fn guard(State(console): State<Arc<Console>>, req: Request, next: Next) -> Response {
    if allowed(&console, &req) {
        return next.run(req).await;
    }
    if console.token.is_some() && req.uri().path() == format!("{PREFIX}/") {
        return redirect(&format!("{PREFIX}/login"));
    }
    let message = if console.token.is_some() {
        "the console needs its token: sign in at /console/login, or send `Authorization: Bearer <console.token>`"
    } else {
        "the console has no token configured (`console.token`), so it answers loopback clients only"
    };
    ErrorReply::new(StatusCode::UNAUTHORIZED, "console_unauthorized", message).into_response()
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_str(to).expect("a path"))],
    )
        .into_response()
}

/// A static asset of a console (this one's or the emulator's), with
/// headers that keep the page to its own origin: `csp` is the page's
/// Content-Security-Policy.
pub(crate) fn asset(csp: &'static str, content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset(CSP, "text/html; charset=utf-8", RUNNER_HTML)
}

async fn css() -> Response {
    asset(CSP, "text/css; charset=utf-8", CONSOLE_CSS)
}

async fn js() -> Response {
    asset(CSP, "text/javascript; charset=utf-8", RUNNER_JS)
}

async fn login_page() -> Response {
    asset(CSP, "text/html; charset=utf-8", LOGIN_HTML)
}

/// `POST /console/login` with the form field `token`: sets the cookie and
/// goes to the console, or 401.
async fn login(State(console): State<Arc<Console>>, body: Bytes) -> Response {
    let (Some(token), Some(cookie)) = (&console.token, &console.cookie) else {
        return redirect(&format!("{PREFIX}/"));
    };
    let given = std::str::from_utf8(&body)
        .ok()
        .into_iter()
        .flat_map(|b| b.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned()
        });
    if !given.is_some_and(|g| ct_eq(g.trim(), token.expose_secret())) {
        tracing::warn!("console login refused: wrong token");
        return ErrorReply::new(
            StatusCode::UNAUTHORIZED,
            "console_unauthorized",
            "that is not the console's token (`console.token`)",
        )
        .into_response();
    }
    let mut response = redirect(&format!("{PREFIX}/"));
    let set = format!("{COOKIE}={cookie}; Path={PREFIX}; HttpOnly; SameSite=Strict");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set).expect("hex and fixed text"),
    );
    response
}

async fn overview(State(console): State<Arc<Console>>) -> Response {
    let registry = console.dispatcher.registry();
    let links: Vec<Value> = console
        .links
        .lock()
        .iter()
        .map(|(label, url)| json!({"label": label, "url": url}))
        .collect();
    Json(json!({
        "handlers": registry.handlers(),
        "model": crate::model::Model::of(registry),
        "session": console.session.as_ref().map(|status| status()),
        "ring": {
            "capacity": console.log.capacity(),
            "held": console.log.len(),
            "heapBytes": console.log.heap_bytes(),
        },
        "sampleIntervalSecs": SAMPLE_INTERVAL.as_secs(),
        "links": links,
    }))
    .into_response()
}

/// The query of `GET /console/api/invocations`.
#[derive(Debug, Deserialize)]
struct InvocationQuery {
    /// Only invocations recorded after this `seq`.
    #[serde(default)]
    after: u64,
    /// Only this outcome (`ok`, `error`, ...).
    outcome: Option<String>,
    /// Only this event name.
    event: Option<String>,
    /// At most this many (up to 200).
    limit: Option<usize>,
}

async fn invocations(
    State(console): State<Arc<Console>>,
    query: Result<Query<InvocationQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(e) => {
            return ErrorReply::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
                .into_response();
        }
    };
    let filter = Filter {
        after: query.after,
        outcome: query.outcome.filter(|o| !o.is_empty()),
        event: query.event.filter(|e| !e.is_empty()),
        limit: query.limit.unwrap_or(MAX_READ).min(MAX_READ),
    };
    Json(json!({
        "latest": console.log.latest(),
        "invocations": console.log.read(&filter),
    }))
    .into_response()
}

async fn metrics(State(console): State<Arc<Console>>) -> Response {
    let current = sample_of(&crate::telemetry::metrics().render(), now_ms());
    Json(json!({
        "intervalSecs": SAMPLE_INTERVAL.as_secs(),
        "samples": console.samples(),
        "current": current,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sum_the_exported_invocation_figures() {
        let text = "\
# TYPE coderunner_invocations_total counter
coderunner_invocations_total{provider=\"data\",event=\"beforeCreate\",target=\"Post\",outcome=\"ok\"} 7
coderunner_invocations_total{provider=\"data\",event=\"beforeCreate\",target=\"Post\",outcome=\"error\"} 2
coderunner_invocations_total{provider=\"data\",event=\"afterCreate\",target=\"Post\",outcome=\"ok\"} 3
coderunner_invocation_duration_seconds_bucket{provider=\"data\",event=\"beforeCreate\",target=\"Post\",le=\"0.001\"} 4
coderunner_invocation_duration_seconds_sum{provider=\"data\",event=\"beforeCreate\",target=\"Post\"} 0.25
coderunner_invocation_duration_seconds_count{provider=\"data\",event=\"beforeCreate\",target=\"Post\"} 9
coderunner_invocation_duration_seconds_sum{provider=\"data\",event=\"afterCreate\",target=\"Post\"} 0.5
coderunner_invocation_duration_seconds_count{provider=\"data\",event=\"afterCreate\",target=\"Post\"} 3
coderunner_backend_requests_total{service=\"data\",identity=\"caller\",outcome=\"ok\"} 100
";
        let s = sample_of(text, 42);
        assert_eq!(s.at_ms, 42);
        assert_eq!(s.invocations, 12.0);
        assert_eq!(s.failures, 2.0);
        assert_eq!(s.duration_sum, 0.75);
        assert_eq!(s.duration_count, 12.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_charts_are_sampled_on_their_interval_and_keep_six_minutes() {
        let dispatcher = Dispatcher::new(
            Arc::new(crate::registry::Registry::new()),
            crate::dispatch::TaskLimits::default(),
        );
        let log = Arc::new(InvocationLog::new(10));
        let console = Arc::new(Console::new(
            dispatcher,
            log,
            &SecretString::from(String::new()),
            None,
        ));
        let stop = CancellationToken::new();
        console.spawn_sampler(stop.clone());
        // The first reading is taken at once, then one per interval.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(console.samples().len(), 1);
        tokio::time::sleep(SAMPLE_INTERVAL * 3).await;
        assert_eq!(console.samples().len(), 4);
        tokio::time::sleep(SAMPLE_INTERVAL * 200).await;
        assert_eq!(console.samples().len(), SAMPLES);
        stop.cancel();
        tokio::time::sleep(SAMPLE_INTERVAL * 5).await;
        let kept = console.samples();
        assert_eq!(kept.len(), SAMPLES);
        assert!(kept.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }

    #[test]
    fn the_cookie_is_not_the_token() {
        let value = cookie_value("console-secret");
        assert_eq!(value.len(), 64);
        assert!(!value.contains("console-secret"));
        assert_ne!(value, cookie_value("another"));
    }
}
