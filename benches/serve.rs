//! Dispatch throughput, out of process: `coderunner serve` (the release
//! binary, default configuration) against a bare axum server doing only the
//! same signature check and JSON parse, each in its own process, each driven
//! by a separate light load-generator process, in interleaved rounds.
//!
//! ```sh
//! cargo bench --bench serve                      # 50,000 tasks per round, 32 connections, 5 rounds
//! cargo bench --bench serve -- 100000 32 7       # tasks per round, connections, rounds
//! cargo bench --bench serve -- 100000 32 7 one-cpu   # each server pinned to CPU 0, the load to CPU 1
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
    let one_cpu = args.get(3).map(String::as_str) == Some("one-cpu");
    let ticks = support::clock_ticks();
    let dir = support::scratch_dir("bench-serve");

    // `one-cpu`: each server on CPU 0 (as in a container limited to one
    // CPU: its runtime sees one), this program and so the load generator
    // on CPU 1.
    let server_cpu: &[&str] = if one_cpu {
        pin_self_to_cpu_1();
        &["taskset", "-c", "0"]
    } else {
        &[]
    };
    let bare = support::start_bare(server_cpu);
    let runner = support::start_coderunner(&dir, server_cpu);
    // Warm-up: connections, allocator arenas, the seen-id set's first pages.
    round(&bare, 5_000, connections, ticks);
    round(&runner, 5_000, connections, ticks);

    println!(
        "serve benchmark: {tasks} signed beforeCreate tasks per round, {connections} connections, \
         loopback, {rounds} interleaved rounds; each server and the load generator in its own process{}",
        if one_cpu {
            "; each server on CPU 0, the load generator on CPU 1"
        } else {
            ""
        }
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

/// Moves this process to CPU 1, so that the load generators it starts run
/// there.
fn pin_self_to_cpu_1() {
    let status = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("taskset runs (util-linux)");
    assert!(
        status.success(),
        "taskset could not move the benchmark to CPU 1"
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
    let mut counts: Vec<(f64, Option<f64>)> = Vec::new();
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
        let dump = dumped(&dir, name, server.pid());
        let per_task = |n: u64| n as f64 / tasks as f64;
        let (total, sha) = (per_task(dump.total), dump.sha256.map(per_task));
        match sha {
            Some(sha) => println!(
                "{:<12} {total:>10.0} instructions per task, {sha:.0} of them in software SHA-256",
                server.name
            ),
            None => println!("{:<12} {total:>10.0} instructions per task", server.name),
        }
        counts.push((total, sha));
    }
    let [(bare, bare_sha), (runner, runner_sha)] = [counts[0], counts[1]];
    println!(
        "coderunner / bare: {:.2} ({:+.0} instructions per task)",
        runner / bare,
        runner - bare
    );
    // Valgrind hides the CPU's SHA extensions, so under it the signature
    // check runs the portable SHA-256: tens of thousands of instructions
    // per task that a native run spends a few thousand on, the same in
    // both servers. The ratio without them is the one a native run is
    // closer to.
    if let (Some(bare_sha), Some(runner_sha)) = (bare_sha, runner_sha) {
        println!(
            "coderunner / bare without the software SHA-256 (valgrind hides SHA-NI): {:.2}",
            (runner - runner_sha) / (bare - bare_sha)
        );
    }
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

/// What a callgrind dump counted.
struct Dump {
    /// Instructions in all.
    total: u64,
    /// Instructions in SHA-256's block function, callees included (`None`
    /// if `callgrind_annotate` could not tell).
    sha256: Option<u64>,
}

/// The dump `callgrind_control -d` wrote for `name`'s process.
fn dumped(dir: &Path, name: &str, pid: u32) -> Dump {
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
                return Dump {
                    total: total.trim().parse().expect("instruction count"),
                    sha256: sha256_instructions(&dump.path()),
                };
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no callgrind dump for {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The inclusive count of `sha2::sha256::compress256` in a dump, read
/// from `callgrind_annotate --inclusive=yes` (its line per function ends
/// in the object's name in brackets; lines of code inlined into it do not).
fn sha256_instructions(dump: &Path) -> Option<u64> {
    let out = Command::new("callgrind_annotate")
        .arg("--inclusive=yes")
        .arg(dump)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("sha2::sha256::compress256 ["))
        .filter_map(|l| l.split_whitespace().next()?.replace(',', "").parse().ok())
        .max()
}
