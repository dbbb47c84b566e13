//! The timing breakdown (k6's `http_req_connecting`, `tls_handshaking`, `sending`, `waiting`,
//! `receiving`): where each request's and each connection's time went, one HdrHistogram per
//! phase in µs, lossless and merged exactly like the latency histograms.
//!
//! Per connection: the name lookup (once per run, before any connection), the TCP connect
//! and the TLS handshake, for every connection the load opened (those opened before the run
//! included; the engine's probe connection is a check, not load, and is not recorded). Per
//! complete response: *sending* (the request's first byte handed to the socket to its last),
//! *waiting* (last byte written to the response's first byte: time to first byte) and
//! *receiving* (first to last byte of the response), so that the three add up to the
//! uncorrected latency of that request. Response bytes are timed by their arrival (the
//! kernel's receive timestamps, `conn::rxtime`), as the latency is.
//!
//! [`Phase`] names a histogram, as the JSON, the text report and `--slo` spell it.

use std::ops::AddAssign;

use hdrhistogram::Histogram;

use crate::hdr::new_histogram;

/// One phase of the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Resolving the host name (once per run).
    Dns,
    /// TCP connect: from the connect call to the socket being connected.
    Connecting,
    /// The TLS handshake, after the TCP connect (TLS runs only).
    TlsHandshaking,
    /// First byte of the request handed to the socket to the last.
    Sending,
    /// Last request byte written to the first response byte (time to first byte).
    Waiting,
    /// First to last byte of the response.
    Receiving,
}

impl Phase {
    /// Every phase, in the order a request goes through them.
    pub const ALL: [Phase; 6] = [
        Phase::Dns,
        Phase::Connecting,
        Phase::TlsHandshaking,
        Phase::Sending,
        Phase::Waiting,
        Phase::Receiving,
    ];

    /// The name in JSON (`timing.<name>`) and in `--slo` (`<name>.p99`).
    pub fn key(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connecting => "connecting",
            Phase::TlsHandshaking => "tls_handshaking",
            Phase::Sending => "sending",
            Phase::Waiting => "waiting",
            Phase::Receiving => "receiving",
        }
    }

    /// The phase named `key`.
    pub fn from_key(key: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.key() == key)
    }

    /// Whether the phase is timed per connection (else per response).
    pub fn per_connection(self) -> bool {
        matches!(self, Phase::Dns | Phase::Connecting | Phase::TlsHandshaking)
    }
}

/// The phase histograms of one thread (or, after merging, of a run), µs.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Name lookups: one per run (a merge has one per input).
    pub dns: Histogram<u64>,
    /// TCP connects, one per connection opened.
    pub connecting: Histogram<u64>,
    /// TLS handshakes, one per connection opened over TLS.
    pub tls_handshaking: Histogram<u64>,
    /// Request writes, one per complete response.
    pub sending: Histogram<u64>,
    /// Times to first byte, one per complete response.
    pub waiting: Histogram<u64>,
    /// Response reads, one per complete response.
    pub receiving: Histogram<u64>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            dns: new_histogram(),
            connecting: new_histogram(),
            tls_handshaking: new_histogram(),
            sending: new_histogram(),
            waiting: new_histogram(),
            receiving: new_histogram(),
        }
    }
}

impl Timing {
    /// The histogram of `phase`.
    pub fn get(&self, phase: Phase) -> &Histogram<u64> {
        match phase {
            Phase::Dns => &self.dns,
            Phase::Connecting => &self.connecting,
            Phase::TlsHandshaking => &self.tls_handshaking,
            Phase::Sending => &self.sending,
            Phase::Waiting => &self.waiting,
            Phase::Receiving => &self.receiving,
        }
    }

    /// The histogram of `phase`, to fill (reading a result back).
    pub fn get_mut(&mut self, phase: Phase) -> &mut Histogram<u64> {
        match phase {
            Phase::Dns => &mut self.dns,
            Phase::Connecting => &mut self.connecting,
            Phase::TlsHandshaking => &mut self.tls_handshaking,
            Phase::Sending => &mut self.sending,
            Phase::Waiting => &mut self.waiting,
            Phase::Receiving => &mut self.receiving,
        }
    }
}

impl AddAssign<&Timing> for Timing {
    fn add_assign(&mut self, o: &Timing) {
        for p in Phase::ALL {
            // All share one range, so `add` cannot fail.
            self.get_mut(p).add(o.get(p)).expect("same histogram range");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_merge_adds() {
        for p in Phase::ALL {
            assert_eq!(Phase::from_key(p.key()), Some(p));
        }
        assert_eq!(Phase::from_key("blocked"), None);
        let mut a = Timing::default();
        a.waiting.record(20_000).unwrap();
        let mut b = Timing::default();
        b.waiting.record(10).unwrap();
        b.connecting.record(50).unwrap();
        a += &b;
        assert_eq!(a.waiting.len(), 2);
        assert_eq!(a.connecting.len(), 1);
        assert_eq!(a.get(Phase::Waiting).min(), 10);
    }
}
