//! Shared parts of the out-of-process benchmarks (`benches/serve.rs`,
//! `benches/memory.rs`): the servers run as child processes, and so does the
//! load generator, so that neither hides the other's cost.
//!
//! A benchmark program re-executes itself for its helper processes:
//! `__bare PORT` is the bare axum server, `__load key=value...` the load
//! generator. Everything talks to 127.0.0.1 only.

#![allow(dead_code)] // each bench program uses a different part of this module

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use coderunner::signature::{self, SignedHeaders, Verifier, WebhookSecret};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The test secret both servers verify with.
pub(crate) const SECRET: &str = "whsec_YmVuY2htYXJrLXNlY3JldC1mb3ItZGlzcGF0Y2g=";

/// Runs the helper process named by this program's arguments, if any, and
/// then exits; returns when the program was started as the benchmark.
pub(crate) fn run_helper_if_asked() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("__bare") => {
            let port: u16 = args[1].parse().expect("__bare PORT");
            bare_server(port);
            std::process::exit(0);
        }
        Some("__load") => {
            load_main(&args[1..]);
            std::process::exit(0);
        }
        _ => {}
    }
}

/// The benchmark's own arguments: those after `cargo bench -- `, without
/// the flags cargo adds (`--bench`).
pub(crate) fn bench_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

// ---------------------------------------------------------------------------
// The servers
// ---------------------------------------------------------------------------

