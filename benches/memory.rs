//! Memory over a long run: `coderunner serve` (the release binary, default
//! configuration, signatures required) fed `tasks` signed `beforeCreate`
//! tasks with a fresh `webhook-id` each by a separate load-generator
//! process, its resident memory (`VmRSS`, `VmHWM` of /proc/<pid>/status)
//! printed at intervals: first never scraped, then with `/metrics` scraped
//! every second (a fresh server each).
//!
//! ```sh
//! cargo bench --bench memory                       # 1,000,000 tasks, 32 connections, both modes
//! cargo bench --bench memory -- 5000000 32         # tasks, connections
//! cargo bench --bench memory -- 5000000 32 scrape  # one mode: scrape or noscrape
//! ```
//!
//! The seen-id (replay) set's table (`security.seen_ids_capacity` ids,
//! 400,000 by default: 15 MiB) is taken within the first thousands of tasks,
//! and the kept replies' ring (`security.reply_cache_bytes`) with the first
//! that many bytes of replies; then nothing grows.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::Load;

fn main() {
    support::run_helper_if_asked();
    let args = support::bench_args();
    let tasks: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let connections: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let modes: &[bool] = match args.get(2).map(String::as_str) {
        Some("scrape") => &[true],
        Some("noscrape") => &[false],
        _ => &[false, true],
    };
    let dir = support::scratch_dir("bench-memory");
    let every = (tasks / 20).max(10_000);
    for &scrape in modes {
        let server = support::start_coderunner(&dir, &[]);
        let pid = server.pid();
        std::thread::sleep(Duration::from_secs(1));
        let (idle, _) = support::memory_kib(pid);
        println!();
        println!(
            "coderunner serve, {tasks} tasks over {connections} connections, {}",
            if scrape {
                "/metrics scraped every second"
            } else {
                "/metrics never scraped"
            }
        );
        println!(
            "{:>10} {:>9} {:>11} {:>11}",
            "tasks", "seconds", "VmRSS MiB", "VmHWM MiB"
        );
        println!(
            "{:>10} {:>9} {:>11.1} {:>11.1}",
            "idle",
            "",
            support::mib(idle),
            support::mib(idle)
        );
        let started = Instant::now();
        let load = Load {
            addr: server.addr,
            tasks,
            connections,
            presign: false,
            progress_every: every,
            scrape_ms: if scrape { 1_000 } else { 0 },
        };
        let figures = support::run_load(&load, |done| {
            let (rss, hwm) = support::memory_kib(pid);
            println!(
                "{done:>10} {:>9.0} {:>11.1} {:>11.1}",
                started.elapsed().as_secs_f64(),
                support::mib(rss),
                support::mib(hwm)
            );
        });
        // Twice the metrics upkeep interval, for the last samples to be folded.
        std::thread::sleep(Duration::from_secs(11));
        let (rss, hwm) = support::memory_kib(pid);
        println!(
            "{:>10} {:>9} {:>11.1} {:>11.1}",
            "idle after",
            "",
            support::mib(rss),
            support::mib(hwm)
        );
        println!("{:.0} tasks/s", figures.per_second);
    }
}
