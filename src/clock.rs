//! Wall-clock time as the results carry it: integer Unix time (ns or µs) and RFC 3339 text.
//! Every `SystemTime` ⇄ Unix-time conversion in the crate goes through here, so that they all
//! truncate the same way and treat a clock before 1970 the same way (as 0).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as Unix time in ns (0 for a time before the epoch).
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `t` as Unix time in µs, truncated (0 for a time before the epoch).
pub fn unix_us(t: SystemTime) -> u64 {
    unix_ns(t) / 1000
}

/// The wall-clock time at Unix time `us` µs.
pub fn from_unix_us(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// Formats Unix time in µs as RFC 3339 UTC, e.g. `2026-11-23T02:51:20.123456Z`.
pub fn rfc3339(unix_us: u64) -> String {
    humantime::format_rfc3339_micros(from_unix_us(unix_us)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            rfc3339(1_795_402_280_123_456),
            "2026-11-23T02:51:20.123456Z"
        );
    }

    #[test]
    fn unix_times_truncate_and_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_795_402_280, 123_456_789);
        assert_eq!(unix_ns(t), 1_795_402_280_123_456_789);
        assert_eq!(unix_us(t), 1_795_402_280_123_456);
        assert_eq!(unix_us(from_unix_us(unix_us(t))), unix_us(t));
        assert_eq!(unix_us(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
