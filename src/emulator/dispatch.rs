//! Business-logic dispatch: learns the runner's handlers, sends signed tasks
//! (`POST {runner}/invoke`) for the events of data and user operations, and
//! turns replies into a changed argument list, a premature result, a
//! replacement result or an error for the client (spec §1.3).
//!
//! Requests made with the CloudCode key fire nothing (spec §8.5).
//!
//! Fails closed: without a handler list (the runner is down or slow and none
//! was ever fetched) a request that could fire an event is refused with 502
//! rather than run without its handlers; a failed refresh keeps the last
//! good list.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::event::wire::{
    Arguments, Encoding, ExecutionResult, InvocationResult, SERVICE_TASK_CLASS, ServiceTask,
    TASK_CLASS, Task,
};
use crate::event::{EventDef, EventId, RunnerContext, UserToken};
use crate::signature::WebhookSecret;
use crate::timer::Schedule;

use super::auth::Requester;
use super::config::{EmulatorConfig, KeyKind, LinkTransport};
use super::error::ApiError;
use super::inspect::{Log, SentTask};
use super::redis_link::{Destination, RedisLink};
use super::store::now_ms;

/// How long the handler list is trusted before it is fetched again.
const HANDLERS_TTL: Duration = Duration::from_secs(1);

/// How long fetching the handler list may take.
const HANDLERS_FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The runner's handler list as last fetched.
#[derive(Debug, Default)]
pub(crate) struct HandlerList {
    /// The last list fetched with success; used while refreshes fail.
    last_good: Option<Arc<Vec<RemoteHandler>>>,
    /// When to fetch again; `None` = at the next use.
    refresh_at: Option<Instant>,
}

impl HandlerList {
    /// Makes the list due for a refresh (it stays the last good one).
    pub(crate) fn expire(&mut self) {
        self.refresh_at = None;
    }
}

/// One handler the runner registered (`GET {runner}/handlers`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct RemoteHandler {
    /// The event id.
    pub event_id: EventId,
    /// Table name, or `*`.
    #[serde(default = "star")]
    pub target: String,
    /// Fire and forget.
    #[serde(default, rename = "async")]
    pub is_async: bool,
}

fn star() -> String {
    "*".to_owned()
}

pub(crate) struct Link {
    url: String,
    secret: WebhookSecret,
    record_dir: Option<PathBuf>,
    timeout_ms: u64,
    client: reqwest::Client,
    /// The handler list; shared with the [`super::Inspector`].
    handlers: Arc<Mutex<HandlerList>>,
}

/// What a before-handler decided.
#[derive(Debug)]
pub(super) enum RunnerBefore {
    /// Run the operation with these (possibly changed) arguments.
    Continue(Vec<Value>),
    /// Skip the operation and return this.
    Premature(Value),
}

