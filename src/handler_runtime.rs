//! Where handlers run: on the server's own threads while that is safe, on a
//! runtime of their own otherwise, so that a handler that blocks its thread
//! can never stall the server.
//!
//! Moving every handler to another runtime costs two thread wake-ups per
//! task, about as much as the rest of the dispatch path (docs/benchmarks.md).
//! So a handler's future is polled on the server's runtime, but at most
//! `workers - 1` of the server's worker threads may be inside a handler's
//! poll at any moment: one worker is always free to accept connections,
//! answer `/healthz`, fire deadlines and write replies. A handler that finds
//! every such place taken is moved, future and all, to the handler runtime
//! and finishes there: at once when a place has been held for longer than
//! [`BLOCKED_AFTER`] (its holder is blocking its thread), else after
//! yielding to other work once (another handler's poll is about to end).
//! On a runtime with one worker nothing runs inline (the `coderunner`
//! binary's own runtime has two workers at least, on one CPU too).
//!
//! Must not: hold a place across an `.await` of the handler (a place is
//! taken for one `poll` only), or wait for a place.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// A place held this long means its handler blocks its thread.
pub(crate) const BLOCKED_AFTER: Duration = Duration::from_micros(500);

/// The most places: server runtimes have fewer workers than this.
const MAX_PLACES: usize = 64;

/// The runtime handlers run on, apart from the server's: threads blocked by
/// a handler (`std::thread::sleep`, blocking I/O, a CPU loop) are threads of
/// this runtime, or at most all but one of the server's. Dropping the last
/// clone shuts it down without waiting for blocked threads.
#[derive(Clone)]
pub(crate) struct HandlerRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    /// Taken on drop, to shut it down in the background.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    places: Places,
}

impl HandlerRuntime {
    /// A multi-threaded runtime with `threads` worker threads (`0`: one per CPU).
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all().thread_name("coderunner-handler");
        if threads > 0 {
            builder.worker_threads(threads);
        }
        let runtime = builder.build()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                runtime: Some(runtime),
                handle,
                places: Places::new(),
            }),
        })
    }

    /// Runs `task` to completion: polled on the caller's runtime while a
    /// place is free there, on this runtime once none is.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Ok(server) = tokio::runtime::Handle::try_current() else {
            return self.inner.handle.spawn(task);
        };
        let places = server.metrics().num_workers().saturating_sub(1);
        if places == 0 {
            return self.inner.handle.spawn(task);
        }
        server.spawn(Placed {
            state: State::Inline(Box::pin(task)),
            places: places.min(MAX_PLACES),
            yielded: false,
            runtime: self.clone(),
        })
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never joins a thread a handler blocks.
            runtime.shutdown_background();
        }
    }
}

/// The server threads' places for handler polls: each holds 0 (free) or
/// the time its poll began, in nanoseconds after `epoch` (plus one).
struct Places {
    epoch: Instant,
    slots: [AtomicU64; MAX_PLACES],
}

