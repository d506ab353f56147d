//! The Backendless server-code management API that runners call (spec §4.3
//! and §5 of the transport spec): register and unregister a debug runner,
//! register its model, and deploy a model (upload, then follow the status
//! until it finishes or fails).
//!
//! Every call is bounded in time. The API key is part of every URL, so no
//! URL is ever put in an error or a log line.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

/// How long one management call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// What went wrong talking to the management API.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManagementError {
    /// The API server did not answer.
    #[error("cannot reach the API server {server} to {what}: {reason}")]
    Unreachable {
        /// The server (without app id or key).
        server: String,
        /// What was being done.
        what: &'static str,
        /// Why, without the URL.
        reason: String,
    },
    /// The API server refused the call.
    #[error("the API server refused to {what}: {message} (HTTP {status}{code}){hint}")]
    Refused {
        /// What was being done.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// `, code N` when the body had a Backendless error code.
        code: String,
        /// The server's message.
        message: String,
        /// A hint for the usual cause.
        hint: &'static str,
    },
    /// The reply is not what the API returns.
    #[error("the API server's reply to {what} is not valid: {reason}")]
    Invalid {
        /// What was being done.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The deployment failed.
    #[error("the deployment failed: {0}")]
    DeployFailed(String),
    /// The deployment did not finish in time.
    #[error("the deployment did not finish within {0:?}")]
    DeployTimeout(Duration),
}

