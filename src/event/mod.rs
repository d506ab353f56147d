//! The Backendless event model as data: the catalog of providers and events,
//! the RunnerContext that describes the caller, and the wire types of a task
//! and its reply.
//!
//! This module knows nothing of HTTP serving or of the SDK: it is shared by
//! the runner (which decodes tasks) and the emulator (which builds them).

mod catalog;
pub mod context;
pub mod markers;
pub mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use catalog::{
    atomic_operation, cache, custom, file, geo, messaging, persistence, timer, user,
};
pub use context::{RunnerContext, UserToken};

/// The numeric id of a Backendless event (the task's `eventId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub u32);

impl EventId {
    /// The catalog entry of this id, if it is a known event.
    pub fn def(self) -> Option<&'static EventDef> {
        EventDef::by_id(self)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A source of events (spec §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Tables (alias `Data`); the target is the table name.
    Persistence,
    /// Users; not targeted.
    User,
    /// Geo points (deprecated); the target is the geo category.
    Geo,
    /// Messaging; the target is the channel.
    Messaging,
    /// Files; not targeted.
    File,
    /// Cache; not targeted.
    Cache,
    /// Atomic counters; not targeted.
    AtomicOperation,
    /// Timers; the target is the timer name.
    Timer,
    /// Custom events; the target is the custom event name.
    Custom,
    /// API services (`RequestServiceInvocation` tasks): not in the event
    /// catalog; a service method's invocations are labelled with
    /// [`SERVICE_INVOCATION`] and the target `Service.method`.
    Service,
}

impl Provider {
    /// The provider's name as Backendless writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Persistence => "persistence",
            Provider::User => "user",
            Provider::Geo => "geo",
            Provider::Messaging => "messaging",
            Provider::File => "file",
            Provider::Cache => "cache",
            Provider::AtomicOperation => "atomic-operation",
            Provider::Timer => "timer",
            Provider::Custom => "custom",
            Provider::Service => "service",
        }
    }

    /// Whether the provider's events carry a meaningful target (table,
    /// channel, ...). Any provider accepts a target; this only affects how
    /// handlers are described.
    pub fn is_targeted(self) -> bool {
        matches!(
            self,
            Provider::Persistence
                | Provider::Geo
                | Provider::Messaging
                | Provider::Custom
                | Provider::Timer
        )
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a service method's [`crate::Context`] reports as its event: API
/// service invocations are not catalog events (no event id reaches them; they
/// come as `RequestServiceInvocation` tasks), so [`EventDef::by_id`] never
/// returns this.
pub static SERVICE_INVOCATION: EventDef = EventDef {
    id: EventId(0),
    provider: Provider::Service,
    phase: Phase::Standalone,
    name: "invokeService",
    args: &["parameters"],
    result: false,
    pair: None,
};

/// When an event's handler runs relative to the built-in logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Ahead of the built-in logic: may change arguments, short-circuit or reject.
    Before,
    /// After the built-in logic: sees the result and may replace it.
    After,
    /// Not part of a before/after pair (timers, custom events).
    Standalone,
}

/// One event of the catalog.
#[derive(Debug, PartialEq, Eq)]
pub struct EventDef {
    /// The wire id (`eventId`).
    pub id: EventId,
    /// The provider the event belongs to.
    pub provider: Provider,
    /// Before, after or standalone.
    pub phase: Phase,
    /// The event's name as the JS runner spells it (`beforeCreate`).
    pub name: &'static str,
    /// The names of the arguments after the RunnerContext, in wire order;
    /// its length is the event's arity.
    pub args: &'static [&'static str],
    /// Whether the wire arguments end with a `result` (an ExecutionResult)
    /// after `args`: every after-event, and custom events. Read it with
    /// [`EventDef::has_result`].
    result: bool,
    /// The other half of a before/after pair.
    pub pair: Option<EventId>,
}

impl EventDef {
    /// Every event of the catalog, sorted by id.
    pub fn all() -> &'static [EventDef] {
        catalog::EVENTS
    }

    /// The event with this wire id.
    pub fn by_id(id: EventId) -> Option<&'static EventDef> {
        let events = catalog::EVENTS;
        events
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &events[i])
    }

    /// The event with this provider and name (`"persistence"`, `"afterCreate"`).
    pub fn by_name(provider: &str, name: &str) -> Option<&'static EventDef> {
        let provider = if provider.eq_ignore_ascii_case("data") {
            "persistence"
        } else {
            provider
        };
        catalog::EVENTS
            .iter()
            .find(|e| e.provider.as_str().eq_ignore_ascii_case(provider) && e.name == name)
    }

    /// Whether the wire arguments end with a `result` (an ExecutionResult).
    pub fn has_result(&self) -> bool {
        self.result
    }
}

impl fmt::Display for EventDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.provider, self.name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_and_unique() {
        let ids: Vec<u32> = EventDef::all().iter().map(|e| e.id.0).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn pairs_point_at_each_other() {
        for e in EventDef::all() {
            if let Some(pair) = e.pair {
                let other = pair.def().expect("pair exists");
                assert_eq!(other.pair, Some(e.id), "{e}");
                assert_eq!(other.args, e.args, "{e}");
                assert_eq!(other.provider, e.provider);
            }
        }
    }

    #[test]
    fn lookups_find_known_events() {
        let e = EventDef::by_id(EventId(101)).unwrap();
        assert_eq!(
            (e.provider, e.name, e.phase),
            (Provider::Persistence, "afterCreate", Phase::After)
        );
        assert_eq!(
            EventDef::by_name("data", "beforeCreate").unwrap().id,
            persistence::BEFORE_CREATE
        );
        assert_eq!(
            EventDef::by_name("user", "afterLogin").unwrap().args,
            &["login", "password"]
        );
        assert!(EventDef::by_id(EventId(618)).unwrap().pair.is_none());
        assert!(EventDef::by_id(EventId(9999)).is_none());
        assert_eq!(EventDef::all().len(), 167);
    }
}
