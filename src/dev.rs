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
use crate::management::ManagementApi;
use crate::registry::Registry;
use crate::runner::Runner;
use crate::transport::debug::DebugOptions;
use crate::transport::redis::RedisOptions;

/// How the emulator hands tasks to the dev runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DevLink {
    /// Signed `POST /invoke` (the default).
    #[default]
    Http,
    /// Through Redis (`[redis] url`): the runner registers with the emulator
    /// as the app's debug runner, as against a Backendless server.
    Redis,
}

/// A running emulator + runner pair.
pub(crate) struct DevStack {
    /// The emulator, for inspection.
    pub(crate) emulator: Emulator,
    /// `http://{emulator}`: the Backendless API root is `{emulator_url}/{appId}/{apiKey}`.
    pub(crate) emulator_url: String,
    /// `http://{runner}`.
    pub(crate) runner_url: String,
    /// The runner's address.
    pub(crate) runner_addr: SocketAddr,
    /// Cancel to stop both.
    pub(crate) shutdown: CancellationToken,
    /// The runner's dispatcher, to run tasks in-process.
    pub(crate) dispatcher: Dispatcher,
    /// The runner's own token (a child of `shutdown`).
    runner_shutdown: CancellationToken,
    /// Cancelled when the runner is stopped alone: the emulator then keeps
    /// serving until `shutdown`.
    runner_alone: CancellationToken,
    runner_task: Option<JoinHandle<std::io::Result<()>>>,
    emulator_task: JoinHandle<std::io::Result<()>>,
}

/// What can go wrong starting the stack.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DevError {
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

/// How long a debug runner may take to register with the emulator.
const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits until the runner's `/readyz` answers 200.
async fn wait_ready(runner_url: &str) -> Result<(), DevError> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + REGISTER_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        let ready = http
            .get(format!("{runner_url}/readyz"))
            .timeout(std::time::Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(DevError::Config(format!(
        "the runner did not register with the emulator through Redis within {REGISTER_TIMEOUT:?}: is Redis running at the [redis] url?"
    )))
}

impl DevStack {
    /// Starts the emulator on `emulator_config.listen` and the runner on
    /// `config.server.listen` (either may use port 0), linked with the
    /// runner's first webhook secret; the runner's SDK talks to the emulator.
    /// `record_dir` makes the emulator record every task it sends.
    pub(crate) async fn start(
        config: &Config,
        emulator_config: EmulatorConfig,
        registry: Registry,
        record_dir: Option<PathBuf>,
    ) -> Result<DevStack, DevError> {
        Self::start_with(config, emulator_config, registry, record_dir, DevLink::Http).await
    }

    /// [`DevStack::start`] with the emulator linked to the runner by `link`.
    pub(crate) async fn start_with(
        config: &Config,
        mut emulator_config: EmulatorConfig,
        registry: Registry,
        record_dir: Option<PathBuf>,
        link: DevLink,
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
        let linked = match link {
            DevLink::Http => RunnerLinkConfig::http(runner_url.clone(), Secret::new(secret)),
            DevLink::Redis => RunnerLinkConfig {
                compression: config.redis.compression,
                ..RunnerLinkConfig::redis(config.redis.url.expose_secret())
            },
        };
        emulator_config.runner = Some(RunnerLinkConfig {
            record_dir: record_dir.or_else(|| previous.as_ref().and_then(|r| r.record_dir.clone())),
            task_timeout_ms: previous
                .map_or(config.tasks.default_timeout_ms, |r| r.task_timeout_ms),
            ..linked
        });
        let cloudcode_key = emulator_config
            .keys
            .iter()
            .find(|k| k.kind == crate::emulator::KeyKind::CloudCode)
            .map(|k| k.key.clone());
        let app_id = emulator_config.app_id.clone();
        let emulator = Emulator::new(emulator_config)
            .map_err(|e| DevError::Config(format!("section `emulator`: {e:#}")))?;

        let mut config = config.clone();
        config.backendless.server_url = emulator_url.clone();
        config.backendless.custom_domain = String::new();
        let runner = match link {
            DevLink::Http => Runner::new(&config, registry),
            DevLink::Redis => {
                let key = cloudcode_key.ok_or_else(|| {
                    DevError::Config(
                        "the emulator has no CloudCode key: a debug runner registers with it"
                            .into(),
                    )
                })?;
                let options = DebugOptions {
                    api: ManagementApi::new(&emulator_url, &app_id, key.into()),
                    broker_url: config.redis.url.clone(),
                    broker_name: "the [redis] url".to_owned(),
                    model_name: "default".to_owned(),
                    transport: RedisOptions::from_config(&config.redis),
                };
                Runner::debug(&config, registry, options)
            }
        }
        .map_err(|e| DevError::Config(e.to_string()))?;
        runner.console_link(
            "Emulator console",
            &format!("{emulator_url}/__emulator/console/"),
        );

        // The runner stops first (its in-flight tasks and the superuser's
        // logout still need the emulator), then the emulator.
        let dispatcher = runner.dispatcher().clone();
        let shutdown = CancellationToken::new();
        let runner_shutdown = shutdown.child_token();
        let runner_alone = CancellationToken::new();
        let runner_done = CancellationToken::new();
        let done = runner_done.clone();
        let serving = runner.serve(runner_listener, runner_shutdown.clone());
        let runner_task = tokio::spawn(async move {
            let served = serving.await;
            done.cancel();
            served
        });
        let (alone, stop) = (runner_alone.clone(), shutdown.clone());
        let emulator_task = tokio::spawn(emulator.clone().serve(emulator_listener, async move {
            runner_done.cancelled().await;
            if alone.is_cancelled() {
                stop.cancelled().await;
            }
        }));
        if link == DevLink::Redis {
            // Events fire only once the runner has registered its model.
            wait_ready(&runner_url).await?;
        }
        Ok(DevStack {
            emulator,
            emulator_url,
            runner_url,
            runner_addr,
            shutdown,
            dispatcher,
            runner_shutdown,
            runner_alone,
            runner_task: Some(runner_task),
            emulator_task,
        })
    }

    /// The Backendless API root for an API key: `{emulator_url}/{appId}/{key}`.
    pub(crate) fn api_root(&self, api_key: &str) -> String {
        format!(
            "{}/{}/{}",
            self.emulator_url,
            self.emulator.config().app_id,
            api_key
        )
    }

    /// Stops the runner alone and waits for it; the emulator keeps serving
    /// until `shutdown`.
    pub(crate) async fn stop_runner(&mut self) -> std::io::Result<()> {
        self.runner_alone.cancel();
        self.runner_shutdown.cancel();
        match self.runner_task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Waits until both servers stop (after `shutdown` is cancelled).
    pub(crate) async fn wait(mut self) -> std::io::Result<()> {
        let runner = match self.runner_task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        };
        let emulator = self.emulator_task.await.map_err(std::io::Error::other)?;
        runner.and(emulator)
    }
}
