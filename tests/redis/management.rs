//! Debug mode and deploy, against the emulator with its Redis link: the
//! `coderunner debug` and `coderunner deploy` binaries, as a developer runs
//! them against a Backendless app.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coderunner::emulator::{Emulator, EmulatorConfig, RunnerLinkConfig};
use serde_json::{Value, json};

use crate::support::{self, RedisRunner, SHARED_REDIS};

const CLOUDCODE_KEY: &str = "dev-cloudcode-key";

struct Emu {
    url: String,
    app_id: String,
}

impl Emu {
    async fn start(link: RunnerLinkConfig) -> Emu {
        let app_id = format!("APP-{}", uuid::Uuid::new_v4().simple()).to_uppercase();
        let config = EmulatorConfig {
            app_id: app_id.clone(),
            runner: Some(link),
            ..EmulatorConfig::dev()
        };
        let emulator = Emulator::new(config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(emulator.serve(listener, std::future::pending()));
        Emu { url, app_id }
    }

    fn root(&self) -> String {
        format!("{}/{}/dev-rest-key", self.url, self.app_id)
    }

    /// Creates a post as alice; the stored row.
    async fn create_post(&self, title: &str) -> (u16, Value) {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{}/users/login", self.root()))
            .json(&json!({"login": "alice@example.com", "password": "alice-pass"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["user-token"].as_str().unwrap().to_owned();
        let response = http
            .post(format!("{}/data/Post", self.root()))
            .header("user-token", token)
            .json(&json!({"title": title}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The runner environment: the SDK talks to this emulator.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coderunner"));
        cmd.args(args)
            .env_remove("CODERUNNER_CONFIG")
            .env("CODERUNNER__BACKENDLESS__SERVER_URL", &self.url)
            .env("CODERUNNER__BACKENDLESS__APP_ID", &self.app_id)
            .env("CODERUNNER__BACKENDLESS__API_KEY", CLOUDCODE_KEY)
            .env(
                "CODERUNNER__BACKENDLESS__SUPERUSER__LOGIN",
                "admin@example.com",
            )
            .env("CODERUNNER__BACKENDLESS__SUPERUSER__PASSWORD", "admin-pass")
            .env("RUST_LOG", "warn");
        cmd
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn debug_keys(app_id: &str) -> Vec<String> {
    let client = redis::Client::open(SHARED_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS")
        .arg(format!("debug:{app_id}:*"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coderunner_debug_takes_the_apps_tasks_and_unregisters_on_exit() {
    let emu = Emu::start(RunnerLinkConfig::redis(SHARED_REDIS)).await;
    let port = free_port();
    let child = emu
        .command(&[
            "debug",
            "--msg-broker-host",
            "127.0.0.1",
            "--msg-broker-port",
            "6379",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut debug = Running(child);
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let mut registered = false;
    for _ in 0..300 {
        if reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        registered,
        "the debug runner registered and serves the app's list"
    );
    assert_eq!(
        debug_keys(&emu.app_id).await.len(),
        1,
        "one debug session key"
    );

    // The app's events now run in the debug runner: the title is trimmed,
    // and the after-handler wrote alice's Latest_post row.
    let (status, post) = emu.create_post("  Debugged  ").await;
    assert_eq!(status, 200, "{post}");
    assert_eq!(post["title"], "Debugged");
    let (status, refused) = emu.create_post("   ").await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], 4001);

    // SIGTERM: exit 0, unregistered, the session key gone.
    let pid = debug.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut exited = None;
    for _ in 0..500 {
        if let Some(status) = debug.0.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = exited.expect("the debug runner exits on SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(debug_keys(&emu.app_id).await.is_empty(), "unregistered");
    let (_, post) = emu.create_post("  Plain  ").await;
    assert_eq!(
        post["title"], "  Plain  ",
        "no runner takes the app's tasks any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_or_an_unreachable_broker_is_one_clear_message() {
    let emu = Emu::start(RunnerLinkConfig::redis(SHARED_REDIS)).await;
    let run = |cmd: &mut Command| {
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run(emu
        .command(&[
            "debug",
            "--msg-broker-host",
            "127.0.0.1",
            "--msg-broker-port",
            "6379",
        ])
        .args(["--api-key", "WRONG-SECRET-KEY"]));
    assert!(!ok);
    assert!(
        stderr.contains("refused to register the debug runner"),
        "{stderr}"
    );
    assert!(
        stderr.contains("check the app id and the API key"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("WRONG-SECRET-KEY"),
        "the key is never printed: {stderr}"
    );
    assert!(
        stderr.lines().filter(|l| l.contains("coderunner:")).count() == 1,
        "{stderr}"
    );

    let closed = free_port();
    let (ok, stderr) = run(&mut emu.command(&[
        "debug",
        "--msg-broker-host",
        "127.0.0.1",
        "--msg-broker-port",
        &closed.to_string(),
    ]));
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "cannot reach the message broker 127.0.0.1:{closed}"
        )),
        "{stderr}"
    );
    assert!(
        debug_keys(&emu.app_id).await.is_empty(),
        "nothing was registered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_publishes_the_model_and_a_pro_runner_takes_its_events() {
    let prefix = support::fresh_prefix();
    let emu = Emu::start(RunnerLinkConfig {
        queue: format!("{prefix}CODE_RUNNER_DRIVER"),
        ..RunnerLinkConfig::redis(SHARED_REDIS)
    })
    .await;
    // A pro runner with the example app, its SDK on the emulator.
    let mut registry = coderunner::Registry::new();
    crate::app::register(&mut registry).unwrap();
    let backendless = format!(
        "[backendless]\nserver_url = \"{}\"\napp_id = \"{}\"\napi_key = \"{CLOUDCODE_KEY}\"\n\
         [backendless.superuser]\nlogin = \"admin@example.com\"\npassword = \"admin-pass\"\n",
        emu.url, emu.app_id
    );
    let runner =
        RedisRunner::start_prefixed(registry, false, SHARED_REDIS, &prefix, &backendless).await;
    assert_eq!(runner.queue(), format!("{prefix}CODE_RUNNER_DRIVER"));
    // Before the deploy the server knows no business logic.
    let (_, post) = emu.create_post("  Before  ").await;
    assert_eq!(post["title"], "  Before  ");

    let out = emu
        .command(&["deploy"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Deploy finished"), "{stdout}");

    let (status, post) = emu.create_post("  Deployed  ").await;
    assert_eq!(
        (status, &post["title"]),
        (200, &json!("Deployed")),
        "{post}"
    );
    runner.app.shutdown();
}
