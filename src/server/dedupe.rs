//! Replay protection for signed deliveries, and the replies of recent ones.
//!
//! Every accepted `webhook-id` is remembered until its own signed timestamp
//! leaves the acceptance window (timestamp + tolerance, on the wall clock the
//! signature is checked against), with a hash of its body and, within a
//! byte budget, the reply it got. A delivery seen again is never executed
//! again: the same body gets the kept reply (its first reply was lost on the
//! way back), a different body or a forgotten reply gets a refusal.
//!
//! Memory is bounded: at most `capacity` ids and `reply_bytes` of replies.
//! When the id set is full, the id signed earliest is forgotten and its
//! timestamp becomes the *horizon*: every new delivery signed at or before
//! the horizon is refused, since it could be a replay of a forgotten id.
//! So a captured delivery is never executed twice, whatever the rate of
//! other deliveries; a full set refuses old deliveries instead.
//!
//! This module knows nothing of HTTP: a reply is a status number and bytes.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Shards, so that concurrent deliveries rarely wait for one another. A
/// replay of an id always lands in the shard that remembered (or forgot) it.
const SHARDS: usize = 16;

/// A keyed 64-bit hash of a delivery's body ([`Dedupe::fingerprint`]):
/// enough to tell a retry from another body under the same id (both come
/// from the signer, whose signature covers the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint(u64);

/// A reply kept for a retry of the same delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptReply {
    /// The HTTP status it was sent with.
    pub status: u16,
    /// The JSON body it was sent with.
    pub body: Bytes,
}

/// What to do with a delivery that passed its signature check.
#[derive(Debug)]
pub(crate) enum Admission {
    /// A new id: execute it, then hand the reply to the [`Ticket`].
    New(Ticket),
    /// The same id and body as an earlier delivery: send this reply again.
    Replay(KeptReply),
    /// The same id and body as a delivery still running.
    Running,
    /// The id was seen with a different body.
    OtherBody,
    /// The same id and body, but its reply is no longer kept.
    ReplyNotKept,
    /// A new id signed at or before `horizon`: it could be the replay of an
    /// id forgotten when the set was full, so it is refused.
    BeyondHorizon {
        /// Deliveries signed at or before this (seconds since the epoch) are refused.
        horizon: i64,
    },
}

/// The remembered deliveries: bounded in ids and in reply bytes.
#[derive(Clone)]
pub(crate) struct Dedupe {
    inner: Arc<Inner>,
}

/// An id as remembered: 128 bits of two keyed hashes of it. Fixed-size, so
/// remembering an id allocates nothing and the set's memory per id is small;
/// two ids within one window share a key with a probability below 2^-90 at
/// the default capacity, and a sender cannot aim for it without the keys.
type Key = u128;

struct Inner {
    shards: Vec<Mutex<Shard>>,
    /// The keys of the two halves of a [`Key`].
    hashers: [RandomState; 2],
    /// The key of a body's fingerprint: a fast keyed hash (the body is a
    /// kilobyte or more, and no sender can aim for a collision: a body
    /// is signed).
    body_hasher: foldhash::quality::RandomState,
    /// Ids per shard.
    per_shard: usize,
    /// How far a signed timestamp may be from the clock (seconds).
    tolerance_secs: i64,
    /// The highest horizon raised because a shard was full, for the metric.
    capacity_horizon: AtomicI64,
    /// `coderunner_replay_ids_forgotten_total`: counted for every new id
    /// once the set is full, so a handle made once, not looked up by name.
    forgotten: metrics::Counter,
}

/// Hashes a [`Key`] to its high half: it is already a keyed hash, so
/// hashing it again (SipHash, the default) would only cost time. (The low
/// half picks the shard.)
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used for a `Key`; any other input still hashes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = (key >> 64) as u64;
    }
}

type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

