//! Connections that never finish their request: half-sent heads, silent
//! sockets, trickled bodies, thousands of idle connections, and shutdown
//! with such connections open.

use std::time::{Duration, Instant};

use coderunner::Registry;
use coderunner::signature::unix_now;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::probe::{self, HealthWatch, closed_by_server, signed_head};
use crate::support::{SECRET, TestRunner};

fn runner_config(server: &str) -> String {
    format!("[security]\nwebhook_secrets = [\"{SECRET}\"]\n[server]\n{server}")
}

/// How many sockets a test may hold open: a few thousand, well under
/// `ulimit -n` (each connection costs two descriptors in this process).
fn socket_budget(wanted: usize) -> usize {
    wanted.min(probe::fd_limit().saturating_sub(200) / 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_and_silent_sockets_are_closed_at_the_header_timeout() {
    let _serial = probe::one_at_a_time().await;
    let runner = TestRunner::start_config(
        Registry::new(),
        &runner_config("header_read_timeout_ms = 1000"),
    )
    .await;
    let watch = HealthWatch::start(runner.addr);
    let n = socket_budget(2000);
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(runner.addr).await.unwrap();
        if i % 2 == 0 {
            stream
                .write_all(b"POST /invoke HTTP/1.1\r\nHost: runner\r\nwebhook-id: x\r\n")
                .await
                .unwrap();
        }
        sockets.push(stream);
    }
    // A keep-alive connection idle after one request is closed as well.
    let mut keep_alive = TcpStream::connect(runner.addr).await.unwrap();
    keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: runner\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    keep_alive.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    sockets.push(keep_alive);

    let opened = Instant::now();
    for (i, socket) in sockets.iter_mut().enumerate() {
        assert!(
            closed_by_server(socket, Duration::from_secs(10)).await,
            "socket {i} of {n} still open 10 s after a 1 s header timeout"
        );
    }
    assert!(opened.elapsed() < Duration::from_secs(10));
    watch.assert_healthy_throughout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_connections_replace_the_oldest_idle_ones() {
    let _serial = probe::one_at_a_time().await;
    let cap = 100;
    let runner = TestRunner::start_config(
        Registry::new(),
        &runner_config(&format!(
            "header_read_timeout_ms = 60000\nmax_connections = {cap}"
        )),
    )
    .await;
    let watch = HealthWatch::start(runner.addr);
    let n = socket_budget(3000);
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(runner.addr).await.unwrap());
    }
    // The health probes kept getting in while the cap was full of idle
    // sockets; the oldest idle sockets made room.
    let older = n - 2 * cap;
    for (i, socket) in sockets[..older].iter_mut().enumerate() {
        assert!(
            closed_by_server(socket, Duration::from_secs(5)).await,
            "idle socket {i} of {n} was not evicted (cap {cap})"
        );
    }
    watch.assert_healthy_throughout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_get_408_at_the_body_deadline() {
    let _serial = probe::one_at_a_time().await;
    let runner = TestRunner::start_config(
        Registry::new(),
        &runner_config("body_read_timeout_ms = 700"),
    )
    .await;
    let watch = HealthWatch::start(runner.addr);
    let body = probe::before_create("trickled", "Post", 1000, false);
    let mut tricklers = Vec::new();
    for i in 0..50 {
        let id = format!("msg_trickle_{i}");
        let head = signed_head(&runner.secret, &id, unix_now(), &body, body.len());
        let body = body.clone();
        let addr = runner.addr;
        tricklers.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let trickle = tokio::spawn(async move {
                for byte in body {
                    if write.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let mut reply = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut reply)).await;
            trickle.abort();
            (
                started.elapsed(),
                String::from_utf8_lossy(&reply).into_owned(),
            )
        }));
    }
    for trickler in tricklers {
        let (elapsed, reply) = trickler.await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains("body_timeout"), "{reply}");
        assert!(
            elapsed >= Duration::from_millis(650) && elapsed < Duration::from_secs(5),
            "answered after {elapsed:?}"
        );
    }
    watch.assert_healthy_throughout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_headers_are_checked_before_the_body_is_read() {
    let _serial = probe::one_at_a_time().await;
    // The default body deadline is 30 s: an answer within a second means
    // the body was never waited for.
    let runner = TestRunner::start_config(Registry::new(), &runner_config("")).await;
    let unsigned =
        "POST /invoke HTTP/1.1\r\nHost: runner\r\ncontent-length: 1000\r\n\r\n".to_owned();
    let long_id = signed_head(&runner.secret, &"i".repeat(300), unix_now(), b"", 1000);
    let stale = signed_head(&runner.secret, "msg_stale", unix_now() - 3600, b"", 1000);
    for (head, expected) in [
        (unsigned, "HTTP/1.1 401"),
        (long_id, "HTTP/1.1 400"),
        (stale, "HTTP/1.1 401"),
    ] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(runner.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut reply = vec![0u8; 12];
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply))
            .await
            .expect("answered without waiting for the body")
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&reply), expected);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_is_refused_unread() {
    let _serial = probe::one_at_a_time().await;
    // The body is never sent: an answer other than the body deadline's 408
    // means it was not waited for.
    let runner =
        TestRunner::start_config(Registry::new(), &runner_config("body_limit_bytes = 4096")).await;
    let head = signed_head(&runner.secret, "msg_large", unix_now(), b"", 4097);
    let mut stream = TcpStream::connect(runner.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 1024];
    while !reply.ends_with(b"}") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("answered without the body")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        reply.extend_from_slice(&chunk[..n]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"code\":\"body_too_large\""), "{reply}");
    assert!(reply.contains("limit of 4096 bytes"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_and_half_sent_connections_at_once() {
    let _serial = probe::one_at_a_time().await;
    let runner = TestRunner::start_config(
        Registry::new(),
        &format!(
            "[security]\nwebhook_secrets = [\"{SECRET}\"]\n[shutdown]\ngrace_period_secs = 30"
        ),
    )
    .await;
    let mut sockets = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(runner.addr).await.unwrap();
        if i % 2 == 0 {
            stream
                .write_all(b"POST /invoke HTTP/1.1\r\nHost: runner\r\n")
                .await
                .unwrap();
        }
        sockets.push(stream);
    }
    probe::healthz(runner.addr).await;
    let started = Instant::now();
    runner.app.shutdown();
    tokio::time::timeout(Duration::from_secs(5), runner.app.wait())
        .await
        .expect("idle connections do not hold shutdown for the 30 s grace period")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    for socket in &mut sockets {
        assert!(closed_by_server(socket, Duration::from_secs(1)).await);
    }
}
