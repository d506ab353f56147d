//! The emulator fires the runners' timers on their schedules, as a
//! Backendless server does: each occurrence becomes a timer task (event 800,
//! target = the timer's name) with no caller. The schedules come from the
//! runner's model (`GET {runner}/model` over HTTP; the registered or deployed
//! model over Redis). `POST /__emulator/timers/{name}/run` fires one at once.
//!
//! The loop looks once a second; an occurrence missed while the emulator was
//! busy fires once, late, not once per missed occurrence.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::timer::{Clock, Schedule};

/// How often the loop looks for due occurrences.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// Fires due occurrences until `stop` resolves: `timers` lists the current
/// timers, `fire` runs one.
pub(crate) async fn run<L, F>(
    timers: L,
    fire: F,
    clock: Clock,
    stop: impl std::future::Future<Output = ()>,
) where
    L: Fn() -> BoxFuture<'static, Vec<(String, Schedule)>>,
    F: Fn(String) + Send + Sync,
{
    // The last instant each timer was considered up to.
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stop => return,
        }
        let now = clock.now_ms();
        let current = timers().await;
        seen.retain(|name, _| current.iter().any(|(n, _)| n == name));
        for (name, schedule) in current {
            // A timer first seen now fires from now on.
            let since = *seen.entry(name.clone()).or_insert(now);
            if schedule.next_after(since).is_some_and(|next| next <= now) {
                fire(name.clone());
            }
            seen.insert(name, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timer::Frequency;
    use std::sync::{Arc, Mutex};

    const NEW_YEAR: i64 = 1_767_225_600_000;

    async fn fired(timers: Vec<(String, Schedule)>, span: Duration) -> Vec<String> {
        let fired = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&fired);
        let list = move || -> BoxFuture<'static, Vec<(String, Schedule)>> {
            let timers = timers.clone();
            Box::pin(async move { timers })
        };
        run(
            list,
            move |name| log.lock().unwrap().push(name),
            Clock::starting_at(NEW_YEAR),
            tokio::time::sleep(span),
        )
        .await;
        fired.lock().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn each_timer_fires_at_its_occurrences() {
        let timers = vec![
            (
                "minute".to_owned(),
                Schedule::new(NEW_YEAR, Frequency::Custom { every_secs: 60 }),
            ),
            (
                "once".to_owned(),
                Schedule::new(NEW_YEAR + 90_000, Frequency::Once),
            ),
            (
                "expired".to_owned(),
                Schedule::new(NEW_YEAR - 3_600_000, Frequency::Custom { every_secs: 60 })
                    .expiring(NEW_YEAR - 60_000),
            ),
        ];
        let names = fired(timers, Duration::from_millis(300_500)).await;
        let count = |n: &str| names.iter().filter(|f| *f == n).count();
        assert_eq!(count("minute"), 5, "{names:?}");
        assert_eq!(count("once"), 1);
        assert_eq!(count("expired"), 0);
    }
}
