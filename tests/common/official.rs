//! The official Node.js CodeRunner (`backendless-coderunner` 8.0.3) as a
//! process of a test or a benchmark: installed once from
//! `tests/official/package.json` into `<target>/official-runner`, started by
//! `tests/official/start.js` (pro mode, a private `redis-server`, loopback
//! stand-ins for Consul and the API server, worker reuse on) and stopped when
//! dropped. Needs the sibling module `node` (`tests/common/node.rs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::node;

/// The version `tests/official/package.json` pins.
pub(crate) const RUNNER_VERSION: &str = "8.0.3";
/// The longest `start.js` may take to print its ready line.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// `tests/official`: the package manifest, the JS app, `start.js`, `push.js`.
pub(crate) fn official_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/official")
}

/// One install at a time (tests of one binary run in parallel).
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Installs the official runner from `tests/official/package.json` (exact
/// versions, lock without download addresses) into `<target>/official-runner`
/// unless it is there already; returns that directory.
pub(crate) fn ensure_official() -> Result<PathBuf, String> {
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = node::target_dir("official-runner");
    if node::installed_version(&dir, "backendless-coderunner").as_deref() == Some(RUNNER_VERSION) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(official_dir().join(file), dir.join(file))
            .map_err(|e| format!("cannot copy {file}: {e}"))?;
    }
    eprintln!(
        "installing backendless-coderunner@{RUNNER_VERSION} into {}",
        dir.display()
    );
    node::npm_install(&dir, &[])?;
    node::installed_version(&dir, "backendless-coderunner")
        .filter(|v| v == RUNNER_VERSION)
        .map(|_| dir.clone())
        .ok_or_else(|| format!("npm install left no backendless-coderunner {RUNNER_VERSION}"))
}

/// The official runner started by `tests/official/start.js`; stops when dropped.
pub(crate) struct Official {
    child: Child,
    /// The private `redis-server` the runner takes its tasks from.
    pub redis_port: u16,
    /// The API-server stand-in (`initAppData.url` of the tasks).
    pub api_url: String,
    /// The runner's master process, leader of its own process group (its
    /// cluster workers are its children).
    pub runner_pid: u32,
}

impl Official {
    /// Starts the runner with `start.js --quiet` (and `--compression`) and
    /// waits for its ready line; panics if it does not come in time.
    pub(crate) fn start(modules: &Path, work: &Path, compression: bool) -> Official {
        let mut cmd = node::node();
        cmd.arg(official_dir().join("start.js"))
            .arg("--modules")
            .arg(modules)
            .arg("--work")
            .arg(work)
            .arg("--quiet")
            .args(compression.then_some("--compression"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("node start.js");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(ready) = serde_json::from_str::<Value>(&line) {
                    if ready["ready"] == true {
                        let _ = tx.send(ready);
                    }
                }
            }
        });
        let mut official = Official {
            child,
            redis_port: 0,
            api_url: String::new(),
            runner_pid: 0,
        };
        // Dropping `official` on a panic stops start.js and what it started.
        let ready = rx.recv_timeout(READY_TIMEOUT).unwrap_or_else(|_| {
            panic!("the official runner was not ready within {READY_TIMEOUT:?}")
        });
        official.redis_port =
            u16::try_from(ready["redisPort"].as_u64().expect("redisPort")).unwrap();
        official.api_url = ready["apiUrl"].as_str().expect("apiUrl").to_owned();
        official.runner_pid =
            u32::try_from(ready["runnerPid"].as_u64().expect("runnerPid")).expect("a process id");
        official
    }
}

impl Drop for Official {
    fn drop(&mut self) {
        // start.js stops everything it started when its stdin closes.
        drop(self.child.stdin.take());
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // start.js did not finish its cleanup: end the runner's process
        // group (master and workers) by its id.
        if self.runner_pid != 0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.runner_pid)])
                .stderr(Stdio::null())
                .status();
        }
    }
}
