//! Reading a JSON result back (`loadgen report`, `loadgen merge`): the document checked
//! (schema, version, limits that keep hostile numbers from overflowing later), its
//! histograms decoded into loadgen's standard range, and the [`RunResult`] it describes, with
//! its thresholds parsed again and re-evaluated.

use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::json::{Document, ENCODING, REQ_PER_SEC_MAX, SCHEMA, VERSION};
use crate::clock;
use crate::config::{Config, Pacing, Target};
use crate::error::{Error, Result};
use crate::hdr;
use crate::read_errors::{ReadReason, ReadReasons};
use crate::record::{new_histogram, Errors, Stats, SIGFIG, STATUS_CODES};
use crate::result::{RunResult, Summary};
use crate::schedule::{Arrivals, RateProfile, Stage, Stages};
use crate::slo::Slo;
use crate::timeline::{Interval, Timeline};

/// Decodes a base64 histogram into one with loadgen's standard range (`into`), refusing values
/// that do not fit.
fn histogram_into(what: &str, text: &str, mut into: Histogram<u64>) -> Result<Histogram<u64>> {
    let h = hdr::decode_base64(text).map_err(|e| Error::Usage(format!("{what}: {e}")))?;
    into.add(&h)
        .map_err(|e| Error::Usage(format!("{what}: histogram out of range: {e:?}")))?;
    Ok(into)
}

