//! The JSON result document (schema `loadgen.result`, version 1; reference: docs/json-schema.md).
//!
//! [`Document`] is the serialized form, field for field. [`RunResult`] is what the commands work
//! with: a [`Summary`] plus the thresholds and, for merged results, the inputs. The two convert
//! both ways, losslessly for everything the reports use: histograms travel in HdrHistogram's
//! compressed V2 encoding (base64), counters as integers and durations in nanoseconds, so that
//! `loadgen report result.json` prints the same text as the run that wrote it, and
//! `loadgen merge` adds histograms exactly.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::json_series::series;
pub use super::json_series::{planned_in_second, series_seconds, SecondDoc};
use super::json_timing::TimingDoc;
use crate::clock::{rfc3339, unix_us};
use crate::config::Pacing;
use crate::hdr;
use crate::result::{RunResult, Source};
use crate::schedule::{Arrivals, RateProfile};

/// The value of the document's `schema` field.
pub const SCHEMA: &str = "loadgen.result";
/// The schema version this build writes (and the newest it reads).
pub const VERSION: u32 = 1;
/// The value of `histograms.encoding`.
pub const ENCODING: &str = "hdrhistogram-v2-deflate-base64";
/// Highest value of the `req_per_sec` histogram.
pub(super) const REQ_PER_SEC_MAX: u64 = 1_000_000_000;

/// The whole JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Always `loadgen.result`.
    pub schema: String,
    /// Schema version, currently 1.
    pub version: u32,
    /// The program that wrote the document.
    pub generator: Generator,
    /// The run's configuration.
    pub config: ConfigDoc,
    /// The socket address the run connected to.
    pub addr: String,
    /// Start of the run, RFC 3339 UTC with µs.
    pub start: String,
    /// Start of the run, Unix time in µs.
    pub start_unix_us: u64,
    /// Elapsed time, seconds (for people; `elapsed_ns` is exact).
    pub elapsed_s: f64,
    /// Elapsed time, ns.
    pub elapsed_ns: u64,
    /// The run was stopped by Ctrl-C.
    pub interrupted: bool,
    /// The run-time script error that stopped the run early (`null`: none). Absent from
    /// documents written before it was added.
    #[serde(default)]
    pub script_error: Option<String>,
    /// What the generator itself spent, for the report's "who was the limit" note. Absent
    /// from documents written before it was added: read as zero.
    #[serde(default)]
    pub generator_load: GeneratorLoad,
    /// Planned requests in flight or due but unsent when the run was stopped early
    /// (interrupted or a script error); their waits until then are in the corrected
    /// latencies as lower bounds. Absent from documents written before it was added.
    #[serde(default)]
    pub stopped_unfinished: u64,
    /// Planned requests never sent: every connection was still busy (waiting on the server,
    /// or opening) when the drain period ended. Their waits until then are in the corrected
    /// latencies as lower bounds; they are not errors. Absent from older documents.
    #[serde(default)]
    pub dropped: u64,
    /// Requests sent again on a new connection because the server had closed the reused
    /// keep-alive connection before any byte of the response, plus idle connections found
    /// closed before a request was written. Not errors. Absent from older documents.
    #[serde(default)]
    pub reconnects: u64,
    /// Completed responses (any status).
    pub requests: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Target and achieved rates.
    pub rate: RateDoc,
    /// Errors by kind.
    pub errors: ErrorsDoc,
    /// Responses per status code (codes that occurred only; key `"0"`: codes above 999).
    pub status: BTreeMap<String, u64>,
    /// Latency summaries.
    pub latency: LatencyDoc,
    /// The timing breakdown: connect and handshake per connection; sending, waiting and
    /// receiving per response. Absent from documents written before it was added (`null`:
    /// read as empty).
    #[serde(default)]
    pub timing: Option<TimingDoc>,
    /// One entry per wall-clock second of the run.
    pub series: Vec<SecondDoc>,
    /// Full histograms.
    pub histograms: HistogramsDoc,
    /// Thresholds and their verdicts.
    pub thresholds: ThresholdsDoc,
    /// Inputs of a merged result (empty for a single run).
    pub sources: Vec<Source>,
    /// The `--watch-pid` processes (empty when none were watched; absent in older files).
    #[serde(default)]
    pub watch: Vec<crate::watch::Watched>,
}

