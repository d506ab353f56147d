//! The app's log (Backendless Logging): named [`Logger`]s whose messages are
//! queued and sent in batches, `PUT /log`, as the official JS SDK sends them:
//! a batch goes out when [`LogPolicy::batch_size`] messages are waiting, or
//! [`LogPolicy::interval`] after the first one waiting, whichever comes
//! first; at most [`LogPolicy::capacity`] wait (the oldest are dropped); a
//! batch that could not be delivered (unreachable, timeout, 5xx) goes back to
//! the queue, one the backend refused (4xx: a stale token, a bad key) is
//! dropped with a warning.
//!
//! Each message is sent under the identity of the client its logger came
//! from (one `PUT` per identity in a batch).
//!
//! How this fits with `app_log` (a handler's `tracing` lines): those are
//! collected per task and sent once, when the task ends, to the backend that
//! sent the task. A [`Logger`] emits no `tracing` event at `info` or above,
//! so a message is never collected by both: a [`Logger`] line is sent once,
//! by this queue; a `tracing` line once, by `app_log`. Both write the same
//! entry shape, [`LogEntry`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::client::Client;
use super::error::SdkError;
use super::transport::{Call, Service};

/// A log level, as Backendless has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `TRACE`.
    Trace,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARN`.
    Warn,
    /// `ERROR`.
    Error,
    /// `FATAL`.
    Fatal,
}

impl LogLevel {
    /// The wire value of `log-level`: `TRACE`, `DEBUG`, `INFO`, `WARN`,
    /// `ERROR` or `FATAL`.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::LogLevel;
    /// assert_eq!(LogLevel::Warn.as_str(), "WARN");
    /// assert!(LogLevel::Error > LogLevel::Info);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        }
    }
}

/// One message of `PUT /log`: the JS SDK's shape, also used by `app_log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// The logger's name.
    pub logger: String,
    /// The text.
    pub message: String,
    /// An exception's text, if any.
    pub exception: Option<String>,
    /// `INFO`...
    #[serde(rename = "log-level")]
    pub level: &'static str,
    /// When it was logged, ms since the epoch.
    pub timestamp: i64,
}

/// When the queue sends: the JS SDK's defaults are 10 messages, 1 second and
/// 1000 messages kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// Send as soon as this many messages wait.
    pub batch_size: usize,
    /// Send this long after the first message waiting, if no batch went before.
    pub interval: Duration,
    /// The most messages kept waiting; the oldest are dropped beyond.
    pub capacity: usize,
}

impl Default for LogPolicy {
    /// The JS SDK's: 10 messages, 1 second, 1000 kept.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{LogPolicy, SdkConfig};
    /// use std::time::Duration;
    /// let mut config = SdkConfig::new("http://127.0.0.1:8100", "APP-ID", "API-KEY".into());
    /// config.log_policy = LogPolicy { interval: Duration::from_millis(250), ..LogPolicy::default() };
    /// ```
    fn default() -> Self {
        Self {
            batch_size: 10,
            interval: Duration::from_secs(1),
            capacity: 1000,
        }
    }
}

/// A message waiting, with the client (identity) it goes out under.
struct Pending {
    client: Client,
    entry: LogEntry,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<Pending>,
    /// Messages dropped because the queue was full, since the last report.
    dropped: u64,
    /// Whether the background sender runs.
    worker: bool,
}

/// The process-wide queue of a `Backendless` handle.
pub(crate) struct LogQueue {
    state: Mutex<QueueState>,
    /// Wakes the background sender: a message arrived.
    arrived: Arc<Notify>,
    policy: LogPolicy,
    /// One flush at a time, so that batches leave in order.
    flushing: tokio::sync::Mutex<()>,
}

