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

    // The console under `serve` needs its token.
    let out = coderunner()
        .arg("serve")
        .env("CODERUNNER__SECURITY__ALLOW_UNSIGNED", "true")
        .env("CODERUNNER__CONSOLE__ENABLED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("console.token"), "{err}");
}

#[cfg(unix)]
#[test]
fn serve_takes_secrets_from_files_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let secret = WebhookSecret::generate();
    let secret_file = dir.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let console_token = "console-token-from-a-file";
    let token_file = dir.path().join("console-token");
    std::fs::write(&token_file, format!("{console_token}\n")).unwrap();
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
        .env("CODERUNNER__CONSOLE__ENABLED", "true")
        .env("CODERUNNER__CONSOLE__TOKEN_FILE", &token_file)
        .env("CODERUNNER__CONSOLE__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (rx, reader) = read_json_logs(&mut child);
    let (mut addr, mut console_addr) = (None, None);
    while addr.is_none() || console_addr.is_none() {
        let (key, value) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the runner logs its addresses as JSON");
        match key {
            "address" => addr = Some(value),
            _ => console_addr = Some(value),
        }
    }
    let (addr, console_addr) = (addr.unwrap(), console_addr.unwrap());

    let health = raw_http::get_status(&format!("http://{addr}/healthz"));
    assert_eq!(health, 200);
    // The console is on its own port, behind the token read from its file,
    // and not on the port that takes /invoke.
    let console = raw_http::get_status(&format!("http://{console_addr}/console/api/overview"));
    assert_eq!(console, 401);
    assert_eq!(
        raw_http::get_status(&format!("http://{console_addr}/console/login")),
        200
    );
    assert_eq!(
        raw_http::get_status(&format!("http://{addr}/console/login")),
        404
    );

    // `coderunner invoke --secret` signs with the secret given.
    let invoke = |secret: &str| {
        coderunner()
            .args([
                "invoke",
                "--event",
                "persistence.beforeCreate",
                "--target",
                "Post",
            ])
            .args(["--arg", r#"{"title":"  signed  "}"#, "--runner"])
            .arg(format!("http://{addr}"))
            .args(["--secret", secret])
            .output()
            .unwrap()
    };
    let signed = invoke(&secret.to_string());
    let printed = String::from_utf8_lossy(&signed.stdout);
    assert!(
        signed.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    assert!(printed.contains("\"signed\""), "{printed}");
    let other = invoke(&WebhookSecret::generate().to_string());
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("HTTP 401"));

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
    assert!(!logs.contains(console_token), "nor the console token");
}

/// Reads a `serve` process's JSON log lines on a thread: the addresses it
/// logs (`address`, `console_address`) as they come, and all its lines
/// once it exits.
fn read_json_logs(
    child: &mut std::process::Child,
) -> (
    std::sync::mpsc::Receiver<(&'static str, String)>,
    std::thread::JoinHandle<String>,
) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                for key in ["address", "console_address"] {
                    if let Some(addr) = v[key].as_str() {
                        let _ = tx.send((key, addr.to_owned()));
                    }
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, reader)
}

mod raw_http {
    /// A tiny blocking GET over a raw socket: the status code.
    pub(crate) fn get_status(url: &str) -> u16 {
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

#[cfg(unix)]
#[test]
fn the_emulator_alone_serves_the_dev_app() {
    let mut child = coderunner()
        .arg("emulator")
        .env("CODERUNNER__EMULATOR__LISTEN", "127.0.0.1:0")
        .env("CODERUNNER__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(addr) = v["address"].as_str() {
                    let _ = tx.send(addr.to_owned());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the emulator logs its address");
    let status = raw_http::get_status(&format!("http://{addr}/dev-app/dev-rest-key/info"));
    let unknown_key = raw_http::get_status(&format!("http://{addr}/dev-app/nope/info"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(status, 200, "the dev app's REST key works");
    assert!(
        (400..500).contains(&unknown_key),
        "an unknown key is refused: {unknown_key}"
    );
}

/// SIGTERM while 50 tasks are in flight: every one completes and gets its
/// reply, new connections are refused meanwhile, and serving ends cleanly.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_50_in_flight_tasks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use coderunner::config::Config;
    use coderunner::event::persistence;
    use coderunner::{Before, Context, Registry};
    use coderunner::{Runner, shutdown_signal};
    use serde_json::{Value, json};
    use tokio::sync::Semaphore;

    const SECRET: &str = "whsec_c2lndGVybS10ZXN0LXNlY3JldC1mb3ItdGhlLXJ1bm5lcg==";
    let started = Arc::new(AtomicUsize::new(0));
    let all_started = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let mut registry = Registry::new();
    let (s, n, g) = (
        Arc::clone(&started),
        Arc::clone(&all_started),
        Arc::clone(&gate),
    );
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Post",
            move |_ctx: Context, row: Value| {
                let (s, n, g) = (Arc::clone(&s), Arc::clone(&n), Arc::clone(&g));
                async move {
                    if s.fetch_add(1, Ordering::SeqCst) + 1 == 50 {
                        n.notify_one();
                    }
                    let _permit = g.acquire().await.expect("gate stays open");
                    Ok(Before::Continue(row))
                }
            },
        )
        .unwrap();
    let config =
        Config::from_toml(&format!("[security]\nwebhook_secrets = [\"{SECRET}\"]")).unwrap();
    let runner = Runner::new(&config, registry).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(runner.serve(listener, shutdown_signal()));

    let secret = WebhookSecret::parse(SECRET).unwrap();
    let http = ::reqwest::Client::new();
    let notified = all_started.notified();
    let in_flight: Vec<_> = (0..50)
        .map(|i| {
            let body = serde_json::to_vec(&json!({
                "id": format!("t{i}"), "eventId": 100, "target": "Post",
                "arguments": [{"appId": "A"}, {"title": format!("post {i}")}]
            }))
            .unwrap();
            let mut request = http.post(format!("http://{addr}/invoke"));
            for (k, v) in secret.sign_headers(&body) {
                request = request.header(k, v);
            }
            tokio::spawn(request.body(body).send())
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(30), notified)
        .await
        .expect("all 50 handlers started");

    let killed = Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut refused = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "new connections are refused once shutdown began");
    assert!(
        !serving.is_finished(),
        "serving waits for the in-flight tasks"
    );

    gate.add_permits(50);
    for (i, response) in in_flight.into_iter().enumerate() {
        let response = response
            .await
            .unwrap()
            .expect("every in-flight task gets its reply");
        assert_eq!(response.status(), 200);
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["requestId"], json!(format!("t{i}")));
        assert!(reply["exception"].is_null(), "{reply}");
    }
    serving.await.unwrap().expect("serving ends cleanly");
}

/// `docs/deploy.md` followed locally: its production configuration file as
/// written, the secrets from files through the `_FILE` variables it names,
/// `serve` on the machine's Redis (the Redis transport and the fleet's
/// store, under keys of this test's own), then `invoke` with a chosen
/// secret. Only what cannot run here is changed: the listen address, the
/// backend (loopback), the queue and key names, and HTTP on for `invoke`.
#[cfg(unix)]
#[test]
fn the_deploy_guide_runs_as_written_locally() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy.md")).unwrap();
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let production = &doc[start..start + doc[start..].find("```").unwrap()];
    let app_id = production
        .lines()
        .find_map(|l| l.strip_prefix("app_id = "))
        .expect("the guide sets app_id")
        .trim_matches('"')
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("production.toml");
    std::fs::write(&config, production).unwrap();
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path
    };
    let secret = WebhookSecret::generate();
    let prefix = format!("deploy-guide-{}:", uuid::Uuid::new_v4().simple());

    let mut child = coderunner()
        .args(["serve", "--config"])
        .arg(&config)
        .env(
            "CODERUNNER__SECURITY__WEBHOOK_SECRETS_FILE",
            file("webhook", &secret.to_string()),
        )
        .env(
            "CODERUNNER__BACKENDLESS__API_KEY_FILE",
            file("cloudcode-key", "the-cloudcode-key"),
        )
        .env(
            "CODERUNNER__BACKENDLESS__SUPERUSER__PASSWORD_FILE",
            file("superuser-password", "the-superuser-password"),
        )
        .env(
            "CODERUNNER__REDIS__URL_FILE",
            file("redis-url", "redis://127.0.0.1:6379"),
        )
        .env("CODERUNNER__SERVER__LISTEN", "127.0.0.1:0")
        .env("CODERUNNER__BACKENDLESS__SERVER_URL", "http://127.0.0.1:9")
        .env("CODERUNNER__TRANSPORT__HTTP", "true")
        .env("CODERUNNER__REDIS__QUEUE", format!("{prefix}queue"))
        .env("CODERUNNER__REDIS__LOW_PRIORITY_QUEUE", "")
        .env(
            "CODERUNNER__REDIS__SERVICE_CHANNEL",
            format!("{prefix}service"),
        )
        .env("CODERUNNER__STORE__PREFIX", &prefix)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (rx, reader) = read_json_logs(&mut child);
    let (_, addr) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the runner logs its address as JSON, as the guide's [log] asks");
    // Ready once the Redis transport and the store answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while raw_http::get_status(&format!("http://{addr}/readyz")) != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    let sent = coderunner()
        .args([
            "invoke",
            "--event",
            "persistence.beforeCreate",
            "--target",
            "Post",
        ])
        .args(["--arg", r#"{"title":"  deployed  "}"#, "--anonymous"])
        .args(["--app-id", &app_id, "--runner"])
        .arg(format!("http://{addr}"))
        .args(["--secret", &secret.to_string()])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(printed.contains("\"deployed\""), "{printed}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let logs = reader.join().unwrap();
    for secret in [
        secret.as_str(),
        "the-cloudcode-key",
        "the-superuser-password",
    ] {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
}

/// The shell commands of `docs/deploy.md` that run on one machine: making a
/// webhook secret (it must parse as one), and printing the handlers and the
/// model before shipping.
#[cfg(unix)]
#[test]
fn the_deploy_guide_commands_that_run_locally_work() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy.md")).unwrap();
    let line = doc
        .lines()
        .find(|l| l.contains("head -c 32 /dev/urandom"))
        .expect("the guide makes a secret");
    let command = line
        .split('`')
        .find(|part| part.starts_with("echo "))
        .expect("the command in backquotes");
    let out = Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(out.status.success());
    let made = String::from_utf8(out.stdout).unwrap();
    WebhookSecret::parse(made.trim()).expect("the guide's command makes a valid secret");

    for (command, expect) in [("handlers", "beforeCreate"), ("model", "\"timers\"")] {
        assert!(doc.contains(&format!("coderunner {command}")), "{command}");
        let out = coderunner().arg(command).output().unwrap();
        assert!(out.status.success(), "coderunner {command}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expect),
            "{command}"
        );
    }
}
