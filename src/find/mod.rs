//! `loadgen find`: the highest constant rate at which every `--slo` threshold holds.
//!
//! Each step is a short open-loop run at one constant rate through the ordinary engine
//! ([`engine::run_scripted`]: the same request loop, full coordinated-omission correction),
//! judged as a normal run is ([`RunResult::new`]) plus the generator checks of the report
//! ([`classify`]). Which rate comes next is the pure [`policy`]; this module runs the steps,
//! prints a line for each, and reports and writes (`--json`, [`doc`]) what was found.

pub mod doc;
mod judge;
mod page;
pub mod policy;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, PacingMode};
use crate::dashboard::Dashboard;
use crate::engine;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::report::json;
use crate::result::{RunResult, Summary};
use crate::schedule::RateProfile;
use crate::slo::{self, Slo};
use crate::units::format_time_us;
pub use judge::{classify, server_share, Judged, LAG_SHARE, SERVER_SHARE_MIN};
use policy::{End, Kind, Next, Policy, Tried, Verdict};

/// How long the closed-loop probe that picks the default start rate runs.
pub const PROBE: Duration = Duration::from_secs(1);

/// Confirmation runs at most: the first and two step-downs.
pub const CONFIRM_TRIES: usize = 3;

/// Everything `find` needs, validated by the CLI.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The load options (target, threads, connections, requests, timeout, TLS, script); each
    /// step sets its own rate, duration and pacing.
    pub base: Config,
    /// How `--pacing` picks each step's pacing from its rate.
    pub pacing: PacingMode,
    /// The thresholds every step must meet (at least one).
    pub slos: Vec<Slo>,
    /// `--start`; `None`: a tenth of a closed-loop probe's rate.
    pub start: Option<f64>,
    /// `--max`.
    pub max: f64,
    /// `--factor`.
    pub factor: f64,
    /// `--precision`, a fraction.
    pub precision: f64,
    /// `--step-duration`.
    pub step: Duration,
    /// `--confirm`; `None`: no confirmation run.
    pub confirm: Option<Duration>,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// How each step's progress is shown (`--progress`, or a terminal).
    pub progress: crate::live::Mode,
    /// `--html`.
    pub html: Option<PathBuf>,
    /// `--dashboard`: the search's page, updated as each step finishes.
    pub dashboard: Option<crate::dashboard::Settings>,
}

/// Writes one line to stdout; a closed pipe or other write error is ignored (the search
/// goes on and its result is still written).
fn say(line: std::fmt::Arguments<'_>) {
    let mut w = std::io::stdout().lock();
    let _ = w
        .write_fmt(line)
        .and_then(|_| w.write_all(b"\n"))
        .and_then(|_| w.flush());
}

/// The corrected latency at quantile `q` of a run, as the report prints it.
fn latency(s: &Summary, q: f64) -> String {
    if s.stats.corrected.is_empty() {
        "-".into()
    } else {
        format_time_us(crate::hdr::value_at_quantile(&s.stats.corrected, q) as f64)
    }
}

/// The columns of the per-step lines.
const HEADER: &str =
    "  step  kind       rate/s  achieved       p50       p99  errors  dropped  verdict";

/// One step's line.
fn step_line(n: usize, kind: Kind, r: &RunResult, j: &Judged) -> String {
    let s = &r.summary;
    let st = &s.stats;
    let mut verdict = j.verdict.as_str().to_string();
    if !j.reason.is_empty() {
        verdict.push_str(": ");
        verdict.push_str(&j.reason);
    }
    if let Some(n) = j.needed {
        verdict.push_str(&format!(
            "; {} dropped: at the server's latency this rate needs about {n} connections (-c {})",
            st.dropped, s.config.connections
        ));
    }
    format!(
        "  {n:>4}  {:<8} {:>8.0}  {:>8.0}  {:>8}  {:>8}  {:>6}  {:>7}  {verdict}",
        kind.as_str(),
        s.config.target_rate().unwrap_or(0.0),
        s.achieved_rate(),
        latency(s, 0.5),
        latency(s, 0.99),
        st.errors.socket() + st.errors.status,
        st.dropped,
    )
}

