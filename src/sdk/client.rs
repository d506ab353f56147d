//! [`Backendless`], the process-wide handle, and [`Client`], a handle bound
//! to one identity. The identity is fixed when the client is made and the
//! token sent with each request is read from the client itself, so there is
//! no shared "current user" for concurrent invocations to overwrite.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::cache::Cache;
use super::config::SdkConfig;
use super::counters::Counters;
use super::data::{Data, Table};
use super::error::{SdkError, TimeoutLimit};
use super::files::Files;
use super::logging::{LogQueue, Logger};
use super::messaging::Messaging;
use super::services::{Events, Services};
use super::session::{
    MemorySessionStore, SessionLimits, SessionStatus, SessionStore, SuperuserSession,
};
use super::transport::{Call, Reply, Transport, Want, decode};
use super::users::Users;
use crate::event::UserToken;

/// The SDK's process-wide handle: one HTTP connection pool, the root URL and
/// the shared superuser session. Cheap to clone (an `Arc` inside).
///
/// # Example
/// ```no_run
/// # async fn run() -> Result<(), coderunner::sdk::SdkError> {
/// use coderunner::sdk::{Backendless, SdkConfig};
/// let backendless = Backendless::new(SdkConfig::new(
///     "http://127.0.0.1:8100", "APP-ID", "API-KEY".into(),
/// ))?;
/// let n: i64 = backendless.server_key().counters().increment_and_get("visits").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Backendless {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<Transport>,
    session: Arc<SuperuserSession>,
    logout_on_shutdown: bool,
    /// The bound on [`Backendless::shutdown`]; `None` = none.
    shutdown_timeout: Option<Duration>,
    /// The app log's queue, shared by every [`Logger`].
    log: Arc<LogQueue>,
    /// `false` for the stand-in of a runner without an SDK: every call
    /// fails with [`SdkError::NotConfigured`] before anything is sent.
    configured: bool,
}

impl fmt::Debug for Backendless {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backendless").finish_non_exhaustive()
    }
}

