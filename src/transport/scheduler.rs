//! Timers fired by the runner itself (`[timers] scheduler = "runner"`), for
//! backends that only call `/invoke` and so never send timer tasks: each
//! registered timer's occurrences become timer tasks (event 800, target =
//! the timer's name) that go through the same dispatch path as any task.
//!
//! Occurrences are computed on a [`Clock`] that reads the wall clock once and
//! then follows tokio's clock, so tests drive schedules with paused time. A
//! slow or failing occurrence does not hold up the next: each runs on its
//! own task, and its outcome is logged and counted like any invocation.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dispatch::Dispatcher;
use crate::event::timer;
use crate::event::wire::{Arguments, Encoding, TASK_CLASS, Task};
pub(crate) use crate::timer::Clock;
use crate::timer::Schedule;

/// Decides whether this process fires an occurrence (the fleet's lock; a
/// single runner always does).
pub(crate) type OccurrenceClaim =
    Arc<dyn Fn(&str, i64) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// Fires the registry's timers on their schedules until `stop` is cancelled.
pub(crate) async fn run(
    dispatcher: Dispatcher,
    app_id: String,
    clock: Clock,
    claim: Option<OccurrenceClaim>,
    stop: CancellationToken,
) {
    let timers: Vec<(String, Schedule)> = dispatcher
        .registry()
        .timers()
        .map(|(name, schedule)| (name.to_owned(), schedule.clone()))
        .collect();
    if timers.is_empty() {
        return;
    }
    tracing::info!(timers = timers.len(), "the runner fires its own timers");
    let tracker = TaskTracker::new();
    for (name, schedule) in timers {
        let (dispatcher, app_id, claim, stop, tracker2) = (
            dispatcher.clone(),
            app_id.clone(),
            claim.clone(),
            stop.clone(),
            tracker.clone(),
        );
        tracker.spawn(async move {
            let mut after = clock.now_ms();
            while let Some(next) = schedule.next_after(after) {
                tokio::select! {
                    () = tokio::time::sleep_until(clock.instant_at(next)) => {}
                    () = stop.cancelled() => return,
                }
                after = next;
                if let Some(claim) = &claim {
                    if !claim(&name, next).await {
                        continue;
                    }
                }
                let task = timer_task(&app_id, &name, next);
                let dispatcher = dispatcher.clone();
                tracker2.spawn(async move {
                    match dispatcher.route(task) {
                        Ok(routed) => {
                            let _ = dispatcher.execute(routed, Instant::now(), false).await;
                        }
                        Err(e) => tracing::error!(error = %e, "a timer could not be routed"),
                    }
                });
            }
            tracing::info!(timer = %name, "the timer has no further occurrence");
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// The task of one occurrence: no caller (handlers act with the server key
/// or as the superuser), the occurrence's time in its id.
pub(crate) fn timer_task(app_id: &str, name: &str, at_ms: i64) -> Task {
    Task {
        json_class: TASK_CLASS.to_owned(),
        id: format!("timer:{name}:{at_ms}"),
        application_id: Some(app_id.to_owned()),
        event_id: timer::EXECUTE,
        target: name.to_owned(),
        is_async: false,
        timeout: None,
        timestamp: Some(at_ms),
        arguments: Arguments::new(Encoding::Json, vec![json!({ "appId": app_id })]),
        invocation_context_dto: None,
        init_app_data: None,
        provider: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::TaskLimits;
    use crate::registry::Registry;
    use crate::timer::Frequency;
    use crate::{Context, HandlerError};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// 2026-01-01T00:00:00Z.
    const NEW_YEAR: i64 = 1_767_225_600_000;

    fn counting(
        fires: &Arc<AtomicUsize>,
        fail_first: bool,
    ) -> impl Fn(Context) -> futures::future::BoxFuture<'static, Result<(), HandlerError>>
    + Send
    + Sync
    + 'static
    + use<> {
        let fires = Arc::clone(fires);
        move |ctx: Context| {
            let fires = Arc::clone(&fires);
            Box::pin(async move {
                assert_eq!(ctx.runner().user_token, None, "a timer has no caller");
                let n = fires.fetch_add(1, Ordering::SeqCst);
                if fail_first && n == 0 {
                    panic!("the first occurrence fails");
                }
                Ok(())
            })
        }
    }

    async fn fires_within(schedule: Schedule, span: Duration, fail_first: bool) -> usize {
        let fires = Arc::new(AtomicUsize::new(0));
        let mut registry = Registry::new();
        registry
            .timer("t", schedule, counting(&fires, fail_first))
            .unwrap();
        let dispatcher = Dispatcher::new(Arc::new(registry), TaskLimits::default());
        let stop = CancellationToken::new();
        let running = tokio::spawn(run(
            dispatcher,
            "APP".to_owned(),
            Clock::starting_at(NEW_YEAR),
            None,
            stop.clone(),
        ));
        tokio::time::sleep(span).await;
        stop.cancel();
        let _ = running.await;
        fires.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn a_custom_timer_fires_at_each_occurrence() {
        let every_minute = Schedule::new(NEW_YEAR, Frequency::Custom { every_secs: 60 });
        // Occurrences at +1 min .. +10 min (the start itself is not after "now").
        assert_eq!(
            fires_within(every_minute, Duration::from_secs(630), false).await,
            10
        );
    }

    #[tokio::test(start_paused = true)]
    async fn once_fires_once_and_an_expired_timer_never() {
        let once = Schedule::new(NEW_YEAR + 5_000, Frequency::Once);
        assert_eq!(
            fires_within(once, Duration::from_secs(3600), false).await,
            1
        );
        let expired = Schedule::new(NEW_YEAR - 600_000, Frequency::Custom { every_secs: 60 })
            .expiring(NEW_YEAR - 1);
        assert_eq!(
            fires_within(expired, Duration::from_secs(3600), false).await,
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_occurrence_does_not_stop_the_next() {
        let every_second = Schedule::new(NEW_YEAR, Frequency::Custom { every_secs: 1 });
        assert_eq!(
            fires_within(every_second, Duration::from_millis(3_500), true).await,
            3
        );
    }

    use crate::test_support::Captured;

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_or_panicking_occurrence_is_reported_and_the_next_fires() {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(logs.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let fires = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&fires);
        let mut registry = Registry::new();
        registry
            .timer(
                "flaky",
                Schedule::new(NEW_YEAR, Frequency::Custom { every_secs: 10 }),
                move |_ctx: Context| {
                    let n = counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            // The first occurrence outlives its timeout.
                            0 => std::future::pending::<()>().await,
                            1 => panic!("the second occurrence fails"),
                            _ => {}
                        }
                        Ok(())
                    }
                },
            )
            .unwrap();
        let limits = TaskLimits {
            default_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(5),
        };
        let dispatcher = Dispatcher::new(Arc::new(registry), limits);
        let stop = CancellationToken::new();
        let running = tokio::spawn(run(
            dispatcher,
            "APP".to_owned(),
            Clock::starting_at(NEW_YEAR),
            None,
            stop.clone(),
        ));
        // Occurrences at +10 s (times out at +15 s), +20 s (panics), +30 s.
        tokio::time::sleep(Duration::from_millis(35_500)).await;
        stop.cancel();
        let _ = running.await;
        assert_eq!(fires.load(Ordering::SeqCst), 3, "every occurrence fired");
        let text = String::from_utf8_lossy(&logs.0.lock()).into_owned();
        let failures: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("invocation failed") && l.contains("target=flaky"))
            .collect();
        assert_eq!(failures.len(), 2, "{text}");
        assert!(failures[0].contains("outcome=\"timeout\""), "{text}");
        assert!(failures[1].contains("outcome=\"panic\""), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_decides_which_occurrences_fire_here() {
        let fires = Arc::new(AtomicUsize::new(0));
        let mut registry = Registry::new();
        registry
            .timer(
                "t",
                Schedule::new(NEW_YEAR, Frequency::Custom { every_secs: 1 }),
                counting(&fires, false),
            )
            .unwrap();
        let dispatcher = Dispatcher::new(Arc::new(registry), TaskLimits::default());
        // Only even seconds are this replica's.
        let claim: OccurrenceClaim =
            Arc::new(|_, at| Box::pin(async move { (at / 1000) % 2 == 0 }));
        let stop = CancellationToken::new();
        let running = tokio::spawn(run(
            dispatcher,
            "APP".into(),
            Clock::starting_at(NEW_YEAR),
            Some(claim),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        stop.cancel();
        let _ = running.await;
        assert_eq!(fires.load(Ordering::SeqCst), 5);
    }
}
