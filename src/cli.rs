//! The `coderunner` command line, as a library entry point: an application
//! is its handlers plus a `main` that calls [`main`] with its `register`
//! function.
//!
//! ```no_run
//! fn register(registry: &mut coderunner::Registry) -> Result<(), coderunner::RegistryError> {
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     coderunner::cli::main(register)
//! }
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, Sources};
#[cfg(feature = "emulator")]
use crate::dev::DevStack;
#[cfg(feature = "emulator")]
use crate::emulator::{Emulator, EmulatorConfig};
use crate::runner::{Runner, shutdown_signal};
use crate::{Registry, RegistryError};
use clap::{Parser, Subcommand};

/// The function an application registers its handlers with.
pub type Register = fn(&mut Registry) -> Result<(), RegistryError>;

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
    /// Run the emulator, the runner and the handlers in one process.
    #[cfg(feature = "emulator")]
    Dev(DevArgs),
    /// Run the emulator alone with the dev app (for a runner deployed elsewhere).
    #[cfg(feature = "emulator")]
    Emulator,
    /// Print the registered handlers as JSON.
    Handlers,
    /// Print the registered business logic as the official CodeRunner's model.json.
    Model,
    /// Send a signed task to a running runner and print the reply.
    Invoke(Box<InvokeArgs>),
    /// Run as an app's debug runner: register with the API server, take the
    /// app's tasks from its message broker (Redis), unregister on exit.
    Debug(Box<DebugArgs>),
    /// Publish the registered business logic (model.json) to an app, so its
    /// server routes the registered events to runners.
    Deploy(Box<AppArgs>),
    /// Exit 0 if a URL answers 2xx (the container's health check).
    Probe {
        /// The URL to probe, e.g. http://127.0.0.1:8200/healthz.
        url: String,
    },
}

/// The app a management command acts on; each default comes from the
/// configuration's `[backendless]` section.
#[derive(Debug, clap::Args)]
struct AppArgs {
    /// The application id (default: `backendless.app_id`).
    #[arg(long)]
    app_id: Option<String>,
    /// The app's CodeRunner API key (default: `backendless.api_key`).
    #[arg(long, env = "CODERUNNER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The Backendless API server (default: `backendless.server_url`,
    /// https://api.backendless.com).
    #[arg(long)]
    api_server: Option<String>,
    /// The deployment model's name.
    #[arg(long, default_value = "default")]
    model: String,
}

#[derive(Debug, clap::Args)]
struct DebugArgs {
    #[command(flatten)]
    app: AppArgs,
    /// The message broker (Redis) host of debug mode.
    #[arg(long, default_value = "cl.backendless.com")]
    msg_broker_host: String,
    /// The message broker port.
    #[arg(long, default_value_t = 6379)]
    msg_broker_port: u16,
    /// The message broker's password, if it has one.
    #[arg(long, env = "CODERUNNER_MSG_BROKER_PASSWORD", hide_env_values = true)]
    msg_broker_password: Option<String>,
    /// Frame tasks and replies (the app's `compression.debug` setting).
    #[arg(long)]
    compression: bool,
    /// Where the runner's health, readiness and metrics are served.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

#[cfg(feature = "emulator")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DevTransport {
    /// The emulator signs tasks and POSTs them to the runner's /invoke.
    Http,
    /// The runner registers with the emulator as a debug runner and takes
    /// tasks from Redis (`[redis] url`), as against a Backendless server.
    Redis,
}

