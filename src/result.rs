//! The result model: what a run (or a merge of runs) measured, as every consumer reads it.
//! The engine produces a [`Summary`] (`summary.rs`, which the thresholds are evaluated
//! against without this module); [`RunResult`] adds the declared thresholds and their
//! verdicts (and, for a merge, its inputs). The text report, JSON, JUnit, `.hlog`, the
//! thresholds, `merge` and the script's `done()` all read these, and none of them needs the
//! engine.

use serde::{Deserialize, Serialize};

use crate::slo::{self, Outcome, Slo};
pub use crate::summary::Summary;

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