/// `generator_load`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorLoad {
    /// CPU time of all worker threads from the run's start to its end, ns (summed over the
    /// inputs of a merge).
    pub worker_cpu_ns: u64,
    /// The script's `delay()` or `thread:stop()` held the rate down (in any input of a merge).
    pub script_limited: bool,
}

/// `generator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    /// `loadgen`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDoc {
    /// Target URL as given.
    pub url: String,
    /// Worker threads (`-t`).
    pub threads: usize,
    /// Connections (`-c`).
    pub connections: usize,
    /// Target rate in req/s (`-R`); `null` for closed loop.
    pub rate: Option<f64>,
    /// Planned duration (`-d`), seconds.
    pub duration_s: f64,
    /// Request timeout, seconds.
    pub timeout_s: f64,
    /// HTTP method.
    pub method: String,
    /// Lua script path, if any.
    pub script: Option<String>,
    /// `-L` was given: the text report shows the distribution.
    pub latency: bool,
    /// `-U` was given: the text report shows the uncorrected distribution too.
    pub u_latency: bool,
    /// `--timing` was given: the text report shows the timing breakdown. Added within
    /// version 1.
    #[serde(default)]
    pub timing: bool,
    /// The pacing that ran: `precise`, `coarse`, or `adaptive` (`--pacing auto` under a
    /// profile crossing the switch: precise at low rates, coarse at high ones); `null` for
    /// closed loop. Added within version 1: absent in older files.
    #[serde(default)]
    pub pacing: Option<String>,
    /// `--tick` in seconds, with coarse pacing (adaptive: the shortest, at the peak); else
    /// `null`. Added within version 1.
    #[serde(default)]
    pub tick_s: Option<f64>,
    /// With coarse pacing, the most requests one tick released together on the busiest thread
    /// at the peak rate; else `null`. Derived from the rest (not read back). Added within
    /// version 1.
    #[serde(default)]
    pub burst: Option<u64>,
    /// The rate profile (`--stages`, `--step`); `null` for a constant rate or closed loop.
    /// `rate` is then the profile's mean. Added within version 1.
    #[serde(default)]
    pub profile: Option<ProfileDoc>,
    /// Closed loop: the connection profile (`--conn-stages`); else `null`. `connections` is
    /// then its peak. Added within version 1.
    #[serde(default)]
    pub conn_profile: Option<ConnProfileDoc>,
    /// `uniform` or `poisson`; `null` for closed loop. Added within version 1 (absent:
    /// uniform).
    #[serde(default)]
    pub arrivals: Option<String>,
    /// The seed of Poisson arrivals; else `null`. Added within version 1.
    #[serde(default)]
    pub seed: Option<u64>,
    /// What ran: `http/1.1`, `h2` (HTTP/2 over TLS) or `h2c` (HTTP/2 over plain TCP). Added
    /// within version 1 (absent: `http/1.1`).
    #[serde(default = "http1")]
    pub protocol: String,
    /// HTTP/2 streams per connection (`--streams`); 1 with HTTP/1.1. Added within version 1.
    #[serde(default = "one")]
    pub streams: usize,
    /// HTTP/2: the lowest SETTINGS_MAX_CONCURRENT_STREAMS a server announced, when it was
    /// below `streams` (the streams were clamped to it); else `null`. Added within version 1.
    #[serde(default)]
    pub streams_clamp: Option<u64>,
}

fn http1() -> String {
    "http/1.1".into()
}

fn one() -> usize {
    1
}

/// `config.profile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileDoc {
    /// The rate at the start, req/s.
    pub start_rate: f64,
    /// The stages, in order.
    pub stages: Vec<StageDoc>,
    /// The highest rate, req/s.
    pub peak: f64,
    /// Requests planned over the whole profile.
    pub planned: f64,
}