impl Backendless {
    /// Builds the handle; the superuser token is kept in process memory.
    /// Fails with [`SdkError::InvalidArgument`] when the URL or keys are
    /// unusable (an empty app id or key, a `/` in them, a URL that is not
    /// http or https). No request is sent: the superuser logs in on first use.
    /// In a runner, the runner makes this handle from `[backendless]` and
    /// handlers reach it through [`crate::Context`].
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Backendless, SdkConfig};
    /// let sdk = Backendless::new(SdkConfig::new("http://127.0.0.1:8100", "APP-ID", "API-KEY".into()))?;
    /// # let _ = sdk;
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn new(config: SdkConfig) -> Result<Self, SdkError> {
        Self::with_store(config, Arc::new(MemorySessionStore::default()))
    }

    /// Like [`Backendless::new`], with the superuser token kept in `store`:
    /// [`crate::store::RedisStore`] shares one session across a fleet (the
    /// runner does this with `[store] kind = "redis"`).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{Backendless, MemorySessionStore, SdkConfig};
    /// use std::sync::Arc;
    /// let config = SdkConfig::new("http://127.0.0.1:8100", "APP-ID", "API-KEY".into());
    /// let sdk = Backendless::with_store(config, Arc::new(MemorySessionStore::default()))?;
    /// # let _ = sdk;
    /// # Ok::<(), coderunner::sdk::SdkError>(())
    /// ```
    pub fn with_store(config: SdkConfig, store: Arc<dyn SessionStore>) -> Result<Self, SdkError> {
        let root = root_url(&config)?;
        // No redirect is followed: it would re-send the caller's token or the
        // superuser's password to wherever the `Location` points.
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        // No cap: no pool timer either (see `SdkConfig::request_timeout`).
        if config.request_timeout.is_zero() {
            builder = builder.pool_idle_timeout(None);
        }
        let http = builder.build().map_err(|e| {
            SdkError::invalid(
                "server_url",
                format!("could not build the HTTP client: {e}"),
            )
        })?;
        let transport = Arc::new(Transport::new(
            http,
            root,
            config.api_key,
            config.request_timeout,
        ));
        // Zero: no bound, no timer.
        let bound = |d: Duration| Some(d).filter(|d| !d.is_zero());
        let limits = SessionLimits {
            login: bound(config.login_timeout),
            logout: bound(config.logout_timeout),
        };
        let session = Arc::new(SuperuserSession::new(
            Arc::clone(&transport),
            config.superuser,
            store,
            config.login_backoff,
            config.session_timeout,
            limits,
        ));
        Ok(Backendless {
            inner: Arc::new(Inner {
                transport,
                session,
                logout_on_shutdown: config.logout_on_shutdown,
                shutdown_timeout: bound(config.shutdown_timeout),
                log: Arc::new(LogQueue::new(config.log_policy)),
                configured: true,
            }),
        })
    }

    /// The stand-in a [`crate::Context`] without an SDK hands out: its
    /// clients fail every call with [`SdkError::NotConfigured`].
    pub(crate) fn unconfigured() -> Self {
        static UNCONFIGURED: std::sync::OnceLock<Backendless> = std::sync::OnceLock::new();
        UNCONFIGURED
            .get_or_init(|| {
                let mut config = SdkConfig::new(
                    "http://127.0.0.1:9",
                    "not-configured",
                    "not-configured".to_owned().into(),
                );
                // Nothing is ever sent: no bound, so no timer.
                config.request_timeout = Duration::ZERO;
                config.login_timeout = Duration::ZERO;
                config.logout_timeout = Duration::ZERO;
                config.shutdown_timeout = Duration::ZERO;
                let built = Self::new(config).expect("a loopback URL and plain keys are valid");
                let inner = Arc::try_unwrap(built.inner)
                    .unwrap_or_else(|_| unreachable!("just built, not shared"));
                Backendless {
                    inner: Arc::new(Inner {
                        configured: false,
                        ..inner
                    }),
                }
            })
            .clone()
    }

    /// A client acting as the caller of the event: `token` is the context's
    /// `userToken` (no password needed). `None` is an anonymous caller: no
    /// `user-token` is sent. In a handler, [`crate::Context::caller`] makes
    /// this client with the invocation's token and deadline. An expired token
    /// makes its calls fail with 3064; the SDK never falls back to anonymous.
    ///
    /// # Example
    /// ```
    /// # async fn example(sdk: coderunner::sdk::Backendless) -> Result<(), coderunner::sdk::SdkError> {
    /// # let token: Option<coderunner::event::UserToken> = None;
    /// let caller = sdk.caller(token); // e.g. `ctx.runner().user_token.clone()`
    /// let mine = caller.table::<serde_json::Value>("Order").count(None).await?;
    /// # let _ = mine;
    /// # Ok(()) }
    /// ```
    pub fn caller(&self, token: Option<UserToken>) -> Client {
        self.client(Identity::Caller(token))
    }

    /// A client acting as the shared superuser (logged in once per process,
    /// re-logged in once when the backend rejects its token). Without
    /// `[backendless.superuser]` its calls fail with
    /// [`SdkError::Login`] ([`crate::sdk::LoginErrorKind::NotConfigured`]); a
    /// refused login is 3003 (bad credentials) or 3044/3002 (login limit).
    ///
    /// # Example
    /// ```
    /// # async fn example(sdk: coderunner::sdk::Backendless) -> Result<(), coderunner::sdk::SdkError> {
    /// let n = sdk.superuser().counters().increment_and_get("orders").await?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub fn superuser(&self) -> Client {
        self.client(Identity::Superuser)
    }

    /// A client with the API key alone and no `user-token`: with the
    /// CloudCode key, the ServerCodeUser role's permissions. The identity of
    /// role changes and of "Cloud Code only" tables; a table that does not
    /// grant ServerCodeUser refuses it (1011 to 1014).
    ///
    /// # Example
    /// ```
    /// # async fn example(sdk: coderunner::sdk::Backendless) -> Result<(), coderunner::sdk::SdkError> {
    /// let total = sdk.server_key().table::<serde_json::Value>("Ledger").count(None).await?;
    /// # let _ = total;
    /// # Ok(()) }
    /// ```
    pub fn server_key(&self) -> Client {
        self.client(Identity::ServerKey)
    }

    fn client(&self, identity: Identity) -> Client {
        Client {
            backendless: self.clone(),
            identity,
            deadline: None,
        }
    }

    /// The shared superuser session's state (never its token): when it was
    /// logged in, its renewals, re-logins and failures, and the backoff. No
    /// request is sent; the runner's console shows the same figures.
    ///
    /// # Example
    /// ```
    /// # async fn example(sdk: coderunner::sdk::Backendless) {
    /// let status = sdk.session_status();
    /// if let Some(kind) = status.last_error {
    ///     tracing::warn!(kind, code = ?status.last_error_code, backoff_ms = ?status.backoff_ms, "the superuser cannot log in");
    /// }
    /// # }
    /// ```
    pub fn session_status(&self) -> SessionStatus {
        self.inner.session.status()
    }

    /// Sends the queued app log messages, then logs the superuser out when
    /// `logout_on_shutdown` is set and a session exists, all within
    /// `shutdown_timeout` even when the backend does not answer or a login is
    /// in progress (the session is then left to expire). Errors are logged,
    /// not returned. The runner calls it at shutdown; call it yourself only
    /// for a handle you made.
    ///
    /// # Example
    /// ```
    /// # async fn example(sdk: coderunner::sdk::Backendless) {
    /// sdk.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        let flush = self.inner.log.flush();
        let flushed = match self.inner.shutdown_timeout {
            Some(limit) => tokio::time::timeout(limit, flush).await.ok(),
            None => Some(flush.await),
        };
        if let Some(Err(e)) = flushed {
            tracing::debug!(error = %e, "app log messages could not be sent at shutdown");
        }
        if !self.inner.logout_on_shutdown {
            return;
        }
        let logout = self.inner.session.logout();
        match self.inner.shutdown_timeout {
            Some(limit) => {
                if tokio::time::timeout(limit, logout).await.is_err() {
                    tracing::warn!(
                        timeout_ms = limit.as_millis() as u64,
                        "superuser logout at shutdown did not finish in time; the session is left to expire"
                    );
                }
            }
            None => logout.await,
        }
    }
}

