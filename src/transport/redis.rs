//! Backendless's Redis task transport (docs/protocol.md, "Redis transport"):
//! the runner takes tasks with `BLPOP` from the server's lists and
//! `PUBLISH`es each reply on the task's `responseChannelId`, as the official
//! CodeRunner does in a Backendless Pro or Managed installation and in debug
//! mode.
//!
//! - A task is taken only when a slot is free, so a busy runner leaves tasks
//!   in Redis for another one; the low-priority list is served only while
//!   the share of busy slots is below a threshold.
//! - A blocking pop is never cancelled (a popped task would be lost): it
//!   waits at most `poll_timeout`, and a stop is seen between pops.
//! - A stale task (`timestamp + timeout + invocationOverheadTimeoutInMillis`
//!   in the past) is dropped without a reply and counted, as the official
//!   runner drops it.
//! - Each reply is published exactly once. While Redis is unreachable a
//!   finished task's reply is retried, then logged as lost with its id.
//!
//! Must not: know about HTTP, or run a handler any other way than through
//! the [`Dispatcher`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use secrecy::ExposeSecret;

use super::Readiness;
use super::framing;
use crate::config::RedisConfig;
use crate::dispatch::Dispatcher;
use crate::event::wire::{AnyTask, ByteEncoded, ExceptionWrapper, InvocationResult, RESULT_CLASS};
use crate::model::Model;

/// `___jsonclass` prefix of the three task classes.
const PROTOCOL: &str = "com.backendless.coderunner.commons.protocol.";
/// The event id that asks a runner to stop (spec §2.2).
const SHUTDOWN_EVENT: u32 = 32768;
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Added to the pop's own timeout before a reply to it is given up.
const RESPONSE_MARGIN: Duration = Duration::from_secs(5);

/// How the Redis transport behaves; from `[redis]`.
#[derive(Debug, Clone)]
pub(crate) struct RedisOptions {
    /// The main task list.
    pub queue: String,
    /// The low-priority task list, if served.
    pub low_priority_queue: Option<String>,
    /// Serve the low-priority list while busy slots / all slots is below this.
    pub low_priority_threshold: f64,
    /// The service command channel, if subscribed.
    pub service_channel: Option<String>,
    /// Frame tasks and replies (spec §1.5).
    pub compression: bool,
    /// Replies of at least this many bytes are compressed when framing.
    pub compression_threshold: usize,
    /// Tasks run at once.
    pub max_in_flight: usize,
    /// The timeout of one blocking pop.
    pub poll_timeout: Duration,
    /// How long a reply is retried while Redis is unreachable.
    pub reply_retry: Duration,
    /// The longest pause between reconnection attempts.
    pub reconnect_max: Duration,
    /// The one app this runner serves, when configured: a task of another
    /// app is refused (its handlers and SDK are this app's).
    pub app_id: Option<String>,
}

impl RedisOptions {
    /// The options of `[redis]`.
    pub(crate) fn from_config(config: &RedisConfig) -> Self {
        let non_empty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
        Self {
            queue: config.queue.clone(),
            low_priority_queue: non_empty(&config.low_priority_queue),
            low_priority_threshold: config.low_priority_threshold,
            service_channel: non_empty(&config.service_channel),
            compression: config.compression,
            compression_threshold: config.compression_threshold,
            max_in_flight: config.max_in_flight,
            poll_timeout: Duration::from_millis(config.poll_timeout_ms),
            reply_retry: Duration::from_millis(config.reply_retry_ms),
            reconnect_max: Duration::from_millis(config.reconnect_max_ms),
            app_id: None,
        }
    }
}

/// Why the transport cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {0}")]
pub(crate) struct RedisUrlError(String);

/// The Redis transport of one runner.
#[derive(Clone)]
pub(crate) struct RedisTransport {
    client: Client,
    dispatcher: Dispatcher,
    options: Arc<RedisOptions>,
    /// The model `ANALYSE_SERVER_CODE` answers with.
    model: Arc<Value>,
    readiness: Readiness,
}

/// The envelope fields read before a task is decoded by its class.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(rename = "___jsonclass", default)]
    json_class: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    response_channel_id: Option<String>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    invocation_overhead_timeout_in_millis: Option<i64>,
    #[serde(default)]
    event_id: Option<u32>,
    #[serde(default)]
    action_type: Option<String>,
}

