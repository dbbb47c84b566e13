//! The live view of a run: the per-second stream from the worker threads (each closes its
//! second on the clock and sends it: [`ticker`]), merged on a thread of its own into one
//! progress line a second on stderr ([`line`]), with the `--watch-pid` processes sampled
//! ([`crate::watch`]) at the same pace.
//!
//! Second `t` (Unix time, as the time line counts) is shown once every worker has closed it,
//! or [`GRACE`] after it ended, whichever comes first — so a stalled server, or a thread stuck
//! in its script, still gives a line every second. Nothing goes to stdout: the report and the
//! JSON go there. On a terminal the line is redrawn in place (indicatif, on stderr);
//! `--progress` prints it as plain lines when stderr is not a terminal (CI logs); `-q`
//! silences it. Each second shown also goes to the `--dashboard` ([`crate::dashboard`]),
//! if there is one. The run's `series` and report are built from the threads' own time lines after
//! they join (exact); the live stream is a view of the same seconds, closed by the same rule.

pub mod line;
pub mod ticker;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use crate::config::Config;
use crate::hdr;
use crate::schedule::RateProfile;
use crate::timeline::{Interval, NS_PER_SEC};
use crate::watch::{Watch, Watched};
use line::Line;

/// How long after a second ends its line is shown even if some thread has not closed it yet.
pub const GRACE: Duration = Duration::from_millis(300);

/// One worker thread's closed second(s), sent once a second by its [`ticker`].
#[derive(Debug)]
pub struct Tick {
    /// The worker thread's index.
    pub thread: usize,
    /// Unix time of the run's start instant `t0`, ns.
    pub anchor_ns: u64,
    /// Every second before this one (Unix time, s) is closed for this thread.
    pub through: u64,
    /// The seconds the thread closed since its previous tick (only those that saw anything).
    pub intervals: Vec<Interval>,
    /// Send lags recorded since the previous tick, µs (HdrHistogram V2 plain; empty: none).
    pub send_lag: Vec<u8>,
    /// The thread's requests dropped so far.
    pub dropped: u64,
}

/// What the collector receives.
#[derive(Debug)]
pub enum Msg {
    /// A worker's second.
    Tick(Tick),
    /// A worker thread has ended: it closes nothing more.
    Done(usize),
    /// The run is over (sent by [`Live::finish`]).
    End,
}

/// Sends [`Msg::Done`] for its thread when dropped, however the worker ends.
pub struct ThreadDone(pub Sender<Msg>, pub usize);

impl Drop for ThreadDone {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Done(self.1));
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Not at all.
    #[default]
    Off,
    /// One line redrawn in place on the terminal (stderr).
    Bar,
    /// One plain line a second on stderr.
    Lines,
}

impl Mode {
    /// The mode for `--progress` and `-q`: silent with `-q`; redrawn in place when stderr is a
    /// terminal; plain lines with `--progress`; else off.
    pub fn choose(progress: bool, quiet: bool) -> Mode {
        if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else if progress {
            Mode::Lines
        } else {
            Mode::Off
        }
    }
}

/// What the live view of one run shows and watches.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How progress is shown.
    pub mode: Mode,
    /// `--watch-pid` processes.
    pub pids: Vec<u32>,
    /// A prefix for the lines (a `find` step), or empty.
    pub label: String,
    /// `--dashboard`: every second shown is pushed to it too.
    pub dashboard: Option<crate::dashboard::Dashboard>,
}

/// The collector thread of one run.
pub struct Live {
    tx: Sender<Msg>,
    handle: JoinHandle<Vec<Watched>>,
}

impl Live {
    /// Starts the collector for a run of `config`, or `None` when there is nothing to show
    /// or watch (the workers then run no ticker at all).
    pub fn start(config: &Config, opts: Options) -> Option<Live> {
        if opts.mode == Mode::Off && opts.pids.is_empty() && opts.dashboard.is_none() {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let plan = PlanView {
            threads: config.threads,
            duration_ns: config.duration.as_nanos() as u64,
            rate: config.rate.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("loadgen-live".into())
            .spawn(move || collect(rx, plan, opts))
            .ok()?;
        Some(Live { tx, handle })
    }

    /// A sender for the engine's workers.
    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
    }

    /// Ends the live view (clears the line) and returns what was watched.
    pub fn finish(self) -> Vec<Watched> {
        let _ = self.tx.send(Msg::End);
        self.handle.join().unwrap_or_default()
    }
}

/// What the collector needs of the run's plan.
struct PlanView {
    threads: usize,
    duration_ns: u64,
    rate: Option<RateProfile>,
}

/// One second being gathered from the threads.
struct Second {
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
    lag: Histogram<u64>,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            requests: 0,
            errors: 0,
            latency: hdr::new_histogram(),
            lag: hdr::new_histogram(),
        }
    }
}

fn unix_now_ns() -> u64 {
    crate::clock::unix_ns(SystemTime::now())
}

/// Adds an encoded histogram into `h` (a malformed one, which the workers never send, is
/// skipped).
fn add(h: &mut Histogram<u64>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Ok(o) = hdr::decode(bytes) {
        let _ = h.add(&o);
    }
}