struct Shard {
    entries: KeyMap<Entry>,
    /// The order in which ids are forgotten: by signed timestamp.
    ///
    /// It cannot remove an element from its middle, so an id forgotten
    /// early or re-signed later leaves its old element behind: *stale*, as
    /// its entry is gone or has another timestamp. Stale elements are
    /// dropped when they come first, and all at once if they ever make up
    /// half of it.
    by_time: TimeOrder,
    /// The kept replies, newest overwriting oldest.
    replies: ReplyRing,
    /// New deliveries signed at or before this are refused.
    horizon: i64,
}

struct Entry {
    /// The latest signed timestamp this id was accepted with: the id is
    /// remembered while a delivery with that timestamp could be accepted.
    signed_at: i64,
    /// The body's [`Fingerprint`].
    body: u64,
    state: State,
}

enum State {
    Running,
    /// Finished, its reply not kept.
    Done,
    /// Finished, its reply written to the shard's [`ReplyRing`] at `at`
    /// (still there unless newer replies overwrote it).
    Kept {
        at: u64,
        len: u32,
        status: u16,
    },
}

/// The kept replies of a shard: one buffer of the shard's reply budget,
/// written round and round. A reply is copied in where the last one ended
/// (or at the start, if it does not fit before the end) and is readable
/// until the writing comes round to its bytes again. So keeping a reply
/// allocates nothing, and forgetting one frees nothing: the memory is the
/// budget, allocated once (on the first reply), whatever the load.
struct ReplyRing {
    buf: Vec<u8>,
    budget: usize,
    /// Bytes written since the start (skipped ends included): the position
    /// of the next reply, counted without wrapping.
    written: u64,
}

impl ReplyRing {
    fn new(budget: usize) -> Self {
        Self {
            buf: Vec::new(),
            budget,
            written: 0,
        }
    }

    /// Copies `reply` in; returns its position, or `None` if it is larger
    /// than the whole budget.
    fn keep(&mut self, reply: &[u8]) -> Option<u64> {
        let len = reply.len() as u64;
        let budget = self.budget as u64;
        if budget == 0 || len > budget {
            return None;
        }
        if self.buf.len() != self.budget {
            // Zeroed, so its pages become memory only as replies reach them.
            self.buf = vec![0; self.budget];
        }
        let mut offset = self.written % budget;
        if offset + len > budget {
            // Does not fit before the end: skip to the start.
            self.written += budget - offset;
            offset = 0;
        }
        let at = self.written;
        let start = offset as usize;
        self.buf[start..start + reply.len()].copy_from_slice(reply);
        self.written += len;
        Some(at)
    }

    /// The reply kept at `at`, unless later ones have overwritten it.
    fn get(&self, at: u64, len: u32) -> Option<&[u8]> {
        let budget = self.budget as u64;
        if budget == 0 || self.written > at.saturating_add(budget) {
            return None;
        }
        let start = (at % budget) as usize;
        self.buf.get(start..start + len as usize)
    }

    /// Bytes of the budget in use.
    #[cfg(test)]
    fn used(&self) -> usize {
        usize::try_from(self.written).map_or(self.budget, |w| w.min(self.budget))
    }
}