#[cfg(feature = "emulator")]
#[derive(Debug, clap::Args)]
struct DevArgs {
    /// How the emulator hands tasks to the runner.
    #[arg(long, value_enum, default_value = "http")]
    transport: DevTransport,
    /// Where the emulator listens (default from config/dev.toml: 127.0.0.1:8100).
    #[arg(long)]
    emulator_listen: Option<String>,
    /// Where the runner listens (default from config/dev.toml: 127.0.0.1:8200).
    #[arg(long)]
    runner_listen: Option<std::net::SocketAddr>,
    /// Keep the emulator's data in this SQLite file instead of in memory.
    #[arg(long)]
    database: Option<String>,
    /// Record every task the emulator sends into this folder (replay them with `coderunner invoke --file`).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct InvokeArgs {
    /// The event: `provider.eventName` (e.g. persistence.afterCreate) or its id.
    #[arg(long, required_unless_present = "file")]
    event: Option<String>,
    /// The target: table, channel, timer or custom event name.
    #[arg(long, default_value = "*")]
    target: String,
    /// An argument after the context, as JSON; repeat for each, in order.
    #[arg(long = "arg", value_name = "JSON")]
    args: Vec<String>,
    /// A task JSON file, such as one the emulator recorded.
    #[arg(long, conflicts_with_all = ["event", "args"])]
    file: Option<PathBuf>,
    /// Send the task as this user, logged in through the backend for a real token.
    #[arg(long = "as", value_name = "LOGIN")]
    as_user: Option<String>,
    /// The password of `--as` (not needed for the dev app's users).
    #[arg(long, env = "CODERUNNER_INVOKE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Send the task as an anonymous caller.
    #[arg(long, conflicts_with = "as_user")]
    anonymous: bool,
    /// The runner.
    #[arg(long, default_value = "http://127.0.0.1:8200")]
    runner: String,
    /// The `whsec_` secret to sign with (default: the first of
    /// `security.webhook_secrets`, which for `coderunner dev` is the dev
    /// app's public secret).
    #[arg(long, env = "CODERUNNER_INVOKE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The backend (or emulator) used to log `--as` in.
    #[arg(long, default_value = "http://127.0.0.1:8100")]
    backend: String,
    /// The application id.
    #[arg(long, default_value = "dev-app")]
    app_id: String,
    /// The API key used to log `--as` in.
    #[arg(long, default_value = "dev-rest-key")]
    api_key: String,
    /// Mark the task asynchronous (the runner answers 202).
    #[arg(long = "async")]
    is_async: bool,
    /// The task's timeout in ms.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: i64,
}

