//! Differential conformance against the official CodeRunner: the unmodified
//! `backendless-coderunner` 8.0.3 from npm runs in `pro` mode with the JS app
//! of `tests/official/app`, coderunner runs the equivalent Rust handlers
//! below, and the same tasks (`tests/official/cases.json`) are pushed to each
//! through Redis by the same driver (`tests/official/push.js`), in both
//! compression modes. Their replies are compared field by field; every
//! intended difference (docs/protocol.md, "Where coderunner differs") is
//! asserted as exactly that difference, and nothing else may differ.
//!
//! The official runner gets its configuration from loopback stand-ins for
//! Consul and the API server, and a private `redis-server` (its queue names
//! are fixed); see `tests/official/README.md`.

#[path = "../common/node.rs"]
mod node;
#[path = "../common/official.rs"]
mod official;
#[allow(dead_code)]
#[path = "../redis/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use coderunner::event::{custom, markers, persistence};
use coderunner::service::{ParamType, Service, ServiceMethod};
use coderunner::testing::TestApp;
use coderunner::timer::{Frequency, Schedule};
use coderunner::{After, Before, Context, HandlerError, Outcome, Registry, ServiceContext};
use official::{Official, ensure_official, official_dir};
use serde_json::{Value, json};
use support::PrivateRedis;

const WHAT: &str = "the differential test against the official CodeRunner";
const PUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// The Rust twin of `tests/official/app`.
fn rust_app() -> Registry {
    let mut registry = Registry::new();
    registry
        .before(
            persistence::BEFORE_CREATE,
            "Order",
            |_: Context, mut order: Value| async move {
                if let Some(title) = order["title"].as_str() {
                    order["title"] = Value::from(title.trim());
                }
                order["normalized"] = Value::Bool(true);
                Ok(Before::Continue(order))
            },
        )
        .unwrap()
        .before(
            persistence::BEFORE_UPDATE,
            "Order",
            |_: Context, _order: Value| async move {
                Ok(Before::<Value>::ShortCircuit(json!({"short": "circuit"})))
            },
        )
        .unwrap()
        .before(
            persistence::BEFORE_REMOVE,
            "Order",
            |_: Context, _id: Value| async move {
                Err::<Before<Value>, _>(
                    HandlerError::new(4001, "orders cannot be removed").with_status(422),
                )
            },
        )
        .unwrap()
        .after(
            persistence::AFTER_CREATE,
            "Order",
            |_: Context, _order: Value, result: Outcome<Value>| async move {
                let title = result.result().map_or(Value::Null, |r| r["title"].clone());
                Ok(After::Replace(json!({"replaced": true, "title": title})))
            },
        )
        .unwrap()
        .after_async(
            persistence::AFTER_UPDATE,
            "Order",
            |_: Context, _order: Value, _: Outcome<Value>| async move { Ok(After::<Value>::Keep) },
        )
        .unwrap()
        .before(
            persistence::BEFORE_FIND,
            "Order",
            |_: Context, query: Value| async move {
                std::future::pending::<()>().await;
                Ok(Before::Continue(query))
            },
        )
        .unwrap()
        .after(
            persistence::AFTER_FIND,
            "Order",
            |_: Context, _query: Value, _: Outcome<Value>| async move {
                Err::<After<Value>, _>(HandlerError::msg("plain error"))
            },
        )
        .unwrap()
        .after(
            custom::EXECUTE,
            "echo",
            |_: Context, args: Value, _: Outcome<Value>| async move {
                Ok(After::Replace(json!({"echo": args})))
            },
        )
        .unwrap()
        .timer(
            "tick",
            Schedule::new(1_764_460_800_000, Frequency::Custom { every_secs: 60 }),
            |_: Context| async move { Ok(()) },
        )
        .unwrap()
        .service(
            Service::new("CalcService").method(
                ServiceMethod::new("sum")
                    .param("a", ParamType::Number)
                    .param("b", ParamType::Number)
                    .returns(ParamType::Number)
                    .route("POST /sum"),
                |ctx: ServiceContext, (a, b): (i64, i64)| async move {
                    ctx.set_status(202);
                    Ok(a + b)
                },
            ),
        )
        .unwrap();
    registry
}

