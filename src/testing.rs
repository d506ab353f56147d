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

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Config, DEV_TOML};
use crate::dev::DevStack;
use crate::emulator::{Emulator, EmulatorConfig, Inspector};
use crate::event::wire::{
    Arguments, Encoding, ExceptionWrapper, ExecutionResult, InvocationResult, Task,
};
use crate::event::{EventId, UserToken};
use crate::registry::{Registry, RegistryError};

/// The REST API key the harness uses for its own calls.
pub const REST_KEY: &str = "dev-rest-key";

/// An emulator and a runner with your handlers, on loopback ports.
pub struct TestApp {
    stack: DevStack,
    http: reqwest::Client,
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

impl TestApp {
    /// The dev app (config/dev.toml) with the handlers `register` adds.
    pub async fn start(
        register: impl FnOnce(&mut Registry) -> Result<(), RegistryError>,
    ) -> TestApp {
        Self::start_with(EmulatorConfig::dev(), register).await
    }

    /// A custom emulator configuration with the handlers `register` adds.
    /// The emulator's database is forced in memory and both servers listen
    /// on 127.0.0.1:0.
    pub async fn start_with(
        mut emulator: EmulatorConfig,
        register: impl FnOnce(&mut Registry) -> Result<(), RegistryError>,
    ) -> TestApp {
        let mut registry = Registry::new();
        register(&mut registry).expect("handlers register");
        let mut config = Config::from_toml(DEV_TOML).expect("config/dev.toml is valid");
        config.server.listen = "127.0.0.1:0".parse().expect("address");
        emulator.listen = "127.0.0.1:0".to_owned();
        emulator.database = ":memory:".to_owned();
        let stack = DevStack::start(&config, emulator, registry, None)
            .await
            .expect("the test app starts");
        TestApp {
            stack,
            http: reqwest::Client::new(),
        }
    }

    /// The emulator.
    pub fn emulator(&self) -> &Emulator {
        &self.stack.emulator
    }

    /// What the emulator saw: requests, logins, tasks sent.
    pub fn inspect(&self) -> Inspector {
        self.stack.emulator.inspect()
    }

    /// Every row of a table, whatever its permissions.
    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.inspect().rows(table)
    }

    /// `http://{emulator}`.
    pub fn emulator_url(&self) -> &str {
        &self.stack.emulator_url
    }

    /// `http://{runner}`.
    pub fn runner_url(&self) -> &str {
        &self.stack.runner_url
    }

    /// The Backendless API root for an API key.
    pub fn api_root(&self, api_key: &str) -> String {
        self.stack.api_root(api_key)
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

    /// Stops the runner, then the emulator.
    pub async fn stop(self) {
        let _ = self.stack.stop().await;
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
        let dispatcher = &self.app.stack.dispatcher;
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