fn registry(register: Register) -> Result<Registry, String> {
    let mut registry = Registry::new();
    register(&mut registry).map_err(|e| format!("cannot register handlers: {e}"))?;
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

#[cfg(feature = "emulator")]
fn load_emulator(cli: &Cli, overlays: Vec<&'static str>) -> Result<EmulatorConfig, String> {
    let sources = Sources {
        builtin_overlays: overlays,
        file: cli.config.clone(),
        env: true,
    };
    let figment = Config::figment(&sources).map_err(|e| e.to_string())?;
    Config::section(&figment, "emulator").map_err(|e| e.to_string())
}

/// The password of a dev app user, from the emulator's dev seed.
#[cfg(feature = "emulator")]
fn dev_password(login: &str) -> Option<String> {
    EmulatorConfig::dev()
        .users
        .into_iter()
        .find(|u| u.email.eq_ignore_ascii_case(login))
        .map(|u| u.password.expose().to_owned())
}

#[cfg(feature = "emulator")]
async fn dev(cli: &Cli, args: &DevArgs, register: Register) -> Result<(), String> {
    let mut config = load(cli, vec![crate::config::DEV_TOML])?;
    let mut emulator = load_emulator(cli, vec![crate::config::DEV_TOML])?;
    crate::telemetry::init_logging(&config.log);
    if let Some(addr) = args.runner_listen {
        config.server.listen = addr;
    }
    if let Some(addr) = &args.emulator_listen {
        emulator.listen = addr.clone();
    }
    if let Some(db) = &args.database {
        emulator.database = db.clone();
    }
    let users: Vec<(String, String, Vec<String>)> = emulator
        .users
        .iter()
        .map(|u| {
            (
                u.email.clone(),
                u.password.expose().to_owned(),
                u.roles.clone(),
            )
        })
        .collect();
    let keys: Vec<String> = emulator
        .keys
        .iter()
        .map(|k| format!("{} ({})", k.key, k.kind.as_str()))
        .collect();
    // The banner's example logs in the first configured user with a REST key.
    let rest_key = emulator
        .keys
        .iter()
        .find(|k| matches!(k.kind, crate::emulator::KeyKind::Rest))
        .map(|k| k.key.clone());
    let link = match args.transport {
        DevTransport::Http => crate::dev::DevLink::Http,
        DevTransport::Redis => crate::dev::DevLink::Redis,
    };
    let stack = DevStack::start_with(
        &config,
        emulator,
        registry(register)?,
        args.record.clone(),
        link,
    )
    .await
    .map_err(|e| e.to_string())?;

    let mut banner: Vec<String> = Vec::new();
    banner.push("coderunner dev is running. Stop it with ctrl-c.".to_owned());
    banner.push(String::new());
    banner.push(format!(
        "  emulator (Backendless API)  {}",
        stack.emulator_url
    ));
    banner.push(format!(
        "  API root                    {}/{{apiKey}}",
        stack.api_root("").trim_end_matches('/')
    ));
    banner.push(format!(
        "  runner                      {}",
        stack.runner_url
    ));
    if config.console.enabled {
        banner.push(format!(
            "  runner console              {}/console/",
            stack.runner_url
        ));
    }
    banner.push(format!(
        "  emulator console            {}/__emulator/console/",
        stack.emulator_url
    ));
    banner.push(format!(
        "  inspect requests            {}/__emulator/requests",
        stack.emulator_url
    ));
    banner.push(format!(
        "  inspect token               {} (header x-emulator-token, from other hosts)",
        stack.emulator.inspect_token()
    ));
    banner.push(String::new());
    banner.push(format!("  API keys   {}", keys.join(", ")));
    for (email, password, roles) in &users {
        let roles = if roles.is_empty() {
            String::new()
        } else {
            format!("  roles: {}", roles.join(", "))
        };
        banner.push(format!("  user       {email} / {password}{roles}"));
    }
    if let Some(dir) = &args.record {
        banner.push(format!("  recording tasks to {}", dir.display()));
    }
    if let (Some(key), Some((email, password, _))) = (&rest_key, users.first()) {
        let login = serde_json::json!({"login": email, "password": password});
        banner.push(String::new());
        banner.push(format!(
            "  try: curl -s -X POST {}/users/login -H 'Content-Type: application/json' \\",
            stack.api_root(key)
        ));
        banner.push(format!("         -d '{login}'"));
    }

    // A closed stdout (e.g. piped into `head`) must not stop the servers.
    let _ = std::io::Write::write_all(
        &mut std::io::stdout(),
        format!("{}\n", banner.join("\n")).as_bytes(),
    );
    let signal = shutdown_signal();
    let stop = stack.shutdown.clone();
    tokio::spawn(async move {
        signal.cancelled().await;
        stop.cancel();
    });
    stack.wait().await.map_err(|e| e.to_string())
}

#[cfg(feature = "emulator")]
async fn emulator(cli: &Cli) -> Result<(), String> {
    // The dev app is the base; a `--config` file or the environment adds
    // `[emulator.runner]` to fire events at a runner deployed elsewhere.
    let config = load(cli, vec![crate::config::DEV_TOML])?;
    crate::telemetry::init_logging(&config.log);
    let emulator_config = load_emulator(cli, vec![crate::config::DEV_TOML])?;
    let addr = emulator_config.listen.clone();
    let emulator =
        Emulator::new(emulator_config).map_err(|e| format!("section `emulator`: {e:#}"))?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, "emulator listening");
    let signal = shutdown_signal();
    emulator
        .serve(listener, async move { signal.cancelled().await })
        .await
        .map_err(|e| e.to_string())
}