/// One line of a deployment's status log.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(crate) struct DeployMessage {
    /// `info`, `warn`, `error`, ...
    #[serde(default)]
    pub level: String,
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// A client of one app's management API.
#[derive(Clone)]
pub(crate) struct ManagementApi {
    server: String,
    app_id: String,
    api_key: SecretString,
    http: reqwest::Client,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("server", &self.server)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl ManagementApi {
    /// A client for `app_id` on the API server `server` (e.g.
    /// `https://api.backendless.com`), authenticated by the app's key.
    pub(crate) fn new(server: &str, app_id: &str, api_key: SecretString) -> Self {
        Self {
            server: server.trim_end_matches('/').to_owned(),
            app_id: app_id.to_owned(),
            api_key,
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                // A redirect would re-send the key elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// The app id.
    pub(crate) fn app_id(&self) -> &str {
        &self.app_id
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}/servercode/{path}",
            self.server,
            self.app_id,
            self.api_key.expose_secret()
        )
    }

    async fn call(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ManagementError> {
        let unreachable = |e: reqwest::Error| ManagementError::Unreachable {
            server: self.server.clone(),
            what,
            reason: e.without_url().to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = body["code"].as_i64();
            let message = body["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            let hint = match (status.as_u16(), code) {
                (401 | 403, _) | (_, Some(2002 | 3000 | 8002)) => {
                    "; check the app id and the API key (the app's CodeRunner key)"
                }
                (404, _) => "; check the app id and the API server",
                _ => "",
            };
            return Err(ManagementError::Refused {
                what,
                status: status.as_u16(),
                code: code.map(|c| format!(", code {c}")).unwrap_or_default(),
                message,
                hint,
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ManagementError::Invalid {
            what,
            reason: e.to_string(),
        })
    }

    /// `POST registerRunner/JS`: starts a debug session; returns its
    /// `debugId` (a Redis key the runner keeps alive).
    pub(crate) async fn register_runner(&self) -> Result<String, ManagementError> {
        const WHAT: &str = "register the debug runner";
        let reply = self
            .call(
                WHAT,
                self.http
                    .post(self.url("registerRunner/JS"))
                    .header("content-length", "0"),
            )
            .await?;
        text(WHAT, &reply["debugId"], "it has no `debugId`")
    }

    /// `POST registermodel`: the debug runner's model.
    pub(crate) async fn register_model(
        &self,
        model: &Value,
        model_name: &str,
    ) -> Result<(), ManagementError> {
        let mut body = model.clone();
        if let Value::Object(map) = &mut body {
            map.insert("applicationId".to_owned(), Value::from(self.app_id.clone()));
            map.insert("deploymentModelName".to_owned(), Value::from(model_name));
        }
        self.call(
            "register the model",
            self.http.post(self.url("registermodel")).json(&body),
        )
        .await
        .map(drop)
    }

    /// `GET unregisterRunner`: ends the debug session.
    pub(crate) async fn unregister_runner(&self) -> Result<(), ManagementError> {
        self.call(
            "unregister the debug runner",
            self.http.get(self.url("unregisterRunner")),
        )
        .await
        .map(drop)
    }

    /// Uploads `model` as deployment `model_name` (a zip holding
    /// `model.json`: handlers are compiled into the runner, so there is no
    /// code to ship); returns the deploy id.
    pub(crate) async fn publish(
        &self,
        model: &Value,
        model_name: &str,
    ) -> Result<String, ManagementError> {
        const WHAT: &str = "deploy the model";
        let zip =
            model_zip(model).map_err(|reason| ManagementError::Invalid { what: WHAT, reason })?;
        let code = reqwest::multipart::Part::bytes(zip)
            .file_name("code")
            .mime_str("application/zip")
            .map_err(|e| ManagementError::Invalid {
                what: WHAT,
                reason: e.to_string(),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("model", model_name.to_owned())
            .part("code", code);
        let reply = self
            .call(
                WHAT,
                self.http
                    .post(self.url("publishcode/async/JS"))
                    .multipart(form),
            )
            .await?;
        text(WHAT, &reply, "the deploy id is not a string")
    }

    /// The status log of a deployment from `offset` on.
    pub(crate) async fn deploy_status(
        &self,
        deploy_id: &str,
        offset: usize,
    ) -> Result<Vec<DeployMessage>, ManagementError> {
        const WHAT: &str = "report the deployment's status";
        let url = self.url(&format!("publishcode/status/{deploy_id}"));
        let reply = self
            .call(
                WHAT,
                self.http.get(url).query(&[
                    ("offset", offset.to_string()),
                    ("pagesize", "100".to_owned()),
                ]),
            )
            .await?;
        serde_json::from_value(reply).map_err(|e| ManagementError::Invalid {
            what: WHAT,
            reason: e.to_string(),
        })
    }

    /// Deploys `model` and follows its status every `poll` until a message
    /// says `Deploy finished` (an `error` line fails it) or `limit` passes;
    /// returns the status log.
    pub(crate) async fn deploy(
        &self,
        model: &Value,
        model_name: &str,
        poll: Duration,
        limit: Duration,
    ) -> Result<Vec<DeployMessage>, ManagementError> {
        if model["handlers"].as_array().is_none_or(Vec::is_empty)
            && model["timers"].as_array().is_none_or(Vec::is_empty)
            && model["services"].as_array().is_none_or(Vec::is_empty)
        {
            return Err(ManagementError::DeployFailed(
                "Nothing to publish: no handler, timer or service is registered".to_owned(),
            ));
        }
        let deploy_id = self.publish(model, model_name).await?;
        let deadline = tokio::time::Instant::now() + limit;
        let mut log: Vec<DeployMessage> = Vec::new();
        loop {
            let more = self.deploy_status(&deploy_id, log.len()).await?;
            let finished = more.iter().any(|m| m.message.contains("Deploy finished"));
            log.extend(more);
            if let Some(error) = log.iter().find(|m| m.level.eq_ignore_ascii_case("error")) {
                return Err(ManagementError::DeployFailed(error.message.clone()));
            }
            if finished {
                return Ok(log);
            }
            if tokio::time::Instant::now() + poll > deadline {
                return Err(ManagementError::DeployTimeout(limit));
            }
            tokio::time::sleep(poll).await;
        }
    }
}

/// The string a reply must hold, or why the reply is invalid.
fn text(what: &'static str, value: &Value, missing: &str) -> Result<String, ManagementError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ManagementError::Invalid {
            what,
            reason: missing.to_owned(),
        })
}

/// A zip archive holding `model.json`.
fn model_zip(model: &Value) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("model.json", options)
        .map_err(|e| e.to_string())?;
    let json = serde_json::to_vec_pretty(model).map_err(|e| e.to_string())?;
    zip.write_all(&json).map_err(|e| e.to_string())?;
    zip.finish()
        .map(std::io::Cursor::into_inner)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_zip_holds_model_json() {
        let model = serde_json::json!({"handlers": [{"eventId": 100, "target": "Post"}]});
        let bytes = model_zip(&model).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let file = archive.by_name("model.json").unwrap();
        let back: Value = serde_json::from_reader(file).unwrap();
        assert_eq!(back, model);
    }

    #[test]
    fn debug_output_has_no_key() {
        let api = ManagementApi::new(
            "http://127.0.0.1:1",
            "APP",
            SecretString::from("SECRET-KEY"),
        );
        assert!(!format!("{api:?}").contains("SECRET-KEY"));
    }
}
