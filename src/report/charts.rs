//! The data every plot of a run draws, computed once from a [`RunResult`]: the per-second rows
//! ([`seconds`]: planned and completed requests, errors, dropped, the second's corrected
//! histogram) that the CSV history and the HTML report both read, and [`ChartData`], the
//! plain, serializable snapshot the HTML page renders its charts from (see
//! [`html`](super::html) for how a live page reuses it).
//!
//! [`ChartData::of`] is a pure function of the result, cheap enough to call once a second on
//! a running total: a few hundred quantile look-ups and one decoded histogram per second.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::clock::{rfc3339, unix_us};
use crate::hdr::value_at_quantile;
use crate::report::json::{planned_in_second, series_seconds};
use crate::result::{RunResult, Summary};
use crate::timeline::{Interval, NS_PER_SEC};
use crate::units::{format_binary, format_duration, format_time_us};

/// One wall-clock second of a run (Unix-aligned, so the first and last may be partial).
#[derive(Debug, Clone)]
pub struct Second {
    /// The second, Unix time (covers `[t, t+1)`).
    pub t: u64,
    /// Requests the plan placed in it; `None` in closed loop.
    pub planned: Option<f64>,
    /// Responses completed in it.
    pub requests: u64,
    /// Errors of any kind in it.
    pub errors: u64,
    /// Planned requests never sent (every connection busy). A run counts all of them at one
    /// instant, the end of its drain period (`conn/unfinished.rs`), so they are placed in the
    /// second in which the run ended; for a merge, in which the last input ended.
    pub dropped: u64,
    /// Corrected latencies of the second (µs), with the lower bounds of the requests left
    /// unfinished in it; empty without any.
    pub latency: Histogram<u64>,
}

/// The seconds of `s`, in order, without gaps (as the JSON `series`).
pub fn seconds(s: &Summary) -> Vec<Second> {
    let start_ns = unix_us(s.started) * 1000;
    let end_second = (start_ns + s.elapsed.as_nanos() as u64).saturating_sub(1) / NS_PER_SEC;
    let mut out: Vec<Second> = series_seconds(s)
        .into_iter()
        .map(|(t, i)| Second {
            t,
            planned: planned_in_second(s, t),
            requests: i.map_or(0, |i| i.requests),
            errors: i.map_or(0, |i| i.errors),
            dropped: 0,
            latency: i
                .map(Interval::histogram)
                .unwrap_or_else(crate::hdr::new_histogram),
        })
        .collect();
    if s.stats.dropped > 0 {
        let at = out
            .iter()
            .rposition(|x| x.t <= end_second)
            .unwrap_or(out.len().saturating_sub(1));
        if let Some(x) = out.get_mut(at) {
            x.dropped = s.stats.dropped;
        }
    }
    out
}

/// A latency in µs, or `None` for an empty histogram.
fn q(h: &Histogram<u64>, quantile: f64) -> Option<u64> {
    (!h.is_empty()).then(|| value_at_quantile(h, quantile))
}

/// The per-second columns of a run's charts (index `i` of each is the same second).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Seconds since the first second of the series (the x axis).
    pub x: Vec<u64>,
    /// Unix time of each second.
    pub t: Vec<u64>,
    /// Requests planned in each second; `null` in closed loop.
    pub planned: Option<Vec<f64>>,
    /// Responses completed in each second.
    pub achieved: Vec<u64>,
    /// Corrected latency percentiles of each second, µs (`null`: no responses).
    pub p50: Vec<Option<u64>>,
    /// 90th percentile.
    pub p90: Vec<Option<u64>>,
    /// 99th percentile.
    pub p99: Vec<Option<u64>>,
    /// Maximum.
    pub max: Vec<Option<u64>>,
    /// Errors in each second.
    pub errors: Vec<u64>,
    /// Dropped requests in each second (see [`Second::dropped`]).
    pub dropped: Vec<u64>,
}

/// A percentile spectrum on HdrHistogram's axis: points `[x, µs]` with
/// `x = log10(1 / (1 − quantile))` (0: the median's left end, 1: 90%, 2: 99%, ...); the last
/// point is the maximum, at `x = log10(count)`.
pub type Spectrum = Vec<(f64, u64)>;

/// Steps on the spectrum's x axis: 20 points per decade of 1/(1 − p).
const SPECTRUM_STEP: f64 = 0.05;

