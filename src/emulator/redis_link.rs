//! The emulator's side of Backendless's Redis task transport
//! (`[emulator.runner] transport = "redis"`): it pushes each task onto a
//! list and waits for the reply on the task's Pub/Sub channel, as a
//! Backendless server does.
//!
//! Which list: the app id's own list while a debug runner is registered and
//! its session key lives (`coderunner debug`, or the official CLI's debug
//! mode), else the production list (`queue`, `CODE_RUNNER_DRIVER`) for the
//! events of a deployed model. The models come from the management routes
//! of `servercode.rs`.

use crate::event::EventId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use serde_json::Value;
use tokio::sync::{OnceCell, oneshot};

use super::dispatch::{RemoteHandler, ServiceDecl};
use super::error::ApiError;
use crate::event::wire::InvocationResult;
use crate::timer::Schedule;
use crate::transport::framing;

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a debug session key lives without a keep-alive (the official
/// runner renews it every 45 s).
pub(crate) const DEBUG_SESSION_TTL_SECS: u64 = 60;

/// A debug runner's registration.
#[derive(Debug, Clone)]
pub(crate) struct DebugRunner {
    /// The Redis key whose life is the session's.
    pub(crate) debug_id: String,
    /// Its model's handlers, once registered.
    pub(crate) handlers: Option<Arc<Vec<RemoteHandler>>>,
    /// Its model's timers.
    pub(crate) timers: Vec<(String, Schedule)>,
    /// Its model's API services.
    pub(crate) services: Vec<ServiceDecl>,
}

/// The business logic the server knows of: a debug runner's model and the
/// deployed model.
#[derive(Debug, Default)]
pub(crate) struct Models {
    pub(crate) debug: Option<DebugRunner>,
    pub(crate) deployed: Option<Arc<Vec<RemoteHandler>>>,
    /// The deployed model's timers.
    pub(crate) deployed_timers: Vec<(String, Schedule)>,
    /// The deployed model's API services.
    pub(crate) deployed_services: Vec<ServiceDecl>,
}

/// Where a task goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The debug runner's list (the app id).
    Debug,
    /// The production list.
    Production,
}

/// Replies by channel, for the tasks waiting for one.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>>;

