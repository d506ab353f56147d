//! The shared superuser session: one login for the whole process, reused by
//! every invocation, renewed before it lapses, re-established once when the
//! backend rejects it, and backing off when logins fail.
//!
//! Single flight: every login happens while holding `login_lock` (a tokio
//! mutex), and whoever gets the lock first re-checks the store, so a thousand
//! concurrent first uses, or a thousand calls failing with the same stale
//! token, cause one login. The login runs in a spawned task that owns the
//! lock guard, so a caller whose deadline expires does not abort a login the
//! others are waiting for.
//!
//! The token lives only behind [`SessionStore`]; it is never written to the
//! app's Backendless cache, where clients could read it. A store shared by a
//! fleet (Redis) extends the single flight across processes: a login needs
//! the store's lease, granted only while the stored token is still the one
//! that failed, so one process logs in and the others use its token.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::time::Instant;

use super::IdentityKind;
use super::config::{LoginBackoffConfig, SuperuserCredentials};
use super::error::{LoginError, LoginErrorKind, SdkError, TimeoutLimit};
use super::transport::{Call, Service, Transport};
use crate::event::UserToken;
use crate::store::StoreError;

/// The right to log in for everyone sharing a [`SessionStore`], granted by
/// [`SessionStore::lease`] and handed back with [`SessionStore::put`] or
/// [`SessionStore::release`]. Its value is the store's own (the memory
/// store's is empty); a caller only passes it back.
///
/// # Example
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use coderunner::sdk::{Lease, MemorySessionStore, SessionStore};
/// let store = MemorySessionStore::default();
/// match store.lease(None).await? {
///     Lease::Granted(lease) => store.release(lease).await?, // log in, or give it back
///     Lease::Replaced(token) => { /* use `token` */ }
///     Lease::Held => { /* ask again soon */ }
/// }
/// # Ok::<(), coderunner::sdk::StoreError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseId(pub String);

/// The answer to [`SessionStore::lease`].
#[derive(Debug, Clone)]
pub enum Lease {
    /// The caller logs in, then stores the token with [`SessionStore::put`]
    /// (or gives the lease back with [`SessionStore::release`]).
    Granted(LeaseId),
    /// The stored token is no longer the one the caller wants replaced:
    /// another process logged in meanwhile; use this one.
    Replaced(UserToken),
    /// Another process holds the lease and is logging in: ask again soon.
    Held,
}

