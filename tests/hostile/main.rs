//! The real daemon against hostile clients and broken handlers, over real
//! sockets (issue #11): half-sent heads, trickled bodies, thousands of idle
//! connections, a flood of deliveries around a replay, handlers that block
//! their thread, and SIGTERM with a blocked handler. Each test asserts that
//! `/healthz` keeps answering within 100 ms (the acceptance criterion, a
//! bound generous on a loopback socket) and that nothing is lost or
//! executed twice.

mod blocking;
mod connections;
mod limits;
mod probe;
mod replay;
mod sigterm;
// The runner tests' harness: one way to start a runner.
#[expect(dead_code, reason = "shared with tests/runner, which uses all of it")]
#[path = "../runner/support.rs"]
mod support;