/// `config.conn_profile`: the connections in use move linearly from 0 through the stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnProfileDoc {
    /// The stages, in order; a stage's `target` is a connection count.
    pub stages: Vec<StageDoc>,
    /// The most connections in use at once.
    pub peak: usize,
}

/// One stage of `config.profile` or `config.conn_profile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDoc {
    /// Its length, seconds (0: a jump).
    pub duration_s: f64,
    /// The rate at its end, req/s (`conn_profile`: connections).
    pub target: f64,
}

/// A profile's stages as written (`config.profile`, `config.conn_profile`).
fn stage_docs(stages: &[crate::schedule::Stage]) -> Vec<StageDoc> {
    stages
        .iter()
        .map(|st| StageDoc {
            duration_s: st.duration.as_secs_f64(),
            target: st.target,
        })
        .collect()
}

/// `rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateDoc {
    /// Target rate, req/s; `null` for closed loop.
    pub target: Option<f64>,
    /// Completed responses per second of the sending window (`window_s`).
    pub achieved: f64,
    /// The span `achieved` is measured over, seconds: the planned duration, or the elapsed
    /// time when the run stopped before it. The drain period after the deadline does not
    /// dilute the rate (its responses count). Absent from older documents.
    #[serde(default)]
    pub window_s: Option<f64>,
}

/// `errors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorsDoc {
    /// Sum of the kinds below.
    pub total: u64,
    /// Connections that could not be opened.
    pub connect: u64,
    /// Of `connect`: attempts that did not open within the timeout or by the end of the run.
    /// Absent from older documents.
    #[serde(default)]
    pub connect_timeout: u64,
    /// Failed reads or connections closed mid-response.
    pub read: u64,
    /// Failed writes.
    pub write: u64,
    /// Responses not complete within the timeout.
    pub timeout: u64,
    /// Responses with a status outside 2xx/3xx.
    pub status: u64,
    /// `read` by reason (keys: [`ReadReason::key`]; only reasons that occurred). Added within
    /// version 1: absent (empty) in older files; a key this build does not know counts as
    /// `other`.
    #[serde(default)]
    pub read_reasons: BTreeMap<String, u64>,
    /// HTTP/2 errors by kind (all 0 with HTTP/1.1). Added within version 1.
    #[serde(default)]
    pub h2: H2ErrorsDoc,
}

/// `errors.h2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct H2ErrorsDoc {
    /// Streams the server reset (RST_STREAM); each such request is also a `read` error.
    pub rst_stream: u64,
    /// Of `rst_stream`: REFUSED_STREAM.
    pub refused_stream: u64,
    /// Connections the server ended with GOAWAY (their unprocessed requests sent again).
    pub goaway: u64,
    /// Connections that failed otherwise.
    pub connection: u64,
    /// Requests whose body waited for the server's flow-control window. Added within version
    /// 1: 0 in older files.
    #[serde(default)]
    pub flow_control_stalls: u64,
}

/// `latency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyDoc {
    /// Always `us`.
    pub unit: String,
    /// Response complete − intended send.
    pub corrected: LatencySummary,
    /// Response complete − actual send.
    pub uncorrected: LatencySummary,
    /// Actual send − intended send (the generator's own lag).
    pub send_lag: LatencySummary,
}

/// Summary statistics of one latency histogram, µs. All zero when `count` is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Recorded values.
    pub count: u64,
    /// Smallest value (lowest equivalent of its bucket).
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Largest value (highest equivalent of its bucket).
    pub max: u64,
    /// 50th percentile.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    /// 99.999th percentile.
    #[serde(rename = "p99.999")]
    pub p99_999: u64,
}

impl LatencySummary {
    /// The summary of `h`.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary {
                count: 0,
                min: 0,
                mean: 0.0,
                stdev: 0.0,
                max: 0,
                p50: 0,
                p75: 0,
                p90: 0,
                p99: 0,
                p99_9: 0,
                p99_99: 0,
                p99_999: 0,
            };
        }
        let q = |p: f64| crate::hdr::value_at_quantile(h, p);
        LatencySummary {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            max: h.max(),
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            p99_999: q(0.99999),
        }
    }
}

