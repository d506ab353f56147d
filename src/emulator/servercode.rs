//! The business-logic management routes a runner calls, as the Backendless
//! server serves them (spec §4.3, §5 of the transport spec), for runners
//! linked over Redis (`[emulator.runner] transport = "redis"`):
//!
//! - debug mode: `POST servercode/registerRunner/{lang}` (a `debugId` whose
//!   Redis key the runner keeps alive), `POST servercode/registermodel`,
//!   `GET servercode/unregisterRunner`;
//! - deploy: `POST servercode/publishcode/async/{lang}` (multipart: `model`,
//!   and `code`, a zip holding `model.json`), then
//!   `GET servercode/publishcode/status/{deployId}?offset=&pagesize=`.
//!
//! Only the CloudCode key may call them (a guess: the official CLI uses the
//! app's CodeRunner key).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::auth::Anonymous;
use super::config::KeyKind;
use super::dispatch::RemoteHandler;
use super::error::ApiError;
use super::redis_link::RedisLink;
use super::store::now_ms;

/// How many deployments' status logs are kept.
const DEPLOYS_KEPT: usize = 16;
/// The largest deployed zip read.
const MAX_ZIP_BYTES: usize = 16 << 20;

/// The status log of recent deployments, by deploy id.
#[derive(Debug, Default)]
pub(crate) struct Deploys(parking_lot::Mutex<VecDeque<(String, Vec<Value>)>>);

fn link<'a>(st: &'a Shared, caller: &Anonymous) -> Result<&'a RedisLink, ApiError> {
    if caller.0.key_kind != KeyKind::CloudCode {
        return Err(ApiError::new(
            2002,
            "business logic is managed with the CloudCode key only",
        )
        .with_status(StatusCode::UNAUTHORIZED));
    }
    st.dispatcher.redis_link().ok_or_else(|| {
        ApiError::new(
            0,
            "this emulator sends tasks over HTTP: set [emulator.runner] transport = \"redis\" to take runners that register or deploy",
        )
    })
}

/// A model's handlers (`model.json`'s `handlers`).
fn handlers_of(model: &Value) -> Result<Vec<RemoteHandler>, ApiError> {
    #[derive(Deserialize)]
    struct Model {
        #[serde(default)]
        handlers: Vec<RemoteHandler>,
    }
    serde_json::from_value::<Model>(model.clone())
        .map(|m| m.handlers)
        .map_err(|e| ApiError::new(0, format!("the model is not valid: {e}")))
}

/// `POST servercode/registerRunner/{lang}`: starts a debug session.
pub(crate) async fn register_runner(
    State(st): State<Shared>,
    caller: Anonymous,
    Path(_lang): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let link = link(&st, &caller)?;
    let debug_id = link.register_debug(&st.config.app_id).await?;
    tracing::info!("emulator.debug_runner_registered");
    Ok(Json(json!({ "debugId": debug_id })))
}

/// `POST servercode/registermodel`: the debug runner's model.
pub(crate) async fn register_model(
    State(st): State<Shared>,
    caller: Anonymous,
    Json(model): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let link = link(&st, &caller)?;
    let handlers = Arc::new(handlers_of(&model)?);
    let count = handlers.len();
    let mut models = link.models.lock();
    let Some(debug) = models.debug.as_mut() else {
        return Err(ApiError::new(
            0,
            "no debug runner is registered: call servercode/registerRunner first",
        ));
    };
    debug.handlers = Some(handlers);
    debug.timers = super::dispatch::timers_of(&model);
    debug.services = super::dispatch::services_of(&model);
    tracing::info!(handlers = count, "emulator.debug_model_registered");
    Ok(Json(Value::Null))
}

/// `GET servercode/unregisterRunner`: ends the debug session.
pub(crate) async fn unregister_runner(
    State(st): State<Shared>,
    caller: Anonymous,
) -> Result<Json<Value>, ApiError> {
    link(&st, &caller)?.unregister_debug().await?;
    tracing::info!("emulator.debug_runner_unregistered");
    Ok(Json(Value::Null))
}

