//! HdrHistogram interval logs (`.hlog`, the format of Java's `HistogramLogWriter`, read by
//! `HistogramLogProcessor`, HdrHistogramVisualizer and every HdrHistogram port): one interval
//! per wall-clock second with that second's corrected-latency histogram, values in µs.
//!
//! Interval timestamps are seconds since the run's start (written as both `StartTime` and
//! `BaseTime`); the first and last intervals are clipped to the run (for a merged result, to
//! the span from the earliest input's start to the latest input's end). The max column is in
//! milliseconds (the value divided by 1000), as Java's writer scales it by default for
//! microsecond-or-finer data.

use std::io::{self, Write};

use crate::hdr;
use crate::record::new_histogram;
use crate::report::json::{series_seconds, RunResult};

/// Writes the interval log for `r`.
pub fn write(w: &mut impl Write, r: &RunResult) -> io::Result<()> {
    let s = &r.summary;
    let start_ns = crate::clock::unix_us(s.started) * 1000;
    let end_ns = r
        .sources
        .iter()
        .map(|x| x.start_unix_us * 1000 + x.elapsed_ns)
        .fold(start_ns + s.elapsed.as_nanos() as u64, u64::max);
    let base = start_ns as f64 / 1e9;
    writeln!(
        w,
        "#[Logged with loadgen {}: corrected latency (response complete - intended send), microseconds, one interval per second]",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(w, "#[Histogram log format version 1.3]")?;
    writeln!(w, "#[StartTime: {base:.3} (seconds since epoch)]")?;
    writeln!(w, "#[BaseTime: {base:.3} (seconds since epoch)]")?;
    writeln!(
        w,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    let empty = new_histogram();
    for (t, interval) in series_seconds(s) {
        let sec_start = t * 1_000_000_000;
        let sec_end = sec_start + 1_000_000_000;
        // Clip to the run (a merged result's data may reach beyond it: keep whole seconds there).
        let from = if sec_end > start_ns {
            sec_start.max(start_ns)
        } else {
            sec_start
        };
        let to = if sec_start < end_ns {
            sec_end.min(end_ns)
        } else {
            sec_end
        };
        let h = interval.map(|i| i.histogram());
        let h = h.as_ref().unwrap_or(&empty);
        let max_ms = if h.is_empty() {
            0.0
        } else {
            h.max() as f64 / 1000.0
        };
        writeln!(
            w,
            "{:.3},{:.3},{max_ms:.3},{}",
            (from as f64 - start_ns as f64) / 1e9,
            to.saturating_sub(from) as f64 / 1e9,
            hdr::encode_base64(h)
        )?;
    }
    Ok(())
}
