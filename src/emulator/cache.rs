//! The app's shared cache and atomic counters (spec §4.3, §4.4), in memory.
//! Expiry uses `tokio::time::Instant`; `expireAt` timestamps are wall-clock ms
//! converted to an instant.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::Instant;

use super::error::ApiError;
use super::store::now_ms;

/// Default and maximum TTL, seconds.
pub const MAX_TTL_SECS: i64 = 7200;
/// Largest serialized value, bytes.
pub const MAX_VALUE_BYTES: usize = 10_240;

struct Entry {
    value: Value,
    expires: Instant,
}

/// The key-value cache, bounded to `max_entries`.
pub struct Cache {
    entries: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
}

fn too_long() -> ApiError {
    ApiError::new(1028, "Expiration time cannot be greater than 7200 seconds")
}

impl Cache {
    /// An empty cache holding at most `max_entries` keys.
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    fn key(key: &str) -> Result<(), ApiError> {
        if key.is_empty() {
            return Err(ApiError::new(1027, "Cache key cannot be null or empty"));
        }
        Ok(())
    }

    /// Stores `value` for `ttl_secs` (default and max 7200).
    pub fn put(&self, key: &str, value: Value, ttl_secs: Option<i64>) -> Result<(), ApiError> {
        Self::key(key)?;
        let ttl = ttl_secs.unwrap_or(MAX_TTL_SECS);
        if ttl > MAX_TTL_SECS {
            return Err(too_long());
        }
        if ttl <= 0 {
            return Err(ApiError::new(
                1029,
                "Cache TimeToLive must be a positive number of seconds",
            ));
        }
        let size = serde_json::to_vec(&value)
            .map_err(ApiError::internal)?
            .len();
        if size > MAX_VALUE_BYTES {
            return Err(ApiError::new(
                1026,
                format!("Cache value is {size} bytes; the limit is {MAX_VALUE_BYTES} bytes"),
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
    pub fn get(&self, key: &str) -> Result<Value, ApiError> {
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
    pub fn contains(&self, key: &str) -> Result<bool, ApiError> {
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
                format!("Cache key {key} does not exist or has expired"),
            )),
        }
    }

    /// Expires the key in `secs` seconds (1..=7200).
    pub fn expire_in(&self, key: &str, secs: i64) -> Result<(), ApiError> {
        Self::key(key)?;
        if secs > MAX_TTL_SECS {
            return Err(too_long());
        }
        if secs < 1 {
            return Err(ApiError::new(
                16002,
                "Cache expiration must be a number of seconds between 1 and 7200",
            ));
        }
        self.extend(key, Instant::now() + Duration::from_secs(secs as u64))
    }

    /// Expires the key at `timestamp_ms` (wall clock), 0 < ts - now <= 7 200 000.
    pub fn expire_at(&self, key: &str, timestamp_ms: i64) -> Result<(), ApiError> {
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
    pub fn delete(&self, key: &str) -> Result<(), ApiError> {
        Self::key(key)?;
        self.entries.lock().remove(key);
        Ok(())
    }
}

/// Named atomic counters; a missing counter is 0.
#[derive(Default)]
pub struct Counters {
    values: Mutex<BTreeMap<String, i64>>,
}

/// A counter operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    /// Add `n`, return the new value.
    AddGet(i64),
    /// Add `n`, return the previous value.
    GetAdd(i64),
    /// Set to 0, return the previous value.
    Reset,
    /// The value.
    Get,
}

impl Counters {
    /// Applies `op` to `name`.
    pub fn apply(&self, name: &str, op: CounterOp) -> i64 {
        let mut map = self.values.lock();
        let v = map.entry(name.to_owned()).or_insert(0);
        let before = *v;
        match op {
            CounterOp::AddGet(n) => {
                *v = v.wrapping_add(n);
                *v
            }
            CounterOp::GetAdd(n) => {
                *v = v.wrapping_add(n);
                before
            }
            CounterOp::Reset => {
                *v = 0;
                before
            }
            CounterOp::Get => before,
        }
    }

    /// Sets `name` to `updated` if it equals `expected`.
    pub fn compare_and_set(&self, name: &str, expected: i64, updated: i64) -> bool {
        let mut map = self.values.lock();
        let v = map.entry(name.to_owned()).or_insert(0);
        if *v == expected {
            *v = updated;
            true
        } else {
            false
        }
    }

    /// Names matching a glob (`*` any run, `?` one character).
    pub fn list(&self, pattern: &str) -> Vec<String> {
        self.values
            .lock()
            .keys()
            .filter(|k| glob(pattern.as_bytes(), k.as_bytes()))
            .cloned()
            .collect()
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(b"*", b"abc"));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(!glob(b"b*", b"abc"));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire() {
        let c = Cache::new(10);
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
        let c = Cache::new(2);
        for k in ["a", "b", "c"] {
            c.put(k, Value::Null, None).unwrap();
        }
        assert_eq!(c.entries.lock().len(), 2);
    }
}
