//! The emulator's configuration (the `[emulator]` section of the config files)
//! and the built-in dev seed.
//!
//! Secrets (user passwords, the runner's signing secret) are [`Secret`]s: their
//! `Debug` never shows the value.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// A secret string from the configuration. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl Default for Secret {
    fn default() -> Self {
        Self::new("")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// A string; anything else is an error that does not show the value.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Secret::new(s)),
            _ => Err(serde::de::Error::custom(
                "a secret must be a string (the value is not shown)",
            )),
        }
    }
}

/// The channel an API key belongs to; it decides the key's role and the
/// RunnerContext's `deviceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum KeyKind {
    /// REST clients: role `RestUser`, device `REST`.
    #[serde(rename = "REST")]
    Rest,
    /// The JS SDK: role `JSUser`, device `JS`.
    #[serde(rename = "JS")]
    Js,
    /// Android: role `AndroidUser`, device `ANDROID`.
    #[serde(rename = "ANDROID")]
    Android,
    /// iOS: role `IOSUser`, device `IOS`.
    #[serde(rename = "IOS")]
    Ios,
    /// .NET: role `DotNetUser`, device `DOTNET`.
    #[serde(rename = "DOTNET")]
    DotNet,
    /// Business logic: role `ServerCodeUser`, device `BL`. Requests made with
    /// it fire no events (spec §8.5).
    #[serde(rename = "CloudCode")]
    CloudCode,
}

impl KeyKind {
    /// The system role every request made with this key holds.
    pub fn role(self) -> &'static str {
        match self {
            KeyKind::Rest => "RestUser",
            KeyKind::Js => "JSUser",
            KeyKind::Android => "AndroidUser",
            KeyKind::Ios => "IOSUser",
            KeyKind::DotNet => "DotNetUser",
            KeyKind::CloudCode => "ServerCodeUser",
        }
    }

    /// The RunnerContext `deviceType` of requests made with this key.
    pub fn device_type(self) -> &'static str {
        match self {
            KeyKind::Rest => "REST",
            KeyKind::Js => "JS",
            KeyKind::Android => "ANDROID",
            KeyKind::Ios => "IOS",
            KeyKind::DotNet => "DOTNET",
            KeyKind::CloudCode => "BL",
        }
    }

    /// The name used in the configuration and the inspection routes.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Rest => "REST",
            KeyKind::Js => "JS",
            KeyKind::Android => "ANDROID",
            KeyKind::Ios => "IOS",
            KeyKind::DotNet => "DOTNET",
            KeyKind::CloudCode => "CloudCode",
        }
    }
}

/// One API key of the app. `Debug` shows a short prefix of the key only.
#[derive(Clone, PartialEq, Deserialize)]
pub struct ApiKeyConfig {
    /// The key as it appears in the URL (`/{appId}/{key}/...`).
    pub key: String,
    /// Its channel.
    pub kind: KeyKind,
}

impl fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("key", &super::inspect::mask(&self.key))
            .field("kind", &self.kind)
            .finish()
    }
}

/// A user created at start-up (if no user with that email exists yet).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserConfig {
    /// The login identity.
    pub email: String,
    /// The password (stored salted and hashed).
    pub password: Secret,
    /// Custom roles (e.g. `Admin`).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A table operation that permissions govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Create objects (error 1011 when denied).
    Create,
    /// Find, find by id, count (error 1013).
    Find,
    /// Update (error 1012).
    Update,
    /// Remove (error 1014).
    Remove,
}

/// GRANT or DENY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Access {
    /// Allowed.
    #[default]
    #[serde(rename = "GRANT")]
    Grant,
    /// Refused.
    #[serde(rename = "DENY")]
    Deny,
}

/// The grants and denials of one role on one table, or (as
/// [`FileRolePermissions`]) on a directory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(bound(deserialize = "Op: Deserialize<'de>"))]
pub struct RolePermissions<Op = Operation> {
    /// The role (system or custom).
    pub role: String,
    /// Operations explicitly granted.
    #[serde(default)]
    pub grant: Vec<Op>,
    /// Operations explicitly denied.
    #[serde(default)]
    pub deny: Vec<Op>,
}

/// The grants and denials of one role on a directory.
pub type FileRolePermissions = RolePermissions<FileOperation>;

/// Permissions of one table. Tables not listed allow everything.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TableConfig {
    /// The table name (case-sensitive).
    pub name: String,
    /// What applies when no level decides.
    #[serde(default)]
    pub default: Access,
    /// Per-role grants and denials.
    #[serde(default)]
    pub permissions: Vec<RolePermissions>,
}

/// A file operation that file permissions govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOperation {
    /// Download, list, `exists`.
    Read,
    /// Upload, save, create a directory, the target of copy, move and rename.
    Write,
    /// Remove, the source of move and rename.
    Delete,
}

