//! Layered configuration: `config/default.toml` (compiled in, every key
//! documented) -> an optional overlay file -> environment variables
//! `CODERUNNER__SECTION__KEY`. Any string key can instead be read from a file
//! by setting `KEY_FILE` (as container secrets are mounted). Invalid
//! configuration stops startup with a message naming the key.
//!
//! Secrets ([`SECRET_KEYS`]) are strings whatever they look like: an
//! environment value `12345`, `true` or `[a, b]` is not parsed, and an error
//! about a secret never shows its value. Durations are refused above
//! [`MAX_DURATION`] at startup, before they can overflow a clock.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map as FigmentMap, Value as FigmentValue};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::dispatch::TaskLimits;
use crate::signature::{Verifier, WebhookSecret};

/// The built-in defaults: `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// The dev overlay used by `coderunner dev`: `config/dev.toml`.
pub const DEV_TOML: &str = include_str!("../config/dev.toml");
/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "CODERUNNER__";

/// The keys that hold secrets. Their values are always strings (an
/// environment value is never parsed as a number, boolean or list) and are
/// never shown in an error.
pub const SECRET_KEYS: &[&str] = &[
    "security.webhook_secrets",
    "backendless.api_key",
    "backendless.superuser.password",
    "emulator.runner.secret",
    "console.token",
];

/// The most invocations `console.ring_size` may keep.
pub const MAX_CONSOLE_RING: usize = 100_000;

/// The longest duration a `*_ms` or `*_secs` key may hold: one year. Longer
/// ones would overflow clock arithmetic (`Instant + Duration`) when used.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The most task slots `server.max_tasks_in_flight` and
/// `server.max_async_tasks` may hold.
pub const MAX_TASK_SLOTS: usize = 1 << 20;

/// The most threads `tasks.handler_threads` may ask for.
pub const MAX_HANDLER_THREADS: usize = 1024;

/// `Ok` when `value` is at most [`MAX_DURATION`]; else an error naming `key`.
pub fn check_duration(key: &str, value: Duration) -> Result<(), ConfigError> {
    if value > MAX_DURATION {
        return Err(ConfigError(format!(
            "key `{key}` is longer than the maximum of one year ({} s)",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(())
}

/// A configuration error that names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// An error with a message that names the key.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The runner's HTTP server.
    pub server: ServerConfig,
    /// Inbound webhook security.
    pub security: SecurityConfig,
    /// Task limits.
    pub tasks: TasksConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Logging.
    pub log: LogConfig,
    /// The Backendless backend the SDK talks to.
    pub backendless: BackendlessConfig,
    /// Which ways tasks come in.
    pub transport: TransportConfig,
    /// Backendless's Redis task queue.
    pub redis: RedisConfig,
    /// Who fires timers.
    pub timers: TimersConfig,
    /// Where the state a fleet shares is kept.
    pub store: StoreConfig,
    /// The web console (`/console`).
    pub console: ConsoleConfig,
}

/// `[console]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve `/console` on the runner's port (on in `dev`, off in `serve`).
    pub enabled: bool,
    /// The token a browser or client must present; empty = loopback
    /// clients only. `serve` refuses an enabled console without one.
    #[serde(deserialize_with = "secret")]
    pub token: SecretString,
    /// How many recent invocations are kept.
    pub ring_size: usize,
    /// Serve the console on a listener of its own at this address instead
    /// of the runner's port; empty = the runner's port.
    pub listen: String,
}

/// Where the superuser session, the seen webhook ids and the timer locks
/// are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process: one runner.
    Memory,
    /// In the Redis of `[redis] url`: shared by a fleet of runners.
    Redis,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub kind: StoreKind,
    /// Prepended to every key the store writes.
    pub prefix: String,
    /// How long a replica's superuser login lease lasts if it never completes (ms).
    pub session_lease_ms: u64,
    /// How long the key claiming one timer occurrence lives (ms).
    pub timer_lock_ms: u64,
}

/// Who fires the registered timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimerScheduler {
    /// The Backendless server sends a timer task at each occurrence.
    Backendless,
    /// The runner fires its timers itself (for backends that only call `/invoke`).
    Runner,
}

