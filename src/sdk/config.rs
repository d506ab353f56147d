//! Configuration of the SDK: where the backend is, which key to use, the
//! superuser's credentials and the limits on each call.
//!
//! Secrets are [`SecretString`]s from the moment they are read; the `Debug`
//! impls here print `[redacted]` in their place.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

/// Everything [`crate::sdk::Backendless::new`] needs.
pub struct SdkConfig {
    /// Base URL of the Backendless API, e.g. `"http://127.0.0.1:8100"` or
    /// `"https://api.backendless.com"`. Ignored when `custom_domain` is set.
    pub server_url: String,
    /// The application id (the first segment of the root URL).
    pub app_id: String,
    /// The API key (the app's CloudCode key in production). Part of the URL,
    /// hence a secret: it never reaches a log line or an error.
    pub api_key: SecretString,
    /// A custom domain such as `"https://xxxx.backendless.app"`; the root URL
    /// becomes `{custom_domain}/api` (spec §4).
    pub custom_domain: Option<String>,
    /// The shared superuser's credentials; `None` makes every
    /// [`crate::sdk::Backendless::superuser`] call fail with
    /// [`crate::sdk::LoginErrorKind::NotConfigured`].
    pub superuser: Option<SuperuserCredentials>,
    /// The cap on each backend call (connect, send and read the whole reply).
    ///
    /// `Duration::ZERO` means **no cap**: a call is limited only by its
    /// client's deadline ([`crate::sdk::Client::with_deadline`]), if any, and
    /// the connection pool keeps idle connections without a timer. Meant for
    /// tests on paused tokio time (`#[tokio::test(start_paused = true)]`):
    /// there, with no deadline either, the SDK starts no timer, so the paused
    /// clock does not jump while a real socket is being read.
    pub request_timeout: Duration,
    /// The backend's session inactivity timeout, if known (Backendless default
    /// 3600 s). The superuser session is renewed once its last use is older
    /// than 90 % of it, instead of waiting for a failed call.
    pub session_timeout: Option<Duration>,
    /// Log the superuser out in [`crate::sdk::Backendless::shutdown`], so that
    /// the session does not count against a login limit after the process ends.
    pub logout_on_shutdown: bool,
    /// The most a superuser login may take, whatever `request_timeout` says
    /// (also when it is zero). A login holds the lock every superuser call
    /// waits on, so a backend that never answers must not hold it for ever.
    /// Default [`LOGIN_TIMEOUT`]; `Duration::ZERO` = no bound (only for
    /// tests on paused time, like `request_timeout`).
    pub login_timeout: Duration,
    /// The most a superuser logout may take (on renewal and at shutdown).
    /// Default [`LOGOUT_TIMEOUT`]; `Duration::ZERO` = no bound (tests only).
    pub logout_timeout: Duration,
    /// The most [`crate::sdk::Backendless::shutdown`] may take, waiting for a
    /// login in progress included; then it gives up on the logout. Default
    /// [`SHUTDOWN_TIMEOUT`]; `Duration::ZERO` = no bound (tests only).
    pub shutdown_timeout: Duration,
    /// How failed superuser logins back off.
    pub login_backoff: LoginBackoffConfig,
    /// When the app log's queue sends ([`crate::sdk::Logger`]).
    pub log_policy: crate::sdk::LogPolicy,
}

/// The default [`SdkConfig::login_timeout`]: 15 s.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// The default [`SdkConfig::logout_timeout`]: 5 s.
pub const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default [`SdkConfig::shutdown_timeout`]: 10 s.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

impl SdkConfig {
    /// A configuration with the given backend, no superuser, no custom domain,
    /// a 10 s request timeout, the Backendless default session timeout
    /// (3600 s), logout on shutdown, the default login backoff and the
    /// default login, logout and shutdown bounds. Set the public fields to
    /// change them. The runner builds this from `[backendless]` itself: a
    /// handler only needs it to make a [`crate::sdk::Backendless`] of its own
    /// (a tool, a test). Nothing is checked here; [`crate::sdk::Backendless::new`]
    /// refuses an empty app id or key or a URL that is not http(s).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{SdkConfig, SuperuserCredentials};
    /// use std::time::Duration;
    /// let api_key = std::env::var("BACKENDLESS_API_KEY").unwrap_or_default();
    /// let mut config = SdkConfig::new("https://api.backendless.com", "APP-ID", api_key.into());
    /// config.superuser = Some(SuperuserCredentials {
    ///     login: "ops@example.com".into(),
    ///     password: std::env::var("SUPERUSER_PASSWORD").unwrap_or_default().into(),
    /// });
    /// config.request_timeout = Duration::from_secs(5);
    /// # let _ = config;
    /// ```
    pub fn new(
        server_url: impl Into<String>,
        app_id: impl Into<String>,
        api_key: SecretString,
    ) -> Self {
        Self {
            server_url: server_url.into(),
            app_id: app_id.into(),
            api_key,
            custom_domain: None,
            superuser: None,
            request_timeout: Duration::from_secs(10),
            session_timeout: Some(Duration::from_secs(3600)),
            logout_on_shutdown: true,
            login_backoff: LoginBackoffConfig::default(),
            login_timeout: LOGIN_TIMEOUT,
            logout_timeout: LOGOUT_TIMEOUT,
            shutdown_timeout: SHUTDOWN_TIMEOUT,
            log_policy: crate::sdk::LogPolicy::default(),
        }
    }
}

impl fmt::Debug for SdkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkConfig")
            .field("server_url", &self.server_url)
            .field("app_id", &self.app_id)
            .field("api_key", &"[redacted]")
            .field("custom_domain", &self.custom_domain)
            .field("superuser", &self.superuser)
            .field("request_timeout", &self.request_timeout)
            .field("session_timeout", &self.session_timeout)
            .field("logout_on_shutdown", &self.logout_on_shutdown)
            .field("login_backoff", &self.login_backoff)
            .field("login_timeout", &self.login_timeout)
            .field("logout_timeout", &self.logout_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("log_policy", &self.log_policy)
            .finish()
    }
}

/// The shared superuser's login and password (from secrets, never source code).
pub struct SuperuserCredentials {
    /// The login (the Users table's identity column, `email` by default).
    pub login: String,
    /// The password.
    pub password: SecretString,
}

impl fmt::Debug for SuperuserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuperuserCredentials")
            .field("login", &self.login)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Exponential backoff after failed superuser logins: the n-th consecutive
/// failure blocks logins for `min(initial * 2^(n-1), max)`. While blocked,
/// superuser calls fail at once with the last login error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginBackoffConfig {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for LoginBackoffConfig {
    /// 1 s, doubling up to 60 s.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::LoginBackoffConfig;
    /// use std::time::Duration;
    /// let backoff = LoginBackoffConfig { max: Duration::from_secs(300), ..LoginBackoffConfig::default() };
    /// assert_eq!(backoff.initial, Duration::from_secs(1));
    /// ```
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}
