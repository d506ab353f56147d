//! The example app's runner: the framework's command line with this app's
//! handlers. An application of your own is this file, `mod.rs` and its
//! handler modules.

#[path = "mod.rs"]
mod app;

fn main() -> std::process::ExitCode {
    coderunner::cli::main(app::register)
}
