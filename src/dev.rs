//! The whole loop on one machine: the emulator, the runner and the app's
//! handlers in one process (`coderunner dev`), linked over loopback HTTP
//! exactly as a deployed runner and a real backend would be.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::emulator::{Emulator, EmulatorConfig, RunnerLinkConfig, Secret};
use crate::registry::Registry;
use crate::runner::Runner;

/// A running emulator + runner pair.
pub struct DevStack {
    /// The emulator, for inspection.
    pub emulator: Emulator,
    /// `http://{emulator}`: the Backendless API root is `{emulator_url}/{appId}/{apiKey}`.
    pub emulator_url: String,
    /// `http://{runner}`.
    pub runner_url: String,
    /// Cancel to stop both.
    pub shutdown: CancellationToken,
    /// The runner's dispatcher, to run tasks in-process.
    pub dispatcher: Dispatcher,
    runner_task: JoinHandle<std::io::Result<()>>,
    emulator_task: JoinHandle<std::io::Result<()>>,
}

/// What can go wrong starting the stack.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Invalid configuration.
    #[error("{0}")]
    Config(String),
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), DevError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DevError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| DevError::Bind {
        addr: addr.to_owned(),
        source,
    })?;
    Ok((listener, local))
}

impl DevStack {
    /// Starts the emulator on `emulator_config.listen` and the runner on
    /// `config.server.listen` (either may use port 0), linked with the
    /// runner's first webhook secret; the runner's SDK talks to the emulator.
    /// `record_dir` makes the emulator record every task it sends.
    pub async fn start(
        config: &Config,
        mut emulator_config: EmulatorConfig,
        registry: Registry,
        record_dir: Option<PathBuf>,
    ) -> Result<DevStack, DevError> {
        let secret = config
            .security
            .webhook_secrets
            .first()
            .ok_or_else(|| {
                DevError::Config(
                    "key `security.webhook_secrets` is empty: the emulator signs tasks with it"
                        .into(),
                )
            })?
            .expose_secret()
            .to_owned();
        let (runner_listener, runner_addr) = bind(&config.server.listen.to_string()).await?;
        let (emulator_listener, emulator_addr) = bind(&emulator_config.listen).await?;
        let runner_url = format!("http://{runner_addr}");
        let emulator_url = format!("http://{emulator_addr}");

        let previous = emulator_config.runner.take();
        emulator_config.runner = Some(RunnerLinkConfig {
            record_dir: record_dir.or_else(|| previous.as_ref().and_then(|r| r.record_dir.clone())),
            task_timeout_ms: previous
                .map_or(config.tasks.default_timeout_ms, |r| r.task_timeout_ms),
            ..RunnerLinkConfig::http(runner_url.clone(), Secret::new(secret))
        });
        let emulator = Emulator::new(emulator_config)
            .map_err(|e| DevError::Config(format!("section `emulator`: {e:#}")))?;

        let mut config = config.clone();
        config.backendless.server_url = emulator_url.clone();
        config.backendless.custom_domain = String::new();
        let runner = Runner::new(&config, registry).map_err(|e| DevError::Config(e.to_string()))?;

        // The runner stops first (its in-flight tasks and the superuser's
        // logout still need the emulator), then the emulator.
        let dispatcher = runner.dispatcher().clone();
        let shutdown = CancellationToken::new();
        let runner_done = CancellationToken::new();
        let done = runner_done.clone();
        let serving = runner.serve(runner_listener, shutdown.clone());
        let runner_task = tokio::spawn(async move {
            let served = serving.await;
            done.cancel();
            served
        });
        let emulator_task = tokio::spawn(emulator.clone().serve(emulator_listener, async move {
            runner_done.cancelled().await
        }));
        Ok(DevStack {
            emulator,
            emulator_url,
            runner_url,
            shutdown,
            dispatcher,
            runner_task,
            emulator_task,
        })
    }

    /// The Backendless API root for an API key: `{emulator_url}/{appId}/{key}`.
    pub fn api_root(&self, api_key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.emulator_url,
            self.emulator.config().app_id,
            api_key
        )
    }

    /// Stops both servers and waits for them (in-flight tasks finish first).
    pub async fn stop(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        let runner = self.runner_task.await.map_err(std::io::Error::other)?;
        let emulator = self.emulator_task.await.map_err(std::io::Error::other)?;
        runner.and(emulator)
    }

    /// Waits until both servers stop (after `shutdown` is cancelled).
    pub async fn wait(self) -> std::io::Result<()> {
        let runner = self.runner_task.await.map_err(std::io::Error::other)?;
        let emulator = self.emulator_task.await.map_err(std::io::Error::other)?;
        runner.and(emulator)
    }
}
