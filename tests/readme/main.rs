//! The README's walkthrough, run as a new user would: `coderunner dev` in the
//! background, then every `sh` block with bash and curl, each reply compared
//! with the `json` block shown after it.
//!
//! In the shown replies, `"…"` matches any value, `"$NAME"` matches the value
//! a previous block stored in the shell variable `NAME`, objects match when
//! every key shown matches (replies may carry more), arrays match element by
//! element.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const README: &str = include_str!("../../README.md");

struct Step {
    script: String,
    expected: Option<Value>,
}

/// The `sh` blocks of the walkthrough section, each with the `json` block
/// that follows it, if any.
fn walkthrough() -> Vec<Step> {
    let start = README
        .find("## Walkthrough")
        .expect("the README has a walkthrough");
    let section = &README[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = section[..end].lines();
    while let Some(line) = lines.next() {
        let kind = match line.trim() {
            "```sh" => "sh",
            "```json" => "json",
            _ => continue,
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let body = body.join("\n");
        if kind == "sh" {
            steps.push(Step {
                script: body,
                expected: None,
            });
        } else {
            let step = steps.last_mut().expect("a json block follows a command");
            step.expected = Some(
                serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("bad JSON in the README: {e}\n{body}")),
            );
        }
    }
    steps
}

fn matches(
    expected: &Value,
    actual: &Value,
    vars: &BTreeMap<String, String>,
    path: &str,
) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(e), _) if e == "…" => Ok(()),
        (Value::String(e), Value::String(a)) if e.starts_with('$') => {
            let var = vars
                .get(&e[1..])
                .ok_or_else(|| format!("{path}: no variable {e}"))?;
            if var == a {
                Ok(())
            } else {
                Err(format!("{path}: expected {e} = {var}, got {a}"))
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let got = a
                    .get(k)
                    .ok_or_else(|| format!("{path}.{k}: missing in {actual}"))?;
                matches(v, got, vars, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} items, got {}: {actual}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                matches(ev, av, vars, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, got {actual}")),
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Kills `coderunner dev` when the test ends, pass or fail.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_two_commands_are_near_the_top() {
    let head: String = README.lines().take(40).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo run -- dev"), "the run command");
    assert!(head.contains("cargo test"), "the test command");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim().starts_with("cargo test")),
        ".ci/run runs the README's test command"
    );
}

#[test]
fn the_walkthrough_gives_the_results_it_shows() {
    walk_through(&[]);
}

/// The same walkthrough with the emulator handing tasks to the runner
/// through Redis (the runner registered as the app's debug runner), as a
/// Backendless server does: every reply must be the same.
#[test]
fn the_walkthrough_gives_the_same_results_through_redis() {
    walk_through(&["--transport", "redis"]);
}

fn walk_through(dev_args: &[&str]) {
    if !have("bash") || !have("curl") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have bash and curl for the README walkthrough"
        );
        eprintln!("SKIPPED: the README walkthrough needs bash and curl");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_coderunner"))
        .args([
            "dev",
            "--emulator-listen",
            "127.0.0.1:0",
            "--runner-listen",
            "127.0.0.1:0",
        ])
        .args(dev_args)
        .env_remove("CODERUNNER_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("coderunner dev starts");
    let stdout = child.stdout.take().unwrap();
    let dev = Dev(child);
    // Read the banner for the emulator's URL, and keep draining stdout so
    // that the child never writes into a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.trim().strip_prefix("emulator (Backendless API)") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let emulator = rx.recv_timeout(std::time::Duration::from_secs(60)).ok();
    let emulator = emulator.expect("coderunner dev prints the emulator's URL");

    let steps = walkthrough();
    assert!(steps.len() >= 6, "the walkthrough has its steps");
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for step in steps {
        let mut script = String::from("set -e\n");
        for (k, v) in &vars {
            script.push_str(&format!("{k}='{v}'\n"));
        }
        script.push_str(&step.script.replace("http://127.0.0.1:8100", &emulator));
        script.push('\n');
        let assigned: Vec<String> = step
            .script
            .lines()
            .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim()))
            .filter(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
            .map(str::to_owned)
            .collect();
        for name in &assigned {
            script.push_str(&format!(
                "printf '\\n__VAR__ %s=%s\\n' {name} \"${name}\"\n"
            ));
        }
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "step failed ({}):\n{}\nstdout: {}\nstderr: {}",
            out.status,
            step.script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut printed = String::new();
        for line in stdout.lines() {
            match line
                .strip_prefix("__VAR__ ")
                .and_then(|l| l.split_once('='))
            {
                Some((k, v)) => {
                    if k.ends_with("_TOKEN") || k.ends_with("_ID") {
                        assert!(
                            !v.is_empty() && !v.contains('{'),
                            "{k} was not extracted: {v}"
                        );
                    }
                    vars.insert(k.to_owned(), v.to_owned());
                }
                None => {
                    printed.push_str(line);
                    printed.push('\n');
                }
            }
        }
        if let Some(expected) = step.expected {
            let actual: Value = serde_json::from_str(printed.trim()).unwrap_or_else(|e| {
                panic!("step printed no JSON ({e}):\n{}\n{printed}", step.script)
            });
            if let Err(diff) = matches(&expected, &actual, &vars, "reply") {
                panic!(
                    "the README shows another reply for\n{}\n{diff}",
                    step.script
                );
            }
        }
    }
    drop(dev);
}
