//! What the runner remembers of its recent invocations, for the console: a
//! bounded ring of [`InvocationRecord`]s (time, event, target, outcome,
//! duration, the error and its code) and, per task, the backend calls its
//! handler made ([`BackendCall`]: the identity used, never a token; the
//! route with secret segments masked; the status).
//!
//! The dispatcher writes a record when a task ends; the SDK's transport adds
//! a call to the log of the task it runs in (a task-local set around the
//! handler, so that nothing is passed through the handler's code). Calls
//! made from tasks a handler spawns itself are not attached.
//!
//! Everything is bounded: the ring by `console.ring_size` records, each
//! record's texts by [`MAX_TEXT_CHARS`] and its calls by
//! [`MAX_CALLS_PER_TASK`]. It must not hold a token, a key or a password.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// The most backend calls kept per invocation; later ones are counted in
/// [`InvocationRecord::calls_dropped`].
pub(crate) const MAX_CALLS_PER_TASK: usize = 32;

/// The most characters kept of a target, a task id, an error message or a
/// route.
pub(crate) const MAX_TEXT_CHARS: usize = 240;

/// `text` cut to [`MAX_TEXT_CHARS`] characters (with `…` when cut), as one
/// allocation of its own size.
pub(crate) fn bounded(text: &str) -> Box<str> {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        None => Box::from(text),
        Some((end, _)) => {
            let mut cut = String::with_capacity(end + '…'.len_utf8());
            cut.push_str(&text[..end]);
            cut.push('…');
            cut.into_boxed_str()
        }
    }
}

/// One backend request a handler made.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BackendCall {
    /// `caller`, `superuser` or `server_key`: which identity, never its token.
    pub(crate) identity: &'static str,
    /// `POST /data/Post`: the method and the path below the API root, secret
    /// segments masked.
    pub(crate) route: Box<str>,
    /// The HTTP status, when a reply came.
    pub(crate) status: Option<u16>,
    /// `ok`, `backend_error`, `timeout`, ... (the metrics' label).
    pub(crate) outcome: &'static str,
    /// The Backendless error code of a failed call.
    pub(crate) code: Option<i64>,
    /// Time to the reply.
    pub(crate) duration_ms: f64,
}

/// The calls of one task, filled while its handler runs.
#[derive(Clone, Default)]
pub(crate) struct CallLog(Arc<Mutex<CallList>>);

#[derive(Default)]
struct CallList {
    calls: Vec<BackendCall>,
    /// Calls past [`MAX_CALLS_PER_TASK`].
    dropped: u32,
}

tokio::task_local! {
    static TASK_CALLS: CallLog;
}

impl CallLog {
    /// Runs `future` with this log as its task's call log.
    pub(crate) async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        TASK_CALLS.scope(self, future).await
    }

    /// Adds the call `make` builds to the current task's log, if the task
    /// has one (`make` is not called otherwise: no cost when the console is
    /// off).
    pub(crate) fn record(make: impl FnOnce() -> BackendCall) {
        let _ = TASK_CALLS.try_with(|log| {
            let mut list = log.0.lock();
            if list.calls.len() < MAX_CALLS_PER_TASK {
                list.calls.push(make());
            } else {
                list.dropped = list.dropped.saturating_add(1);
            }
        });
    }

    /// The calls recorded so far, and how many were not kept.
    fn take(&self) -> (Vec<BackendCall>, u32) {
        let mut list = self.0.lock();
        (std::mem::take(&mut list.calls), list.dropped)
    }
}

/// The error of a failed invocation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RecordedError {
    /// The code the handler gave (`HandlerError::new(code, ..)`), 0 for a
    /// timeout, a panic or a routing error.
    pub(crate) code: i64,
    /// The message sent back to the backend.
    pub(crate) message: Box<str>,
}

/// One invocation as the console shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvocationRecord {
    /// Increases by one per record, to follow the ring.
    pub(crate) seq: u64,
    /// When the task arrived, ms since the Unix epoch.
    pub(crate) at_ms: u64,
    /// The task id.
    pub(crate) task_id: Box<str>,
    /// The event name (`beforeCreate`), `unknown` for an id not in the catalog.
    pub(crate) event: &'static str,
    /// The provider (`data`, `user`, `timer`, `custom`, ...).
    pub(crate) provider: &'static str,
    /// The target as sent.
    pub(crate) target: Box<str>,
    /// Whether the sender did not wait for the reply.
    pub(crate) is_async: bool,
    /// `ok`, `error`, `timeout`, `panic`, `no_handler` or `unknown_event`.
    pub(crate) outcome: &'static str,
    /// From arrival to the reply.
    pub(crate) duration_ms: f64,
    /// What failed, when the outcome is not `ok`.
    pub(crate) error: Option<RecordedError>,
    /// The backend calls the handler made, in order.
    pub(crate) calls: Vec<BackendCall>,
    /// Calls made past [`MAX_CALLS_PER_TASK`].
    pub(crate) calls_dropped: u32,
}

impl InvocationRecord {
    /// Fills the calls from the task's `log`.
    pub(crate) fn with_calls(mut self, log: &CallLog) -> Self {
        let (calls, dropped) = log.take();
        self.calls = calls;
        self.calls_dropped = dropped;
        self
    }
}

/// Which records a reader wants.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    /// Only records with a `seq` above this.
    pub(crate) after: u64,
    /// Only this outcome.
    pub(crate) outcome: Option<String>,
    /// Only this event name.
    pub(crate) event: Option<String>,
    /// At most this many, the newest.
    pub(crate) limit: usize,
}

/// The ring of recent invocations. Shared by the dispatcher (writer) and
/// the console (reader).
pub(crate) struct InvocationLog {
    ring: Mutex<VecDeque<InvocationRecord>>,
    capacity: usize,
    /// The `seq` of the next record.
    next: AtomicU64,
}

