//! The handler SDK: a Backendless REST client with explicit identities.
//!
//! A [`Backendless`] holds the process-wide connection pool and the shared
//! superuser session; [`Backendless::caller`], [`Backendless::superuser`] and
//! [`Backendless::server_key`] make a [`Client`] bound to one identity, and
//! every call through that client carries that identity's token and no
//! other. See `docs/identities.md` for when to use which.
//!
//! This module knows nothing of serving HTTP or dispatching events.

mod cache;
mod client;
mod config;
mod counters;
mod data;
mod dates;
mod error;
mod files;
mod logging;
mod messaging;
mod relations;
mod services;
mod session;
mod transaction;
mod transport;
mod users;

#[cfg(test)]
mod tests;

pub use crate::store::StoreError;
pub use cache::{Cache, MAX_CACHE_TTL, MIN_CACHE_TTL};
pub use client::{Backendless, Client, IdentityKind};
pub use config::{
    LOGIN_TIMEOUT, LOGOUT_TIMEOUT, LoginBackoffConfig, SHUTDOWN_TIMEOUT, SdkConfig,
    SuperuserCredentials,
};
pub use counters::Counters;
pub use data::{Data, Query, Saved, Table};
pub use dates::{EpochMs, epoch_ms};
pub use error::{
    BAD_CREDENTIALS_CODE, INVALID_SESSION_CODES, LOGIN_LIMIT_CODES, LoginError, LoginErrorKind,
    SdkError, TimeoutLimit,
};
pub use files::{FileInfo, FileUrl, Files, Listing, MAX_SAVE_BYTES};
pub use logging::{LogEntry, LogLevel, LogPolicy, Logger};
pub use messaging::{Email, EmailEnvelope, MessageStatus, Messaging, PublishOptions};
pub use relations::Children;
pub use services::{Events, Services};
pub use session::{Lease, LeaseId, MemorySessionStore, SessionStatus, SessionStore};
pub use transaction::{ObjectRef, OpRef, TransactionError, TransactionResult, UnitOfWork};
pub use users::{LoggedIn, UserStatus, Users};