/// `[timers]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimersConfig {
    /// Who fires timers.
    pub scheduler: TimerScheduler,
}

/// `[transport]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportConfig {
    /// Take signed tasks on `POST /invoke`.
    pub http: bool,
    /// Take tasks from Backendless's Redis queue.
    pub redis: bool,
}

/// `[redis]`: the Redis transport (docs/protocol.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]` (`rediss://` for TLS); may hold a password.
    pub url: SecretString,
    /// The main task list.
    pub queue: String,
    /// The low-priority task list; empty = none.
    pub low_priority_queue: String,
    /// The low-priority list is served only while the share of busy slots is below this.
    pub low_priority_threshold: f64,
    /// The Pub/Sub channel of service commands (`cleanup_code_all`).
    pub service_channel: String,
    /// Frame tasks and replies (`0x00` plain / `0x01` zlib), as `compression.prod`.
    pub compression: bool,
    /// Replies of at least this many bytes are zlib-compressed when framing is on.
    pub compression_threshold: usize,
    /// Tasks run at once; no task is taken without a free slot.
    pub max_in_flight: usize,
    /// How long one blocking pop waits before it is issued again (ms).
    pub poll_timeout_ms: u64,
    /// How long a reply is retried while Redis is unreachable before it is logged as lost (ms).
    pub reply_retry_ms: u64,
    /// The longest pause between reconnection attempts (ms).
    pub reconnect_max_ms: u64,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Time a client gets to send a complete request head, in ms.
    pub header_read_timeout_ms: u64,
    /// Time a client gets to send the body once the head is read, in ms.
    pub body_read_timeout_ms: u64,
    /// Connections open at once.
    pub max_connections: usize,
    /// Synchronous tasks in flight at once; more get 503.
    pub max_tasks_in_flight: usize,
    /// Asynchronous tasks accepted and not finished; more get 503.
    pub max_async_tasks: usize,
}

/// `[security]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// `whsec_...` secrets; any of them may sign a task (rotation).
    #[serde(deserialize_with = "secret_list")]
    pub webhook_secrets: Vec<SecretString>,
    /// Accept unsigned tasks. Only for local experiments.
    pub allow_unsigned: bool,
    /// Allowed clock difference for `webhook-timestamp`, in seconds.
    pub timestamp_tolerance_secs: u64,
    /// How many recent `webhook-id`s are remembered to refuse replays.
    pub seen_ids_capacity: usize,
    /// Bytes of replies kept for retries of a delivery whose reply was lost.
    pub reply_cache_bytes: usize,
}

/// `[tasks]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    /// Timeout of a task that names none, in ms.
    pub default_timeout_ms: u64,
    /// The most time any task gets, in ms.
    pub max_timeout_ms: u64,
    /// Threads of the runtime handlers move to when no server thread may
    /// take them (0 = one per CPU).
    pub handler_threads: usize,
}

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Time in-flight tasks get to finish after SIGTERM, in seconds.
    pub grace_period_secs: u64,
    /// Time between answering `/readyz` with 503 and closing the listener, in ms.
    pub drain_delay_ms: u64,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `coderunner=debug`.
    pub level: String,
    /// Send what handlers log to the app's log (`PUT .../log`), as the official runner does.
    pub app_log: bool,
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[backendless]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendlessConfig {
    /// The API server, e.g. `https://api.backendless.com`.
    pub server_url: String,
    /// The application id.
    pub app_id: String,
    /// The app's CloudCode API key.
    #[serde(deserialize_with = "secret")]
    pub api_key: SecretString,
    /// A custom domain; when set the root is `{custom_domain}/api`.
    pub custom_domain: String,
    /// Cap on each backend call, in ms.
    pub request_timeout_ms: u64,
    /// The backend's session inactivity timeout in seconds (0 = unknown).
    pub session_timeout_secs: u64,
    /// The shared superuser.
    pub superuser: SuperuserConfig,
}

/// `[backendless.superuser]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperuserConfig {
    /// The superuser's login (email); empty = no superuser.
    pub login: String,
    /// The superuser's password.
    #[serde(deserialize_with = "secret")]
    pub password: SecretString,
    /// Log the superuser out when the runner stops.
    pub logout_on_shutdown: bool,
}

