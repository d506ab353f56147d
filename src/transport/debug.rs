//! Debug mode (spec §5 of the transport spec): the runner registers itself
//! as an app's debug runner, registers its model, keeps its session alive,
//! takes the app's tasks from the list named after the app id, and
//! unregisters when it stops, as the official CLI's debug mode does. The
//! server then routes the app's events to this runner ahead of deployed
//! business logic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use super::redis::{RedisOptions, RedisTransport};
use crate::dispatch::Dispatcher;
use crate::management::{ManagementApi, ManagementError};
use crate::model::Model;

/// How often the session key's life is renewed (the official runner's period).
pub(crate) const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(45);
/// The life given to the session key at each renewal.
pub(crate) const SESSION_TTL_SECS: u64 = 60;
/// How long reaching the message broker may take at start.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why debug mode stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DebugError {
    /// A management call failed.
    #[error(transparent)]
    Management(#[from] ManagementError),
    /// The message broker cannot be reached.
    #[error("cannot reach the message broker {broker}: {reason}")]
    Broker {
        /// `host:port`, without credentials.
        broker: String,
        /// Why.
        reason: String,
    },
    /// The server ended the debug session.
    #[error(
        "Debug Session ID doesn't exist on server: the debug session ended (it expires, or another runner registered)"
    )]
    SessionEnded,
}

/// A debug session's settings.
#[derive(Debug, Clone)]
pub(crate) struct DebugOptions {
    /// The management API of the app.
    pub api: ManagementApi,
    /// The message broker (Redis) URL; may hold a password.
    pub broker_url: secrecy::SecretString,
    /// `host:port` of the broker, for messages.
    pub broker_name: String,
    /// The deployment model's name (`default`).
    pub model_name: String,
    /// The transport's options; the queue is set to the app id.
    pub transport: RedisOptions,
}

/// A debug runner: registers, takes the app's tasks, unregisters.
pub(crate) struct DebugSession {
    options: DebugOptions,
    dispatcher: Dispatcher,
    transport: RedisTransport,
}

impl DebugSession {
    /// A session for `dispatcher`'s handlers.
    pub(crate) fn new(
        mut options: DebugOptions,
        dispatcher: Dispatcher,
    ) -> Result<Self, DebugError> {
        // Only the app's own list, as the official debug runner takes.
        options.transport.queue = options.api.app_id().to_owned();
        options.transport.low_priority_queue = None;
        options.transport.app_id = Some(options.api.app_id().to_owned());
        let transport = RedisTransport::new(
            &options.broker_url,
            dispatcher.clone(),
            options.transport.clone(),
        )
        .map_err(|e| DebugError::Broker {
            broker: options.broker_name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            options,
            dispatcher,
            transport,
        })
    }

    /// The flag `/readyz` reads: up while the app's list is being served.
    pub(crate) fn readiness(&self) -> super::Readiness {
        self.transport.readiness()
    }

    /// Registers, serves until `shutdown` is cancelled (or the server ends
    /// the session), then finishes the tasks in flight within `grace` and
    /// unregisters.
    pub(crate) async fn run(
        self,
        shutdown: CancellationToken,
        grace: Duration,
    ) -> Result<(), DebugError> {
        let options = self.options;
        let api = &options.api;
        let transport = self.transport;
        let client = redis::Client::open(options.broker_url.expose_secret()).map_err(|e| {
            DebugError::Broker {
                broker: options.broker_name.clone(),
                reason: e.category().to_owned(),
            }
        })?;
        let broker_error = |reason: String| DebugError::Broker {
            broker: options.broker_name.clone(),
            reason,
        };
        let mut conn =
            tokio::time::timeout(BROKER_TIMEOUT, client.get_multiplexed_async_connection())
                .await
                .map_err(|_| broker_error(format!("no answer within {BROKER_TIMEOUT:?}")))?
                .map_err(|e| broker_error(e.to_string()))?;

        let debug_id = api.register_runner().await?;
        tracing::info!(
            app_id = api.app_id(),
            "registered as the app's debug runner"
        );
        let model = Model::of(self.dispatcher.registry()).to_json();
        if let Err(e) = api.register_model(&model, &options.model_name).await {
            let _ = api.unregister_runner().await;
            return Err(e.into());
        }
        tracing::info!(
            handlers = model["handlers"].as_array().map_or(0, Vec::len),
            "model registered; waiting for the app's tasks"
        );

        let ended = Arc::new(AtomicBool::new(false));
        let keep_alive = {
            let (stop, ended) = (shutdown.clone(), Arc::clone(&ended));
            async move {
                let mut ticks = tokio::time::interval(KEEP_ALIVE_EVERY);
                ticks.tick().await;
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        () = stop.cancelled() => return,
                    }
                    let renewed: redis::RedisResult<i64> = redis::cmd("EXPIRE")
                        .arg(&debug_id)
                        .arg(SESSION_TTL_SECS)
                        .query_async(&mut conn)
                        .await;
                    match renewed {
                        Ok(0) => {
                            tracing::error!("Debug Session ID doesn't exist on server");
                            ended.store(true, Ordering::SeqCst);
                            stop.cancel();
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot renew the debug session yet"),
                    }
                }
            }
        };
        let keep_alive = tokio::spawn(keep_alive);
        transport.run(shutdown.clone(), grace).await;
        keep_alive.abort();
        if ended.load(Ordering::SeqCst) {
            return Err(DebugError::SessionEnded);
        }
        match api.unregister_runner().await {
            Ok(()) => tracing::info!("unregistered the debug runner"),
            Err(e) => tracing::warn!(error = %e, "cannot unregister the debug runner"),
        }
        Ok(())
    }
}
