//! The set of recently seen `webhook-id`s, so that a replayed delivery is not
//! executed twice. Bounded in count and in time: memory stays flat under
//! sustained load.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Remembers message ids. A shared implementation (Redis) can replace the
/// in-memory one when several replicas must deduplicate together.
pub trait SeenIds: Send + Sync + 'static {
    /// Records `id`; returns `false` if it was already seen within the window.
    fn first_time(&self, id: &str) -> bool;
}

const SHARDS: usize = 16;

/// An in-memory [`SeenIds`] holding at most `capacity` ids, each for at most
/// `window`; the oldest are forgotten first.
pub struct BoundedSeenIds {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    per_shard: usize,
    window: Duration,
}

#[derive(Default)]
struct Shard {
    ids: HashSet<Arc<str>>,
    order: VecDeque<(Instant, Arc<str>)>,
}

impl BoundedSeenIds {
    /// A set remembering up to `capacity` ids for `window` each.
    pub fn new(capacity: usize, window: Duration) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            per_shard,
            window,
        }
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().ids.len()).sum()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SeenIds for BoundedSeenIds {
    fn first_time(&self, id: &str) -> bool {
        let shard = &self.shards[(self.hasher.hash_one(id) as usize) % SHARDS];
        let now = Instant::now();
        let mut shard = shard.lock();
        while let Some((at, _)) = shard.order.front() {
            if now.duration_since(*at) <= self.window && shard.order.len() < self.per_shard {
                break;
            }
            let (_, old) = shard.order.pop_front().expect("front exists");
            shard.ids.remove(&old);
        }
        if shard.ids.contains(id) {
            return false;
        }
        let id: Arc<str> = Arc::from(id);
        shard.ids.insert(Arc::clone(&id));
        shard.order.push_back((now, id));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn remembers_within_window_and_forgets_after() {
        let seen = BoundedSeenIds::new(100, Duration::from_secs(600));
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"));
        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(!seen.first_time("a"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(seen.first_time("b"));
        assert!(seen.first_time("a"), "expired ids are forgotten");
    }

    #[test]
    fn stays_bounded() {
        let seen = BoundedSeenIds::new(1_000, Duration::from_secs(600));
        for i in 0..100_000 {
            assert!(seen.first_time(&format!("id-{i}")));
        }
        assert!(seen.len() <= 1_000 + SHARDS, "{}", seen.len());
    }
}