/// Where one task goes.
pub(crate) enum Route<'a> {
    /// Signed HTTP to the linked runner.
    Http(&'a Link),
    /// Through Redis to a registered or deployed runner.
    Redis(&'a RedisLink, Destination),
}

/// Sends tasks to the runner, if one is configured.
pub(super) struct RunnerLink {
    link: Option<Link>,
    /// The Redis link, when runners take tasks from Redis.
    redis: Option<RedisLink>,
    app_id: String,
    /// `initAppData` of every task: where and with which key handlers call back.
    init_app_data: parking_lot::RwLock<Value>,
    /// Whether `public_url` was configured (else `serve` sets the bound address).
    fixed_url: bool,
    /// `configurationItems` of each service's tasks, by service.
    service_config: std::collections::BTreeMap<String, Vec<Value>>,
    log: Arc<Log>,
}

impl RunnerLink {
    pub(crate) fn new(config: &EmulatorConfig, log: Arc<Log>) -> anyhow::Result<Self> {
        let redis = match &config.runner {
            Some(r) if r.transport == LinkTransport::Redis => Some(RedisLink::new(
                &r.redis_url,
                &r.queue,
                &config.app_id,
                r.compression,
                r.task_timeout_ms,
                r.record_dir.clone(),
            )?),
            _ => None,
        };
        let link = match &config.runner {
            None => None,
            Some(r) if r.transport == LinkTransport::Redis => None,
            Some(r) => Some(Link {
                url: r.url.trim_end_matches('/').to_owned(),
                secret: WebhookSecret::parse(r.secret.expose())
                    .map_err(|e| anyhow::anyhow!("emulator.runner.secret: {e}"))?,
                record_dir: r.record_dir.clone(),
                timeout_ms: r.task_timeout_ms,
                client: reqwest::Client::builder()
                    .timeout(Duration::from_millis(r.task_timeout_ms + 2000))
                    .build()?,
                handlers: Arc::default(),
            }),
        };
        let api_key = config
            .keys
            .iter()
            .find(|k| k.kind == KeyKind::CloudCode)
            .map(|k| k.key.clone());
        let url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen));
        Ok(Self {
            link,
            redis,
            app_id: config.app_id.clone(),
            init_app_data: parking_lot::RwLock::new(json!({"url": url, "apiKey": api_key})),
            fixed_url: config.public_url.is_some(),
            service_config: config
                .service_config
                .iter()
                .map(|(service, items)| {
                    let items = items
                        .iter()
                        .map(|(name, value)| {
                            json!({"name": name, "value": value.expose(), "productId": null})
                        })
                        .collect();
                    (service.clone(), items)
                })
                .collect(),
            log,
        })
    }

    /// Tells handlers to call back at `url` (the address actually bound),
    /// unless `public_url` was configured.
    pub(crate) fn set_callback_url(&self, url: String) {
        if !self.fixed_url {
            self.init_app_data.write()["url"] = Value::String(url);
        }
    }

    /// The emulator's URL as handlers and clients reach it (`initAppData.url`).
    pub(crate) fn base_url(&self) -> String {
        self.init_app_data.read()["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The Redis link, when runners take tasks from Redis.
    pub(crate) fn redis_link(&self) -> Option<&RedisLink> {
        self.redis.as_ref()
    }

    /// The runner's handler list, if a runner is linked.
    pub(crate) fn handler_list(&self) -> Option<Arc<Mutex<HandlerList>>> {
        self.link.as_ref().map(|l| l.handlers.clone())
    }

    /// The handler list: the cached one while fresh, else a fetched one,
    /// else (the fetch failed) the last good one; 502 when there is none.
    async fn handlers(&self, link: &Link) -> Result<Arc<Vec<RemoteHandler>>, ApiError> {
        let last_good = {
            let cached = link.handlers.lock();
            match (&cached.last_good, cached.refresh_at) {
                (Some(list), Some(at)) if Instant::now() < at => return Ok(list.clone()),
                (last_good, _) => last_good.clone(),
            }
        };
        let fetched = async {
            link.client
                .get(format!("{}/handlers", link.url))
                .timeout(HANDLERS_FETCH_TIMEOUT)
                .send()
                .await?
                .error_for_status()?
                .json::<Vec<RemoteHandler>>()
                .await
        }
        .await;
        let mut cached = link.handlers.lock();
        cached.refresh_at = Some(Instant::now() + HANDLERS_TTL);
        match fetched {
            Ok(list) => {
                let list = Arc::new(list);
                cached.last_good = Some(list.clone());
                Ok(list)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    has_last_good = last_good.is_some(),
                    "emulator.runner_handlers_unavailable"
                );
                last_good.ok_or_else(|| {
                    let why = if e.is_timeout() {
                        "it did not answer in time".to_owned()
                    } else if let Some(status) = e.status() {
                        format!("it answered HTTP {status}")
                    } else if e.is_decode() {
                        "its reply is not a handler list".to_owned()
                    } else {
                        "it cannot be reached".to_owned()
                    };
                    ApiError::new(
                        0,
                        format!(
                            "the business logic runner's handler list is unavailable ({why}); \
                             the request is refused rather than run without its handlers"
                        ),
                    )
                    .with_status(StatusCode::BAD_GATEWAY)
                })
            }
        }
    }

    async fn find(
        &self,
        caller: &Requester,
        event: EventId,
        target: &str,
    ) -> Result<Option<(Route<'_>, bool)>, ApiError> {
        if caller.key_kind == KeyKind::CloudCode {
            return Ok(None);
        }
        self.find_handler(event, target).await
    }

    /// The handler of `event` on `target` wherever runners are linked,
    /// whoever the caller is.
    async fn find_handler(
        &self,
        event: EventId,
        target: &str,
    ) -> Result<Option<(Route<'_>, bool)>, ApiError> {
        if let Some(redis) = &self.redis {
            return Ok(redis
                .route(event, target)
                .await?
                .map(|(destination, is_async)| (Route::Redis(redis, destination), is_async)));
        }
        let Some(link) = self.link.as_ref() else {
            return Ok(None);
        };
        let handlers = self.handlers(link).await?;
        Ok(handlers
            .iter()
            .find(|h| h.event_id == event && h.target == target)
            .map(|h| (Route::Http(link), h.is_async)))
    }

    /// The timers of the linked runners' models, with their schedules.
    pub(crate) async fn timers(&self) -> Vec<(String, Schedule)> {
        if let Some(redis) = &self.redis {
            return redis.timers().await;
        }
        let Some(link) = &self.link else {
            return Vec::new();
        };
        let fetched = async {
            link.client
                .get(format!("{}/model", link.url))
                .timeout(HANDLERS_FETCH_TIMEOUT)
                .send()
                .await?
                .error_for_status()?
                .json::<Value>()
                .await
        }
        .await;
        match fetched {
            Ok(model) => timers_of(&model),
            Err(e) => {
                tracing::debug!(error = %e, "emulator.runner_model_unavailable");
                Vec::new()
            }
        }
    }

    /// Fires timer `name` now: a timer task with no caller. The reply's
    /// error, if the handler failed.
    pub(crate) async fn fire_timer(&self, name: &str) -> Result<(), ApiError> {
        let Some((route, _)) = self
            .find_handler(crate::event::timer::EXECUTE, name)
            .await?
        else {
            return Err(ApiError::new(0, format!("no runner has a timer `{name}`"))
                .with_status(StatusCode::NOT_FOUND));
        };
        let ctx = RunnerContext {
            app_id: self.app_id.clone(),
            device_type: Some("BL".to_owned()),
            ..RunnerContext::default()
        };
        let ctx = serde_json::to_value(ctx).map_err(ApiError::internal)?;
        if let Some(reply) = self
            .invoke(route, crate::event::timer::EXECUTE, name, false, vec![ctx])
            .await?
        {
            raise(&reply)?;
        }
        Ok(())
    }

    /// Dispatches custom event `name` with `args` as `caller`: the handler's
    /// result, or `None` when dispatched asynchronously.
    pub(crate) async fn custom_event(
        &self,
        caller: &Requester,
        name: &str,
        args: Value,
        asynchronous: bool,
    ) -> Result<Option<Value>, ApiError> {
        let event = crate::event::custom::EXECUTE;
        let Some((route, _)) = self.find_handler(event, name).await? else {
            return Err(
                ApiError::new(0, format!("custom event `{name}` has no handler"))
                    .with_status(StatusCode::NOT_FOUND),
            );
        };
        let values = vec![self.context(caller, name), args];
        let Some(reply) = self
            .invoke(route, event, name, asynchronous, values)
            .await?
        else {
            return Ok(None);
        };
        raise(&reply)?;
        // [context, args, result]: the result as the handler gave it.
        Ok(Some(
            reply
                .arguments
                .and_then(|a| a.values.get(2).cloned())
                .unwrap_or(Value::Null),
        ))
    }

    /// Sends a recorded task again, its arguments as recorded and its
    /// context that of `caller`; the runner's reply.
    pub(crate) async fn replay(
        &self,
        caller: &Requester,
        recorded: &super::inspect::SentTask,
    ) -> Result<InvocationResult, ApiError> {
        let bytes = serde_json::to_vec(&recorded.body).map_err(ApiError::internal)?;
        let task = Task::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                0,
                format!("the recorded task cannot be read again: {}", e.message),
            )
            .with_status(StatusCode::BAD_REQUEST)
        })?;
        let event = task.event_id;
        let Some((route, _)) = self.find_handler(event, &task.target).await? else {
            return Err(ApiError::new(
                0,
                format!(
                    "no runner handles {} on `{}` any more",
                    recorded.event_name, task.target
                ),
            )
            .with_status(StatusCode::NOT_FOUND));
        };
        let mut values = task.arguments.values;
        let context = self.context(caller, &task.target);
        match values.first_mut() {
            Some(first) => *first = context,
            None => values.push(context),
        }
        self.invoke(route, event, &task.target, false, values)
            .await?
            .ok_or_else(|| ApiError::internal("a synchronous task got no reply"))
    }

    /// The custom events the linked runner handles (over HTTP; none known
    /// through Redis).
    pub(crate) async fn custom_events(&self) -> Vec<String> {
        let Some(link) = &self.link else {
            return Vec::new();
        };
        match self.handlers(link).await {
            Ok(list) => list
                .iter()
                .filter(|h| h.event_id == crate::event::custom::EXECUTE)
                .map(|h| h.target.clone())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The service `name` as the linked runners' models declare it, and
    /// where its tasks go; `None` when no model has it.
    pub(crate) async fn find_service(
        &self,
        name: &str,
    ) -> Result<Option<(ServiceDecl, Route<'_>)>, ApiError> {
        if let Some(redis) = &self.redis {
            return Ok(redis
                .route_service(name)
                .await?
                .map(|(decl, destination)| (decl, Route::Redis(redis, destination))));
        }
        let Some(link) = self.link.as_ref() else {
            return Ok(None);
        };
        let model = link
            .client
            .get(format!("{}/model", link.url))
            .timeout(HANDLERS_FETCH_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let model = match model {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        let Some(model) = model else {
            // Fail closed: without the model the call cannot be routed.
            return Err(ApiError::new(
                0,
                "the business logic runner's model is unavailable; the service cannot be called",
            )
            .with_status(StatusCode::BAD_GATEWAY));
        };
        Ok(services_of(&model)
            .into_iter()
            .find(|s| s.name == name)
            .map(|decl| (decl, Route::Http(link))))
    }

    /// Calls a method of the service `decl` as `caller`: the runner's
    /// reply, or `None` when sent asynchronously.
    pub(crate) async fn invoke_service(
        &self,
        route: Route<'_>,
        caller: &Requester,
        decl: &ServiceDecl,
        request: ServiceCall,
    ) -> Result<Option<InvocationResult>, ApiError> {
        let ServiceCall {
            method,
            args,
            asynchronous,
            path,
            query,
            path_params,
        } = request;
        let method = method.as_str();
        let user = caller.user.as_ref();
        let (timeout_ms, record_dir) = match &route {
            Route::Http(link) => (link.timeout_ms, link.record_dir.as_ref()),
            Route::Redis(redis, _) => (redis.timeout_ms, redis.record_dir.as_ref()),
        };
        let dto = json!({
            "userId": user.map(|u| u.user_id.clone()),
            "userToken": user.map(|u| u.token.clone()),
            "userRoles": caller.roles,
            "deviceType": caller.key_kind.device_type(),
            "httpHeaders": caller.headers,
            "httpPath": path,
            "httpQueryParams": query,
            "httpPathParams": path_params,
            "configurationItems": self.service_config.get(&decl.name).cloned().unwrap_or_default(),
        });
        let task = ServiceTask {
            json_class: SERVICE_TASK_CLASS.to_owned(),
            id: uuid::Uuid::new_v4().to_string(),
            application_id: Some(self.app_id.clone()),
            class_name: format!("services.{}", decl.name),
            method: method.to_owned(),
            arguments: Arguments::new(Encoding::Bytes, args),
            timeout: Some(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
            timestamp: Some(now_ms()),
            invocation_context_dto: match dto {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            init_app_data: Some(self.init_app_data.read().clone()),
            provider: decl.provider.clone(),
            service_id: None,
        };
        let mut body = serde_json::to_value(&task).map_err(ApiError::internal)?;
        body["properties"] = json!({});
        // The task as recorded and inspected: the caller's token and the
        // configuration values (maybe secrets) hidden.
        let mut shown = body.clone();
        if shown["invocationContextDto"]["userToken"].is_string() {
            shown["invocationContextDto"]["userToken"] = Value::from("[redacted]");
        }
        if let Some(items) = shown["invocationContextDto"]["configurationItems"].as_array_mut() {
            for item in items {
                item["value"] = Value::from("[redacted]");
            }
        }
        let target = format!("{}.{method}", decl.name);
        if let Some(dir) = record_dir {
            let path = dir.join(format!("{}-service-{}.json", now_ms(), task.id));
            let text = serde_json::to_vec_pretty(&shown).unwrap_or_default();
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text))
            {
                tracing::warn!(error = %e, path = %path.display(), "emulator.record_failed");
            }
        }
        self.log.task(SentTask {
            event_id: EventId(0),
            event_name: "invokeService".to_owned(),
            target: target.clone(),
            is_async: asynchronous,
            body: shown,
        });
        tracing::debug!(task_id = %task.id, service = %target, asynchronous, "emulator.service_task_sent");
        let reply = match route {
            Route::Http(link) => {
                let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
                send_http(link, bytes, "invokeService", asynchronous).await
            }
            Route::Redis(redis, destination) => {
                body["mode"] = Value::from(match destination {
                    Destination::Debug => "DEBUG",
                    Destination::Production => "PRODUCTION",
                });
                body["relativePath"] = Value::from("servercode/RUST/default");
                redis.send(body, &destination, asynchronous).await
            }
        };
        // The emulator's own wait ran out: a service's timeout (14005).
        reply.map_err(|e| {
            if e.code == 15000 {
                ApiError::new(
                    crate::dispatch::SERVICE_TIMED_OUT,
                    format!("Invocation of {target} timed out"),
                )
                .with_status(StatusCode::BAD_REQUEST)
            } else {
                e
            }
        })
    }

    fn context(&self, caller: &Requester, target: &str) -> Value {
        let user = caller.user.as_ref();
        let ctx = RunnerContext {
            app_id: self.app_id.clone(),
            user_id: user.map(|u| u.user_id.clone()),
            user_token: user.map(|u| UserToken::new(u.token.clone())),
            user_roles: caller.roles.clone(),
            device_type: Some(caller.key_kind.device_type().to_owned()),
            http_headers: caller.headers.clone(),
            event_context: (target != "*").then(|| target.to_owned()),
            ..RunnerContext::default()
        };
        serde_json::to_value(ctx).unwrap_or(Value::Null)
    }

    /// Runs the before-handler of `event` on `target`, if any.
    pub(super) async fn before(
        &self,
        caller: &Requester,
        event: EventId,
        target: &str,
        args: Vec<Value>,
    ) -> Result<RunnerBefore, ApiError> {
        let Some((route, is_async)) = self.find(caller, event, target).await? else {
            return Ok(RunnerBefore::Continue(args));
        };
        let mut values = vec![self.context(caller, target)];
        values.extend(args.iter().cloned());
        let Some(reply) = self.invoke(route, event, target, is_async, values).await? else {
            return Ok(RunnerBefore::Continue(args));
        };
        raise(&reply)?;
        let Some(mut returned) = reply.arguments.map(|a| a.values) else {
            return Ok(RunnerBefore::Continue(args));
        };
        if returned.is_empty() {
            return Ok(RunnerBefore::Continue(args));
        }
        let ctx = returned.remove(0);
        match ctx.get("prematureResult") {
            Some(v) if !v.is_null() => Ok(RunnerBefore::Premature(v.clone())),
            _ => {
                returned.resize(args.len(), Value::Null);
                Ok(RunnerBefore::Continue(returned))
            }
        }
    }

    /// Runs the after-handler of `event` on `target`, if any; the result the
    /// client gets.
    pub(super) async fn after(
        &self,
        caller: &Requester,
        event: EventId,
        target: &str,
        args: Vec<Value>,
        result: Value,
    ) -> Result<Value, ApiError> {
        let Some((route, is_async)) = self.find(caller, event, target).await? else {
            return Ok(result);
        };
        let mut values = vec![self.context(caller, target)];
        values.extend(args);
        values.push(
            serde_json::to_value(ExecutionResult::ok(result.clone()))
                .map_err(ApiError::internal)?,
        );
        let Some(reply) = self.invoke(route, event, target, is_async, values).await? else {
            return Ok(result);
        };
        raise(&reply)?;
        let last = reply.arguments.and_then(|a| a.values.last().cloned());
        match last.map(serde_json::from_value::<ExecutionResult>) {
            Some(Ok(r)) => {
                if let Some(e) = r.exception {
                    return Err(exception_error(
                        e.code,
                        e.exception_message,
                        e.http_status_code,
                    ));
                }
                Ok(r.result)
            }
            _ => Ok(result),
        }
    }

    /// Sends one task; `None` when it was sent without waiting (async).
    async fn invoke(
        &self,
        route: Route<'_>,
        event: EventId,
        target: &str,
        is_async: bool,
        values: Vec<Value>,
    ) -> Result<Option<InvocationResult>, ApiError> {
        let def = EventDef::by_id(event)
            .ok_or_else(|| ApiError::internal(format!("unknown event {event}")))?;
        let (timeout_ms, record_dir, encoding) = match &route {
            Route::Http(link) => (link.timeout_ms, link.record_dir.as_ref(), Encoding::Json),
            // The Backendless wire format: arguments as UTF-8 bytes.
            Route::Redis(redis, _) => {
                (redis.timeout_ms, redis.record_dir.as_ref(), Encoding::Bytes)
            }
        };
        let caller_dto = values.first().map(|ctx| {
            json!({"userId": ctx.get("userId"), "userToken": ctx.get("userToken"),
                   "userRoles": ctx.get("userRoles"), "deviceType": ctx.get("deviceType"),
                   "httpHeaders": ctx.get("httpHeaders")})
        });
        let task = Task {
            json_class: TASK_CLASS.to_owned(),
            id: uuid::Uuid::new_v4().to_string(),
            application_id: Some(self.app_id.clone()),
            event_id: event,
            target: target.to_owned(),
            is_async,
            timeout: Some(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
            timestamp: Some(now_ms()),
            arguments: Arguments::new(encoding, values),
            invocation_context_dto: caller_dto.filter(|_| matches!(route, Route::Redis(..))),
            init_app_data: Some(self.init_app_data.read().clone()),
            provider: Some(def.provider.as_str().to_owned()),
        };
        self.record(record_dir, def, &task);
        let link = match route {
            Route::Http(link) => link,
            Route::Redis(redis, destination) => {
                let mut body = serde_json::to_value(&task).map_err(ApiError::internal)?;
                body["mode"] = Value::from(match destination {
                    Destination::Debug => "DEBUG",
                    Destination::Production => "PRODUCTION",
                });
                body["relativePath"] = Value::from("servercode/RUST/default");
                tracing::debug!(task_id = %task.id, event = def.name, target, is_async, "emulator.task_queued");
                return redis.send(body, &destination, is_async).await;
            }
        };
        let body = serde_json::to_vec(&task).map_err(ApiError::internal)?;
        tracing::debug!(
            task_id = %task.id,
            event = def.name,
            target = %task.target,
            is_async,
            "emulator.task_sent"
        );
        send_http(link, body, def.name, is_async).await
    }

    fn record(&self, record_dir: Option<&PathBuf>, def: &EventDef, task: &Task) {
        let mut shown = task.clone();
        if def.provider == crate::event::Provider::User {
            let redacted = || Value::String("[redacted]".to_owned());
            match def.args.first() {
                // Login: the password is the second value after the context.
                Some(&"login") => {
                    if let Some(p) = shown.arguments.values.get_mut(2) {
                        *p = redacted();
                    }
                }
                // Register and update: a `password` property of the user.
                Some(&"user") => {
                    if let Some(Value::Object(u)) = shown.arguments.values.get_mut(1) {
                        if let Some(p) = u.get_mut("password") {
                            *p = redacted();
                        }
                    }
                }
                _ => {}
            }
        }
        let body = serde_json::to_value(&shown).unwrap_or(Value::Null);
        if let Some(dir) = record_dir {
            let path = dir.join(format!("{}-{}-{}.json", now_ms(), def.name, task.id));
            let text = serde_json::to_vec_pretty(&body).unwrap_or_default();
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text))
            {
                tracing::warn!(error = %e, path = %path.display(), "emulator.record_failed");
            }
        }
        self.log.task(SentTask {
            event_id: task.event_id,
            event_name: def.name.to_owned(),
            target: task.target.clone(),
            is_async: task.is_async,
            body,
        });
    }
}

/// Signs and sends one task body to the linked runner's `/invoke`; `None`
/// when sent without waiting (async). `what` names the task in messages.
async fn send_http(
    link: &Link,
    body: Vec<u8>,
    what: &'static str,
    is_async: bool,
) -> Result<Option<InvocationResult>, ApiError> {
    let timeout_ms = link.timeout_ms;
    let headers = link.secret.sign_headers(&body);
    let mut request = link
        .client
        .post(format!("{}/invoke", link.url))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if is_async {
        tokio::spawn(async move {
            if let Err(e) = request.send().await {
                tracing::warn!(error = %e, event = what, "emulator.async_task_failed");
            }
        });
        return Ok(None);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            ApiError::new(
                15000,
                format!(
                    "Custom business logic execution has been terminated because it did not complete in permitted time - {} seconds",
                    timeout_ms / 1000
                ),
            )
        } else {
            tracing::warn!(error = %e, event = what, "emulator.runner_unreachable");
            ApiError::new(0, format!("business logic runner unreachable for {what}"))
                .with_status(StatusCode::BAD_GATEWAY)
        }
    })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::new(
            0,
            format!("business logic runner reply for {what} was cut: {e}"),
        )
        .with_status(StatusCode::BAD_GATEWAY)
    })?;
    serde_json::from_slice::<InvocationResult>(&bytes)
        .map(Some)
        .map_err(|e| {
            tracing::warn!(error = %e, %status, event = what, "emulator.runner_bad_reply");
            ApiError::new(
                0,
                format!("business logic runner gave an invalid reply for {what} (HTTP {status})"),
            )
            .with_status(StatusCode::BAD_GATEWAY)
        })
}

