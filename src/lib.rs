//! coderunner: runs Backendless business logic written in Rust.
#![warn(missing_docs)]

pub mod event;
pub mod signature;
pub mod emulator;
pub mod sdk;