fn model_from_zip(zip: &[u8]) -> Result<Value, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("the code is not a zip archive: {e}"))?;
    let mut file = archive
        .by_name("model.json")
        .map_err(|_| "the zip holds no model.json".to_owned())?;
    let mut text = String::new();
    file.by_ref()
        .take(MAX_ZIP_BYTES as u64)
        .read_to_string(&mut text)
        .map_err(|e| format!("model.json cannot be read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("model.json is not JSON: {e}"))
}

/// `POST servercode/publishcode/async/{lang}`: deploys a model; answers the
/// deploy id (a JSON string) and logs the outcome for the status route.
pub(crate) async fn publish_code(
    State(st): State<Shared>,
    caller: Anonymous,
    mut form: Multipart,
) -> Result<Json<Value>, ApiError> {
    let link = link(&st, &caller)?;
    let mut name = "default".to_owned();
    let mut code = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::new(0, format!("the deployment form is invalid: {e}")))?
    {
        match field.name() {
            Some("model") => {
                name = field
                    .text()
                    .await
                    .map_err(|e| ApiError::new(0, format!("field `model`: {e}")))?;
            }
            Some("code") => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::new(0, format!("field `code`: {e}")))?;
                if bytes.len() > MAX_ZIP_BYTES {
                    return Err(ApiError::new(11007, "The deployment is too large"));
                }
                code = Some(bytes);
            }
            _ => {}
        }
    }
    let code = code.ok_or_else(|| ApiError::new(0, "the deployment has no `code` file"))?;
    let deploy_id = uuid::Uuid::new_v4().to_string();
    let entry = |level: &str, message: String| json!({"level": level, "date": now_ms(), "message": message});
    let mut log = vec![entry("info", format!("Deploy of model `{name}` started"))];
    let model = model_from_zip(&code);
    match model
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|m| handlers_of(m).map_err(|e| e.message).map(|h| (h, m)))
    {
        Ok((handlers, model)) => {
            let count = handlers.len();
            let timers = super::dispatch::timers_of(model);
            let services = super::dispatch::services_of(model);
            {
                let mut models = link.models.lock();
                models.deployed = Some(Arc::new(handlers));
                models.deployed_timers = timers;
                models.deployed_services = services;
            }
            if let Err(e) = link.announce_deploy(&st.config.app_id).await {
                tracing::warn!(error = %e, "emulator.deploy_announce_failed");
            }
            log.push(entry("info", format!("{count} event handlers registered")));
            log.push(entry("info", "Deploy finished".to_owned()));
            tracing::info!(handlers = count, model = %name, "emulator.model_deployed");
        }
        Err(why) => {
            log.push(entry("error", why));
            log.push(entry("info", "Deploy finished".to_owned()));
        }
    }
    let mut deploys = st.deploys.0.lock();
    if deploys.len() == DEPLOYS_KEPT {
        deploys.pop_front();
    }
    deploys.push_back((deploy_id.clone(), log));
    Ok(Json(Value::String(deploy_id)))
}

/// Paging of the status route.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusPage {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_page")]
    pagesize: usize,
}

fn default_page() -> usize {
    100
}

/// `GET servercode/publishcode/status/{deployId}`: the deployment's log.
pub(crate) async fn publish_status(
    State(st): State<Shared>,
    caller: Anonymous,
    Path((_, _, deploy_id)): Path<(String, String, String)>,
    Query(page): Query<StatusPage>,
) -> Result<Json<Value>, ApiError> {
    link(&st, &caller)?;
    let deploys = st.deploys.0.lock();
    let (_, log) = deploys
        .iter()
        .find(|(id, _)| *id == deploy_id)
        .ok_or_else(|| {
            ApiError::new(0, format!("no deployment {deploy_id}"))
                .with_status(StatusCode::NOT_FOUND)
        })?;
    let items: Vec<Value> = log
        .iter()
        .skip(page.offset)
        .take(page.pagesize.min(100))
        .cloned()
        .collect();
    Ok(Json(Value::Array(items)))
}

/// `POST servercode/events/{name}`: dispatches a custom event with the body
/// as its arguments, as the caller; `bl-execution-type: async` answers at
/// once (`{}`) without waiting for the handler.
pub(crate) async fn dispatch_event(
    State(st): State<Shared>,
    caller: super::auth::Requester,
    Path((_, _, name)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let args: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(ApiError::parse)?
    };
    let asynchronous = headers
        .get("bl-execution-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("async"));
    let result = st
        .dispatcher
        .custom_event(&caller, &name, args, asynchronous)
        .await?;
    Ok(Json(result.unwrap_or_else(|| json!({}))))
}

/// `POST /__emulator/timers/{name}/run`: fires a timer now.
pub(crate) async fn run_timer(
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.dispatcher.fire_timer(&name).await?;
    Ok(Json(json!({ "timer": name, "fired": true })))
}
