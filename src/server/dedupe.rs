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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// Shards, so that concurrent deliveries rarely wait for one another. A
/// replay of an id always lands in the shard that remembered (or forgot) it.
const SHARDS: usize = 16;

/// A SHA-256 of a delivery's body.
pub type BodyHash = [u8; 32];

/// A reply kept for a retry of the same delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReply {
    /// The HTTP status it was sent with.
    pub status: u16,
    /// The JSON body it was sent with.
    pub body: Bytes,
}

/// What to do with a delivery that passed its signature check.
#[derive(Debug)]
pub enum Admission {
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
pub struct Dedupe {
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
    /// Ids per shard.
    per_shard: usize,
    /// Reply bytes per shard.
    reply_bytes_per_shard: usize,
    /// How far a signed timestamp may be from the clock (seconds).
    tolerance_secs: i64,
    /// The highest horizon raised because a shard was full, for the metric.
    capacity_horizon: AtomicI64,
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

/// A [`Key`] as two 64-bit halves, for a tighter `by_time`.
type Halves = [u64; 2];

fn halves(key: Key) -> Halves {
    [(key >> 64) as u64, key as u64]
}

fn joined([high, low]: Halves) -> Key {
    (u128::from(high) << 64) | u128::from(low)
}

type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

struct Shard {
    entries: KeyMap<Entry>,
    /// `(signed timestamp, id)`: the order in which ids are forgotten.
    /// (The id in two halves: a `u128` would pad each element to 32 bytes.)
    by_time: BTreeSet<(i64, Halves)>,
    /// `(sequence, id)` of the kept replies, oldest first, so that the
    /// oldest replies make room for new ones within the byte budget.
    replies: BTreeMap<u64, Key>,
    reply_bytes: usize,
    next_reply: u64,
    /// New deliveries signed at or before this are refused.
    horizon: i64,
}

struct Entry {
    /// The latest signed timestamp this id was accepted with: the id is
    /// remembered while a delivery with that timestamp could be accepted.
    signed_at: i64,
    /// The first 64 bits of the body's hash: enough to tell a retry from
    /// another body under the same id (both come from the signer), and an
    /// entry half the size of one with the whole hash.
    body: u64,
    state: State,
}

enum State {
    Running,
    /// Finished; the reply with its sequence in `Shard::replies`, if kept.
    /// (Boxed: most remembered ids have no reply kept, and their entries
    /// stay small.)
    Done(Option<Box<(u64, KeptReply)>>),
}

impl Dedupe {
    /// Remembers up to `capacity` ids (and up to `reply_bytes` of their
    /// replies) for deliveries signed within `tolerance_secs` of the clock.
    pub fn new(capacity: usize, reply_bytes: usize, tolerance_secs: u64) -> Self {
        let shard = || {
            Mutex::new(Shard {
                entries: KeyMap::default(),
                by_time: BTreeSet::new(),
                replies: BTreeMap::new(),
                reply_bytes: 0,
                next_reply: 0,
                horizon: i64::MIN,
            })
        };
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| shard()).collect(),
                hashers: [RandomState::new(), RandomState::new()],
                per_shard: capacity.div_ceil(SHARDS).max(1),
                reply_bytes_per_shard: reply_bytes / SHARDS,
                tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
                capacity_horizon: AtomicI64::new(i64::MIN),
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

    /// Decides about a delivery of `id` signed at `signed_at` with a body
    /// hashing to `body`, at wall-clock time `now` (both in seconds since
    /// the epoch).
    pub fn admit(&self, id: &str, signed_at: i64, body: BodyHash, now: i64) -> Admission {
        let key = self.key(id);
        let body = body_fingerprint(&body);
        let mut shard = self.shard(key).lock();
        shard.expire(now.saturating_sub(self.inner.tolerance_secs));
        if let Some(entry) = shard.entries.get(&key) {
            let (known_at, same_body) = (entry.signed_at, entry.body == body);
            let answer = match &entry.state {
                _ if !same_body => Admission::OtherBody,
                State::Running => Admission::Running,
                State::Done(Some(kept)) => Admission::Replay(kept.1.clone()),
                State::Done(None) => Admission::ReplyNotKept,
            };
            if signed_at > known_at {
                // A retry signed later stays replayable for longer.
                if shard.by_time.remove(&(known_at, halves(key))) {
                    shard.by_time.insert((signed_at, halves(key)));
                    if let Some(entry) = shard.entries.get_mut(&key) {
                        entry.signed_at = signed_at;
                    }
                }
            }
            return answer;
        }
        if signed_at <= shard.horizon {
            return Admission::BeyondHorizon {
                horizon: shard.horizon,
            };
        }
        if shard.entries.len() >= self.inner.per_shard {
            let oldest = shard.by_time.first().map_or(i64::MIN, |(at, _)| *at);
            if signed_at <= oldest {
                // Older than everything remembered: forgetting another id
                // for it would not help it in.
                return Admission::BeyondHorizon { horizon: oldest };
            }
            let horizon = shard.forget_oldest();
            self.raise_capacity_horizon(horizon);
        }
        shard.by_time.insert((signed_at, halves(key)));
        shard.entries.insert(
            key,
            Entry {
                signed_at,
                body,
                state: State::Running,
            },
        );
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
        metrics::counter!("coderunner_replay_ids_forgotten_total").increment(1);
    }

