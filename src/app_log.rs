//! Handler output in the app's log, as the official CodeRunner delivers it:
//! what a handler logs with `tracing` (at `info` and above) while it runs is
//! collected for its task and, once the handler is done, sent in one batch
//! to the app's log, `PUT {initAppData.url}/{applicationId}/{apiKey}/log`,
//! under the logger `SERVER_CODE` (with the caller's `user-token` when the
//! task had one). Switched by `[log] app_log`; only tasks that carry
//! `initAppData` (as Backendless servers and the emulator send them) have a
//! log to send to.
//!
//! Collection is per task (a task-local buffer filled by [`AppLogLayer`],
//! which `telemetry::init_logging` installs), bounded in lines and bytes;
//! lines logged from tasks a handler spawns are not collected.
//!
//! A handler that logs with the SDK's `Logger` (`ctx.caller().logger(..)`)
//! goes through the SDK's batching queue instead; a `Logger` emits no
//! `tracing` event at `info` or above, so no line reaches the app's log
//! twice. Both write the one entry shape, [`crate::sdk::LogEntry`].

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;

/// The most lines one task sends.
pub(crate) const MAX_LINES: usize = 200;
/// The longest line sent, in bytes.
pub(crate) const MAX_LINE_BYTES: usize = 8 * 1024;
/// How long sending a batch may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    static TASK_LINES: TaskLog;
}

/// One line for the app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppLogLine {
    /// `ERROR`, `WARN` or `INFO`.
    pub level: &'static str,
    /// The text, with the event's fields.
    pub message: String,
    /// When it was logged, ms since the epoch.
    pub timestamp: i64,
}

/// The lines of one task.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskLog {
    lines: Arc<Mutex<Vec<AppLogLine>>>,
    dropped: Arc<std::sync::atomic::AtomicUsize>,
}

impl TaskLog {
    fn push(&self, line: AppLogLine) {
        let mut lines = self.lines.lock();
        if lines.len() < MAX_LINES {
            lines.push(line);
        } else {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The lines collected, with a last line counting those dropped.
    pub(crate) fn take(&self) -> Vec<AppLogLine> {
        let mut lines = std::mem::take(&mut *self.lines.lock());
        let dropped = self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            lines.push(AppLogLine {
                level: "WARN",
                message: format!("{dropped} more lines were not sent (at most {MAX_LINES} a task)"),
                timestamp: now_ms(),
            });
        }
        lines
    }

    /// Runs `future` with this log collecting what it logs.
    pub(crate) async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        TASK_LINES.scope(self, future).await
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A `tracing` layer that copies events logged inside a task's scope into
/// that task's log.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppLogLayer;

/// Writes an event's message and fields as one line.
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: Subscriber> Layer<S> for AppLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            Level::INFO => "INFO",
            _ => return,
        };
        let _ = TASK_LINES.try_with(|log| {
            let mut line = Line(String::new());
            event.record(&mut line);
            let mut message = line.0;
            if message.len() > MAX_LINE_BYTES {
                let mut end = MAX_LINE_BYTES;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
                message.push('…');
            }
            log.push(AppLogLine {
                level,
                message,
                timestamp: now_ms(),
            });
        });
    }
}

/// Where a task's lines go: from its `initAppData` and `applicationId`.
/// (`Debug` shows the key and the token as `[REDACTED]`.)
#[derive(Clone, Debug)]
pub(crate) struct AppLogTarget {
    /// `initAppData.url`.
    pub url: String,
    /// The task's application id.
    pub app_id: String,
    /// `initAppData.apiKey` (or the legacy `secretKey`).
    pub api_key: SecretString,
    /// The caller's token, sent as `user-token` as the official runner does.
    pub user_token: Option<SecretString>,
}