/// An API service as a model declares it: what the emulator needs to turn
/// a request into the method's positional parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceDecl {
    pub(crate) name: String,
    /// The model's `provider` of the service, sent back in its tasks.
    pub(crate) provider: Option<String>,
    pub(crate) methods: Vec<MethodDecl>,
}

/// One method of a [`ServiceDecl`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodDecl {
    pub(crate) name: String,
    /// Parameter names, in order.
    pub(crate) params: Vec<String>,
    /// Their type names (`Number`, `String`, ...), in the same order.
    pub(crate) types: Vec<String>,
    /// `(VERB, /path/{param})` from the method's `route` tag.
    pub(crate) route: Option<(String, String)>,
}

/// The services of a model JSON (`services[]` with their methods from
/// `definitions.types`).
pub(crate) fn services_of(model: &Value) -> Vec<ServiceDecl> {
    model["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let name = s["name"].as_str()?.to_owned();
            let methods = model["definitions"]["types"][&name]["methods"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(method, def)| MethodDecl {
                    name: method.clone(),
                    params: def["params"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["name"].as_str().map(str::to_owned))
                        .collect(),
                    types: def["params"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["name"].is_string())
                        .map(|p| p["type"]["name"].as_str().unwrap_or("Object").to_owned())
                        .collect(),
                    route: def["tags"]["route"]
                        .as_str()
                        .map(|r| match r.trim().split_once(' ') {
                            Some((verb, path)) => {
                                (verb.to_ascii_uppercase(), path.trim().to_owned())
                            }
                            None => ("GET".to_owned(), r.trim().to_owned()),
                        }),
                })
                .collect();
            Some(ServiceDecl {
                name,
                provider: s["provider"].as_str().map(str::to_owned),
                methods,
            })
        })
        .collect()
}