/// The spectrum of `h` (empty for an empty histogram).
pub fn spectrum(h: &Histogram<u64>) -> Spectrum {
    if h.is_empty() {
        return Vec::new();
    }
    let end = (h.len() as f64).log10();
    let mut out = Vec::new();
    let mut k = 0u32;
    loop {
        let x = f64::from(k) * SPECTRUM_STEP;
        if x >= end {
            break;
        }
        out.push((round2(x), value_at_quantile(h, 1.0 - 10f64.powf(-x))));
        k += 1;
    }
    out.push((round2(end.max(0.0)), h.max()));
    out
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The run's three spectra.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spectra {
    /// Corrected latency (from the intended send time).
    pub corrected: Spectrum,
    /// Uncorrected latency (from the actual send).
    pub uncorrected: Spectrum,
    /// Send lag (the generator's own lateness).
    pub send_lag: Spectrum,
}

/// One threshold and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The expression as declared.
    pub expr: String,
    /// The measured value for people.
    pub detail: String,
    /// Whether it held.
    pub pass: bool,
    /// The limit in µs, for a latency threshold (drawn on latency charts).
    pub limit_us: Option<f64>,
}

/// One step of `loadgen find`.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The step's number, from 1.
    pub n: usize,
    /// `climb`, `bisect` or `confirm`.
    pub kind: String,
    /// The rate tried, req/s.
    pub rate: f64,
    /// The rate achieved, req/s.
    pub achieved: f64,
    /// Its corrected p99, µs (`null` without responses).
    pub p99: Option<u64>,
    /// `pass`, `fail` or `invalid`.
    pub verdict: String,
    /// Why it failed or was invalid (empty for a pass).
    pub reason: String,
}

/// Everything a report page shows, as one serializable snapshot. The page renders from it
/// alone; a live page renders it again whenever a new one arrives.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChartData {
    /// `run` (a run, a merge or a re-read result) or `find`.
    pub kind: String,
    /// The page's title.
    pub title: String,
    /// The run's header lines (as printed before it).
    pub header: Vec<String>,
    /// Configuration and totals, label and value.
    pub facts: Vec<(String, String)>,
    /// The thresholds and their verdicts, in declaration order.
    pub thresholds: Vec<Check>,
    /// Every threshold passed (true when there are none).
    pub passed: bool,
    /// The report's notes and warnings (closed loop, generator limits...).
    pub notes: Vec<String>,
    /// Per-second columns (empty for `find`).
    pub series: Series,
    /// Percentile spectra (empty for `find`).
    pub spectrum: Spectra,
    /// `find`'s steps (empty for a run).
    pub steps: Vec<Step>,
    /// The full text report, as printed.
    pub text: String,
}

impl ChartData {
    /// The snapshot of `r`.
    pub fn of(r: &RunResult) -> ChartData {
        let s = &r.summary;
        let st = &s.stats;
        let rows = seconds(s);
        let first = rows.first().map_or(0, |x| x.t);
        let open = s.config.rate.is_some();
        let series = Series {
            x: rows.iter().map(|x| x.t - first).collect(),
            t: rows.iter().map(|x| x.t).collect(),
            planned: open.then(|| {
                rows.iter()
                    .map(|x| (x.planned.unwrap_or(0.0) * 10.0).round() / 10.0)
                    .collect()
            }),
            achieved: rows.iter().map(|x| x.requests).collect(),
            p50: rows.iter().map(|x| q(&x.latency, 0.5)).collect(),
            p90: rows.iter().map(|x| q(&x.latency, 0.9)).collect(),
            p99: rows.iter().map(|x| q(&x.latency, 0.99)).collect(),
            max: rows
                .iter()
                .map(|x| (!x.latency.is_empty()).then(|| x.latency.max()))
                .collect(),
            errors: rows.iter().map(|x| x.errors).collect(),
            dropped: rows.iter().map(|x| x.dropped).collect(),
        };
        let mut header = Vec::new();
        let _ = super::run_text::write_header(&mut header, r);
        let mut text = Vec::new();
        let _ = super::run_text::write_body(&mut text, r, false);
        let c = &s.config;
        let mut facts: Vec<(String, String)> = vec![
            ("URL".into(), c.target.url.clone()),
            ("Method".into(), c.method.clone()),
            ("Address".into(), s.addr.to_string()),
            ("Start".into(), rfc3339(unix_us(s.started))),
            ("Duration".into(), format_duration(c.duration)),
            ("Elapsed".into(), format!("{:.3}s", s.elapsed.as_secs_f64())),
            (
                "Threads / connections".into(),
                format!("{} / {}", c.threads, c.connections),
            ),
            (
                "Target rate".into(),
                match c.target_rate() {
                    Some(t) => format!("{t:.0} req/s ({:?} pacing)", c.pacing).to_lowercase(),
                    None => "closed loop (latencies not corrected)".into(),
                },
            ),
            (
                "Achieved rate".into(),
                format!("{:.1} req/s", s.achieved_rate()),
            ),
            ("Requests".into(), st.requests.to_string()),
            (
                "Errors".into(),
                (st.errors.socket() + st.errors.status).to_string(),
            ),
            ("Dropped".into(), st.dropped.to_string()),
            (
                "Bytes read".into(),
                format!("{}B", format_binary(st.bytes as f64)),
            ),
        ];
        for (name, quantile) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            facts.push((
                format!("Corrected {name}"),
                format_time_us(value_at_quantile(&st.corrected, quantile) as f64),
            ));
        }
        facts.push((
            "Corrected max".into(),
            format_time_us(st.corrected.max() as f64),
        ));
        facts.push((
            "Send lag p99".into(),
            format_time_us(value_at_quantile(&st.send_lag, 0.99) as f64),
        ));
        if let Some(script) = &c.script {
            facts.push(("Script".into(), script.display().to_string()));
        }
        ChartData {
            kind: "run".into(),
            title: format!("loadgen: {}", c.target.url),
            header: lines(&header),
            facts,
            thresholds: checks(r),
            passed: r.passed(),
            notes: crate::report::text::notes(s),
            series,
            spectrum: Spectra {
                corrected: spectrum(&st.corrected),
                uncorrected: spectrum(&st.uncorrected),
                send_lag: spectrum(&st.send_lag),
            },
            steps: Vec::new(),
            text: String::from_utf8_lossy(&text).into_owned(),
        }
    }
}

