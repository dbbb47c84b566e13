//! HdrHistogram encodings: the standard V2 format (plain, for compact in-memory per-second
//! snapshots) and V2 compressed with deflate, base64 (for JSON results and `.hlog` files, as
//! every HdrHistogram implementation — Java, Go, Python, C, Rust — can read it).
//!
//! Encoding is lossless: decoding gives back the same bucket counts, so histograms that went
//! through a file can still be added together exactly.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_histogram;

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
