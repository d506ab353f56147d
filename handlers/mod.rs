//! The application's handlers: the example app of the support thread.
//!
//! This folder (with `config/`) is all a user edits to build their own
//! runner: `register` is called once at startup with the registry.

mod posts;

use coderunner::event::persistence;
use coderunner::{Registry, RegistryError};

/// Registers every handler of the app.
pub fn register(registry: &mut Registry) -> Result<(), RegistryError> {
    registry.before(persistence::BEFORE_CREATE, "Post", posts::before_create)?;
    Ok(())
}