/// The verdicts of `r`'s thresholds.
pub fn checks(r: &RunResult) -> Vec<Check> {
    r.outcomes
        .iter()
        .map(|o| Check {
            expr: o.expr.clone(),
            detail: o.detail.clone(),
            pass: o.pass,
            limit_us: (o.unit == "us").then_some(o.limit),
        })
        .collect()
}

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, Target};
    use crate::record::{Stats, Unfinished};
    use crate::schedule::RateProfile;

    #[test]
    fn seconds_follow_the_run_and_dropped_lands_where_it_ended() {
        const B: u64 = 1_800_000_000; // a Unix second
        let t0 = B * NS_PER_SEC + 500_000_000; // the run starts half-way into second B
        let mut stats = Stats::anchored(t0);
        let ms = 1_000_000;
        // 100 req/s for 2 s; the last 10 planned are dropped at the end of the drain (2.1 s).
        for k in 0..190u64 {
            let t = k * 10 * ms;
            stats.record(t, t, t, t + 2 * ms, 200);
        }
        stats.unfinished_n(150_000, 2100 * ms, 10, Unfinished::Dropped);
        stats.finish(2100 * ms);
        let mut config = Config::new(Target::parse("http://h/").unwrap());
        config.duration = Duration::from_secs(2);
        config.rate = Some(RateProfile::Constant(100.0));
        let s = Summary {
            config,
            addr: "127.0.0.1:80".parse().unwrap(),
            started: crate::clock::from_unix_us(t0 / 1000),
            elapsed: Duration::from_millis(2100),
            interrupted: false,
            script_error: None,
            stats,
        };
        let rows = seconds(&s);
        let t: Vec<u64> = rows.iter().map(|x| x.t - B).collect();
        assert_eq!(t, vec![0, 1, 2]);
        let requests: Vec<u64> = rows.iter().map(|x| x.requests).collect();
        assert_eq!(requests, vec![50, 100, 40]);
        let dropped: Vec<u64> = rows.iter().map(|x| x.dropped).collect();
        assert_eq!(dropped, vec![0, 0, 10]);
        let planned: Vec<f64> = rows.iter().map(|x| x.planned.unwrap().round()).collect();
        assert_eq!(planned, vec![50.0, 100.0, 50.0]);
        // The dropped requests' lower bounds are in their second's latencies.
        assert_eq!(rows[2].latency.len(), 50);
        let d = ChartData::of(&RunResult::new(s, Vec::new(), Vec::new()));
        assert_eq!(d.series.x, vec![0, 1, 2]);
        assert_eq!(d.series.dropped, vec![0, 0, 10]);
        assert_eq!(d.series.p50[1], Some(2000));
        assert!(d.spectrum.corrected.last().unwrap().1 >= 150_000);
    }

    #[test]
    fn spectrum_runs_from_the_median_to_the_max() {
        let mut h = crate::hdr::new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let s = spectrum(&h);
        assert_eq!(s.first(), Some(&(0.0, value_at_quantile(&h, 0.0))));
        // x = 2 is the 99th percentile.
        let p99 = s.iter().find(|(x, _)| *x == 2.0).unwrap().1;
        assert_eq!(p99, value_at_quantile(&h, 0.99));
        assert_eq!(s.last(), Some(&(4.0, h.max())));
        assert!(s.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
        // 20 points a decade: bounded for any count.
        assert_eq!(s.len(), 81);
        assert!(spectrum(&crate::hdr::new_histogram()).is_empty());
    }
}