/// A step that was run: what the policy knows of it, and its result.
pub(crate) struct Step {
    pub(crate) tried: Tried,
    pub(crate) judged: Judged,
    pub(crate) result: RunResult,
}

/// The configuration of one run at `rate` (closed loop for `None`) lasting `duration`.
fn step_config(s: &Settings, rate: Option<f64>, duration: Duration) -> Config {
    let mut c = s.base.clone();
    c.rate = rate.map(RateProfile::Constant);
    c.duration = duration;
    c.set_pacing(s.pacing);
    c
}

/// Runs `c` through the engine, its progress shown as `progress` with the lines prefixed by
/// `label`; a script error that stopped it is a run failure.
fn run_one(
    c: &Config,
    slos: &[Slo],
    progress: crate::live::Mode,
    label: String,
) -> Result<RunResult> {
    let opts = crate::live::Options {
        mode: progress,
        pids: Vec::new(),
        label,
        dashboard: None,
    };
    let live = crate::live::Live::start(c, opts);
    let run = engine::run_live(c, live.as_ref().map(|l| l.sender()));
    if let Some(l) = live {
        l.finish();
    }
    let run = run?;
    if let Some(e) = &run.summary.script_error {
        return Err(Error::Script(e.clone()));
    }
    // The server may still be working on what the step left in flight (a closed-loop probe
    // stops without awaiting its last responses; an overloaded step leaves a queue): the next
    // step must not inherit that queue in its first latencies. Its slowest request bounds how
    // long that work takes; the wait is at most [`STEP_PAUSE_MAX`].
    let slowest = run.summary.stats.corrected.max();
    std::thread::sleep(Duration::from_micros(slowest).min(STEP_PAUSE_MAX));
    Ok(RunResult::new(run.summary, slos.to_vec(), Vec::new()))
}

/// The longest pause between two steps (see [`run_one`]).
const STEP_PAUSE_MAX: Duration = Duration::from_secs(1);

/// `rate req/s (p99 X)`, from the last step that ran at `rate` with `verdict`.
fn with_p99(steps: &[Step], rate: f64, verdict: Verdict) -> String {
    let p99 = steps
        .iter()
        .rev()
        .find(|s| s.tried.rate == rate && s.tried.verdict == verdict)
        .map(|s| latency(&s.result.summary, 0.99))
        .unwrap_or_else(|| "-".into());
    format!("{rate:.0} req/s (p99 {p99})")
}

/// Runs the search and reports it; the exit code on success (0: a rate was found). With
/// `--dashboard`, its page shows the steps as each finishes, then what was found, and stays
/// for `--dashboard-linger`.
pub fn run(s: &Settings) -> Result<i32> {
    let dash = match &s.dashboard {
        Some(d) => Some(Dashboard::bind(
            d,
            page::data(s, &[], page::RUNNING, None, None),
        )?),
        None => None,
    };
    let code = search(s, dash.as_ref());
    if let Some(d) = &dash {
        d.linger();
    }
    code
}

