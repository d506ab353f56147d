//! SIGTERM to the `coderunner serve` command line while a handler blocks
//! its thread for a minute: the process exits within the grace period plus
//! the documented margin. The command line runs in a child process: this
//! test binary itself, running the ignored test below.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coderunner::event::persistence;
use coderunner::signature::unix_now;
use coderunner::{Before, Context, Registry, RegistryError};
use serde_json::Value;

use crate::probe::{self, deliver};
use crate::support::SECRET;

/// Names the child's configuration file; set only for the child.
const CHILD_CONFIG: &str = "CODERUNNER_HOSTILE_CHILD_CONFIG";
/// `shutdown.grace_period_secs` of the child.
const GRACE: Duration = Duration::from_secs(2);

fn register_blocking(registry: &mut Registry) -> Result<(), RegistryError> {
    registry.before(
        persistence::BEFORE_CREATE,
        "Block",
        |_ctx: Context, row: Value| async move {
            std::thread::sleep(Duration::from_secs(60));
            Ok(Before::Continue(row))
        },
    )?;
    Ok(())
}

#[test]
#[ignore = "the child process of sigterm_with_a_blocked_handler_exits_within_the_grace_period"]
fn blocked_runner_child() {
    let config = std::env::var(CHILD_CONFIG).expect("run by its parent test");
    let code = coderunner::cli::main_from(
        register_blocking,
        ["coderunner", "serve", "--config", &config],
    );
    assert_eq!(code, std::process::ExitCode::SUCCESS);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_blocked_handler_exits_within_the_grace_period() {
    let _serial = probe::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runner.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[security]\nwebhook_secrets = [\"{SECRET}\"]\n\
             [shutdown]\ngrace_period_secs = {}\n[log]\nformat = \"json\"\n",
            GRACE.as_secs()
        ),
    )
    .unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    for (key, _) in std::env::vars() {
        if key.starts_with("CODERUNNER") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args([
            "--ignored",
            "--exact",
            "sigterm::blocked_runner_child",
            "--nocapture",
        ])
        .env(CHILD_CONFIG, &config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if let Some(addr) = v["address"].as_str() {
                    let _ = tx.send(addr.to_owned());
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr: std::net::SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child logs its address")
        .parse()
        .unwrap();

    let secret = coderunner::signature::WebhookSecret::parse(SECRET).unwrap();
    let http = reqwest::Client::new();
    // A synchronous task blocks a handler thread and gets its timeout reply;
    // an asynchronous one blocks another, past the grace period.
    let body = probe::before_create("blocked", "Block", 500, false);
    let reply = deliver(&http, addr, &secret, "msg_blocked", unix_now(), &body).await;
    assert_eq!(
        reply.body["exception"]["exceptionMessage"],
        coderunner::event::wire::TIMEOUT_MESSAGE
    );
    let body = probe::before_create("blocked-async", "Block", 20_000, true);
    let reply = deliver(&http, addr, &secret, "msg_async", unix_now(), &body).await;
    assert_eq!(reply.status, 202);
    assert!(probe::healthz(addr).await < probe::HEALTH_BOUND);

    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let bound = GRACE + coderunner::cli::EXIT_MARGIN + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > bound {
            let _ = child.kill();
            panic!("still running {bound:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let exited_after = signalled.elapsed();
    let logs = logs.join().unwrap();
    assert!(status.success(), "exit status {status:?}\n{logs}");
    assert!(
        exited_after >= GRACE,
        "the asynchronous task had its grace period: {exited_after:?}"
    );
    assert!(
        logs.contains("grace period over"),
        "the abandoned asynchronous task is reported\n{logs}"
    );
}
