//! Accepting and serving connections: hyper's HTTP/1 server, a header read
//! timeout (for the first request head and every later one of a keep-alive
//! connection), a cap on open connections, and a shutdown that closes idle
//! connections at once.
//!
//! A connection is *idle* while none of its requests is being served: before
//! its first request head is complete, and between keep-alive requests.
//! When the cap is reached, a new connection takes the place of the one idle
//! the longest, which is closed at once; when every connection is busy, the
//! new one is closed at once. So sockets that never finish a request cannot
//! lock out a health check, which sends its request at once.
//!
//! The header read timeout closes a connection idle for that long. It is not
//! hyper's own (which arms a timer, a boxed sleep put into and taken out of
//! tokio's timer wheel, for every request): one task looks at the open
//! connections a few times per timeout, and a request pays nothing for it.
//!
//! This module knows nothing of routes or tasks: it serves a `Router`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use futures::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
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
    let sweeper = AbortOnDropHandle::new(tokio::spawn(close_slow_heads(
        Arc::clone(&slots),
        limits.header_read_timeout,
    )));
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
            stop.clone(),
        ));
    }
    drop(listener);
    drop(sweeper);
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
    // No timer: hyper's header read timeout stays off (`close_slow_heads`).
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
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

/// The header read timeout's checks per timeout: a connection is closed
/// after between one and `1 + 1/CHECKS_PER_TIMEOUT` timeouts idle.
const CHECKS_PER_TIMEOUT: u32 = 4;

/// The longest time between two checks, so that a long timeout is not
/// overrun by more than this...
const MAX_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// ...unless that would take more notes than this: a timeout longer than
/// `MAX_NOTES` seconds is overrun by at most `1/MAX_NOTES` of it.
const MAX_NOTES: u32 = 1024;

/// The time between two checks of a `timeout`, and how many checks make up
/// the timeout (at least one, at most [`MAX_NOTES`]).
fn check_period(timeout: Duration) -> (Duration, usize) {
    // Rounded up, so that `MAX_NOTES` of them make up the timeout.
    let shortest = u64::try_from(timeout.as_nanos().div_ceil(u128::from(MAX_NOTES)))
        .map_or(Duration::MAX, Duration::from_nanos);
    let period = (timeout / CHECKS_PER_TIMEOUT)
        .min(MAX_CHECK_PERIOD.max(shortest))
        .max(Duration::from_millis(1));
    let periods = usize::try_from(timeout.as_nanos().div_ceil(period.as_nanos()))
        .unwrap_or(usize::MAX)
        .max(1);
    (period, periods)
}

/// Closes every connection idle for `timeout`: one that has not sent a
/// complete request head within it, first or keep-alive one. Runs until
/// aborted.
///
/// Each check notes the idle clock ([`Slots::tick`]); a connection idle
/// since before the note taken `timeout` ago (or a little more) has been
/// idle at least that long, since going busy or idle again moves it
/// past every note. So requests do nothing for this but what eviction
/// needs anyway, and a stalled runtime only makes the check late, never
/// early.
async fn close_slow_heads(slots: Arc<Slots>, timeout: Duration) {
    let (period, periods) = check_period(timeout);
    let mut notes = VecDeque::with_capacity(periods.saturating_add(1));
    let mut checks = tokio::time::interval(period);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        checks.tick().await;
        notes.push_back(slots.clock.load(Ordering::Acquire));
        if notes.len() > periods {
            let note = notes.pop_front().expect("more notes than periods");
            let closed = slots.close_idle_before(note);
            if closed > 0 {
                metrics::counter!("coderunner_http_header_timeouts_total").increment(closed);
            }
        }
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

    /// Closes the connections idle since before `note` (a tick of
    /// `clock`); returns how many.
    fn close_idle_before(&self, note: u64) -> u64 {
        let mut state = self.state.lock();
        let mut closed = 0u64;
        state.open.retain(|_, slot| {
            let since = slot.idle_since.load(Ordering::Acquire);
            if since == BUSY || since >= note {
                return true;
            }
            // Taken busy meanwhile: its head came in time.
            if slot
                .idle_since
                .compare_exchange(since, BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return true;
            }
            slot.signal.set(Signal::CLOSE);
            closed += 1;
            false
        });
        if closed > 0 {
            metrics::gauge!("coderunner_http_connections_open").set(state.open.len() as f64);
        }
        closed
    }

    /// Closes every idle connection and stops making connections idle.
    fn close_idle(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.close_idle_before(u64::MAX);
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
    fn checks_are_at_most_a_second_apart_and_few_for_long_timeouts() {
        let secs = Duration::from_secs;
        assert_eq!(check_period(secs(10)), (secs(1), 10));
        assert_eq!(check_period(secs(1)), (Duration::from_millis(250), 4));
        assert_eq!(
            check_period(Duration::from_millis(1)),
            (Duration::from_millis(1), 1)
        );
        // The longest timeout the configuration takes: a bounded list of notes.
        let (period, periods) = check_period(crate::config::MAX_DURATION);
        assert_eq!(periods, MAX_NOTES as usize);
        assert_eq!(period, crate::config::MAX_DURATION / MAX_NOTES);
        // Not a whole number of nanoseconds per note: still no more notes.
        let odd = secs(1024) + Duration::from_nanos(1);
        let (period, periods) = check_period(odd);
        assert_eq!(periods, MAX_NOTES as usize);
        assert!(period * MAX_NOTES >= odd);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_idle_for_the_header_timeout_are_closed_and_busy_ones_kept() {
        let slots = Arc::new(Slots::new(8));
        let silent = slots.admit().unwrap();
        let serving = slots.admit().unwrap();
        serving.busy();
        let _sweeper = AbortOnDropHandle::new(tokio::spawn(close_slow_heads(
            Arc::clone(&slots),
            Duration::from_secs(4),
        )));
        let wait = |secs: f64| tokio::time::sleep(Duration::from_secs_f64(secs));

        wait(3.9).await;
        assert!(
            !silent.shared.signal.is_closed(),
            "closed before its timeout"
        );
        wait(1.2).await; // 5.1 s: past the timeout and the check after it.
        assert!(silent.shared.signal.is_closed());
        assert!(
            !serving.shared.signal.is_closed(),
            "a connection serving a request is not timed out"
        );
        assert_eq!(slots.state.lock().open.len(), 1);

        // Idle from its response on (5.1 s): a keep-alive connection gets the
        // whole timeout again for its next head.
        serving.idle();
        wait(3.8).await;
        assert!(!serving.shared.signal.is_closed());
        serving.busy();
        serving.idle();
        wait(3.8).await;
        assert!(!serving.shared.signal.is_closed(), "its clock restarted");
        wait(1.3).await;
        assert!(serving.shared.signal.is_closed());
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
