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

/// Per-response phases shorter than this many µs (most sending and receiving times, and the
/// waiting of fast servers) are counted in plain arrays while a thread records, and added
/// to the histograms when its statistics are settled or merged: an array increment per
/// value instead of an HdrHistogram record (index computation, min/max, total). Exact:
/// with 3 significant digits and a 1 µs unit, HdrHistogram keeps each value below 2048 in
/// a bucket of its own.
const DIRECT: usize = 2048;

/// The phase histograms of one thread (or, after merging, of a run), µs. The per-response
/// histograms are complete once [`settle`](Timing::settle)d (the worker does that when it
/// finishes; `+=` adds what the other side has not settled yet).
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
    /// Counts of sending, waiting and receiving values below [`DIRECT`] µs not yet in the
    /// histograms.
    direct: Box<[[u64; DIRECT]; 3]>,
    /// Whether `direct` holds any count.
    unsettled: bool,
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
            direct: Box::new([[0; DIRECT]; 3]),
            unsettled: false,
        }
    }
}

impl Timing {
    /// Records one complete response's phases, µs (the hot path: see [`DIRECT`]).
    #[inline]
    pub fn record_phases(&mut self, sending_us: u64, waiting_us: u64, receiving_us: u64) {
        self.unsettled = true;
        for (i, v) in [sending_us, waiting_us, receiving_us]
            .into_iter()
            .enumerate()
        {
            match self.direct[i].get_mut(v as usize) {
                Some(n) => *n += 1,
                None => self.per_response_mut(i).saturating_record(v),
            }
        }
    }

    /// The `i`-th per-response histogram: sending, waiting, receiving.
    fn per_response_mut(&mut self, i: usize) -> &mut Histogram<u64> {
        match i {
            0 => &mut self.sending,
            1 => &mut self.waiting,
            _ => &mut self.receiving,
        }
    }

    /// Adds `direct`'s counts into the per-response histograms of `into`.
    fn add_direct(direct: &[[u64; DIRECT]; 3], into: &mut Timing) {
        for (i, counts) in direct.iter().enumerate() {
            let h = into.per_response_mut(i);
            for (v, &n) in counts.iter().enumerate() {
                if n > 0 {
                    h.saturating_record_n(v as u64, n);
                }
            }
        }
    }

    /// Moves the counts kept apart into the histograms, so that they are complete.
    pub fn settle(&mut self) {
        if !self.unsettled {
            return;
        }
        let direct = std::mem::replace(&mut self.direct, Box::new([[0; DIRECT]; 3]));
        Timing::add_direct(&direct, self);
        self.unsettled = false;
    }

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
        if o.unsettled {
            Timing::add_direct(&o.direct, self);
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

    /// Values counted apart (below 2048 µs) and those recorded at once end in the same
    /// histograms as plain records would make, whether settled or merged unsettled.
    #[test]
    fn direct_counts_are_exact() {
        let mut fast = Timing::default();
        let mut plain = Timing::default();
        for k in 0..5000u64 {
            let (s, w, r) = (
                k % 7,
                (k * 37) % 40_000,
                if k % 3 == 0 { 2047 } else { 2048 },
            );
            fast.record_phases(s, w, r);
            plain.sending.record(s).unwrap();
            plain.waiting.record(w).unwrap();
            plain.receiving.record(r).unwrap();
        }
        let mut merged = Timing::default();
        merged += &fast;
        fast.settle();
        fast.settle();
        for p in [Phase::Sending, Phase::Waiting, Phase::Receiving] {
            assert_eq!(fast.get(p), plain.get(p), "{p:?}");
            assert_eq!(merged.get(p), plain.get(p), "{p:?}");
        }
    }
}