async fn serve(cli: &Cli, register: Register) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let config = load(cli, Vec::new())?;
    if config.console.enabled && config.console.token.expose_secret().is_empty() {
        return Err(
            "invalid configuration: key `console.token` must be set when `console.enabled` is \
             true in `serve` (or CODERUNNER__CONSOLE__TOKEN_FILE)"
                .to_owned(),
        );
    }
    crate::telemetry::init_logging(&config.log);
    let runner = Runner::new(&config, registry(register)?).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, "runner listening");
    runner
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn invoke(cli: &Cli, args: &InvokeArgs) -> Result<(), String> {
    use crate::invoke as task;
    use secrecy::ExposeSecret;

    let config = load(cli, vec![crate::config::DEV_TOML])?;
    let secret = match &args.secret {
        Some(secret) => secret.clone(),
        None => config
            .security
            .webhook_secrets
            .first()
            .ok_or("no webhook secret: give --secret or configure security.webhook_secrets")?
            .expose_secret()
            .to_owned(),
    };
    let secret = crate::signature::WebhookSecret::parse(&secret)
        .map_err(|e| format!("--secret or security.webhook_secrets: {e}"))?;
    let mut task: serde_json::Value = match &args.file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a JSON task: {e}", path.display()))?
        }
        None => {
            let event = task::find_event(args.event.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            let values = args
                .args
                .iter()
                .map(|a| serde_json::from_str(a).map_err(|e| format!("--arg {a}: not JSON: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            task::build_task(
                &args.app_id,
                event,
                &args.target,
                values,
                args.is_async,
                args.timeout_ms,
            )
        }
    };
    let http = reqwest::Client::new();
    if let Some(login) = &args.as_user {
        let password = args.password.clone();
        #[cfg(feature = "emulator")]
        let password = password.or_else(|| dev_password(login));
        let password =
            password.ok_or_else(|| format!("give the password of {login} with --password"))?;
        let root = format!(
            "{}/{}/{}",
            args.backend.trim_end_matches('/'),
            args.app_id,
            args.api_key
        );
        let caller = task::login(&http, &root, login, &password)
            .await
            .map_err(|e| e.to_string())?;
        task::set_caller(&mut task, Some(&caller)).map_err(|e| e.to_string())?;
    } else if args.anonymous {
        task::set_caller(&mut task, None).map_err(|e| e.to_string())?;
    }
    let (status, reply) = task::send(&http, &args.runner, &secret, &task)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&reply).expect("JSON prints")
    );
    if !(200..300).contains(&status) || !reply["exception"].is_null() {
        return Err(format!("the runner answered HTTP {status} with an error"));
    }
    Ok(())
}

/// The management API of the app `args` names, with `[backendless]` defaults.
fn management(config: &Config, args: &AppArgs) -> Result<crate::management::ManagementApi, String> {
    use secrecy::ExposeSecret;
    let app_id = args
        .app_id
        .clone()
        .unwrap_or_else(|| config.backendless.app_id.clone());
    if app_id.is_empty() {
        return Err("no application id: give --app-id or set backendless.app_id".to_owned());
    }
    let api_key = match &args.api_key {
        Some(key) => secrecy::SecretString::from(key.clone()),
        None => config.backendless.api_key.clone(),
    };
    if api_key.expose_secret().is_empty() {
        return Err(
            "no API key: give --api-key (or CODERUNNER_API_KEY) or set backendless.api_key"
                .to_owned(),
        );
    }
    let server = args
        .api_server
        .clone()
        .unwrap_or_else(|| config.backendless.server_url.clone());
    Ok(crate::management::ManagementApi::new(
        &server, &app_id, api_key,
    ))
}