/// A secret: a string, or an error that does not show the value.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(SecretString::from(s)),
        other => Err(serde::de::Error::custom(format!(
            "a secret must be a string, not {} (the value is not shown)",
            json_kind(&other)
        ))),
    }
}

/// Secrets given as one string (split at commas, spaces and newlines) or a
/// list of strings; errors do not show the values.
fn secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::String(s) => s.split([',', ' ', '\n']).map(str::to_owned).collect(),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!(
                    "a secret must be a string, not {} (the value is not shown)",
                    json_kind(&other)
                ))),
            })
            .collect::<Result<Vec<_>, D::Error>>()?,
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a string or a list of strings, not {} (the value is not shown)",
                json_kind(&other)
            )));
        }
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
        .collect())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// The `CODERUNNER__*` environment layer. Values are parsed as figment
/// does (`10` is a number, `true` a boolean), except those of
/// [`SECRET_KEYS`] (and their `_file` forms), which stay the raw text.
pub struct EnvLayer {
    /// `(dotted.lowercase.key, raw value)`.
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    /// The process environment's `CODERUNNER__*` variables.
    pub fn from_env() -> Self {
        let env = Env::prefixed(ENV_PREFIX).split("__");
        Self::from_pairs(env.iter().map(|(k, v)| (k.as_str().to_owned(), v)))
    }