impl Envelope {
    /// Whether the server has given up on this task (spec §1.3).
    fn is_stale(&self, now_ms: i64) -> bool {
        match (self.invocation_overhead_timeout_in_millis, self.timestamp) {
            (Some(overhead), Some(timestamp)) => {
                let timeout = self.timeout.unwrap_or(0);
                timestamp.saturating_add(timeout).saturating_add(overhead) < now_ms
            }
            _ => false,
        }
    }
}

/// The reply of `ANALYSE_SERVER_CODE`: its
/// `arguments` are the bytes of one JSON value, not of an array.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValueReply<'a> {
    #[serde(rename = "___jsonclass")]
    json_class: &'static str,
    request_id: &'a str,
    http_response_headers: serde_json::Map<String, Value>,
    http_response_cookies: Vec<Value>,
    arguments: ByteEncoded,
    exception: Option<ExceptionWrapper>,
}

/// What to send back for one task.
enum Reply {
    /// Publish these bytes (already framed when framing is on).
    Publish(Vec<u8>),
    /// Publish the empty string (an asynchronous task, spec §1.4).
    Empty,
    /// Publish nothing.
    Nothing,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pause before reconnection attempt `n` (1-based): `min(n * 500 ms, max)`,
/// as the official runner waits.
fn backoff(attempt: u32, max: Duration) -> Duration {
    (Duration::from_millis(500) * attempt).min(max)
}

impl RedisTransport {
    /// A transport taking tasks from the Redis at `url` for `dispatcher`.
    pub(crate) fn new(
        url: &secrecy::SecretString,
        dispatcher: Dispatcher,
        options: RedisOptions,
    ) -> Result<Self, RedisUrlError> {
        // The URL may hold a password: only the error's category is shown.
        let client = Client::open(url.expose_secret())
            .map_err(|e| RedisUrlError(e.category().to_owned()))?;
        let model = Model::of(dispatcher.registry()).to_json();
        Ok(Self {
            client,
            dispatcher,
            options: Arc::new(options),
            model: Arc::new(model),
            readiness: Readiness::new("redis"),
        })
    }