fn root_url(config: &SdkConfig) -> Result<Url, SdkError> {
    let (argument, text) = match &config.custom_domain {
        Some(domain) => (
            "custom_domain",
            format!("{}/api", domain.trim_end_matches('/')),
        ),
        None => {
            let key = config.api_key.expose_secret();
            if config.app_id.is_empty() || key.is_empty() {
                return Err(SdkError::invalid(
                    "app_id",
                    "app_id and api_key must not be empty",
                ));
            }
            if config.app_id.contains('/') || key.contains('/') {
                return Err(SdkError::invalid(
                    "app_id",
                    "app_id and api_key must not contain '/'",
                ));
            }
            (
                "server_url",
                format!(
                    "{}/{}/{}",
                    config.server_url.trim_end_matches('/'),
                    config.app_id,
                    key
                ),
            )
        }
    };
    // The error of `Url::parse` does not echo the input, so the key stays out.
    let url = Url::parse(&text)
        .map_err(|e| SdkError::invalid(argument, format!("not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(SdkError::invalid(argument, "must be an http or https URL"));
    }
    Ok(url)
}

/// Which identity a [`Client`] acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// The caller of the event, with their token (or anonymous without one).
    Caller,
    /// The shared superuser.
    Superuser,
    /// The API key alone.
    ServerKey,
}

impl IdentityKind {
    /// A bounded label for logs and metrics: `caller`, `superuser` or
    /// `server_key`.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.server_key();
    /// tracing::info!(identity = client.identity().as_str(), "writing the ledger");
    /// # Ok(()) }
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Caller => "caller",
            IdentityKind::Superuser => "superuser",
            IdentityKind::ServerKey => "server_key",
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum Identity {
    Caller(Option<UserToken>),
    Superuser,
    ServerKey,
}

/// A handle that acts as one identity for every call made through it.
/// Cheap to clone; made by [`Backendless::caller`], [`Backendless::superuser`]
/// or [`Backendless::server_key`].
#[derive(Clone)]
pub struct Client {
    backendless: Backendless,
    /// Fixed at construction; each request reads its token from here.
    identity: Identity,
    /// Calls end with [`SdkError::Timeout`] once this passes.
    deadline: Option<Instant>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has_token = matches!(self.identity, Identity::Caller(Some(_)));
        f.debug_struct("Client")
            .field("identity", &self.identity())
            .field("has_token", &has_token)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Client {
    /// The same identity, with every call limited to what is left until
    /// `deadline` (and, as always, to `request_timeout`); a call past it ends
    /// with [`SdkError::Timeout`] ([`crate::sdk::TimeoutLimit::Deadline`]).
    /// The clients of [`crate::Context`] already carry the task's deadline;
    /// this shortens it for one piece of work.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use std::time::Duration;
    /// let quick = ctx.caller().with_deadline(tokio::time::Instant::now() + Duration::from_secs(2));
    /// let cached: Option<String> = quick.cache().get("greeting").await?;
    /// # let _ = cached;
    /// # Ok(()) }
    /// ```
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Which identity this client acts as.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::IdentityKind;
    /// assert_eq!(ctx.superuser().identity(), IdentityKind::Superuser);
    /// # Ok(()) }
    /// ```
    pub fn identity(&self) -> IdentityKind {
        match self.identity {
            Identity::Caller(_) => IdentityKind::Caller,
            Identity::Superuser => IdentityKind::Superuser,
            Identity::ServerKey => IdentityKind::ServerKey,
        }
    }

    /// Whether this is a caller client without a token (an anonymous caller:
    /// the backend applies NotAuthenticatedUser's permissions).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let client = ctx.caller();
    /// if client.is_anonymous() {
    ///     return Ok(()); // nothing to record for a visitor
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_anonymous(&self) -> bool {
        matches!(self.identity, Identity::Caller(None))
    }

    /// The Users service ([`Users`]) as this identity.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let roles = ctx.caller().users().roles().await?;
    /// # Ok(()) }
    /// ```
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }

    /// The Data service ([`Data`]) as this identity.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let orders = ctx.caller();
    /// let orders = orders.data().table::<serde_json::Value>("Order");
    /// let mine = orders.count(Some("status = 'open'")).await?;
    /// # Ok(()) }
    /// ```
    pub fn data(&self) -> Data<'_> {
        Data::new(self)
    }

    /// A table of rows of type `T` (a serde type or `serde_json::Value`);
    /// shorthand for `self.data().table(name)`. A table the identity may not
    /// write refuses with 1011 (create) to 1014 (delete).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { item: String, qty: u32 }
    /// let saved = ctx.caller().table::<Order>("Order").create(&Order { item: "tea".into(), qty: 2 }).await?;
    /// assert_eq!(saved.owner_id.as_deref(), ctx.user_id());
    /// # Ok(()) }
    /// ```
    pub fn table<T>(&self, name: &str) -> Table<'_, T> {
        self.data().table(name)
    }

    /// The Cache service ([`Cache`]) as this identity.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().cache().put("greeting", &"hello", None).await?;
    /// # Ok(()) }
    /// ```
    pub fn cache(&self) -> Cache<'_> {
        Cache::new(self)
    }

    /// The atomic counters service ([`Counters`]) as this identity.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let n = ctx.caller().counters().increment_and_get("visits").await?;
    /// # Ok(()) }
    /// ```
    pub fn counters(&self) -> Counters<'_> {
        Counters::new(self)
    }

    /// The Files service ([`Files`]) as this identity: the directories'
    /// permissions of this identity apply.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let bytes = ctx.caller().files().download("reports/today.txt").await?;
    /// # Ok(()) }
    /// ```
    pub fn files(&self) -> Files<'_> {
        Files::new(self)
    }

    /// The Messaging service ([`Messaging`]: publish, push, email) as this
    /// identity.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use coderunner::sdk::PublishOptions;
    /// ctx.server_key().messaging().publish("news", &"hello", &PublishOptions::new()).await?;
    /// # Ok(()) }
    /// ```
    pub fn messaging(&self) -> Messaging<'_> {
        Messaging::new(self)
    }

    /// The app log's logger `name`; its messages go out under this client's
    /// identity, in batches (see [`Logger`]).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let log = ctx.server_key().logger("nightly");
    /// log.info("the nightly job started");
    /// # Ok(()) }
    /// ```
    pub fn logger(&self, name: &str) -> Logger {
        Logger::new(self.clone(), name, Arc::clone(&self.backendless.inner.log))
    }

    /// This client's deadline, if it has one.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The same identity with no deadline (the log queue's background sends).
    pub(crate) fn without_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// Whether `other` sends the same identity (and token).
    pub(crate) fn same_identity(&self, other: &Client) -> bool {
        match (&self.identity, &other.identity) {
            (Identity::Caller(a), Identity::Caller(b)) => {
                a.as_ref().map(UserToken::expose) == b.as_ref().map(UserToken::expose)
            }
            (Identity::Superuser, Identity::Superuser)
            | (Identity::ServerKey, Identity::ServerKey) => true,
            _ => false,
        }
    }

    /// API service methods ([`Services`]), called as this identity: the method
    /// sees this client's user (or none) as its caller. An unknown service is
    /// 14001, an unknown method 14002.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let sum: f64 = ctx
    ///     .caller()
    ///     .services()
    ///     .invoke("CalcService", "sum", &serde_json::json!({"a": 2, "b": 3}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn services(&self) -> Services<'_> {
        Services::new(self)
    }

    /// Custom events ([`Events`]), dispatched as this identity; the arguments
    /// are an object ([`SdkError::InvalidArgument`] otherwise, before any
    /// request).
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key()
    ///     .events()
    ///     .dispatch_async("orderShipped", &serde_json::json!({"orderId": 7}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Events<'_> {
        Events::new(self)
    }

    /// Sends `call` and decodes the reply into `T`.
    pub(crate) async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, SdkError> {
        let service = call.service;
        decode(service, self.send_raw(call).await?)
    }

    /// Sends `call` as this client's identity.
    pub(crate) async fn send_raw(&self, call: Call) -> Result<Value, SdkError> {
        self.send_as(call, Want::Json).await.map(Reply::into_json)
    }

    /// Sends `call` as this client's identity; the reply's bytes as they came.
    pub(crate) async fn send_bytes(&self, call: Call) -> Result<Bytes, SdkError> {
        self.send_as(call, Want::Bytes).await.map(Reply::into_bytes)
    }

    async fn send_as(&self, call: Call, want: Want) -> Result<Reply, SdkError> {
        let inner = &self.backendless.inner;
        if !inner.configured {
            return Err(SdkError::NotConfigured);
        }
        let kind = self.identity();
        match &self.identity {
            Identity::Caller(token) => {
                inner
                    .transport
                    .execute_as(
                        &call,
                        token.as_ref().map(UserToken::expose),
                        kind,
                        self.deadline,
                        want,
                    )
                    .await
            }
            Identity::ServerKey => {
                inner
                    .transport
                    .execute_as(&call, None, kind, self.deadline, want)
                    .await
            }
            Identity::Superuser => {
                let session = &inner.session;
                let token = self.within_deadline(&call, session.token()).await??;
                match self.as_superuser(&call, &token, want).await {
                    Err(e) if e.is_invalid_session() => {
                        tracing::debug!(
                            service = call.service.as_str(),
                            "the superuser token was rejected; logging in again"
                        );
                        let fresh = self
                            .within_deadline(&call, session.refresh(&token))
                            .await??;
                        self.as_superuser(&call, &fresh, want).await
                    }
                    other => other,
                }
            }
        }
    }

    /// Sends `call` with the superuser's `token`; a reply that does not
    /// reject the token counts as a use of the session.
    async fn as_superuser(
        &self,
        call: &Call,
        token: &UserToken,
        want: Want,
    ) -> Result<Reply, SdkError> {
        let inner = &self.backendless.inner;
        let result = inner
            .transport
            .execute_as(
                call,
                Some(token.expose()),
                IdentityKind::Superuser,
                self.deadline,
                want,
            )
            .await;
        match &result {
            Ok(_) => inner.session.touch(),
            Err(e @ SdkError::Backend { .. }) if !e.is_invalid_session() => inner.session.touch(),
            Err(_) => {}
        }
        result
    }

    /// Sends `call` with no `user-token`, whatever this client's identity
    /// (login).
    pub(crate) async fn send_without_token(&self, call: Call) -> Result<Value, SdkError> {
        if !self.backendless.inner.configured {
            return Err(SdkError::NotConfigured);
        }
        self.backendless
            .inner
            .transport
            .execute(&call, None, self.identity(), self.deadline)
            .await
    }

    /// The caller's token, when this is a caller client with one.
    pub(crate) fn caller_token(&self) -> Option<&UserToken> {
        match &self.identity {
            Identity::Caller(token) => token.as_ref(),
            _ => None,
        }
    }

    /// Waits for `future` (e.g. the superuser login) no longer than the deadline.
    async fn within_deadline<F: Future>(
        &self,
        call: &Call,
        future: F,
    ) -> Result<F::Output, SdkError> {
        match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, future)
                .await
                .map_err(|_| SdkError::Timeout {
                    service: call.service.as_str(),
                    limit: TimeoutLimit::Deadline,
                }),
            _ => Ok(future.await),
        }
    }
}