/// Permissions of a directory of the file storage and everything under it
/// (the longest configured path that contains a file decides). Paths not
/// under any configured directory allow everything.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DirectoryConfig {
    /// The directory, from the storage root (`/private`).
    pub path: String,
    /// What applies when no role decides.
    #[serde(default)]
    pub default: Access,
    /// Per-role grants and denials.
    #[serde(default)]
    pub permissions: Vec<FileRolePermissions>,
}

/// How many children a relation column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Cardinality {
    /// One child at most (`1:1`).
    #[serde(rename = "1:1")]
    One,
    /// Any number of children, in the order they were added (`1:N`).
    #[serde(rename = "1:N")]
    Many,
}

/// A relation column declared up front: `table.column` points to rows of
/// `child`. A client can also declare one on first use with the REST form
/// `column:Child:1` or `column:Child:n` in the relation routes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RelationConfig {
    /// The parent table.
    pub table: String,
    /// The relation column of the parent table.
    pub column: String,
    /// The child table.
    pub child: String,
    /// `1:1` or `1:N`.
    pub cardinality: Cardinality,
}

/// How the emulator hands tasks to runners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkTransport {
    /// Signed `POST {url}/invoke` to one runner, which lists its handlers at `GET {url}/handlers`.
    #[default]
    Http,
    /// Backendless's Redis task queue: runners register (debug mode) or deploy
    /// their model, and take the tasks of the events it lists from Redis.
    Redis,
}

/// The link to a business-logic runner.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunnerLinkConfig {
    /// `http` (the default) or `redis`.
    #[serde(default)]
    pub transport: LinkTransport,
    /// Base URL of the runner: the emulator calls `GET {url}/handlers` and
    /// `POST {url}/invoke`. HTTP only.
    #[serde(default)]
    pub url: String,
    /// The Standard Webhooks secret (`whsec_...`) that signs every task. HTTP only.
    #[serde(default)]
    pub secret: Secret,
    /// The Redis the tasks go through. Redis only.
    #[serde(default = "default_redis_url")]
    pub redis_url: String,
    /// The list tasks of the deployed model go to (a debug runner's tasks go
    /// to the list named after the app id). Redis only.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Frame tasks and replies as Backendless's `compression` setting does. Redis only.
    #[serde(default)]
    pub compression: bool,
    /// If set, every task sent is also written there as `<unix-ms>-<eventName>-<taskId>.json`.
    #[serde(default)]
    pub record_dir: Option<PathBuf>,
    /// The task `timeout` (ms) given to handlers.
    #[serde(default = "default_task_timeout_ms")]
    pub task_timeout_ms: u64,
}

fn default_task_timeout_ms() -> u64 {
    5000
}

impl RunnerLinkConfig {
    /// A signed-HTTP link to the runner at `url`, tasks signed with `secret`.
    pub fn http(url: impl Into<String>, secret: Secret) -> Self {
        Self {
            transport: LinkTransport::Http,
            url: url.into(),
            secret,
            redis_url: default_redis_url(),
            queue: default_queue(),
            compression: false,
            record_dir: None,
            task_timeout_ms: default_task_timeout_ms(),
        }
    }

    /// A Redis link: tasks go through the Redis at `redis_url` to the runners
    /// that registered or deployed a model.
    pub fn redis(redis_url: impl Into<String>) -> Self {
        Self {
            transport: LinkTransport::Redis,
            redis_url: redis_url.into(),
            ..Self::http(String::new(), Secret::default())
        }
    }
}

fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".to_owned()
}

fn default_queue() -> String {
    "CODE_RUNNER_DRIVER".to_owned()
}

/// Configuration of the emulator (`[emulator]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct EmulatorConfig {
    /// Address `coderunner emulator` listens on.
    pub listen: String,
    /// SQLite file, or `:memory:`.
    pub database: String,
    /// The URL handlers should use to call back (`initAppData.url` of tasks);
    /// defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// The application id (first path segment).
    pub app_id: String,
    /// The app's API keys.
    pub keys: Vec<ApiKeyConfig>,
    /// Users created at start-up.
    pub users: Vec<UserConfig>,
    /// Table permissions.
    pub tables: Vec<TableConfig>,
    /// File storage permissions, per directory.
    pub directories: Vec<DirectoryConfig>,
    /// The most bytes the file storage holds (all files together).
    pub files_max_bytes: u64,
    /// Relation columns declared at start-up.
    pub relations: Vec<RelationConfig>,
    /// Session inactivity timeout in seconds; each use resets it.
    pub session_timeout_secs: u64,
    /// Maximum simultaneous sessions per user; 0 = unlimited.
    pub max_sessions_per_user: u32,
    /// Business-logic runner; none = no events fire.
    pub runner: Option<RunnerLinkConfig>,
    /// How many requests the inspection log keeps.
    pub request_log_capacity: usize,
    /// How many cache entries may exist at once.
    pub cache_max_entries: usize,
    /// The configuration items of API services, by service and item name,
    /// as the console sets them per app (`configurationItems` of service
    /// tasks). Values may be secrets: `Debug` hides them.
    pub service_config:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, Secret>>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8100".to_owned(),
            database: ":memory:".to_owned(),
            public_url: None,
            app_id: "dev-app".to_owned(),
            keys: Vec::new(),
            users: Vec::new(),
            tables: Vec::new(),
            directories: Vec::new(),
            files_max_bytes: 256 * 1024 * 1024,
            relations: Vec::new(),
            session_timeout_secs: 3600,
            max_sessions_per_user: 0,
            runner: None,
            request_log_capacity: 100_000,
            cache_max_entries: 10_000,
            service_config: std::collections::BTreeMap::new(),
        }
    }
}