/// A server running as a child process.
pub(crate) struct ServerProcess {
    /// `bare axum` or `coderunner`.
    pub name: &'static str,
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 now (the server binds it right after).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A scratch directory under `target/` for configuration overlays and logs.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// `coderunner serve` (the release binary of the example app) with the
/// default configuration plus an overlay: listen on a loopback port, a test
/// webhook secret, signatures required. `wrapper` runs it under a tool
/// (valgrind). Its log goes to `dir/coderunner.log`.
pub(crate) fn start_coderunner(dir: &Path, wrapper: &[&str]) -> ServerProcess {
    let port = free_port();
    let overlay = dir.join("bench.toml");
    std::fs::write(
        &overlay,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [security]\nwebhook_secrets = [\"{SECRET}\"]\nallow_unsigned = false\n"
        ),
    )
    .expect("overlay written");
    let log = std::fs::File::create(dir.join("coderunner.log")).expect("log file");
    let binary = env!("CARGO_BIN_EXE_coderunner");
    let mut command = match wrapper.split_first() {
        Some((tool, tool_args)) => {
            let mut c = Command::new(tool);
            c.args(tool_args).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    let child = command
        .arg("serve")
        .env("CODERUNNER_CONFIG", &overlay)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("coderunner starts");
    ready(ServerProcess {
        name: "coderunner",
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

/// The bare axum server (this program as `__bare PORT`), optionally under
/// a tool (valgrind).
pub(crate) fn start_bare(wrapper: &[&str]) -> ServerProcess {
    let port = free_port();
    let me = std::env::current_exe().expect("own path");
    let mut command = match wrapper.split_first() {
        Some((tool, tool_args)) => {
            let mut c = Command::new(tool);
            c.args(tool_args).arg(&me);
            c
        }
        None => Command::new(&me),
    };
    let child = command
        .args(["__bare", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bare server starts");
    ready(ServerProcess {
        name: "bare axum",
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

/// Waits until the server answers `GET /healthz` with any HTTP response (up
/// to a minute: under valgrind it starts slowly).
fn ready(mut server: ServerProcess) -> ServerProcess {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{} exited at start: {status}", server.name);
        }
        if let Ok(mut s) = std::net::TcpStream::connect(server.addr) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            if answer.starts_with(b"HTTP/1.1 ") {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "{} never answered", server.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The bare server: one route that checks the Standard Webhooks signature
/// on the raw body with coderunner's `Verifier`, parses the JSON once and
/// echoes the arguments back. What no runner can beat.
fn bare_server(port: u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let verifier = Arc::new(Verifier::new(
            vec![WebhookSecret::parse(SECRET).expect("secret")],
            signature::DEFAULT_TOLERANCE,
        ));
        let app = Router::new()
            .route(
                "/invoke",
                post(move |headers: HeaderMap, body: Bytes| {
                    let verifier = Arc::clone(&verifier);
                    async move {
                        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                        let signed = SignedHeaders {
                            id: h(signature::ID_HEADER),
                            timestamp: h(signature::TIMESTAMP_HEADER),
                            signature: h(signature::SIGNATURE_HEADER),
                        };
                        if verifier.verify(signed, &body, signature::unix_now()).is_err() {
                            return (StatusCode::UNAUTHORIZED, Bytes::new());
                        }
                        let task: Value = match serde_json::from_slice(&body) {
                            Ok(v) => v,
                            Err(_) => return (StatusCode::BAD_REQUEST, Bytes::new()),
                        };
                        let reply = json!({"requestId": task["id"], "arguments": task["arguments"], "exception": null});
                        (StatusCode::OK, Bytes::from(serde_json::to_vec(&reply).expect("json")))
                    }
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bare server binds");
        axum::serve(listener, app).await.expect("bare server runs");
    });
}

// ---------------------------------------------------------------------------
// /proc figures
// ---------------------------------------------------------------------------

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ).
pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds a process has used, all threads.
pub(crate) fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces) in parentheses:
    // state is the 3rd field, utime the 14th, stime the 15th.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime + stime) / ticks
}

/// Resident memory now and its peak (`VmRSS`, `VmHWM`), in KiB.
pub(crate) fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------

/// What one load-generator run should do.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub addr: SocketAddr,
    pub tasks: u64,
    pub connections: usize,
    /// Sign every request before the clock starts (true), or each just
    /// before it is sent (for runs too long to hold in memory).
    pub presign: bool,
    /// Print `progress N` every this many tasks (0: never).
    pub progress_every: u64,
    /// Scrape `/metrics` every this many milliseconds (0: never).
    pub scrape_ms: u64,
}

/// Figures of one load-generator run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU seconds the load generator itself used.
    pub generator_cpu: f64,
}

/// Runs the load generator as a child process; `on_progress` sees every
/// `progress N` it prints.
pub(crate) fn run_load(load: &Load, mut on_progress: impl FnMut(u64)) -> Figures {
    let me = std::env::current_exe().expect("own path");
    let mut child = Command::new(me)
        .arg("__load")
        .arg(format!("addr={}", load.addr))
        .arg(format!("tasks={}", load.tasks))
        .arg(format!("connections={}", load.connections))
        .arg(format!("presign={}", load.presign))
        .arg(format!("progress={}", load.progress_every))
        .arg(format!("scrape_ms={}", load.scrape_ms))
        .stdout(Stdio::piped())
        .spawn()
        .expect("load generator starts");
    let stdout: ChildStdout = child.stdout.take().expect("piped");
    let mut figures = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("load generator output");
        if let Some(n) = line.strip_prefix("progress ") {
            on_progress(n.parse().expect("progress count"));
        } else if let Some(rest) = line.strip_prefix("done ") {
            let get = |key: &str| -> f64 {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .expect("figure")
            };
            figures = Some(Figures {
                per_second: get("per_second"),
                p50: Duration::from_micros(get("p50_us") as u64),
                p99: Duration::from_micros(get("p99_us") as u64),
                generator_cpu: get("cpu_s"),
            });
        }
    }
    let status = child.wait().expect("load generator ends");
    assert!(status.success(), "load generator failed: {status}");
    figures.expect("load generator printed its figures")
}

fn load_main(args: &[String]) {
    let get = |key: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("__load needs {key}="))
    };
    let load = Load {
        addr: get("addr").parse().expect("addr"),
        tasks: get("tasks").parse().expect("tasks"),
        connections: get("connections").parse().expect("connections"),
        presign: get("presign") == "true",
        progress_every: get("progress").parse().expect("progress"),
        scrape_ms: get("scrape_ms").parse().expect("scrape_ms"),
    };
    // One thread: the generator must stay light beside the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (elapsed, mut latencies) = runtime.block_on(generate(&load));
    latencies.sort_unstable();
    let pick = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
    println!(
        "done per_second={:.1} p50_us={} p99_us={} cpu_s={:.3}",
        load.tasks as f64 / elapsed.as_secs_f64(),
        pick(50),
        pick(99),
        cpu_seconds(std::process::id(), clock_ticks()),
    );
}

/// Makes signed `beforeCreate` tasks on `Post` (the example app's handler),
/// each with a fresh task id and `webhook-id`, as complete HTTP/1.1 requests.
struct Requests {
    secret: WebhookSecret,
    host: String,
    /// Makes ids unique across runs against the same server.
    prefix: String,
}

impl Requests {
    fn new(addr: SocketAddr) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        Self {
            secret: WebhookSecret::parse(SECRET).expect("secret"),
            host: addr.to_string(),
            prefix: format!("msg_bench{}x{nanos}", std::process::id()),
        }
    }

    fn make(&self, i: u64) -> Vec<u8> {
        let id = format!("{}x{i}", self.prefix);
        let body = serde_json::to_vec(&json!({
            "id": id, "eventId": 100, "target": "Post", "timeout": 5000,
            "arguments": [
                {"appId": "bench", "userId": "U", "userToken": "T", "userRoles": ["AuthenticatedUser"], "deviceType": "REST", "httpHeaders": {}},
                {"___class": "Post", "title": "A benchmark post", "body": "x".repeat(200)}
            ]
        }))
        .expect("json");
        let timestamp = signature::unix_now();
        let sig = self.secret.sign(&id, timestamp, &body);
        let mut request = format!(
            "POST /invoke HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nwebhook-id: {id}\r\nwebhook-timestamp: {timestamp}\r\n\
             webhook-signature: {sig}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        request
    }
}

async fn generate(load: &Load) -> (Duration, Vec<u32>) {
    let requests = Requests::new(load.addr);
    let presigned: Vec<Vec<u8>> = if load.presign {
        (0..load.tasks).map(|i| requests.make(i)).collect()
    } else {
        Vec::new()
    };
    let next = Cell::new(0u64);
    let done = Cell::new(0u64);
    let finished = Cell::new(false);
    let (presigned, requests, next, done) = (&presigned, &requests, &next, &done);
    let started = Instant::now();
    let connection = |_| async move {
        let mut stream = TcpStream::connect(load.addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut latencies = Vec::new();
        loop {
            let i = next.get();
            if i >= load.tasks {
                break;
            }
            next.set(i + 1);
            let made;
            let request: &[u8] = if load.presign {
                &presigned[i as usize]
            } else {
                made = requests.make(i);
                &made
            };
            let t = Instant::now();
            stream.write_all(request).await.expect("send");
            let status = read_response(&mut stream, &mut buf).await;
            latencies.push(t.elapsed().as_micros() as u32);
            if status != 200 {
                let text = String::from_utf8_lossy(&buf);
                panic!("HTTP {status}: {text}");
            }
            let n = done.get() + 1;
            done.set(n);
            if load.progress_every > 0 && n % load.progress_every == 0 {
                println!("progress {n}");
            }
        }
        latencies
    };
    let work = futures::future::join_all((0..load.connections).map(connection));
    let scrape = async {
        if load.scrape_ms == 0 {
            return std::future::pending().await;
        }
        let mut buf = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_millis(load.scrape_ms)).await;
            if finished.get() {
                return;
            }
            let mut s = TcpStream::connect(load.addr).await.expect("connect");
            s.write_all(b"GET /metrics HTTP/1.1\r\nhost: bench\r\n\r\n")
                .await
                .expect("scrape");
            assert_eq!(read_response(&mut s, &mut buf).await, 200, "scrape");
        }
    };
    let per_connection = tokio::select! {
        all = work => all,
        () = scrape => unreachable!("the scraper stops only after the work"),
    };
    finished.set(true);
    let elapsed = started.elapsed();
    (elapsed, per_connection.into_iter().flatten().collect())
}

/// Reads one HTTP/1.1 response with a `content-length` into `buf`; returns
/// its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
            let status: u16 = head[9..12].parse().expect("status");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            let total = end + 4 + length;
            while buf.len() < total {
                let n = stream.read_buf(buf).await.expect("read");
                assert!(n > 0, "connection closed mid-response");
            }
            return status;
        }
        buf.reserve(8 * 1024);
        let n = stream.read_buf(buf).await.expect("read");
        assert!(n > 0, "connection closed");
    }
}
