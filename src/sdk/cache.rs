//! The Cache service. Durations are typed and checked before any request:
//! TTLs and `expire_in` are whole seconds in 1..=7200 (sent as seconds,
//! `?timeout=`), and `expire_at` is a point within the next two hours (sent
//! as ms since the epoch, `?timestamp=`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::Client;
use super::error::SdkError;
use super::transport::{Named, Service, decode};

/// The longest TTL the backend accepts: 7200 s (2 hours).
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(7200);

/// The shortest TTL: 1 s.
pub const MIN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Checks a TTL and returns it in whole seconds.
fn ttl_seconds(argument: &'static str, ttl: Duration) -> Result<u64, SdkError> {
    if ttl < MIN_CACHE_TTL || ttl > MAX_CACHE_TTL {
        return Err(SdkError::invalid(
            argument,
            format!(
                "{} s is outside the allowed 1..=7200 seconds (the backend counts cache expiry in seconds, at most 2 hours)",
                ttl.as_secs_f64()
            ),
        ));
    }
    if ttl.subsec_nanos() != 0 {
        return Err(SdkError::invalid(
            argument,
            format!("{} s is not a whole number of seconds", ttl.as_secs_f64()),
        ));
    }
    Ok(ttl.as_secs())
}

/// Checks an absolute expiry and returns it in ms since the epoch.
fn expiry_millis(at: SystemTime, now: SystemTime) -> Result<u64, SdkError> {
    let ahead = at.duration_since(now).map_err(|_| {
        SdkError::invalid(
            "expire_at",
            "the time is not in the future (must be within the next 7200 seconds)",
        )
    })?;
    if ahead.is_zero() || ahead > MAX_CACHE_TTL {
        return Err(SdkError::invalid(
            "expire_at",
            format!(
                "the time is {} s from now; it must be within the next 7200 seconds",
                ahead.as_secs_f64()
            ),
        ));
    }
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SdkError::invalid("expire_at", "the time is before 1970"))?
        .as_millis();
    u64::try_from(millis).map_err(|_| SdkError::invalid("expire_at", "the time is out of range"))
}

/// The paths `cache/{key}/...`.
const KEYS: Named = Named {
    service: Service::Cache,
    argument: "key",
    what: "cache key",
};

/// The Cache service of a [`Client`].
///
/// # Example
/// ```no_run
/// # async fn run(client: coderunner::sdk::Client) -> Result<(), coderunner::sdk::SdkError> {
/// use std::time::Duration;
/// client.cache().put("greeting", &"hello", Some(Duration::from_secs(600))).await?;
/// client.cache().expire_in("greeting", Duration::from_secs(7200)).await?; // the maximum
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cache<'a> {
    client: &'a Client,
}

