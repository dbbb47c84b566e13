//! The per-second table that ends the text report of a run with a profile (`--stages`,
//! `--step`, `--conn-stages`): planned (or connections in use) against achieved requests, with
//! each row's corrected p50, p99 and maximum and its errors — where a ramp's knee shows.

use std::io::{self, Write};

use crate::result::Summary;
use crate::schedule::RateProfile;
use crate::units::format_time_us;

/// Most rows of the per-second table: longer runs group seconds.
const TABLE_ROWS: usize = 60;

/// With a rate profile: planned and achieved requests per second (or per group of seconds,
/// so that a long run stays at [`TABLE_ROWS`] rows), with each row's corrected p50, p99 and
/// maximum and its errors — where a ramp's knee shows.
pub fn profile_table(w: &mut impl Write, s: &Summary) -> io::Result<()> {
    // The second column: the plan's requests (a rate profile), or the connections in use at
    // the row's middle (a connection profile).
    let planned = |from_ns: u64, to_ns: u64| match (&s.config.rate, &s.config.conn_profile) {
        (Some(r @ RateProfile::Stages(_)), _) => Some(r.count_between(from_ns, to_ns)),
        (_, Some(p)) => Some(p.in_use(from_ns / 2 + to_ns / 2) as f64),
        _ => None,
    };
    if planned(0, 0).is_none() {
        return Ok(());
    }
    let (what, column) = if s.config.conn_profile.is_some() {
        ("connections in use vs achieved requests", "conns")
    } else {
        ("planned vs achieved requests", "planned")
    };
    let start_ns = s
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seconds = crate::report::json::series_seconds(s);
    if seconds.is_empty() {
        return Ok(());
    }
    let group = seconds.len().div_ceil(TABLE_ROWS).max(1);
    let unit = if group == 1 {
        "second".to_string()
    } else {
        format!("{group} seconds")
    };
    writeln!(w, "  Per {unit} ({what}, corrected latency):")?;
    writeln!(
        w,
        "  {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "at", column, "achieved", "p50", "p99", "max", "errors"
    )?;
    for chunk in seconds.chunks(group) {
        let first = chunk[0].0;
        let last = chunk[chunk.len() - 1].0 + 1;
        let rel = |t: u64| (t * 1_000_000_000).saturating_sub(start_ns);
        let planned = planned(
            rel(first),
            rel(last).min(s.config.duration.as_nanos() as u64),
        )
        .unwrap_or(0.0);
        let mut h = crate::record::new_histogram();
        let (mut done, mut errors) = (0, 0);
        for (_, i) in chunk {
            if let Some(i) = i {
                done += i.requests;
                errors += i.errors;
                let _ = h.add(i.histogram());
            }
        }
        let at = rel(first) as f64 / 1e9;
        let q = |p: f64| {
            if h.is_empty() {
                "-".to_string()
            } else {
                format_time_us(crate::hdr::value_at_quantile(&h, p) as f64)
            }
        };
        let max = if h.is_empty() {
            "-".to_string()
        } else {
            format_time_us(h.max() as f64)
        };
        writeln!(
            w,
            "  {at:>7.1}s {planned:>10.0} {done:>10} {:>10} {:>10} {max:>10} {errors:>8}",
            q(0.5),
            q(0.99),
        )?;
    }
    Ok(())
}