/// `histograms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramsDoc {
    /// Always `hdrhistogram-v2-deflate-base64`.
    pub encoding: String,
    /// Unit of the latency histograms: `us`.
    pub unit: String,
    /// Corrected latency.
    pub corrected: String,
    /// Uncorrected latency.
    pub uncorrected: String,
    /// Send lag.
    pub send_lag: String,
    /// Requests per second per thread (one sample per thread per full second).
    pub req_per_sec: String,
}

/// `thresholds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdsDoc {
    /// Every check passed (true when there are none).
    pub passed: bool,
    /// One entry per threshold, in declaration order.
    pub checks: Vec<CheckDoc>,
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDoc {
    /// The expression as declared.
    pub expr: String,
    /// The metric part of it.
    pub metric: String,
    /// The comparison.
    pub op: String,
    /// The limit, in `unit`.
    pub limit: f64,
    /// `us`, `percent`, `count` or `req/s`.
    pub unit: String,
    /// The measured value in `unit`; `null` when there was nothing to measure.
    pub actual: Option<f64>,
    /// Whether it held.
    pub pass: bool,
    /// The measured value for people.
    pub detail: String,
}

/// The document for a result.
pub fn to_document(r: &RunResult) -> Document {
    let s = &r.summary;
    let c = &s.config;
    let st = &s.stats;
    let start_unix_us = unix_us(s.started);
    let status = st
        .status
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| (code.to_string(), *n))
        .collect();
    Document {
        schema: SCHEMA.into(),
        version: VERSION,
        generator: Generator {
            name: "loadgen".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        config: ConfigDoc {
            url: c.target.url.clone(),
            threads: c.threads,
            connections: c.connections,
            rate: c.target_rate(),
            duration_s: c.duration.as_secs_f64(),
            timeout_s: c.timeout.as_secs_f64(),
            method: c.method.clone(),
            script: c.script.as_ref().map(|p| p.display().to_string()),
            latency: c.latency,
            u_latency: c.u_latency,
            timing: c.timing,
            pacing: c.rate.as_ref().map(|_| match c.pacing {
                Pacing::Precise => "precise".into(),
                Pacing::Coarse => "coarse".into(),
                Pacing::Adaptive => "adaptive".into(),
            }),
            tick_s: (c.rate.is_some() && c.pacing.ticks()).then_some(c.tick.as_secs_f64()),
            burst: c.coarse_burst(),
            profile: match &c.rate {
                Some(RateProfile::Stages(p)) => Some(ProfileDoc {
                    start_rate: p.start(),
                    stages: stage_docs(p.stages()),
                    peak: p.peak(),
                    planned: p.total(),
                }),
                _ => None,
            },
            conn_profile: c.conn_profile.as_ref().map(|p| ConnProfileDoc {
                stages: stage_docs(p.stages()),
                peak: p.peak(),
            }),
            arrivals: c.rate.as_ref().map(|_| match c.arrivals {
                Arrivals::Uniform => "uniform".into(),
                Arrivals::Poisson { .. } => "poisson".into(),
            }),
            seed: match c.arrivals {
                Arrivals::Poisson { seed } => Some(seed),
                Arrivals::Uniform => None,
            },
            protocol: c.protocol().into(),
            streams: c.streams,
            streams_clamp: st.h2_streams_clamp,
        },
        addr: s.addr.to_string(),
        start: rfc3339(start_unix_us),
        start_unix_us,
        elapsed_s: s.elapsed.as_secs_f64(),
        elapsed_ns: s.elapsed.as_nanos() as u64,
        interrupted: s.interrupted,
        script_error: s.script_error.clone(),
        generator_load: GeneratorLoad {
            worker_cpu_ns: st.cpu_ns,
            script_limited: st.script_limited,
        },
        stopped_unfinished: st.stopped_unfinished,
        dropped: st.dropped,
        reconnects: st.reconnects,
        requests: st.requests,
        bytes: st.bytes,
        rate: RateDoc {
            target: c.target_rate(),
            achieved: s.achieved_rate(),
            window_s: Some(s.rate_window().as_secs_f64()),
        },
        errors: ErrorsDoc {
            total: st.errors.socket() + st.errors.status,
            connect: st.errors.connect,
            connect_timeout: st.errors.connect_timeout,
            read: st.errors.read,
            write: st.errors.write,
            timeout: st.errors.timeout,
            status: st.errors.status,
            read_reasons: st
                .errors
                .read_reasons
                .by_count()
                .into_iter()
                .map(|(r, n)| (r.key().to_string(), n))
                .collect(),
            h2: H2ErrorsDoc {
                rst_stream: st.errors.h2.rst_stream,
                refused_stream: st.errors.h2.refused_stream,
                goaway: st.errors.h2.goaway,
                connection: st.errors.h2.connection,
                flow_control_stalls: st.errors.h2.flow_control,
            },
        },
        status,
        latency: LatencyDoc {
            unit: "us".into(),
            corrected: LatencySummary::of(&st.corrected),
            uncorrected: LatencySummary::of(&st.uncorrected),
            send_lag: LatencySummary::of(&st.send_lag),
        },
        timing: Some(super::json_timing::to_doc(&st.timing)),
        series: series(s),
        histograms: HistogramsDoc {
            encoding: ENCODING.into(),
            unit: "us".into(),
            corrected: hdr::encode_base64(&st.corrected),
            uncorrected: hdr::encode_base64(&st.uncorrected),
            send_lag: hdr::encode_base64(&st.send_lag),
            req_per_sec: hdr::encode_base64(&st.req_per_sec),
        },
        thresholds: ThresholdsDoc {
            passed: r.passed(),
            checks: r
                .outcomes
                .iter()
                .map(|o| CheckDoc {
                    expr: o.expr.clone(),
                    metric: o.metric.clone(),
                    op: o.op.into(),
                    limit: o.limit,
                    unit: o.unit.into(),
                    actual: o.actual,
                    pass: o.pass,
                    detail: o.detail.clone(),
                })
                .collect(),
        },
        sources: r.sources.clone(),
        watch: r.watch.clone(),
    }
}