/// Where the superuser token is kept, and who may log in to replace it.
///
/// A store shared by several processes (Redis, [`crate::store::RedisStore`])
/// makes the session one per fleet: [`SessionStore::lease`] is a
/// compare-and-set on the token that failed, so however many processes see
/// the same stale token, one logs in. The lease expires by itself, so a
/// process that dies mid-login does not block the others for ever.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// A bounded label for metrics: `memory` or `redis`.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::{MemorySessionStore, SessionStore};
    /// assert_eq!(MemorySessionStore::default().kind(), "memory");
    /// ```
    fn kind(&self) -> &'static str;
    /// The current token, if any. A store that cannot answer (Redis down)
    /// says so with a [`StoreError`]; the login then fails like one to an
    /// unreachable backend.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use coderunner::sdk::{MemorySessionStore, SessionStore};
    /// let store = MemorySessionStore::default();
    /// assert!(store.get().await?.is_none()); // nobody logged in yet
    /// # Ok::<(), coderunner::sdk::StoreError>(()) }).unwrap();
    /// ```
    async fn get(&self) -> Result<Option<UserToken>, StoreError>;
    /// Asks to log in in place of `expected` (the token that failed or is
    /// due for renewal; `None` = there was none): [`Lease::Granted`] while
    /// the stored token is still `expected`, [`Lease::Replaced`] when another
    /// token replaced it, [`Lease::Held`] while another process holds the
    /// lease.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use coderunner::event::UserToken;
    /// use coderunner::sdk::{Lease, MemorySessionStore, SessionStore};
    /// let store = MemorySessionStore::default();
    /// let Lease::Granted(lease) = store.lease(None).await? else { panic!("the store is empty") };
    /// store.put(lease, UserToken::new("fresh")).await?;
    /// // A caller still holding the stale token is given the fresh one.
    /// let stale = UserToken::new("stale");
    /// assert!(matches!(store.lease(Some(&stale)).await?, Lease::Replaced(t) if t.expose() == "fresh"));
    /// # Ok::<(), coderunner::sdk::StoreError>(()) }).unwrap();
    /// ```
    async fn lease(&self, expected: Option<&UserToken>) -> Result<Lease, StoreError>;
    /// Stores the token got under `lease` and ends the lease.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use coderunner::event::UserToken;
    /// use coderunner::sdk::{Lease, MemorySessionStore, SessionStore};
    /// let store = MemorySessionStore::default();
    /// if let Lease::Granted(lease) = store.lease(None).await? {
    ///     store.put(lease, UserToken::new("t1")).await?;
    /// }
    /// assert_eq!(store.get().await?.map(|t| t.expose().to_owned()).as_deref(), Some("t1"));
    /// # Ok::<(), coderunner::sdk::StoreError>(()) }).unwrap();
    /// ```
    async fn put(&self, lease: LeaseId, token: UserToken) -> Result<(), StoreError>;
    /// Ends `lease` without a token (the login failed), so another caller
    /// may try.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use coderunner::sdk::{Lease, MemorySessionStore, SessionStore};
    /// let store = MemorySessionStore::default();
    /// if let Lease::Granted(lease) = store.lease(None).await? {
    ///     // ... the login failed:
    ///     store.release(lease).await?;
    /// }
    /// assert!(store.get().await?.is_none());
    /// # Ok::<(), coderunner::sdk::StoreError>(()) }).unwrap();
    /// ```
    async fn release(&self, lease: LeaseId) -> Result<(), StoreError>;
    /// At shutdown: this process stops using `token`. `Ok(true)` when no
    /// other process uses it, so it should be logged out (and is forgotten).
    /// The memory store has no other process: always `Ok(true)`.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use coderunner::event::UserToken;
    /// use coderunner::sdk::{Lease, MemorySessionStore, SessionStore};
    /// let store = MemorySessionStore::default();
    /// if let Lease::Granted(lease) = store.lease(None).await? {
    ///     store.put(lease, UserToken::new("t1")).await?;
    /// }
    /// assert!(store.leave(&UserToken::new("t1")).await?);
    /// assert!(store.get().await?.is_none());
    /// # Ok::<(), coderunner::sdk::StoreError>(()) }).unwrap();
    /// ```
    async fn leave(&self, token: &UserToken) -> Result<bool, StoreError>;
}

/// A [`SessionStore`] in process memory: the process's own single flight
/// (the session's login lock) is the only lease needed. It is what
/// [`super::Backendless::new`] uses; built with `Default`.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use coderunner::sdk::{Backendless, MemorySessionStore, SdkConfig};
/// let store = Arc::new(MemorySessionStore::default());
/// let config = SdkConfig::new("http://127.0.0.1:8100", "APP-ID", "API-KEY".into());
/// let sdk = Backendless::with_store(config, store)?;
/// # let _ = sdk;
/// # Ok::<(), coderunner::sdk::SdkError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    token: parking_lot::Mutex<Option<UserToken>>,
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn get(&self) -> Result<Option<UserToken>, StoreError> {
        Ok(self.token.lock().clone())
    }

    async fn lease(&self, expected: Option<&UserToken>) -> Result<Lease, StoreError> {
        Ok(match self.token.lock().as_ref() {
            Some(current) if Some(current) != expected => Lease::Replaced(current.clone()),
            _ => Lease::Granted(LeaseId(String::new())),
        })
    }

    async fn put(&self, _lease: LeaseId, token: UserToken) -> Result<(), StoreError> {
        *self.token.lock() = Some(token);
        Ok(())
    }

    async fn release(&self, _lease: LeaseId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn leave(&self, token: &UserToken) -> Result<bool, StoreError> {
        let mut current = self.token.lock();
        if current.as_ref() == Some(token) {
            *current = None;
        }
        Ok(true)
    }
}

/// Backoff after failed logins, as a pure state machine over [`Instant`].
#[derive(Debug)]
pub(crate) struct Backoff {
    config: LoginBackoffConfig,
    /// Consecutive failed logins.
    failures: u32,
    /// No login is sent before this instant.
    retry_at: Option<Instant>,
    /// What the blocked calls are told.
    last_error: Option<LoginError>,
}

