//! A local emulator of the Backendless REST API on SQLite that fires business
//! logic: users and sessions, data with table permissions and where clauses,
//! cache and counters, and dispatch of data and user events to a runner as
//! signed tasks. See `docs/emulator.md`.
//!
//! This module serves HTTP and calls the runner over HTTP; it must not depend
//! on the runner's or the SDK's internals.
//!
//! # Example
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use coderunner::emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::new(EmulatorConfig::dev())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let inspect = emulator.inspect();
//! tokio::spawn(emulator.serve(listener, std::future::pending()));
//! assert_eq!(inspect.login_count("alice@example.com"), 0);
//! # Ok(()) }
//! ```

mod auth;
mod cache;
mod client_log;
mod config;
mod console;
mod counters;
mod data;
mod dispatch;
mod error;
mod files;
mod inspect;
mod messaging;
mod redis_link;
mod security;
mod servercode;
mod services;
mod sessions;
mod store;
mod timers;
mod users;
mod where_clause;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post, put};
use serde_json::{Map, Value};

pub use auth::Requester;
pub use config::{
    Access, ApiKeyConfig, Cardinality, DirectoryConfig, EmulatorConfig, FileOperation,
    FileRolePermissions, KeyKind, LinkTransport, Operation, RelationConfig, RolePermissions,
    RunnerLinkConfig, Secret, TableConfig, UserConfig,
};
pub use error::ApiError;
pub use inspect::{
    Inspector, LogMessage, RequestRecord, SentTask, TOKEN_HEADER as INSPECT_TOKEN_HEADER,
};
pub use messaging::{SentEmail, SentMessage};
pub use where_clause::{SqlCondition, compile as compile_where};

/// Everything the routes share.
pub(crate) struct AppState {
    config: EmulatorConfig,
    /// API key -> its kind.
    keys: HashMap<String, KeyKind>,
    store: store::Store,
    permissions: security::Permissions,
    sessions: Arc<sessions::Sessions>,
    cache: cache::CacheStore,
    counters: counters::CounterStore,
    dispatcher: dispatch::RunnerLink,
    log: Arc<inspect::Log>,
    /// Lets a non-loopback client use `/__emulator/*` (header
    /// `x-emulator-token`); random per start.
    inspect_token: String,
    /// Recent deployments' status logs.
    deploys: servercode::Deploys,
    /// The file storage.
    files: files::FileStore,
    /// The users the console logged in, with their sessions.
    acting: console::ActingAs,
}

pub(crate) type Shared = Arc<AppState>;

/// The emulator. Cheap to clone.
#[derive(Clone)]
pub struct Emulator {
    state: Shared,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("app_id", &self.state.config.app_id)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Opens or creates the database and seeds the configured users
    /// (idempotent: existing users are left alone).
    pub fn new(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        config.validate()?;
        let store = store::Store::open(&config.database)?;
        for user in &config.users {
            store
                .call_sync(|c| -> Result<(), store::StorageError> {
                    if !store::login_exists(c, &user.email)? {
                        let mut obj = Map::new();
                        obj.insert("email".into(), Value::String(user.email.clone()));
                        store::create_user(c, obj, user.password.expose(), &user.roles)?;
                    }
                    Ok(())
                })
                .with_context(|| format!("while seeding user {}", user.email))?;
        }
        for r in &config.relations {
            store
                .call_sync(|c| {
                    store::declare_relation(
                        c,
                        &r.table,
                        &r.column,
                        &r.child,
                        r.cardinality == config::Cardinality::Many,
                    )
                })
                .with_context(|| {
                    format!("while declaring the relation {}.{}", r.table, r.column)
                })?;
        }
        let log = Arc::new(inspect::Log::new(config.request_log_capacity));
        let files = files::FileStore::new(&config)?;
        let state = AppState {
            keys: config
                .keys
                .iter()
                .map(|k| (k.key.clone(), k.kind))
                .collect(),
            permissions: security::Permissions::new(&config),
            sessions: Arc::new(sessions::Sessions::new(
                Duration::from_secs(config.session_timeout_secs),
                config.max_sessions_per_user,
            )),
            cache: cache::CacheStore::new(config.cache_max_entries),
            counters: counters::CounterStore::default(),
            dispatcher: dispatch::RunnerLink::new(&config, log.clone())?,
            store,
            log,
            config,
            inspect_token: uuid::Uuid::new_v4().simple().to_string(),
            deploys: servercode::Deploys::default(),
            files,
            acting: console::ActingAs::default(),
        };
        Ok(Emulator {
            state: Arc::new(state),
        })
    }

