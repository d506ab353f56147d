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

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use futures::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};
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
    let signal = Arc::clone(&slot.shared.signal);
    // Shutdown reaches the connection through its own signal, set by a
    // watcher task: polling the shared `stop` token in the connection's
    // task would lock its mutexes on every wake-up of every connection
    // (several per request).
    let watcher = tokio::spawn({
        let signal = Arc::clone(&signal);
        async move {
            stop.cancelled().await;
            signal.set(Signal::FINISH);
        }
    });
    let _watcher = AbortOnDropHandle::new(watcher);
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
    let mut finishing = false;
    let served = std::future::poll_fn(|cx| {
        signal.waker.register(cx.waker());
        match signal.state.load(Ordering::Acquire) {
            // Evicted, or idle at shutdown: close at once.
            Signal::CLOSE => return Poll::Ready(None),
            // Shutdown while a request is being served: finish it, then close.
            Signal::FINISH if !finishing => {
                finishing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ => {}
        }
        connection.as_mut().poll(cx).map(Some)
    })
    .await;
    if let Some(Err(e)) = served {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// What a connection's task is told to do: serve on, finish its request and
/// close, or close at once. Set from other tasks; read on every poll of
/// the connection, so it costs an atomic load and a waker registration.
struct Signal {
    state: AtomicU8,
    waker: AtomicWaker,
}

impl Signal {
    const SERVE: u8 = 0;
    const FINISH: u8 = 1;
    const CLOSE: u8 = 2;

    fn new() -> Self {
        Self {
            state: AtomicU8::new(Self::SERVE),
            waker: AtomicWaker::new(),
        }
    }

    /// Moves on to `state` (never back: closing wins over finishing).
    fn set(&self, state: u8) {
        self.state.fetch_max(state, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Whether the connection is told to close at once.
    #[cfg(test)]
    fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) == Self::CLOSE
    }
}

/// The open connections, and which of them are idle.
///
/// A request marks its connection busy and then idle again with an atomic
/// store each, not under a lock shared by every connection: the lock is
/// taken only to open, evict and drop a connection. Finding the
/// connection idle the longest is then a scan of the open ones, done only
/// when a new connection arrives at the cap.
struct Slots {
    max: usize,
    /// Orders the moments connections become idle.
    clock: AtomicU64,
    /// Shutdown has begun: a connection is no longer made idle (its
    /// keep-alive is off, so it closes after its response).
    closing: AtomicBool,
    state: Mutex<SlotsState>,
}

struct SlotsState {
    /// Connections counted against the cap, by their number.
    open: HashMap<u64, Arc<SlotShared>>,
    /// The number of the next connection.
    next: u64,
}

/// One connection's place among the open ones.
struct Slot {
    slots: Arc<Slots>,
    number: u64,
    shared: Arc<SlotShared>,
}

struct SlotShared {
    /// Tells the connection to close at once (or to finish and close).
    signal: Arc<Signal>,
    /// When it became idle (a tick of `Slots::clock`), or [`BUSY`].
    idle_since: AtomicU64,
}

/// `SlotShared::idle_since` of a connection serving a request.
const BUSY: u64 = 0;

impl Slots {
    fn new(max: usize) -> Self {
        Self {
            max,
            clock: AtomicU64::new(BUSY + 1),
            closing: AtomicBool::new(false),
            state: Mutex::new(SlotsState {
                open: HashMap::new(),
                next: 0,
            }),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// A place for a new connection (idle until its first request head is
    /// read), evicting the connection idle the longest when at the cap;
    /// `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.state.lock();
        while state.open.len() >= self.max {
            let (number, since) = state
                .open
                .iter()
                .map(|(n, slot)| (*n, slot.idle_since.load(Ordering::Acquire)))
                .filter(|(_, since)| *since != BUSY)
                .min_by_key(|(_, since)| *since)?;
            let evicted = &state.open[&number];
            // Taken busy meanwhile: look again.
            if evicted
                .idle_since
                .compare_exchange(since, BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            evicted.signal.set(Signal::CLOSE);
            state.open.remove(&number);
            metrics::counter!("coderunner_http_connections_evicted_total").increment(1);
        }
        let number = state.next;
        state.next += 1;
        let shared = Arc::new(SlotShared {
            signal: Arc::new(Signal::new()),
            idle_since: AtomicU64::new(self.tick()),
        });
        state.open.insert(number, Arc::clone(&shared));
        metrics::gauge!("coderunner_http_connections_open").set(state.open.len() as f64);
        Some(Slot {
            slots: Arc::clone(self),
            number,
            shared,
        })
    }

    /// Closes every idle connection and stops making connections idle.
    fn close_idle(&self) {
        let mut state = self.state.lock();
        self.closing.store(true, Ordering::SeqCst);
        state.open.retain(|_, slot| {
            if slot.idle_since.swap(BUSY, Ordering::AcqRel) == BUSY {
                return true;
            }
            slot.signal.set(Signal::CLOSE);
            false
        });
    }
}

impl Slot {
    /// A request head was read: the connection cannot be evicted.
    fn busy(&self) {
        self.shared.idle_since.store(BUSY, Ordering::Release);
    }

    /// The response is ready: the connection waits for its next request.
    fn idle(&self) {
        if self.slots.closing.load(Ordering::SeqCst) {
            return;
        }
        self.shared
            .idle_since
            .store(self.slots.tick(), Ordering::Release);
        if self.slots.closing.load(Ordering::SeqCst) {
            // Shutdown began meanwhile and may not have seen it idle: its
            // keep-alive is off, so it closes after this response anyway.
            self.shared.idle_since.store(BUSY, Ordering::Release);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock();
        // Gone already if it was evicted or closed idle.
        state.open.remove(&self.number);
        metrics::gauge!("coderunner_http_connections_open").set(state.open.len() as f64);
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
        assert!(first.shared.signal.is_closed());
        assert!(!second.shared.signal.is_closed());
        third.busy();
        assert!(slots.admit().is_none(), "every connection is busy");
        drop(first);
        assert_eq!(
            slots.state.lock().open.len(),
            2,
            "an evicted slot is not counted twice"
        );
        third.idle();
        slots.close_idle();
        assert!(third.shared.signal.is_closed());
        assert!(
            !second.shared.signal.is_closed(),
            "busy: finishes its request"
        );
        second.idle();
        assert!(!second.shared.signal.is_closed());
        drop((second, third));
        assert_eq!(slots.state.lock().open.len(), 0);
    }

    #[test]
    fn the_connection_idle_the_longest_is_the_one_evicted() {
        let slots = Arc::new(Slots::new(3));
        let [a, b, c] = [(); 3].map(|()| slots.admit().unwrap());
        // `a` serves a request: it is now idle since after `b` and `c`.
        a.busy();
        a.idle();
        // `b` too, then `c`: `a` has now waited the longest.
        for slot in [&b, &c] {
            slot.busy();
            slot.idle();
        }
        let _d = slots.admit().unwrap();
        assert!(a.shared.signal.is_closed());
        assert!(!b.shared.signal.is_closed() && !c.shared.signal.is_closed());
        let _e = slots.admit().unwrap();
        assert!(b.shared.signal.is_closed());
        assert!(!c.shared.signal.is_closed());
    }
}
