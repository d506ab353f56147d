//! Puts the pieces together: configuration + registry -> a serving runner.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use secrecy::ExposeSecret;

use crate::config::{Config, ConfigError, StoreKind};
use crate::dispatch::{Dispatcher, HandlerRuntime};
use crate::invocation_log::InvocationLog;
use crate::registry::Registry;
use crate::sdk::{Backendless, SdkConfig, SuperuserCredentials};
use crate::server::console::{Console, SessionHook};
use crate::server::{Server, ServerOptions};
use crate::store::redis::RedisStoreOptions;
use crate::store::{RedisStore, SeenIds};
use crate::transport::debug::{DebugOptions, DebugSession};
use crate::transport::redis::{RedisOptions, RedisTransport};

/// How tasks come from Redis, if they do. One exists per runner, so the
/// size of its variants does not matter.
#[expect(clippy::large_enum_variant)]
enum RedisMode {
    /// Backendless Pro: the production lists.
    Pro(RedisTransport),
    /// Debug mode: registered as an app's debug runner.
    Debug(DebugSession),
}

/// A runner ready to serve: the server over a registry, configured.
///
/// What `coderunner serve` runs; an app's own `main` can embed one:
///
/// ```no_run
/// use coderunner::config::Config;
/// use coderunner::{shutdown_signal, Registry, Runner};
///
/// # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::from_toml("[security]\nwebhook_secrets = [\"whsec_c2VjcmV0\"]")?;
/// let mut registry = Registry::new();
/// // registry.before(...)?;
/// let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
/// Runner::new(&config, registry)?
///     .serve(listener, shutdown_signal())
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct Runner {
    server: Server,
    /// The same dispatcher the server uses, for running tasks in-process.
    dispatcher: Dispatcher,
    /// `None` when `[backendless]` names no app: handlers then get no SDK.
    sdk: Option<Backendless>,
    /// Backendless's task queue, when `transport.redis` is on or in debug mode.
    redis: Option<RedisMode>,
    /// Time in-flight tasks get after shutdown starts.
    grace_period: Duration,
    /// The app id timers fire for, when the runner fires its own timers.
    own_timers: Option<String>,
    /// The fleet's shared state, with `[store] kind = "redis"`.
    store: Option<RedisStore>,
    /// The web console, when `[console] enabled`.
    console: Option<Arc<Console>>,
    /// The console's own address (`console.listen`); `None` = the runner's port.
    console_listen: Option<std::net::SocketAddr>,
}

/// The SDK configuration of `[backendless]`.
pub(crate) fn sdk_config(config: &Config) -> SdkConfig {
    let b = &config.backendless;
    let mut sdk = SdkConfig::new(b.server_url.clone(), b.app_id.clone(), b.api_key.clone());
    sdk.custom_domain = Some(b.custom_domain.clone()).filter(|d| !d.is_empty());
    sdk.request_timeout = Duration::from_millis(b.request_timeout_ms);
    sdk.session_timeout =
        Some(Duration::from_secs(b.session_timeout_secs)).filter(|d| !d.is_zero());
    sdk.logout_on_shutdown = b.superuser.logout_on_shutdown;
    if !b.superuser.login.is_empty() && !b.superuser.password.expose_secret().is_empty() {
        sdk.superuser = Some(SuperuserCredentials {
            login: b.superuser.login.clone(),
            password: b.superuser.password.clone(),
        });
    }
    sdk
}

impl Runner {
    /// Builds a runner from validated configuration and the app's handlers.
    /// Refuses to build without a webhook secret unless unsigned mode is on.
    pub fn new(config: &Config, registry: Registry) -> Result<Runner, ConfigError> {
        Self::build(config, registry, None)
    }

    /// A runner in debug mode (`coderunner debug`): it registers as the
    /// debug runner of the app `debug` names and takes that app's tasks from
    /// Redis (in place of the production lists of `transport.redis`).
    pub(crate) fn debug(
        config: &Config,
        registry: Registry,
        debug: DebugOptions,
    ) -> Result<Runner, ConfigError> {
        Self::build(config, registry, Some(debug))
    }

