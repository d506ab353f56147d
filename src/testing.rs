//! A harness for testing your handlers: an in-process emulator seeded with
//! the dev app, your handlers registered in a runner linked to it, real
//! callers logged in through the emulator, and tasks run in-process.
//!
//! ```no_run
//! # async fn demo() {
//! use coderunner::event::persistence;
//! use coderunner::testing::TestApp;
//! use serde_json::json;
//!
//! # fn register(_: &mut coderunner::Registry) -> Result<(), coderunner::RegistryError> { Ok(()) }
//! let app = TestApp::start(register).await;
//! let alice = app.login("alice@example.com").await;
//! let reply = app
//!     .invoke(persistence::BEFORE_CREATE, "Post")
//!     .as_user(&alice)
//!     .arg(json!({"title": "  Hello  "}))
//!     .send()
//!     .await;
//! assert_eq!(reply.arg(1)["title"], "Hello");
//! assert!(app.rows("Latest_post").is_empty());
//! # }
//! ```
//!
//! Everything runs on 127.0.0.1 with an in-memory database; each `TestApp`
//! is independent, so tests can run in parallel.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DEV_TOML};
use crate::dev::DevStack;
use crate::dispatch::Dispatcher;
use crate::emulator::{Emulator, EmulatorConfig, Inspector};
use crate::event::wire::{
    Arguments, Encoding, ExceptionWrapper, ExecutionResult, InvocationResult, Task,
};
use crate::event::{EventId, UserToken};
use crate::registry::{Registry, RegistryError};
use crate::runner::Runner;
use crate::signature::WebhookSecret;

/// The framing of the Redis transport (a header and deflate above a size
/// threshold), for tests that push tasks to Redis as a Backendless server
/// does and read the replies.
pub mod framing {
    pub use crate::transport::framing::{FramingError, frame, unframe};
}

/// The REST API key the harness uses for its own calls.
pub const REST_KEY: &str = "dev-rest-key";

/// An emulator and a runner with your handlers (or a runner alone), on
/// loopback ports. Start one with [`TestApp::start`] or
/// [`TestApp::builder`]; it stops when dropped, or with [`TestApp::stop`].
pub struct TestApp {
    servers: Servers,
    secret: Option<WebhookSecret>,
    http: reqwest::Client,
}

/// What a [`TestApp`] runs.
enum Servers {
    /// The emulator and the runner, linked.
    Linked(Box<DevStack>),
    /// A runner alone.
    Runner {
        addr: SocketAddr,
        url: String,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
        task: Option<JoinHandle<std::io::Result<()>>>,
    },
    /// Taken by [`TestApp::wait`].
    Stopped,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A user logged in through the emulator: a real token, real roles.
#[derive(Clone)]
pub struct TestUser {
    /// The user's objectId.
    pub id: String,
    /// The login (email).
    pub email: String,
    /// The session token.
    pub token: UserToken,
    /// The roles the emulator reports for this user with the REST key.
    pub roles: Vec<String>,
}

impl fmt::Debug for TestUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("roles", &self.roles)
            .finish()
    }
}

/// An error the emulator's REST API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// The HTTP status.
    pub status: u16,
    /// The Backendless error code.
    pub code: i64,
    /// The message.
    pub message: String,
}

/// Builds a [`TestApp`]; see [`TestApp::builder`].
#[must_use = "a builder does nothing until `start`"]
pub struct TestAppBuilder {
    registry: Registry,
    emulator: Option<EmulatorConfig>,
    dev_config: bool,
    overlays: Vec<String>,
    secrets: Option<Vec<String>>,
    record_dir: Option<PathBuf>,
}

impl TestAppBuilder {
    /// The handlers `register` adds (to those already registered).
    pub fn register(
        mut self,
        register: impl FnOnce(&mut Registry) -> Result<(), RegistryError>,
    ) -> Self {
        register(&mut self.registry).expect("handlers register");
        self
    }