/// One call of a service method: the method, its positional parameters,
/// and the HTTP side of the request for its `invocationContextDto`.
#[derive(Debug)]
pub(crate) struct ServiceCall {
    pub(crate) method: String,
    pub(crate) args: Vec<Value>,
    /// Sent without waiting for the method (`bl-execution-type: async`).
    pub(crate) asynchronous: bool,
    /// The path after `services/<Service>`.
    pub(crate) path: String,
    pub(crate) query: Map<String, Value>,
    pub(crate) path_params: Map<String, Value>,
}

/// The timers of a model JSON (`timers[].timerJson`), with their schedules;
/// an unreadable schedule is skipped and logged.
pub(crate) fn timers_of(model: &Value) -> Vec<(String, Schedule)> {
    model["timers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t["name"].as_str()?.to_owned();
            let json: Value = serde_json::from_str(t["timerJson"].as_str()?).ok()?;
            match Schedule::from_timer_json(&json) {
                Ok(schedule) => Some((name, schedule)),
                Err(e) => {
                    tracing::warn!(timer = %name, error = %e, "emulator.timer_schedule_unreadable");
                    None
                }
            }
        })
        .collect()
}

fn exception_error(code: i64, message: String, http_status: i32) -> ApiError {
    let status = u16::try_from(http_status)
        .ok()
        .filter(|s| *s > 0)
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(code, message).with_status(status)
}

fn raise(reply: &InvocationResult) -> Result<(), ApiError> {
    match &reply.exception {
        Some(e) => Err(exception_error(
            e.code,
            e.exception_message.clone(),
            e.http_status_code,
        )),
        None => Ok(()),
    }
}
