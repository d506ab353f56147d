//! The example app's runner: the framework's command line with this app's
//! handlers. An application of your own is this file, `mod.rs` and its
//! handler modules.

#[path = "mod.rs"]
mod app;

// jemalloc, not the system's allocator: measured in docs/benchmarks.md.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    coderunner::cli::main(app::register)
}
