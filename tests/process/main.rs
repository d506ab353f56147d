//! The `coderunner` binary as a process: configuration from the environment
//! and from files, refusal to start on bad configuration, and a graceful
//! exit on SIGTERM. (Environment-driven tests live in this binary of their
//! own.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use coderunner::signature::WebhookSecret;

fn coderunner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coderunner"));
    cmd.env_remove("CODERUNNER_CONFIG");
    for (key, _) in std::env::vars() {
        if key.starts_with("CODERUNNER__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn serve_refuses_bad_configuration_naming_the_key() {
    let out = coderunner().arg("serve").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.webhook_secrets"), "{err}");

    let out = coderunner()
        .arg("serve")
        .env("CODERUNNER__TASKS__MAX_TIMEOUT_MS", "soon")
        .env("CODERUNNER__SECURITY__ALLOW_UNSIGNED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tasks.max_timeout_ms"), "{err}");
}

#[cfg(unix)]
#[test]
fn serve_takes_secrets_from_files_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::generate();
    let secret_file = dir.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let overlay = dir.path().join("runner.toml");
    std::fs::write(
        &overlay,
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();

    let mut child = coderunner()
        .args(["serve", "--config"])
        .arg(&overlay)
        .env("CODERUNNER__SECURITY__WEBHOOK_SECRETS_FILE", &secret_file)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(addr) = v["address"].as_str() {
                    let _ = tx.send(addr.to_owned());
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the runner logs its address as JSON");

    let health = raw_http::get_status(&format!("http://{addr}/healthz"));
    assert_eq!(health, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let logs = reader.join().unwrap();
    assert!(logs.contains("shutdown complete"), "{logs}");
    assert!(!logs.contains(&secret), "the secret never reaches the logs");
}

mod raw_http {
    /// A tiny blocking GET over a raw socket: the status code.
    pub fn get_status(url: &str) -> u16 {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