/// The search itself (see [`run`]).
fn search(s: &Settings, dash: Option<&Dashboard>) -> Result<i32> {
    // From here the first Ctrl-C stops the current step (and the search), a second quits.
    drop(crate::interrupt::subscribe());
    if s.base.script.is_some() {
        crate::script::check(&s.base)?;
    }
    crate::sys::ensure_nofile_limit(&s.base)?;
    let exprs: Vec<String> = s.slos.iter().map(|t| t.expr.clone()).collect();
    say(format_args!(
        "find: {} @ {} (-t{} -c{}): steps of {}, {}",
        exprs.join(", "),
        s.base.target.url,
        s.base.threads,
        s.base.connections,
        crate::units::format_duration(s.step),
        match s.confirm {
            Some(d) => format!("confirmation {}", crate::units::format_duration(d)),
            None => "no confirmation".into(),
        }
    ));
    let min = s.base.threads as f64;
    let (start, probe_rate) = match s.start {
        Some(r) => (r, None),
        None => {
            let r = run_one(
                &step_config(s, None, PROBE),
                &[],
                s.progress,
                "find probe".into(),
            )?;
            if r.summary.interrupted || crate::interrupt::signalled() {
                return Err(Error::Interrupted(
                    "interrupted during the probe; nothing found".into(),
                    crate::interrupt::exit_code(),
                ));
            }
            if r.summary.stats.status_range(200, 400) == 0 {
                return Err(Error::Runtime(format!(
                    "the probe got no successful (2xx or 3xx) response in {}",
                    crate::units::format_duration(PROBE)
                )));
            }
            let achieved = r.summary.achieved_rate();
            let start = policy::start_from_probe(achieved, min).min(s.max);
            say(format_args!(
                "find: a {} closed-loop probe reached {achieved:.0} req/s; starting at {start:.0} req/s",
                crate::units::format_duration(PROBE)
            ));
            (start, Some(achieved))
        }
    };
    let policy = Policy {
        start,
        max: s.max,
        factor: s.factor,
        precision: s.precision,
        confirm: s.confirm.is_some(),
        confirm_tries: CONFIRM_TRIES,
        min,
    };
    say(format_args!("{HEADER}"));
    let mut steps: Vec<Step> = Vec::new();
    let end = loop {
        let tried: Vec<Tried> = steps.iter().map(|s| s.tried).collect();
        let (rate, kind) = match policy.next(&tried) {
            Next::Done(end) => break Some(end),
            Next::Run { rate, kind } => (rate, kind),
        };
        if crate::interrupt::signalled() {
            break None;
        }
        let duration = match kind {
            Kind::Confirm => s.confirm.unwrap_or(s.step),
            _ => s.step,
        };
        let label = format!(
            "find step {} ({} {rate:.0} req/s)",
            steps.len() + 1,
            kind.as_str()
        );
        let result = match run_one(
            &step_config(s, Some(rate), duration),
            &s.slos,
            s.progress,
            label,
        ) {
            Ok(r) => r,
            Err(e) => {
                write_doc(s, &steps, None, probe_rate, start, dash)?;
                return Err(e);
            }
        };
        if result.summary.interrupted {
            break None;
        }
        if result.summary.stats.status_range(200, 400) == 0
            && slo::failure_line(&result.outcomes).is_none()
        {
            write_doc(s, &steps, None, probe_rate, start, dash)?;
            return Err(Error::Runtime(format!(
                "no successful (2xx or 3xx) response at {rate:.0} req/s, yet every threshold held; add one that fails then, e.g. --slo 'errors<=1%'"
            )));
        }
        let judged = classify(&result);
        say(format_args!(
            "{}",
            step_line(steps.len() + 1, kind, &result, &judged)
        ));
        steps.push(Step {
            tried: Tried {
                rate,
                kind,
                verdict: judged.verdict,
            },
            judged,
            result,
        });
        if let Some(d) = dash {
            let tried: Vec<Tried> = steps.iter().map(|s| s.tried).collect();
            let pass = policy::highest_pass(&tried);
            let fail = pass.map_or_else(
                || {
                    tried
                        .iter()
                        .filter(|t| t.verdict == Verdict::Fail)
                        .map(|t| t.rate)
                        .reduce(f64::min)
                },
                |p| policy::lowest_fail(&tried, p),
            );
            d.show(page::data(s, &steps, page::RUNNING, pass, fail));
        }
    };
    write_doc(s, &steps, end, probe_rate, start, dash)?;
    finish(&steps, end)
}

