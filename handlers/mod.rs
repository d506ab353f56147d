//! The application's handlers: the example app of the support thread.
//!
//! This folder (with `config/`) is all a user edits to build their own
//! runner: `register` is called once at startup with the registry.

pub(crate) mod digest;
pub(crate) mod posts;
pub(crate) mod posts_service;
pub(crate) mod users;

use coderunner::event::{persistence, user};
use coderunner::{Registry, RegistryError};

/// Registers every handler of the app.
pub(crate) fn register(registry: &mut Registry) -> Result<(), RegistryError> {
    registry
        .before(persistence::BEFORE_CREATE, "Post", posts::before_create)?
        .after(persistence::AFTER_CREATE, "Post", posts::after_create)?
        .after(user::AFTER_LOGIN, "*", users::after_login)?
        .timer(
            digest::DIGEST_TIMER,
            digest::hourly(),
            digest::hourly_digest,
        )?
        .custom_event(digest::POST_STATS_EVENT, digest::post_stats)?
        .service(posts_service::service())?;
    Ok(())
}
