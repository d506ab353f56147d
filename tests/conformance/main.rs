//! Conformance test with a client nobody here wrote: the official Backendless
//! JavaScript SDK (npm `backendless`, exactly 8.0.0) drives the emulator
//! from Node.js (`tests/conformance/sdk_flow.js`).
//!
//! The package is installed once into `<target>/conformance-node/` and reused.
//! Without Node.js/npm, or when `npm install` fails (no network), the test
//! prints why and passes, unless `CODERUNNER_REQUIRE_NODE=1`, which turns
//! every such skip into a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coderunner::emulator::{Emulator, EmulatorConfig, KeyKind};
use coderunner::testing::TestApp;
use node::{installed_version, run, skip, tool_version};

#[path = "../../handlers/mod.rs"]
mod handlers;
#[path = "../common/node.rs"]
mod node;
use serde_json::Value;

/// The SDK version under test, exactly.
const SDK_SPEC: &str = "backendless@8.0.0";
const SDK_VERSION: &str = "8.0.0";
/// What a skip names.
const WHAT: &str = "the JS SDK conformance test";
/// The Node script may take this long (it waits ~2.3 s for a cache expiry).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Steps the script must report, all successful (see sdk_flow.js).
const STEPS: &[&str] = &[
    "initApp",
    "anonymousFind",
    "anonymousCreateDenied",
    "register",
    "registerDuplicate",
    "loginWrongPassword",
    "login",
    "currentUser",
    "isValidLogin",
    "savePost",
    "updatePost",
    "findPost",
    "findById",
    "count",
    "updateUser",
    "verifyPassword",
    "usersTable",
    "userRoles",
    "findFirstAndPaging",
    "bulkCreateAndRemove",
    "upsert",
    "bulkUpdate",
    "removeOwn",
    "findLastAndCountAll",
    "bulkUpsert",
    "cacheExpireAtAndCounterList",
    "counters",
    "logging",
    "auditLogDenied",
    "cachePutGet",
    "cacheExpireIn",
    "cacheRemove",
    "logout",
    "oldTokenInvalid",
    "anonymousCreateDeniedAfterLogout",
];

fn node_dir() -> PathBuf {
    node::target_dir("conformance-node")
}

/// Installs the SDK into `dir` unless its exact version is already there.
/// `Err` = why not.
fn ensure_sdk(dir: &Path) -> Result<String, String> {
    // The tests of this binary run at once: one installs, the others wait
    // for it rather than install over the files it is writing.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if installed_version(dir, "backendless").as_deref() == Some(SDK_VERSION) {
        return Ok(SDK_VERSION.to_owned());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let manifest = dir.join("package.json");
    if !manifest.exists() {
        std::fs::write(
            &manifest,
            "{\"name\":\"coderunner-conformance-node\",\"private\":true}\n",
        )
        .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;
    }
    eprintln!("installing {SDK_SPEC} into {}", dir.display());
    node::npm_install(dir, &[SDK_SPEC, "--save-exact"])?;
    installed_version(dir, "backendless")
        .filter(|v| v == SDK_VERSION)
        .ok_or_else(|| {
            format!(
                "npm install {SDK_SPEC} left no {SDK_VERSION} in {}",
                dir.display()
            )
        })
}

/// Node, npm and the SDK, installed once: the install folder and the SDK's
/// version, or `None` when the test is skipped (it has said why).
async fn sdk_ready() -> Option<(PathBuf, String)> {
    let Some(node) = tool_version("node") else {
        skip(WHAT, "`node` is not on PATH");
        return None;
    };
    if tool_version("npm").is_none() {
        skip(WHAT, "`npm` is not on PATH");
        return None;
    }
    let dir = node_dir();
    let installed = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || ensure_sdk(&dir)
    })
    .await
    .expect("install task");
    match installed {
        Ok(sdk) => {
            eprintln!("node {node}, backendless {sdk}");
            Some((dir, sdk))
        }
        Err(why) => {
            skip(WHAT, &why);
            None
        }
    }
}

/// `coderunner dev` in-process: the dev configuration's emulator linked to
/// a runner serving the example app's handlers, on free loopback ports.
async fn dev_stack() -> TestApp {
    TestApp::builder()
        .register(handlers::register)
        .start()
        .await
}

