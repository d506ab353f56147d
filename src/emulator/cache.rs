//! The app's shared cache (spec §4.3), in memory, and its routes under
//! `/cache/`.
//! Expiry uses `tokio::time::Instant`; `expireAt` timestamps are wall-clock ms
//! converted to an instant.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::Instant;

use super::auth::Requester;
use super::error::ApiError;
use super::store::now_ms;
use super::{PathParams, Reply, Shared, int_query, json_body, path_param, required_int};

/// Default and maximum TTL, seconds.
pub(super) const MAX_TTL_SECS: i64 = 7200;
/// Largest serialized value, bytes.
pub(super) const MAX_VALUE_BYTES: usize = 10_240;

struct Entry {
    value: Value,
    expires: Instant,
}

/// The key-value cache, bounded to `max_entries`.
pub(super) struct CacheStore {
    entries: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
}

fn too_long() -> ApiError {
    ApiError::new(1028, "Expiration time cannot be greater than 7200 seconds")
}

impl CacheStore {
    /// An empty cache holding at most `max_entries` keys.
    pub(super) fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    fn key(key: &str) -> Result<(), ApiError> {
        if key.is_empty() {
            return Err(ApiError::new(
                1027,
                "CacheStore key cannot be null or empty",
            ));
        }
        Ok(())
    }

    /// Stores `value` for `ttl_secs` (default and max 7200).
    pub(super) fn put(
        &self,
        key: &str,
        value: Value,
        ttl_secs: Option<i64>,
    ) -> Result<(), ApiError> {
        Self::key(key)?;
        let ttl = ttl_secs.unwrap_or(MAX_TTL_SECS);
        if ttl > MAX_TTL_SECS {
            return Err(too_long());
        }
        if ttl <= 0 {
            return Err(ApiError::new(
                1029,
                "CacheStore TimeToLive must be a positive number of seconds",
            ));
        }
        let size = serde_json::to_vec(&value)
            .map_err(ApiError::internal)?
            .len();
        if size > MAX_VALUE_BYTES {
            return Err(ApiError::new(
                1026,
                format!("CacheStore value is {size} bytes; the limit is {MAX_VALUE_BYTES} bytes"),
            ));
        }
        let now = Instant::now();
        let mut map = self.entries.lock();
        map.retain(|_, e| e.expires > now);
        if map.len() >= self.max_entries && !map.contains_key(key) {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            key.to_owned(),
            Entry {
                value,
                expires: now + Duration::from_secs(ttl as u64),
            },
        );
        Ok(())
    }

    /// The value, or `null` when absent or expired.
    pub(super) fn get(&self, key: &str) -> Result<Value, ApiError> {
        Self::key(key)?;
        let now = Instant::now();
        Ok(self
            .entries
            .lock()
            .get(key)
            .filter(|e| e.expires > now)
            .map_or(Value::Null, |e| e.value.clone()))
    }

    /// Whether the key is live.
    pub(super) fn contains(&self, key: &str) -> Result<bool, ApiError> {
        Self::key(key)?;
        let now = Instant::now();
        Ok(self
            .entries
            .lock()
            .get(key)
            .is_some_and(|e| e.expires > now))
    }

    fn extend(&self, key: &str, expires: Instant) -> Result<(), ApiError> {
        let now = Instant::now();
        match self.entries.lock().get_mut(key) {
            Some(e) if e.expires > now => {
                e.expires = expires;
                Ok(())
            }
            _ => Err(ApiError::new(
                16001,
                format!("CacheStore key {key} does not exist or has expired"),
            )),
        }
    }

    /// Expires the key in `secs` seconds (1..=7200).
    pub(super) fn expire_in(&self, key: &str, secs: i64) -> Result<(), ApiError> {
        Self::key(key)?;
        if secs > MAX_TTL_SECS {
            return Err(too_long());
        }
        if secs < 1 {
            return Err(ApiError::new(
                16002,
                "CacheStore expiration must be a number of seconds between 1 and 7200",
            ));
        }
        self.extend(key, Instant::now() + Duration::from_secs(secs as u64))
    }

    /// Expires the key at `timestamp_ms` (wall clock), 0 < ts - now <= 7 200 000.
    pub(super) fn expire_at(&self, key: &str, timestamp_ms: i64) -> Result<(), ApiError> {
        Self::key(key)?;
        let delta = timestamp_ms.saturating_sub(now_ms());
        if delta <= 0 {
            return Err(ApiError::new(
                1031,
                "Expiration timestamp must be in the future",
            ));
        }
        if delta > MAX_TTL_SECS * 1000 {
            return Err(ApiError::new(
                16003,
                "Expiration timestamp must be at most 7200000 ms after now",
            ));
        }
        self.extend(key, Instant::now() + Duration::from_millis(delta as u64))
    }

    /// Deletes the key.
    pub(super) fn delete(&self, key: &str) -> Result<(), ApiError> {
        Self::key(key)?;
        self.entries.lock().remove(key);
        Ok(())
    }
}

/// PUT /cache/{key}?timeout=sec
pub(crate) async fn cache_put(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
    uri: Uri,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let value = json_body(&body)?;
    st.cache
        .put(path_param(&p, "key"), value, int_query(&uri, "timeout")?)?;
    Ok(StatusCode::OK)
}

/// GET /cache/{key}
pub(crate) async fn cache_get(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
) -> Reply {
    st.cache.get(path_param(&p, "key")).map(Json)
}

/// GET /cache/{key}/check
pub(crate) async fn cache_check(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
) -> Reply {
    st.cache
        .contains(path_param(&p, "key"))
        .map(|b| Json(Value::Bool(b)))
}

/// PUT /cache/{key}/expireIn?timeout=sec
pub(crate) async fn cache_expire_in(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    st.cache
        .expire_in(path_param(&p, "key"), required_int(&uri, "timeout")?)?;
    Ok(StatusCode::OK)
}

/// PUT /cache/{key}/expireAt?timestamp=ms
pub(crate) async fn cache_expire_at(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    st.cache
        .expire_at(path_param(&p, "key"), required_int(&uri, "timestamp")?)?;
    Ok(StatusCode::OK)
}

/// DELETE /cache/{key}
pub(crate) async fn cache_delete(
    State(st): State<Shared>,
    _c: Requester,
    Path(p): PathParams,
) -> Result<StatusCode, ApiError> {
    st.cache.delete(path_param(&p, "key"))?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let c = CacheStore::new(10);
        c.put("k", Value::from(1), Some(5)).unwrap();
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(c.get("k").unwrap(), Value::from(1));
        c.expire_in("k", 10).unwrap();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(c.contains("k").unwrap());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.get("k").unwrap(), Value::Null);
        assert_eq!(c.expire_in("k", 10).unwrap_err().code, 16001);
    }

    #[test]
    fn bounded() {
        let c = CacheStore::new(2);
        for k in ["a", "b", "c"] {
            c.put(k, Value::Null, None).unwrap();
        }
        assert_eq!(c.entries.lock().len(), 2);
    }
}
