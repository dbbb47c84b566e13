//! The dashboard's data while a run is going: the seconds the live collector has shown so
//! far, as the HTML report's [`ChartData`] (the same charts; the report's final snapshot,
//! [`ChartData::of`], replaces it when the run ends).
//!
//! Each second keeps only its few percentiles; the run's corrected and send-lag histograms
//! are summed as the seconds arrive, so memory and the cost of a snapshot grow with the run's
//! seconds only. The uncorrected latencies are not in the live stream: their spectrum appears
//! with the final report.

use hdrhistogram::Histogram;

use crate::config::Config;
use crate::hdr::{self, value_at_quantile};
use crate::report::charts::{spectrum, ChartData, Series, Spectra};
use crate::schedule::RateProfile;
use crate::timeline::NS_PER_SEC;
use crate::units::{format_duration, format_time_us};

/// One second as the live collector showed it (all threads merged).
#[derive(Debug)]
pub struct LiveSecond {
    /// The second, Unix time.
    pub t: u64,
    /// The run's start instant, Unix ns.
    pub anchor_ns: u64,
    /// Responses completed in it.
    pub requests: u64,
    /// Errors in it.
    pub errors: u64,
    /// Requests dropped so far in the run (all threads).
    pub dropped: u64,
    /// Its corrected latencies, µs.
    pub latency: Histogram<u64>,
    /// Its send lags, µs.
    pub lag: Histogram<u64>,
}

/// A second's row of the charts.
#[derive(Debug, Clone)]
struct Row {
    t: u64,
    planned: Option<f64>,
    requests: u64,
    errors: u64,
    dropped: u64,
    p50: Option<u64>,
    p90: Option<u64>,
    p99: Option<u64>,
    max: Option<u64>,
}

/// A run so far.
#[derive(Debug)]
pub struct Run {
    url: String,
    duration_ns: u64,
    rate: Option<RateProfile>,
    header: Vec<String>,
    facts: Vec<(String, String)>,
    rows: Vec<Row>,
    corrected: Histogram<u64>,
    lag: Histogram<u64>,
    requests: u64,
    errors: u64,
    dropped: u64,
}

impl Run {
    /// A run of `c` that has shown no second yet.
    pub fn new(c: &Config) -> Run {
        let mut header = Vec::new();
        let _ = crate::report::text::write_header(&mut header, c);
        let header = String::from_utf8_lossy(&header)
            .lines()
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let facts = vec![
            ("URL".into(), c.target.url.clone()),
            ("Method".into(), c.method.clone()),
            ("Duration".into(), format_duration(c.duration)),
            (
                "Threads / connections".into(),
                format!("{} / {}", c.threads, c.connections),
            ),
            (
                "Target rate".into(),
                match c.target_rate() {
                    Some(t) => format!("{t:.0} req/s"),
                    None => "closed loop (latencies not corrected)".into(),
                },
            ),
        ];
        Run {
            url: c.target.url.clone(),
            duration_ns: c.duration.as_nanos() as u64,
            rate: c.rate.clone(),
            header,
            facts,
            rows: Vec::new(),
            corrected: hdr::new_histogram(),
            lag: hdr::new_histogram(),
            requests: 0,
            errors: 0,
            dropped: 0,
        }
    }

    /// Adds the next second.
    pub fn push(&mut self, s: LiveSecond) {
        // The part of the second within the run, ns since its start.
        let a = (s.t * NS_PER_SEC).saturating_sub(s.anchor_ns);
        let b = ((s.t + 1) * NS_PER_SEC).saturating_sub(s.anchor_ns);
        let planned = self.rate.as_ref().map(|p| {
            let end = b.min(self.duration_ns);
            if end > a {
                (p.count_between(a, end) * 10.0).round() / 10.0
            } else {
                0.0
            }
        });
        let q = |x: f64| (!s.latency.is_empty()).then(|| value_at_quantile(&s.latency, x));
        self.rows.push(Row {
            t: s.t,
            planned,
            requests: s.requests,
            errors: s.errors,
            dropped: s.dropped.saturating_sub(self.dropped),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: (!s.latency.is_empty()).then(|| s.latency.max()),
        });
        self.requests += s.requests;
        self.errors += s.errors;
        self.dropped = self.dropped.max(s.dropped);
        let _ = self.corrected.add(&s.latency);
        let _ = self.lag.add(&s.lag);
    }

