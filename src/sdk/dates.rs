//! Dates in typed rows. Backendless sends and takes dates as milliseconds
//! since the epoch (event arguments that mark them with `___dates___` are
//! turned into the same numbers before a handler sees them), so a date field
//! of a row type is a [`SystemTime`] or a `chrono::DateTime<Utc>` with
//! `#[serde(with = "coderunner::sdk::epoch_ms")]` (or
//! `coderunner::sdk::epoch_ms::option` for an optional one).
//!
//! # Example
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Event {
//!     #[serde(with = "coderunner::sdk::epoch_ms")]
//!     starts: SystemTime,
//!     #[serde(with = "coderunner::sdk::epoch_ms::option", default)]
//!     ends: Option<chrono::DateTime<chrono::Utc>>,
//! }
//! let e: Event = serde_json::from_str(r#"{"starts": 1700000000000, "ends": null}"#).unwrap();
//! assert_eq!(e.starts, UNIX_EPOCH + Duration::from_millis(1_700_000_000_000));
//! assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"starts":1700000000000,"ends":null}"#);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time `ms` milliseconds after (or, negative, before) the epoch.
pub(crate) fn from_ms(ms: i64) -> Option<SystemTime> {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// A point in time that Backendless writes as epoch milliseconds.
pub trait EpochMs: Sized {
    /// Milliseconds since the epoch (negative before it). No request is
    /// made.
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EpochMs;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    /// assert_eq!(t.to_epoch_ms(), 1_700_000_000_123);
    /// assert_eq!((UNIX_EPOCH - Duration::from_secs(1)).to_epoch_ms(), -1000);
    /// ```
    fn to_epoch_ms(&self) -> i64;
    /// The time at `ms`, if this type can hold it (`None` when out of its
    /// range).
    ///
    /// # Example
    /// ```
    /// use coderunner::sdk::EpochMs;
    /// let t = chrono::DateTime::<chrono::Utc>::from_epoch_ms(1_700_000_000_000).unwrap();
    /// assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20+00:00");
    /// assert!(chrono::DateTime::<chrono::Utc>::from_epoch_ms(i64::MAX).is_none());
    /// ```
    fn from_epoch_ms(ms: i64) -> Option<Self>;
}

impl EpochMs for SystemTime {
    fn to_epoch_ms(&self) -> i64 {
        match self.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn from_epoch_ms(ms: i64) -> Option<Self> {
        from_ms(ms)
    }
}

impl EpochMs for chrono::DateTime<chrono::Utc> {
    fn to_epoch_ms(&self) -> i64 {
        self.timestamp_millis()
    }

    fn from_epoch_ms(ms: i64) -> Option<Self> {
        chrono::DateTime::from_timestamp_millis(ms)
    }
}

/// `#[serde(with = "coderunner::sdk::epoch_ms")]`: a date as epoch ms.
pub mod epoch_ms {
    use serde::de::{Deserializer, Error};
    use serde::{Deserialize, Serializer};
    use serde_json::Value;

    use super::EpochMs;

    /// Writes the date as a number of milliseconds. Used through
    /// `#[serde(with = "coderunner::sdk::epoch_ms")]`, or called directly.
    ///
    /// # Example
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// #[derive(serde::Serialize)]
    /// struct Reminder {
    ///     #[serde(with = "coderunner::sdk::epoch_ms")]
    ///     due: SystemTime,
    /// }
    /// let r = Reminder { due: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000) };
    /// assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"due":1700000000000}"#);
    /// ```
    pub fn serialize<T: EpochMs, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(value.to_epoch_ms())
    }

    /// Reads milliseconds given as an integer, a float or a numeric string;
    /// anything else (`null`, an ISO date string) is a serde error.
    ///
    /// # Example
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// #[derive(serde::Deserialize)]
    /// struct Reminder {
    ///     #[serde(with = "coderunner::sdk::epoch_ms")]
    ///     due: SystemTime,
    /// }
    /// let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    /// let r: Reminder = serde_json::from_str(r#"{"due": "1700000000000"}"#).unwrap();
    /// assert_eq!(r.due, at);
    /// assert!(serde_json::from_str::<Reminder>(r#"{"due": "2023-11-14"}"#).is_err());
    /// ```
    pub fn deserialize<'de, T: EpochMs, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let value = Value::deserialize(d)?;
        let ms = ms_of(&value)
            .ok_or_else(|| D::Error::custom("a date must be milliseconds since the epoch"))?;
        T::from_epoch_ms(ms).ok_or_else(|| D::Error::custom("the date is out of range"))
    }

    fn ms_of(value: &Value) -> Option<i64> {
        match value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `#[serde(with = "coderunner::sdk::epoch_ms::option")]`: an optional
    /// date; `null` is `None`.
    pub mod option {
        use serde::de::{Deserializer, Error};
        use serde::{Deserialize, Serializer};
        use serde_json::Value;

        use super::super::EpochMs;

        /// Writes the date as milliseconds, or `null`.
        ///
        /// # Example
        /// ```
        /// use std::time::SystemTime;
        /// #[derive(serde::Serialize)]
        /// struct Task {
        ///     #[serde(with = "coderunner::sdk::epoch_ms::option")]
        ///     done_at: Option<SystemTime>,
        /// }
        /// let t = Task { done_at: None };
        /// assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"done_at":null}"#);
        /// ```
        pub fn serialize<T: EpochMs, S: Serializer>(
            value: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(v) => s.serialize_i64(v.to_epoch_ms()),
                None => s.serialize_none(),
            }
        }

        /// Reads milliseconds or `null` (`None`); add `#[serde(default)]` for
        /// a field that may be missing.
        ///
        /// # Example
        /// ```
        /// #[derive(serde::Deserialize)]
        /// struct Task {
        ///     #[serde(with = "coderunner::sdk::epoch_ms::option", default)]
        ///     done_at: Option<chrono::DateTime<chrono::Utc>>,
        /// }
        /// let t: Task = serde_json::from_str(r#"{"done_at": 1700000000000}"#).unwrap();
        /// assert_eq!(t.done_at.unwrap().timestamp_millis(), 1_700_000_000_000);
        /// let t: Task = serde_json::from_str("{}").unwrap();
        /// assert!(t.done_at.is_none());
        /// ```
        pub fn deserialize<'de, T: EpochMs, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            match Value::deserialize(d)? {
                Value::Null => Ok(None),
                value => {
                    let ms = super::ms_of(&value).ok_or_else(|| {
                        D::Error::custom("a date must be milliseconds since the epoch")
                    })?;
                    T::from_epoch_ms(ms)
                        .map(Some)
                        .ok_or_else(|| D::Error::custom("the date is out of range"))
                }
            }
        }
    }
}