/// Pushes tasks through Redis and collects their replies.
pub(crate) struct RedisLink {
    client: Client,
    /// The production list.
    queue: String,
    /// The debug list: the app id.
    debug_queue: String,
    compression: bool,
    /// The task `timeout` (ms) given to handlers.
    pub(crate) timeout_ms: u64,
    pub(crate) record_dir: Option<std::path::PathBuf>,
    pub(crate) models: Arc<Mutex<Models>>,
    /// Reply channels of this emulator start with this.
    reply_prefix: String,
    pending: Pending,
    /// The reply listener, started at the first task.
    listener: OnceCell<()>,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// Stops the reply listener when the link goes.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for RedisLink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisLink {
    pub(crate) fn new(
        redis_url: &str,
        queue: &str,
        app_id: &str,
        compression: bool,
        timeout_ms: u64,
        record_dir: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Self> {
        let client = Client::open(redis_url)
            .map_err(|e| anyhow::anyhow!("emulator.runner.redis_url: {}", e.category()))?;
        Ok(Self {
            client,
            queue: queue.to_owned(),
            debug_queue: app_id.to_owned(),
            compression,
            timeout_ms,
            record_dir,
            models: Arc::default(),
            reply_prefix: format!("RESP:emulator:{}:", uuid::Uuid::new_v4().simple()),
            pending: Arc::default(),
            listener: OnceCell::new(),
            connection: tokio::sync::Mutex::new(None),
            stop: tokio_util::sync::CancellationToken::new(),
        })
    }

    fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %e, "emulator.redis_unavailable");
        ApiError::new(
            0,
            format!("the business logic runners' Redis is unreachable ({what}); the request is refused rather than run without its handlers"),
        )
        .with_status(axum::http::StatusCode::BAD_GATEWAY)
    }

    /// A command connection (one, shared, reconnected after a failure).
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection, ApiError> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| Self::unavailable("connect", e))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, ApiError> {
        let mut conn = self.connection().await?;
        match cmd.query_async(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *self.connection.lock().await = None;
                Err(Self::unavailable("command", e))
            }
        }
    }

    /// Starts a debug session: its key lives `DEBUG_SESSION_TTL_SECS`
    /// unless renewed.
    pub(crate) async fn register_debug(&self, app_id: &str) -> Result<String, ApiError> {
        let debug_id = format!("debug:{app_id}:{}", uuid::Uuid::new_v4().simple());
        self.query::<()>(
            redis::cmd("SET")
                .arg(&debug_id)
                .arg("1")
                .arg("EX")
                .arg(DEBUG_SESSION_TTL_SECS),
        )
        .await?;
        self.models.lock().debug = Some(DebugRunner {
            debug_id: debug_id.clone(),
            handlers: None,
            timers: Vec::new(),
            services: Vec::new(),
        });
        Ok(debug_id)
    }

    /// Ends the debug session, if any.
    pub(crate) async fn unregister_debug(&self) -> Result<(), ApiError> {
        let debug = self.models.lock().debug.take();
        if let Some(debug) = debug {
            self.query::<i64>(redis::cmd("DEL").arg(&debug.debug_id))
                .await?;
        }
        Ok(())
    }

    /// Tells runners that new business logic was deployed.
    pub(crate) async fn announce_deploy(&self, app_id: &str) -> Result<(), ApiError> {
        let message = serde_json::json!({"command": "cleanup_code_all", "applicationId": app_id});
        self.query::<i64>(
            redis::cmd("PUBLISH")
                .arg("SERVICE_QUEUE_P_CR")
                .arg(message.to_string()),
        )
        .await
        .map(drop)
    }

    /// The handler of `event` on `target` and where its task goes: the debug
    /// runner's model first (while its session lives), then the deployed one.
    pub(crate) async fn route(
        &self,
        event_id: EventId,
        target: &str,
    ) -> Result<Option<(Destination, bool)>, ApiError> {
        let (debug, deployed, deployed_timers) = {
            let models = self.models.lock();
            (
                models.debug.clone(),
                models.deployed.clone(),
                models.deployed_timers.clone(),
            )
        };
        let find = |handlers: &Vec<RemoteHandler>| {
            handlers
                .iter()
                .find(|h| h.event_id == event_id && h.target == target)
                .map(|h| h.is_async)
        };
        // Timers are listed apart from the handlers in a model.
        let is_timer = |timers: &[(String, Schedule)]| {
            event_id == crate::event::timer::EXECUTE && timers.iter().any(|(n, _)| n == target)
        };
        if let Some(debug) = debug {
            let alive: i64 = self
                .query(redis::cmd("EXISTS").arg(&debug.debug_id))
                .await?;
            if alive == 0 {
                tracing::info!("emulator.debug_session_expired");
                let mut models = self.models.lock();
                if models
                    .debug
                    .as_ref()
                    .is_some_and(|d| d.debug_id == debug.debug_id)
                {
                    models.debug = None;
                }
            } else if let Some(is_async) = debug.handlers.as_deref().and_then(find) {
                return Ok(Some((Destination::Debug, is_async)));
            } else if debug.handlers.is_some() && is_timer(&debug.timers) {
                return Ok(Some((Destination::Debug, false)));
            }
        }
        if is_timer(&deployed_timers) {
            return Ok(Some((Destination::Production, false)));
        }
        Ok(deployed
            .as_deref()
            .and_then(find)
            .map(|is_async| (Destination::Production, is_async)))
    }

    /// The service `name` and where its tasks go: the live debug runner's
    /// model first, then the deployed one.
    pub(crate) async fn route_service(
        &self,
        name: &str,
    ) -> Result<Option<(ServiceDecl, Destination)>, ApiError> {
        let (debug, deployed) = {
            let models = self.models.lock();
            (models.debug.clone(), models.deployed_services.clone())
        };
        if let Some(debug) = debug {
            if let Some(decl) = debug.services.iter().find(|s| s.name == name) {
                let alive: i64 = self
                    .query(redis::cmd("EXISTS").arg(&debug.debug_id))
                    .await?;
                if alive > 0 {
                    return Ok(Some((decl.clone(), Destination::Debug)));
                }
            }
        }
        Ok(deployed
            .into_iter()
            .find(|s| s.name == name)
            .map(|decl| (decl, Destination::Production)))
    }

    /// The timers to fire: the live debug runner's, else the deployed model's.
    pub(crate) async fn timers(&self) -> Vec<(String, Schedule)> {
        let (debug, deployed) = {
            let models = self.models.lock();
            (models.debug.clone(), models.deployed_timers.clone())
        };
        if let Some(debug) = debug.filter(|d| d.handlers.is_some()) {
            let alive: Result<i64, _> = self.query(redis::cmd("EXISTS").arg(&debug.debug_id)).await;
            if alive.is_ok_and(|n| n > 0) {
                return debug.timers;
            }
        }
        deployed
    }

    async fn start_listener(&self) -> Result<(), ApiError> {
        self.listener
            .get_or_try_init(|| async {
                let (ready_tx, ready_rx) = oneshot::channel();
                let listening = listen(
                    self.client.clone(),
                    format!("{}*", self.reply_prefix),
                    Arc::clone(&self.pending),
                    ready_tx,
                );
                let stop = self.stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = listening => {}
                        () = stop.cancelled() => {}
                    }
                });
                match tokio::time::timeout(CONNECT_TIMEOUT * 2, ready_rx).await {
                    Ok(Ok(())) => Ok(()),
                    _ => Err(Self::unavailable("subscribe", "no subscription")),
                }
            })
            .await
            .map(|_| ())
    }

    /// Pushes `task` (a task object; its `responseChannelId` is set here)
    /// and waits for its reply; `None` for an asynchronous task, which is
    /// not waited for.
    pub(crate) async fn send(
        &self,
        mut task: Value,
        destination: &Destination,
        is_async: bool,
    ) -> Result<Option<InvocationResult>, ApiError> {
        self.start_listener().await?;
        let id = task["id"].as_str().unwrap_or_default().to_owned();
        let channel = format!("{}{id}", self.reply_prefix);
        task["responseChannelId"] = Value::String(channel.clone());
        let json = serde_json::to_vec(&task).map_err(ApiError::internal)?;
        let payload = if self.compression {
            framing::frame(&json, 8192)
        } else {
            json
        };
        let (tx, rx) = oneshot::channel();
        if !is_async {
            self.pending.lock().insert(channel.clone(), tx);
        }
        let list = match destination {
            Destination::Debug => &self.debug_queue,
            Destination::Production => &self.queue,
        };
        if let Err(e) = self
            .query::<i64>(redis::cmd("RPUSH").arg(list).arg(payload))
            .await
        {
            self.pending.lock().remove(&channel);
            return Err(e);
        }
        if is_async {
            return Ok(None);
        }
        let waited = tokio::time::timeout(Duration::from_millis(self.timeout_ms + 2000), rx).await;
        self.pending.lock().remove(&channel);
        let message = match waited {
            Ok(Ok(message)) => message,
            _ => {
                return Err(ApiError::new(
                    15000,
                    format!(
                        "Custom business logic execution has been terminated because it did not complete in permitted time - {} seconds",
                        self.timeout_ms / 1000
                    ),
                ));
            }
        };
        let json = if self.compression {
            framing::unframe(&message).map_err(|e| {
                ApiError::new(0, format!("a runner's reply is not framed: {e}"))
                    .with_status(axum::http::StatusCode::BAD_GATEWAY)
            })?
        } else {
            message
        };
        serde_json::from_slice::<InvocationResult>(&json)
            .map(Some)
            .map_err(|e| {
                ApiError::new(0, format!("a runner gave an invalid reply: {e}"))
                    .with_status(axum::http::StatusCode::BAD_GATEWAY)
            })
    }
}

/// Forwards every reply published on the emulator's channels to the task
/// waiting for it; reconnects while the emulator runs.
async fn listen(client: Client, pattern: String, pending: Pending, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            redis::RedisResult::Ok(pubsub)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, subscribed).await {
            Ok(Ok(pubsub)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let waiter = pending.lock().remove(message.get_channel_name());
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(message.get_payload_bytes().to_vec());
                    }
                }
                tracing::warn!("emulator.redis_replies_disconnected");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "emulator.redis_replies_unavailable"),
            Err(_) => tracing::warn!("emulator.redis_replies_timeout"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