    fn build(
        config: &Config,
        registry: Registry,
        debug: Option<DebugOptions>,
    ) -> Result<Runner, ConfigError> {
        // Without the HTTP transport no signed task arrives: no secret is needed.
        let verifier = if config.transport.http {
            config.verifier()?
        } else {
            None
        };
        if verifier.is_none() && config.transport.http {
            tracing::warn!(
                "UNSIGNED MODE: tasks are accepted without a webhook signature; never use this in production"
            );
        }
        let handlers = HandlerRuntime::new(config.tasks.handler_threads)
            .map_err(|e| ConfigError::new(format!("key `tasks.handler_threads`: {e}")))?;
        let mut dispatcher = Dispatcher::new(Arc::new(registry), config.task_limits())
            .with_handler_runtime(handlers);
        let invocations = config
            .console
            .enabled
            .then(|| Arc::new(InvocationLog::new(config.console.ring_size)));
        if let Some(log) = &invocations {
            dispatcher = dispatcher.with_invocation_log(Arc::clone(log));
        }
        if config.log.app_log {
            let sender = crate::app_log::AppLogSender::default();
            dispatcher = dispatcher.with_app_log(Arc::new(move |target, task_id, lines| {
                sender.send(target, task_id, lines);
            }));
        }
        let store = match config.store.kind {
            StoreKind::Memory => None,
            StoreKind::Redis => Some(
                RedisStore::new(
                    &config.redis.url,
                    RedisStoreOptions {
                        prefix: config.store.prefix.clone(),
                        lease_ttl: Duration::from_millis(config.store.session_lease_ms),
                        timer_lock: Duration::from_millis(config.store.timer_lock_ms),
                    },
                )
                .map_err(|e| ConfigError::new(format!("key `redis.url`: {}", e.message)))?,
            ),
        };
        let session_store: Arc<dyn crate::sdk::SessionStore> = match &store {
            Some(store) => Arc::new(store.clone()),
            None => Arc::new(crate::sdk::MemorySessionStore::default()),
        };
        let sdk = if config.backendless.app_id.is_empty() {
            tracing::warn!(
                "no `backendless.app_id` configured: handlers get no SDK client, and a handler \
                 that calls ctx.caller(), ctx.superuser() or ctx.server_key() fails; set \
                 CODERUNNER__BACKENDLESS__APP_ID (and the API key) for handlers that call Backendless"
            );
            None
        } else {
            let sdk = Backendless::with_store(sdk_config(config), session_store)
                .map_err(|e| ConfigError::new(format!("section `backendless`: {e}")))?;
            let for_handlers = sdk.clone();
            dispatcher = dispatcher
                .with_context_hook(Arc::new(move |ctx| ctx.with_sdk(for_handlers.clone())));
            Some(sdk)
        };
        let redis = if let Some(debug) = debug {
            let session = DebugSession::new(debug, dispatcher.clone())
                .map_err(|e| ConfigError::new(e.to_string()))?;
            Some(RedisMode::Debug(session))
        } else if config.transport.redis {
            let mut options = RedisOptions::from_config(&config.redis);
            options.app_id = Some(config.backendless.app_id.clone()).filter(|a| !a.is_empty());
            let transport = RedisTransport::new(&config.redis.url, dispatcher.clone(), options)
                .map_err(|e| ConfigError::new(format!("key `redis.url`: {e}")))?;
            Some(RedisMode::Pro(transport))
        } else {
            None
        };
        let grace_period = Duration::from_secs(config.shutdown.grace_period_secs);
        let options = ServerOptions {
            body_limit_bytes: config.server.body_limit_bytes,
            header_read_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(config.server.body_read_timeout_ms),
            max_connections: config.server.max_connections,
            max_tasks_in_flight: config.server.max_tasks_in_flight,
            max_async_tasks: config.server.max_async_tasks,
            seen_ids_capacity: config.security.seen_ids_capacity,
            reply_cache_bytes: config.security.reply_cache_bytes,
            app_id: Some(config.backendless.app_id.clone()).filter(|a| !a.is_empty()),
            grace_period,
            drain_delay: Duration::from_millis(config.shutdown.drain_delay_ms),
            invoke: config.transport.http,
            readiness: redis
                .iter()
                .map(|mode| match mode {
                    RedisMode::Pro(transport) => transport.readiness(),
                    RedisMode::Debug(session) => session.readiness(),
                })
                .chain(store.iter().map(RedisStore::readiness))
                .collect(),
            seen_ids: store
                .clone()
                .map(|store| Arc::new(store) as Arc<dyn SeenIds>),
        };
        let console = invocations.map(|log| {
            let session: Option<SessionHook> = sdk.clone().map(|sdk| {
                Arc::new(move || serde_json::to_value(sdk.session_status()).unwrap_or_default())
                    as SessionHook
            });
            Arc::new(Console::new(
                dispatcher.clone(),
                log,
                &config.console.token,
                session,
            ))
        });
        let console_listen = config.console.listen.parse().ok();
        let mut server = Server::new(dispatcher.clone(), verifier, options);
        if let (Some(console), None) = (&console, console_listen) {
            server = server.with_console(Arc::clone(console));
        }
        Ok(Runner {
            server,
            dispatcher,
            sdk,
            redis,
            grace_period,
            own_timers: (config.timers.scheduler == crate::config::TimerScheduler::Runner)
                .then(|| config.backendless.app_id.clone()),
            store,
            console,
            console_listen,
        })
    }

    /// The runner's HTTP routes (`/invoke`, `/healthz`, `/readyz`,
    /// `/metrics`...), to mount in a server of your own or to drive
    /// in-process (`tower::ServiceExt::oneshot`). [`Runner::serve`] serves
    /// them and also runs the background work (the metrics upkeep, the Redis
    /// transport, timers, the console).
    pub fn router(&self) -> axum::Router {
        self.server.router()
    }