    /// The registry to serve, in place of the one built so far.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// The emulator's configuration (default: the dev app,
    /// [`EmulatorConfig::dev`]). Its database is forced in memory and it
    /// listens on 127.0.0.1:0.
    pub fn emulator(mut self, config: EmulatorConfig) -> Self {
        self.emulator = Some(config);
        self
    }

    /// A runner alone, with no emulator; its configuration starts from the
    /// built-in defaults (not `config/dev.toml`), so it names no Backendless
    /// app unless an overlay does.
    pub fn without_emulator(mut self) -> Self {
        self.emulator = None;
        self.dev_config = false;
        self
    }

    /// Starts the runner's configuration from the built-in defaults rather
    /// than `config/dev.toml` (the emulator link still points its SDK at the
    /// emulator).
    pub fn default_config(mut self) -> Self {
        self.dev_config = false;
        self
    }

    /// A TOML overlay for the runner's configuration, applied after the base
    /// and the overlays added before. `server.listen` is always 127.0.0.1:0.
    pub fn config(mut self, toml: &str) -> Self {
        self.overlays.push(toml.to_owned());
        self
    }

    /// The runner's webhook secrets (`security.webhook_secrets`); the first
    /// signs the emulator's tasks and those of [`TestApp::send_signed`].
    pub fn webhook_secrets<S: Into<String>>(
        mut self,
        secrets: impl IntoIterator<Item = S>,
    ) -> Self {
        self.secrets = Some(secrets.into_iter().map(Into::into).collect());
        self
    }

    /// Makes the emulator record every task it sends into `dir`.
    pub fn record_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.record_dir = Some(dir.into());
        self
    }

    /// The runner's configuration as built. Panics if it is invalid.
    pub fn runner_config(&self) -> Config {
        let mut figment = Figment::from(Toml::string(crate::config::DEFAULT_TOML));
        if self.dev_config {
            figment = figment.merge(Toml::string(DEV_TOML));
        }
        if let Some(secrets) = &self.secrets {
            let list = serde_json::to_string(secrets).expect("secrets serialize");
            figment = figment.merge(Toml::string(&format!(
                "[security]\nwebhook_secrets = {list}\n"
            )));
        }
        for overlay in &self.overlays {
            figment = figment.merge(Toml::string(overlay));
        }
        let mut config = Config::from_figment(figment)
            .unwrap_or_else(|e| panic!("the test runner's configuration is invalid: {e}"));
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        config
    }

    /// Starts the servers. Panics if they cannot start.
    pub async fn start(self) -> TestApp {
        let config = self.runner_config();
        let secret = config
            .security
            .webhook_secrets
            .first()
            .map(|s| WebhookSecret::parse(secrecy::ExposeSecret::expose_secret(s)))
            .transpose()
            .unwrap_or_else(|e| panic!("the first webhook secret is invalid: {e}"));
        let servers = match self.emulator {
            Some(mut emulator) => {
                emulator.listen = "127.0.0.1:0".to_owned();
                emulator.database = ":memory:".to_owned();
                let stack = DevStack::start(&config, emulator, self.registry, self.record_dir)
                    .await
                    .unwrap_or_else(|e| panic!("the test app starts: {e}"));
                Servers::Linked(Box::new(stack))
            }
            None => {
                let runner = Runner::new(&config, self.registry)
                    .unwrap_or_else(|e| panic!("the test runner starts: {e}"));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a loopback port");
                let addr = listener.local_addr().expect("a local address");
                let dispatcher = runner.dispatcher().clone();
                let shutdown = CancellationToken::new();
                let task = tokio::spawn(runner.serve(listener, shutdown.clone()));
                Servers::Runner {
                    addr,
                    url: format!("http://{addr}"),
                    dispatcher,
                    shutdown,
                    task: Some(task),
                }
            }
        };
        TestApp {
            servers,
            secret,
            http: reqwest::Client::new(),
        }
    }
}

impl TestApp {
    /// The dev app (config/dev.toml) with the handlers `register` adds.
    pub async fn start(
        register: impl FnOnce(&mut Registry) -> Result<(), RegistryError>,
    ) -> TestApp {
        Self::builder().register(register).start().await
    }