    /// The highest horizon raised because the set was full (seconds since
    /// the epoch), or `None` if it never was.
    pub fn capacity_horizon(&self) -> Option<i64> {
        Some(self.inner.capacity_horizon.load(Ordering::Relaxed)).filter(|h| *h != i64::MIN)
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().entries.len())
            .sum()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many reply bytes are kept now.
    pub fn reply_bytes(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().reply_bytes).sum()
    }

    /// Forgets a delivery still running (never run, in fact).
    fn forget(&self, key: Key) {
        let mut shard = self.shard(key).lock();
        if let Some(entry) = shard.entries.get(&key) {
            if matches!(entry.state, State::Running) {
                let at = entry.signed_at;
                shard.entries.remove(&key);
                shard.by_time.remove(&(at, halves(key)));
            }
        }
    }

    fn finish(&self, key: Key, reply: Option<KeptReply>) {
        let budget = self.inner.reply_bytes_per_shard;
        // Kept in an allocation of its own size, not the (larger) buffer
        // the reply was written into, so the budget is the memory used.
        let reply = reply.filter(|r| r.body.len() <= budget).map(|r| KeptReply {
            status: r.status,
            body: Bytes::copy_from_slice(&r.body),
        });
        let mut shard = self.shard(key).lock();
        let sequence = shard.next_reply;
        let Some(entry) = shard.entries.get_mut(&key) else {
            // Forgotten meanwhile (the horizon covers it).
            return;
        };
        if !matches!(entry.state, State::Running) {
            return;
        }
        let Some(reply) = reply else {
            entry.state = State::Done(None);
            return;
        };
        let size = reply.body.len();
        entry.state = State::Done(Some(Box::new((sequence, reply))));
        shard.next_reply += 1;
        shard.reply_bytes += size;
        shard.replies.insert(sequence, key);
        while shard.reply_bytes > budget {
            let Some((_, oldest)) = shard.replies.pop_first() else {
                break;
            };
            let freed = match shard.entries.get_mut(&oldest) {
                Some(entry) => match std::mem::replace(&mut entry.state, State::Done(None)) {
                    State::Done(Some(kept)) => kept.1.body.len(),
                    _ => 0,
                },
                None => 0,
            };
            shard.reply_bytes -= freed;
        }
    }
}

fn body_fingerprint(hash: &BodyHash) -> u64 {
    let mut first = [0; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

impl Shard {
    /// Forgets ids whose signed timestamp is before `oldest_acceptable`: no
    /// delivery carrying it passes the signature check any more. The horizon
    /// follows, so a clock set back does not make them acceptable again.
    fn expire(&mut self, oldest_acceptable: i64) {
        while let Some((at, _)) = self.by_time.first() {
            if *at >= oldest_acceptable {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Forgets the id signed earliest and raises the horizon to its
    /// timestamp; returns that timestamp.
    fn forget_oldest(&mut self) -> i64 {
        let (at, id) = self.by_time.pop_first().expect("called on a non-empty set");
        if let Some(Entry {
            state: State::Done(Some(kept)),
            ..
        }) = self.entries.remove(&joined(id))
        {
            self.replies.remove(&kept.0);
            self.reply_bytes -= kept.1.body.len();
        }
        self.horizon = self.horizon.max(at);
        at
    }
}

/// The right to execute a new delivery. Hand it the reply with
/// [`Ticket::finish`]; dropped without one, the id stays remembered with no
/// reply (a retry is refused rather than executed again).
#[derive(Debug)]
pub struct Ticket {
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
    pub fn abandon(mut self) {
        if let Some(key) = self.id.take() {
            self.dedupe.forget(key);
        }
    }

    /// Keeps `reply` for retries of this delivery (if it fits the budget).
    pub fn finish(mut self, reply: KeptReply) {
        if let Some(key) = self.id.take() {
            self.dedupe.finish(key, Some(reply));
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
    const H: BodyHash = [7; 32];

    #[test]
    fn a_remembered_id_takes_48_bytes_of_table() {
        // The set holds `seen_ids_capacity` of these (200,000 by default):
        // a field more is megabytes more (docs/benchmarks.md).
        assert!(std::mem::size_of::<(Key, Entry)>() <= 48);
        assert!(std::mem::size_of::<(i64, Halves)>() <= 24);
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
        ticket.finish(reply("first"));
        match d.admit("a", NOW + 5, H, NOW + 5) {
            Admission::Replay(kept) => assert_eq!(kept, reply("first")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            d.admit("a", NOW, [8; 32], NOW),
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
        captured.finish(reply("the one reply"));
        for i in 0..2_000_000_i64 {
            let now = NOW + i * 300 / 2_000_000;
            if let Admission::New(ticket) = d.admit(&format!("other-{i}"), now, H, now) {
                ticket.finish(reply("r"));
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
            admit_new(&d, &id, NOW, NOW).finish(reply(&"x".repeat(40)));
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
        admit_new(&d, "big", NOW, NOW).finish(reply(&"y".repeat(1000)));
        assert!(matches!(
            d.admit("big", NOW, H, NOW),
            Admission::ReplyNotKept
        ));
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