impl Backoff {
    pub(crate) fn new(config: LoginBackoffConfig) -> Self {
        Backoff {
            config,
            failures: 0,
            retry_at: None,
            last_error: None,
        }
    }

    /// `Err` with the last login error while logins are blocked.
    pub(crate) fn check(&self, now: Instant) -> Result<(), LoginError> {
        match (self.retry_at, &self.last_error) {
            (Some(at), Some(err)) if now < at => Err(LoginError {
                retry_in: Some(at - now),
                ..err.clone()
            }),
            _ => Ok(()),
        }
    }

    /// Records a failed login at `now`; returns the wait before the next one.
    pub(crate) fn on_failure(&mut self, now: Instant, error: LoginError) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(31);
        let delay = self
            .config
            .initial
            .saturating_mul(1u32 << doublings)
            .min(self.config.max);
        self.retry_at = Some(now + delay);
        self.last_error = Some(error);
        delay
    }

    /// Records a successful login.
    pub(crate) fn on_success(&mut self) {
        self.failures = 0;
        self.retry_at = None;
        self.last_error = None;
    }
}

/// What the console shows of the superuser session: no token, no password.
///
/// # Example
/// ```no_run
/// # fn show(backendless: &coderunner::sdk::Backendless) {
/// let status = backendless.session_status();
/// if let Some(wait) = status.backoff_ms {
///     println!("logins are paused for {wait} ms after {} failures", status.failed_logins);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    /// Whether superuser credentials are configured.
    pub configured: bool,
    /// `memory` or `redis`: where the token is kept.
    pub store: &'static str,
    /// When this process last got a token (its login, or another process's
    /// through a shared store), ms since the Unix epoch.
    pub logged_in_since_ms: Option<u64>,
    /// Successful logins by this process.
    pub logins: u64,
    /// Logins made to renew a token before it lapsed.
    pub renewals: u64,
    /// Logins made because the backend rejected the token.
    pub relogins: u64,
    /// Failed logins.
    pub failed_logins: u64,
    /// While logins are paused after failures: the time left, in ms.
    pub backoff_ms: Option<u64>,
    /// The kind of the last failed login (`bad_credentials`, `unreachable`, ...).
    pub last_error: Option<&'static str>,
    /// The Backendless code of the last failed login, if it had one.
    pub last_error_code: Option<i64>,
}

/// The session's history, for [`SessionStatus`].
#[derive(Debug, Default)]
struct History {
    since: Option<std::time::SystemTime>,
    logins: u64,
    renewals: u64,
    relogins: u64,
    failed: u64,
    last_error: Option<(&'static str, Option<i64>)>,
}

/// The longest a login waits for another process's lease (a lease expires
/// by itself well before: `store.session_lease_ms`).
const LEASE_WAIT: Duration = Duration::from_secs(45);
/// How often a waiting login asks for the lease again.
const LEASE_POLL: Duration = Duration::from_millis(25);

/// A store that cannot answer fails the login like an unreachable backend.
fn store_error(e: StoreError) -> LoginError {
    LoginError {
        kind: LoginErrorKind::Unreachable,
        code: None,
        message: e.to_string(),
        retry_in: None,
    }
}

/// Logout errors meaning "already logged out" (spec §4.1).
const ALREADY_LOGGED_OUT: &[i64] = &[3023, 3064, 3090, 3091];

pub(crate) struct SuperuserSession {
    transport: Arc<Transport>,
    credentials: Option<SuperuserCredentials>,
    store: Arc<dyn SessionStore>,
    /// The token this process last read or obtained: used without asking
    /// the store again until the backend rejects it or it is due for
    /// renewal (and while the store is unreachable).
    held: parking_lot::Mutex<Option<UserToken>>,
    /// Held (by a spawned task) for the whole of a login: the single flight.
    login_lock: Arc<tokio::sync::Mutex<()>>,
    backoff: parking_lot::Mutex<Backoff>,
    /// When this process last used the token with success; drives renewal.
    last_used: parking_lot::Mutex<Option<Instant>>,
    session_timeout: Option<Duration>,
    /// Bounds on a login and a logout, whatever `request_timeout` says.
    limits: SessionLimits,
    /// Logins, renewals and failures, for the console.
    history: parking_lot::Mutex<History>,
}

/// The most a login and a logout may take; `None` = no bound (tests on
/// paused time).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SessionLimits {
    pub(crate) login: Option<Duration>,
    pub(crate) logout: Option<Duration>,
}

