//! loadgen's one integration-test binary. Every test starts real servers on 127.0.0.1:0, runs
//! the real `loadgen` binary against them, and asserts on what it measured. Each load test is
//! bounded to a few seconds and targets loopback only.

mod accuracy;
mod common;
mod core;
mod lua;
mod results;