/// The result a document describes. The thresholds are parsed again from their expressions and
/// re-evaluated (the data being identical, so are the verdicts).
pub fn from_document(d: Document) -> Result<RunResult> {
    let bad = |why: String| Error::Usage(format!("not a loadgen result: {why}"));
    if d.schema != SCHEMA {
        return Err(bad(format!(
            "schema is {:?}, expected {SCHEMA:?}",
            d.schema
        )));
    }
    if d.version == 0 || d.version > VERSION {
        return Err(bad(format!(
            "schema version {} (this loadgen reads up to {VERSION})",
            d.version
        )));
    }
    super::json_limits::check(&d).map_err(bad)?;
    let c = &d.config;
    let mut config = Config::new(Target::parse(&c.url)?);
    config.threads = c.threads;
    config.connections = c.connections;
    let secs = |v: f64, what: &str| {
        Duration::try_from_secs_f64(v).map_err(|_| bad(format!("invalid {what} {v}")))
    };
    // A profile's stages read back; `what` names the field in messages.
    let stages_of = |docs: &[super::json::StageDoc], what: &str| {
        docs.iter()
            .map(|st| {
                Ok(Stage {
                    duration: secs(st.duration_s, &format!("{what}.stages[].duration_s"))?,
                    target: st.target,
                })
            })
            .collect::<Result<Vec<_>>>()
    };
    config.rate = match &c.profile {
        Some(p) => {
            let stages = stages_of(&p.stages, "config.profile")?;
            let profile = Stages::new(p.start_rate, stages)
                .map_err(|e| bad(format!("config.profile: {e}")))?;
            Some(RateProfile::Stages(profile))
        }
        None => c.rate.map(RateProfile::Constant),
    };
    if let Some(p) = &c.conn_profile {
        let stages = stages_of(&p.stages, "config.conn_profile")?;
        let profile = crate::conn_profile::ConnProfile::new(stages)
            .map_err(|e| bad(format!("config.conn_profile: {e}")))?;
        config.conn_profile = Some(profile);
    }
    if let (Some(_), Some("poisson")) = (&config.rate, c.arrivals.as_deref()) {
        config.arrivals = Arrivals::Poisson {
            seed: c.seed.unwrap_or(0),
        };
    }
    config.duration = secs(c.duration_s, "config.duration_s")?;
    config.timeout = secs(c.timeout_s, "config.timeout_s")?;
    config.method = c.method.clone();
    config.script = c.script.as_ref().map(Into::into);
    config.latency = c.latency;
    config.u_latency = c.u_latency;
    config.timing = c.timing;
    config.pacing = match c.pacing.as_deref() {
        Some("coarse") => Pacing::Coarse,
        Some("adaptive") => Pacing::Adaptive,
        _ => Pacing::Precise,
    };
    if let Some(t) = c.tick_s {
        config.tick = secs(t, "config.tick_s")?;
    }
    config.http = match c.protocol.as_str() {
        "h2" | "h2c" => crate::config::HttpVersion::Http2,
        _ => crate::config::HttpVersion::Http1,
    };
    config.streams = c.streams;

    let mut stats = Stats::new();
    let hs = &d.histograms;
    if hs.encoding != ENCODING {
        return Err(bad(format!("unknown histogram encoding {:?}", hs.encoding)));
    }
    stats.corrected = histogram_into("histograms.corrected", &hs.corrected, new_histogram())?;
    stats.uncorrected = histogram_into("histograms.uncorrected", &hs.uncorrected, new_histogram())?;
    stats.send_lag = histogram_into("histograms.send_lag", &hs.send_lag, new_histogram())?;
    let rps = Histogram::new_with_bounds(1, REQ_PER_SEC_MAX, SIGFIG).expect("static bounds");
    stats.req_per_sec = histogram_into("histograms.req_per_sec", &hs.req_per_sec, rps)?;
    if let Some(t) = &d.timing {
        stats.timing = super::json_timing::from_doc(t)?;
    }
    stats.requests = d.requests;
    // The sending window's end, relative to the start, as written (older documents: the
    // planned duration or the elapsed time, whichever is shorter).
    stats.last_sent_ns = d
        .rate
        .window_s
        .and_then(|w| Duration::try_from_secs_f64(w).ok())
        .map_or(0, |w| w.as_nanos() as u64);
    stats.bytes = d.bytes;
    stats.cpu_ns = d.generator_load.worker_cpu_ns;
    stats.script_limited = d.generator_load.script_limited;
    stats.stopped_unfinished = d.stopped_unfinished;
    stats.dropped = d.dropped;
    stats.reconnects = d.reconnects;
    stats.errors = Errors {
        connect: d.errors.connect,
        connect_timeout: d.errors.connect_timeout,
        read: d.errors.read,
        write: d.errors.write,
        timeout: d.errors.timeout,
        status: d.errors.status,
        read_reasons: ReadReasons::default(),
        h2: crate::record::H2Errors {
            rst_stream: d.errors.h2.rst_stream,
            refused_stream: d.errors.h2.refused_stream,
            goaway: d.errors.h2.goaway,
            connection: d.errors.h2.connection,
            flow_control: d.errors.h2.flow_control_stalls,
        },
    };
    stats.h2_streams_clamp = c.streams_clamp;
    for (key, n) in &d.errors.read_reasons {
        stats.errors.read_reasons.add(ReadReason::from_key(key), *n);
    }
    for (code, n) in &d.status {
        let i: usize = code
            .parse()
            .map_err(|_| bad(format!("status code {code:?}")))?;
        stats.status[if i < STATUS_CODES { i } else { 0 }] += n;
    }
    let mut intervals = Vec::new();
    for s in &d.series {
        if s.requests == 0 && s.errors == 0 {
            continue;
        }
        let mut latency = Vec::new();
        if let Some(h) = &s.histogram {
            let h = histogram_into(&format!("series[t={}]", s.t), h, new_histogram())?;
            hdr::encode_v2(&h, &mut latency);
        }
        intervals.push(Interval {
            second: s.t,
            requests: s.requests,
            errors: s.errors,
            latency,
        });
    }
    stats.timeline = Timeline::from_intervals(intervals);

    let summary = Summary {
        config,
        addr: d
            .addr
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
        started: clock::from_unix_us(d.start_unix_us),
        elapsed: Duration::from_nanos(d.elapsed_ns),
        interrupted: d.interrupted,
        script_error: d.script_error,
        stats,
    };
    let slos = d
        .thresholds
        .checks
        .iter()
        .map(|c| Slo::parse(&c.expr))
        .collect::<Result<Vec<_>>>()?;
    let mut r = RunResult::new(summary, slos, d.sources);
    r.watch = d.watch;
    Ok(r)
}

/// Parses a JSON result; `name` is used in messages.
pub fn from_json(text: &str, name: &str) -> Result<RunResult> {
    let d: Document = serde_json::from_str(text)
        .map_err(|e| Error::Usage(format!("{name}: not a loadgen JSON result: {e}")))?;
    from_document(d).map_err(|e| Error::Usage(format!("{name}: {e}")))
}
