//! Replay protection for signed deliveries, and the replies of recent ones.
//!
//! Every accepted `webhook-id` is remembered until its own signed timestamp
//! leaves the acceptance window (timestamp + tolerance, on the wall clock the
//! signature is checked against), with a hash of its body and, within a
//! byte budget, the reply it got. A delivery seen again is never executed
//! again: the same body gets the kept reply (its first reply was lost on the
//! way back), a different body or a forgotten reply gets a refusal.
//!
//! Memory is bounded and taken once: at most `capacity` ids, in buckets of
//! up to [`MAX_WAYS`] that a keyed hash of the id picks, and `reply_bytes`
//! of replies. A bucket's slots are taken in turn, so a new id takes the
//! slot of the id that reached the bucket longest ago, and the bucket's
//! *horizon* rises to that id's signed timestamp: every new delivery to the
//! bucket signed at or before its horizon is refused, since it could be a
//! replay of an id forgotten there (a replay lands in the bucket that
//! remembered it). An id still in its window when it goes was forgotten
//! early: so a captured delivery is never executed twice, whatever the rate
//! of other deliveries; a full bucket refuses old deliveries instead. An id
//! past its window is not swept: its slot is reused in turn, and the horizon
//! rises to it all the same, so a clock set back does not make it
//! acceptable again.
//!
//! Buckets rather than one table in time order: a lookup reads one bucket's
//! tags, 128 bytes that lie together, and a new id's slot is known without
//! a search, with no ordered index to keep up (docs/benchmarks.md has what
//! that saves). The price is that buckets fill unevenly: a bucket holds the
//! last 63 ids that reached it (at the default capacity), so a fresh
//! delivery is refused only if that many reached its bucket within its own
//! second: at the default capacity and 200,000 deliveries per second
//! (about 32 a second to each bucket), fewer than one delivery in a
//! million; at 150,000, fewer than one in a billion. (So the default
//! capacity is twice that of the time-ordered table this replaced, at half
//! its memory: that table refused no fresh delivery below the capacity per
//! second.)
//!
//! This module knows nothing of HTTP: a reply is a status number and bytes.

use std::hash::{BuildHasher, RandomState};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Shards, so that concurrent deliveries rarely wait for one another. A
/// bucket belongs to one shard.
const SHARDS: usize = 16;

/// The most ids in one bucket: a lookup reads its tags, 128 bytes. Fewer
/// would make the buckets fill more unevenly (see the module's
/// documentation).
const MAX_WAYS: usize = 64;

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
    /// id forgotten when its bucket was full, so it is refused.
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

/// An id as hashed: 128 bits of two keyed hashes of it, of which 80 are
/// kept and 32 pick the bucket ([`Place`]). Two ids are taken for one when
/// they share the bucket, the tag and the check: a probability of about
/// 2^-92 for a pair at the default capacity, and a sender cannot aim for it
/// without the keys.
type Key = u128;

struct Inner {
    shards: Vec<Mutex<Shard>>,
    /// The keys of the two halves of a [`Key`].
    hashers: [RandomState; 2],
    /// The key of a body's fingerprint: a fast keyed hash (the body is a
    /// kilobyte or more, and no sender can aim for a collision: a body
    /// is signed).
    body_hasher: foldhash::quality::RandomState,
    /// Buckets in all: a multiple of [`SHARDS`].
    buckets: usize,
    /// Ids per bucket, at most [`MAX_WAYS`].
    ways: usize,
    /// How far a signed timestamp may be from the clock (seconds).
    tolerance_secs: i64,
    /// The highest horizon raised because a bucket was full, for the metric.
    capacity_horizon: AtomicI64,
    /// `coderunner_replay_ids_forgotten_total`: counted for every id
    /// forgotten early, so a handle made once, not looked up by name.
    forgotten: metrics::Counter,
}

/// Where an id is remembered, and what tells it from the bucket's others.
#[derive(Debug, Clone, Copy)]
struct Place {
    shard: usize,
    /// The bucket's index within its shard.
    bucket: usize,
    /// 16 bits of the key, compared first.
    tag: u16,
    /// 64 more bits of the key, compared when the tag matches.
    check: u64,
}

/// A share of the buckets behind one lock, with its share of the reply
/// budget. The slots of bucket `b` are `b * ways..(b + 1) * ways` of each
/// per-slot vector; the vectors are allocated on the shard's first delivery.
struct Shard {
    /// Per slot: [`Place::tag`] of its id. Apart from the rest, so that a
    /// lookup reads a bucket's tags in two cache lines.
    tags: Vec<u16>,
    /// Per slot: the second its id was signed at (the latest signature it
    /// was accepted with), `0` for a free slot.
    signed_at: Vec<u32>,
    /// Per slot: the rest of what is remembered of its id.
    slots: Vec<Slot>,
    /// Per bucket.
    heads: Vec<Head>,
    /// The kept replies, newest overwriting oldest.
    replies: ReplyRing,
}

