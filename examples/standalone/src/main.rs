//! The orders app's runner: `orders-runner serve`, `dev`, `model`, ...

// Optional: jemalloc measured faster than the system's allocator under load
// (coderunner's docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    coderunner::cli::main(orders_runner::register)
}
