//! coderunner: runs Backendless business logic written in Rust.
#![warn(missing_docs)]

pub mod emulator;
pub mod event;
pub mod sdk;
pub mod signature;