impl Dedupe {
    /// Remembers up to `capacity` ids (and up to `reply_bytes` of their
    /// replies) for deliveries signed within `tolerance_secs` of the clock.
    pub(crate) fn new(capacity: usize, reply_bytes: usize, tolerance_secs: u64) -> Self {
        let reply_bytes_per_shard = reply_bytes / SHARDS;
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shard = || {
            Mutex::new(Shard {
                // Room for twice the ids from the start: under the set's
                // churn (an id in, the oldest out) the table fills with
                // deleted marks, and hashbrown then doubles any table more
                // than half full. Grown to that size on the way, all the
                // shards would double at once under load, old and new
                // tables held together (a 17 MiB peak at the defaults).
                entries: KeyMap::with_capacity_and_hasher(2 * per_shard, Default::default()),
                by_time: TimeOrder::default(),
                replies: ReplyRing::new(reply_bytes_per_shard),
                horizon: i64::MIN,
            })
        };
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| shard()).collect(),
                hashers: [RandomState::new(), RandomState::new()],
                body_hasher: foldhash::quality::RandomState::default(),
                per_shard,
                tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
                capacity_horizon: AtomicI64::new(i64::MIN),
                forgotten: metrics::counter!("coderunner_replay_ids_forgotten_total"),
            }),
        }
    }

    fn key(&self, id: &str) -> Key {
        let [a, b] = &self.inner.hashers;
        (u128::from(a.hash_one(id)) << 64) | u128::from(b.hash_one(id))
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        &self.inner.shards[(key as usize) % SHARDS]
    }

    /// The fingerprint of a delivery's body, for [`Dedupe::admit`].
    pub(crate) fn fingerprint(&self, body: &[u8]) -> Fingerprint {
        Fingerprint(self.inner.body_hasher.hash_one(body))
    }

    /// Decides about a delivery of `id` signed at `signed_at` with a body
    /// of fingerprint `body`, at wall-clock time `now` (both in seconds
    /// since the epoch).
    pub(crate) fn admit(&self, id: &str, signed_at: i64, body: Fingerprint, now: i64) -> Admission {
        let key = self.key(id);
        let Fingerprint(body) = body;
        let mut shard = self.shard(key).lock();
        shard.expire(now.saturating_sub(self.inner.tolerance_secs));
        if let Some(entry) = shard.entries.get(&key) {
            let (known_at, same_body) = (entry.signed_at, entry.body == body);
            let answer = match entry.state {
                _ if !same_body => Admission::OtherBody,
                State::Running => Admission::Running,
                State::Kept { at, len, status } => match shard.replies.get(at, len) {
                    Some(body) => Admission::Replay(KeptReply {
                        status,
                        body: Bytes::copy_from_slice(body),
                    }),
                    None => Admission::ReplyNotKept,
                },
                State::Done => Admission::ReplyNotKept,
            };
            if signed_at > known_at {
                // A retry signed later stays replayable for longer (its
                // earlier element in `by_time` is now stale).
                if let Some(entry) = shard.entries.get_mut(&key) {
                    entry.signed_at = signed_at;
                }
                shard.remember_at(signed_at, key);
            }
            return answer;
        }
        if signed_at <= shard.horizon {
            return Admission::BeyondHorizon {
                horizon: shard.horizon,
            };
        }
        if shard.entries.len() >= self.inner.per_shard {
            let oldest = shard.oldest().unwrap_or(i64::MIN);
            if signed_at <= oldest {
                // Older than everything remembered: forgetting another id
                // for it would not help it in.
                return Admission::BeyondHorizon { horizon: oldest };
            }
            let horizon = shard.forget_oldest();
            self.raise_capacity_horizon(horizon);
        }
        shard.entries.insert(
            key,
            Entry {
                signed_at,
                body,
                state: State::Running,
            },
        );
        shard.remember_at(signed_at, key);
        Admission::New(Ticket {
            dedupe: self.clone(),
            id: Some(key),
        })
    }

    fn raise_capacity_horizon(&self, horizon: i64) {
        let before = self
            .inner
            .capacity_horizon
            .fetch_max(horizon, Ordering::Relaxed);
        if horizon > before {
            metrics::gauge!("coderunner_replay_horizon_seconds").set(horizon as f64);
        }
        self.inner.forgotten.increment(1);
    }

    /// The highest horizon raised because the set was full (seconds since
    /// the epoch), or `None` if it never was.
    #[cfg(test)]
    pub(crate) fn capacity_horizon(&self) -> Option<i64> {
        Some(self.inner.capacity_horizon.load(Ordering::Relaxed)).filter(|h| *h != i64::MIN)
    }

    /// How many ids are remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().entries.len())
            .sum()
    }

    /// Whether no id is remembered.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many bytes of the reply budget are in use now.
    #[cfg(test)]
    pub(crate) fn reply_bytes(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().replies.used())
            .sum()
    }

    /// Forgets a delivery still running (never run, in fact).
    fn forget(&self, key: Key) {
        let mut shard = self.shard(key).lock();
        if let Some(entry) = shard.entries.get(&key) {
            if matches!(entry.state, State::Running) {
                // Its element in `by_time` is now stale.
                shard.entries.remove(&key);
            }
        }
    }

    fn finish(&self, key: Key, reply: Option<(u16, &[u8])>) {
        let mut shard = self.shard(key).lock();
        let Shard {
            entries, replies, ..
        } = &mut *shard;
        let Some(entry) = entries.get_mut(&key) else {
            // Forgotten meanwhile (the horizon covers it).
            return;
        };
        if !matches!(entry.state, State::Running) {
            return;
        }
        entry.state = reply
            .and_then(|(status, body)| {
                let len = u32::try_from(body.len()).ok()?;
                let at = replies.keep(body)?;
                Some(State::Kept { at, len, status })
            })
            .unwrap_or(State::Done);
    }
}