impl Places {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Takes a free place among the first `count`.
    fn take(&self, count: usize) -> Option<usize> {
        let now = self.now();
        (0..count).find(|&i| {
            self.slots[i]
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn free(&self, place: usize) {
        self.slots[place].store(0, Ordering::Release);
    }

    /// Whether one of the first `count` places has been held past
    /// [`BLOCKED_AFTER`].
    fn any_blocked(&self, count: usize) -> bool {
        let now = self.now();
        let limit = u64::try_from(BLOCKED_AFTER.as_nanos()).unwrap_or(u64::MAX);
        self.slots[..count].iter().any(|slot| {
            let since = slot.load(Ordering::Acquire);
            since != 0 && now.saturating_sub(since) > limit
        })
    }
}

/// Frees its place when the poll ends, also by a panic.
struct Held<'a> {
    places: &'a Places,
    place: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.places.free(self.place);
    }
}

enum State<F: Future> {
    Inline(Pin<Box<F>>),
    Moved(JoinHandle<F::Output>),
    Done,
}

/// A handler's task on the server's runtime, until it is moved.
struct Placed<F: Future> {
    state: State<F>,
    places: usize,
    yielded: bool,
    runtime: HandlerRuntime,
}

impl<F> Future for Placed<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let places = &this.runtime.inner.places;
        if let State::Inline(task) = &mut this.state {
            if let Some(place) = places.take(this.places) {
                let _held = Held { places, place };
                this.yielded = false;
                return task.as_mut().poll(cx);
            }
            if !this.yielded && !places.any_blocked(this.places) {
                // Another handler's poll is about to end: let other work run.
                this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let State::Inline(task) = std::mem::replace(&mut this.state, State::Done) else {
                unreachable!("matched above")
            };
            metrics::counter!("coderunner_handlers_moved_total").increment(1);
            this.state = State::Moved(this.runtime.inner.handle.spawn(task));
        }
        let State::Moved(moved) = &mut this.state else {
            unreachable!("a finished handler task is not polled again")
        };
        match Pin::new(moved).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(output)) => Poll::Ready(output),
            Poll::Ready(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Poll::Ready(Err(_)) => std::panic::resume_unwind(Box::new(STOPPING)),
        }
    }
}

impl<F: Future> Drop for Placed<F> {
    fn drop(&mut self) {
        // Aborting this task stops a moved handler too.
        if let State::Moved(moved) = &self.state {
            moved.abort();
        }
    }
}

/// How a handler cancelled by the runtime's shutdown ends.
const STOPPING: &str = "the runner is stopping";

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_runs_on_the_server_threads_while_one_stays_free() {
        let handlers = HandlerRuntime::new(1).unwrap();
        let ran_on = handlers.spawn(async { thread_name() }).await.unwrap();
        assert_ne!(ran_on, "coderunner-handler");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_only_place_blocked_handlers_move_to_their_runtime() {
        let moves = crate::telemetry::metrics();
        let handlers = HandlerRuntime::new(1).unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, blocking) = tokio::sync::oneshot::channel();
        let blocker = handlers.spawn(async move {
            let _ = started.send(thread_name());
            // Blocks its thread, as a careless handler does.
            released.recv().unwrap();
        });
        assert_ne!(blocking.await.unwrap(), "coderunner-handler");
        std::thread::sleep(BLOCKED_AFTER * 4);

        // The other server thread serves: a handler now goes elsewhere, and
        // a timer of the server's runtime still fires.
        let moved = handlers.spawn(async { thread_name() }).await.unwrap();
        assert_eq!(moved, "coderunner-handler");
        let counted = moves
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("coderunner_handlers_moved_total "))
            .and_then(|n| n.trim().parse::<f64>().ok());
        assert!(counted.is_some_and(|n| n >= 1.0), "{counted:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;

        release.send(()).unwrap();
        blocker.await.unwrap();
        let back = handlers.spawn(async { thread_name() }).await.unwrap();
        assert_ne!(back, "coderunner-handler", "the place is free again");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn on_a_single_thread_runtime_every_handler_moves() {
        let handlers = HandlerRuntime::new(1).unwrap();
        let ran_on = handlers.spawn(async { thread_name() }).await.unwrap();
        assert_eq!(ran_on, "coderunner-handler");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborting_a_moved_handler_stops_it() {
        let handlers = HandlerRuntime::new(1).unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, blocking) = tokio::sync::oneshot::channel::<()>();
        let blocker = handlers.spawn(async move {
            let _ = started.send(());
            released.recv().unwrap();
        });
        blocking.await.unwrap();
        std::thread::sleep(BLOCKED_AFTER * 4);
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        let (where_tx, ran_on) = tokio::sync::oneshot::channel();
        let moved = handlers.spawn(async move {
            let _guard = dropped_tx;
            let _ = where_tx.send(thread_name());
            std::future::pending::<()>().await;
        });
        assert_eq!(ran_on.await.unwrap(), "coderunner-handler");
        moved.abort();
        // The pending handler's future was dropped on its runtime.
        assert!(dropped.await.is_err());
        release.send(()).unwrap();
        blocker.await.unwrap();
    }
}
