//! The `coderunner` command: the framework plus the app in `handlers/`.

#[path = "../handlers/mod.rs"]
mod handlers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use coderunner::config::{Config, Sources};
use coderunner::runner::{shutdown_signal, Runner};
use coderunner::Registry;

/// Runs Backendless business logic written in Rust.
#[derive(Debug, Parser)]
#[command(name = "coderunner", version, about)]
struct Cli {
    /// A TOML file layered over the built-in defaults.
    #[arg(long, global = true, env = "CODERUNNER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve tasks from a backend (production).
    Serve,
    /// Print the registered handlers as JSON.
    Handlers,
    /// Exit 0 if a URL answers 2xx (the container's health check).
    Probe {
        /// The URL to probe, e.g. http://127.0.0.1:8200/healthz.
        url: String,
    },
}

fn registry() -> Result<Registry, String> {
    let mut registry = Registry::new();
    handlers::register(&mut registry).map_err(|e| format!("cannot register handlers: {e}"))?;
    Ok(registry)
}

fn load(cli: &Cli, overlays: Vec<&'static str>) -> Result<Config, String> {
    let sources = Sources {
        builtin_overlays: overlays,
        file: cli.config.clone(),
        env: true,
    };
    Config::load(&sources).map_err(|e| e.to_string())
}

async fn serve(cli: &Cli) -> Result<(), String> {
    let config = load(cli, Vec::new())?;
    coderunner::telemetry::init_logging(&config.log);
    let runner = Runner::new(&config, registry()?).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    tracing::info!(address = %config.server.listen, "runner listening");
    runner
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn probe(url: &str) -> Result<(), String> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", response.status()))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve => serve(&cli).await,
        Command::Handlers => registry().map(|r| {
            println!(
                "{}",
                serde_json::to_string_pretty(&r.handlers()).expect("handlers serialize")
            );
        }),
        Command::Probe { url } => probe(url).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("coderunner: {message}");
            ExitCode::FAILURE
        }
    }
}