/// The last line(s) and the exit code for where the search ended (`None`: interrupted).
fn finish(steps: &[Step], end: Option<End>) -> Result<i32> {
    let tried: Vec<Tried> = steps.iter().map(|s| s.tried).collect();
    match end {
        Some(End::Found { rate, first_fail }) => {
            let tail = match first_fail {
                Some(f) => format!("first failing rate {}", with_p99(steps, f, Verdict::Fail)),
                None => "no rate up to --max failed".into(),
            };
            say(format_args!(
                "Highest rate meeting every threshold: {}; {tail}",
                with_p99(steps, rate, Verdict::Pass)
            ));
            Ok(0)
        }
        Some(End::FirstFailed) => {
            let first = &steps[0];
            Err(Error::Threshold(format!(
                "even the first step, {:.0} req/s, failed ({}); try a lower --start",
                first.tried.rate, first.judged.reason
            )))
        }
        Some(End::NotConfirmed { first_fail }) => Err(Error::Threshold(format!(
            "no rate was confirmed: {CONFIRM_TRIES} confirmation runs failed, down to {}; the server is not steady over longer runs (try a longer --step-duration)",
            with_p99(steps, first_fail, Verdict::Fail)
        ))),
        Some(End::Invalid { rate }) => {
            let so_far = match policy::highest_pass(&tried) {
                Some(p) => format!("; the highest rate that passed before it: {} (not confirmed)", with_p99(steps, p, Verdict::Pass)),
                None => String::new(),
            };
            let why = steps
                .last()
                .map(|s| s.judged.reason.clone())
                .unwrap_or_default();
            Err(Error::Runtime(format!(
                "stopped at {rate:.0} req/s, where the generator, not the server, was the limit ({why}): the server's capacity is higher than this generator can show; use more threads (-t), more connections (-c) or more generator machines{so_far}"
            )))
        }
        None => {
            let so_far = match policy::highest_pass(&tried) {
                Some(p) => {
                    let fail = policy::lowest_fail(&tried, p)
                        .map(|f| format!("; first failing rate {}", with_p99(steps, f, Verdict::Fail)))
                        .unwrap_or_default();
                    format!(
                        "highest rate that passed so far: {} (not confirmed){fail}",
                        with_p99(steps, p, Verdict::Pass)
                    )
                }
                None => "no step passed".into(),
            };
            say(format_args!("find: interrupted; {so_far}"));
            Err(Error::Interrupted(
                format!("interrupted; {so_far}"),
                crate::interrupt::exit_code(),
            ))
        }
    }
}

