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
//! app's Backendless cache, where clients could read it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::time::Instant;

use super::config::{LoginBackoffConfig, SuperuserCredentials};
use super::error::{LoginError, LoginErrorKind, SdkError, TimeoutLimit};
use super::transport::{Call, Service, Transport};
use super::IdentityKind;
use crate::event::UserToken;

/// Where the superuser token is kept. The default keeps it in this process's
/// memory; a store shared by replicas (Redis) can implement this later.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The current token, if any.
    async fn get(&self) -> Option<UserToken>;
    /// Replaces the current token.
    async fn put(&self, token: UserToken);
    /// Forgets the current token.
    async fn clear(&self);
}

/// A [`SessionStore`] in process memory.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    token: parking_lot::Mutex<Option<UserToken>>,
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn get(&self) -> Option<UserToken> {
        self.token.lock().clone()
    }

    async fn put(&self, token: UserToken) {
        *self.token.lock() = Some(token);
    }

    async fn clear(&self) {
        *self.token.lock() = None;
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

/// Logout errors meaning "already logged out" (spec §4.1).
const ALREADY_LOGGED_OUT: &[i64] = &[3023, 3064, 3090, 3091];

pub(crate) struct SuperuserSession {
    transport: Arc<Transport>,
    credentials: Option<SuperuserCredentials>,
    store: Arc<dyn SessionStore>,
    /// Held (by a spawned task) for the whole of a login: the single flight.
    login_lock: Arc<tokio::sync::Mutex<()>>,
    backoff: parking_lot::Mutex<Backoff>,
    /// When this process last used the token with success; drives renewal.
    last_used: parking_lot::Mutex<Option<Instant>>,
    session_timeout: Option<Duration>,
    /// Bounds on a login and a logout, whatever `request_timeout` says.
    limits: SessionLimits,
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
            login_lock: Arc::new(tokio::sync::Mutex::new(())),
            backoff: parking_lot::Mutex::new(Backoff::new(backoff)),
            last_used: parking_lot::Mutex::new(None),
            session_timeout,
            limits,
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
        if let Some(token) = self.store.get().await {
            if !self.is_stale(Instant::now()) {
                return Ok(token);
            }
        }
        self.backoff.lock().check(Instant::now())?;
        self.login_once(None).await
    }

    /// A new token after the backend rejected `failed`. If another caller
    /// already replaced `failed`, its token is returned without a login.
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
        tokio::spawn(async move {
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
        })
    }

    /// Runs with `login_lock` held.
    async fn login_locked(&self, failed: Option<UserToken>) -> Result<UserToken, LoginError> {
        let now = Instant::now();
        let current = self.store.get().await;
        if let Some(current) = &current {
            let rejected = failed.as_ref() == Some(current);
            if !rejected && !self.is_stale(now) {
                return Ok(current.clone());
            }
        }
        self.backoff.lock().check(now)?;
        if let Some(old) = current {
            self.store.clear().await;
            let renewal = failed.as_ref() != Some(&old);
            if renewal && !self.has_lapsed(now) {
                // Ending the old session first keeps a login limit of one
                // session from refusing the renewal.
                tracing::debug!("renewing the superuser session before it lapses");
                self.logout_token(&old).await;
            }
        }
        self.login().await
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
        match result {
            Ok(token) => {
                metrics::counter!("coderunner_superuser_logins_total", "outcome" => "ok")
                    .increment(1);
                self.store.put(token.clone()).await;
                self.touch();
                self.backoff.lock().on_success();
                tracing::info!("superuser logged in");
                Ok(token)
            }
            Err(err) => {
                let error = LoginError::from_sdk(&err);
                metrics::counter!(
                    "coderunner_superuser_logins_total",
                    "outcome" => error.kind.as_str()
                )
                .increment(1);
                let wait = self
                    .backoff
                    .lock()
                    .on_failure(Instant::now(), error.clone());
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

    /// Logs the superuser out, if logged in, and forgets the token.
    pub(crate) async fn logout(&self) {
        let _guard = self.login_lock.lock().await;
        if let Some(token) = self.store.get().await {
            self.store.clear().await;
            self.logout_token(&token).await;
            *self.last_used.lock() = None;
        }
    }
}
