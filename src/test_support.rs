//! Helpers shared by the unit tests of several modules.

use std::sync::Arc;

/// A log destination a test reads back.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The unit tests' allocator counts allocations process-wide, for the tests
/// that measure memory; such a test runs alone in a child process
/// ([`run_alone`]), so that no other test's allocations are counted.
#[global_allocator]
pub(crate) static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> =
    &stats_alloc::INSTRUMENTED_SYSTEM;

/// Set in the child process [`run_alone`] starts.
const ALONE: &str = "CODERUNNER_TEST_ALONE";

/// Whether this process runs `test` alone: if not, runs it alone in a child
/// process (this test binary, `--exact test`), asserts that it passed and
/// returns `false`; the caller then returns.
pub(crate) fn run_alone(test: &str) -> bool {
    if std::env::var_os(ALONE).is_some_and(|t| t == test) {
        return true;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, test)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{test} failed alone:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run alone:\n{stdout}"
    );
    print!("{stdout}");
    false
}
