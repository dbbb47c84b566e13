//! The profile flags' grammar: `--stages DUR:RATE[,DUR:RATE...]` (k6's stages),
//! `--step START+STEP/EVERY..END` (a step load), parsed into the schedule's stages, and
//! `--conn-stages DUR:N[,DUR:N...]` (closed-loop ramps), the same form with connection counts.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::schedule::Stage;
use crate::units::{parse_count, parse_duration};

/// Parses `--stages`: `DUR:RATE[,DUR:RATE...]`.
pub fn stages(spec: &str) -> Result<Vec<Stage>> {
    stage_list(spec, "--stages", "RATE", "a rate")
}

/// Parses `--conn-stages`: `DUR:N[,DUR:N...]` (whole numbers are checked by the profile).
pub fn conn_stages(spec: &str) -> Result<Vec<Stage>> {
    stage_list(spec, "--conn-stages", "N", "a connection count")
}

/// `DUR:X[,DUR:X...]` for `flag`, whose targets (`X`, `what`) are counts >= 0.
fn stage_list(spec: &str, flag: &str, x: &str, what: &str) -> Result<Vec<Stage>> {
    let bad = |why: String| Error::Usage(format!("{flag} {spec:?}: {why}"));
    spec.split(',')
        .map(|part| {
            let (d, r) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| bad(format!("expected DUR:{x}, got {part:?}")))?;
            let duration = parse_duration(d.trim()).map_err(|e| bad(e.to_string()))?;
            let target = parse_count(r.trim()).map_err(|e| bad(e.to_string()))?;
            if target < 0.0 {
                return Err(bad(format!("{what} must be >= 0, got {r:?}")));
            }
            Ok(Stage { duration, target })
        })
        .collect()
}

/// Parses `--step`: `START+STEP/EVERY..END` into stages: a jump to each rate, held for EVERY.
pub fn step(spec: &str) -> Result<Vec<Stage>> {
    let bad = |why: &str| Error::Usage(format!("--step {spec:?}: {why} (e.g. 1000+500/30s..5000)"));
    let (head, end) = spec.split_once("..").ok_or_else(|| bad("missing ..END"))?;
    let (start, rest) = head.split_once('+').ok_or_else(|| bad("missing +STEP"))?;
    let (inc, every) = rest.split_once('/').ok_or_else(|| bad("missing /EVERY"))?;
    let num = |s: &str| parse_count(s.trim()).map_err(|e| bad(&e.to_string()));
    let (start, inc, end) = (num(start)?, num(inc)?, num(end)?);
    let every = parse_duration(every.trim()).map_err(|e| bad(&e.to_string()))?;
    if start <= 0.0 || inc <= 0.0 || end < start {
        return Err(bad("START and STEP must be > 0 and END >= START"));
    }
    if every.is_zero() {
        return Err(bad("EVERY must be longer than 0s"));
    }
    let steps = ((end - start) / inc).floor() as u64 + 1;
    if steps > 10_000 {
        return Err(bad("more than 10000 steps"));
    }
    let mut out = Vec::new();
    for i in 0..steps {
        let rate = start + inc * i as f64;
        out.push(Stage {
            duration: Duration::ZERO,
            target: rate,
        });
        out.push(Stage {
            duration: every,
            target: rate,
        });
    }
    if start + inc * ((steps - 1) as f64) < end {
        out.push(Stage {
            duration: Duration::ZERO,
            target: end,
        });
        out.push(Stage {
            duration: every,
            target: end,
        });
    }
    Ok(out)
}
