//! # loadgen
//!
//! A wrk2-compatible HTTP load generator. With `-R` it sends an open-loop, constant-throughput
//! load and records each request's latency from when it *should* have been sent
//! (coordinated-omission correction), so a stalled server shows up in the tail percentiles
//! instead of hiding. Without `-R` it runs closed loop at maximum throughput, like wrk.
//!
//! ## Layout
//!
//! - [`cli`]: clap definitions (wrk2's flags) validated into a [`config::Config`].
//! - [`config`]: the validated run configuration and target URL.
//! - [`units`]: parsing `10k`/`2s` and formatting times and sizes as wrk does.
//! - [`schedule`]: pure pacing — the intended send time of every request, for a constant rate
//!   or a profile (stages, steps), with uniform or seeded Poisson arrivals.
//! - [`conn_profile`]: closed-loop ramps (`--conn-stages`): which connections are in use when.
//! - [`pacer`]: the per-thread precise (timerfd) timer that waits for those times.
//! - [`engine`]: threads, runtimes, start/stop, Ctrl-C, merge → a [`result::Summary`].
//! - [`result`]: the result model every writer, threshold and `merge` reads.
//! - [`interrupt`]: SIGINT/SIGTERM on a thread of their own: stop the run, or quit at once.
//! - [`conn`]: one connection's loop (TCP/TLS connect, send, read, record, reconnect).
//! - [`request`]: the bytes each request sends.
//! - [`script`]: the Lua bridge (wrk's scripting API).
//! - [`record`]: per-thread histograms and counters, merged with `+=`.
//! - [`read_errors`]: why reads failed, one counter per reason.
//! - [`clock`]: wall-clock time as Unix ns/µs and RFC 3339, converted in one place.
//! - [`live`]: the live view: each worker's seconds closed on the clock, one progress line a
//!   second on stderr; [`watch`]: `--watch-pid`, the server's CPU and memory from `/proc`;
//!   [`dashboard`]: `--dashboard`, the same seconds as a live web page.
//! - [`timeline`]: per-wall-clock-second counts and latency histograms, mergeable exactly.
//! - [`timing`]: the timing breakdown (connect, TLS handshake, sending, waiting, receiving).
//! - [`hdr`]: HdrHistogram V2 encodings (plain, and compressed + base64).
//! - [`report`]: the wrk2 text report, the JSON result, JUnit XML, `.hlog` interval logs.
//! - [`slo`]: the `--slo` threshold grammar and its evaluation.
//! - [`find`]: `loadgen find`, the capacity search: a pure policy over short constant-rate
//!   runs of the engine.
//! - [`sys`]: the open-files limit and thread CPU time.
//! - [`results`]: outputs and exit codes of a run; the `merge` and `report` commands.
//! - [`server`]: the built-in target server used by `serve`, `demo` and the tests.
//! - [`app`]: the commands behind the CLI; [`error`]: error kinds and exit codes.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod conn_profile;
pub mod dashboard;
pub mod engine;
pub mod error;
pub mod find;
pub mod fsutil;
pub mod hdr;
pub mod interrupt;
pub mod live;
pub mod pacer;
pub mod read_errors;
pub mod record;
pub mod report;
pub mod request;
pub mod result;
pub mod results;
pub mod schedule;
pub mod script;
pub mod server;
pub mod slo;
pub mod summary;
pub mod sys;
pub mod timeline;
pub mod timing;
pub mod units;
pub mod watch;

pub use config::Config;
pub use engine::run;
pub use error::{Error, Result};
pub use result::{RunResult, Summary};
