//! The bounds a JSON result's numbers must keep before loadgen uses them, so that a hostile
//! or damaged file is refused with a message instead of overflowing a sum (in a report or a
//! merge) or making the per-second series enormous. Every bound is far beyond what a real run
//! writes.

use super::json::Document;

/// Largest count accepted (2^53: beyond it JSON numbers are not exact in most readers, and up
/// to 1024 such counts add up without overflow).
pub const MAX_COUNT: u64 = 1 << 53;
/// Latest start accepted, Unix µs (the end of the year 9999).
pub const MAX_START_US: u64 = 253_402_300_799_999_999;
/// Longest elapsed time accepted, ns (31 days; the series holds one entry per second of it).
pub const MAX_ELAPSED_NS: u64 = 31 * 86_400 * 1_000_000_000;
/// Latest series second accepted, Unix seconds (the end of the year 9999).
pub const MAX_SECOND: u64 = MAX_START_US / 1_000_000;

/// Why `d` cannot be used, if a number in it is out of bounds.
pub fn check(d: &Document) -> Result<(), String> {
    let count = |what: &str, n: u64| {
        if n > MAX_COUNT {
            Err(format!("{what} {n} is out of range (at most 2^53)"))
        } else {
            Ok(())
        }
    };
    let e = &d.errors;
    for (what, n) in [
        ("requests", d.requests),
        ("bytes", d.bytes),
        ("stopped_unfinished", d.stopped_unfinished),
        (
            "generator_load.worker_cpu_ns",
            d.generator_load.worker_cpu_ns,
        ),
        ("errors.total", e.total),
        ("errors.connect", e.connect),
        ("errors.read", e.read),
        ("errors.write", e.write),
        ("errors.timeout", e.timeout),
        ("errors.status", e.status),
        ("config.threads", d.config.threads as u64),
        ("config.connections", d.config.connections as u64),
    ] {
        count(what, n)?;
    }
    for (k, n) in e.read_reasons.iter().chain(&d.status) {
        count(k, *n)?;
    }
    for s in &d.series {
        count("series[].requests", s.requests)?;
        count("series[].errors", s.errors)?;
        if s.t > MAX_SECOND {
            return Err(format!("series[].t {} is out of range", s.t));
        }
    }
    if d.start_unix_us > MAX_START_US {
        return Err(format!("start_unix_us {} is out of range", d.start_unix_us));
    }
    if d.elapsed_ns > MAX_ELAPSED_NS {
        return Err(format!(
            "elapsed_ns {} is out of range (at most 31 days)",
            d.elapsed_ns
        ));
    }
    for s in &d.sources {
        if s.start_unix_us > MAX_START_US || s.elapsed_ns > MAX_ELAPSED_NS {
            return Err(format!(
                "sources[] {:?}: start or elapsed out of range",
                s.file
            ));
        }
        count("sources[].requests", s.requests)?;
    }
    Ok(())
}