    /// The flag `/readyz` reads: up while the main list's connection is.
    pub(crate) fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(response_timeout);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Takes and answers tasks until `shutdown` is cancelled (by a signal,
    /// or by a `SHUTDOWN` task, which cancels it), then waits up to `grace`
    /// for the tasks in flight to finish and their replies to be published.
    pub(crate) async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let slots = Arc::new(Semaphore::new(self.options.max_in_flight));
        let finished = Arc::new(Notify::new());
        let publisher = Arc::new(Publisher::new(self.clone()));
        let tracker = TaskTracker::new();
        let context = Arc::new(TaskContext {
            transport: self.clone(),
            publisher,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        });
        tracing::info!(
            queue = %self.options.queue,
            low_priority_queue = self.options.low_priority_queue.as_deref().unwrap_or(""),
            compression = self.options.compression,
            max_in_flight = self.options.max_in_flight,
            "taking tasks from Redis"
        );
        let mut getters = tokio::task::JoinSet::new();
        getters.spawn(self.clone().take_tasks(
            self.options.queue.clone(),
            false,
            Arc::clone(&slots),
            Arc::clone(&finished),
            Arc::clone(&context),
        ));
        if let Some(queue) = self.options.low_priority_queue.clone() {
            getters.spawn(self.clone().take_tasks(
                queue,
                true,
                Arc::clone(&slots),
                Arc::clone(&finished),
                Arc::clone(&context),
            ));
        }
        if let Some(channel) = self.options.service_channel.clone() {
            getters.spawn(
                self.clone()
                    .follow_service_channel(channel, shutdown.clone()),
            );
        }
        while getters.join_next().await.is_some() {}
        self.readiness.set(false);
        tracker.close();
        tracing::info!(
            in_flight = tracker.len(),
            "Redis transport stopped taking tasks; finishing those in flight"
        );
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                abandoned = tracker.len(),
                "grace period over: Redis tasks still running are abandoned without a reply"
            );
        }
    }

    /// One list's loop: wait for a free slot, pop a task, hand it over.
    async fn take_tasks(
        self,
        queue: String,
        low_priority: bool,
        slots: Arc<Semaphore>,
        finished: Arc<Notify>,
        context: Arc<TaskContext>,
    ) {
        let stop = context.shutdown.clone();
        let mut connection: Option<MultiplexedConnection> = None;
        let mut failures: u32 = 0;
        let pop_timeout = self.options.poll_timeout;
        while !stop.is_cancelled() {
            let permit = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = stop.cancelled() => return,
            };
            if low_priority && !self.low_priority_allowed(&slots) {
                drop(permit);
                tokio::select! {
                    () = finished.notified() => {}
                    () = tokio::time::sleep(pop_timeout) => {}
                    () = stop.cancelled() => return,
                }
                continue;
            }
            let conn = match connection.as_mut() {
                Some(conn) => conn,
                None => match self.connect(Some(pop_timeout + RESPONSE_MARGIN)).await {
                    Ok(conn) => {
                        if failures > 0 {
                            tracing::info!(queue = %queue, "reconnected to Redis");
                        }
                        failures = 0;
                        if !low_priority {
                            self.set_connected(true);
                        }
                        connection.insert(conn)
                    }
                    Err(e) => {
                        drop(permit);
                        failures = failures.saturating_add(1);
                        self.connection_failed(&queue, low_priority, failures, &e);
                        tokio::select! {
                            () = tokio::time::sleep(backoff(failures, self.options.reconnect_max)) => {}
                            () = stop.cancelled() => return,
                        }
                        continue;
                    }
                },
            };
            // Never cancelled: a task popped by a cancelled call would be lost.
            let popped: redis::RedisResult<Option<(Vec<u8>, Vec<u8>)>> = redis::cmd("BLPOP")
                .arg(&queue)
                .arg(pop_timeout.as_secs_f64())
                .query_async(conn)
                .await;
            match popped {
                Ok(Some((_, task))) => {
                    metrics::counter!("coderunner_redis_tasks_taken_total", "queue" => if low_priority { "low_priority" } else { "main" }).increment(1);
                    let context = Arc::clone(&context);
                    let finished = Arc::clone(&finished);
                    context.tracker.clone().spawn(async move {
                        context.handle(task, permit).await;
                        finished.notify_waiters();
                    });
                }
                Ok(None) => drop(permit),
                Err(e) => {
                    drop(permit);
                    connection = None;
                    failures = failures.saturating_add(1);
                    self.connection_failed(&queue, low_priority, failures, &e);
                    tokio::select! {
                        () = tokio::time::sleep(backoff(failures, self.options.reconnect_max)) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// The official rule (spec §1.3): the low-priority list is served only
    /// while another slot is free and the load is below the threshold.
    fn low_priority_allowed(&self, slots: &Semaphore) -> bool {
        let total = self.options.max_in_flight;
        // This getter holds one permit already.
        let busy = total - slots.available_permits() - 1;
        let free_besides_this = slots.available_permits();
        free_besides_this >= 1 && (busy as f64 / total as f64) < self.options.low_priority_threshold
    }

    fn set_connected(&self, connected: bool) {
        if self.readiness.set(connected) {
            metrics::gauge!("coderunner_redis_connected").set(if connected { 1.0 } else { 0.0 });
        }
    }

    fn connection_failed(
        &self,
        queue: &str,
        low_priority: bool,
        failures: u32,
        error: &redis::RedisError,
    ) {
        if !low_priority {
            self.set_connected(false);
        }
        metrics::counter!("coderunner_redis_connection_errors_total").increment(1);
        // One line per outage, then one every 20 attempts.
        if failures == 1 || failures % 20 == 0 {
            tracing::warn!(queue, attempt = failures, error = %error, "Redis unreachable; reconnecting");
        }
    }

    /// Follows the service channel (`cleanup_code_all` after a deploy).
    async fn follow_service_channel(self, channel: String, stop: CancellationToken) {
        use futures::StreamExt;
        let mut failures: u32 = 0;
        while !stop.is_cancelled() {
            let subscribed = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                redis::RedisResult::Ok(pubsub)
            };
            let pubsub = tokio::select! {
                r = tokio::time::timeout(CONNECT_TIMEOUT * 2, subscribed) => r,
                () = stop.cancelled() => return,
            };
            if let Ok(Ok(pubsub)) = pubsub {
                failures = 0;
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        m = messages.next() => m,
                        () = stop.cancelled() => return,
                    };
                    let Some(message) = message else { break };
                    service_command(message.get_payload_bytes());
                }
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(backoff(failures, self.options.reconnect_max)) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// Handles one message of the service channel.
fn service_command(payload: &[u8]) {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Command {
        command: String,
        #[serde(default)]
        application_id: Option<String>,
    }
    match serde_json::from_slice::<Command>(payload) {
        Ok(c) if c.command == "cleanup_code_all" => {
            // The official runner drops the app's cached workers to load newly
            // deployed code; handlers here are compiled in, so there is nothing
            // to reload.
            metrics::counter!("coderunner_redis_service_commands_total", "command" => "cleanup_code_all").increment(1);
            tracing::info!(
                app_id = c.application_id.as_deref().unwrap_or(""),
                "cleanup_code_all received: new business logic was deployed; handlers here are compiled in, nothing to reload"
            );
        }
        Ok(c) => {
            metrics::counter!("coderunner_redis_service_commands_total", "command" => "unknown")
                .increment(1);
            tracing::warn!(command = %c.command, "unknown service command ignored");
        }
        Err(e) => tracing::warn!(error = %e, "unreadable service command ignored"),
    }
}

/// Everything a task being handled needs.
struct TaskContext {
    transport: RedisTransport,
    publisher: Arc<Publisher>,
    /// Cancelled by a `SHUTDOWN` task.
    shutdown: CancellationToken,
    /// Asynchronous handlers keep running after their empty reply.
    tracker: TaskTracker,
}

fn dropped(reason: &'static str) {
    metrics::counter!("coderunner_redis_tasks_dropped_total", "reason" => reason).increment(1);
}

impl TaskContext {
    /// Decodes, runs and answers one task; the slot is held until the
    /// handler is done (for an asynchronous task too).
    async fn handle(&self, message: Vec<u8>, slot: OwnedSemaphorePermit) {
        let options = &self.transport.options;
        let started = Instant::now();
        let json = if options.compression {
            match framing::unframe(&message) {
                Ok(json) => json,
                Err(e) => {
                    dropped("unparseable");
                    tracing::warn!(error = %e, "unable to parse received task: no reply can be sent");
                    return;
                }
            }
        } else {
            message
        };
        let envelope: Envelope = match serde_json::from_slice(&json) {
            Ok(envelope) => envelope,
            Err(e) => {
                dropped("unparseable");
                tracing::warn!(error = %e, "unable to parse received task: no reply can be sent");
                return;
            }
        };
        let request_id = envelope.id.clone().unwrap_or_default();
        if envelope.is_stale(now_ms()) {
            dropped("stale");
            tracing::warn!(task.id = %request_id, "dropped an outdated task: the server no longer waits for it");
            return;
        }
        let reply = self
            .answer(&envelope, &request_id, &json, started, slot)
            .await;
        let channel = envelope.response_channel_id.unwrap_or_default();
        match reply {
            Reply::Nothing => {}
            Reply::Empty => {
                self.publisher
                    .publish(&channel, &request_id, Vec::new())
                    .await
            }
            Reply::Publish(bytes) => self.publisher.publish(&channel, &request_id, bytes).await,
        }
    }

    fn encode<T: Serialize>(&self, reply: &T) -> Reply {
        let options = &self.transport.options;
        match serde_json::to_vec(reply) {
            Ok(json) if options.compression => {
                Reply::Publish(framing::frame(&json, options.compression_threshold))
            }
            Ok(json) => Reply::Publish(json),
            Err(e) => {
                tracing::error!(error = %e, "a reply could not be serialized");
                Reply::Nothing
            }
        }
    }

    fn exception(&self, request_id: &str, message: impl Into<String>) -> Reply {
        self.encode(&InvocationResult::with_exception(
            request_id,
            ExceptionWrapper::new(0, message, None),
        ))
    }

    async fn answer(
        &self,
        envelope: &Envelope,
        request_id: &str,
        json: &[u8],
        started: Instant,
        slot: OwnedSemaphorePermit,
    ) -> Reply {
        let class = envelope
            .json_class
            .strip_prefix(PROTOCOL)
            .unwrap_or(envelope.json_class.as_str());
        match class {
            "RequestMethodInvocation" if envelope.event_id == Some(SHUTDOWN_EVENT) => {
                self.stop_requested(request_id)
            }
            "RequestMethodInvocation" => self.invoke(request_id, json, started, slot).await,
            "RequestActionInvocation" => match envelope.action_type.as_deref() {
                Some("ANALYSE_SERVER_CODE") => self.encode(&ValueReply {
                    json_class: RESULT_CLASS,
                    request_id,
                    http_response_headers: serde_json::Map::new(),
                    http_response_cookies: Vec::new(),
                    arguments: ByteEncoded(self.transport.model.as_ref().clone()),
                    exception: None,
                }),
                Some("SHUTDOWN") => self.stop_requested(request_id),
                other => self.exception(
                    request_id,
                    format!("Unknown action type: [{}]", other.unwrap_or("undefined")),
                ),
            },
            "RequestServiceInvocation" => self.invoke(request_id, json, started, slot).await,
            _ => self.exception(
                request_id,
                format!("Unknown task [{}]", envelope.json_class),
            ),
        }
    }

    fn stop_requested(&self, request_id: &str) -> Reply {
        tracing::info!(task.id = %request_id, "SHUTDOWN task received: stopping gracefully");
        self.shutdown.cancel();
        Reply::Nothing
    }

    async fn invoke(
        &self,
        request_id: &str,
        json: &[u8],
        started: Instant,
        slot: OwnedSemaphorePermit,
    ) -> Reply {
        let dispatcher = &self.transport.dispatcher;
        let task = match AnyTask::from_slice(json) {
            Ok(task) => task,
            Err(e) => return self.exception(request_id, e.message),
        };
        if let Some(field) = self
            .transport
            .options
            .app_id
            .as_deref()
            .and_then(|app| task.other_app_field(app))
        {
            tracing::warn!(task.id = %request_id, field, "refused a task of another app");
            return self.exception(
                request_id,
                format!("invalid task field `{field}`: this runner serves another application"),
            );
        }
        let is_async = task.is_async();
        let routed = match dispatcher.route_any(task) {
            Ok(routed) => routed,
            Err(e) if e.exception().is_some() => {
                dispatcher.refused(request_id, &e, started);
                let exception = e
                    .exception()
                    .unwrap_or_else(|| ExceptionWrapper::new(0, e.to_string(), None));
                return self.encode(&InvocationResult::with_exception(request_id, exception));
            }
            Err(e) => {
                tracing::warn!(task.id = %request_id, error = %e, "task arguments do not fit the handler");
                return self.exception(request_id, e.to_string());
            }
        };
        // The slot is held until the handler returns, past the timeout reply
        // of a handler that blocks its thread.
        let run = dispatcher.execute(routed.hold(slot), started, is_async);
        if is_async {
            // The server does not wait: it gets an empty message at once.
            self.tracker.spawn(run);
            return Reply::Empty;
        }
        let reply = run.await;
        self.encode(&reply)
    }
}

/// Publishes replies on one shared connection, reconnecting as needed.
struct Publisher {
    transport: RedisTransport,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl Publisher {
    fn new(transport: RedisTransport) -> Self {
        Self {
            transport,
            connection: Mutex::new(None),
        }
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.transport.connect(Some(CONNECT_TIMEOUT * 2)).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Publishes `payload` once on `channel`, retrying while Redis is
    /// unreachable for up to `reply_retry`; a reply that cannot be
    /// published by then is logged as lost.
    async fn publish(&self, channel: &str, request_id: &str, payload: Vec<u8>) {
        let options = &self.transport.options;
        let deadline = Instant::now() + options.reply_retry;
        let mut attempt: u32 = 0;
        loop {
            let published = async {
                let mut conn = self.connection().await?;
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(&payload)
                    .query_async::<i64>(&mut conn)
                    .await
            }
            .await;
            match published {
                Ok(_) => {
                    metrics::counter!("coderunner_redis_replies_total", "result" => "published")
                        .increment(1);
                    return;
                }
                Err(e) => {
                    *self.connection.lock().await = None;
                    attempt = attempt.saturating_add(1);
                    let pause = backoff(attempt, options.reconnect_max);
                    if Instant::now() + pause > deadline {
                        metrics::counter!("coderunner_redis_replies_total", "result" => "lost")
                            .increment(1);
                        tracing::error!(task.id = %request_id, error = %e, "reply lost: Redis stayed unreachable");
                        return;
                    }
                    if attempt == 1 {
                        tracing::warn!(task.id = %request_id, error = %e, "cannot publish a reply yet; retrying");
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tasks_are_those_the_server_gave_up_on() {
        let envelope = |timestamp, overhead| Envelope {
            timestamp: Some(timestamp),
            timeout: Some(5000),
            invocation_overhead_timeout_in_millis: overhead,
            ..Envelope::default()
        };
        assert!(envelope(1_000, Some(1_000)).is_stale(7_001));
        assert!(!envelope(1_000, Some(1_000)).is_stale(7_000));
        // Without the overhead field the official runner never drops a task.
        assert!(!envelope(1_000, None).is_stale(i64::MAX));
        assert!(!envelope(i64::MAX, Some(i64::MAX)).is_stale(0));
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff(1, max), Duration::from_millis(500));
        assert_eq!(backoff(4, max), Duration::from_secs(2));
        assert_eq!(backoff(100, max), max);
    }
}
