//! loadgen's one integration-test binary. Every load test starts real servers on 127.0.0.1:0,
//! runs the real `loadgen` binary against them, and asserts on what it measured; each is
//! bounded to a few seconds and targets loopback only. `docs` checks README.md against the
//! binary's `--help`.

mod accuracy;
mod cli;
mod common;
mod core;
mod csv;
mod dashboard;
mod docs;
mod edges;
mod find;
mod html;
mod http2;
mod lua;
mod parsing;
mod profiles;
mod progress;
mod props;
mod props_input;
mod results;
mod stuck;
mod timing;