    /// The page's data for the run so far.
    pub fn data(&self) -> ChartData {
        let first = self.rows.first().map_or(0, |r| r.t);
        let col = |f: fn(&Row) -> Option<u64>| self.rows.iter().map(f).collect::<Vec<_>>();
        let series = Series {
            x: self.rows.iter().map(|r| r.t - first).collect(),
            t: self.rows.iter().map(|r| r.t).collect(),
            planned: self
                .rate
                .as_ref()
                .map(|_| self.rows.iter().map(|r| r.planned.unwrap_or(0.0)).collect()),
            achieved: self.rows.iter().map(|r| r.requests).collect(),
            p50: col(|r| r.p50),
            p90: col(|r| r.p90),
            p99: col(|r| r.p99),
            max: col(|r| r.max),
            errors: self.rows.iter().map(|r| r.errors).collect(),
            dropped: self.rows.iter().map(|r| r.dropped).collect(),
        };
        let mut facts = self.facts.clone();
        let q = |h: &Histogram<u64>, x: f64| {
            if h.is_empty() {
                "-".to_string()
            } else {
                format_time_us(value_at_quantile(h, x) as f64)
            }
        };
        facts.extend([
            ("Seconds shown".into(), self.rows.len().to_string()),
            ("Requests".into(), self.requests.to_string()),
            ("Errors".into(), self.errors.to_string()),
            ("Dropped".into(), self.dropped.to_string()),
            ("Corrected p50".into(), q(&self.corrected, 0.5)),
            ("Corrected p99".into(), q(&self.corrected, 0.99)),
            ("Corrected max".into(), q(&self.corrected, 1.0)),
            ("Send lag p99".into(), q(&self.lag, 0.99)),
        ]);
        ChartData {
            kind: "run".into(),
            title: format!("loadgen (live): {}", self.url),
            header: self.header.clone(),
            facts,
            thresholds: Vec::new(),
            passed: true,
            notes: vec![format!(
                "Live: {}s of {} shown, updated every second; the final report replaces this page when the run ends.",
                self.rows.len(),
                format_duration(std::time::Duration::from_nanos(self.duration_ns))
            )],
            series,
            spectrum: Spectra {
                corrected: spectrum(&self.corrected),
                uncorrected: Vec::new(),
                send_lag: spectrum(&self.lag),
            },
            steps: Vec::new(),
            text: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    #[test]
    fn seconds_become_the_report_charts_columns() {
        let mut c = Config::new(Target::parse("http://h/").unwrap());
        c.duration = std::time::Duration::from_secs(2);
        c.rate = Some(RateProfile::Constant(100.0));
        let mut run = Run::new(&c);
        const B: u64 = 1_800_000_000;
        let anchor = B * NS_PER_SEC + 500_000_000;
        for (i, dropped) in [(0u64, 0u64), (1, 3), (2, 5)] {
            let mut latency = hdr::new_histogram();
            latency.record(1000 * (i + 1)).unwrap();
            run.push(LiveSecond {
                t: B + i,
                anchor_ns: anchor,
                requests: 10 + i,
                errors: i,
                dropped,
                latency,
                lag: hdr::new_histogram(),
            });
        }
        let d = run.data();
        assert_eq!(d.series.x, vec![0, 1, 2]);
        assert_eq!(d.series.achieved, vec![10, 11, 12]);
        assert_eq!(d.series.dropped, vec![0, 3, 2]);
        // Half a second, a whole one, then the last half second of the 2 s run.
        assert_eq!(d.series.planned, Some(vec![50.0, 100.0, 50.0]));
        assert_eq!(d.series.p50[1], Some(2000));
        // The spectrum ends at the run's max (HdrHistogram's highest value equivalent to
        // 3000 µs at 3 significant digits).
        let max = d.spectrum.corrected.last().unwrap().1;
        assert!((3000..=3003).contains(&max), "{max}");
        assert!(d.spectrum.send_lag.is_empty());
    }
}
