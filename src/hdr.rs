//! HdrHistogram encodings: the standard V2 format (plain, for compact in-memory per-second
//! snapshots) and V2 compressed with deflate, base64 (for JSON results and `.hlog` files, as
//! every HdrHistogram implementation — Java, Go, Python, C, Rust — can read it).
//!
//! Encoding is lossless: decoding gives back the same bucket counts, so histograms that went
//! through a file can still be added together exactly.
//!
//! Also the one place percentiles are read ([`value_at_percentile`]), so that every report
//! agrees on which sample p99.9 is.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::error::{Error, Result};

/// Highest trackable latency in µs (24 hours, as wrk2).
pub const MAX_LATENCY_US: u64 = 24 * 3600 * 1_000_000;
/// Significant decimal digits kept by every histogram.
pub const SIGFIG: u8 = 3;

/// A new, empty latency histogram with loadgen's standard range (1 µs to 24 h, 3 digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGFIG).expect("static histogram bounds")
}

/// Appends `h` in plain V2 encoding (cookie, header, zig-zag LEB128 counts) to `out`.
pub fn encode_v2(h: &Histogram<u64>, out: &mut Vec<u8>) {
    V2Serializer::new()
        .serialize(h, out)
        .expect("V2 serialization of a u64 histogram into a Vec cannot fail");
}

/// `h` in V2 compressed (deflate) encoding, base64 (standard alphabet, padded): the form
/// HdrHistogram's `encodeIntoCompressedByteBuffer` + base64 produces and its log readers accept.
pub fn encode_base64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("V2 deflate serialization into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decodes a histogram in either V2 encoding (plain or compressed) from bytes.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>> {
    let mut r = bytes;
    Deserializer::new()
        .deserialize(&mut r)
        .map_err(|e| Error::Usage(format!("invalid HdrHistogram encoding: {e:?}")))
}

/// Decodes a base64 V2 (plain or compressed) histogram.
pub fn decode_base64(text: &str) -> Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| Error::Usage(format!("invalid base64 histogram: {e}")))?;
    decode(&bytes)
}

/// The value at percentile `p` (0 to 100) of `h`: the smallest recorded value (to the
/// histogram's precision) that at least `p`% of the samples are at or below; 0 when `h` is
/// empty.
///
/// Not `value_at_quantile(p / 100.0)`: the crate takes the sample count as `ceil(q × n)`, and
/// `p / 100` is inexact in binary (99.9 / 100 = 0.99900000000000011), so with 2000 samples
/// p99.9 became the 1999th sample instead of the 1998th, one sample too far into the tail
/// (6.13 ms instead of 5.54 ms for a constant 5 ms server). The count is computed here with a
/// relative tolerance and handed to the crate as a quantile halfway inside that sample.
pub fn value_at_percentile(h: &Histogram<u64>, p: f64) -> u64 {
    if h.is_empty() {
        return 0;
    }
    let p = p.clamp(0.0, 100.0);
    if p == 0.0 {
        return h.value_at_quantile(0.0);
    }
    let n = h.len();
    let exact = p * n as f64 / 100.0;
    let k = ((exact - exact * 1e-12).ceil() as u64).clamp(1, n);
    h.value_at_quantile((k as f64 - 0.5) / n as f64)
}

/// [`value_at_percentile`] with `q` as a fraction (0 to 1).
pub fn value_at_quantile(h: &Histogram<u64>, q: f64) -> u64 {
    value_at_percentile(h, q * 100.0)
}

#[cfg(test)]
mod tests {
    use super::new_histogram;
    use super::*;

    #[test]
    fn percentiles_count_samples_exactly() {
        let mut h = new_histogram();
        for v in 1..=2000u64 {
            h.record(v).unwrap();
        }
        // The crate alone: 99.9 / 100 × 2000 rounds up past 1998.
        assert_eq!(h.value_at_quantile(99.9 / 100.0), 1999);
        for (p, want) in [
            (0.0, 1),
            (0.01, 1),
            (50.0, 1000),
            (90.0, 1800),
            (99.0, 1980),
            (99.9, 1998),
            (99.95, 1999),
            (99.99, 2000),
            (100.0, 2000),
        ] {
            assert_eq!(value_at_percentile(&h, p), want, "p{p}");
        }
        assert_eq!(value_at_quantile(&h, 0.999), 1998);
        assert_eq!(value_at_percentile(&new_histogram(), 99.0), 0);
        let mut big = new_histogram();
        for v in 1..=100_000u64 {
            big.record(v).unwrap();
        }
        // Large values are bucketed: compare with the bucket's highest equivalent value.
        for (p, k) in [(99.999, 99_999u64), (99.99, 99_990), (33.3, 33_300)] {
            assert_eq!(
                value_at_percentile(&big, p),
                big.highest_equivalent(k),
                "p{p}"
            );
        }
    }

    #[test]
    fn v2_round_trips_keep_every_count() {
        let mut h = new_histogram();
        for v in [
            1u64,
            2,
            3,
            999,
            1000,
            1001,
            123_456,
            5_000_000,
            3_600_000_000,
        ] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        let mut plain = Vec::new();
        encode_v2(&h, &mut plain);
        let a = decode(&plain).unwrap();
        let b = decode_base64(&encode_base64(&h)).unwrap();
        for d in [&a, &b] {
            assert_eq!(d, &h);
            assert_eq!(d.len(), h.len());
            assert_eq!(d.max(), h.max());
            assert_eq!(d.min(), h.min());
            assert_eq!(d.high(), h.high());
            let want: Vec<_> = h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            let got: Vec<_> = d
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            assert_eq!(got, want);
        }
        assert!(decode_base64("not base64!").is_err());
        assert!(decode(b"\0\0\0\0junk").is_err());
    }

    #[test]
    fn compressed_encoding_has_the_standard_cookie() {
        // 0x1c849304 is V2 compressed: base64 of it starts with "HISTF".
        let h = new_histogram();
        assert!(encode_base64(&h).starts_with("HISTF"));
    }
}
