//! The atomic counters service (spec §4.4). `x_and_get` returns the new
//! value, `get_and_x` the previous one.

use reqwest::Method;

use super::client::Client;
use super::error::SdkError;
use super::transport::{Call, Service};

/// The atomic counters service of a [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    client: &'a Client,
}

impl<'a> Counters<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Counters { client }
    }

    fn call<const N: usize>(
        &self,
        method: Method,
        name: &str,
        rest: [&str; N],
    ) -> Result<Call, SdkError> {
        if name.is_empty() {
            return Err(SdkError::invalid("counter", "the counter name is empty"));
        }
        let segments = ["counters", name].into_iter().chain(rest);
        Ok(Call::new(Service::Counters, method, segments))
    }

    async fn put_op<const N: usize>(&self, name: &str, rest: [&str; N]) -> Result<i64, SdkError> {
        self.client.send(self.call(Method::PUT, name, rest)?).await
    }

    /// The current value.
    pub async fn get(&self, name: &str) -> Result<i64, SdkError> {
        self.client.send(self.call(Method::GET, name, [])?).await
    }

    /// Adds 1; returns the new value.
    pub async fn increment_and_get(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["increment", "get"]).await
    }

    /// Adds 1; returns the previous value.
    pub async fn get_and_increment(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["get", "increment"]).await
    }

    /// Subtracts 1; returns the new value.
    pub async fn decrement_and_get(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["decrement", "get"]).await
    }

    /// Subtracts 1; returns the previous value.
    pub async fn get_and_decrement(&self, name: &str) -> Result<i64, SdkError> {
        self.put_op(name, ["get", "decrement"]).await
    }

    /// Adds `value`; returns the new value.
    pub async fn add_and_get(&self, name: &str, value: i64) -> Result<i64, SdkError> {
        let call = self
            .call(Method::PUT, name, ["incrementby", "get"])?
            .query("value", value);
        self.client.send(call).await
    }

    /// Adds `value`; returns the previous value.
    pub async fn get_and_add(&self, name: &str, value: i64) -> Result<i64, SdkError> {
        let call = self
            .call(Method::PUT, name, ["get", "incrementby"])?
            .query("value", value);
        self.client.send(call).await
    }

    /// Sets the counter to `updated` if it equals `expected`; returns whether it did.
    pub async fn compare_and_set(
        &self,
        name: &str,
        expected: i64,
        updated: i64,
    ) -> Result<bool, SdkError> {
        let call = self
            .call(Method::PUT, name, ["get", "compareandset"])?
            .query("expected", expected)
            .query("updatedvalue", updated);
        self.client.send(call).await
    }

    /// Sets the counter to 0.
    pub async fn reset(&self, name: &str) -> Result<(), SdkError> {
        self.client
            .send_raw(self.call(Method::PUT, name, ["reset"])?)
            .await
            .map(drop)
    }
}
