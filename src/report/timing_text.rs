//! The text report's timing breakdown (`--timing`), in k6's layout: one line per phase with
//! its mean, minimum, median, maximum, p90, p99 and count, read from the phase histograms
//! (`crate::timing`). Phases with nothing recorded (the TLS handshake of a plain-TCP run) are
//! left out.

use std::io::{self, Write};

use crate::hdr::value_at_quantile;
use crate::timing::{Phase, Timing};
use crate::units::format_time_us;

/// Writes the breakdown block.
pub fn write(w: &mut impl Write, t: &Timing) -> io::Result<()> {
    writeln!(
        w,
        "  Timing breakdown (per connection opened, then per response: sending + waiting + receiving = uncorrected latency)"
    )?;
    for p in Phase::ALL {
        let h = t.get(p);
        if h.is_empty() {
            continue;
        }
        let q = |x: f64| format_time_us(value_at_quantile(h, x) as f64);
        let dots = ".".repeat(18 - p.key().len());
        writeln!(
            w,
            "    {}{dots}: avg={:<9} min={:<9} med={:<9} max={:<9} p(90)={:<9} p(99)={:<9} count={}",
            p.key(),
            format_time_us(h.mean()),
            format_time_us(h.min() as f64),
            q(0.5),
            format_time_us(h.max() as f64),
            q(0.9),
            q(0.99),
            h.len()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_recorded_phase() {
        let mut t = Timing::default();
        t.connecting.record(90).unwrap();
        t.waiting.record(20_000).unwrap();
        let mut out = Vec::new();
        write(&mut out, &t).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].starts_with("    connecting........: avg=90.00us"),
            "{text}"
        );
        assert!(lines[2].contains("med=20.0"), "{text}");
        assert!(lines[2].ends_with("count=1"), "{text}");
        assert!(!text.contains("tls_handshaking"), "{text}");
    }
}
