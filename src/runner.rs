//! Puts the pieces together: configuration + registry -> a serving runner.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::dispatch::Dispatcher;
use crate::registry::Registry;
use crate::server::{Server, ServerOptions};

/// A runner ready to serve: the server over a registry, configured.
pub struct Runner {
    server: Server,
}

impl Runner {
    /// Builds a runner from validated configuration and the app's handlers.
    /// Refuses to build without a webhook secret unless unsigned mode is on.
    pub fn new(config: &Config, registry: Registry) -> Result<Runner, ConfigError> {
        let verifier = config.verifier()?;
        if verifier.is_none() {
            tracing::warn!("UNSIGNED MODE: tasks are accepted without a webhook signature; never use this in production");
        }
        let dispatcher = Dispatcher::new(Arc::new(registry), config.task_limits());
        let options = ServerOptions {
            body_limit_bytes: config.server.body_limit_bytes,
            seen_ids_capacity: config.security.seen_ids_capacity,
            grace_period: Duration::from_secs(config.shutdown.grace_period_secs),
            drain_delay: Duration::from_millis(config.shutdown.drain_delay_ms),
        };
        Ok(Runner {
            server: Server::new(dispatcher, verifier, options),
        })
    }

    /// The HTTP server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Serves on `listener` until `shutdown` is cancelled, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        self.server.serve(listener, shutdown).await
    }
}

/// A token cancelled on SIGTERM or ctrl-c.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler can be installed");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}