    /// A custom emulator configuration with the handlers `register` adds.
    /// The emulator's database is forced in memory and both servers listen
    /// on 127.0.0.1:0.
    pub async fn start_with(
        emulator: EmulatorConfig,
        register: impl FnOnce(&mut Registry) -> Result<(), RegistryError>,
    ) -> TestApp {
        Self::builder()
            .emulator(emulator)
            .register(register)
            .start()
            .await
    }

    /// A builder: by default the dev app's emulator and a runner configured
    /// by `config/dev.toml`, with no handlers.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            registry: Registry::new(),
            emulator: Some(EmulatorConfig::dev()),
            dev_config: true,
            overlays: Vec::new(),
            secrets: None,
            record_dir: None,
        }
    }

    fn stack(&self) -> &DevStack {
        match &self.servers {
            Servers::Linked(stack) => stack,
            _ => panic!("this TestApp has no emulator (built `without_emulator`)"),
        }
    }

    fn dispatcher(&self) -> &Dispatcher {
        match &self.servers {
            Servers::Linked(stack) => &stack.dispatcher,
            Servers::Runner { dispatcher, .. } => dispatcher,
            Servers::Stopped => unreachable!("a stopped TestApp is consumed"),
        }
    }

    /// The emulator. Panics without one.
    pub fn emulator(&self) -> &Emulator {
        &self.stack().emulator
    }

    /// What the emulator saw: requests, logins, tasks sent. Panics without
    /// an emulator.
    pub fn inspect(&self) -> Inspector {
        self.emulator().inspect()
    }

    /// Every row of a table, whatever its permissions.
    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.inspect().rows(table)
    }

    /// `http://{emulator}`. Panics without an emulator.
    pub fn emulator_url(&self) -> &str {
        &self.stack().emulator_url
    }

    /// `http://{runner}`.
    pub fn runner_url(&self) -> &str {
        match &self.servers {
            Servers::Linked(stack) => &stack.runner_url,
            Servers::Runner { url, .. } => url,
            Servers::Stopped => unreachable!("a stopped TestApp is consumed"),
        }
    }

    /// The runner's address.
    pub fn runner_addr(&self) -> SocketAddr {
        match &self.servers {
            Servers::Linked(stack) => stack.runner_addr,
            Servers::Runner { addr, .. } => *addr,
            Servers::Stopped => unreachable!("a stopped TestApp is consumed"),
        }
    }

    /// `http://{runner}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.runner_url())
    }

    /// The runner's first webhook secret, if it has one.
    pub fn secret(&self) -> Option<&WebhookSecret> {
        self.secret.as_ref()
    }

    /// A shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Posts `body` to the runner's `/invoke` as JSON, signed with the first
    /// webhook secret (unsigned when there is none), as a backend sends a
    /// task. Panics if the request cannot be sent.
    pub async fn send_signed(&self, body: Vec<u8>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/invoke"))
            .header("content-type", "application/json");
        if let Some(secret) = &self.secret {
            for (name, value) in secret.sign_headers(&body) {
                request = request.header(name, value);
            }
        }
        request.body(body).send().await.expect("the runner answers")
    }

    /// [`TestApp::send_signed`] with a task as JSON: the status and the JSON
    /// reply (`Null` when the body is not JSON).
    pub async fn send_task(&self, task: &Value) -> (u16, Value) {
        let response = self
            .send_signed(serde_json::to_vec(task).expect("task serializes"))
            .await;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("the reply is read");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The Backendless API root for an API key. Panics without an emulator.
    pub fn api_root(&self, api_key: &str) -> String {
        self.stack().api_root(api_key)
    }

    /// Logs in a user of the emulator's configuration (its password is
    /// known). Panics if the login fails.
    pub async fn login(&self, email: &str) -> TestUser {
        let password = self
            .emulator()
            .config()
            .users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .unwrap_or_else(|| panic!("{email} is not a user of the emulator's configuration"))
            .password
            .expose()
            .to_owned();
        self.login_with(email, &password)
            .await
            .unwrap_or_else(|e| panic!("login of {email} failed: {e:?}"))
    }

    /// Logs a user in with a password.
    pub async fn login_with(&self, email: &str, password: &str) -> Result<TestUser, RestError> {
        let user = self
            .post(
                None,
                "/users/login",
                json!({"login": email, "password": password}),
            )
            .await?;
        let token = user["user-token"].as_str().unwrap_or_default().to_owned();
        let id = user["objectId"].as_str().unwrap_or_default().to_owned();
        let roles = self.get(Some(&token), "/users/userroles").await?;
        let roles = serde_json::from_value(roles).unwrap_or_default();
        Ok(TestUser {
            id,
            email: email.to_owned(),
            token: UserToken::new(token),
            roles,
        })
    }

    /// Creates a row through the emulator's REST API (`POST /data/{table}`)
    /// as `user` (or anonymously), with the REST key: permissions apply and
    /// business logic fires, as for a real client.
    pub async fn create(
        &self,
        user: Option<&TestUser>,
        table: &str,
        row: impl Serialize,
    ) -> Result<Value, RestError> {
        let body = serde_json::to_value(row).expect("row serializes");
        self.post(
            user.map(|u| u.token.expose()),
            &format!("/data/{table}"),
            body,
        )
        .await
    }

    async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Result<Value, RestError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.api_root(REST_KEY)))
            .json(&body);
        if let Some(token) = token {
            request = request.header("user-token", token);
        }
        Self::answer(request.send().await).await
    }

    async fn get(&self, token: Option<&str>, path: &str) -> Result<Value, RestError> {
        let mut request = self.http.get(format!("{}{path}", self.api_root(REST_KEY)));
        if let Some(token) = token {
            request = request.header("user-token", token);
        }
        Self::answer(request.send().await).await
    }

    async fn answer(response: reqwest::Result<reqwest::Response>) -> Result<Value, RestError> {
        let response = response.map_err(|e| RestError {
            status: 0,
            code: 0,
            message: e.without_url().to_string(),
        })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(RestError {
                status,
                code: body["code"].as_i64().unwrap_or(0),
                message: body["message"].as_str().unwrap_or_default().to_owned(),
            })
        }
    }

    /// Starts building a task for `event` on `target`, run in-process by
    /// the runner's dispatcher (no HTTP, no signature).
    pub fn invoke(&self, event: EventId, target: &str) -> Invocation<'_> {
        Invocation {
            app: self,
            event,
            target: target.to_owned(),
            caller: None,
            args: Vec::new(),
            result: None,
            timeout_ms: 5000,
        }
    }

    /// Starts shutting down: the runner drains its in-flight tasks and
    /// stops, then the emulator. [`TestApp::wait`] waits for the end.
    pub fn shutdown(&self) {
        match &self.servers {
            Servers::Linked(stack) => stack.shutdown.cancel(),
            Servers::Runner { shutdown, .. } => shutdown.cancel(),
            Servers::Stopped => {}
        }
    }

    /// Waits until the servers have stopped (after [`TestApp::shutdown`]);
    /// what serving ended with.
    pub async fn wait(mut self) -> std::io::Result<()> {
        match std::mem::replace(&mut self.servers, Servers::Stopped) {
            Servers::Linked(stack) => stack.wait().await,
            Servers::Runner { task, .. } => match task {
                Some(task) => task.await.map_err(std::io::Error::other)?,
                None => Ok(()),
            },
            Servers::Stopped => Ok(()),
        }
    }

    /// Stops the runner alone and waits until it has shut down; the
    /// emulator keeps serving until [`TestApp::stop`] (or the drop).
    pub async fn stop_runner(&mut self) -> std::io::Result<()> {
        match &mut self.servers {
            Servers::Linked(stack) => stack.stop_runner().await,
            Servers::Runner { shutdown, task, .. } => {
                shutdown.cancel();
                match task.take() {
                    Some(task) => task.await.map_err(std::io::Error::other)?,
                    None => Ok(()),
                }
            }
            Servers::Stopped => Ok(()),
        }
    }

    /// Stops the runner, then the emulator.
    pub async fn stop(self) {
        self.shutdown();
        let _ = self.wait().await;
    }
}