/// Pushes every case to the runner on the Redis at `port` and returns
/// `{case: {count, replies}}`.
fn push(modules: &Path, port: u16, api_url: &str, compression: bool) -> Value {
    let mut cmd = node::node();
    cmd.arg(official_dir().join("push.js"))
        .arg("--modules")
        .arg(modules)
        .arg("--redis-port")
        .arg(port.to_string())
        .arg("--api-url")
        .arg(api_url)
        .arg("--cases")
        .arg(official_dir().join("cases.json"))
        .arg("--parallel")
        .args(compression.then_some("--compression"));
    let (ok, stdout, stderr) = node::run(cmd, PUSH_TIMEOUT).expect("node push.js");
    assert!(ok, "push.js failed:\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"results\""))
        .unwrap_or_else(|| panic!("push.js printed no results:\n{stdout}\n{stderr}"));
    serde_json::from_str::<Value>(line).expect("results are JSON")["results"].take()
}

/// Our runner on a private Redis with the official queue names.
async fn ours(redis: &PrivateRedis, compression: bool) -> TestApp {
    let overlay = format!(
        "[transport]\nhttp = false\nredis = true\n[redis]\nurl = \"{}\"\ncompression = {compression}\n",
        redis.url()
    );
    let app = TestApp::builder()
        .without_emulator()
        .registry(rust_app())
        .config(&overlay)
        .start()
        .await;
    for _ in 0..200 {
        if reqwest::get(app.url("/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return app;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("coderunner did not become ready");
}

/// Replaces `___objectref`s in a decoded reply's arguments by copies of what
/// they point to; returns whether there were any.
fn inline_references(reply: &mut Value) -> bool {
    let Some(arguments) = reply.get_mut("arguments") else {
        return false;
    };
    let had = serde_json::to_string(arguments)
        .unwrap()
        .contains(markers::OBJECT_REF);
    markers::resolve(arguments);
    had
}

fn handler_keys(model: &Value, skip_standalone: bool) -> BTreeSet<(u64, String)> {
    model["handlers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| !skip_standalone || h["eventId"] != 800)
        .map(|h| {
            (
                h["eventId"].as_u64().unwrap(),
                h["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Compares one case; returns a description of an unexpected difference.
fn compare(case: &str, official: &Value, ours: &Value) -> Result<(), String> {
    let count = |v: &Value| v["count"].as_u64().unwrap_or(0);
    let (official_count, our_count) = (count(official), count(ours));
    // Difference 1: the official runner publishes every reply twice.
    let expected_ours = if official_count == 0 { 0 } else { 1 };
    if official_count > 2
        || our_count != expected_ours
        || (official_count != 0 && official_count != 2)
    {
        return Err(format!(
            "{case}: {official_count} official copies, {our_count} of ours"
        ));
    }
    if official_count == 0 {
        return Ok(());
    }
    let copies = official["replies"].as_array().unwrap();
    if copies[0] != copies[1] {
        return Err(format!("{case}: the official runner's two copies differ"));
    }
    let mut theirs = copies[0].clone();
    let mut mine = ours["replies"][0].clone();
    match case {
        // Difference 5: replies carry objects inline, not as `___objectref`s.
        "afterCreate" | "customEcho" => {
            if !inline_references(&mut theirs) {
                return Err(format!(
                    "{case}: the official reply was expected to use ___objectref"
                ));
            }
            if inline_references(&mut mine) {
                return Err(format!("{case}: our reply uses ___objectref"));
            }
        }
        // The same handlers, timers and services; providers differ (JS
        // files against Rust functions), so they are compared apart.
        "analyse" => {
            let (t, m) = (&theirs["arguments"], &mine["arguments"]);
            if handler_keys(t, true) != handler_keys(m, true) {
                return Err(format!("analyse: handlers differ: {t} vs {m}"));
            }
            // The same timers with the same schedules (providers differ: JS
            // files against Rust functions).
            let timers = |model: &Value| -> Vec<(Value, Value)> {
                model["timers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let json = t["timerJson"]
                            .as_str()
                            .and_then(|j| serde_json::from_str(j).ok());
                        (t["name"].clone(), json.unwrap_or(Value::Null))
                    })
                    .collect()
            };
            if timers(t) != timers(m) || timers(t).is_empty() {
                return Err(format!(
                    "analyse: timers: {} vs {}",
                    t["timers"], m["timers"]
                ));
            }
            // Services: everything but the provider, the XML byte for byte.
            let services = |model: &Value| -> Vec<Value> {
                model["services"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        let mut s = s.clone();
                        s.as_object_mut().map(|o| o.remove("provider"));
                        s
                    })
                    .collect()
            };
            if services(t) != services(m) || services(t).is_empty() {
                return Err(format!(
                    "analyse: services: {} vs {}",
                    t["services"], m["services"]
                ));
            }
            if t["definitions"]["types"] != m["definitions"]["types"] {
                return Err(format!(
                    "analyse: definitions: {} vs {}",
                    t["definitions"], m["definitions"]
                ));
            }
            return Ok(());
        }
        _ => {}
    }
    if theirs == mine {
        Ok(())
    } else {
        Err(format!(
            "{case} differs:\n official: {theirs}\n ours:     {mine}"
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_tasks_get_the_same_replies_as_from_the_official_runner() {
    if node::tool_version("node").is_none() || node::tool_version("npm").is_none() {
        return node::skip(WHAT, "`node` or `npm` is not on PATH");
    }
    let dir = match tokio::task::spawn_blocking(ensure_official).await.unwrap() {
        Ok(dir) => dir,
        Err(why) => return node::skip(WHAT, &why),
    };
    let modules = dir.join("node_modules");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(official_dir().join("cases.json")).unwrap())
            .unwrap();
    let mut problems = Vec::new();
    for compression in [false, true] {
        let work = tempfile::tempdir().unwrap();
        let official = {
            let (modules, work) = (modules.clone(), work.path().to_owned());
            tokio::task::spawn_blocking(move || Official::start(&modules, &work, compression))
                .await
                .unwrap()
        };
        let theirs = {
            let (modules, port, api) = (
                modules.clone(),
                official.redis_port,
                official.api_url.clone(),
            );
            tokio::task::spawn_blocking(move || push(&modules, port, &api, compression))
                .await
                .unwrap()
        };
        drop(official);

        let redis = PrivateRedis::start();
        let app = ours(&redis, compression).await;
        let mine = {
            let (modules, port) = (modules.clone(), redis.port);
            tokio::task::spawn_blocking(move || {
                push(&modules, port, "http://127.0.0.1:9", compression)
            })
            .await
            .unwrap()
        };
        app.shutdown();
        app.wait().await.unwrap();

        for case in &cases {
            let name = case["name"].as_str().unwrap();
            if let Err(problem) = compare(name, &theirs[name], &mine[name]) {
                problems.push(format!("[compression {compression}] {problem}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_model_loader_accepts_coderunner_model() {
    if node::tool_version("node").is_none() || node::tool_version("npm").is_none() {
        return node::skip(WHAT, "`node` or `npm` is not on PATH");
    }
    let dir = match tokio::task::spawn_blocking(ensure_official).await.unwrap() {
        Ok(dir) => dir,
        Err(why) => return node::skip(WHAT, &why),
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coderunner"))
        .arg("model")
        .env_remove("CODERUNNER_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model: Value = serde_json::from_slice(&out.stdout).expect("coderunner model prints JSON");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &out.stdout).unwrap();

    let mut cmd = node::node();
    cmd.arg(official_dir().join("load_model.js"))
        .arg("--modules")
        .arg(dir.join("node_modules"))
        .arg(file.path());
    let (ok, stdout, stderr) = node::run(cmd, Duration::from_secs(60)).unwrap();
    let verdict: Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("load_model.js printed no verdict:\n{stdout}\n{stderr}"));
    assert!(
        ok && verdict["ok"] == true,
        "the official loader refused the model: {verdict}\n{stderr}"
    );
    assert_eq!(
        verdict["handlers"],
        model["handlers"].as_array().unwrap().len()
    );
    // Three event handlers and the custom event; the timer and the
    // service are listed apart.
    assert_eq!(verdict["handlers"], 4, "{verdict}");
    assert_eq!(verdict["services"], 1, "{verdict}");
    assert_eq!(model["timers"].as_array().map(Vec::len), Some(1));
}
