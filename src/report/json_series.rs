//! The JSON result's per-second `series`: which seconds a result covers (every second the run
//! overlapped, without gaps), how many requests the plan placed in each, and each second's
//! document. The text report's per-second table, the .hlog writer and the HTML charts read
//! the same seconds.

use serde::{Deserialize, Serialize};

use crate::clock::unix_us;
use crate::hdr;
use crate::result::Summary;
use crate::timeline::{Interval, NS_PER_SEC};

/// One second of `series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondDoc {
    /// The second, Unix time (covers `[t, t+1)`).
    pub t: u64,
    /// Responses completed in this second.
    pub requests: u64,
    /// Errors of any kind in this second.
    pub errors: u64,
    /// Requests the plan placed in this second (the part of it within the run); `null` for
    /// closed loop. Added within version 1.
    #[serde(default)]
    pub planned: Option<f64>,
    /// Median corrected latency of this second's responses, µs; `null` without responses.
    pub p50_us: Option<u64>,
    /// 99th percentile, µs; `null` without responses.
    pub p99_us: Option<u64>,
    /// This second's corrected-latency histogram (V2 deflate, base64); `null` without responses.
    pub histogram: Option<String>,
}

/// The seconds of a result's time series, each with its recorded interval if it has one:
/// every second the run overlapped, without gaps, plus any second that holds data (a merged
/// result's inputs may reach beyond its own start + elapsed). Gaps are filled only within a day
/// of the run, so stray data can never make the series huge.
pub fn series_seconds(s: &Summary) -> Vec<(u64, Option<&Interval>)> {
    const SLACK: u64 = 86_400;
    let start_ns = unix_us(s.started) * 1000;
    let end_ns = start_ns + s.elapsed.as_nanos() as u64;
    let mut first = start_ns / NS_PER_SEC;
    let mut last = end_ns.saturating_sub(1).max(start_ns) / NS_PER_SEC;
    let iv = s.stats.timeline.intervals();
    let (lo, hi) = (first, last);
    let near = |t: u64| t + SLACK >= lo && t <= hi + SLACK;
    if let Some(a) = iv.iter().find(|i| near(i.second)) {
        first = first.min(a.second);
    }
    if let Some(b) = iv.iter().rev().find(|i| near(i.second)) {
        last = last.max(b.second);
    }
    let mut out = Vec::new();
    let mut it = iv.iter().peekable();
    let mut t = first;
    loop {
        // Data before the next filled second (only stray data lies outside the span).
        while let Some(i) = it.next_if(|i| i.second < t) {
            out.push((i.second, Some(i)));
        }
        if t > last {
            break;
        }
        out.push((t, it.next_if(|i| i.second == t)));
        t += 1;
    }
    out.extend(it.map(|i| (i.second, Some(i))));
    out
}

/// Requests the plan placed in the wall-clock second `t` (the part of it within the run);
/// `None` for closed loop.
pub fn planned_in_second(s: &Summary, t: u64) -> Option<f64> {
    let start_ns = unix_us(s.started) * 1000;
    let end_ns = s.config.duration.as_nanos() as u64;
    // The run's time of a wall-clock second's start, within the plan.
    let rel = move |t: u64| {
        t.saturating_mul(NS_PER_SEC)
            .saturating_sub(start_ns)
            .min(end_ns)
    };
    s.config
        .rate
        .as_ref()
        .map(|p| p.count_between(rel(t), rel(t + 1)))
}

pub(super) fn series(s: &Summary) -> Vec<SecondDoc> {
    series_seconds(s)
        .into_iter()
        .map(|(t, i)| {
            let h = i.map(Interval::histogram).filter(|h| !h.is_empty());
            SecondDoc {
                t,
                requests: i.map_or(0, |i| i.requests),
                errors: i.map_or(0, |i| i.errors),
                planned: planned_in_second(s, t),
                p50_us: h.as_ref().map(|h| crate::hdr::value_at_quantile(h, 0.5)),
                p99_us: h.as_ref().map(|h| crate::hdr::value_at_quantile(h, 0.99)),
                histogram: h.as_ref().map(hdr::encode_base64),
            }
        })
        .collect()
}
