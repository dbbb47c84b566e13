//! Why reads failed, in a few kinds a person can act on: the fixed set of [`ReadReason`]s and
//! [`ReadReasons`], one counter per reason, which the thread's statistics keep beside the
//! `read` error count so that the report can say *why* reads failed. Counting is an array
//! increment: no allocation, no string, per error.

use std::ops::AddAssign;

/// Why a read failed, in a few kinds a person can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReadReason {
    /// The peer closed the connection before the response was complete.
    Closed,
    /// The peer reset the connection.
    Reset,
    /// The TLS layer failed (a bad record, an alert from the server).
    Tls,
    /// Any other socket error.
    Io,
    /// The first bytes were a TLS record on a plain-HTTP connection: the server speaks TLS.
    TlsOnPlain,
    /// The response did not start with an HTTP/1.x status line.
    StatusLine,
    /// A header field was malformed.
    HeaderField,
    /// The head was longer than [`MAX_HEAD`](crate::conn::error::MAX_HEAD).
    HeadTooLarge,
    /// A `Content-Length` value was not a decimal number.
    BadLength,
    /// Several `Content-Length` values disagreed (RFC 9112 §6.3: the message is invalid).
    ConflictingLength,
    /// The chunked body was malformed.
    Chunked,
    /// A reason this build does not know, read from a newer result file.
    Other,
}

impl ReadReason {
    /// Every reason, in the order of the counters.
    pub const ALL: [ReadReason; 12] = [
        ReadReason::Closed,
        ReadReason::Reset,
        ReadReason::Tls,
        ReadReason::Io,
        ReadReason::TlsOnPlain,
        ReadReason::StatusLine,
        ReadReason::HeaderField,
        ReadReason::HeadTooLarge,
        ReadReason::BadLength,
        ReadReason::ConflictingLength,
        ReadReason::Chunked,
        ReadReason::Other,
    ];

    /// The reason's key in the JSON result (`errors.read_reasons`).
    pub fn key(self) -> &'static str {
        match self {
            ReadReason::Closed => "closed",
            ReadReason::Reset => "reset",
            ReadReason::Tls => "tls",
            ReadReason::Io => "io",
            ReadReason::TlsOnPlain => "tls_on_plain_http",
            ReadReason::StatusLine => "invalid_status_line",
            ReadReason::HeaderField => "invalid_header_field",
            ReadReason::HeadTooLarge => "head_too_large",
            ReadReason::BadLength => "invalid_content_length",
            ReadReason::ConflictingLength => "conflicting_content_length",
            ReadReason::Chunked => "invalid_chunked_body",
            ReadReason::Other => "other",
        }
    }

    /// The reason for people (no commas: the report lists reasons after `read N`).
    pub fn describe(self) -> &'static str {
        match self {
            ReadReason::Closed => "connection closed before the response was complete",
            ReadReason::Reset => "connection reset by the server",
            ReadReason::Tls => "TLS error",
            ReadReason::Io => "socket read failed",
            ReadReason::TlsOnPlain => {
                "TLS record on a plain-HTTP connection: the server speaks TLS; use https://"
            }
            ReadReason::StatusLine => "invalid response: no HTTP status line",
            ReadReason::HeaderField => "invalid response: malformed header field",
            ReadReason::HeadTooLarge => "header section over 1 MiB (1048576 bytes)",
            ReadReason::BadLength => "invalid response: bad Content-Length",
            ReadReason::ConflictingLength => "invalid response: conflicting Content-Length",
            ReadReason::Chunked => "invalid response: malformed chunked body",
            ReadReason::Other => "other read error",
        }
    }

    /// The reason whose [`key`](Self::key) is `key`; [`ReadReason::Other`] for one this build
    /// does not know.
    pub fn from_key(key: &str) -> ReadReason {
        ReadReason::ALL
            .into_iter()
            .find(|r| r.key() == key)
            .unwrap_or(ReadReason::Other)
    }
}

/// Read errors counted by reason: one counter per [`ReadReason`], merged with `+=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReasons([u64; ReadReason::ALL.len()]);

impl ReadReasons {
    /// Counts one error of reason `r`.
    #[inline]
    pub fn count(&mut self, r: ReadReason) {
        self.0[r as usize] += 1;
    }

    /// Adds `n` errors of reason `r`.
    pub fn add(&mut self, r: ReadReason, n: u64) {
        self.0[r as usize] = self.0[r as usize].saturating_add(n);
    }

    /// The count for `r`.
    pub fn get(&self, r: ReadReason) -> u64 {
        self.0[r as usize]
    }

    /// The reasons that occurred with their counts, most frequent first (ties in the order
    /// of [`ReadReason::ALL`]).
    pub fn by_count(&self) -> Vec<(ReadReason, u64)> {
        let mut v: Vec<_> = ReadReason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
            .collect();
        v.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        v
    }
}

impl AddAssign<&ReadReasons> for ReadReasons {
    fn add_assign(&mut self, o: &ReadReasons) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_order_by_count() {
        for (i, r) in ReadReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i);
            assert_eq!(ReadReason::from_key(r.key()), r);
            assert!(!r.describe().contains(','), "{r:?}");
        }
        assert_eq!(ReadReason::from_key("from_the_future"), ReadReason::Other);
        let mut a = ReadReasons::default();
        a.count(ReadReason::Closed);
        let mut b = ReadReasons::default();
        b.add(ReadReason::StatusLine, 3);
        a += &b;
        assert_eq!(
            a.by_count(),
            vec![(ReadReason::StatusLine, 3), (ReadReason::Closed, 1)]
        );
    }
}
