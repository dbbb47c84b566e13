//! What one run (or a merge of runs) measured: the engine's [`Summary`], and the rates read
//! from it. The thresholds (`slo`) are evaluated against it and the result model (`result`)
//! holds it; it depends on neither.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::record::Stats;

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
