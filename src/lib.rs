//! coderunner: runs Backendless business logic written in Rust.
//!
//! A backend (or the bundled emulator) sends trigger events as signed HTTP
//! tasks; the runner dispatches each to the handler registered for its event
//! and target and replies with what the handler decided. See `README.md` and
//! `docs/` for the whole picture.
#![warn(missing_docs)]

// The public surface: what a handler author, an app's `main` and its tests
// use (docs/architecture.md, "Public API").
pub mod cli;
pub mod config;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod event;
pub mod handler;
pub mod registry;
pub mod sdk;
pub mod service;
pub mod signature;
#[cfg(feature = "emulator")]
pub mod testing;
pub mod timer;

// Serving internals: private, reached through `cli`, `Runner` and `testing`.
mod app_log;
#[cfg(feature = "emulator")]
mod dev;
mod dispatch;
mod handler_runtime;
mod invocation_log;
mod invoke;
mod management;
mod model;
mod runner;
mod server;
mod store;
mod telemetry;
#[cfg(test)]
mod test_support;
mod transport;

pub use app_log::AppLogLayer;
pub use handler::{After, Before, BuiltInError, Context, HandlerError, Outcome, Password};
pub use registry::{HandlerInfo, Registry, RegistryError};
pub use runner::{Runner, shutdown_signal};
pub use service::{Service, ServiceContext, ServiceMethod};

/// The guides of `docs/`, compiled so that their examples are tested.
#[cfg(doctest)]
pub mod guides {
    #[doc = include_str!("../docs/handlers.md")]
    pub struct Handlers;
    #[doc = include_str!("../docs/testing-handlers.md")]
    pub struct TestingHandlers;
    #[doc = include_str!("../docs/identities.md")]
    pub struct Identities;
    #[doc = include_str!("../docs/sdk.md")]
    pub struct Sdk;
    #[doc = include_str!("../docs/emulator.md")]
    pub struct EmulatorGuide;
    #[doc = include_str!("../docs/porting-from-js.md")]
    pub struct PortingFromJs;
    #[doc = include_str!("../docs/console.md")]
    pub struct Console;
}
