//! The orders app's runner: `orders-runner serve`, `dev`, `model`, ...

fn main() -> std::process::ExitCode {
    coderunner::cli::main(orders_runner::register)
}
