//! The set of recently seen `webhook-id`s, so that a replayed delivery is not
//! executed twice. Bounded in count and in time: memory stays flat under
//! sustained load.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
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

/// An id as remembered: 128 bits of two SipHash-1-3 hashes under random
/// per-process keys. Fixed-size, so remembering an id allocates nothing
/// and takes a third of the memory of the id itself; two different ids
/// within one window share a fingerprint with a probability below 2^-90
/// at the default capacity, and a sender cannot aim for it without the keys.
type Fingerprint = [u64; 2];

/// Hashes a [`Fingerprint`] for the set by folding its halves: it is
/// already a keyed hash.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_ne_bytes(word);
        }
    }

    // The array's length prefix adds nothing.
    fn write_usize(&mut self, _: usize) {}
}

/// An in-memory [`SeenIds`] holding at most `capacity` ids, each for at most
/// `window`; the oldest are forgotten first.
pub struct BoundedSeenIds {
    shards: Vec<Mutex<Shard>>,
    /// The keys of the two halves of a fingerprint.
    keys: [RandomState; 2],
    per_shard: usize,
    window: Duration,
}

#[derive(Default)]
struct Shard {
    ids: HashSet<Fingerprint, BuildHasherDefault<FingerprintHasher>>,
    order: VecDeque<(Instant, Fingerprint)>,
}

impl BoundedSeenIds {
    /// A set remembering up to `capacity` ids for `window` each.
    pub fn new(capacity: usize, window: Duration) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            keys: [RandomState::new(), RandomState::new()],
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
        let fingerprint = [self.keys[0].hash_one(id), self.keys[1].hash_one(id)];
        let shard = &self.shards[(fingerprint[1] as usize) % SHARDS];
        let now = Instant::now();
        let mut shard = shard.lock();
        while let Some((at, _)) = shard.order.front() {
            if now.duration_since(*at) <= self.window && shard.order.len() < self.per_shard {
                break;
            }
            let (_, old) = shard.order.pop_front().expect("front exists");
            shard.ids.remove(&old);
        }
        if !shard.ids.insert(fingerprint) {
            return false;
        }
        shard.order.push_back((now, fingerprint));
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