impl EmulatorConfig {
    /// The dev app seed: the `[emulator]` section of the built-in defaults
    /// layered with `config/dev.toml`, the one place the dev app's keys,
    /// users and tables are written.
    pub fn dev() -> Self {
        let sources = crate::config::Sources {
            builtin_overlays: vec![crate::config::DEV_TOML],
            file: None,
            env: false,
        };
        crate::config::Config::figment(&sources)
            .and_then(|figment| crate::config::Config::section(&figment, "emulator"))
            .expect("the compiled-in config/dev.toml has a valid [emulator] section")
    }

    /// Checks the configuration, naming the offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.app_id.is_empty() {
            anyhow::bail!("emulator.app_id must not be empty");
        }
        for (i, r) in self.relations.iter().enumerate() {
            for (key, name) in [
                ("table", &r.table),
                ("column", &r.column),
                ("child", &r.child),
            ] {
                if !super::where_clause::is_identifier(name) {
                    anyhow::bail!(
                        "emulator.relations[{i}].{key}: `{name}` is not a valid name (letters, digits and `_`, not starting with a digit)"
                    );
                }
            }
            if self.relations[..i]
                .iter()
                .any(|o| o.table == r.table && o.column == r.column)
            {
                anyhow::bail!(
                    "emulator.relations[{i}]: {}.{} is declared twice",
                    r.table,
                    r.column
                );
            }
        }
        if self.session_timeout_secs == 0 {
            anyhow::bail!("emulator.session_timeout_secs must be at least 1");
        }
        crate::config::check_duration(
            "emulator.session_timeout_secs",
            std::time::Duration::from_secs(self.session_timeout_secs),
        )?;
        if let Some(runner) = &self.runner {
            crate::config::check_duration(
                "emulator.runner.task_timeout_ms",
                std::time::Duration::from_millis(runner.task_timeout_ms),
            )?;
        }
        match &self.runner {
            Some(runner) if runner.transport == LinkTransport::Http => {
                crate::signature::WebhookSecret::parse(runner.secret.expose())
                    .map_err(|e| anyhow::anyhow!("emulator.runner.secret: {e}"))?;
                if !runner.url.starts_with("http://") && !runner.url.starts_with("https://") {
                    anyhow::bail!("emulator.runner.url must start with http:// or https://");
                }
            }
            Some(runner) => {
                redis::Client::open(runner.redis_url.as_str())
                    .map_err(|e| anyhow::anyhow!("emulator.runner.redis_url: {}", e.category()))?;
                if runner.queue.is_empty() {
                    anyhow::bail!("emulator.runner.queue must not be empty");
                }
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let config = EmulatorConfig {
            runner: Some(RunnerLinkConfig {
                transport: LinkTransport::Http,
                url: "http://127.0.0.1:1".into(),
                secret: Secret::new("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="),
                redis_url: default_redis_url(),
                queue: default_queue(),
                compression: false,
                record_dir: None,
                task_timeout_ms: 5000,
            }),
            ..EmulatorConfig::dev()
        };
        assert!(config.validate().is_ok());
        let shown = format!("{config:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("alice-pass"), "{shown}");
        assert!(!shown.contains("dev-cloudcode-key"), "{shown}");
        assert!(shown.contains("alice@example.com"));
    }

    #[test]
    fn durations_that_would_overflow_a_clock_are_refused() {
        let config = EmulatorConfig {
            session_timeout_secs: u64::MAX,
            ..EmulatorConfig::dev()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("emulator.session_timeout_secs"), "{err}");
        let config = EmulatorConfig {
            runner: Some(RunnerLinkConfig {
                task_timeout_ms: u64::MAX,
                ..RunnerLinkConfig::http(
                    "http://127.0.0.1:1",
                    Secret::new("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="),
                )
            }),
            ..EmulatorConfig::dev()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("emulator.runner.task_timeout_ms"), "{err}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        let err = serde_json::from_str::<Secret>("987654321").unwrap_err();
        assert!(!err.to_string().contains("987654321"), "{err}");
    }
}
