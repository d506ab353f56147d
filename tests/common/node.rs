//! Node.js and npm for the tests that drive official Backendless packages:
//! finding the tools, installing exact package versions once into the cargo
//! target directory, and running scripts with a bound on their time.
//!
//! Without Node.js/npm, or when an install fails, a test prints why and
//! passes, unless `CODERUNNER_REQUIRE_NODE=1` (as in CI), which turns every
//! such skip into a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest an `npm install` may take.
pub(crate) const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) fn require_node() -> bool {
    std::env::var("CODERUNNER_REQUIRE_NODE").is_ok_and(|v| v == "1")
}

/// Skips the test (the caller returns) or fails it when Node is required.
pub(crate) fn skip(what: &str, why: &str) {
    if require_node() {
        panic!("CODERUNNER_REQUIRE_NODE=1 but {why}");
    }
    // Straight to stderr: libtest would capture `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPING {what}: {why} (set CODERUNNER_REQUIRE_NODE=1 to fail instead)"
    );
}

/// Runs `cmd` to completion within `timeout`, returning (success, stdout, stderr).
pub(crate) fn run(mut cmd: Command, timeout: Duration) -> std::io::Result<(bool, String, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{cmd:?} did not finish within {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((
        status.success(),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// The tool's `--version`, if it runs.
pub(crate) fn tool_version(tool: &str) -> Option<String> {
    let mut cmd = Command::new(tool);
    cmd.arg("--version");
    match run(cmd, Duration::from_secs(30)) {
        Ok((true, out, _)) => Some(out.trim().to_owned()),
        _ => None,
    }
}

/// `<target>/<name>`, next to `CARGO_TARGET_TMPDIR` (`<target>/tmp`).
pub(crate) fn target_dir(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join(name)
}

/// The version of `package` installed in `dir`, if any.
pub(crate) fn installed_version(dir: &Path, package: &str) -> Option<String> {
    let manifest = dir.join("node_modules").join(package).join("package.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
    Some(json.get("version")?.as_str()?.to_owned())
}

/// `npm install` in `dir` with `args` (package specs, or none to install
/// the `package.json` there); `Err` says why it failed.
pub(crate) fn npm_install(dir: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("npm");
    cmd.current_dir(dir).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--no-progress",
        "--loglevel=error",
        // Fail within ~30 s, not minutes, when the registry is unreachable.
        "--fetch-retries=1",
        "--fetch-retry-mintimeout=2000",
        "--fetch-retry-maxtimeout=10000",
    ]);
    cmd.args(args);
    match run(cmd, INSTALL_TIMEOUT) {
        Ok((true, _, _)) => Ok(()),
        Ok((false, out, err)) => Err(format!("npm install {args:?} failed:\n{out}\n{err}")),
        Err(e) => Err(format!("npm install {args:?} failed: {e}")),
    }
}

/// A `Command` for `node` that only talks to loopback: no proxy may reroute
/// a script's requests.
pub(crate) fn node() -> Command {
    let mut cmd = Command::new("node");
    cmd.env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1")
        .env("NODE_OPTIONS", "");
    cmd
}