    /// Links the console's header to another console (the emulator's in
    /// `coderunner dev`); nothing when the console is off.
    #[cfg(feature = "emulator")]
    pub(crate) fn console_link(&self, label: &str, url: &str) {
        if let Some(console) = &self.console {
            console.link(label, url);
        }
    }

    /// The dispatcher, to run tasks in-process without HTTP (the test
    /// harness does).
    #[cfg(any(feature = "emulator", test))]
    pub(crate) fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Serves on `listener` until `shutdown` is cancelled, then drains and
    /// logs the superuser out (when configured).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        crate::telemetry::spawn_metrics_upkeep(shutdown.clone());
        if let Some(console) = &self.console {
            console.spawn_sampler(shutdown.clone());
            if let Some(addr) = self.console_listen {
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("key `console.listen`: cannot listen on {addr}: {e}"),
                    )
                })?;
                let console_address = listener.local_addr()?;
                tracing::info!(%console_address, "console listening");
                tokio::spawn(Server::serve_console(
                    Arc::clone(console),
                    listener,
                    shutdown.clone(),
                ));
            }
        }
        if let Some(store) = &self.store {
            tokio::spawn(store.clone().watch(shutdown.clone()));
        }
        if let Some(app_id) = self.own_timers.clone() {
            tokio::spawn(crate::transport::scheduler::run(
                self.dispatcher.clone(),
                app_id,
                crate::transport::scheduler::Clock::system(),
                self.store.as_ref().map(RedisStore::occurrence_claim),
                shutdown.clone(),
            ));
        }
        let grace = self.grace_period;
        let redis = self.redis.map(|mode| {
            let stop = shutdown.clone();
            tokio::spawn(async move {
                match mode {
                    RedisMode::Pro(transport) => {
                        transport.run(stop, grace).await;
                        Ok(())
                    }
                    RedisMode::Debug(session) => {
                        let ended = session.run(stop.clone(), grace).await;
                        // A session that cannot start or is ended by the
                        // server stops the whole runner.
                        stop.cancel();
                        ended
                    }
                }
            })
        });
        let served = self.server.serve(listener, shutdown).await;
        let mut transport_error = None;
        if let Some(redis) = redis {
            match redis.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => transport_error = Some(std::io::Error::other(e)),
                Err(e) => tracing::error!(error = %e, "the Redis transport failed"),
            }
        }
        if let Some(sdk) = &self.sdk {
            sdk.shutdown().await;
        }
        match transport_error {
            Some(e) => Err(e),
            None => served,
        }
    }
}

/// A token cancelled on SIGTERM or ctrl-c.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    // The SIGTERM handler is installed before this returns, so a signal sent
    // right after is not missed.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::RouteError;
    use crate::event::{EventDef, EventId};
    use crate::test_support::{GLOBAL, run_alone};
    use stats_alloc::Region;

    /// A million invocations recorded: the console's ring stays flat. Each
    /// is a refused task (no handler: the dispatcher records it like any
    /// other, without running a handler, so a million take seconds), with a
    /// target longer than a record keeps.
    #[test]
    fn the_console_ring_stays_flat_over_a_million_records() {
        if !run_alone("runner::tests::the_console_ring_stays_flat_over_a_million_records") {
            return;
        }
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_writer(std::io::sink)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let config = Config::from_toml(
            "[security]\nwebhook_secrets = [\"whsec_YmVuY2htYXJrLXNlY3JldC1mb3ItZGlzcGF0Y2g=\"]\n\
             [console]\nenabled = true\nring_size = 500\n",
        )
        .unwrap();
        let runner = Runner::new(&config, Registry::new()).unwrap();
        let dispatcher = runner.dispatcher();
        let event = EventDef::by_id(EventId(100)).unwrap();
        let target = "T".repeat(1_000);
        let started = std::time::Instant::now();
        let record = |n: usize| {
            for _ in 0..n {
                let error = RouteError::NoHandler {
                    event,
                    target: target.clone(),
                };
                dispatcher.refused("task", &error, started);
            }
        };
        // Growth by `realloc` is counted in these two already.
        let in_use = |change: stats_alloc::Stats| {
            change.bytes_allocated as i64 - change.bytes_deallocated as i64
        };
        // The histogram samples of the metrics are folded in as the upkeep
        // timer of a serving runner does (`telemetry::spawn_metrics_upkeep`).
        let upkeep = || crate::telemetry::metrics().run_upkeep();
        let region = Region::new(GLOBAL);
        record(1_000);
        upkeep();
        let filled = in_use(region.change());
        for _ in 0..999 {
            record(1_000);
            upkeep();
        }
        let after_a_million = in_use(region.change());
        println!(
            "ring of 500: {filled} bytes after 1,000 records, {after_a_million} after 1,000,000"
        );
        assert!(
            after_a_million - filled < 64 * 1024,
            "the ring grew by {} bytes between 1,000 and 1,000,000 records",
            after_a_million - filled
        );
    }
}
