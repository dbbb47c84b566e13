//! The JSON result's `timing` object (the timing breakdown, `crate::timing`): one entry per
//! phase with the same summary fields as `latency.*` and its own histogram (V2 deflate,
//! base64), written from and read back into [`Timing`] losslessly, so that `loadgen report`
//! prints it again and `loadgen merge` adds it exactly.

use serde::{Deserialize, Serialize};

use super::json::LatencySummary;
use crate::error::{Error, Result};
use crate::hdr;
use crate::record::new_histogram;
use crate::timing::{Phase, Timing};

/// `timing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingDoc {
    /// Always `us`.
    pub unit: String,
    /// The name lookup, once per run.
    pub dns: PhaseDoc,
    /// TCP connects, one per connection opened.
    pub connecting: PhaseDoc,
    /// TLS handshakes, one per connection opened over TLS.
    pub tls_handshaking: PhaseDoc,
    /// Request writes, one per complete response.
    pub sending: PhaseDoc,
    /// Last request byte written to first response byte, one per complete response.
    pub waiting: PhaseDoc,
    /// First to last response byte, one per complete response.
    pub receiving: PhaseDoc,
}

/// One phase: its summary and its histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseDoc {
    /// Count, min, mean, stdev, max and percentiles, µs.
    #[serde(flatten)]
    pub summary: LatencySummary,
    /// The histogram, V2 deflate, base64.
    pub histogram: String,
}

impl TimingDoc {
    fn phase(&self, p: Phase) -> &PhaseDoc {
        match p {
            Phase::Dns => &self.dns,
            Phase::Connecting => &self.connecting,
            Phase::TlsHandshaking => &self.tls_handshaking,
            Phase::Sending => &self.sending,
            Phase::Waiting => &self.waiting,
            Phase::Receiving => &self.receiving,
        }
    }
}

/// The `timing` object of `t`.
pub fn to_doc(t: &Timing) -> TimingDoc {
    let one = |p: Phase| PhaseDoc {
        summary: LatencySummary::of(t.get(p)),
        histogram: hdr::encode_base64(t.get(p)),
    };
    TimingDoc {
        unit: "us".into(),
        dns: one(Phase::Dns),
        connecting: one(Phase::Connecting),
        tls_handshaking: one(Phase::TlsHandshaking),
        sending: one(Phase::Sending),
        waiting: one(Phase::Waiting),
        receiving: one(Phase::Receiving),
    }
}

/// The histograms `d` holds, in loadgen's standard range.
pub fn from_doc(d: &TimingDoc) -> Result<Timing> {
    let mut t = Timing::default();
    for p in Phase::ALL {
        let what = format!("timing.{}.histogram", p.key());
        let h = hdr::decode_base64(&d.phase(p).histogram)
            .map_err(|e| Error::Usage(format!("{what}: {e}")))?;
        let mut into = new_histogram();
        into.add(&h)
            .map_err(|e| Error::Usage(format!("{what}: histogram out of range: {e:?}")))?;
        *t.get_mut(p) = into;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let mut t = Timing::default();
        for v in [3, 20_000, 20_100, 19_900] {
            t.waiting.record(v).unwrap();
        }
        t.connecting.record(80).unwrap();
        t.tls_handshaking.record(900).unwrap();
        let text = serde_json::to_string(&to_doc(&t)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["waiting"]["count"], 4);
        assert_eq!(v["waiting"]["p50"], t.waiting.highest_equivalent(19_900));
        assert!(v["waiting"]["histogram"]
            .as_str()
            .unwrap()
            .starts_with("HISTF"));
        let back = from_doc(&serde_json::from_str(&text).unwrap()).unwrap();
        for p in Phase::ALL {
            assert_eq!(back.get(p), t.get(p), "{p:?}");
        }
    }
}