impl Shard {
    /// Forgets ids whose signed timestamp is before `oldest_acceptable`: no
    /// delivery carrying it passes the signature check any more. The horizon
    /// follows, so a clock set back does not make them acceptable again.
    ///
    /// Looks an id up only once its second has passed: the usual call, with
    /// nothing to expire, reads the first second of `by_time` and no more
    /// (a lookup in the id table is a cache miss under load).
    fn expire(&mut self, oldest_acceptable: i64) {
        while let Some((at, id)) = self.by_time.first() {
            if at >= oldest_acceptable {
                return;
            }
            self.by_time.pop_first();
            if is_live(&self.entries, at, id) {
                self.forget_at(at, id);
            }
        }
    }

    /// The timestamp of the id signed earliest, dropping stale elements
    /// on the way.
    fn oldest(&mut self) -> Option<i64> {
        while let Some((at, id)) = self.by_time.first() {
            if is_live(&self.entries, at, id) {
                return Some(at);
            }
            self.by_time.pop_first();
        }
        None
    }

    /// Orders `key` (remembered, signed at `at`) for forgetting.
    fn remember_at(&mut self, at: i64, key: Key) {
        self.by_time.push(at, key);
        if self.by_time.len() > 2 * self.entries.len().max(64) {
            // Mostly stale: at most one element per remembered id again.
            let entries = &self.entries;
            self.by_time.retain(|at, id| is_live(entries, at, id));
        }
    }

    /// Forgets the id signed earliest and raises the horizon to its
    /// timestamp; returns that timestamp.
    fn forget_oldest(&mut self) -> i64 {
        let at = self.oldest().expect("called on a non-empty set");
        let (_, id) = self.by_time.pop_first().expect("`oldest` found it");
        self.forget_at(at, id);
        at
    }

    /// Forgets `id`, signed at `at` (its element already taken out of
    /// `by_time`), and raises the horizon to `at`.
    fn forget_at(&mut self, at: i64, id: Key) {
        self.entries.remove(&id);
        self.horizon = self.horizon.max(at);
    }
}

/// Whether `by_time`'s element `(at, id)` is the one of a remembered id.
fn is_live(entries: &KeyMap<Entry>, at: i64, id: Key) -> bool {
    entries.get(&id).is_some_and(|entry| entry.signed_at == at)
}

/// Ids by the second they were signed at, earliest first: a vector per
/// second, in a B-tree of the seconds. Signed timestamps are whole seconds
/// within the acceptance window, so there are few seconds (at most twice
/// the tolerance, plus stale ones) and many ids each: adding an id and
/// taking one of the earliest second are a push and a pop at the end of a
/// vector, where a binary heap of all the ids moved an element through
/// every level of itself (cache misses each) on every pop. Which id of one
/// second comes first does not matter: they share their timestamp.
///
/// Must not hold an empty vector.
#[derive(Default)]
struct TimeOrder {
    seconds: BTreeMap<i64, Vec<Key>>,
    len: usize,
}

impl TimeOrder {
    fn push(&mut self, at: i64, id: Key) {
        self.seconds.entry(at).or_default().push(id);
        self.len += 1;
    }

    /// An id of the earliest second, and that second.
    fn first(&self) -> Option<(i64, Key)> {
        let (&at, ids) = self.seconds.first_key_value()?;
        Some((at, *ids.last()?))
    }