impl InvocationLog {
    /// A ring of at most `capacity` records (at least one), allocated once.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            ring: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            next: AtomicU64::new(1),
        }
    }

    /// The most records kept.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds `record` (its `seq` assigned here), dropping the oldest when full.
    pub(crate) fn push(&self, mut record: InvocationRecord) {
        let mut ring = self.ring.lock();
        record.seq = self.next.fetch_add(1, Ordering::Relaxed);
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// The records `filter` selects, newest first.
    pub(crate) fn read(&self, filter: &Filter) -> Vec<InvocationRecord> {
        let ring = self.ring.lock();
        ring.iter()
            .rev()
            .take_while(|r| r.seq > filter.after)
            .filter(|r| filter.outcome.as_deref().is_none_or(|o| o == r.outcome))
            .filter(|r| filter.event.as_deref().is_none_or(|e| e == r.event))
            .take(filter.limit)
            .cloned()
            .collect()
    }

    /// The `seq` of the newest record (0 when none).
    pub(crate) fn latest(&self) -> u64 {
        self.next.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Records held now.
    pub(crate) fn len(&self) -> usize {
        self.ring.lock().len()
    }

    /// Heap bytes the records own (the ring's slots, their texts, calls and
    /// routes): what bounds the memory of the console.
    pub(crate) fn heap_bytes(&self) -> usize {
        let ring = self.ring.lock();
        let slots = ring.capacity() * std::mem::size_of::<InvocationRecord>();
        slots
            + ring
                .iter()
                .map(|r| {
                    r.task_id.len()
                        + r.target.len()
                        + r.error.as_ref().map_or(0, |e| e.message.len())
                        + r.calls.capacity() * std::mem::size_of::<BackendCall>()
                        + r.calls.iter().map(|c| c.route.len()).sum::<usize>()
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
/// The most heap bytes a ring of `capacity` records can own: the bound
/// [`InvocationLog::heap_bytes`] stays under, whatever is recorded.
pub(crate) fn max_heap_bytes(capacity: usize) -> usize {
    // A text of MAX_TEXT_CHARS characters of up to 4 bytes, plus the `…`.
    let text = MAX_TEXT_CHARS * 4 + 3;
    let call = std::mem::size_of::<BackendCall>() + text;
    capacity * (std::mem::size_of::<InvocationRecord>() + 3 * text + MAX_CALLS_PER_TASK * call)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str, outcome: &'static str, event: &'static str) -> InvocationRecord {
        InvocationRecord {
            seq: 0,
            at_ms: 0,
            task_id: bounded("task"),
            event,
            provider: "data",
            target: bounded(target),
            is_async: false,
            outcome,
            duration_ms: 1.0,
            error: (outcome != "ok").then(|| RecordedError {
                code: 4001,
                message: bounded(&"e".repeat(10_000)),
            }),
            calls: Vec::new(),
            calls_dropped: 0,
        }
    }

    #[test]
    fn a_million_records_keep_the_ring_at_its_size_and_bytes() {
        let log = InvocationLog::new(500);
        let long = "T".repeat(5_000);
        let mut peak = 0;
        for i in 0..1_000_000u32 {
            let outcome = if i % 3 == 0 { "error" } else { "ok" };
            log.push(record(&long, outcome, "beforeCreate"));
            if i % 50_000 == 0 {
                peak = peak.max(log.heap_bytes());
            }
        }
        assert_eq!(log.len(), 500);
        assert_eq!(log.latest(), 1_000_000);
        assert!(peak <= max_heap_bytes(500), "{peak}");
        assert_eq!(log.heap_bytes(), peak, "flat once full");
    }

    #[test]
    fn texts_are_cut_at_the_bound() {
        assert_eq!(&*bounded("short"), "short");
        let cut = bounded(&"é".repeat(1_000));
        assert_eq!(cut.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn reads_are_newest_first_after_a_seq_and_filtered() {
        let log = InvocationLog::new(10);
        log.push(record("A", "ok", "beforeCreate"));
        log.push(record("B", "error", "beforeCreate"));
        log.push(record("C", "ok", "afterCreate"));
        let all = log.read(&Filter {
            limit: 10,
            ..Filter::default()
        });
        let targets: Vec<&str> = all.iter().map(|r| &*r.target).collect();
        assert_eq!(targets, ["C", "B", "A"]);
        let after = log.read(&Filter {
            after: 2,
            limit: 10,
            ..Filter::default()
        });
        assert_eq!(after.len(), 1);
        let failed = log.read(&Filter {
            outcome: Some("error".into()),
            limit: 10,
            ..Filter::default()
        });
        assert_eq!(&*failed[0].target, "B");
        let after_create = log.read(&Filter {
            event: Some("afterCreate".into()),
            limit: 10,
            ..Filter::default()
        });
        assert_eq!(&*after_create[0].target, "C");
    }

    #[tokio::test]
    async fn calls_are_kept_per_task_and_bounded() {
        let log = CallLog::default();
        CallLog::record(|| unreachable!("no task log outside a scope"));
        log.clone()
            .scope(async {
                for _ in 0..MAX_CALLS_PER_TASK + 5 {
                    CallLog::record(|| BackendCall {
                        identity: "caller",
                        route: bounded("POST /data/Post"),
                        status: Some(200),
                        outcome: "ok",
                        code: None,
                        duration_ms: 1.0,
                    });
                }
            })
            .await;
        let record = record("Post", "ok", "afterCreate").with_calls(&log);
        assert_eq!(record.calls.len(), MAX_CALLS_PER_TASK);
        assert_eq!(record.calls_dropped, 5);
    }
}
