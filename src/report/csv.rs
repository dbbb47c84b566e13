//! CSV in Locust's shape (`--csv PREFIX`): `PREFIX_stats.csv`, one row per run, and
//! `PREFIX_stats_history.csv`, one row per wall-clock second, with Locust's column names where
//! they mean the same thing, so that tools that read Locust's files read these. RFC 4180 (the
//! `csv` crate quotes what needs quoting).
//!
//! As in Locust, response times are in milliseconds, here with three decimals (µs resolution:
//! a loopback server answers in tens of µs). They are loadgen's corrected latencies (from the
//! intended send time, with lower bounds for unfinished requests). `Request Count` is the
//! completed responses and `Failure Count` every error (the JSON's `requests` and
//! `errors.total`). Columns after Locust's are loadgen's own (dropped, planned rate,
//! uncorrected latency, send lag). A history row's rates are that second's counts, and the
//! first and last seconds of a run may be partial.

use std::io;

use hdrhistogram::Histogram;

use crate::hdr::value_at_quantile;
use crate::report::charts::seconds;
use crate::result::RunResult;

/// Locust's percentile columns, as quantiles and as column names.
const PERCENTILES: [(f64, &str); 11] = [
    (0.5, "50%"),
    (0.66, "66%"),
    (0.75, "75%"),
    (0.8, "80%"),
    (0.9, "90%"),
    (0.95, "95%"),
    (0.98, "98%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
    (1.0, "100%"),
];

/// µs as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn ms_f(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// A rate with two decimals.
fn rate(r: f64) -> String {
    format!("{r:.2}")
}

/// The percentile cells of `h` (empty cells for an empty histogram).
fn percentile_cells(h: &Histogram<u64>) -> impl Iterator<Item = String> + '_ {
    PERCENTILES.iter().map(move |(q, _)| {
        if h.is_empty() {
            String::new()
        } else {
            ms(value_at_quantile(h, *q))
        }
    })
}

fn to_io(e: ::csv::Error) -> io::Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => e,
        k => io::Error::other(format!("{k:?}")),
    }
}

/// The `_stats.csv` file: a header and one row for the run.
pub fn stats(r: &RunResult) -> io::Result<Vec<u8>> {
    let s = &r.summary;
    let st = &s.stats;
    let h = &st.corrected;
    let failures = st.errors.socket() + st.errors.status;
    let window = s.rate_window().as_secs_f64();
    let per_s = |n: u64| if window > 0.0 { n as f64 / window } else { 0.0 };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut head: Vec<&str> = vec![
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ];
    head.extend(PERCENTILES.iter().map(|(_, n)| *n));
    head.extend([
        "Dropped Count",
        "Planned Requests/s",
        "Uncorrected Median Response Time",
        "Uncorrected 99%",
        "Send Lag 99%",
    ]);
    w.write_record(&head).map_err(to_io)?;
    let empty = h.is_empty();
    let or_empty = |v: String| if empty { String::new() } else { v };
    let mut row: Vec<String> = vec![
        s.config.method.clone(),
        s.config.target.url.clone(),
        st.requests.to_string(),
        failures.to_string(),
        or_empty(ms(value_at_quantile(h, 0.5))),
        or_empty(ms_f(h.mean())),
        or_empty(ms(h.min())),
        or_empty(ms(h.max())),
        if st.requests > 0 {
            format!("{:.1}", st.bytes as f64 / st.requests as f64)
        } else {
            "0".into()
        },
        rate(s.achieved_rate()),
        rate(per_s(failures)),
    ];
    row.extend(percentile_cells(h));
    let u = &st.uncorrected;
    let u_cell = |q: f64| {
        if u.is_empty() {
            String::new()
        } else {
            ms(value_at_quantile(u, q))
        }
    };
    row.extend([
        st.dropped.to_string(),
        s.config.target_rate().map(rate).unwrap_or_default(),
        u_cell(0.5),
        u_cell(0.99),
        if st.send_lag.is_empty() {
            String::new()
        } else {
            ms(value_at_quantile(&st.send_lag, 0.99))
        },
    ]);
    w.write_record(&row).map_err(to_io)?;
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

/// The `_stats_history.csv` file: a header and one row per second of the run.
pub fn history(r: &RunResult) -> io::Result<Vec<u8>> {
    let s = &r.summary;
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut head: Vec<&str> = vec![
        "Timestamp",
        "Type",
        "Name",
        "Planned Requests/s",
        "Requests/s",
        "Failures/s",
        "Dropped/s",
    ];
    head.extend(PERCENTILES.iter().map(|(_, n)| *n));
    head.extend([
        "Total Request Count",
        "Total Failure Count",
        "Total Dropped Count",
    ]);
    w.write_record(&head).map_err(to_io)?;
    let (mut requests, mut failures, mut dropped) = (0u64, 0u64, 0u64);
    for x in seconds(s) {
        requests += x.requests;
        failures += x.errors;
        dropped += x.dropped;
        let mut row: Vec<String> = vec![
            x.t.to_string(),
            s.config.method.clone(),
            s.config.target.url.clone(),
            x.planned.map(rate).unwrap_or_default(),
            x.requests.to_string(),
            x.errors.to_string(),
            x.dropped.to_string(),
        ];
        row.extend(percentile_cells(&x.latency));
        row.extend([
            requests.to_string(),
            failures.to_string(),
            dropped.to_string(),
        ]);
        w.write_record(&row).map_err(to_io)?;
    }
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))
}
