//! Tasks per second and memory through Redis: coderunner (the release
//! binary, `coderunner serve`) against the unmodified official Node.js
//! CodeRunner (`backendless-coderunner` 8.0.3, pro mode, worker reuse on),
//! side by side in one run.
//!
//! Run (docs/benchmarks.md):
//! `cargo build --release --bin coderunner && cargo bench --bench redis_transport -- [tasks] [in_flight] [rounds]`
//!
//! Each runner takes its tasks from a private `redis-server` on loopback
//! (coderunner's is started here, the official runner's by
//! `tests/official/start.js`). The same driver below pushes the same task to
//! each: the `beforeCreate` case of `tests/official/cases.json` (arguments
//! byte-encoded, as the server sends them), on `Order` for the official app
//! and on `Post` for the example app; both handlers trim the title. It keeps
//! `in_flight` tasks outstanding (`RPUSH CODE_RUNNER_DRIVER`), takes the
//! replies with one `PSUBSCRIBE`, and pushes the next task when a task's
//! first reply arrives. Rounds alternate between the runners; the figures
//! are the medians of the rounds. Memory is the resident set (`VmRSS`) of
//! the runner's process tree (the official master and its workers), CPU the
//! tree's user + system time, both read from `/proc`.

#[expect(dead_code, reason = "the skip helpers are for tests")]
#[path = "../tests/common/node.rs"]
mod node;
#[path = "../tests/common/official.rs"]
mod official;
#[expect(dead_code, reason = "only the private redis-server is used here")]
#[path = "../tests/redis/support.rs"]
mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use official::{Official, ensure_official, official_dir};
use serde_json::Value;
use support::PrivateRedis;

/// The task list both runners take tasks from.
const QUEUE: &str = "CODE_RUNNER_DRIVER";
/// Every reply channel starts with this (then the round, then the task).
const CHANNEL_PREFIX: &str = "BENCH:RESP:";
/// Tasks per runner before the first round, not measured (JIT, worker cache).
const WARM_UP_TASKS: usize = 500;
/// The longest the driver waits for any reply before it gives up.
const STALL: Duration = Duration::from_secs(30);
/// How long the driver keeps counting copies of replies after the last task.
const TRAILING_COPIES: Duration = Duration::from_millis(300);
/// How often memory is sampled during a round.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

struct Args {
    tasks: usize,
    in_flight: usize,
    rounds: usize,
}

impl Args {
    /// `[tasks] [in_flight] [rounds]`; cargo's own `--bench` is ignored.
    fn parse() -> Result<Args, String> {
        let numbers: Vec<usize> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .map(|a| a.parse().map_err(|_| format!("not a number: {a}")))
            .collect::<Result<_, _>>()?;
        let at = |i: usize, default: usize| numbers.get(i).copied().unwrap_or(default).max(1);
        Ok(Args {
            tasks: at(0, 3000),
            in_flight: at(1, 32),
            rounds: at(2, 3),
        })
    }
}

// ---------------------------------------------------------------- /proc

/// `(ppid, utime + stime + cutime + cstime)` of a process, in clock ticks.
/// A live process's own time plus that of its children it has reaped, so a
/// tree's sum survives workers being replaced.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split(' ').collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks = (11..=14)
        .map(|i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum::<Option<u64>>()?;
    Some((ppid, ticks))
}

fn command_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default()
}

/// The children of `pid`: those forked by any of its threads.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|thread| std::fs::read_to_string(thread.ok()?.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// `root` and every live descendant.
fn process_tree(root: u32) -> Vec<u32> {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let more = children(tree[i]);
        tree.extend(more);
        i += 1;
    }
    tree
}

/// The child of `parent` whose command is `name`.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    process_tree(parent).into_iter().skip(1).find(|pid| {
        stat(*pid).is_some_and(|(ppid, _)| ppid == parent) && command_name(*pid) == name
    })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn tree_rss_kib(root: u32) -> u64 {
    process_tree(root).into_iter().map(rss_kib).sum()
}

fn tree_ticks(root: u32) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| Some(stat(pid)?.1))
        .sum()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Samples a process tree's resident set on a thread until stopped.
struct RssSampler {
    stop: Arc<AtomicBool>,
    /// The peak in KiB, and every process seen in the tree.
    thread: std::thread::JoinHandle<(u64, HashSet<u32>)>,
}