    /// Takes out what [`first`](Self::first) returns.
    fn pop_first(&mut self) -> Option<(i64, Key)> {
        let mut earliest = self.seconds.first_entry()?;
        let at = *earliest.key();
        let id = earliest.get_mut().pop()?;
        if earliest.get().is_empty() {
            earliest.remove();
        }
        self.len -= 1;
        Some((at, id))
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Keeps only the elements for which `keep(at, id)` holds.
    fn retain(&mut self, mut keep: impl FnMut(i64, Key) -> bool) {
        self.seconds.retain(|&at, ids| {
            ids.retain(|&id| keep(at, id));
            !ids.is_empty()
        });
        self.len = self.seconds.values().map(Vec::len).sum();
    }
}

/// The right to execute a new delivery. Hand it the reply with
/// [`Ticket::finish`]; dropped without one, the id stays remembered with no
/// reply (a retry is refused rather than executed again).
#[derive(Debug)]
pub(crate) struct Ticket {
    dedupe: Dedupe,
    /// `None` once finished.
    id: Option<Key>,
}

impl std::fmt::Debug for Dedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedupe").finish_non_exhaustive()
    }
}

impl Ticket {
    /// Forgets this delivery, as if it had never been admitted: it did not
    /// run (a store it needed was unavailable), so its retry may.
    pub(crate) fn abandon(mut self) {
        if let Some(key) = self.id.take() {
            self.dedupe.forget(key);
        }
    }

