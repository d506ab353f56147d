//! Running a task's work to its end even when its caller hangs up.
//!
//! A task's work (the handler, then keeping its reply for a retry, the
//! metrics and the invocation log) is polled inside the request that brought
//! it: no task is spawned per request, so no thread is woken for one. If the
//! request is dropped first (the caller hung up, or a layer timed it out),
//! the rest of the work is spawned on the server's tracker and finishes
//! there. Either way the tracker counts it, so shutdown waits for it.
//!
//! This module must not know what the work is.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// `work`, polled by whoever awaits it, finished on `tracker` if dropped
/// before it is done. `work` is `Unpin` (a hand-written future, or a
/// `Box::pin`ned one), so that it can be moved out to be spawned; it is not
/// boxed again here.
pub(crate) fn run_to_completion<F>(tracker: &TaskTracker, work: F) -> ToCompletion<F>
where
    F: Future + Unpin + Send + 'static,
    F::Output: Send + 'static,
{
    ToCompletion {
        work: Some(work),
        tracker: tracker.clone(),
        _counted: tracker.token(),
    }
}

/// The future of [`run_to_completion`].
pub(crate) struct ToCompletion<F>
where
    F: Future + Unpin + Send + 'static,
    F::Output: Send + 'static,
{
    /// `None` once done.
    work: Option<F>,
    tracker: TaskTracker,
    /// Counts the work on the tracker while it is polled here.
    _counted: TaskTrackerToken,
}

impl<F> Future for ToCompletion<F>
where
    F: Future + Unpin + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let work = self
            .work
            .as_mut()
            .expect("a ToCompletion is not polled after it completed");
        let output = std::task::ready!(Pin::new(work).poll(cx));
        self.work = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for ToCompletion<F>
where
    F: Future + Unpin + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        // Without a runtime (it is shutting down) the work cannot go on.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.tracker.spawn(work);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn finishing_work_is_polled_by_its_caller() {
        let tracker = TaskTracker::new();
        let answer = run_to_completion(&tracker, Box::pin(async { 42 })).await;
        assert_eq!(answer, 42);
        assert!(tracker.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn work_dropped_by_its_caller_finishes_on_the_tracker() {
        let tracker = TaskTracker::new();
        let done = Arc::new(AtomicBool::new(false));
        let work = {
            let done = Arc::clone(&done);
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                done.store(true, Ordering::SeqCst);
            }
        };
        let running = run_to_completion(&tracker, Box::pin(work));
        // The caller gives up after a second.
        assert!(
            tokio::time::timeout(Duration::from_secs(1), running)
                .await
                .is_err()
        );
        assert!(!done.load(Ordering::SeqCst));
        assert_eq!(tracker.len(), 1, "the rest of the work is tracked");
        tracker.close();
        tracker.wait().await;
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn work_being_polled_counts_for_shutdown() {
        let tracker = TaskTracker::new();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let running = run_to_completion(
            &tracker,
            Box::pin(async move {
                let _ = wait.await;
            }),
        );
        let polled = tokio::spawn(running);
        tokio::task::yield_now().await;
        tracker.close();
        assert!(!tracker.is_empty());
        release.send(()).unwrap();
        polled.await.unwrap();
        tracker.wait().await;
    }
}