async fn debug(cli: &Cli, args: &DebugArgs, register: Register) -> Result<(), String> {
    let mut config = load(cli, Vec::new())?;
    crate::telemetry::init_logging(&config.log);
    // Tasks come only from the app's debug list; /invoke is off.
    config.transport.http = false;
    config.transport.redis = false;
    config.server.listen = args.listen;
    let api = management(&config, &args.app)?;
    let broker_name = format!("{}:{}", args.msg_broker_host, args.msg_broker_port);
    let credentials = args
        .msg_broker_password
        .as_deref()
        .map(|p| {
            format!(
                ":{}@",
                percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .unwrap_or_default();
    let broker_url = secrecy::SecretString::from(format!(
        "redis://{credentials}{}:{}",
        args.msg_broker_host, args.msg_broker_port
    ));
    let mut transport = crate::transport::redis::RedisOptions::from_config(&config.redis);
    transport.compression = args.compression;
    let options = crate::transport::debug::DebugOptions {
        api,
        broker_url,
        broker_name,
        model_name: args.app.model.clone(),
        transport,
    };
    let runner = Runner::debug(&config, registry(register)?, options).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, "debug runner health and metrics");
    runner
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// How often `deploy` asks for the deployment's status.
const DEPLOY_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// How long `deploy` waits for the deployment to finish.
const DEPLOY_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

async fn deploy(cli: &Cli, args: &AppArgs, register: Register) -> Result<(), String> {
    let config = load(cli, Vec::new())?;
    let api = management(&config, args)?;
    let model = crate::model::Model::of(&registry(register)?).to_json();
    let log = api
        .deploy(&model, &args.model, DEPLOY_POLL, DEPLOY_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    for line in log {
        println!("{}", line.message);
    }
    Ok(())
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

/// Runs the `coderunner` command line (`serve`, `dev`, `emulator`,
/// `handlers`, `invoke`, `probe`) with the handlers that `register` adds, on
/// a multi-threaded tokio runtime; returns the process exit code.
pub fn main(register: Register) -> ExitCode {
    main_from(register, std::env::args_os())
}

/// [`main`] with the given command line (the program name first), as a test
/// or an embedding application runs it.
///
/// It returns once the command is done, without waiting for threads a
/// handler still blocks (they end with the process): after SIGTERM, within
/// `shutdown.grace_period_secs` + `shutdown.drain_delay_ms` + the superuser
/// logout's bound (10 s) + [`EXIT_MARGIN`].
pub fn main_from<I, T>(register: Register, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(workers) = server_workers(cpus, std::env::var_os("TOKIO_WORKER_THREADS").is_some())
    {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("coderunner: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cli, register));
    // Blocking work still running (a database call, a stuck thread) gets
    // this long, then is left to end with the process.
    runtime.shutdown_timeout(EXIT_MARGIN);
    code
}

/// The server runtime's worker threads on `cpus` CPUs: one per CPU and at
/// least two, so that handlers are polled on the server's threads while one
/// of them stays free (`handler_runtime`). With one worker every handler
/// would go to the handler runtime: two thread hand-overs per task, which
/// on one CPU cost a quarter of the CPU per task (docs/benchmarks.md).
/// `None` when `TOKIO_WORKER_THREADS` is set: tokio then takes the count
/// from it.
fn server_workers(cpus: usize, set_in_env: bool) -> Option<usize> {
    (!set_in_env).then_some(cpus.max(2))
}

/// How long, once a command is done, blocking work still running is waited
/// for before the process exits anyway.
pub const EXIT_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

async fn run(cli: Cli, register: Register) -> ExitCode {
    let result = match &cli.command {
        Command::Serve => serve(&cli, register).await,
        #[cfg(feature = "emulator")]
        Command::Dev(args) => dev(&cli, args, register).await,
        #[cfg(feature = "emulator")]
        Command::Emulator => emulator(&cli).await,
        Command::Handlers => registry(register).map(|r| {
            println!(
                "{}",
                serde_json::to_string_pretty(&r.handlers()).expect("handlers serialize")
            );
        }),
        Command::Model => registry(register).map(|r| {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::model::Model::of(&r))
                    .expect("model serializes")
            );
        }),
        Command::Invoke(args) => invoke(&cli, args).await,
        Command::Debug(args) => debug(&cli, args, register).await,
        Command::Deploy(args) => deploy(&cli, args, register).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_runs_two_workers_at_least_and_one_per_cpu() {
        assert_eq!(server_workers(1, false), Some(2), "one CPU");
        assert_eq!(server_workers(2, false), Some(2));
        assert_eq!(server_workers(8, false), Some(8));
        assert_eq!(
            server_workers(1, true),
            None,
            "TOKIO_WORKER_THREADS decides"
        );
    }
}