    /// The HTTP routes (Backendless API under `/{appId}/{apiKey}/`, inspection
    /// under `/__emulator/`).
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/info", get(client_log::info))
            .route("/log", put(client_log::log_messages))
            // users
            .route("/users/register", post(users::register))
            .route("/users/login", post(users::login))
            .route("/users/logout", get(users::logout))
            .route(
                "/users/isvalidusertoken/{token}",
                get(users::is_valid_token),
            )
            .route("/users/verifypassword", post(users::verify_password))
            // JS SDK v8 spells it so (`urls.userVerifyPassowrd`).
            .route("/users/verifypassowrd", post(users::verify_password))
            .route("/users/userroles", get(users::user_roles))
            .route("/users/userroles/{id}", get(users::roles_of))
            .route("/users/assignRole", post(users::assign_role))
            .route("/users/unassignRole", post(users::unassign_role))
            .route(
                "/users/restorepassword/{identity}",
                get(users::restore_password),
            )
            .route("/users/{id}/status", put(users::set_status))
            .route("/users/{id}", put(users::update))
            // messaging
            .route("/messaging/email", post(messaging::send_email))
            .route("/messaging/push/{template}", post(messaging::push_template))
            .route("/messaging/{channel}", post(messaging::publish))
            .route("/emailtemplate/send", post(messaging::send_email_template))
            // data
            .route(
                "/data/{table}",
                post(data::create).put(data::save).get(data::find),
            )
            .route("/data/{table}/find", post(data::find))
            .route("/data/{table}/upsert", put(data::upsert))
            .route("/data/bulkupsert/{table}", put(data::bulk_upsert))
            .route("/data/{table}/count", get(data::count).post(data::count))
            .route(
                "/data/{table}/{id}",
                get(data::find_by_id).put(data::update).delete(data::remove),
            )
            .route(
                "/data/bulk/{table}",
                post(data::bulk_create)
                    .put(data::bulk_update)
                    .delete(data::bulk_delete_query),
            )
            .route("/data/bulk/{table}/delete", post(data::bulk_delete_body))
            .route(
                "/data/{table}/{id}/{relation}",
                get(data::load_relation)
                    .post(data::set_relation)
                    .put(data::add_relation)
                    .delete(data::delete_relation),
            )
            .route("/transaction/unit-of-work", post(data::unit_of_work))
            // cache
            .route(
                "/cache/{key}",
                put(cache::cache_put)
                    .get(cache::cache_get)
                    .delete(cache::cache_delete),
            )
            .route("/cache/{key}/check", get(cache::cache_check))
            .route("/cache/{key}/expireIn", put(cache::cache_expire_in))
            .route("/cache/{key}/expireAt", put(cache::cache_expire_at))
            // counters
            .route("/counters/{name}", get(counters::counter_get))
            .route("/counters/{name}/list", get(counters::counter_list))
            .route("/counters/{name}/reset", put(counters::counter_reset))
            .route(
                "/counters/{name}/get/compareandset",
                put(counters::counter_cas),
            )
            .route("/counters/{name}/{a}/{b}", put(counters::counter_op))
            // business logic management (runners linked over Redis)
            .route(
                "/servercode/registerRunner/{lang}",
                post(servercode::register_runner),
            )
            .route(
                "/servercode/events/{name}",
                post(servercode::dispatch_event),
            )
            .route(
                "/services/{service}/{*path}",
                axum::routing::any(services::call_service),
            )
            .route(
                "/servercode/registermodel",
                post(servercode::register_model),
            )
            .route(
                "/servercode/unregisterRunner",
                get(servercode::unregister_runner),
            )
            .route(
                "/servercode/publishcode/async/{lang}",
                post(servercode::publish_code),
            )
            .route(
                "/servercode/publishcode/status/{deploy_id}",
                get(servercode::publish_status),
            )
            .merge(
                Router::new()
                    .route("/files", get(files::get))
                    .route("/files/", get(files::get))
                    .route("/files/copy", put(files::copy))
                    .route("/files/move", put(files::move_to))
                    .route("/files/rename", put(files::rename))
                    .route("/files/binary/{*path}", put(files::save_binary))
                    .route(
                        "/files/{*path}",
                        get(files::get).post(files::upload).delete(files::remove),
                    )
                    .layer(axum::extract::DefaultBodyLimit::max(files::BODY_LIMIT)),
            )
            .method_not_allowed_fallback(error::method_not_allowed);
        let inspection = Router::new()
            .route("/requests", get(inspect::inspect_requests))
            .route("/logins", get(inspect::inspect_logins))
            .route("/tasks", get(inspect::inspect_tasks))
            .route("/log", get(inspect::inspect_log))
            .route("/messages", get(inspect::inspect_messages))
            .route("/emails", get(inspect::inspect_emails))
            .route("/sessions/{user}/expire", post(inspect::inspect_expire))
            .route("/timers/{name}/run", post(servercode::run_timer))
            .merge(console::router())
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                inspect::guard,
            ));
        Router::new()
            .nest("/{app_id}/{api_key}", api)
            .nest("/__emulator", inspection)
            .fallback(error::not_found)
            .method_not_allowed_fallback(error::method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                auth::log_requests,
            ))
            .layer(axum::middleware::from_fn(cors))
            .layer(tower_http::catch_panic::CatchPanicLayer::new())
            .with_state(self.state.clone())
    }

    /// Serves the routes on `listener` until `shutdown` completes. Each
    /// request knows its peer's address (the inspection routes need it).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            self.state
                .dispatcher
                .set_callback_url(format!("http://{addr}"));
        }
        let router = self.router();
        // The runners' timers fire while the emulator serves.
        let stop = tokio_util::sync::CancellationToken::new();
        let state = self.state.clone();
        let timers_stop = stop.clone();
        tokio::spawn(timers::run(
            move || {
                let state = state.clone();
                Box::pin(async move { state.dispatcher.timers().await })
            },
            {
                let state = self.state.clone();
                move |name: String| {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = state.dispatcher.fire_timer(&name).await {
                            tracing::warn!(timer = %name, error = %e, "emulator.timer_failed");
                        }
                    });
                }
            },
            crate::timer::Clock::system(),
            timers_stop.cancelled_owned(),
        ));
        let _stop_timers = stop.drop_guard();
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }

    /// A handle on what the emulator saw (requests, logins, tasks) that can
    /// also end sessions.
    pub fn inspect(&self) -> Inspector {
        Inspector {
            log: self.state.log.clone(),
            sessions: self.state.sessions.clone(),
            store: self.state.store.clone(),
            handlers: self.state.dispatcher.handler_list(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EmulatorConfig {
        &self.state.config
    }

    /// The token that lets a client that is not on this machine use the
    /// inspection routes (`/__emulator/*`): send it in the header
    /// `x-emulator-token`. Random for each emulator; `coderunner dev` prints it.
    pub fn inspect_token(&self) -> &str {
        &self.state.inspect_token
    }
}

/// Lets browser apps call the Backendless API of the emulator: answers
/// preflights and allows any origin (the JS SDK in Node needs none of it).
/// Not the inspection routes: no web page may read them.
async fn cors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, Method, StatusCode, header};
    use axum::response::IntoResponse;
    if req.uri().path().starts_with("/__emulator") {
        return next.run(req).await;
    }
    let mut response = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "content-type, user-token, application-id, secret-key, application-type",
        ),
    );
    response
}

