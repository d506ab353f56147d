//! The web console (docs/console.md): the runner's `/console` and the
//! emulator's `/__emulator/console/`, driven in headless Chromium through a
//! real `coderunner dev`; the token that guards the runner's console under
//! `serve`; and no secret in any page or console API response.
//!
//! The browser test needs Node.js/npm (it installs `playwright-core` once
//! into `<target>/console-node/`) and Chromium (`chromium` on the PATH, or
//! `CHROMIUM`). Without them it prints why and passes, unless
//! `CODERUNNER_REQUIRE_NODE=1` (as in CI), which makes it fail.

#[path = "../common/node.rs"]
mod node;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coderunner::Registry;
use coderunner::config::Config;
use coderunner::testing::TestApp;
use serde_json::{Value, json};

#[path = "../../handlers/mod.rs"]
mod app;

const PLAYWRIGHT_SPEC: &str = "playwright-core@1.65.1";
const PLAYWRIGHT_VERSION: &str = "1.65.1";
const WHAT: &str = "the console's browser test";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Kills `coderunner dev` when the test ends, pass or fail.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Starts `coderunner dev` on free ports; its emulator and runner URLs.
fn start_dev() -> (Dev, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coderunner"))
        .args([
            "dev",
            "--emulator-listen",
            "127.0.0.1:0",
            "--runner-listen",
            "127.0.0.1:0",
        ])
        .env_remove("CODERUNNER_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("coderunner dev starts");
    let stdout = child.stdout.take().unwrap();
    let dev = Dev(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let line = line.trim();
            for (name, prefix) in [
                ("emulator", "emulator (Backendless API)"),
                ("runner", "runner "),
            ] {
                if let Some(url) = line.strip_prefix(prefix) {
                    let _ = tx.send((name, url.trim().to_owned()));
                }
            }
        }
    });
    let (mut emulator, mut runner) = (None, None);
    while emulator.is_none() || runner.is_none() {
        let (name, url) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("coderunner dev prints its URLs");
        match name {
            "emulator" => emulator = Some(url),
            _ => runner = Some(url),
        }
    }
    (dev, emulator.unwrap(), runner.unwrap())
}

#[test]
fn in_chromium_a_post_by_alice_shows_its_invocation_identities_and_a_rejection() {
    let (Some(_), Some(_)) = (node::tool_version("node"), node::tool_version("npm")) else {
        return node::skip(WHAT, "Node.js or npm is not installed");
    };
    let Some(chromium) = chromium() else {
        return node::skip(
            WHAT,
            "Chromium is not installed (apt-get install chromium, or set CHROMIUM)",
        );
    };
    let dir = node::target_dir("console-node");
    std::fs::create_dir_all(&dir).unwrap();
    if node::installed_version(&dir, "playwright-core").as_deref() != Some(PLAYWRIGHT_VERSION) {
        if let Err(e) = node::npm_install(&dir, &[PLAYWRIGHT_SPEC]) {
            return node::skip(WHAT, &e);
        }
    }
    let shots = node::target_dir("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("runner-console.png"));

    let (_dev, emulator, runner) = start_dev();
    let mut cmd = node::node();
    cmd.current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .env("NODE_PATH", dir.join("node_modules"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/console/browser.js"
        ))
        .args([&emulator, &runner])
        .arg(&shots);
    let (ok, out, err) = node::run(cmd, SCRIPT_TIMEOUT).expect("node runs");
    assert!(ok, "the browser script failed:\n{err}\n{out}");
    let seen: Value = serde_json::from_str(out.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));

    assert!(seen["handlers"].as_u64().unwrap() >= 4, "{seen}");
    assert!(
        seen["created"]
            .as_str()
            .unwrap()
            .contains("Written in Chromium"),
        "{seen}"
    );
    let rejected = seen["rejected"].as_str().unwrap();
    assert!(
        rejected.contains("4001") && rejected.contains("A post needs a title"),
        "{rejected}"
    );
    // afterCreate wrote Latest_post as the caller and Audit_log as the
    // superuser, each in a transaction with its relation.
    let after = &seen["afterCreate"];
    assert_eq!(after["outcome"], "ok");
    let identities = after["identities"].as_str().unwrap();
    assert!(
        identities.contains("caller") && identities.contains("superuser"),
        "{after}"
    );
    let calls = after["calls"].as_str().unwrap();
    assert!(
        calls.contains("caller POST /transaction/unit-of-work → 200")
            && calls.contains("superuser POST /transaction/unit-of-work → 200"),
        "{calls}"
    );
    assert_eq!(seen["rejectedInvocation"]["outcome"], "error");
    assert_eq!(
        seen["rejectedInvocation"]["error"],
        "[4001] A post needs a title"
    );
    assert!(
        seen["session"].as_str().unwrap().contains("Logins1"),
        "{}",
        seen["session"]
    );
    assert_eq!(seen["filteredOutcomes"], json!(["error"]));
    assert_eq!(seen["problems"], json!([]), "no script error in the pages");
    for page in ["runner", "emulator"] {
        let html = seen["html"][page].as_str().unwrap();
        for secret in ["alice-pass", "admin-pass", "dev-cloudcode-key", "whsec_"] {
            assert!(!html.contains(secret), "{page} console shows {secret}");
        }
    }
    let shot = std::fs::metadata(shots.join("runner-console.png")).expect("a screenshot");
    assert!(shot.len() > 10_000, "the screenshot has content");
}