/// A task being built; see [`TestApp::invoke`].
pub struct Invocation<'a> {
    app: &'a TestApp,
    event: EventId,
    target: String,
    caller: Option<TestUser>,
    args: Vec<Value>,
    result: Option<Value>,
    timeout_ms: i64,
}

impl Invocation<'_> {
    /// The caller (default: anonymous).
    pub fn as_user(mut self, user: &TestUser) -> Self {
        self.caller = Some(user.clone());
        self
    }

    /// The next argument after the context.
    pub fn arg(mut self, value: impl Serialize) -> Self {
        self.args
            .push(serde_json::to_value(value).expect("argument serializes"));
        self
    }

    /// The result the built-in logic produced (after-events).
    pub fn result(mut self, value: impl Serialize) -> Self {
        self.result = Some(serde_json::to_value(value).expect("result serializes"));
        self
    }

    /// The task's timeout (default 5000 ms).
    pub fn timeout_ms(mut self, ms: i64) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// The RunnerContext this invocation sends.
    pub fn context(&self) -> Value {
        let app_id = &self.app.emulator().config().app_id;
        match &self.caller {
            Some(user) => json!({
                "appId": app_id, "userId": user.id, "userToken": user.token.expose(),
                "userRoles": user.roles, "deviceType": "REST",
                "httpHeaders": {"user-token": user.token.expose()}, "eventContext": self.target,
            }),
            None => json!({
                "appId": app_id, "userId": null, "userToken": null,
                "userRoles": ["NotAuthenticatedUser", "RestUser"], "deviceType": "REST",
                "httpHeaders": {}, "eventContext": self.target,
            }),
        }
    }

    /// Runs the task and returns the reply.
    pub async fn send(self) -> Reply {
        let mut values = vec![self.context()];
        values.extend(self.args);
        if let Some(result) = self.result {
            values.push(serde_json::to_value(ExecutionResult::ok(result)).expect("serializes"));
        }
        let task = Task {
            json_class: crate::event::wire::TASK_CLASS.to_owned(),
            id: format!("test-{}", uuid::Uuid::new_v4()),
            application_id: None,
            event_id: self.event,
            target: self.target,
            is_async: false,
            timeout: Some(self.timeout_ms),
            timestamp: None,
            arguments: Arguments::new(Encoding::Json, values),
            invocation_context_dto: None,
            init_app_data: None,
            provider: None,
        };
        let dispatcher = self.app.dispatcher();
        match dispatcher.route(task) {
            Ok(routed) => Reply(dispatcher.run(routed).await.0),
            Err(e) => panic!("the task cannot be routed: {e}"),
        }
    }
}

/// The reply to an in-process invocation.
#[derive(Debug, Clone)]
pub struct Reply(pub InvocationResult);

impl Reply {
    /// Whether the handler did not fail.
    pub fn is_ok(&self) -> bool {
        self.0.exception.is_none()
    }

    /// The handler's error, if it failed.
    pub fn error(&self) -> Option<&ExceptionWrapper> {
        self.0.exception.as_ref()
    }

    /// The reply arguments (context first); empty on error.
    pub fn arguments(&self) -> &[Value] {
        self.0.arguments.as_ref().map_or(&[], |a| &a.values)
    }

    /// Argument `i` of the reply (0 = context); `Null` if absent.
    pub fn arg(&self, i: usize) -> &Value {
        self.arguments().get(i).unwrap_or(&Value::Null)
    }

    /// The short-circuit value a before-handler returned.
    pub fn premature_result(&self) -> Option<&Value> {
        self.arg(0).get("prematureResult")
    }

    /// The result an after-handler left or put in place.
    pub fn result(&self) -> Option<&Value> {
        self.arguments().last().and_then(|v| v.get("result"))
    }
}