impl AppLogTarget {
    /// The target of a task, if it names one.
    pub(crate) fn of(
        init_app_data: Option<&Value>,
        app_id: Option<&str>,
        user_token: Option<&str>,
    ) -> Option<Self> {
        let data = init_app_data?;
        let url = data.get("url")?.as_str()?.trim_end_matches('/').to_owned();
        let key = data
            .get("apiKey")
            .or_else(|| data.get("secretKey"))?
            .as_str()?
            .to_owned();
        Some(Self {
            url,
            app_id: app_id?.to_owned(),
            api_key: SecretString::from(key),
            user_token: user_token.map(|t| SecretString::from(t.to_owned())),
        })
    }
}

/// The body of the log `PUT`: the official runner's shape.
pub(crate) fn batch_body(task_id: &str, lines: &[AppLogLine]) -> Value {
    let entries: Vec<crate::sdk::LogEntry> = lines
        .iter()
        .map(|l| crate::sdk::LogEntry {
            logger: "SERVER_CODE".to_owned(),
            message: format!("[{task_id}] {}", l.message),
            exception: None,
            level: l.level,
            timestamp: l.timestamp,
        })
        .collect();
    serde_json::to_value(entries).unwrap_or(Value::Null)
}

/// Sends lines to the app's log over HTTP, in the background.
#[derive(Debug, Clone)]
pub(crate) struct AppLogSender {
    http: reqwest::Client,
}

impl Default for AppLogSender {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

impl AppLogSender {
    /// Sends `lines` of task `task_id` to `target`; a failure is logged at
    /// debug level only (the app's log is best effort, as in the official runner).
    pub(crate) fn send(&self, target: AppLogTarget, task_id: &str, lines: Vec<AppLogLine>) {
        if lines.is_empty() {
            return;
        }
        let body = batch_body(task_id, &lines);
        let url = format!(
            "{}/{}/{}/log",
            target.url,
            target.app_id,
            target.api_key.expose_secret()
        );
        let mut request = self.http.put(url).json(&body);
        if let Some(token) = &target.user_token {
            request = request.header("user-token", token.expose_secret());
        }
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::debug!(
                    status = r.status().as_u16(),
                    "the app's log refused handler lines"
                ),
                Err(e) => {
                    tracing::debug!(error = %e.without_url(), "handler lines could not reach the app's log")
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test]
    async fn lines_logged_in_a_task_scope_are_collected_and_bounded() {
        let subscriber = tracing_subscriber::registry().with(AppLogLayer);
        let _guard = tracing::subscriber::set_default(subscriber);
        let log = TaskLog::default();
        tracing::info!("outside: not collected");
        log.clone()
            .scope(async {
                tracing::info!(order = 7, "hello");
                tracing::debug!("too fine: not collected");
                tracing::warn!("careful");
                for i in 0..MAX_LINES {
                    tracing::error!(i, "many");
                }
            })
            .await;
        let lines = log.take();
        assert_eq!(lines.len(), MAX_LINES + 1);
        assert_eq!(
            (lines[0].level, lines[0].message.as_str()),
            ("INFO", "hello order=7")
        );
        assert_eq!(lines[1].level, "WARN");
        assert!(
            lines[MAX_LINES].message.starts_with("2 more lines"),
            "{:?}",
            lines[MAX_LINES]
        );
    }

    #[test]
    fn the_target_comes_from_init_app_data_and_hides_the_key() {
        let data = json!({"url": "http://h/", "apiKey": "K-SECRET"});
        let target = AppLogTarget::of(Some(&data), Some("APP"), Some("T")).unwrap();
        assert_eq!(target.url, "http://h");
        assert!(!format!("{target:?}").contains("K-SECRET"));
        assert!(AppLogTarget::of(None, Some("APP"), None).is_none());
        let body = batch_body(
            "t1",
            &[AppLogLine {
                level: "INFO",
                message: "m".into(),
                timestamp: 5,
            }],
        );
        assert_eq!(
            body,
            json!([{"logger": "SERVER_CODE", "message": "[t1] m", "exception": null, "log-level": "INFO", "timestamp": 5}])
        );
    }
}