const CONSOLE_TOKEN: &str = "console-token-8d1f0c2b";
const API_KEY: &str = "dev-cloudcode-key";
const SUPERUSER_PASSWORD: &str = "admin-pass";
const WEBHOOK_SECRET: &str = "whsec_ZGV2LW9ubHktc2VjcmV0LWRvLW5vdC11c2UtaW4tcHJvZA==";

fn registry() -> Registry {
    let mut registry = Registry::new();
    app::register(&mut registry).unwrap();
    registry
}

#[tokio::test]
async fn with_serve_defaults_there_is_no_console() {
    let app = TestApp::builder()
        .without_emulator()
        .registry(registry())
        .webhook_secrets([WEBHOOK_SECRET])
        .start()
        .await;
    let config = Config::from_toml(&format!(
        "[security]\nwebhook_secrets = [\"{WEBHOOK_SECRET}\"]\n"
    ))
    .unwrap();
    assert!(!config.console.enabled);
    let url = app.runner_url();
    let http = reqwest::Client::new();
    for path in [
        "/console",
        "/console/",
        "/console/api/invocations",
        "/console/login",
    ] {
        let response = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
    app.shutdown();
    app.wait().await.unwrap();
}

/// The dev stack with the console behind a token.
async fn guarded_stack() -> TestApp {
    TestApp::builder()
        .registry(registry())
        .config(&format!(
            "[console]\ntoken = \"{CONSOLE_TOKEN}\"\n[log]\napp_log = false\n"
        ))
        .start()
        .await
}

#[tokio::test]
async fn with_a_token_the_console_needs_it_and_nothing_it_serves_holds_a_secret() {
    let stack = guarded_stack().await;
    let runner = stack.runner_url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Without the token: the page sends to the login page, the API says why.
    let page = http.get(format!("{runner}/console/")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/console/login");
    for path in [
        "api/overview",
        "api/invocations",
        "api/metrics",
        "assets/runner.js",
    ] {
        let response = http
            .get(format!("{runner}/console/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "console_unauthorized", "{path}");
    }
    let wrong = http
        .get(format!("{runner}/console/api/overview"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let refused = http
        .post(format!("{runner}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());

    // The login form sets a cookie that is not the token.
    let login = http
        .post(format!("{runner}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={CONSOLE_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains(CONSOLE_TOKEN));
    let cookie = cookie.split(';').next().unwrap().to_owned();

    // Work for the console to show: a login, a post, a rejected post.
    let api = stack.api_root("dev-rest-key");
    let alice: Value = http
        .post(format!("{api}/users/login"))
        .json(&json!({"login": "alice@example.com", "password": "alice-pass"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_token = alice["user-token"].as_str().unwrap().to_owned();
    for title in ["A post", " "] {
        http.post(format!("{api}/data/Post"))
            .header("user-token", &alice_token)
            .json(&json!({"title": title}))
            .send()
            .await
            .unwrap();
    }

    let mut shown = String::new();
    for path in [
        "",
        "assets/runner.js",
        "assets/console.css",
        "login",
        "api/overview",
        "api/invocations",
        "api/metrics",
    ] {
        for auth in ["cookie", "bearer"] {
            let request = http.get(format!("{runner}/console/{path}"));
            let request = match auth {
                "cookie" => request.header("cookie", &cookie),
                _ => request.bearer_auth(CONSOLE_TOKEN),
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path} with the {auth}");
            shown.push_str(&response.text().await.unwrap());
        }
    }
    let emulator = stack.emulator_url();
    for path in ["", "assets/emulator.js", "api/state"] {
        let response = http
            .get(format!("{emulator}/__emulator/console/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        shown.push_str(&response.text().await.unwrap());
    }
    let bob = http
        .post(format!("{emulator}/__emulator/console/api/login"))
        .json(&json!({"user": "bob@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), 200);
    let bob: Value = bob.json().await.unwrap();
    shown.push_str(&bob.to_string());
    let bob_id = bob["loggedIn"]["objectId"].as_str().unwrap().to_owned();

    // Replay alice's accepted beforeCreate as bob: the runner gets bob's context.
    let state: Value = http
        .get(format!("{emulator}/__emulator/console/api/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_id = alice["objectId"].as_str().unwrap();
    let task = state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|t| t["eventName"] == "beforeCreate" && t["userId"] == alice_id)
        .expect("alice's beforeCreate is in the task log")
        .clone();
    let replay: Value = http
        .post(format!("{emulator}/__emulator/console/api/replay"))
        .json(&json!({"task": task["id"], "user": "bob@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    shown.push_str(&replay.to_string());
    assert!(replay["reply"]["exception"].is_null(), "{replay}");
    let state: Value = http
        .get(format!("{emulator}/__emulator/console/api/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["tasks"][0]["eventName"], "beforeCreate");
    assert_eq!(
        state["tasks"][0]["userId"],
        bob_id.as_str(),
        "replayed as bob"
    );

    // A custom event called as alice through the generic call button.
    let called = http
        .post(format!("{emulator}/__emulator/console/api/call"))
        .json(&json!({"user": "alice@example.com", "path": "servercode/events/postStats", "body": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 200);
    let called: Value = called.json().await.unwrap();
    assert_eq!(called["status"], 200, "{called}");
    shown.push_str(&called.to_string());

    // Bad input gets a 4xx naming the problem.
    for (body, needle) in [
        (
            json!({"user": "mallory@example.com"}),
            "not one of the emulator's users",
        ),
        (json!({"nobody": 1}), "JSON body"),
    ] {
        let response = http
            .post(format!("{emulator}/__emulator/console/api/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{body}");
        let text = response.text().await.unwrap();
        assert!(text.contains(needle), "{text}");
    }
    let escape = http
        .post(format!("{emulator}/__emulator/console/api/call"))
        .json(&json!({"path": "../../__emulator/requests", "method": "GET"}))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), 400);

    // What the console shows is there...
    assert!(shown.contains("\"identity\":\"superuser\""), "{shown}");
    assert!(shown.contains("A post needs a title"));
    // ...and no secret is.
    for secret in [
        CONSOLE_TOKEN,
        API_KEY,
        SUPERUSER_PASSWORD,
        "alice-pass",
        "bob-pass",
        WEBHOOK_SECRET,
        &alice_token,
    ] {
        assert!(!shown.contains(secret), "a console response shows {secret}");
    }
    stack.stop().await;
}