/// A route's path parameters (`{table}`, `{id}`, `{key}`, ...).
pub(crate) type PathParams = axum::extract::Path<HashMap<String, String>>;

/// A route's reply: a JSON body, or a Backendless error.
pub(crate) type Reply = Result<axum::Json<Value>, ApiError>;

/// Parses a JSON body; 8002 when it is not JSON. An empty body is `null`.
pub(crate) fn json_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(ApiError::parse)
}

/// Parses a JSON object body; 8002 otherwise.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match json_body(bytes)? {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(ApiError::parse(format!(
            "expected a JSON object, got {}",
            kind_of(&other)
        ))),
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A path parameter; empty when the route has none of that name.
pub(crate) fn path_param<'a>(p: &'a HashMap<String, String>, name: &str) -> &'a str {
    p.get(name).map_or("", String::as_str)
}

/// An integer query parameter, if given; 8002 when it is not an integer.
pub(crate) fn int_query(uri: &axum::http::Uri, name: &str) -> Result<Option<i64>, ApiError> {
    match query_map(uri).get(name) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| {
                ApiError::parse(format!("query parameter `{name}` must be an integer"))
            })
        }
    }
}

/// A required integer query parameter; 8002 when missing or not an integer.
pub(crate) fn required_int(uri: &axum::http::Uri, name: &str) -> Result<i64, ApiError> {
    int_query(uri, name)?
        .ok_or_else(|| ApiError::parse(format!("query parameter `{name}` is required")))
}

/// The decoded query string.
pub(crate) fn query_map(uri: &axum::http::Uri) -> HashMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// One request through the router, for unit tests: (status, JSON body).
#[cfg(test)]
pub(crate) async fn test_call(
    emu: &Emulator,
    method: axum::http::Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (axum::http::StatusCode, Value) {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("user-token", t);
    }
    let mut req = req
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    // As `serve` does: the peer of a local client.
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let resp = emu.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, json_body(&bytes).unwrap())
}
