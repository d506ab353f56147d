//! The ways tasks arrive besides `POST /invoke` (which lives in `server/`):
//! Backendless's own Redis task queue. A transport only turns its bytes into
//! a task and its reply back into bytes; routing, typed arguments,
//! identities, deadlines, panic containment, spans and metrics are the
//! dispatcher's, shared by every transport.

pub(crate) mod debug;
pub(crate) mod framing;
pub(crate) mod redis;
pub(crate) mod scheduler;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a transport can take tasks now; `/readyz` answers 503 while any
/// transport's flag is down.
#[derive(Debug, Clone)]
pub(crate) struct Readiness {
    /// Named in `/readyz`'s reply.
    pub name: &'static str,
    ready: Arc<AtomicBool>,
}

impl Readiness {
    /// A flag, down until the transport says otherwise.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the flag; returns whether it changed.
    pub(crate) fn set(&self, ready: bool) -> bool {
        self.ready.swap(ready, Ordering::SeqCst) != ready
    }

    /// Reads the flag.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
