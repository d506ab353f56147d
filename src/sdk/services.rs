//! Business logic a handler calls (spec §1.5): API service methods
//! (`POST services/{Service}/{method}`) and custom events
//! (`POST servercode/events/{name}`), each under the client's identity and
//! within its deadline. `*_async` sends `bl-execution-type: async`: the
//! backend answers at once and runs the logic without the caller waiting.

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::Client;
use super::error::SdkError;
use super::transport::{Call, Service, decode};

/// The header choosing how the backend runs business logic.
const EXECUTION_TYPE: &str = "bl-execution-type";

fn encode<P: Serialize>(service: Service, value: &P) -> Result<Value, SdkError> {
    serde_json::to_value(value).map_err(|e| SdkError::Decode {
        service: service.as_str(),
        message: format!("could not encode the request body: {e}"),
    })
}

/// The API services of a [`Client`].
///
/// # Example
/// ```no_run
/// # async fn run(client: coderunner::sdk::Client) -> Result<(), coderunner::sdk::SdkError> {
/// // One parameter: its value is the body; several: an object of them by name.
/// let sum: f64 = client
///     .services()
///     .invoke("CalcService", "sum", &serde_json::json!({"a": 2, "b": 3}))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Services<'a> {
    client: &'a Client,
}

impl<'a> Services<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Services { client }
    }

    fn call<P: Serialize>(
        &self,
        service: &str,
        method: &str,
        params: &P,
    ) -> Result<Call, SdkError> {
        SdkError::non_empty("service", "service", service)?;
        SdkError::non_empty("method", "method", method)?;
        let body = encode(Service::Services, params)?;
        let call = Call::new(
            Service::Services,
            Method::POST,
            ["services", service, method],
        );
        Ok(if body.is_null() {
            call
        } else {
            call.body(body)
        })
    }

    /// Calls `method` of `service` with `params` (the body: `()` for none)
    /// and decodes its return value into `R`
    /// (`POST services/{service}/{method}`), waiting for the method within
    /// the invocation's deadline. One parameter: its value is the body;
    /// several: an object of them by name. An empty service or method name is
    /// [`SdkError::InvalidArgument`] before any request; the backend answers
    /// 14001 for an unknown service and 14002 for an unknown method.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// use serde_json::json;
    /// let client = ctx.caller();
    /// let sum: f64 = client.services().invoke("CalcService", "sum", &json!({"a": 2, "b": 3})).await?;
    /// let version: String = client.services().invoke("InfoService", "version", &()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn invoke<P: Serialize, R: DeserializeOwned>(
        &self,
        service: &str,
        method: &str,
        params: &P,
    ) -> Result<R, SdkError> {
        self.client.send(self.call(service, method, params)?).await
    }

    /// Starts `method` of `service` without waiting for it to finish: the
    /// same request as [`Services::invoke`] with `bl-execution-type: async`,
    /// which the backend answers at once; the method's result is not
    /// returned.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.server_key()
    ///     .services()
    ///     .invoke_async("ReportService", "rebuild", &serde_json::json!({"month": "2026-11"}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn invoke_async<P: Serialize>(
        &self,
        service: &str,
        method: &str,
        params: &P,
    ) -> Result<(), SdkError> {
        let call = self
            .call(service, method, params)?
            .header(EXECUTION_TYPE, "async");
        self.client.send_raw(call).await.map(drop)
    }
}

/// The custom events of a [`Client`].
///
/// # Example
/// ```no_run
/// # async fn run(client: coderunner::sdk::Client) -> Result<(), coderunner::sdk::SdkError> {
/// let stats: serde_json::Value = client
///     .events()
///     .dispatch("postStats", &serde_json::json!({}))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    client: &'a Client,
}

impl<'a> Events<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Events { client }
    }

    fn call<A: Serialize>(&self, name: &str, args: &A) -> Result<Call, SdkError> {
        SdkError::non_empty("event", "event", name)?;
        let body = match encode(Service::Events, args)? {
            Value::Null => Value::Object(serde_json::Map::new()),
            object @ Value::Object(_) => object,
            _ => {
                return Err(SdkError::invalid(
                    "args",
                    "the arguments of a custom event must be an object",
                ));
            }
        };
        Ok(Call::new(
            Service::Events,
            Method::POST,
            ["servercode", "events", name],
        )
        .body(body))
    }

    /// Dispatches custom event `name` with `args` (an object; `()` sends
    /// `{}`) and decodes the handler's result into `R`
    /// (`POST servercode/events/{name}`). Arguments that are not an object,
    /// or an empty name, are [`SdkError::InvalidArgument`] before any
    /// request.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// #[derive(serde::Deserialize)]
    /// struct Stats { orders: u64 }
    /// let stats: Stats = ctx
    ///     .caller()
    ///     .events()
    ///     .dispatch("postStats", &serde_json::json!({"since": 1700000000000_i64}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn dispatch<A: Serialize, R: DeserializeOwned>(
        &self,
        name: &str,
        args: &A,
    ) -> Result<R, SdkError> {
        let value = self.client.send_raw(self.call(name, args)?).await?;
        decode(Service::Events, value)
    }

    /// Dispatches custom event `name` without waiting for its handler: the
    /// same request as [`Events::dispatch`] with `bl-execution-type: async`,
    /// which the backend answers at once.
    ///
    /// # Example
    /// ```
    /// # async fn example(ctx: coderunner::Context) -> Result<(), coderunner::sdk::SdkError> {
    /// ctx.caller().events().dispatch_async("warmCaches", &()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn dispatch_async<A: Serialize>(&self, name: &str, args: &A) -> Result<(), SdkError> {
        let call = self.call(name, args)?.header(EXECUTION_TYPE, "async");
        self.client.send_raw(call).await.map(drop)
    }
}
