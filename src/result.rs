//! The result model: what a run (or a merge of runs) measured, as every consumer reads it.
//! The engine produces a [`Summary`]; [`RunResult`] adds the declared thresholds and their
//! verdicts (and, for a merge, its inputs). The text report, JSON, JUnit, `.hlog`, the
//! thresholds, `merge` and the script's `done()` all read these, and none of them needs the
//! engine.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::record::Stats;
use crate::slo::{self, Outcome, Slo};

/// The merged result of a run, with what is needed to report it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The configuration the run used.
    pub config: Config,
    /// The address the run connected to.
    pub addr: SocketAddr,
    /// Wall-clock time at the run's start instant.
    pub started: SystemTime,
    /// Time from the common start instant to the stop (deadline or Ctrl-C).
    pub elapsed: Duration,
    /// The run was cut short by Ctrl-C.
    pub interrupted: bool,
    /// The run-time script error (`file:line: message`) that stopped the run early.
    pub script_error: Option<String>,
    /// All threads' measurements, merged.
    pub stats: Stats,
}

impl Summary {
    /// The span a run's rates are measured over: its sending window, from the start to the
    /// planned duration or, when requests that got responses were still being sent after it
    /// (open loop's drain period: connections that were busy send what was planned before
    /// the deadline), to the last of those sends; never past the elapsed time. So waiting for
    /// the last responses does not dilute the rate (a server that answers every planned
    /// request on time, however slowly, achieves the planned rate), while a server that
    /// could not take the requests as planned shows a lower rate.
    pub fn rate_window(&self) -> Duration {
        let planned = self.elapsed.min(self.config.duration);
        Duration::from_nanos(self.stats.last_sent_ns).clamp(planned, self.elapsed)
    }

    /// Completed responses per second of the sending window ([`Summary::rate_window`]).
    pub fn achieved_rate(&self) -> f64 {
        let s = self.rate_window().as_secs_f64();
        if s > 0.0 {
            self.stats.requests as f64 / s
        } else {
            0.0
        }
    }
}

/// One input of a merged result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The file the input was read from, as named on the command line.
    pub file: String,
    /// The input's target URL.
    pub url: String,
    /// The input's start, Unix time in µs.
    pub start_unix_us: u64,
    /// The input's elapsed time, ns.
    pub elapsed_ns: u64,
    /// The input's completed responses.
    pub requests: u64,
    /// The input's threads.
    pub threads: usize,
    /// The input's connections.
    pub connections: usize,
    /// The input's target rate (req/s), `null` for closed loop.
    pub rate: Option<f64>,
}

/// A run's (or a merge's) result, as the commands use it.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// What was measured.
    pub summary: Summary,
    /// The thresholds declared for it.
    pub slos: Vec<Slo>,
    /// Their verdicts, in the same order.
    pub outcomes: Vec<Outcome>,
    /// For a merged result, the inputs (empty for a single run).
    pub sources: Vec<Source>,
    /// The `--watch-pid` processes, as sampled during the run (set by the caller after the
    /// run; empty when none were watched).
    pub watch: Vec<crate::watch::Watched>,
}

impl RunResult {
    /// A result with `slos` evaluated against `summary`.
    pub fn new(summary: Summary, slos: Vec<Slo>, sources: Vec<Source>) -> RunResult {
        let outcomes = slo::evaluate_all(&slos, &summary);
        RunResult {
            summary,
            slos,
            outcomes,
            sources,
            watch: Vec::new(),
        }
    }

    /// Replaces the thresholds and re-evaluates them.
    pub fn set_slos(&mut self, slos: Vec<Slo>) {
        self.outcomes = slo::evaluate_all(&slos, &self.summary);
        self.slos = slos;
    }

    /// Whether every threshold passed (true when there are none).
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.pass)
    }
}
