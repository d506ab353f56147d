//! Accepting and serving connections: hyper's HTTP/1 server with a timer (so
//! its header read timeout applies, to the first request head and to every
//! later one of a keep-alive connection), a cap on open connections, and a
//! shutdown that closes idle connections at once.
//!
//! A connection is *idle* while none of its requests is being served: before
//! its first request head is complete, and between keep-alive requests.
//! When the cap is reached, a new connection takes the place of the one idle
//! the longest, which is closed at once; when every connection is busy, the
//! new one is closed at once. So sockets that never finish a request cannot
//! lock out a health check, which sends its request at once.
//!
//! This module knows nothing of routes or tasks: it serves a `Router`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Time a client gets to send a complete request head.
    pub header_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Accepts on `listener` until `stop` is cancelled, then closes the
/// listener and the idle connections, lets busy ones finish their request
/// (keep-alive off), and returns when every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Slots::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, for instance: wait for some to close.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = slots.admit() else {
            metrics::counter!("coderunner_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        connections.spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            slot,
            limits.header_read_timeout,
            stop.clone(),
        ));
    }
    drop(listener);
    slots.close_idle();
    connections.close();
    connections.wait().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    slot: Slot,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let closed = slot.shared.close.clone();
    let slot = Arc::new(slot);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let router = router.clone();
        let slot = Arc::clone(&slot);
        // The console answers by peer when it has no token; nothing else
        // needs the peer, so other requests do not pay for it.
        if request.uri().path().starts_with(super::console::PREFIX) {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        async move {
            slot.busy();
            let response = router.oneshot(request).await;
            slot.idle();
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        biased;
        // Evicted, or idle at shutdown: close at once.
        () = closed.cancelled() => return,
        served = connection.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = stop.cancelled() => {}
    }
    // Shutdown while a request is being served: finish it, then close.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        () = closed.cancelled() => {}
        _ = connection => {}
    }
}

/// The open connections, and which of them are idle (oldest first).
struct Slots {
    max: usize,
    state: Mutex<SlotsState>,
}

struct SlotsState {
    /// Connections counted against the cap.
    open: usize,
    /// Orders idle connections by the time they became idle.
    next: u64,
    idle: BTreeMap<u64, Arc<SlotShared>>,
    /// Shutdown has begun: a connection is no longer made idle (its
    /// keep-alive is off, so it closes after its response).
    closing: bool,
}

/// One connection's place among the open ones.
struct Slot {
    slots: Arc<Slots>,
    shared: Arc<SlotShared>,
}

struct SlotShared {
    /// Cancelled to close the connection at once.
    close: CancellationToken,
    /// Its key in `SlotsState::idle` while idle. Guarded by the state lock.
    idle_key: Mutex<Option<u64>>,
    /// Whether it still counts in `SlotsState::open` (an evicted connection
    /// stops counting at once, before its task has dropped the socket).
    counted: Mutex<bool>,
}

impl Slots {
    fn new(max: usize) -> Self {
        Self {
            max,
            state: Mutex::new(SlotsState {
                open: 0,
                next: 0,
                idle: BTreeMap::new(),
                closing: false,
            }),
        }
    }

    /// A place for a new connection (idle until its first request head is
    /// read), evicting the connection idle the longest when at the cap;
    /// `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.state.lock();
        if state.open >= self.max {
            let (_, evicted) = state.idle.pop_first()?;
            *evicted.idle_key.lock() = None;
            *evicted.counted.lock() = false;
            evicted.close.cancel();
            state.open -= 1;
            metrics::counter!("coderunner_http_connections_evicted_total").increment(1);
        }
        state.open += 1;
        let key = state.next;
        state.next += 1;
        let shared = Arc::new(SlotShared {
            close: CancellationToken::new(),
            idle_key: Mutex::new(Some(key)),
            counted: Mutex::new(true),
        });
        state.idle.insert(key, Arc::clone(&shared));
        metrics::gauge!("coderunner_http_connections_open").set(state.open as f64);
        Some(Slot {
            slots: Arc::clone(self),
            shared,
        })
    }

    /// Closes every idle connection and stops making connections idle.
    fn close_idle(&self) {
        let mut state = self.state.lock();
        state.closing = true;
        for (_, slot) in std::mem::take(&mut state.idle) {
            *slot.idle_key.lock() = None;
            *slot.counted.lock() = false;
            slot.close.cancel();
            state.open -= 1;
        }
    }
}

impl Slot {
    /// A request head was read: the connection cannot be evicted.
    fn busy(&self) {
        let mut state = self.slots.state.lock();
        if let Some(key) = self.shared.idle_key.lock().take() {
            state.idle.remove(&key);
        }
    }

    /// The response is ready: the connection waits for its next request.
    fn idle(&self) {
        let mut state = self.slots.state.lock();
        if state.closing || !*self.shared.counted.lock() {
            return;
        }
        let key = state.next;
        state.next += 1;
        state.idle.insert(key, Arc::clone(&self.shared));
        *self.shared.idle_key.lock() = Some(key);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock();
        if let Some(key) = self.shared.idle_key.lock().take() {
            state.idle.remove(&key);
        }
        if std::mem::replace(&mut *self.shared.counted.lock(), false) {
            state.open -= 1;
        }
        metrics::gauge!("coderunner_http_connections_open").set(state.open as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room_and_busy_ones_are_kept() {
        let slots = Arc::new(Slots::new(2));
        let first = slots.admit().unwrap();
        let second = slots.admit().unwrap();
        second.busy();
        let third = slots.admit().expect("the idle first connection makes room");
        assert!(first.shared.close.is_cancelled());
        assert!(!second.shared.close.is_cancelled());
        third.busy();
        assert!(slots.admit().is_none(), "every connection is busy");
        drop(first);
        assert_eq!(
            slots.state.lock().open,
            2,
            "an evicted slot is not counted twice"
        );
        third.idle();
        slots.close_idle();
        assert!(third.shared.close.is_cancelled());
        assert!(
            !second.shared.close.is_cancelled(),
            "busy: finishes its request"
        );
        second.idle();
        assert!(!second.shared.close.is_cancelled());
        drop((second, third));
        assert_eq!(slots.state.lock().open, 0);
    }
}
