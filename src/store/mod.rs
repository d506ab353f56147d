//! The state a fleet of runners shares: the superuser session, the seen
//! webhook ids and the timer locks. `[store] kind = "memory"` keeps each in
//! the process (one runner); `kind = "redis"` keeps them in Redis, so that
//! every replica sees the same session, refuses the same replays and fires
//! each timer occurrence once ([`redis::RedisStore`]).
//!
//! The memory implementations are where the state has always been: the
//! [`crate::sdk::MemorySessionStore`], the server's own replay set
//! ([`crate::server::dedupe`]) and no timer claim at all. The Redis store
//! adds to them; nothing else knows which store is in use.
//!
//! Must not: fall back to per-process state when Redis is unreachable. A
//! store that cannot answer says so ([`StoreError`]) and the caller refuses
//! what needed it.

#[cfg(all(test, feature = "emulator"))]
mod fleet_tests;
pub(crate) mod redis;

use async_trait::async_trait;

pub(crate) use self::redis::RedisStore;

/// The shared store could not answer (Redis unreachable or failing). The
/// message names the operation and the error category, never a key's value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared store is unavailable ({operation}): {message}")]
pub struct StoreError {
    /// What was being done, e.g. `session.lease`.
    pub operation: &'static str,
    /// Why it failed.
    pub message: String,
}

impl StoreError {
    /// An error of `operation`.
    pub fn new(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            message: message.into(),
        }
    }
}

/// The fleet-wide set of accepted webhook ids. A replica that accepts a
/// delivery claims its id here (after its own replay check); a claim that
/// fails means another replica accepted it first.
#[async_trait]
pub(crate) trait SeenIds: Send + Sync + std::fmt::Debug + 'static {
    /// A bounded label for metrics: `redis`.
    fn kind(&self) -> &'static str;

    /// Claims `id` until `until_unix_secs` (the last second a delivery
    /// signed with its timestamp could be accepted): `Ok(true)` when this
    /// is the first claim, `Ok(false)` when another claim holds it.
    async fn claim(
        &self,
        id: &str,
        body: &[u8; 32],
        until_unix_secs: i64,
    ) -> Result<bool, StoreError>;
}