/// Writes the `--json` document and the `--html` page, if asked for, and shows the final
/// page on the dashboard.
fn write_doc(
    s: &Settings,
    steps: &[Step],
    end: Option<End>,
    probe_rate: Option<f64>,
    start: f64,
    dash: Option<&Dashboard>,
) -> Result<()> {
    if s.json.is_none() && s.html.is_none() && dash.is_none() {
        return Ok(());
    }
    let tried: Vec<Tried> = steps.iter().map(|s| s.tried).collect();
    let (outcome, max_rate, first_fail) = match end {
        Some(End::Found { rate, first_fail }) => ("found", Some(rate), first_fail),
        Some(End::FirstFailed) => (
            "first_step_failed",
            None,
            steps.first().map(|s| s.tried.rate),
        ),
        Some(End::NotConfirmed { first_fail }) => ("not_confirmed", None, Some(first_fail)),
        Some(End::Invalid { .. }) | None => {
            let pass = policy::highest_pass(&tried);
            let fail = pass.and_then(|p| policy::lowest_fail(&tried, p));
            let outcome = if end.is_some() {
                "invalid"
            } else {
                "interrupted"
            };
            (outcome, pass, fail)
        }
    };
    if let Some(d) = dash {
        d.finish_with(page::data(s, steps, outcome, max_rate, first_fail));
    }
    if let Some(path) = &s.html {
        let page = page::render(s, steps, outcome, max_rate, first_fail);
        write_atomic(path, page.as_bytes())?;
    }
    let Some(path) = &s.json else {
        return Ok(());
    };
    let d = doc::FindDoc {
        schema: doc::SCHEMA.into(),
        version: doc::VERSION,
        outcome: outcome.into(),
        max_rate,
        first_failing_rate: first_fail,
        thresholds: s.slos.iter().map(|t| t.expr.clone()).collect(),
        probe_rate,
        start_rate: start,
        steps: steps
            .iter()
            .map(|st| doc::StepDoc {
                rate: st.tried.rate,
                kind: st.tried.kind.as_str().into(),
                verdict: st.tried.verdict.as_str().into(),
                reason: (!st.judged.reason.is_empty()).then(|| st.judged.reason.clone()),
                result: json::to_document(&st.result),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&d).expect("a document serializes");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::config::Target;
    use crate::record::Stats;

    /// A 1 s step at 1000 req/s on one thread and 10 connections that completed `done`
    /// requests, each 2 ms, sent `lag_us` late.
    fn step(done: u64, lag_us: u64) -> Summary {
        step_of(done, lag_us, 2)
    }

    /// [`step`] with responses that took `ms` milliseconds.
    fn step_of(done: u64, lag_us: u64, ms: u64) -> Summary {
        let mut c = Config::new(Target::parse("http://127.0.0.1:1/").unwrap());
        c.threads = 1;
        c.connections = 10;
        c.duration = Duration::from_secs(1);
        c.rate = Some(RateProfile::Constant(1000.0));
        let mut stats = Stats::new();
        for i in 0..done {
            let t = i * 1_000_000;
            let sent = t + lag_us * 1000;
            stats.record(t, t, sent, sent + ms * 1_000_000, 200);
        }
        Summary {
            config: c,
            addr: "127.0.0.1:1".parse().unwrap(),
            started: SystemTime::now(),
            elapsed: Duration::from_secs(1),
            interrupted: false,
            script_error: None,
            stats,
        }
    }

    fn judge(s: Summary, slo: &str) -> Judged {
        classify(&RunResult::new(
            s,
            vec![Slo::parse(slo).unwrap()],
            Vec::new(),
        ))
    }

    #[test]
    fn a_step_passes_fails_or_is_invalid() {
        assert_eq!(judge(step(1000, 5), "p99<=10ms").verdict, Verdict::Pass);
        let j = judge(step(1000, 5), "p99<=1ms");
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(j.reason.contains("p99<=1ms"), "{}", j.reason);
        // A rate the server did not hold fails without any latency threshold failing: its
        // 20 ms responses held the 10 connections all the time (500/s × 20 ms).
        let j = judge(step_of(500, 5, 20), "p99<=30ms");
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(j.reason.contains("achieved 500 of 1000"), "{}", j.reason);
        // A failure while the generator sent late, by a good part of the latency, is the
        // generator's: invalid (5 ms late of 7 ms).
        let j = judge(step(1000, 5000), "p99<=5ms");
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("send lag p99"), "{}", j.reason);
        // A few ms late on a 50 ms failure is a busy machine, not the limit: a fail.
        let mut slow = step(0, 0);
        for i in 0..1000u64 {
            let t = i * 1_000_000;
            slow.stats.record(t, t, t + 3_000_000, t + 50_000_000, 200);
        }
        assert_eq!(judge(slow, "p99<=20ms").verdict, Verdict::Fail);
        // Short of the rate although the server held the connections only 10% of the time
        // (500/s × 2 ms over 10): they waited on the generator.
        let j = judge(step(500, 5), "p99<=10ms");
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("held only 10%"), "{}", j.reason);
        // So is one while its threads were on a CPU 95% of the step.
        let mut busy = step_of(500, 5, 20);
        busy.stats.cpu_ns = 950_000_000;
        let j = judge(busy, "p99<=30ms");
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("busy 95%"), "{}", j.reason);
        // A pass stands even with a late generator: its lateness is in the latencies.
        assert_eq!(judge(step(1000, 5000), "p99<=10ms").verdict, Verdict::Pass);
    }

    #[test]
    fn dropped_requests_say_how_many_connections_were_needed() {
        // 1000 req/s at 50 ms a request needs 50 connections; the step had 10.
        let mut s = step(0, 0);
        for i in 0..200u64 {
            let t = i * 5_000_000;
            s.stats.record(t, t, t, t + 50_000_000, 200);
        }
        s.stats.dropped = 800;
        let j = judge(s, "p99<=10ms");
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.needed, Some(50));
    }
}