impl<'a> Cache<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Cache { client }
    }

    /// Stores `value` (any serde value) under `key` for `ttl`
    /// (`PUT cache/{key}?timeout={seconds}`): 1..=7200 whole seconds, the
    /// backend's default 7200 s when `None`. A TTL outside that (say
    /// milliseconds passed as seconds) is [`SdkError::InvalidArgument`] before
    /// any request; the backend refuses a value over 10,240 serialized bytes
    /// with 1026. The cache is the app's, readable by any client with the cache
    /// API: never put a token or a secret in it.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use std::time::Duration;
    /// let client = ctx.caller();
    /// client.cache().put("greeting", &"hello", Some(Duration::from_secs(600))).await?;
    /// client.cache().put("rates", &serde_json::json!({"EUR": 1.08}), None).await?; // 7200 s
    /// # Ok(()) }
    /// ```
    pub async fn put<V: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<(), SdkError> {
        let ttl = ttl.map(|t| ttl_seconds("ttl", t)).transpose()?;
        let body = serde_json::to_value(value)
            .map_err(|e| SdkError::invalid("value", format!("cannot be serialized: {e}")))?;
        let mut call = KEYS.call(Method::PUT, key, [])?.body(body);
        if let Some(seconds) = ttl {
            call = call.query("timeout", seconds);
        }
        self.client.send_raw(call).await.map(drop)
    }

    /// The value under `key` decoded as `V` (`GET cache/{key}`), or `None`
    /// when there is none or it expired. A stored value of another shape is
    /// [`SdkError::Decode`].
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let greeting: Option<String> = ctx.caller().cache().get("greeting").await?;
    /// let greeting = greeting.unwrap_or_else(|| "hi".to_owned());
    /// # Ok(()) }
    /// ```
    pub async fn get<V: DeserializeOwned>(&self, key: &str) -> Result<Option<V>, SdkError> {
        match self
            .client
            .send_raw(KEYS.call(Method::GET, key, [])?)
            .await?
        {
            Value::Null => Ok(None),
            value => decode(Service::Cache, value).map(Some),
        }
    }

    /// Whether `key` holds a live value (`GET cache/{key}/check`), without
    /// reading it.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// if !ctx.caller().cache().contains("rates").await? {
    ///     // Fetch the rates and put them.
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn contains(&self, key: &str) -> Result<bool, SdkError> {
        self.client
            .send(KEYS.call(Method::GET, key, ["check"])?)
            .await
    }

    /// Makes `key` expire `ttl` from now
    /// (`PUT cache/{key}/expireIn?timeout={seconds}`); `ttl` is 1..=7200 whole
    /// seconds, checked before any request ([`SdkError::InvalidArgument`]). A
    /// key that does not exist or has expired gets 16001.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use std::time::Duration;
    /// ctx.caller().cache().expire_in("greeting", Duration::from_secs(7200)).await?; // the maximum
    /// # Ok(()) }
    /// ```
    pub async fn expire_in(&self, key: &str, ttl: Duration) -> Result<(), SdkError> {
        let seconds = ttl_seconds("expire_in", ttl)?;
        let call = KEYS
            .call(Method::PUT, key, ["expireIn"])?
            .query("timeout", seconds)
            .body(json!({}));
        self.client.send_raw(call).await.map(drop)
    }

    /// Makes `key` expire at `at` (`PUT cache/{key}/expireAt?timestamp={ms}`,
    /// ms since the epoch); `at` must be within the next 7200 s, checked before
    /// any request ([`SdkError::InvalidArgument`]). A key that does not exist
    /// or has expired gets 16001.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use std::time::{Duration, SystemTime};
    /// let at = SystemTime::now() + Duration::from_secs(60);
    /// ctx.caller().cache().expire_at("greeting", at).await?;
    /// # Ok(()) }
    /// ```
    pub async fn expire_at(&self, key: &str, at: SystemTime) -> Result<(), SdkError> {
        let millis = expiry_millis(at, SystemTime::now())?;
        let call = KEYS
            .call(Method::PUT, key, ["expireAt"])?
            .query("timestamp", millis)
            .body(json!({}));
        self.client.send_raw(call).await.map(drop)
    }

    /// Removes `key` (`DELETE cache/{key}`); the emulator answers a key that
    /// is not there with success.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().cache().delete("greeting").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, key: &str) -> Result<(), SdkError> {
        self.client
            .send_raw(KEYS.call(Method::DELETE, key, [])?)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_limits_are_seconds_1_to_7200() {
        assert_eq!(ttl_seconds("t", Duration::from_secs(1)).unwrap(), 1);
        assert_eq!(ttl_seconds("t", Duration::from_secs(7200)).unwrap(), 7200);
        assert_eq!(
            ttl_seconds("t", Duration::from_millis(7_200_000)).unwrap(),
            7200
        );
        for bad in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(7201),
            Duration::from_secs(7_200_000),
        ] {
            let err = ttl_seconds("t", bad).unwrap_err();
            assert!(err.to_string().contains("1..=7200"), "{err}");
        }
        assert!(ttl_seconds("t", Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn expire_at_must_be_within_two_hours() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            expiry_millis(now + Duration::from_secs(60), now).unwrap(),
            1_700_000_060_000
        );
        assert!(expiry_millis(now + MAX_CACHE_TTL, now).is_ok());
        assert!(expiry_millis(now, now).is_err());
        assert!(expiry_millis(now - Duration::from_secs(1), now).is_err());
        assert!(expiry_millis(now + MAX_CACHE_TTL + Duration::from_millis(1), now).is_err());
    }
}