    /// Keeps the reply (`status`, `body`) for retries of this delivery (if
    /// it fits the budget): copied, so the caller's buffer stays its own.
    pub(crate) fn finish(mut self, status: u16, body: &[u8]) {
        if let Some(key) = self.id.take() {
            self.dedupe.finish(key, Some((status, body)));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(key) = self.id.take() {
            self.dedupe.finish(key, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const H: Fingerprint = Fingerprint(7);

    #[test]
    fn a_remembered_id_takes_48_bytes_of_table() {
        // The set holds `seen_ids_capacity` of these (200,000 by default):
        // a field more is megabytes more (docs/benchmarks.md).
        assert!(std::mem::size_of::<(Key, Entry)>() <= 48);
        // And 16 in the time order (its timestamp is its second's, once).
        assert_eq!(std::mem::size_of::<Key>(), 16);
    }

    #[test]
    fn the_time_order_gives_the_earliest_second_first_and_drops_what_it_is_told() {
        let mut order = TimeOrder::default();
        for (at, id) in [(NOW + 2, 1), (NOW, 2), (NOW + 1, 3), (NOW, 4), (NOW + 2, 5)] {
            order.push(at, id);
        }
        assert_eq!(order.len(), 5);
        let first = order.first();
        assert!(matches!(first, Some((NOW, 2 | 4))), "{first:?}");
        assert_eq!(order.pop_first(), first);
        assert!(matches!(order.pop_first(), Some((NOW, 2 | 4))));
        assert_eq!(order.pop_first(), Some((NOW + 1, 3)));
        assert_eq!(order.seconds.len(), 1, "an emptied second is dropped");
        order.push(NOW, 6);
        order.retain(|at, id| at == NOW + 2 && id != 1);
        assert_eq!(order.len(), 1);
        assert_eq!(order.pop_first(), Some((NOW + 2, 5)));
        assert_eq!(order.pop_first(), None);
        assert!(order.seconds.is_empty());
    }

    fn reply(text: &str) -> KeptReply {
        KeptReply {
            status: 200,
            body: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    fn admit_new(d: &Dedupe, id: &str, at: i64, now: i64) -> Ticket {
        match d.admit(id, at, H, now) {
            Admission::New(ticket) => ticket,
            other => panic!("{id} at {at}: {other:?}"),
        }
    }

    #[test]
    fn a_seen_id_is_refused_for_its_whole_window_and_forgotten_after() {
        let d = Dedupe::new(100, 1 << 20, 300);
        drop(admit_new(&d, "a", NOW, NOW));
        assert!(matches!(d.admit("a", NOW, H, NOW), Admission::ReplyNotKept));
        // Still remembered at the last second it could be accepted.
        assert!(matches!(
            d.admit("a", NOW, H, NOW + 300),
            Admission::ReplyNotKept
        ));
        // A second later no signature check would accept it: forgotten, and
        // the sender's own retry, signed again, runs.
        drop(admit_new(&d, "a", NOW + 301, NOW + 301));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn a_retry_of_the_same_body_gets_the_kept_reply_another_body_does_not() {
        let d = Dedupe::new(100, 1 << 20, 300);
        let ticket = admit_new(&d, "a", NOW, NOW);
        assert!(matches!(d.admit("a", NOW, H, NOW), Admission::Running));
        ticket.finish(200, b"first");
        match d.admit("a", NOW + 5, H, NOW + 5) {
            Admission::Replay(kept) => assert_eq!(kept, reply("first")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            d.admit("a", NOW, Fingerprint(8), NOW),
            Admission::OtherBody
        ));
        // The retry signed later keeps the id for its own window.
        assert!(matches!(
            d.admit("a", NOW, H, NOW + 304),
            Admission::Replay(_)
        ));
    }

    #[test]
    fn a_full_set_refuses_what_it_forgot_instead_of_executing_it_again() {
        // One id per shard at most: every new id forgets an older one.
        let d = Dedupe::new(SHARDS, 1 << 20, 300);
        drop(admit_new(&d, "captured", NOW - 10, NOW));
        for i in 0..10_000 {
            let at = NOW - 9 + (i % 9);
            match d.admit(&format!("flood-{i}"), at, H, NOW) {
                Admission::New(_) | Admission::BeyondHorizon { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(d.len() <= SHARDS);
        assert!(matches!(
            d.admit("captured", NOW - 10, H, NOW),
            Admission::BeyondHorizon { .. } | Admission::ReplyNotKept
        ));
        let horizon = d.capacity_horizon().expect("the set was full");
        assert!(horizon >= NOW - 10, "{horizon}");
        // A fresh delivery is still accepted.
        drop(admit_new(&d, "fresh", NOW, NOW));
    }

    #[test]
    fn a_captured_delivery_stays_refused_through_two_million_others_across_its_window() {
        // The default capacity, and deliveries spread over the whole window:
        // the captured one is refused at every point, the set never holds
        // more than its capacity, and replies stay within their budget.
        let capacity = 200_000;
        let d = Dedupe::new(capacity, 1 << 20, 300);
        let captured = admit_new(&d, "captured", NOW, NOW);
        captured.finish(200, b"the one reply");
        for i in 0..2_000_000_i64 {
            let now = NOW + i * 300 / 2_000_000;
            if let Admission::New(ticket) = d.admit(&format!("other-{i}"), now, H, now) {
                ticket.finish(200, b"r");
            }
            if i % 100_000 == 0 {
                assert!(
                    !matches!(d.admit("captured", NOW, H, now), Admission::New(_)),
                    "the captured delivery ran again after {i} others"
                );
                assert!(d.len() <= capacity);
                assert!(d.reply_bytes() <= 1 << 20);
            }
        }
        assert!(!matches!(
            d.admit("captured", NOW, H, NOW + 300),
            Admission::New(_)
        ));
    }

    #[test]
    fn replies_stay_within_their_byte_budget_oldest_dropped_first() {
        let d = Dedupe::new(1000, SHARDS * 100, 300);
        // All in one shard? Ids spread over shards; fill every shard.
        let mut ids = Vec::new();
        for i in 0..200 {
            let id = format!("r{i}");
            admit_new(&d, &id, NOW, NOW).finish(200, "x".repeat(40).as_bytes());
            ids.push(id);
        }
        assert!(d.reply_bytes() <= SHARDS * 100, "{}", d.reply_bytes());
        // The newest reply is kept, the oldest ones are not (but the id is).
        assert!(matches!(
            d.admit(&ids[199], NOW, H, NOW),
            Admission::Replay(_)
        ));
        assert!(matches!(
            d.admit(&ids[0], NOW, H, NOW),
            Admission::ReplyNotKept
        ));
        // A reply larger than the budget is not kept at all.
        admit_new(&d, "big", NOW, NOW).finish(200, "y".repeat(1000).as_bytes());
        assert!(matches!(
            d.admit("big", NOW, H, NOW),
            Admission::ReplyNotKept
        ));
    }

    #[test]
    fn the_reply_ring_reads_back_what_is_not_yet_overwritten() {
        let mut ring = ReplyRing::new(10);
        let a = ring.keep(b"aaaa").unwrap();
        let b = ring.keep(b"bbbb").unwrap();
        assert_eq!(ring.get(a, 4), Some(&b"aaaa"[..]));
        // Does not fit before the end: written at the start, over "aaaa".
        let c = ring.keep(b"cccc").unwrap();
        assert_eq!(ring.get(a, 4), None);
        assert_eq!(ring.get(b, 4), Some(&b"bbbb"[..]));
        assert_eq!(ring.get(c, 4), Some(&b"cccc"[..]));
        let d = ring.keep(b"dddd").unwrap();
        assert_eq!(ring.get(b, 4), None);
        assert_eq!(ring.get(c, 4), Some(&b"cccc"[..]));
        assert_eq!(ring.get(d, 4), Some(&b"dddd"[..]));
        assert_eq!(ring.used(), 10);
        // Larger than the whole budget: not kept; nor anything with none.
        assert_eq!(ring.keep(&[0; 11]), None);
        assert_eq!(ReplyRing::new(0).keep(b""), None);
    }

    #[test]
    fn retries_signed_later_leave_the_time_order_bounded() {
        let d = Dedupe::new(100, 1 << 20, 300);
        admit_new(&d, "a", NOW, NOW).finish(200, b"first");
        // Each retry, signed a second later, leaves a stale element behind.
        for i in 1..10_000 {
            assert!(matches!(
                d.admit("a", NOW + i, H, NOW + i),
                Admission::Replay(_)
            ));
        }
        let shard = d.shard(d.key("a")).lock();
        assert_eq!(shard.entries.len(), 1);
        assert!(shard.by_time.len() <= 2 * 64 + 1, "{}", shard.by_time.len());
        drop(shard);
        // Remembered for the window of its latest signature, not its first.
        assert!(matches!(
            d.admit("a", NOW + 9_999, H, NOW + 9_999 + 300),
            Admission::Replay(_)
        ));
    }

    #[test]
    fn an_abandoned_id_admitted_again_is_forgotten_by_its_new_timestamp() {
        // One id per shard: a new id in the same shard forgets the old one.
        let d = Dedupe::new(SHARDS, 1 << 20, 300);
        admit_new(&d, "a", NOW - 5, NOW).abandon();
        drop(admit_new(&d, "a", NOW, NOW));
        // "a"'s first element is stale: it does not raise the horizon.
        assert_eq!(d.shard(d.key("a")).lock().oldest(), Some(NOW));
        assert!(matches!(d.admit("a", NOW, H, NOW), Admission::ReplyNotKept));
    }

    #[test]
    fn an_abandoned_delivery_can_run_when_retried() {
        let d = Dedupe::new(100, 1 << 20, 300);
        admit_new(&d, "a", NOW, NOW).abandon();
        assert!(d.is_empty());
        drop(admit_new(&d, "a", NOW, NOW));
        assert!(matches!(d.admit("a", NOW, H, NOW), Admission::ReplyNotKept));
    }

    #[test]
    fn a_clock_set_back_does_not_revive_expired_ids() {
        let d = Dedupe::new(10_000, 1 << 20, 300);
        drop(admit_new(&d, "a", NOW, NOW));
        // Much later: "a" is expired and forgotten (every shard is visited).
        for i in 0..200 {
            drop(admit_new(&d, &format!("b{i}"), NOW + 1000, NOW + 1000));
        }
        // The clock goes back: "a" would pass the signature check again.
        assert!(matches!(
            d.admit("a", NOW, H, NOW),
            Admission::BeyondHorizon { .. }
        ));
    }
}