/// Runs the flow `script` (in `tests/conformance/`) against the emulator at
/// `url`: its `CONFORMANCE_RESULT` and node's stderr.
async fn run_flow(script: &str, url: &str, dir: &Path) -> (Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(script);
    let mut cmd = node::node();
    cmd.arg(&script)
        .arg(url)
        .arg(dir.join("node_modules"))
        .current_dir(dir);
    let started = Instant::now();
    let (_, stdout, stderr) = tokio::task::spawn_blocking(move || run(cmd, SCRIPT_TIMEOUT))
        .await
        .expect("node task")
        .expect("running node");
    eprintln!("node ran for {:?}", started.elapsed());
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CONFORMANCE_RESULT "))
        .unwrap_or_else(|| {
            panic!("no CONFORMANCE_RESULT line\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
    let result = serde_json::from_str(line).expect("CONFORMANCE_RESULT is JSON");
    (result, stderr)
}

/// Every step of `expected` ran and succeeded, no other step failed, and
/// Node talked only to 127.0.0.1.
fn assert_steps(result: &Value, expected: &[&str], context: &str) {
    let steps: BTreeMap<&str, &Value> = result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("?"), s))
        .collect();
    let mut failures = Vec::new();
    for name in expected {
        match steps.get(name) {
            None => failures.push(format!("step {name}: not run")),
            Some(s) if s["ok"] != Value::Bool(true) => {
                failures.push(format!("step {name}: {}", s["error"]))
            }
            Some(_) => {}
        }
    }
    for (name, s) in &steps {
        if !expected.contains(name) && s["ok"] != Value::Bool(true) {
            failures.push(format!("step {name}: {}", s["error"]));
        }
    }
    assert!(failures.is_empty(), "{}{context}", failures.join("\n"));
    assert_eq!(
        result["facts"]["foreignHosts"],
        serde_json::json!([]),
        "Node only talks to 127.0.0.1{context}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_v8_against_the_emulator() {
    let Some((dir, sdk)) = sdk_ready().await else {
        return;
    };

    let emu = Emulator::new(EmulatorConfig::dev()).expect("emulator");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(emu.clone().serve(listener, std::future::pending()));
    let inspect = emu.inspect();

    let (result, stderr) = run_flow("sdk_flow.js", &url, &dir).await;
    let requests = inspect.requests();
    let request_log: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {} -> {}", r.method, redact(&r.path), r.status))
        .collect();
    let context = format!(
        "\nsdk {sdk}\nresult: {}\nrequests:\n  {}\nnode stderr:\n{stderr}",
        serde_json::to_string_pretty(&result).unwrap_or_default(),
        request_log.join("\n  ")
    );

    assert_steps(&result, STEPS, &context);

    // The SDK reports background failures (app info, logger levels, log
    // flushes) only on the console.
    assert!(
        !stderr.to_ascii_lowercase().contains("could not"),
        "the SDK complained on stderr{context}"
    );

    // The emulator's side of the story.
    let email = result["facts"]["email"].as_str().expect("facts.email");
    let user_id = result["facts"]["userId"].as_str().expect("facts.userId");
    assert_eq!(
        inspect.login_count(email),
        1,
        "one successful login{context}"
    );
    assert!(
        requests.iter().all(|r| r.key_kind == Some(KeyKind::Js)),
        "every request used the JS key{context}"
    );
    let seen = |method: &str, suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .collect::<Vec<_>>()
    };
    assert!(
        !seen("GET", "/dev-app/dev-js-key/info").is_empty(),
        "app info{context}"
    );
    let logouts = seen("GET", "/users/logout");
    assert_eq!(logouts.len(), 1, "one logout{context}");
    assert_eq!(logouts[0].status, 200, "logout status{context}");
    assert_eq!(
        logouts[0].user_id.as_deref(),
        Some(user_id),
        "logout as the user{context}"
    );
    let authed_saves: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/data/Post") && r.method != "GET")
        .filter(|r| r.user_id.as_deref() == Some(user_id))
        .collect();
    assert_eq!(
        authed_saves.len(),
        2,
        "save + update of Post as the new user{context}"
    );
    assert!(authed_saves.iter().all(|r| r.status == 200), "{context}");
    let token_checks = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/users/isvalidusertoken/"))
        .count();
    assert_eq!(
        token_checks, 2,
        "isValidLogin asked the server twice (valid, stale){context}"
    );
    let logged: Vec<(String, String, Option<String>)> = inspect
        .log_messages()
        .into_iter()
        .filter(|m| m.logger == "conformance")
        .map(|m| (m.level, m.message, m.user_id))
        .collect();
    assert_eq!(
        logged,
        [
            (
                "INFO".to_owned(),
                "hello from the JS SDK".to_owned(),
                Some(user_id.to_owned())
            ),
            (
                "ERROR".to_owned(),
                "an error from the JS SDK".to_owned(),
                Some(user_id.to_owned())
            ),
        ],
        "Backendless.Logging messages{context}"
    );
    let stale = requests
        .iter()
        .filter(|r| r.status == 401 && r.path.ends_with("/data/Post"))
        .count();
    assert_eq!(stale, 1, "one save refused for the stale token{context}");
}

/// Steps of `services_flow.js`, all successful.
const SERVICE_STEPS: &[&str] = &[
    "initApp",
    "anonymousServiceRefused",
    "login",
    "savePost",
    "apiServicesInvoke",
    "customServicesInvoke",
    "apiServicesInvokeAsync",
    "unknownService",
    "unknownMethod",
    "eventsDispatch",
    "eventsDispatchAsync",
    "logout",
    "anonymousEventRefused",
];

/// `Backendless.APIServices.invoke`, `Backendless.CustomServices.invoke`
/// and `Backendless.Events.dispatch` against `coderunner dev`: the emulator
/// with the example app's runner, over loopback HTTP.
#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_v8_calls_services_and_events_of_coderunner_dev() {
    let Some((dir, _sdk)) = sdk_ready().await else {
        return;
    };
    let app = coderunner::testing::TestApp::start(handlers::register).await;
    let (result, stderr) = run_flow("services_flow.js", app.emulator_url(), &dir).await;
    let context = format!(
        "\nresult: {}\nnode stderr:\n{stderr}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
    let steps: BTreeMap<&str, &Value> = result["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("?"), s))
        .collect();
    let mut failures = Vec::new();
    for name in SERVICE_STEPS {
        match steps.get(name) {
            None => failures.push(format!("step {name}: not run")),
            Some(s) if s["ok"] != Value::Bool(true) => {
                failures.push(format!("step {name}: {}", s["error"]))
            }
            Some(_) => {}
        }
    }
    for (name, s) in &steps {
        if !SERVICE_STEPS.contains(name) {
            failures.push(format!("unexpected step {name}: {s}"));
        }
    }
    assert!(failures.is_empty(), "{}{context}", failures.join("\n"));
    assert_eq!(
        result["facts"]["foreignHosts"],
        serde_json::json!([]),
        "Node only talks to 127.0.0.1{context}"
    );
    // The runner got the service tasks with alice as the caller.
    let user_id = result["facts"]["userId"].as_str().expect("facts.userId");
    let service_tasks: Vec<_> = app
        .inspect()
        .tasks()
        .into_iter()
        .filter(|t| t.target == "Posts.myPostCount")
        .collect();
    assert!(
        service_tasks
            .iter()
            .any(|t| t.body["invocationContextDto"]["userId"] == user_id),
        "a service task carried alice{context}"
    );
}

fn redact(path: &str) -> String {
    const MARK: &str = "/users/isvalidusertoken/";
    match path.find(MARK) {
        Some(i) => format!("{}[token]", &path[..i + MARK.len()]),
        None => path.to_owned(),
    }
}

/// Steps of `files_flow.js`, all successful.
const FILE_STEPS: &[&str] = &[
    "initApp",
    "login",
    "saveFile",
    "upload",
    "downloadByUrl",
    "listing",
    "exists",
    "remove",
    "privateDeniedToAnonymous",
    "publish",
    "sendEmail",
    "logout",
];

/// Files, messaging and email through the official JS SDK
/// (`tests/conformance/files_flow.js`), against `coderunner dev`: the
/// stack of `TestApp` (the dev configuration), the emulator linked to a runner
/// serving the example app's handlers.
#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_v8_files_messaging_and_email() {
    let Some((dir, _sdk)) = sdk_ready().await else {
        return;
    };

    let stack = dev_stack().await;
    let url = stack.emulator_url().to_owned();
    let inspect = stack.inspect();

    let (result, stderr) = run_flow("files_flow.js", &url, &dir).await;
    let context = format!(
        "\nresult: {}\nnode stderr:\n{stderr}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
    assert_steps(&result, FILE_STEPS, &context);

    // The emulator's side: the message and the email, captured as the user.
    let user_id = result["facts"]["userId"].as_str().expect("facts.userId");
    let messages = inspect.messages();
    assert_eq!(messages.len(), 1, "{messages:?}{context}");
    assert_eq!(
        messages[0].message_id,
        result["facts"]["messageId"].as_str().unwrap_or_default()
    );
    assert_eq!(messages[0].channel.as_deref(), Some("conformance"));
    assert_eq!(messages[0].message, serde_json::json!({"temperature": 3}));
    assert_eq!(messages[0].headers, serde_json::json!({"city": "Oslo"}));
    assert_eq!(messages[0].subtopic.as_deref(), Some("weather.today"));
    assert_eq!(messages[0].user_id.as_deref(), Some(user_id));
    let emails = inspect.emails();
    assert_eq!(emails.len(), 1, "{emails:?}{context}");
    assert_eq!(emails[0].subject.as_deref(), Some("Conformance"));
    assert_eq!(emails[0].to, ["bob@example.com"]);
    assert_eq!(emails[0].text.as_deref(), Some("Hello from the JS SDK"));
    assert_eq!(emails[0].html.as_deref(), Some("<b>Hello</b>"));
    // The uploaded file is still in the storage; the saved one was removed.
    let listing: Value = reqwest::get(format!(
        "{url}/dev-app/dev-rest-key/files/{}",
        result["facts"]["dir"].as_str().unwrap_or_default()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let names: Vec<&str> = listing
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [result["facts"]["uploadedName"].as_str().unwrap_or_default()],
        "{listing}{context}"
    );
    stack.stop().await;
}

/// Steps of `data_flow.js`, all successful: relations and transactions.
const DATA_STEPS: &[&str] = &[
    "login",
    "createRows",
    "setRelation",
    "loadRelations",
    "findWithRelated",
    "addRelationDeclaresColumn",
    "relationPaging",
    "deleteRelation",
    "unitOfWork",
    "unitOfWorkFailure",
];

/// `Backendless.Data.of(T).setRelation/addRelation/deleteRelation/loadRelations`,
/// finds with related rows, and `new Backendless.UnitOfWork()` with an op
/// reference (committed) and with a refused third operation (nothing
/// written), as alice of the dev app.
#[tokio::test(flavor = "multi_thread")]
async fn js_sdk_v8_relations_and_transactions() {
    let Some((dir, sdk)) = sdk_ready().await else {
        return;
    };

    let stack = dev_stack().await;
    let url = stack.emulator_url().to_owned();
    let inspect = stack.inspect();

    let (result, stderr) = run_flow("data_flow.js", &url, &dir).await;
    let requests = inspect.requests();
    let context = format!(
        "\nsdk {sdk}\nresult: {}\nrequests:\n  {}\nnode stderr:\n{stderr}",
        serde_json::to_string_pretty(&result).unwrap_or_default(),
        requests
            .iter()
            .map(|r| format!("{} {} -> {}", r.method, redact(&r.path), r.status))
            .collect::<Vec<_>>()
            .join("\n  ")
    );

    assert_steps(&result, DATA_STEPS, &context);

    // The emulator's side: the script's relation and transaction requests
    // (the JS key's; the handlers' own use the CloudCode key) were alice's.
    let user_id = result["facts"]["userId"].as_str().expect("facts.userId");
    for (method, fragment) in [
        ("POST", "/post"),
        ("PUT", "/related"),
        ("DELETE", "/related"),
        ("POST", "/transaction/unit-of-work"),
    ] {
        let script: Vec<_> = requests
            .iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .filter(|r| r.key_kind == Some(KeyKind::Js))
            .collect();
        assert!(!script.is_empty(), "no {method} {fragment}{context}");
        assert!(
            script.iter().all(|r| r.user_id.as_deref() == Some(user_id)),
            "{method} {fragment} as alice{context}"
        );
    }
    // The handlers ran their transactions with the CloudCode key.
    assert!(
        requests.iter().any(|r| r.method == "POST"
            && r.path.ends_with("/transaction/unit-of-work")
            && r.key_kind == Some(KeyKind::CloudCode)),
        "the example app's afterCreate transaction{context}"
    );
    // The committed transaction's Latest_post row and post, related; the
    // failed one wrote nothing.
    let tag = result["facts"]["tag"].as_str().expect("facts.tag");
    let tx_latest = result["facts"]["txLatestId"].as_str().expect("txLatestId");
    let tx_post = result["facts"]["txPostId"].as_str().expect("txPostId");
    let row = inspect
        .rows("Latest_post")
        .into_iter()
        .find(|r| r["objectId"] == tx_latest)
        .unwrap_or_else(|| panic!("no Latest_post {tx_latest}{context}"));
    assert_eq!(row["postId"], tx_post, "{context}");
    assert_eq!(row["ownerId"], user_id, "{context}");
    let failed = format!("tx-fail {tag}");
    for table in ["Post", "Latest_post", "Audit_log"] {
        assert!(
            inspect
                .rows(table)
                .iter()
                .all(|r| r["title"] != failed.as_str() && r["action"] != failed.as_str()),
            "{table} holds a row of the failed transaction{context}"
        );
    }
    // The example app's afterCreate ran for the posts the script saved: a
    // Latest_post row for the main post, related to it by the handler's own
    // transaction.
    let post_id = result["facts"]["postId"].as_str().expect("facts.postId");
    assert!(
        inspect
            .rows("Latest_post")
            .iter()
            .filter(|r| r["postId"] == post_id)
            .count()
            >= 2,
        "the script's row and the handler's row{context}"
    );
    stack.stop().await;
}