impl SuperuserSession {
    pub(crate) fn new(
        transport: Arc<Transport>,
        credentials: Option<SuperuserCredentials>,
        store: Arc<dyn SessionStore>,
        backoff: LoginBackoffConfig,
        session_timeout: Option<Duration>,
        limits: SessionLimits,
    ) -> Self {
        SuperuserSession {
            transport,
            credentials,
            store,
            held: parking_lot::Mutex::new(None),
            login_lock: Arc::new(tokio::sync::Mutex::new(())),
            backoff: parking_lot::Mutex::new(Backoff::new(backoff)),
            last_used: parking_lot::Mutex::new(None),
            session_timeout,
            limits,
            history: parking_lot::Mutex::new(History::default()),
        }
    }

    /// The session's state, without its token.
    pub(crate) fn status(&self) -> SessionStatus {
        let now = Instant::now();
        let history = self.history.lock();
        let backoff_ms = self
            .backoff
            .lock()
            .check(now)
            .err()
            .and_then(|e| e.retry_in)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        SessionStatus {
            configured: self.credentials.is_some(),
            store: self.store.kind(),
            logged_in_since_ms: history.since.map(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }),
            logins: history.logins,
            renewals: history.renewals,
            relogins: history.relogins,
            failed_logins: history.failed,
            backoff_ms,
            last_error: history.last_error.map(|(kind, _)| kind),
            last_error_code: history.last_error.and_then(|(_, code)| code),
        }
    }

    /// Whether the token should be renewed: its last use is older than 90 %
    /// of the session timeout.
    fn is_stale(&self, now: Instant) -> bool {
        match (self.session_timeout, *self.last_used.lock()) {
            (Some(timeout), Some(last)) => now.duration_since(last) >= timeout.mul_f64(0.9),
            _ => false,
        }
    }

    /// Whether the backend has certainly ended the session for inactivity.
    fn has_lapsed(&self, now: Instant) -> bool {
        match (self.session_timeout, *self.last_used.lock()) {
            (Some(timeout), Some(last)) => now.duration_since(last) >= timeout,
            _ => false,
        }
    }

    /// Records a use of the token (each call resets the backend's
    /// inactivity timer).
    pub(crate) fn touch(&self) {
        *self.last_used.lock() = Some(Instant::now());
    }

    fn not_configured() -> LoginError {
        LoginError {
            kind: LoginErrorKind::NotConfigured,
            code: None,
            message: "no superuser credentials are configured".to_owned(),
            retry_in: None,
        }
    }

    /// The token to use, logging in (once for all concurrent callers) when
    /// there is none or it is due for renewal.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<UserToken, LoginError> {
        if self.credentials.is_none() {
            return Err(Self::not_configured());
        }
        let held = self.held.lock().clone();
        if let Some(token) = held {
            if !self.is_stale(Instant::now()) {
                return Ok(token);
            }
        }
        if let Some(token) = self.store.get().await.map_err(store_error)? {
            if !self.is_stale(Instant::now()) {
                *self.held.lock() = Some(token.clone());
                return Ok(token);
            }
        }
        self.backoff.lock().check(Instant::now())?;
        self.login_once(None).await
    }

    /// A new token after the backend rejected `failed`. If another caller
    /// (or another process sharing the store) already replaced `failed`,
    /// its token is returned without a login.
    pub(crate) async fn refresh(
        self: &Arc<Self>,
        failed: &UserToken,
    ) -> Result<UserToken, LoginError> {
        self.login_once(Some(failed.clone())).await
    }

    async fn login_once(
        self: &Arc<Self>,
        failed: Option<UserToken>,
    ) -> Result<UserToken, LoginError> {
        let guard = Arc::clone(&self.login_lock).lock_owned().await;
        let this = Arc::clone(self);
        let token = tokio::spawn(async move {
            let _guard = guard;
            this.login_locked(failed).await
        })
        .await
        .unwrap_or_else(|e| {
            Err(LoginError {
                kind: LoginErrorKind::Unreachable,
                code: None,
                message: format!("the login task failed: {e}"),
                retry_in: None,
            })
        })?;
        *self.held.lock() = Some(token.clone());
        Ok(token)
    }

    /// Runs with `login_lock` held.
    async fn login_locked(&self, failed: Option<UserToken>) -> Result<UserToken, LoginError> {
        let now = Instant::now();
        let current = self.store.get().await.map_err(store_error)?;
        if let Some(current) = &current {
            let rejected = failed.as_ref() == Some(current);
            if !rejected && !self.is_stale(now) {
                return Ok(current.clone());
            }
        }
        self.backoff.lock().check(now)?;
        let lease = match self.lease(current.as_ref()).await? {
            Ok(lease) => lease,
            Err(token) => {
                // Another process replaced the token: it counts as fresh.
                self.touch();
                self.history.lock().since = Some(std::time::SystemTime::now());
                return Ok(token);
            }
        };
        if let Some(old) = &current {
            let renewal = failed.as_ref() != Some(old);
            if renewal && !self.has_lapsed(now) {
                // Ending the old session first keeps a login limit of one
                // session from refusing the renewal.
                tracing::debug!("renewing the superuser session before it lapses");
                self.logout_token(old).await;
            }
        }
        let store = self.store.kind();
        match self.login().await {
            Ok(token) => {
                if let Some(old) = &current {
                    metrics::counter!("coderunner_superuser_relogins_total", "store" => store)
                        .increment(1);
                    let mut history = self.history.lock();
                    if failed.as_ref() == Some(old) {
                        history.relogins += 1;
                    } else {
                        history.renewals += 1;
                    }
                }
                if let Err(e) = self.store.put(lease, token.clone()).await {
                    // This process uses the token; the others will log in
                    // again when the store is back.
                    tracing::warn!(error = %e, "the new superuser session could not be shared");
                }
                Ok(token)
            }
            Err(error) => {
                if let Err(e) = self.store.release(lease).await {
                    tracing::warn!(error = %e, "the login lease could not be released; it expires by itself");
                }
                Err(error)
            }
        }
    }

    /// Takes the login lease in place of `expected`, waiting (bounded)
    /// while another process holds it: `Ok(Ok(lease))` to log in,
    /// `Ok(Err(token))` when another process's token replaced `expected`.
    async fn lease(
        &self,
        expected: Option<&UserToken>,
    ) -> Result<Result<LeaseId, UserToken>, LoginError> {
        let store = self.store.kind();
        let deadline = Instant::now() + LEASE_WAIT;
        let mut waited = false;
        loop {
            match self.store.lease(expected).await.map_err(store_error)? {
                Lease::Granted(lease) => return Ok(Ok(lease)),
                Lease::Replaced(token) => return Ok(Err(token)),
                Lease::Held => {}
            }
            if !waited {
                waited = true;
                metrics::counter!("coderunner_superuser_lease_waits_total", "store" => store)
                    .increment(1);
                tracing::debug!(
                    "another runner is logging the superuser in; waiting for its token"
                );
            }
            if Instant::now() >= deadline {
                return Err(LoginError {
                    kind: LoginErrorKind::Unreachable,
                    code: None,
                    message: format!(
                        "another runner held the superuser login lease for over {} s",
                        LEASE_WAIT.as_secs()
                    ),
                    retry_in: None,
                });
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// Sends one login request and records its outcome.
    async fn login(&self) -> Result<UserToken, LoginError> {
        let credentials = self.credentials.as_ref().ok_or_else(Self::not_configured)?;
        let call = Call::new(Service::Users, Method::POST, ["users", "login"]).body(json!({
            "login": credentials.login,
            "password": credentials.password.expose_secret(),
        }));
        let request = self
            .transport
            .execute(&call, None, IdentityKind::Superuser, None);
        let reply = match self.limits.login {
            Some(limit) => tokio::time::timeout(limit, request)
                .await
                .unwrap_or_else(|_| {
                    Err(SdkError::Timeout {
                        service: Service::Users.as_str(),
                        limit: TimeoutLimit::LoginTimeout,
                    })
                }),
            None => request.await,
        };
        let result = reply.and_then(|reply| {
            reply
                .get("user-token")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(UserToken::new)
                .ok_or(SdkError::Decode {
                    service: Service::Users.as_str(),
                    message: "the login reply has no user-token".to_owned(),
                })
        });
        let store = self.store.kind();
        match result {
            Ok(token) => {
                metrics::counter!(
                    "coderunner_superuser_logins_total",
                    "outcome" => "ok",
                    "store" => store
                )
                .increment(1);
                self.touch();
                self.backoff.lock().on_success();
                {
                    let mut history = self.history.lock();
                    history.logins += 1;
                    history.since = Some(std::time::SystemTime::now());
                }
                tracing::info!(store, "superuser logged in");
                Ok(token)
            }
            Err(err) => {
                let error = LoginError::from_sdk(&err);
                metrics::counter!(
                    "coderunner_superuser_logins_total",
                    "outcome" => error.kind.as_str(),
                    "store" => store
                )
                .increment(1);
                let wait = self
                    .backoff
                    .lock()
                    .on_failure(Instant::now(), error.clone());
                {
                    let mut history = self.history.lock();
                    history.failed += 1;
                    history.last_error = Some((error.kind.as_str(), error.code));
                }
                tracing::warn!(
                    kind = %error.kind,
                    code = error.code,
                    retry_in_ms = wait.as_millis() as u64,
                    "superuser login failed: {}",
                    error.message
                );
                Err(error)
            }
        }
    }

    /// Ends `token`'s session, ignoring "already logged out"; failures
    /// (and a logout that takes longer than its bound) are logged, not
    /// returned.
    async fn logout_token(&self, token: &UserToken) {
        let call = Call::new(Service::Users, Method::GET, ["users", "logout"]);
        let request =
            self.transport
                .execute(&call, Some(token.expose()), IdentityKind::Superuser, None);
        let result = match self.limits.logout {
            Some(limit) => match tokio::time::timeout(limit, request).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        timeout_ms = limit.as_millis() as u64,
                        "superuser logout did not finish in time; giving up on it"
                    );
                    return;
                }
            },
            None => request.await,
        };
        match result {
            Ok(_) => {}
            Err(e) if e.code().is_some_and(|c| ALREADY_LOGGED_OUT.contains(&c)) => {}
            Err(e) => tracing::warn!(error = %e, "superuser logout failed"),
        }
    }

    /// Logs the superuser out, if logged in and no other process sharing
    /// the store uses the session, and forgets the token.
    pub(crate) async fn logout(&self) {
        let _guard = self.login_lock.lock().await;
        let token = match self.store.get().await {
            Ok(Some(token)) => token,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the superuser session is not logged out: the store cannot say who uses it");
                return;
            }
        };
        *self.last_used.lock() = None;
        *self.held.lock() = None;
        match self.store.leave(&token).await {
            Ok(true) => self.logout_token(&token).await,
            Ok(false) => {
                tracing::info!("other runners use the superuser session: it is not logged out")
            }
            Err(e) => {
                tracing::warn!(error = %e, "the superuser session is not logged out: the store cannot say who uses it")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::LoginErrorKind;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_on_success() {
        let mut backoff = Backoff::new(LoginBackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        let error = LoginError {
            kind: LoginErrorKind::LoginLimit,
            code: Some(3044),
            message: "limit".to_owned(),
            retry_in: None,
        };
        assert!(backoff.check(t0).is_ok());
        let waits: Vec<u64> = (0..9)
            .map(|_| backoff.on_failure(t0, error.clone()).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let blocked = backoff.check(t0 + Duration::from_secs(59)).unwrap_err();
        assert_eq!(blocked.retry_in, Some(Duration::from_secs(1)));
        assert_eq!(blocked.kind, LoginErrorKind::LoginLimit);
        assert!(backoff.check(t0 + Duration::from_secs(60)).is_ok());
        backoff.on_success();
        assert_eq!(backoff.on_failure(t0, error).as_secs(), 1);
    }
}