/// The collector: merges the threads' seconds, samples the watched processes, shows a line
/// per second; returns the watched processes' results at [`Msg::End`].
fn collect(rx: Receiver<Msg>, plan: PlanView, opts: Options) -> Vec<Watched> {
    let mut watches: Vec<Watch> = opts.pids.iter().map(|&p| Watch::start(p)).collect();
    let mut own = Watch::start(0);
    let bar = (opts.mode == Mode::Bar).then(|| {
        let b =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        b.set_style(
            indicatif::ProgressStyle::with_template("{wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let n = plan.threads;
    let mut anchor: Option<u64> = None;
    let mut next = 0u64; // the next second to show
    let mut through = vec![0u64; n];
    let mut done = vec![false; n];
    let mut dropped = vec![0u64; n];
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    let mut next_sample = (unix_now_ns() / NS_PER_SEC + 1) * NS_PER_SEC;
    let grace = GRACE.as_nanos() as u64;
    loop {
        let now = unix_now_ns();
        let mut wake = next_sample;
        if anchor.is_some() {
            wake = wake.min((next + 1) * NS_PER_SEC + grace);
        }
        let wait = Duration::from_nanos(wake.saturating_sub(now).max(1_000_000));
        match rx.recv_timeout(wait) {
            Ok(Msg::Tick(t)) => {
                if anchor.is_none() {
                    anchor = Some(t.anchor_ns);
                    next = t.anchor_ns / NS_PER_SEC;
                }
                for iv in &t.intervals {
                    let s = seconds.entry(iv.second).or_default();
                    s.requests += iv.requests;
                    s.errors += iv.errors;
                    add(&mut s.latency, &iv.latency);
                }
                let last = t.through.saturating_sub(1);
                add(&mut seconds.entry(last).or_default().lag, &t.send_lag);
                if let Some(x) = through.get_mut(t.thread) {
                    *x = (*x).max(t.through);
                }
                if let Some(d) = dropped.get_mut(t.thread) {
                    *d = t.dropped;
                }
            }
            Ok(Msg::Done(i)) => {
                if let Some(d) = done.get_mut(i) {
                    *d = true;
                }
            }
            Ok(Msg::End) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = unix_now_ns();
        if now >= next_sample {
            for w in watches.iter_mut() {
                w.sample();
            }
            own.sample();
            next_sample = (now / NS_PER_SEC + 1) * NS_PER_SEC;
        }
        let Some(a) = anchor else { continue };
        let reached = through.iter().copied().max().unwrap_or(0);
        loop {
            let all = (0..n).all(|i| done[i] || through[i] > next);
            let late = now >= (next + 1) * NS_PER_SEC + grace;
            // Once every thread has ended, no second after the last one closed is shown.
            let ended = done.iter().all(|&d| d) && next >= reached;
            if !(all || late) || ended {
                break;
            }
            let s = seconds.remove(&next).unwrap_or_default();
            let l = line_of(
                &plan,
                &opts.label,
                a,
                next,
                &s,
                dropped.iter().sum(),
                &watches,
                &own,
            );
            match &bar {
                Some(b) => b.set_message(l.render()),
                None if opts.mode == Mode::Lines => eprintln!("{}", l.render()),
                None => {}
            }
            if let Some(d) = &opts.dashboard {
                d.second(crate::dashboard::snapshot::LiveSecond {
                    t: next,
                    anchor_ns: a,
                    requests: s.requests,
                    errors: s.errors,
                    dropped: dropped.iter().sum(),
                    latency: s.latency,
                    lag: s.lag,
                });
            }
            next += 1;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    watches.into_iter().map(Watch::finish).collect()
}

/// The line of second `t` (Unix time) of a run that started at `anchor` (Unix ns).
#[allow(clippy::too_many_arguments)]
fn line_of(
    plan: &PlanView,
    label: &str,
    anchor: u64,
    t: u64,
    s: &Second,
    dropped: u64,
    watches: &[Watch],
    own: &Watch,
) -> Line {
    // The part of the second within the run, ns since t0.
    let a = (t * NS_PER_SEC).saturating_sub(anchor);
    let b = ((t + 1) * NS_PER_SEC).saturating_sub(anchor);
    let span = (b - a).max(1) as f64 / 1e9;
    let planned_rate = plan.rate.as_ref().map(|p| {
        let end = b.min(plan.duration_ns);
        if end > a {
            p.count_between(a, end) / ((end - a) as f64 / 1e9)
        } else {
            0.0
        }
    });
    let q = |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| hdr::value_at_quantile(h, q));
    let last = |w: &Watch| w.last_sample().map(|x| (x.cpu_pct, x.rss_bytes));
    Line {
        label: label.to_string(),
        elapsed_s: b as f64 / 1e9,
        planned_s: plan.duration_ns as f64 / 1e9,
        planned_rate,
        achieved_rate: s.requests as f64 / span,
        p50_us: q(&s.latency, 0.5),
        p99_us: q(&s.latency, 0.99),
        errors: s.errors,
        dropped,
        lag_p99_us: q(&s.lag, 0.99),
        watched: watches
            .iter()
            .map(|w| line::Proc {
                pid: w.pid,
                name: w.name().to_string(),
                now: last(w),
            })
            .collect(),
        own_cpu: own.last_sample().map(|x| x.cpu_pct),
    }
}