/// The document as pretty-printed JSON, with a final newline.
pub fn to_json(r: &RunResult) -> String {
    let mut s = serde_json::to_string_pretty(&to_document(r)).expect("a document serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::clock;
    use crate::config::{Config, Target};
    use crate::record::Stats;
    use crate::result::Summary;
    use crate::timeline::{Interval, Timeline};

    fn summary(start_us: u64, elapsed_ms: u64, seconds: &[u64]) -> Summary {
        let mut stats = Stats::new();
        stats.timeline = Timeline::from_intervals(seconds.iter().map(|&second| Interval {
            second,
            requests: 1,
            errors: 0,
            latency: Vec::new(),
        }));
        Summary {
            config: Config::new(Target::parse("http://h/").unwrap()),
            addr: SocketAddr::from(([127, 0, 0, 1], 80)),
            started: clock::from_unix_us(start_us),
            elapsed: Duration::from_millis(elapsed_ms),
            interrupted: false,
            script_error: None,
            stats,
        }
    }

    #[test]
    fn series_covers_the_run_without_gaps() {
        const B: u64 = 1_800_000_000; // a Unix second
        let us = |s: u64| s * 1_000_000;
        // Start at B + 0.5 s for 2.5 s: seconds B..=B+2; data in B and B+2 only.
        let s = summary(us(B) + 500_000, 2500, &[B, B + 2]);
        let v: Vec<(u64, bool)> = series_seconds(&s)
            .into_iter()
            .map(|(t, i)| (t - B, i.is_some()))
            .collect();
        assert_eq!(v, vec![(0, true), (1, false), (2, true)]);
        // Data beyond the run (a merged input that started later) extends the series.
        let s = summary(us(B) + 500_000, 1000, &[B + 3]);
        assert_eq!(series_seconds(&s).len(), 4);
        // Stray data far away is listed but not gap-filled.
        let s = summary(us(B) + 500_000, 1000, &[3, B + 1]);
        let t: Vec<u64> = series_seconds(&s).into_iter().map(|(t, _)| t).collect();
        assert_eq!(t, vec![3, B, B + 1]);
    }
}
