//! HdrHistogram interval logs (`.hlog`, the format of Java's `HistogramLogWriter`, read by
//! `HistogramLogProcessor`, HdrHistogramVisualizer and every HdrHistogram port): one interval
//! per wall-clock second with that second's corrected-latency histogram, values in µs.
//!
//! Interval timestamps are seconds since the run's start (written as both `StartTime` and
//! `BaseTime`); the first and last intervals are clipped to the run (for a merged result, to
//! the span from the earliest input's start to the latest input's end). The max column is in
//! milliseconds (the value divided by 1000), as Java's writer scales it by default for
//! microsecond-or-finer data.
//!
//! The lines are written by the `hdrhistogram` crate's own `interval_log` writer (headers,
//! timestamps, compressed V2 histograms in base64). It has no call for the column legend that
//! Java's writer puts after the headers, so that one line is written here, between the
//! header-only writer and the one that writes the intervals; the second writer's
//! `MaxValueDivisor` comment therefore follows the legend.

use std::io::{self, Write};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, IntervalLogWriterError};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::clock;
use crate::hdr::new_histogram;
use crate::report::json::series_seconds;
use crate::result::RunResult;

/// The max column's unit: µs values, written as ms.
const MAX_VALUE_DIVISOR: f64 = 1000.0;

/// Writes the interval log for `r`.
pub fn write(w: &mut impl Write, r: &RunResult) -> io::Result<()> {
    let s = &r.summary;
    let start_ns = clock::unix_us(s.started) * 1000;
    let end_ns = r
        .sources
        .iter()
        .map(|x| x.start_unix_us * 1000 + x.elapsed_ns)
        .fold(start_ns + s.elapsed.as_nanos() as u64, u64::max);
    let start = clock::from_unix_us(start_ns / 1000);
    let mut serializer = V2DeflateSerializer::new();
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[Logged with loadgen {}: corrected latency (response complete - intended send), microseconds, one interval per second]",
            env!("CARGO_PKG_VERSION")
        ))
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(w, &mut serializer)?;
    writeln!(
        w,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    let mut log = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(w, &mut serializer)?;
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
        // Stray data from before the start (a clock step) has no place on the log's time
        // axis, which starts at 0: it is logged at 0, so that its counts are not lost.
        log.write_histogram(
            h,
            Duration::from_nanos(from.saturating_sub(start_ns)),
            Duration::from_nanos(to.saturating_sub(from)),
            None,
        )
        .map_err(|e| match e {
            IntervalLogWriterError::IoError(e) => e,
            IntervalLogWriterError::SerializeError(e) => io::Error::other(format!("{e:?}")),
        })?;
    }
    Ok(())
}
