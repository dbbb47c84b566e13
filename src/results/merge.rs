//! Exact merging of results from several generator processes or machines: histograms are
//! added bucket by bucket, counters summed, and the per-second time lines aligned by
//! wall-clock second. Nothing is averaged, so the merged percentiles are those of the union of
//! all recorded requests.
//!
//! The inputs are taken to be parts of one test run concurrently (e.g. N pods each at
//! `-R total/N`): the merged run has the sum of their threads, connections and target rates,
//! starts at the earliest start and lasts as long as the longest input, so its Requests/sec
//! is the combined rate. The time series shows how the inputs really overlapped. Rate (or
//! connection) profiles of one shape add up to a profile; of different shapes, the merged run
//! keeps their mean rates' sum.

use crate::conn_profile::ConnProfile;
use crate::error::{Error, Result};
use crate::record::Stats;
use crate::result::Summary;
use crate::result::{RunResult, Source};
use crate::schedule::{RateProfile, Stages};
use crate::slo::Slo;

fn source_of(file: &str, r: &RunResult) -> Source {
    let s = &r.summary;
    Source {
        file: file.to_string(),
        url: s.config.target.url.clone(),
        start_unix_us: crate::clock::unix_us(s.started),
        elapsed_ns: s.elapsed.as_nanos() as u64,
        requests: s.stats.requests,
        threads: s.config.threads,
        connections: s.config.connections,
        rate: s.config.target_rate(),
    }
}