impl LogQueue {
    pub(crate) fn new(policy: LogPolicy) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            arrived: Arc::new(Notify::new()),
            policy: LogPolicy {
                batch_size: policy.batch_size.max(1),
                capacity: policy.capacity.max(1),
                ..policy
            },
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn push(self: &Arc<Self>, client: &Client, entry: LogEntry) {
        let start_worker = {
            let mut state = self.state.lock();
            if state.pending.len() >= self.policy.capacity {
                state.pending.pop_front();
                state.dropped += 1;
            }
            state.pending.push_back(Pending {
                client: client.clone().without_deadline(),
                entry,
            });
            let start = !state.worker;
            state.worker = true;
            start
        };
        if start_worker {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(worker(Arc::downgrade(self), Arc::clone(&self.arrived)));
                }
                Err(_) => self.state.lock().worker = false,
            }
        }
        self.arrived.notify_one();
    }

    fn len(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Sends everything waiting now, one `PUT /log` per identity. A batch
    /// that could not be delivered goes back to the front of the queue; one
    /// the backend refused (4xx) is dropped.
    pub(crate) async fn flush(&self) -> Result<(), SdkError> {
        let _one = self.flushing.lock().await;
        let (batch, dropped) = {
            let mut state = self.state.lock();
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.dropped),
            )
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                capacity = self.policy.capacity,
                "app log messages were dropped: the queue was full"
            );
        }
        let mut groups: Vec<(Client, Vec<Pending>)> = Vec::new();
        for p in batch {
            match groups.iter_mut().find(|(c, _)| c.same_identity(&p.client)) {
                Some((_, items)) => items.push(p),
                None => groups.push((p.client.clone(), vec![p])),
            }
        }
        let mut first_error = None;
        let mut failed: Vec<Pending> = Vec::new();
        for (client, items) in groups {
            let body = serde_json::to_value(items.iter().map(|p| &p.entry).collect::<Vec<_>>())
                .unwrap_or(Value::Null);
            let call = Call::new(Service::Logging, Method::PUT, ["log"]).body(body);
            match client.send_raw(call).await {
                Ok(_) => {}
                // The backend refused the batch itself (a stale token, a bad
                // key): sending it again would be refused again.
                Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                    tracing::warn!(error = %e, messages = items.len(), "the backend refused an app log batch; it is dropped");
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    tracing::debug!(error = %e, messages = items.len(), "an app log batch failed; kept for the next flush");
                    failed.extend(items);
                    first_error.get_or_insert(e);
                }
            }
        }
        if !failed.is_empty() {
            let mut state = self.state.lock();
            for p in failed.into_iter().rev() {
                state.pending.push_front(p);
            }
            while state.pending.len() > self.policy.capacity {
                state.pending.pop_front();
                state.dropped += 1;
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for LogQueue {
    /// Wakes the background sender so that it sees the queue is gone and ends.
    fn drop(&mut self) {
        self.arrived.notify_one();
    }
}

/// The background sender: after a message arrives, waits until a batch is
/// full or the interval has passed, then flushes. Ends with the queue.
async fn worker(queue: Weak<LogQueue>, arrived: Arc<Notify>) {
    loop {
        let Some(q) = queue.upgrade() else { return };
        if q.len() == 0 {
            drop(q);
            arrived.notified().await;
            continue;
        }
        let deadline = tokio::time::Instant::now() + q.policy.interval;
        while q.len() < q.policy.batch_size {
            if tokio::time::timeout_at(deadline, arrived.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        // An undelivered batch is kept in the queue (and logged inside).
        let failed = q.flush().await.is_err();
        let interval = q.policy.interval;
        drop(q);
        if failed {
            // Do not spin on a backend that refuses: wait an interval.
            tokio::time::sleep(interval).await;
        }
    }
}

/// A named logger of the app's log, made by [`Client::logger`]. Logging
/// never waits: messages are queued and sent in batches (see the module
/// documentation); [`Logger::flush`] sends what waits now.
///
/// # Example
/// ```no_run
/// # async fn run(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// let log = ctx.caller().logger("orders");
/// log.info("order 7 accepted");
/// log.error_with("payment failed", "card declined");
/// log.flush().await?; // or leave it to the queue
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Logger {
    name: String,
    client: Client,
    queue: Arc<LogQueue>,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("name", &self.name)
            .field("identity", &self.client.identity())
            .finish()
    }
}

impl Logger {
    pub(crate) fn new(client: Client, name: &str, queue: Arc<LogQueue>) -> Self {
        Self {
            name: name.to_owned(),
            client,
            queue,
        }
    }

    /// The logger's name, as the app's log shows it.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let log = ctx.caller().logger("orders");
    /// assert_eq!(log.name(), "orders");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues a message at `level`, with an exception's text if any, to go
    /// out under this logger's client identity. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::LogLevel;
    /// let log = ctx.server_key().logger("billing");
    /// log.log(LogLevel::Warn, "card expires soon", None);
    /// log.log(LogLevel::Error, "charge failed", Some("gateway timeout"));
    /// # Ok(()) }
    /// ```
    pub fn log(&self, level: LogLevel, message: impl Into<String>, exception: Option<&str>) {
        let entry = LogEntry {
            logger: self.name.clone(),
            message: message.into(),
            exception: exception.map(str::to_owned),
            level: level.as_str(),
            timestamp: now_ms(),
        };
        // Below `info`, so that `app_log` never collects it a second time.
        tracing::debug!(logger = %self.name, level = level.as_str(), "app log message queued");
        self.queue.push(&self.client, entry);
    }

    /// Queues a `TRACE` message. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().logger("orders").trace("entering the price check");
    /// # Ok(()) }
    /// ```
    pub fn trace(&self, message: impl Into<String>) {
        self.log(LogLevel::Trace, message, None);
    }

    /// Queues a `DEBUG` message. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().logger("orders").debug(format!("{} items", 3));
    /// # Ok(()) }
    /// ```
    pub fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message, None);
    }

    /// Queues an `INFO` message. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().logger("orders").info("order 7 accepted");
    /// # Ok(()) }
    /// ```
    pub fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message, None);
    }

    /// Queues a `WARN` message. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().logger("orders").warn("a large order");
    /// # Ok(()) }
    /// ```
    pub fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message, None);
    }

    /// Queues an `ERROR` message. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().logger("orders").error("payment refused");
    /// # Ok(()) }
    /// ```
    pub fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message, None);
    }

    /// Queues an `ERROR` message with an exception's text (the `exception`
    /// field of the entry). Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let log = ctx.caller().logger("orders");
    /// if let Err(e) = "x".parse::<u32>() {
    ///     log.error_with("bad quantity", &e.to_string());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn error_with(&self, message: impl Into<String>, exception: &str) {
        self.log(LogLevel::Error, message, Some(exception));
    }

    /// Queues a `FATAL` message. Never waits and never fails: the message is queued (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key().logger("startup").fatal("the price table is missing");
    /// # Ok(()) }
    /// ```
    pub fn fatal(&self, message: impl Into<String>) {
        self.log(LogLevel::Fatal, message, None);
    }

    /// Sends every queued message now (of every logger of the process, one
    /// `PUT log` per identity), within this logger's client deadline
    /// ([`SdkError::Timeout`] after it). A batch that could not be delivered
    /// (unreachable, 5xx) stays queued and its error is returned; one the
    /// backend refused (4xx, most often 3064 for a caller token that expired)
    /// is dropped with a warning and its error returned.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let log = ctx.caller().logger("orders");
    /// log.info("order 7 accepted");
    /// log.flush().await?; // or leave it to the queue (1 s by default)
    /// # Ok(()) }
    /// ```
    pub async fn flush(&self) -> Result<(), SdkError> {
        match self.client.deadline() {
            Some(deadline) => tokio::time::timeout_at(deadline, self.queue.flush())
                .await
                .map_err(|_| SdkError::Timeout {
                    service: Service::Logging.as_str(),
                    limit: super::error::TimeoutLimit::Deadline,
                })?,
            None => self.queue.flush().await,
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::{Backendless, SdkConfig};

    #[tokio::test]
    async fn the_queue_keeps_the_newest_messages_up_to_its_capacity() {
        let mut config = SdkConfig::new("http://127.0.0.1:9", "APP", "KEY".into());
        config.log_policy = LogPolicy {
            batch_size: 100,
            interval: Duration::from_secs(3600),
            capacity: 3,
        };
        let sdk = Backendless::new(config).unwrap();
        let log = sdk.server_key().logger("bounded");
        for i in 0..5 {
            log.info(format!("m{i}"));
        }
        let state = log.queue.state.lock();
        let kept: Vec<&str> = state
            .pending
            .iter()
            .map(|p| p.entry.message.as_str())
            .collect();
        assert_eq!(kept, ["m2", "m3", "m4"]);
        assert_eq!(state.dropped, 2);
        assert_eq!(state.pending[0].entry.level, "INFO");
    }

    #[tokio::test]
    async fn an_undelivered_batch_stays_queued() {
        // Nothing listens on the discard port of loopback: connection refused.
        let sdk =
            Backendless::new(SdkConfig::new("http://127.0.0.1:9", "APP", "KEY".into())).unwrap();
        let log = sdk.server_key().logger("unreachable");
        log.error("kept");
        assert!(matches!(log.flush().await, Err(SdkError::Transport { .. })));
        assert_eq!(log.queue.len(), 1);
    }

    #[tokio::test]
    async fn the_background_sender_ends_with_the_queue() {
        let queue = Arc::new(LogQueue::new(LogPolicy::default()));
        let sender = tokio::spawn(worker(Arc::downgrade(&queue), Arc::clone(&queue.arrived)));
        tokio::task::yield_now().await;
        drop(queue);
        tokio::time::timeout(Duration::from_secs(5), sender)
            .await
            .expect("the sender ended")
            .unwrap();
    }
}
