//! Dispatch throughput, out of process: `coderunner serve` (the release
//! binary, default configuration) against a bare axum server doing only the
//! same signature check and JSON parse, each in its own process, each driven
//! by a separate light load-generator process, in interleaved rounds.
//!
//! ```sh
//! cargo bench --bench serve                      # 50,000 tasks per round, 32 connections, 5 rounds
//! cargo bench --bench serve -- 100000 32 7       # tasks per round, connections, rounds
//! cargo bench --bench serve -- callgrind 5000    # instructions per task (valgrind)
//! cargo bench -p coderunner --no-default-features --features emulator --bench serve   # both on the system allocator
//! ```
//!
//! Every figure is printed next to the bare server's from the same run.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::{Figures, Load, ServerProcess};

// The bare server is this program re-executed, so it allocates with what
// the `coderunner` binary does: jemalloc with the default features, the
// system's allocator without them (`cargo bench -p coderunner
// --no-default-features --features emulator --bench serve` builds both
// so; without `-p`, the example app's crate turns the default features
// back on).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One server's figures in one round.
#[derive(Clone, Copy)]
struct Round {
    load: Figures,
    /// Server CPU seconds per 100,000 tasks.
    cpu_per_100k: f64,
}

fn round(server: &ServerProcess, tasks: u64, connections: usize, ticks: f64) -> Round {
    let before = support::cpu_seconds(server.pid(), ticks);
    let load = support::run_load(
        &Load {
            addr: server.addr,
            tasks,
            connections,
            presign: true,
            progress_every: 0,
            scrape_ms: 0,
        },
        |_| {},
    );
    let used = support::cpu_seconds(server.pid(), ticks) - before;
    Round {
        load,
        cpu_per_100k: used * 100_000.0 / tasks as f64,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    support::run_helper_if_asked();
    let args = support::bench_args();
    if args.first().map(String::as_str) == Some("callgrind") {
        let tasks = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
        return callgrind(tasks);
    }
    let tasks: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let connections: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let ticks = support::clock_ticks();
    let dir = support::scratch_dir("bench-serve");

    let bare = support::start_bare(&[]);
    let runner = support::start_coderunner(&dir, &[]);
    // Warm-up: connections, allocator arenas, the seen-id set's first pages.
    round(&bare, 5_000, connections, ticks);
    round(&runner, 5_000, connections, ticks);

    println!(
        "serve benchmark: {tasks} signed beforeCreate tasks per round, {connections} connections, \
         loopback, {rounds} interleaved rounds; each server and the load generator in its own process"
    );
    println!(
        "{:<6} {:>12} {:>12} {:>7}   {:>16} {:>16}",
        "round", "bare task/s", "runner task/s", "ratio", "bare cpu s/100k", "runner cpu s/100k"
    );
    let (mut b_rounds, mut r_rounds, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 1..=rounds {
        // Alternate which goes first, so drift in the machine's speed
        // favours neither.
        let (b, r) = if i % 2 == 1 {
            let b = round(&bare, tasks, connections, ticks);
            (b, round(&runner, tasks, connections, ticks))
        } else {
            let r = round(&runner, tasks, connections, ticks);
            (round(&bare, tasks, connections, ticks), r)
        };
        let ratio = r.load.per_second / b.load.per_second;
        println!(
            "{i:<6} {:>12.0} {:>12.0} {:>7.2}   {:>16.2} {:>16.2}",
            b.load.per_second, r.load.per_second, ratio, b.cpu_per_100k, r.cpu_per_100k
        );
        b_rounds.push(b);
        r_rounds.push(r);
        ratios.push(ratio);
    }

    let med = |rounds: &[Round], f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "median over rounds", "bare axum", "coderunner", "ratio"
    );
    let row = |label: &str, b: f64, r: f64, decimals: usize| {
        println!(
            "{label:<34} {b:>12.decimals$} {r:>12.decimals$} {:>8.2}",
            r / b
        );
    };
    row(
        "throughput, tasks/s",
        med(&b_rounds, |r| r.load.per_second),
        med(&r_rounds, |r| r.load.per_second),
        0,
    );
    row(
        "latency p50, ms",
        med(&b_rounds, |r| r.load.p50.as_secs_f64() * 1e3),
        med(&r_rounds, |r| r.load.p50.as_secs_f64() * 1e3),
        2,
    );
    row(
        "latency p99, ms",
        med(&b_rounds, |r| r.load.p99.as_secs_f64() * 1e3),
        med(&r_rounds, |r| r.load.p99.as_secs_f64() * 1e3),
        2,
    );
    row(
        "server CPU s per 100k tasks",
        med(&b_rounds, |r| r.cpu_per_100k),
        med(&r_rounds, |r| r.cpu_per_100k),
        2,
    );
    let (_, b_peak) = support::memory_kib(bare.pid());
    let (_, r_peak) = support::memory_kib(runner.pid());
    row(
        "server peak RSS (VmHWM), MiB",
        support::mib(b_peak),
        support::mib(r_peak),
        1,
    );
    let gen_cpu = median(
        b_rounds
            .iter()
            .chain(&r_rounds)
            .map(|r| r.load.generator_cpu * 100_000.0 / tasks as f64)
            .collect(),
    );
    println!(
        "throughput ratio, median of the paired rounds: {:.2}   (load generator: {gen_cpu:.2} CPU s per 100k tasks, pre-signing included)",
        median(ratios)
    );
}

/// Instructions per task of each server under `valgrind --tool=callgrind`:
/// counters zeroed after a warm-up, `tasks` tasks over 4 connections, then
/// dumped. Repeatable where timings are not.
fn callgrind(tasks: u64) {
    let dir = support::scratch_dir("bench-callgrind");
    for old in std::fs::read_dir(&dir).expect("scratch dir").flatten() {
        let _ = std::fs::remove_file(old.path());
    }
    println!("callgrind: {tasks} tasks over 4 connections, counted after a 500-task warm-up");
    let mut counts = Vec::new();
    for name in ["bare", "coderunner"] {
        let out = format!("--callgrind-out-file={}/{name}.%p", dir.display());
        let wrapper = ["valgrind", "--tool=callgrind", "--quiet", &out];
        let server = if name == "bare" {
            support::start_bare(&wrapper)
        } else {
            support::start_coderunner(&dir, &wrapper)
        };
        let load = |n| Load {
            addr: server.addr,
            tasks: n,
            connections: 4,
            presign: true,
            progress_every: 0,
            scrape_ms: 0,
        };
        support::run_load(&load(500), |_| {});
        control(&["-z", &server.pid().to_string()]);
        support::run_load(&load(tasks), |_| {});
        control(&["-d", &server.pid().to_string()]);
        let total = dumped_instructions(&dir, name, server.pid());
        let per_task = total as f64 / tasks as f64;
        println!("{:<12} {per_task:>10.0} instructions per task", server.name);
        counts.push(per_task);
    }
    println!(
        "coderunner / bare: {:.2} ({:+.0} instructions per task)",
        counts[1] / counts[0],
        counts[1] - counts[0]
    );
}

fn control(args: &[&str]) {
    let status = Command::new("callgrind_control")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("callgrind_control runs");
    assert!(status.success(), "callgrind_control {args:?}");
}

/// The instruction total of the dump `callgrind_control -d` wrote.
fn dumped_instructions(dir: &Path, name: &str, pid: u32) -> u64 {
    let prefix = format!("{name}.{pid}.");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let dump = std::fs::read_dir(dir)
            .expect("scratch dir")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix));
        if let Some(dump) = dump {
            let text = std::fs::read_to_string(dump.path()).expect("dump");
            if let Some(total) = text.lines().find_map(|l| {
                l.strip_prefix("summary: ")
                    .or_else(|| l.strip_prefix("totals: "))
            }) {
                return total.trim().parse().expect("instruction count");
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no callgrind dump for {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