/// Merges `inputs` (file name, result) into one result. Thresholds: the union of the inputs'
/// (by expression, in order of first appearance), evaluated on the merged data.
pub fn merge(inputs: &[(String, RunResult)]) -> Result<RunResult> {
    let Some((_, first)) = inputs.first() else {
        return Err(Error::Usage("merge: no results to merge".into()));
    };
    let mut config = first.summary.config.clone();
    config.threads = 0;
    config.connections = 0;
    let mut rate = Some(0.0);
    let mut stats = Stats::new();
    let mut started = first.summary.started;
    let mut elapsed = first.summary.elapsed;
    let mut interrupted = false;
    let mut script_error = None;
    let mut slos: Vec<Slo> = Vec::new();
    let mut sources = Vec::new();
    for (file, r) in inputs {
        let s = &r.summary;
        let c = &s.config;
        config.threads += c.threads;
        config.connections += c.connections;
        config.duration = config.duration.max(c.duration);
        config.latency |= c.latency;
        config.u_latency |= c.u_latency;
        config.timing |= c.timing;
        rate = match (rate, c.target_rate()) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        stats += &s.stats;
        started = started.min(s.started);
        elapsed = elapsed.max(s.elapsed);
        interrupted |= s.interrupted;
        if script_error.is_none() {
            script_error = s.script_error.clone();
        }
        for t in &r.slos {
            if !slos.iter().any(|x| x.expr == t.expr) {
                slos.push(t.clone());
            }
        }
        if r.sources.is_empty() {
            sources.push(source_of(file, r));
        } else {
            sources.extend(r.sources.iter().cloned());
        }
    }
    // Profiles of one shape (runs side by side with the same stages at a share each) add up
    // to a profile; otherwise the merged run keeps only their mean rates' sum.
    let profiles: Option<Vec<&Stages>> = inputs
        .iter()
        .map(|(_, r)| match &r.summary.config.rate {
            Some(RateProfile::Stages(p)) => Some(p),
            _ => None,
        })
        .collect();
    config.rate = match profiles.as_deref().and_then(Stages::sum) {
        Some(p) => Some(RateProfile::Stages(p)),
        None => rate.map(RateProfile::Constant),
    };
    let conns: Option<Vec<&ConnProfile>> = inputs
        .iter()
        .map(|(_, r)| r.summary.config.conn_profile.as_ref())
        .collect();
    config.conn_profile = conns.as_deref().and_then(ConnProfile::sum);
    // The inputs' sending windows, on the wall clock: the merged one ends with the last.
    let end = inputs
        .iter()
        .map(|(_, r)| r.summary.started + r.summary.rate_window())
        .max()
        .unwrap_or(started);
    stats.last_sent_ns = end
        .duration_since(started)
        .map_or(0, |d| d.as_nanos() as u64);
    let summary = Summary {
        config,
        addr: first.summary.addr,
        started,
        elapsed,
        interrupted,
        script_error,
        stats,
    };
    let mut merged = RunResult::new(summary, slos, sources);
    // Each input's watched processes, as they were (a process seen by several inputs is
    // listed once per input: their samples are not summable).
    merged.watch = inputs.iter().flat_map(|(_, r)| r.watch.clone()).collect();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, Target};
    use crate::record::new_histogram;
    use crate::report::json::to_json;
    use crate::report::json_read::from_json;
    use crate::schedule::RateProfile;

    const S: u64 = 1_000_000_000;

    /// A synthetic run: `n` responses at `rate`/s from Unix time `start_ns`, latencies from
    /// `lat(k)`, every `err_every`-th a 500.
    fn run(
        start_ns: u64,
        rate: f64,
        n: u64,
        lat: impl Fn(u64) -> u64,
        err_every: u64,
    ) -> (RunResult, Vec<u64>) {
        let mut st = Stats::anchored(start_ns);
        let gap = (1e9 / rate) as u64;
        let mut lats = Vec::new();
        for k in 0..n {
            let intended = k * gap;
            let l = lat(k);
            let done = intended + l * 1000;
            let status = if k % err_every == err_every - 1 {
                500
            } else {
                200
            };
            st.record(intended, intended, intended, done, status);
            st.bytes += 100;
            lats.push(l);
        }
        let elapsed = n * gap;
        st.finish(elapsed);
        let mut config = Config::new(Target::parse("http://127.0.0.1:8080/").unwrap());
        config.threads = 1;
        config.connections = 2;
        config.rate = Some(RateProfile::Constant(rate));
        config.duration = Duration::from_nanos(elapsed);
        let summary = Summary {
            config,
            addr: "127.0.0.1:8080".parse().unwrap(),
            started: crate::clock::from_unix_us(start_ns / 1000),
            elapsed: Duration::from_nanos(elapsed),
            interrupted: false,
            script_error: None,
            stats: st,
        };
        let slos = vec![Slo::parse("p99<=10ms").unwrap()];
        (RunResult::new(summary, slos, Vec::new()), lats)
    }

    #[test]
    fn merge_of_saved_results_is_exact() {
        let t0 = 1_800_000_000 * S;
        let (a, la) = run(t0 + 300_000_000, 500.0, 1500, |k| 100 + k * 37 % 9000, 7);
        let (b, lb) = run(t0 + 800_000_000, 250.0, 900, |k| 50 + k * 101 % 40_000, 11);
        // Through the JSON text, as `loadgen merge` sees them.
        let a2 = from_json(&to_json(&a), "a.json").unwrap();
        let b2 = from_json(&to_json(&b), "b.json").unwrap();
        let m = merge(&[("a.json".into(), a2), ("b.json".into(), b2)]).unwrap();

        let mut want = new_histogram();
        for l in la.iter().chain(&lb) {
            want.record(*l).unwrap();
        }
        let st = &m.summary.stats;
        assert_eq!(st.corrected, want);
        assert_eq!(st.uncorrected, want);
        assert_eq!(st.requests, 2400);
        assert_eq!(st.bytes, 240_000);
        assert_eq!(st.errors.status, 1500 / 7 + 900 / 11);
        assert_eq!(st.status[500], st.errors.status);
        assert_eq!(st.status[200], 2400 - st.errors.status);
        assert_eq!(
            st.req_per_sec.len(),
            a.summary.stats.req_per_sec.len() + b.summary.stats.req_per_sec.len()
        );
        // Time series: aligned by Unix second; every second's histogram is the exact union.
        let iv = st.timeline.intervals();
        assert_eq!(iv.first().unwrap().second, 1_800_000_000);
        let total: u64 = iv.iter().map(|i| i.requests).sum();
        assert_eq!(total, 2400);
        let mut sum = new_histogram();
        for i in iv {
            let h = i.histogram();
            assert_eq!(h.len(), i.requests);
            sum.add(&h).unwrap();
        }
        assert_eq!(sum, want);
        // The merged run: sums and the longest span.
        let c = &m.summary.config;
        assert_eq!((c.threads, c.connections), (2, 4));
        assert_eq!(c.target_rate(), Some(750.0));
        assert_eq!(m.summary.elapsed, Duration::from_millis(3600));
        assert_eq!(m.summary.started, a.summary.started);
        assert_eq!(m.sources.len(), 2);
        assert_eq!(m.slos.len(), 1);
        // b's latencies reach 40 ms: the inherited threshold fails on the merged data.
        assert!(a.passed());
        assert!(!m.passed());
        // Merging again (a merged result with a third) keeps the sources flat.
        let (c3, _) = run(t0, 100.0, 100, |_| 10, 1000);
        let mm = merge(&[("m.json".into(), m.clone()), ("c.json".into(), c3)]).unwrap();
        assert_eq!(mm.sources.len(), 3);
        assert_eq!(mm.summary.stats.requests, 2500);
    }

    #[test]
    fn closed_loop_input_makes_the_merge_closed_loop() {
        let (a, _) = run(0, 100.0, 10, |_| 10, 1000);
        let (mut b, _) = run(0, 100.0, 10, |_| 10, 1000);
        b.summary.config.rate = None;
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(m.summary.config.target_rate(), None);
        assert!(merge(&[]).is_err());
    }

    /// Runs side by side with profiles of one shape merge into their sum (planned counts add
    /// up over every interval); of different shapes, into the sum of their means.
    #[test]
    fn profiles_of_one_shape_add_up() {
        use crate::schedule::Stage;
        let stages = |start: f64, a: f64, b: f64, first_ms: u64| {
            RateProfile::Stages(
                Stages::new(
                    start,
                    vec![
                        Stage {
                            duration: Duration::from_millis(first_ms),
                            target: a,
                        },
                        Stage {
                            duration: Duration::from_secs(1),
                            target: b,
                        },
                    ],
                )
                .unwrap(),
            )
        };
        let (mut a, _) = run(0, 100.0, 10, |_| 10, 1000);
        let (mut b, _) = run(0, 100.0, 10, |_| 10, 1000);
        a.summary.config.rate = Some(stages(100.0, 300.0, 200.0, 1000));
        b.summary.config.rate = Some(stages(50.0, 100.0, 400.0, 1000));
        let m = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        let merged = m.summary.config.rate.clone().unwrap();
        assert_eq!(merged, stages(150.0, 400.0, 600.0, 1000));
        let (ra, rb) = (
            a.summary.config.rate.unwrap(),
            b.summary.config.rate.unwrap(),
        );
        for (from, to) in [(0, 500_000_000u64), (700_000_000, 1_600_000_000)] {
            let want = ra.count_between(from, to) + rb.count_between(from, to);
            assert!((merged.count_between(from, to) - want).abs() < 1e-6);
        }
        // Another shape: the sum of the means.
        a.summary.config.rate = Some(stages(100.0, 300.0, 200.0, 1000));
        b.summary.config.rate = Some(stages(50.0, 100.0, 400.0, 500));
        let mean =
            a.summary.config.target_rate().unwrap() + b.summary.config.target_rate().unwrap();
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(m.summary.config.rate, Some(RateProfile::Constant(mean)));
    }
}
