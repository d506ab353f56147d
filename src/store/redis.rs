//! The fleet's shared state in Redis (`[store] kind = "redis"`), under one
//! key prefix (`[store] prefix`):
//!
//! - `{prefix}session:token`: the superuser token (a secret: never logged),
//!   and `{prefix}session:lease`: who may log in now (`SET NX PX`, so it
//!   expires if its holder dies mid-login). The lease is granted by a script
//!   only while the stored token is still the one the caller saw fail, so
//!   ten replicas that see the same stale token cause one login.
//! - `{prefix}replicas`: a sorted set of the live replicas (score = when
//!   their presence expires), so the last replica to stop logs the shared
//!   session out and the others do not.
//! - `{prefix}seen:{webhook-id}`: one key per accepted delivery, `SET NX`
//!   with an expiry at the end of its signature window.
//! - `{prefix}timer:{name}:{occurrence ms}`: one key per timer occurrence,
//!   `SET NX PX`, so each occurrence fires on one replica; a replica that
//!   dies holding one blocks nothing (the next occurrence has its own key).
//!
//! Every operation reports failure ([`StoreError`]) rather than falling back
//! to per-process state, lowers the `store` readiness flag read by
//! `/readyz`, and counts `coderunner_store_errors_total`. A watcher pings
//! Redis every second (refreshing this replica's presence) and raises the
//! flag again when Redis is back.
//!
//! Must not: log a token or the URL (it may hold a password).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::{SeenIds, StoreError};
use crate::event::UserToken;
use crate::sdk::{Lease, LeaseId, SessionStore};
use crate::transport::Readiness;
use crate::transport::scheduler::OccurrenceClaim;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connection, callers fail at once for this long (the
/// watcher keeps trying), so an outage does not pile up waiting requests.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How often the watcher pings Redis and refreshes this replica's presence.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A replica not heard of for this long no longer counts as using the session.
const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// How long the shared token is kept without a new login: a session used
/// for longer is replaced once a day (one extra login).
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// `KEYS[1]` token, `KEYS[2]` lease; `ARGV[1]` the token the caller wants
/// replaced ("" = none), `ARGV[2]` the lease id, `ARGV[3]` its time to live.
/// Returns `{1, token}` when the stored token is another one, `{0, ''}`
/// when the lease is granted, `{2, ''}` when another holds it.
const LEASE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return {1, current} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {0, ''} end
return {2, ''}
";

/// `KEYS[1]` token, `KEYS[2]` lease; `ARGV[1]` the lease id, `ARGV[2]` the
/// token, `ARGV[3]` its time to live. Stores the token, ends the lease if
/// still held by this id.
const PUT_SCRIPT: &str = r"
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// `KEYS[1]` lease; `ARGV[1]` the lease id. Ends the lease if still held
/// by this id.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// `KEYS[1]` token, `KEYS[2]` replicas; `ARGV[1]` this replica, `ARGV[2]`
/// now (ms), `ARGV[3]` the token. Removes this replica; when no live one
/// remains and the token is still stored, forgets it and returns 1 (log it
/// out), else 0.
const LEAVE_SCRIPT: &str = r"
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[3] then redis.call('DEL', KEYS[1]) end
return 1
";

/// The fleet's shared state in one Redis. Cheap to clone.
#[derive(Clone)]
pub(crate) struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    prefix: String,
    /// This process among the replicas (random per start).
    replica: String,
    /// How long a login lease lasts if its holder never completes.
    lease_ttl: Duration,
    /// How long an occurrence's timer key lives.
    timer_lock: Duration,
    /// One multiplexed connection, made on first use and after a failure.
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// When the last connection attempt failed.
    failed_at: parking_lot::Mutex<Option<Instant>>,
    /// Down while Redis does not answer; `/readyz` requires it.
    readiness: Readiness,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// How the store is set up; from `[store]`.
#[derive(Debug, Clone)]
pub(crate) struct RedisStoreOptions {
    /// Prepended to every key.
    pub prefix: String,
    /// How long a login lease lasts if its holder never completes.
    pub lease_ttl: Duration,
    /// How long an occurrence's timer key lives.
    pub timer_lock: Duration,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// A store on the Redis at `url`; connects on first use.
    pub(crate) fn new(url: &SecretString, options: RedisStoreOptions) -> Result<Self, StoreError> {
        // The URL may hold a password: only the error's category is shown.
        let client = Client::open(url.expose_secret())
            .map_err(|e| StoreError::new("open", e.category().to_owned()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                prefix: options.prefix,
                replica: uuid::Uuid::new_v4().simple().to_string(),
                lease_ttl: options.lease_ttl,
                timer_lock: options.timer_lock,
                connection: tokio::sync::Mutex::new(None),
                failed_at: parking_lot::Mutex::new(None),
                readiness: Readiness::new("store"),
            }),
        })
    }

    /// The flag `/readyz` reads: down while Redis does not answer.
    pub(crate) fn readiness(&self) -> Readiness {
        self.inner.readiness.clone()
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.inner.prefix)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        let mut slot = self.inner.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        if let Some(at) = *self.inner.failed_at.lock() {
            if at.elapsed() < RETRY_PAUSE {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "Redis was unreachable moments ago",
                )));
            }
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        match self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => {
                *self.inner.failed_at.lock() = None;
                *slot = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                *self.inner.failed_at.lock() = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Runs `cmd`, keeping the readiness flag and the error count true.
    async fn query<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let result = async {
            let mut conn = self.connection().await?;
            cmd.query_async::<T>(&mut conn).await
        }
        .await;
        match result {
            Ok(value) => {
                self.set_up(true);
                Ok(value)
            }
            Err(e) => {
                *self.inner.connection.lock().await = None;
                metrics::counter!("coderunner_store_errors_total", "store" => "redis", "operation" => operation)
                    .increment(1);
                if self.set_up(false) {
                    tracing::warn!(operation, error = %e, "the shared store (Redis) is unreachable");
                }
                Err(StoreError::new(operation, e.category().to_owned()))
            }
        }
    }

    /// Sets the readiness flag; returns whether it changed.
    fn set_up(&self, up: bool) -> bool {
        let changed = self.inner.readiness.set(up);
        if changed {
            metrics::gauge!("coderunner_store_connected", "store" => "redis").set(if up {
                1.0
            } else {
                0.0
            });
            if up {
                tracing::info!("the shared store (Redis) is reachable");
            }
        }
        changed
    }

    fn eval(script: &str, keys: &[&str]) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len()).arg(keys);
        cmd
    }

    /// Pings Redis and refreshes this replica's presence every second until
    /// `stop`; the readiness flag follows.
    pub(crate) async fn watch(self, stop: CancellationToken) {
        let replicas = self.key("replicas");
        loop {
            let now = now_ms();
            let expires = now.saturating_add(millis(PRESENCE_TTL) as i64);
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&replicas).arg(expires).arg(&self.inner.replica);
            if self.query::<i64>("presence", &cmd).await.is_ok() {
                let mut prune = redis::cmd("ZREMRANGEBYSCORE");
                prune.arg(&replicas).arg("-inf").arg(now);
                let _ = self.query::<i64>("presence", &prune).await;
                let mut expire = redis::cmd("PEXPIRE");
                expire.arg(&replicas).arg(millis(PRESENCE_TTL));
                let _ = self.query::<i64>("presence", &expire).await;
            }
            tokio::select! {
                () = tokio::time::sleep(WATCH_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Claims one timer occurrence for this replica: `SET NX PX`. When Redis
    /// cannot answer the occurrence is not fired here (nor, most likely,
    /// anywhere): a missed occurrence rather than one fired twice.
    pub(crate) async fn claim_occurrence(&self, name: &str, at_ms: i64) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("timer:{name}:{at_ms}")))
            .arg(&self.inner.replica)
            .arg("NX")
            .arg("PX")
            .arg(millis(self.inner.timer_lock));
        match self.query::<Option<String>>("timer.claim", &cmd).await {
            Ok(claimed) => claimed.is_some(),
            Err(e) => {
                tracing::warn!(timer = name, at_ms, error = %e, "a timer occurrence is not fired: the store cannot say which runner fires it");
                false
            }
        }
    }

    /// The scheduler's hook: each occurrence fires on the replica that
    /// claims it.
    pub(crate) fn occurrence_claim(&self) -> OccurrenceClaim {
        let store = self.clone();
        Arc::new(move |name, at_ms| {
            let store = store.clone();
            let name = name.to_owned();
            Box::pin(async move { store.claim_occurrence(&name, at_ms).await })
        })
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self) -> Result<Option<UserToken>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key("session:token"));
        let token: Option<String> = self.query("session.get", &cmd).await?;
        Ok(token.map(UserToken::new))
    }

    async fn lease(&self, expected: Option<&UserToken>) -> Result<Lease, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (token, lease) = (self.key("session:token"), self.key("session:lease"));
        let mut cmd = Self::eval(LEASE_SCRIPT, &[&token, &lease]);
        cmd.arg(expected.map_or("", UserToken::expose))
            .arg(&id)
            .arg(millis(self.inner.lease_ttl));
        let (code, current): (i64, String) = self.query("session.lease", &cmd).await?;
        Ok(match code {
            0 => Lease::Granted(LeaseId(id)),
            1 => Lease::Replaced(UserToken::new(current)),
            _ => Lease::Held,
        })
    }

    async fn put(&self, lease: LeaseId, token: UserToken) -> Result<(), StoreError> {
        let (key, lease_key) = (self.key("session:token"), self.key("session:lease"));
        let mut cmd = Self::eval(PUT_SCRIPT, &[&key, &lease_key]);
        cmd.arg(&lease.0).arg(token.expose()).arg(millis(TOKEN_TTL));
        self.query::<i64>("session.put", &cmd).await.map(drop)
    }

    async fn release(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut cmd = Self::eval(RELEASE_SCRIPT, &[&self.key("session:lease")]);
        cmd.arg(&lease.0);
        self.query::<i64>("session.release", &cmd).await.map(drop)
    }

    async fn leave(&self, token: &UserToken) -> Result<bool, StoreError> {
        let (key, replicas) = (self.key("session:token"), self.key("replicas"));
        let mut cmd = Self::eval(LEAVE_SCRIPT, &[&key, &replicas]);
        cmd.arg(&self.inner.replica)
            .arg(now_ms())
            .arg(token.expose());
        Ok(self.query::<i64>("session.leave", &cmd).await? == 1)
    }
}

#[async_trait]
impl SeenIds for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn claim(
        &self,
        id: &str,
        body: &[u8; 32],
        until_unix_secs: i64,
    ) -> Result<bool, StoreError> {
        // Kept through the last second a delivery with this id is accepted.
        let until_ms = until_unix_secs.saturating_add(1).saturating_mul(1000);
        let ttl = until_ms.saturating_sub(now_ms()).max(1000);
        let hash: String = body.iter().map(|b| format!("{b:02x}")).collect();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("seen:{id}")))
            .arg(hash)
            .arg("NX")
            .arg("PX")
            .arg(ttl);
        let set: Option<String> = self.query("seen.claim", &cmd).await?;
        Ok(set.is_some())
    }
}