    /// Given variables, keyed as after the prefix and `__` splitting
    /// (`backendless.api_key`); for tests.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into().to_ascii_lowercase(), v.into()))
                .collect(),
        }
    }
}

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key.strip_suffix("_file").unwrap_or(key))
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}` environment variable(s)"))
    }

    fn data(&self) -> Result<FigmentMap<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, raw) in &self.vars {
            let value = if is_secret_key(key) {
                FigmentValue::from(raw.clone())
            } else {
                raw.parse().unwrap_or_else(|e| match e {})
            };
            let mut parts: Vec<&str> = key.split('.').collect();
            let Some(last) = parts.pop() else { continue };
            let mut at = &mut dict;
            for part in parts {
                let entry = at
                    .entry(part.to_owned())
                    .or_insert_with(|| FigmentValue::from(Dict::new()));
                if entry.as_dict().is_none() {
                    *entry = FigmentValue::from(Dict::new());
                }
                at = match entry {
                    FigmentValue::Dict(_, d) => d,
                    _ => unreachable!("made a dict above"),
                };
            }
            at.insert(last.to_owned(), value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Where configuration comes from, besides the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Extra TOML layers applied in order (e.g. the dev overlay), as text.
    pub builtin_overlays: Vec<&'static str>,
    /// An overlay file (`--config` or `CODERUNNER_CONFIG`).
    pub file: Option<PathBuf>,
    /// Read `CODERUNNER__*` environment variables.
    pub env: bool,
}

impl Config {
    /// Loads and validates configuration from `sources`.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let figment = Self::figment(sources)?;
        Self::from_figment(figment)
    }

    /// The built-in defaults with one TOML overlay (no file, no
    /// environment): handy for tests and embedding.
    pub fn from_toml(overlay: &str) -> Result<Config, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overlay)))
    }

    /// The raw layered configuration, before the `_FILE` expansion.
    pub fn figment(sources: &Sources) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        for overlay in &sources.builtin_overlays {
            figment = figment.merge(Toml::string(overlay));
        }
        if let Some(file) = &sources.file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        if sources.env {
            figment = figment.merge(EnvLayer::from_env());
        }
        Ok(figment)
    }

    /// Extracts a section of the layered configuration (after `_FILE`
    /// expansion), e.g. `"emulator"`.
    pub fn section<T: serde::de::DeserializeOwned>(
        figment: &Figment,
        key: &str,
    ) -> Result<T, ConfigError> {
        let value = expanded(figment)?;
        let section = value
            .get(key)
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        serde_path_to_error::deserialize(section)
            .map_err(|e| ConfigError(format!("key `{key}.{}`: {}", e.path(), e.inner())))
    }

    /// Validates a layered configuration.
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let mut value = expanded(&figment)?;
        if let Value::Object(map) = &mut value {
            map.remove("emulator");
        }
        let config: Config = serde_path_to_error::deserialize(&value)
            .map_err(|e| ConfigError(format!("key `{}`: {}", e.path(), e.inner())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        for (key, value) in [
            (
                "tasks.default_timeout_ms",
                ms(self.tasks.default_timeout_ms),
            ),
            ("tasks.max_timeout_ms", ms(self.tasks.max_timeout_ms)),
            (
                "shutdown.grace_period_secs",
                secs(self.shutdown.grace_period_secs),
            ),
            ("shutdown.drain_delay_ms", ms(self.shutdown.drain_delay_ms)),
            (
                "server.header_read_timeout_ms",
                ms(self.server.header_read_timeout_ms),
            ),
            (
                "server.body_read_timeout_ms",
                ms(self.server.body_read_timeout_ms),
            ),
            (
                "security.timestamp_tolerance_secs",
                secs(self.security.timestamp_tolerance_secs),
            ),
            (
                "backendless.request_timeout_ms",
                ms(self.backendless.request_timeout_ms),
            ),
            (
                "backendless.session_timeout_secs",
                secs(self.backendless.session_timeout_secs),
            ),
            ("store.session_lease_ms", ms(self.store.session_lease_ms)),
            ("store.timer_lock_ms", ms(self.store.timer_lock_ms)),
        ] {
            check_duration(key, value)?;
        }
        for (i, secret) in self.security.webhook_secrets.iter().enumerate() {
            WebhookSecret::parse(secret.expose_secret())
                .map_err(|e| ConfigError(format!("key `security.webhook_secrets[{i}]`: {e}")))?;
        }
        if self.tasks.default_timeout_ms == 0 || self.tasks.max_timeout_ms == 0 {
            return Err(ConfigError(
                "keys `tasks.default_timeout_ms` and `tasks.max_timeout_ms` must be positive"
                    .into(),
            ));
        }
        if self.tasks.default_timeout_ms > self.tasks.max_timeout_ms {
            return Err(ConfigError(
                "key `tasks.default_timeout_ms` must not exceed `tasks.max_timeout_ms`".into(),
            ));
        }
        if self.security.seen_ids_capacity == 0 {
            return Err(ConfigError(
                "key `security.seen_ids_capacity` must be positive".into(),
            ));
        }
        if !self.transport.http && !self.transport.redis {
            return Err(ConfigError(
                "keys `transport.http` and `transport.redis` are both false: no task could arrive"
                    .into(),
            ));
        }
        if self.store.kind == StoreKind::Redis {
            if self.store.session_lease_ms == 0 || self.store.timer_lock_ms == 0 {
                return Err(ConfigError(
                    "keys `store.session_lease_ms` and `store.timer_lock_ms` must be positive"
                        .into(),
                ));
            }
            redis::Client::open(self.redis.url.expose_secret())
                .map_err(|e| ConfigError(format!("key `redis.url`: {}", e.category())))?;
        }
        if self.transport.redis {
            if self.redis.queue.is_empty() {
                return Err(ConfigError("key `redis.queue` must not be empty".into()));
            }
            if self.redis.max_in_flight == 0 {
                return Err(ConfigError(
                    "key `redis.max_in_flight` must be positive".into(),
                ));
            }
            if !(1..=3_600_000).contains(&self.redis.poll_timeout_ms) {
                return Err(ConfigError(
                    "key `redis.poll_timeout_ms` must be between 1 and 3600000".into(),
                ));
            }
            if self.redis.reply_retry_ms > 86_400_000 || self.redis.reconnect_max_ms > 3_600_000 {
                return Err(ConfigError(
                    "keys `redis.reply_retry_ms` (at most a day) and `redis.reconnect_max_ms` \
                     (at most an hour) are out of range"
                        .into(),
                ));
            }
            redis::Client::open(self.redis.url.expose_secret())
                .map_err(|e| ConfigError(format!("key `redis.url`: {}", e.category())))?;
        }
        for (key, value) in [
            ("server.body_limit_bytes", self.server.body_limit_bytes),
            (
                "server.header_read_timeout_ms",
                self.server.header_read_timeout_ms as usize,
            ),
            (
                "server.body_read_timeout_ms",
                self.server.body_read_timeout_ms as usize,
            ),
            ("server.max_connections", self.server.max_connections),
            (
                "server.max_tasks_in_flight",
                self.server.max_tasks_in_flight,
            ),
            ("server.max_async_tasks", self.server.max_async_tasks),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("key `{key}` must be positive")));
            }
        }
        // Past this, tokio's semaphore panics.
        for (key, value) in [
            (
                "server.max_tasks_in_flight",
                self.server.max_tasks_in_flight,
            ),
            ("server.max_async_tasks", self.server.max_async_tasks),
        ] {
            if value > MAX_TASK_SLOTS {
                return Err(ConfigError(format!(
                    "key `{key}` must be at most {MAX_TASK_SLOTS}"
                )));
            }
        }
        if !(1..=MAX_CONSOLE_RING).contains(&self.console.ring_size) {
            return Err(ConfigError(format!(
                "key `console.ring_size` must be between 1 and {MAX_CONSOLE_RING}"
            )));
        }
        if !self.console.listen.is_empty() && self.console.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError(format!(
                "key `console.listen`: `{}` is not an address such as 127.0.0.1:8201",
                self.console.listen
            )));
        }
        if self.tasks.handler_threads > MAX_HANDLER_THREADS {
            return Err(ConfigError(format!(
                "key `tasks.handler_threads` must be at most {MAX_HANDLER_THREADS}"
            )));
        }
        if !self.backendless.superuser.login.is_empty()
            && self
                .backendless
                .superuser
                .password
                .expose_secret()
                .is_empty()
        {
            return Err(ConfigError(
                "key `backendless.superuser.password` is empty but a superuser login is set".into(),
            ));
        }
        Ok(())
    }

    /// The signature verifier, or `None` in unsigned mode.
    pub fn verifier(&self) -> Result<Option<Verifier>, ConfigError> {
        if self.security.webhook_secrets.is_empty() {
            if self.security.allow_unsigned {
                return Ok(None);
            }
            return Err(ConfigError(
                "key `security.webhook_secrets` is empty: configure a `whsec_...` secret \
                 (or set `security.allow_unsigned = true` for local experiments)"
                    .into(),
            ));
        }
        let secrets = self
            .security
            .webhook_secrets
            .iter()
            .map(|s| WebhookSecret::parse(s.expose_secret()).expect("validated at load"))
            .collect();
        Ok(Some(Verifier::new(
            secrets,
            Duration::from_secs(self.security.timestamp_tolerance_secs),
        )))
    }

    /// The task limits.
    pub(crate) fn task_limits(&self) -> TaskLimits {
        TaskLimits {
            default_timeout: Duration::from_millis(self.tasks.default_timeout_ms),
            max_timeout: Duration::from_millis(self.tasks.max_timeout_ms),
        }
    }
}

/// The layered configuration as JSON, with every `KEY_FILE` replaced by
/// `KEY` holding the file's contents.
fn expanded(figment: &Figment) -> Result<Value, ConfigError> {
    let mut value: Value = figment
        .extract()
        .map_err(|e| ConfigError(figment_message(e)))?;
    expand_files(&mut value, "")?;
    Ok(value)
}

fn figment_message(e: figment::Error) -> String {
    let mut parts = Vec::new();
    for err in e {
        let key = err.path.join(".");
        if key.is_empty() {
            parts.push(err.kind.to_string());
        } else {
            parts.push(format!("key `{key}`: {}", err.kind));
        }
    }
    parts.join("; ")
}

fn expand_files(value: &mut Value, prefix: &str) -> Result<(), ConfigError> {
    let Value::Object(map) = value else {
        return Ok(());
    };
    let file_keys: Vec<String> = map
        .keys()
        .filter(|k| k.ends_with("_file"))
        .cloned()
        .collect();
    for file_key in file_keys {
        let Some(Value::String(path)) = map.remove(&file_key) else {
            continue;
        };
        if path.is_empty() {
            continue;
        }
        let key = file_key.trim_end_matches("_file").to_owned();
        let contents = read_secret_file(Path::new(&path)).map_err(|e| {
            ConfigError(format!("key `{prefix}{file_key}`: cannot read {path}: {e}"))
        })?;
        map.insert(key, Value::String(contents));
    }
    for (k, v) in map.iter_mut() {
        expand_files(v, &format!("{prefix}{k}."))?;
    }
    Ok(())
}

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(overlay: &'static str) -> Result<Config, ConfigError> {
        Config::load(&Sources {
            builtin_overlays: vec![overlay],
            file: None,
            env: false,
        })
    }

    #[test]
    fn defaults_load_and_are_documented() {
        let config = load("").unwrap();
        assert_eq!(config.server.listen.port(), 8200);
        assert!(config.security.webhook_secrets.is_empty());
        assert!(
            config
                .verifier()
                .unwrap_err()
                .to_string()
                .contains("security.webhook_secrets")
        );
        for line in DEFAULT_TOML
            .lines()
            .filter(|l| l.contains(" = ") && !l.trim_start().starts_with('#'))
        {
            let key = line.split(" = ").next().unwrap().trim();
            let idx = DEFAULT_TOML.find(line).unwrap();
            let before = &DEFAULT_TOML[..idx];
            assert!(
                before
                    .trim_end()
                    .lines()
                    .last()
                    .unwrap()
                    .trim_start()
                    .starts_with('#'),
                "key `{key}` has no comment"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let err = load("[tasks]\ndefault_timeout_ms = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tasks.default_timeout_ms"), "{err}");
        let err = load("[security]\nwebhook_secrets = [\"nope\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("security.webhook_secrets[0]"), "{err}");
        assert!(!err.contains("nope"), "{err}");
        let err = load("[server]\nlisen = \"x\"").unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn secrets_from_the_environment_are_strings_whatever_they_look_like() {
        let secret = WebhookSecret::generate();
        let env = EnvLayer::from_pairs([
            ("BACKENDLESS.API_KEY", "1234567890"),
            ("backendless.app_id", "app"),
            ("backendless.superuser.login", "admin@example.com"),
            ("backendless.superuser.password", "[not, a, list]"),
            ("security.webhook_secrets", secret.as_str()),
            // Other keys are still typed.
            ("tasks.max_timeout_ms", "30000"),
            ("security.allow_unsigned", "true"),
        ]);
        let figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(env);
        let config = Config::from_figment(figment).unwrap();
        assert_eq!(config.backendless.api_key.expose_secret(), "1234567890");
        assert_eq!(
            config.backendless.superuser.password.expose_secret(),
            "[not, a, list]"
        );
        assert_eq!(config.security.webhook_secrets.len(), 1);
        assert_eq!(config.tasks.max_timeout_ms, 30000);
        assert!(config.security.allow_unsigned);
        let env = EnvLayer::from_pairs([("backendless.superuser.password", "true")]);
        let figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(env);
        let config = Config::from_figment(figment).unwrap();
        assert_eq!(
            config.backendless.superuser.password.expose_secret(),
            "true"
        );
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        for overlay in [
            "[backendless]\napi_key = 987654321",
            "[backendless.superuser]\npassword = 987654321",
            "[security]\nwebhook_secrets = [987654321]",
        ] {
            let err = Config::from_toml(overlay).unwrap_err().to_string();
            assert!(!err.contains("987654321"), "{err}");
            assert!(err.contains("not shown"), "{err}");
        }
    }

    #[test]
    fn durations_that_would_overflow_a_clock_are_refused_naming_the_key() {
        for key in [
            "[backendless]\nrequest_timeout_ms",
            "[backendless]\nsession_timeout_secs",
            "[tasks]\nmax_timeout_ms",
            "[shutdown]\ngrace_period_secs",
            "[shutdown]\ndrain_delay_ms",
            "[security]\ntimestamp_tolerance_secs",
            "[server]\nheader_read_timeout_ms",
            "[server]\nbody_read_timeout_ms",
        ] {
            let err = Config::from_toml(&format!("{key} = 9223372036854775807"))
                .unwrap_err()
                .to_string();
            let name = key.replace("]\n", ".").replace('[', "");
            assert!(err.contains(&name), "{key}: {err}");
        }
        let err = Config::from_toml("[tasks]\ndefault_timeout_ms = 9223372036854775807\nmax_timeout_ms = 9223372036854775807")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tasks.default_timeout_ms"), "{err}");
    }

    #[test]
    fn server_limits_must_be_positive_and_bounded_naming_the_key() {
        for key in [
            "header_read_timeout_ms",
            "body_read_timeout_ms",
            "max_connections",
            "max_tasks_in_flight",
            "max_async_tasks",
        ] {
            let err = Config::from_toml(&format!("[server]\n{key} = 0"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("server.{key}")), "{err}");
        }
        let err = Config::from_toml("[server]\nmax_async_tasks = 100000000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.max_async_tasks"), "{err}");
        let err = Config::from_toml("[tasks]\nhandler_threads = 100000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tasks.handler_threads"), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let secret = WebhookSecret::generate();
        let overlay = format!(
            "[security]\nwebhook_secrets = [\"{secret}\"]\n\
             [backendless]\napi_key = \"the-cloudcode-key\"\n\
             [backendless.superuser]\nlogin = \"a@b\"\npassword = \"the-password\"\n\
             [redis]\nurl = \"redis://:the-redis-password@127.0.0.1:6379\"\n\
             [console]\ntoken = \"the-console-token\""
        );
        let config = Config::from_toml(&overlay).unwrap();
        let shown = format!("{config:?} {:?}", crate::runner::sdk_config(&config));
        for s in [
            secret.as_str(),
            "the-cloudcode-key",
            "the-password",
            "the-redis-password",
            "the-console-token",
        ] {
            assert!(!shown.contains(s), "{s} in {shown}");
        }
    }

    #[test]
    fn the_kubernetes_overlay_loads_with_the_redis_store() {
        let manifest = include_str!("../deploy/kubernetes/configmap.yaml");
        let (_, toml) = manifest
            .split_once("coderunner.toml: |\n")
            .expect("the ConfigMap holds coderunner.toml");
        let overlay: String = toml
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        // The password comes from the Secret, as a file.
        let secret = Toml::string("[backendless.superuser]\npassword = \"from-the-secret\"");
        let figment = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Toml::string(&overlay))
            .merge(secret);
        let config = Config::from_figment(figment).unwrap();
        assert_eq!(config.store.kind, StoreKind::Redis);
        assert_eq!(config.store.prefix, "coderunner:");
    }

    #[test]
    fn the_redis_store_needs_a_valid_url_and_positive_bounds() {
        let err = Config::from_toml("[store]\nkind = \"redis\"\n[redis]\nurl = \"nope://x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("redis.url"), "{err}");
        let err = Config::from_toml("[store]\nkind = \"redis\"\nsession_lease_ms = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.session_lease_ms"), "{err}");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let secret = WebhookSecret::generate();
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        let overlay = format!(
            "[security]\nwebhook_secrets_file = {:?}",
            path.display().to_string()
        );
        let figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(&overlay));
        let config = Config::from_figment(figment).unwrap();
        assert_eq!(config.security.webhook_secrets[0].expose_secret(), secret);
        assert!(!format!("{config:?}").contains(&secret));
    }

    #[test]
    fn the_console_is_off_by_default_on_in_dev_and_its_token_is_a_secret() {
        let defaults = Config::from_toml("").unwrap();
        assert!(!defaults.console.enabled);
        assert_eq!(defaults.console.ring_size, 500);
        let dev = Config::from_toml(DEV_TOML).unwrap();
        assert!(dev.console.enabled);
        assert!(dev.console.token.expose_secret().is_empty());

        let figment = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(EnvLayer::from_pairs([("console.token", "12345")]));
        let config = Config::from_figment(figment).unwrap();
        assert_eq!(config.console.token.expose_secret(), "12345");
        assert!(!format!("{config:?}").contains("12345"));

        let err = Config::from_toml("[console]\nlisten = \"console\"\n").unwrap_err();
        assert!(err.to_string().contains("console.listen"), "{err}");
        for size in ["0", "100001"] {
            let err = Config::from_toml(&format!("[console]\nring_size = {size}\n")).unwrap_err();
            assert!(err.to_string().contains("console.ring_size"), "{err}");
        }
    }
}