impl RssSampler {
    fn start(root: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut peak, mut seen) = (0, HashSet::new());
            loop {
                let tree = process_tree(root);
                peak = tree.iter().map(|pid| rss_kib(*pid)).sum::<u64>().max(peak);
                seen.extend(tree);
                if flag.load(Ordering::Relaxed) {
                    return (peak, seen);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        RssSampler { stop, thread }
    }

    /// The peak in KiB, and how many processes the tree had over time.
    fn finish(self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_or((0, 0), |(peak, seen)| (peak, seen.len()))
    }
}

// ---------------------------------------------------------------- coderunner

/// `target/release/coderunner serve` on the Redis transport; stopped
/// (SIGTERM, then SIGKILL after 5 s) when dropped.
struct Coderunner {
    child: Child,
}

impl Coderunner {
    fn start(binary: &Path, redis_url: &str) -> Result<Coderunner, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut cmd = Command::new(binary);
        cmd.arg("serve");
        // Only the settings below and the compiled-in defaults.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CODERUNNER") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .env("CODERUNNER__TRANSPORT__REDIS", "true")
            .env("CODERUNNER__TRANSPORT__HTTP", "false")
            .env("CODERUNNER__REDIS__URL", redis_url)
            .env("CODERUNNER__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("CODERUNNER__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let runner = Coderunner { child };
        let ready = format!("http://127.0.0.1:{port}/readyz");
        for _ in 0..400 {
            if http_status(&ready) == Some(200) {
                return Ok(runner);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err("coderunner did not become ready within 10 s".into())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The status of a plain HTTP/1.0 GET on loopback, without a client library.
fn http_status(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Drop for Coderunner {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- tasks

/// The `beforeCreate` case of `tests/official/cases.json`, for one runner.
#[derive(Clone)]
struct TaskShape {
    template: Value,
}

impl TaskShape {
    /// The case as it is, on `target` with `provider`, its `initAppData.url`
    /// set to `api_url`.
    fn new(target: &str, provider: &str, api_url: &str) -> Result<TaskShape, String> {
        let path = official_dir().join("cases.json");
        let cases: Vec<Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| format!("cannot read {}", path.display()))?;
        let mut task = cases
            .into_iter()
            .find(|c| c["name"] == "beforeCreate")
            .map(|mut c| c["task"].take())
            .ok_or("cases.json has no beforeCreate case")?;
        task["target"] = Value::from(target);
        task["provider"] = Value::from(provider);
        task["initAppData"]["url"] = Value::from(api_url);
        task["arguments"][1]["___class"] = Value::from(target);
        // Byte-encoded, as the server sends them.
        let text = serde_json::to_vec(&task["arguments"]).map_err(|e| e.to_string())?;
        task["arguments"] = text.into_iter().map(Value::from).collect();
        Ok(TaskShape { template: task })
    }

    /// The bytes pushed for task `index` of `round`.
    fn payload(&self, round: &str, index: usize) -> Vec<u8> {
        let mut task = self.template.clone();
        task["id"] = Value::from(format!("bench-{round}-{index}"));
        task["responseChannelId"] = Value::from(format!("{CHANNEL_PREFIX}{round}:{index}"));
        task["timestamp"] = Value::from(now_ms());
        serde_json::to_vec(&task).expect("a task serializes")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}

/// Whether a reply is the success the handlers give: no exception, and the
/// title trimmed.
fn reply_is_right(reply: &[u8]) -> bool {
    let Ok(reply) = serde_json::from_slice::<Value>(reply) else {
        return false;
    };
    let Some(bytes) = reply["arguments"].as_array() else {
        return false;
    };
    let bytes: Vec<u8> = bytes
        .iter()
        .filter_map(|b| u8::try_from(b.as_u64()?).ok())
        .collect();
    let arguments: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    reply["exception"].is_null() && arguments[1]["title"] == "Hello"
}

// ---------------------------------------------------------------- the driver

/// One runner as the driver sees it.
struct Target {
    name: &'static str,
    redis_url: String,
    /// The runner's root process (its tree is measured).
    pid: u32,
    /// The runner's `redis-server`.
    redis_pid: u32,
    /// The official runner's API stand-in (`start.js`), which takes its log
    /// PUTs; coderunner sends none for these tasks.
    stand_in_pid: Option<u32>,
    shape: TaskShape,
}

/// The figures of one round.
#[derive(Clone, Copy, Default)]
struct Round {
    tasks_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_peak_mib: f64,
    /// The runner's CPU time per 1000 tasks, in seconds.
    cpu_s: f64,
    /// The runner's redis-server's CPU time per 1000 tasks, in seconds.
    redis_cpu_s: f64,
    /// The API stand-in's CPU time per 1000 tasks, in seconds (official only).
    stand_in_cpu_s: f64,
    /// The driver's (this process's) CPU time per 1000 tasks, in seconds.
    driver_cpu_s: f64,
    /// Messages published per task.
    copies: f64,
    /// Processes seen in the runner's tree during the round (worker reuse
    /// keeps the official runner's at its master and 4 workers).
    processes: f64,
}

/// Pushes `tasks` tasks to `target`, `in_flight` at a time, and measures.
async fn drive(
    target: &Target,
    round: &str,
    tasks: usize,
    in_flight: usize,
) -> Result<Round, String> {
    let payloads: Arc<Vec<Vec<u8>>> =
        Arc::new((0..tasks).map(|i| target.shape.payload(round, i)).collect());
    let client = redis::Client::open(target.redis_url.as_str()).map_err(|e| e.to_string())?;
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    let channel_prefix = format!("{CHANNEL_PREFIX}{round}:");
    pubsub
        .psubscribe(format!("{channel_prefix}*"))
        .await
        .map_err(|e| e.to_string())?;
    let mut replies = pubsub.into_on_message();
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;

    let ticks = clock_ticks_per_second();
    let me = std::process::id();
    let ticks_of = |pid: Option<u32>| pid.and_then(stat).map_or(0, |(_, ticks)| ticks);
    // CPU ticks of the runner's tree, its redis-server, the API stand-in, the driver.
    let cpu = || {
        [
            tree_ticks(target.pid),
            tree_ticks(target.redis_pid),
            ticks_of(target.stand_in_pid),
            ticks_of(Some(me)),
        ]
    };
    let cpu_before = cpu();
    let sampler = RssSampler::start(target.pid);

    // The pusher RPUSHes the tasks it is handed, several in one command
    // when several are waiting, and notes when each one left.
    let started = Instant::now();
    let sent_ns: Arc<Vec<AtomicU64>> = Arc::new((0..tasks).map(|_| AtomicU64::new(0)).collect());
    let (push, mut to_push) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let pusher = {
        let (payloads, sent_ns) = (Arc::clone(&payloads), Arc::clone(&sent_ns));
        tokio::spawn(async move {
            while let Some(first) = to_push.recv().await {
                let mut batch = vec![first];
                while let Ok(next) = to_push.try_recv() {
                    batch.push(next);
                }
                let now = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let mut rpush = redis::cmd("RPUSH");
                rpush.arg(QUEUE);
                for &i in &batch {
                    sent_ns[i].store(now, Ordering::Relaxed);
                    rpush.arg(&payloads[i]);
                }
                rpush
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(|e| format!("RPUSH failed: {e}"))?;
            }
            Ok::<(), String>(())
        })
    };
    let mut next = in_flight.min(tasks);
    for i in 0..next {
        push.send(i).map_err(|_| "the pusher stopped")?;
    }
    let mut answered = vec![false; tasks];
    let mut latencies_ns = Vec::with_capacity(tasks);
    let (mut done, mut copies, mut wrong) = (0, 0usize, 0usize);
    while done < tasks {
        let message = match tokio::time::timeout(STALL, replies.next()).await {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the reply subscription closed".into()),
            Err(_) => {
                return Err(format!(
                    "{}: no reply for {STALL:?} ({done} of {tasks} answered)",
                    target.name
                ));
            }
        };
        let index = message
            .get_channel_name()
            .strip_prefix(&channel_prefix)
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < tasks);
        let Some(index) = index else { continue };
        copies += 1;
        if answered[index] {
            continue;
        }
        answered[index] = true;
        done += 1;
        let now = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        latencies_ns.push(now.saturating_sub(sent_ns[index].load(Ordering::Relaxed)));
        // Check every reply of the first 100 and one in 50 after that.
        if (index < 100 || index % 50 == 0) && !reply_is_right(message.get_payload_bytes()) {
            wrong += 1;
        }
        if next < tasks {
            push.send(next).map_err(|_| "the pusher stopped")?;
            next += 1;
        }
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu();
    let (rss_peak_kib, processes) = sampler.finish();
    drop(push);
    pusher.await.map_err(|e| e.to_string())??;
    // Late copies (the official runner publishes every reply twice).
    let until = Instant::now() + TRAILING_COPIES;
    while let Ok(Some(_)) =
        tokio::time::timeout_at(tokio::time::Instant::from_std(until), replies.next()).await
    {
        copies += 1;
    }
    if wrong > 0 {
        return Err(format!(
            "{}: {wrong} checked replies were wrong",
            target.name
        ));
    }

    latencies_ns.sort_unstable();
    let percentile = |p: f64| {
        let i = ((latencies_ns.len() as f64 * p).ceil() as usize).clamp(1, latencies_ns.len());
        latencies_ns[i - 1] as f64 / 1e6
    };
    let per_1000 = |i: usize| {
        cpu_after[i].saturating_sub(cpu_before[i]) as f64 / ticks / tasks as f64 * 1000.0
    };
    Ok(Round {
        tasks_per_s: tasks as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        rss_peak_mib: rss_peak_kib as f64 / 1024.0,
        cpu_s: per_1000(0),
        redis_cpu_s: per_1000(1),
        stand_in_cpu_s: per_1000(2),
        driver_cpu_s: per_1000(3),
        copies: copies as f64 / tasks as f64,
        processes: processes as f64,
    })
}

// ---------------------------------------------------------------- the report

/// One figure of a round.
type Figure = fn(&Round) -> f64;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn report(args: &Args, idle: [f64; 2], ours: &[Round], theirs: &[Round]) {
    println!();
    println!("round  coderunner tasks/s  official tasks/s   ratio");
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        println!(
            "{:<5}  {:>18.0}  {:>16.0}  {:>6.1}x",
            i + 1,
            o.tasks_per_s,
            t.tasks_per_s,
            o.tasks_per_s / t.tasks_per_s
        );
    }
    let m = |rounds: &[Round], f: Figure| median(rounds.iter().map(f).collect());
    println!();
    println!(
        "median of {} rounds                 coderunner     official        ratio",
        args.rounds
    );
    let rows: [(&str, Figure, usize); 9] = [
        ("tasks/s", |r| r.tasks_per_s, 0),
        ("latency p50 (ms)", |r| r.p50_ms, 2),
        ("latency p99 (ms)", |r| r.p99_ms, 2),
        ("peak RSS of the runner (MiB)", |r| r.rss_peak_mib, 1),
        ("runner CPU s / 1000 tasks", |r| r.cpu_s, 3),
        ("redis-server CPU s / 1000 tasks", |r| r.redis_cpu_s, 3),
        ("driver CPU s / 1000 tasks", |r| r.driver_cpu_s, 3),
        ("messages published per task", |r| r.copies, 2),
        ("processes in the runner's tree", |r| r.processes, 0),
    ];
    for (i, (label, f, decimals)) in rows.into_iter().enumerate() {
        let (o, t) = (m(ours, f), m(theirs, f));
        let ratio = if i == 0 { o / t } else { t / o };
        println!("{label:<34} {o:>11.decimals$} {t:>12.decimals$} {ratio:>11.2}x");
    }
    println!(
        "{:<34} {:>11.1} {:>12.1} {:>11.2}x",
        "idle RSS before the rounds (MiB)",
        idle[0],
        idle[1],
        idle[1] / idle[0]
    );
    println!("(ratio: coderunner/official for tasks/s, official/coderunner for the rest)");
    println!(
        "not counted above: the official runner's API stand-in (start.js, which answers its \
         per-task log PUT) used {:.3} CPU s / 1000 tasks",
        m(theirs, |r| r.stand_in_cpu_s)
    );
    let throughput = median(
        ours.iter()
            .zip(theirs)
            .map(|(o, t)| o.tasks_per_s / t.tasks_per_s)
            .collect(),
    );
    let memory = m(ours, |r| r.rss_peak_mib) / m(theirs, |r| r.rss_peak_mib);
    println!();
    println!(
        "goal: at least 20x the official throughput: {throughput:.1}x, median of the paired \
         rounds' ratios ({})",
        if throughput >= 20.0 { "met" } else { "not met" }
    );
    println!(
        "goal: at most 1/5 of the official memory: {memory:.3} of it, 1/{:.0} ({})",
        1.0 / memory,
        if memory <= 0.2 { "met" } else { "not met" }
    );
}

// ---------------------------------------------------------------- main

/// `<target>/release/coderunner`; a warning if a source file is newer.
fn coderunner_binary() -> Result<PathBuf, String> {
    let binary = node::target_dir("release").join("coderunner");
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .map_err(|_| {
            format!(
                "{} is missing: build it first with `cargo build --release --bin coderunner`",
                binary.display()
            )
        })?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if ["src", "handlers", "config"]
        .iter()
        .any(|dir| newer_than(&root.join(dir), built))
    {
        eprintln!(
            "warning: {} is older than the sources; `cargo build --release --bin coderunner` \
             to measure them",
            binary.display()
        );
    }
    Ok(binary)
}

/// Whether a file under `dir` was modified after `time`.
fn newer_than(dir: &Path, time: std::time::SystemTime) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                newer_than(&path, time)
            } else {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified > time)
            }
        })
}

async fn run(args: &Args) -> Result<(), String> {
    let binary = coderunner_binary()?;
    if node::tool_version("node").is_none() || node::tool_version("npm").is_none() {
        return Err("`node` and `npm` are needed to run the official runner".into());
    }
    let modules = ensure_official()?.join("node_modules");

    let redis = PrivateRedis::start();
    let coderunner = Coderunner::start(&binary, &redis.url())?;
    let ours = Target {
        name: "coderunner",
        redis_url: redis.url(),
        pid: coderunner.pid(),
        redis_pid: child_named(std::process::id(), "redis-server")
            .ok_or("cannot find coderunner's redis-server")?,
        stand_in_pid: None,
        shape: TaskShape::new("Post", "handlers/persistence/post.js", "http://127.0.0.1:9")?,
    };

    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let official = Official::start(&modules, work.path(), false);
    // start.js is the parent of both the runner and its redis-server.
    let start_js = stat(official.runner_pid)
        .map(|(ppid, _)| ppid)
        .ok_or("the official runner is gone")?;
    let theirs = Target {
        name: "official",
        redis_url: format!("redis://127.0.0.1:{}", official.redis_port),
        pid: official.runner_pid,
        redis_pid: child_named(start_js, "redis-server")
            .ok_or("cannot find the official runner's redis-server")?,
        stand_in_pid: Some(start_js),
        shape: TaskShape::new("Order", "handlers/persistence/order.js", &official.api_url)?,
    };

    println!(
        "redis transport benchmark: {} tasks per round, {} in flight, {} interleaved rounds \
         after {WARM_UP_TASKS} warm-up tasks each; loopback, {} CPUs",
        args.tasks,
        args.in_flight,
        args.rounds,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "coderunner: {} (pid {}); official: backendless-coderunner {} under node {} \
         (master pid {}, 4 workers, worker cache limit 4)",
        binary.display(),
        ours.pid,
        official::RUNNER_VERSION,
        node::tool_version("node").unwrap_or_default(),
        theirs.pid
    );
    let idle = [
        tree_rss_kib(ours.pid) as f64 / 1024.0,
        tree_rss_kib(theirs.pid) as f64 / 1024.0,
    ];
    drive(&ours, "warm", WARM_UP_TASKS, args.in_flight).await?;
    drive(&theirs, "warm", WARM_UP_TASKS, args.in_flight).await?;

    let (mut our_rounds, mut their_rounds) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        for (target, rounds) in [(&ours, &mut our_rounds), (&theirs, &mut their_rounds)] {
            let r = drive(target, &round.to_string(), args.tasks, args.in_flight).await?;
            eprintln!(
                "round {round} {:<10} {:>8.0} tasks/s  p50 {:.2} ms  p99 {:.2} ms  peak RSS {:.1} MiB",
                target.name, r.tasks_per_s, r.p50_ms, r.p99_ms, r.rss_peak_mib
            );
            rounds.push(r);
        }
    }
    report(args, idle, &our_rounds, &their_rounds);
    // Stopped in this order: the official runner, coderunner, its Redis.
    drop(official);
    drop(coderunner);
    drop(redis);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("usage: redis_transport [tasks] [in_flight] [rounds]: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Everything `run` started is dropped, and so stopped, when it returns,
    // fails, panics or is abandoned on ctrl-c.
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redis_transport: {e}");
            ExitCode::FAILURE
        }
    }
}