/// What a bucket knows of itself.
#[derive(Clone, Copy, Default)]
struct Head {
    /// New deliveries signed at or before this second are refused.
    horizon: u32,
    /// The slot a new id takes next (in the bucket): its slots are taken in
    /// turn, so this one's id arrived longest ago.
    next: u32,
}

#[derive(Clone, Copy)]
struct Slot {
    /// [`Place::check`] of its id.
    check: u64,
    /// The body's [`Fingerprint`].
    body: u64,
    state: State,
}

#[derive(Clone, Copy)]
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

/// A signed timestamp as a slot keeps it: whole seconds since the epoch,
/// `1..=u32::MAX` (`0` marks a free slot). Timestamps reach here only
/// within the tolerance of the clock, so clamping changes none before 2106.
fn second(timestamp: i64) -> u32 {
    u32::try_from(timestamp.clamp(1, i64::from(u32::MAX))).unwrap_or(u32::MAX)
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
    /// Remembers up to `capacity` ids (at least one per shard), and up to
    /// `reply_bytes` of their replies, for deliveries signed within
    /// `tolerance_secs` of the clock.
    pub(crate) fn new(capacity: usize, reply_bytes: usize, tolerance_secs: u64) -> Self {
        let buckets = capacity.div_ceil(MAX_WAYS).max(1).next_multiple_of(SHARDS);
        let ways = (capacity / buckets).clamp(1, MAX_WAYS);
        let shard = || {
            Mutex::new(Shard {
                tags: Vec::new(),
                signed_at: Vec::new(),
                slots: Vec::new(),
                heads: Vec::new(),
                replies: ReplyRing::new(reply_bytes / SHARDS),
            })
        };
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| shard()).collect(),
                hashers: [RandomState::new(), RandomState::new()],
                body_hasher: foldhash::quality::RandomState::default(),
                buckets,
                ways,
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

    /// The bucket of `key` (its low 32 bits scaled to the number of
    /// buckets), and its tag and check (16 and 64 of the other 96 bits).
    fn place(&self, key: Key) -> Place {
        let low = key as u64;
        let scaled = (u128::from(low as u32) * self.inner.buckets as u128) >> 32;
        let bucket = scaled as usize;
        Place {
            shard: bucket % SHARDS,
            bucket: bucket / SHARDS,
            tag: (low >> 32) as u16,
            check: (key >> 64) as u64,
        }
    }

    /// The fingerprint of a delivery's body, for [`Dedupe::admit`].
    pub(crate) fn fingerprint(&self, body: &[u8]) -> Fingerprint {
        Fingerprint(self.inner.body_hasher.hash_one(body))
    }

    /// Decides about a delivery of `id` signed at `signed_at` with a body
    /// of fingerprint `body`, at wall-clock time `now` (both in seconds
    /// since the epoch).
    pub(crate) fn admit(&self, id: &str, signed_at: i64, body: Fingerprint, now: i64) -> Admission {
        let place = self.place(self.key(id));
        let Fingerprint(body) = body;
        let signed = second(signed_at);
        let oldest_acceptable = now.saturating_sub(self.inner.tolerance_secs);
        let expired = |at: u32| at != 0 && i64::from(at) < oldest_acceptable;
        let ways = self.inner.ways;
        let mut shard = self.inner.shards[place.shard].lock();
        let shard = &mut *shard;
        shard.allocate(self.inner.buckets / SHARDS, ways);
        let bucket = place.bucket * ways..(place.bucket + 1) * ways;

        let found = shard.find(bucket.clone(), place);
        if let Some(i) = found.filter(|&i| !expired(shard.signed_at[i])) {
            let answer = match shard.slots[i].state {
                _ if shard.slots[i].body != body => Admission::OtherBody,
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
            // A retry signed later stays replayable for longer.
            shard.signed_at[i] = shard.signed_at[i].max(signed);
            return answer;
        }

        // A new id takes the slot of its own expired delivery, else the
        // bucket's next in turn: the one whose id arrived longest ago.
        let head = &mut shard.heads[place.bucket];
        let slot = found.unwrap_or(bucket.start + head.next as usize);
        let victim = shard.signed_at[slot];
        // Once it is forgotten, nothing signed at or before it may run.
        let horizon = head.horizon.max(victim);
        if signed <= horizon {
            // Refused, and nothing forgotten for it.
            return Admission::BeyondHorizon {
                horizon: i64::from(horizon),
            };
        }
        head.horizon = horizon;
        if found.is_none() {
            head.next = (head.next + 1) % ways as u32;
        }
        if victim != 0 && !expired(victim) {
            // Forgotten before its window ended: the bucket is full.
            self.raise_capacity_horizon(i64::from(victim));
        }
        shard.signed_at[slot] = signed;
        shard.tags[slot] = place.tag;
        shard.slots[slot] = Slot {
            check: place.check,
            body,
            state: State::Running,
        };
        Admission::New(Ticket {
            dedupe: self.clone(),
            held: Some((place, slot)),
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

    /// The highest horizon raised because a bucket was full (seconds since
    /// the epoch), or `None` if none ever was.
    #[cfg(test)]
    pub(crate) fn capacity_horizon(&self) -> Option<i64> {
        Some(self.inner.capacity_horizon.load(Ordering::Relaxed)).filter(|h| *h != i64::MIN)
    }

    /// How many ids are remembered now (expired ones whose slots are not
    /// reused yet included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().signed_at.iter().filter(|&&at| at != 0).count())
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
    fn forget(&self, (place, slot): (Place, usize)) {
        let mut shard = self.inner.shards[place.shard].lock();
        if shard.holds(slot, place) && matches!(shard.slots[slot].state, State::Running) {
            shard.signed_at[slot] = 0;
        }
    }

    fn finish(&self, (place, slot): (Place, usize), reply: Option<(u16, &[u8])>) {
        let mut shard = self.inner.shards[place.shard].lock();
        // Unless forgotten meanwhile (the horizon covers it).
        if !shard.holds(slot, place) || !matches!(shard.slots[slot].state, State::Running) {
            return;
        }
        let Shard { slots, replies, .. } = &mut *shard;
        slots[slot].state = reply
            .and_then(|(status, body)| {
                let len = u32::try_from(body.len()).ok()?;
                let at = replies.keep(body)?;
                Some(State::Kept { at, len, status })
            })
            .unwrap_or(State::Done);
    }
}

impl Shard {
    /// Makes the slots of `buckets` buckets of `ways` each, on first use:
    /// an idle runner does not hold the table.
    fn allocate(&mut self, buckets: usize, ways: usize) {
        if self.heads.is_empty() {
            let free = Slot {
                check: 0,
                body: 0,
                state: State::Done,
            };
            self.tags = vec![0; buckets * ways];
            self.signed_at = vec![0; buckets * ways];
            self.slots = vec![free; buckets * ways];
            self.heads = vec![Head::default(); buckets];
        }
    }

    /// The slot of `bucket` that remembers the id at `place`.
    fn find(&self, mut bucket: Range<usize>, place: Place) -> Option<usize> {
        bucket.find(|&slot| self.holds(slot, place))
    }

    /// Whether `slot` remembers the id at `place` (its tag compared first:
    /// the rest is read only when that matches).
    fn holds(&self, slot: usize, place: Place) -> bool {
        self.tags[slot] == place.tag
            && self.signed_at[slot] != 0
            && self.slots[slot].check == place.check
    }
}

/// The right to execute a new delivery. Hand it the reply with
/// [`Ticket::finish`]; dropped without one, the id stays remembered with no
/// reply (a retry is refused rather than executed again).
#[derive(Debug)]
pub(crate) struct Ticket {
    dedupe: Dedupe,
    /// Where the delivery is remembered; `None` once finished.
    held: Option<(Place, usize)>,
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
        if let Some(held) = self.held.take() {
            self.dedupe.forget(held);
        }
    }

    /// Keeps the reply (`status`, `body`) for retries of this delivery (if
    /// it fits the budget): copied, so the caller's buffer stays its own.
    pub(crate) fn finish(mut self, status: u16, body: &[u8]) {
        if let Some(held) = self.held.take() {
            self.dedupe.finish(held, Some((status, body)));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            self.dedupe.finish(held, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const H: Fingerprint = Fingerprint(7);

    #[test]
    fn a_remembered_id_takes_40_bytes_of_table() {
        // The set holds `seen_ids_capacity` of these (400,000 by default):
        // a field more is megabytes more (docs/benchmarks.md). Its
        // timestamp and tag are 4 bytes each, the rest is a slot.
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }

    #[test]
    fn the_default_capacity_is_buckets_of_63_and_a_small_one_one_per_shard() {
        let d = Dedupe::new(400_000, 0, 300);
        assert_eq!((d.inner.buckets, d.inner.ways), (6256, 63));
        assert!(d.inner.buckets * d.inner.ways <= 400_000);
        let d = Dedupe::new(SHARDS, 0, 300);
        assert_eq!((d.inner.buckets, d.inner.ways), (SHARDS, 1));
        let d = Dedupe::new(1, 0, 300);
        assert_eq!((d.inner.buckets, d.inner.ways), (SHARDS, 1));
        // Every bucket is reachable, and only those.
        let d = Dedupe::new(1000, 0, 300);
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            let place = d.place(d.key(&format!("id-{i}")));
            assert!(place.shard < SHARDS && place.bucket < d.inner.buckets / SHARDS);
            seen.insert((place.shard, place.bucket));
        }
        assert_eq!(seen.len(), d.inner.buckets);
    }

    #[test]
    fn a_full_bucket_forgets_the_id_that_came_first_and_refuses_what_is_older() {
        // One bucket per shard of 4 ids each: fill the bucket of "a".
        let d = Dedupe::new(4 * SHARDS, 1 << 20, 300);
        let target = d.place(d.key("a"));
        let same_bucket: Vec<String> = (0..)
            .map(|i| format!("other-{i}"))
            .filter(|id| {
                let place = d.place(d.key(id));
                (place.shard, place.bucket) == (target.shard, target.bucket)
            })
            .take(5)
            .collect();
        drop(admit_new(&d, "a", NOW - 10, NOW));
        for (i, id) in same_bucket[..3].iter().enumerate() {
            drop(admit_new(&d, id, NOW - 5 + i as i64, NOW));
        }
        assert_eq!(d.capacity_horizon(), None, "four ids fit");
        // Older than the id that would go: refused, nothing forgotten.
        assert!(matches!(
            d.admit(&same_bucket[4], NOW - 20, H, NOW),
            Admission::BeyondHorizon { horizon } if horizon == NOW - 10
        ));
        assert_eq!(d.capacity_horizon(), None);
        drop(admit_new(&d, &same_bucket[3], NOW, NOW));
        // "a", the first in, was forgotten: its replay meets the horizon
        // (which the next id to go, signed at NOW - 5, raises further).
        assert_eq!(d.capacity_horizon(), Some(NOW - 10));
        assert!(matches!(
            d.admit("a", NOW - 10, H, NOW),
            Admission::BeyondHorizon { horizon } if horizon == NOW - 5
        ));
        // The others are still remembered.
        for id in &same_bucket[..4] {
            assert!(matches!(d.admit(id, NOW, H, NOW), Admission::ReplyNotKept));
        }
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
        let capacity = 400_000;
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
    fn retries_signed_later_keep_one_slot_for_the_latest_window() {
        let d = Dedupe::new(100, 1 << 20, 300);
        admit_new(&d, "a", NOW, NOW).finish(200, b"first");
        for i in 1..10_000 {
            assert!(matches!(
                d.admit("a", NOW + i, H, NOW + i),
                Admission::Replay(_)
            ));
        }
        assert_eq!(d.len(), 1);
        // Remembered for the window of its latest signature, not its first.
        assert!(matches!(
            d.admit("a", NOW + 9_999, H, NOW + 9_999 + 300),
            Admission::Replay(_)
        ));
    }

    #[test]
    fn an_abandoned_id_leaves_no_horizon_behind() {
        // One id per bucket: a new id in the same bucket forgets the old one.
        let d = Dedupe::new(SHARDS, 1 << 20, 300);
        admit_new(&d, "a", NOW - 5, NOW).abandon();
        assert!(d.is_empty());
        drop(admit_new(&d, "a", NOW - 6, NOW));
        assert_eq!(d.capacity_horizon(), None, "its slot was free");
        assert!(matches!(
            d.admit("a", NOW - 6, H, NOW),
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
        // One id per bucket, so that a later id takes the expired one's slot.
        let d = Dedupe::new(SHARDS, 1 << 20, 300);
        drop(admit_new(&d, "a", NOW, NOW));
        // Much later: "a" is expired and its slot reused (every bucket is visited).
        for i in 0..200 {
            // Most are refused: their bucket already holds one of this second.
            drop(d.admit(&format!("b{i}"), NOW + 1000, H, NOW + 1000));
        }
        // The clock goes back: "a" would pass the signature check again.
        assert!(matches!(
            d.admit("a", NOW, H, NOW),
            Admission::BeyondHorizon { horizon } if horizon >= NOW
        ));
        // Expiry is not a capacity problem: nothing was forgotten early.
        assert_eq!(d.capacity_horizon(), None);
    }

    #[test]
    fn an_expired_id_is_admitted_again_in_its_own_slot() {
        let d = Dedupe::new(1000, 1 << 20, 300);
        admit_new(&d, "a", NOW, NOW).finish(200, b"first");
        // Expired, then delivered again with a fresh signature: it runs,
        // and the set still holds one entry for it.
        drop(admit_new(&d, "a", NOW + 400, NOW + 400));
        assert_eq!(d.len(), 1);
        assert!(matches!(
            d.admit("a", NOW + 400, H, NOW + 400),
            Admission::ReplyNotKept
        ));
    }
}
