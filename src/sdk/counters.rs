//! The atomic counters service (spec §4.4). `x_and_get` returns the new
//! value, `get_and_x` the previous one.

use reqwest::Method;

use super::client::Client;
use super::error::SdkError;
use super::transport::{Named, Service};

/// The paths `counters/{name}/...`.
const COUNTERS: Named = Named {
    service: Service::Counters,
    argument: "counter",
    what: "counter name",
};

/// The atomic counters service of a [`Client`]: named 64-bit counters
/// that every handler of the app shares, changed atomically on the backend.
///
/// # Example
/// ```
/// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
/// let client = ctx.superuser();
/// let counters = client.counters();
/// let ticket = counters.increment_and_get("tickets").await?;
/// let previous = counters.get_and_add("points", 10).await?;
/// # let _ = (ticket, previous);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    client: &'a Client,
}

impl<'a> Counters<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Counters { client }
    }

    async fn put_op<const N: usize>(&self, name: &str, rest: [&str; N]) -> Result<i64, SdkError> {
        self.client
            .send(COUNTERS.call(Method::PUT, name, rest)?)
            .await
    }

    /// The counter's current value (`GET counters/{name}`). In the emulator
    /// a counter never set is 0. The error met most often is 3064, a caller
    /// client whose token expired.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let visits = ctx.caller().counters().get("visits").await?;
    /// assert!(visits >= 0);
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, name: &str) -> Result<i64, SdkError> {
        self.client
            .send(COUNTERS.call(Method::GET, name, [])?)
            .await
    }

    /// Adds 1 and returns the new value (`PUT counters/{name}/increment/get`),
    /// atomically on the backend: concurrent handlers never get the same
    /// value. An empty name is [`SdkError::InvalidArgument`] before any
    /// request; a caller with an expired token gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// // A per-process counter every user bumps: the superuser, not the caller.
    /// let ticket = ctx.superuser().counters().increment_and_get("tickets").await?;
    /// # Ok(()) }
    /// ```
    pub async fn increment_and_get(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["increment", "get"]).await
    }

    /// Adds 1 and returns the value before it
    /// (`PUT counters/{name}/get/increment`). A caller with an expired token
    /// gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let previous = ctx.server_key().counters().get_and_increment("orders").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_and_increment(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["get", "increment"]).await
    }

    /// Subtracts 1 and returns the new value
    /// (`PUT counters/{name}/decrement/get`); it may go below 0. A caller
    /// with an expired token gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let seats_left = ctx.server_key().counters().decrement_and_get("seats").await?;
    /// if seats_left < 0 {
    ///     // Oversold: give the seat back.
    ///     ctx.server_key().counters().increment_and_get("seats").await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn decrement_and_get(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["decrement", "get"]).await
    }

    /// Subtracts 1 and returns the value before it
    /// (`PUT counters/{name}/get/decrement`). A caller with an expired token
    /// gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let before = ctx.server_key().counters().get_and_decrement("stock").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_and_decrement(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["get", "decrement"]).await
    }

    /// Adds `value` (negative to subtract) and returns the new value
    /// (`PUT counters/{name}/incrementby/get?value=`). A caller with an
    /// expired token gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let total = ctx.server_key().counters().add_and_get("points", 25).await?;
    /// # Ok(()) }
    /// ```
    pub async fn add_and_get(&self, name: &str, value: i64) -> Result<i64, SdkError> {
        let call = COUNTERS
            .call(Method::PUT, name, ["incrementby", "get"])?
            .query("value", value);
        self.client.send(call).await
    }

    /// Adds `value` and returns the value before it
    /// (`PUT counters/{name}/get/incrementby?value=`). A caller with an
    /// expired token gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let before = ctx.server_key().counters().get_and_add("points", -10).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_and_add(&self, name: &str, value: i64) -> Result<i64, SdkError> {
        let call = COUNTERS
            .call(Method::PUT, name, ["get", "incrementby"])?
            .query("value", value);
        self.client.send(call).await
    }

    /// Sets the counter to `updated` only if it is `expected` now, and says
    /// whether it did (`PUT counters/{name}/get/compareandset?expected=&updatedvalue=`):
    /// `false` is an answer, not an error. A caller with an expired token
    /// gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// let counters = ctx.server_key();
    /// let counters = counters.counters();
    /// let seen = counters.get("version").await?;
    /// let won = counters.compare_and_set("version", seen, seen + 1).await?;
    /// if !won {
    ///     // Another handler moved it first; read again and retry.
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn compare_and_set(
        &self,
        name: &str,
        expected: i64,
        updated: i64,
    ) -> Result<bool, SdkError> {
        let call = COUNTERS
            .call(Method::PUT, name, ["get", "compareandset"])?
            .query("expected", expected)
            .query("updatedvalue", updated);
        self.client.send(call).await
    }

    /// Sets the counter back to 0 (`PUT counters/{name}/reset`). A caller
    /// with an expired token gets 3064.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.superuser().counters().reset("daily_signups").await?;
    /// # Ok(()) }
    /// ```
    pub async fn reset(&self, name: &str) -> Result<(), SdkError> {
        self.client
            .send_raw(COUNTERS.call(Method::PUT, name, ["reset"])?)
            .await
            .map(drop)
    }
}
