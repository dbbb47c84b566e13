//! Units: parsing of wrk-style numbers ("10k", "1M") and durations ("2s", "1m", "1h", bare
//! seconds), and formatting of times, byte counts and metric counts exactly as wrk prints them.
//!
//! The formatting rules follow wrk's `units.c`: a value moves to the next unit once it reaches
//! 0.85 of that unit's scale, and is printed with two decimals.

use std::time::Duration;

/// A value that could not be parsed; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses a count with an optional SI suffix: `100`, `10k`, `1.5M`, `2G` (scale 1000).
pub fn parse_count(s: &str) -> Result<f64, ParseError> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k') | Some('K') => (&t[..t.len() - 1], 1e3),
        Some('m') | Some('M') => (&t[..t.len() - 1], 1e6),
        Some('g') | Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| ParseError(format!("invalid number: {s:?}")))?;
    if !v.is_finite() {
        return Err(ParseError(format!("invalid number: {s:?}")));
    }
    Ok(v * mult)
}

/// Parses a duration: `500ms`, `2s`, `2m`, `1h`, `1d`, or a bare number of seconds (wrk: "10").
pub fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let t = s.trim();
    let err = || ParseError(format!("invalid duration: {s:?} (use e.g. 30s, 2m, 1h)"));
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86400.0,
        _ => return Err(err()),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn scale_units(mut amt: f64, scale: f64, base: &'static str, units: &[&'static str]) -> String {
    let mut unit = base;
    for u in units {
        if amt < scale * 0.85 {
            break;
        }
        amt /= scale;
        unit = u;
    }
    format!("{amt:.2}{unit}")
}

/// Formats microseconds as wrk does: `832.76us`, `2.17ms`, `1.02s`.
pub fn format_time_us(us: f64) -> String {
    scale_units(us, 1000.0, "us", &["ms", "s"])
}

/// Formats a byte count in binary units as wrk does: `12.72MB` is written `12.72M` here and the
/// caller appends `B`.
pub fn format_binary(bytes: f64) -> String {
    scale_units(bytes, 1024.0, "", &["K", "M", "G", "T"])
}

/// Formats a count in metric units as wrk does: `3.99k`, `1.20M`, `123.00`.
pub fn format_metric(n: f64) -> String {
    scale_units(n, 1000.0, "", &["k", "M", "G"])
}

/// Formats a duration for the "Running 10s test" header: `10s`, `2m`, `1.5s`, `1h`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    let fmt = |v: f64, u: &str| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{}{u}", v.round() as u64)
        } else {
            format!("{v:.2}{u}")
        }
    };
    if s >= 3600.0 && (s % 3600.0) == 0.0 {
        fmt(s / 3600.0, "h")
    } else if s >= 60.0 && (s % 60.0) == 0.0 {
        fmt(s / 60.0, "m")
    } else if s < 1.0 && s > 0.0 {
        fmt(s * 1000.0, "ms")
    } else {
        fmt(s, "s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("100").unwrap(), 100.0);
        assert_eq!(parse_count("10k").unwrap(), 10_000.0);
        assert_eq!(parse_count("1.5M").unwrap(), 1_500_000.0);
        assert_eq!(parse_count("2G").unwrap(), 2e9);
        assert!(parse_count("abc").is_err());
        assert!(parse_count("").is_err());
        assert!(parse_count("1x").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn time_units_like_wrk() {
        assert_eq!(format_time_us(832.76), "832.76us");
        assert_eq!(format_time_us(849.0), "849.00us");
        assert_eq!(format_time_us(850.0), "0.85ms");
        assert_eq!(format_time_us(2170.0), "2.17ms");
        assert_eq!(format_time_us(1_020_000.0), "1.02s");
        assert_eq!(format_time_us(5_000_000_000.0), "5000.00s");
    }

    #[test]
    fn byte_and_metric_units() {
        assert_eq!(format_binary(512.0), "512.00");
        assert_eq!(format_binary(13_336_000.0), "12.72M");
        assert_eq!(format_binary(3_334_000.0), "3.18M");
        assert_eq!(format_metric(123.0), "123.00");
        assert_eq!(format_metric(3990.0), "3.99k");
        assert_eq!(format_metric(1_200_000.0), "1.20M");
    }

    #[test]
    fn duration_header() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.50s");
    }
}
