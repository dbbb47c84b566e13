//! How `find` judges one step: pass, fail, or invalid when the generator (its CPU, its send
//! lag, or its hold on the connections) and not the server was the limit.

use super::policy::Verdict;
use crate::report::text::{
    busy_share, connections_needed, BUSY_WARN_SHARE, LAG_WARN_US, RATE_WARN_SHARE,
};
use crate::result::{RunResult, Summary};
use crate::slo;
use crate::units::format_time_us;

/// Share of a failing step's corrected p99 that its send lag p99 (over [`LAG_WARN_US`])
/// must reach for the generator to have been the limit.
pub const LAG_SHARE: f64 = 0.25;

/// Below this [`server_share`], connections that requests waited for were held by the
/// generator, not the server: measured server-limited steps were at 0.8 to 1, steps of a
/// generator that could not turn its connections around fast enough at 0.5 to 0.65.
pub const SERVER_SHARE_MIN: f64 = 0.75;

/// A step's verdict with the reason for a fail or an invalid step.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// Pass, fail or invalid.
    pub verdict: Verdict,
    /// Why it failed or was invalid (empty for a pass).
    pub reason: String,
    /// For a step with dropped requests: the connections its rate needed at the server's
    /// latency (Little's law), when more than it had.
    pub needed: Option<u64>,
}

/// Judges one step's result: failed when a threshold failed or the server did not achieve
/// the rate (under [`RATE_WARN_SHARE`] of it), else passed. A failure is *invalid* instead
/// when the generator was the limit, and it then says nothing about the server: its worker
/// threads were on a CPU [`BUSY_WARN_SHARE`] of the step, or its send lag p99 (from when a
/// request was due and its connection free to when it was sent) was over [`LAG_WARN_US`]
/// and at least a [`LAG_SHARE`] of the corrected p99 (a busy machine delays a few sends by a
/// millisecond or two; a generator that cannot keep up falls behind by as much as the
/// latencies it reports), or requests waited for connections (the rate fell short, or
/// requests were dropped, with no failed request) that the server held less than
/// [`SERVER_SHARE_MIN`] of the time (Little's law: achieved rate × mean uncorrected latency,
/// which ends when a response reached the socket, over the connections): the rest of the
/// time the connections waited on the generator to read responses and send. A pass stands
/// even so: the corrected latencies include the
/// generator's lateness, which can only make them worse. Dropped requests are the server's doing (every connection was waiting
/// on it): they fail the step through its corrected latencies, and the connections the rate
/// would have needed are reported.
pub fn classify(r: &RunResult) -> Judged {
    let s = &r.summary;
    let rate = s.config.target_rate().unwrap_or(0.0);
    let needed =
        connections_needed(s).filter(|&n| s.stats.dropped > 0 && n > s.config.connections as u64);
    let judged = |verdict, reason: String| Judged {
        verdict,
        reason,
        needed,
    };
    let achieved = s.achieved_rate();
    let failure = match slo::failure_line(&r.outcomes) {
        Some(line) => line,
        None if achieved < rate * RATE_WARN_SHARE => {
            format!("the server did not hold the rate: achieved {achieved:.0} of {rate:.0} req/s")
        }
        None => return judged(Verdict::Pass, String::new()),
    };
    let lag99 = crate::hdr::value_at_quantile(&s.stats.send_lag, 0.99);
    let busy = busy_share(s);
    let p99 = crate::hdr::value_at_quantile(&s.stats.corrected, 0.99);
    if lag99 > LAG_WARN_US && lag99 as f64 >= LAG_SHARE * p99 as f64 {
        return judged(
            Verdict::Invalid,
            format!(
                "{failure}, but the generator fell behind its plan: send lag p99 {} (p99 {})",
                format_time_us(lag99 as f64),
                format_time_us(p99 as f64)
            ),
        );
    }
    let st = &s.stats;
    let waited = achieved < rate * RATE_WARN_SHARE || st.dropped > 0;
    let held = server_share(s);
    if waited && st.errors.socket() == 0 && held < SERVER_SHARE_MIN {
        return judged(
            Verdict::Invalid,
            format!(
                "{failure}, but requests waited for connections that the server held only {:.0}% of the time (the rest, the generator did)",
                held * 100.0
            ),
        );
    }
    if busy >= BUSY_WARN_SHARE {
        return judged(
            Verdict::Invalid,
            format!(
                "{failure}, but the generator's threads were busy {:.0}% of the step",
                busy * 100.0
            ),
        );
    }
    judged(Verdict::Fail, failure)
}

/// The share of the step's connection time that the server held them (Little's law):
/// achieved rate × mean uncorrected latency (send to the response's arrival at the socket)
/// over the connections. Near 1 when every connection was waiting on the server.
pub fn server_share(s: &Summary) -> f64 {
    let h = &s.stats.uncorrected;
    if h.is_empty() {
        return 0.0;
    }
    s.achieved_rate() * h.mean() / 1e6 / s.config.connections as f64
}
