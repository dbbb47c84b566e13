//! JUnit XML for CI systems that render test reports natively (GitHub, GitLab, Jenkins, …):
//! one `<testsuite>` for the run, one `<testcase>` per threshold, a `<failure>` for each that
//! failed. The run's figures travel as `<properties>`.
//!
//! The document is built from `quick-junit`'s report types and written by its serializer
//! (quick-xml underneath), which owns the escaping. Two attributes go through the suite's
//! `extra` map rather than the crate's fields: `skipped` (not modelled by this version of the
//! crate) and `timestamp`, kept in the form the Ant/Jenkins JUnit XSD prescribes (date-time
//! without a zone, here UTC) rather than the crate's RFC 3339 with an offset.

use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::clock::{rfc3339, unix_us};
use crate::result::RunResult;

/// The `classname` of every threshold's test case.
const CLASSNAME: &str = "loadgen.thresholds";

/// The JUnit report for `r`.
pub fn report(r: &RunResult) -> Report {
    let s = &r.summary;
    let time = s.elapsed;
    let mut suite = TestSuite::new(format!("loadgen {}", s.config.target.url));
    suite.set_time(time);
    suite.extra.insert("skipped".into(), "0".into());
    suite
        .extra
        .insert("timestamp".into(), rfc3339(unix_us(s.started))[..19].into());
    let target = s
        .config
        .target_rate()
        .map_or_else(|| "closed loop".to_string(), |r| format!("{r}"));
    let c = &s.stats.corrected;
    let q = |p: f64| crate::hdr::value_at_quantile(c, p);
    suite.add_properties([
        Property::new("url", &s.config.target.url),
        Property::new("threads", s.config.threads.to_string()),
        Property::new("connections", s.config.connections.to_string()),
        Property::new("target_rate", target),
        Property::new("achieved_rate", format!("{:.2}", s.achieved_rate())),
        Property::new("requests", s.stats.requests.to_string()),
        Property::new(
            "errors",
            (s.stats.errors.socket() + s.stats.errors.status).to_string(),
        ),
        Property::new("p50_us", q(0.5).to_string()),
        Property::new("p99_us", q(0.99).to_string()),
    ]);
    suite.add_test_cases(r.outcomes.iter().map(|o| {
        let status = if o.pass {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_type("threshold")
                .set_message(format!("{}: {}", o.expr, o.detail))
                .set_description(&o.detail);
            st
        };
        let mut case = TestCase::new(&o.expr, status);
        case.set_classname(CLASSNAME).set_time(time);
        if o.pass {
            case.set_system_out(&o.detail);
        }
        case
    }));
    let mut report = Report::new("loadgen");
    report.set_time(time).add_test_suite(suite);
    report
}

/// Writes the JUnit document for `r`.
pub fn write(w: &mut impl Write, r: &RunResult) -> io::Result<()> {
    report(r).serialize(w).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use quick_junit::Report;

    use super::*;
    use crate::config::{Config, Target};
    use crate::record::Stats;
    use crate::result::Summary;
    use crate::slo::Slo;

    /// Ten 500 responses of 1 ms each, checked against `p99<=1s` (passes) and
    /// `status5xx==0` (fails).
    fn result() -> RunResult {
        let start_us = 1_795_402_280_123_456;
        let mut st = Stats::anchored(start_us * 1000);
        for k in 0..10u64 {
            let t = k * 10_000_000;
            st.record(t, t, t, t + 1_000_000, 500);
        }
        st.finish(100_000_000);
        let summary = Summary {
            config: Config::new(Target::parse("http://h/<&>").unwrap()),
            addr: SocketAddr::from(([127, 0, 0, 1], 80)),
            started: crate::clock::from_unix_us(start_us),
            elapsed: Duration::from_millis(1500),
            interrupted: false,
            script_error: None,
            stats: st,
        };
        let slos = ["p99<=1s", "status5xx==0"].map(|e| Slo::parse(e).unwrap());
        RunResult::new(summary, slos.to_vec(), Vec::new())
    }

    /// The written document reads back (quick-junit's deserializer, an XML parser, not this
    /// writer) as one suite with one case per threshold, the failure typed and explained.
    #[test]
    fn document_reads_back_with_one_case_per_threshold() {
        let mut buf = Vec::new();
        write(&mut buf, &result()).unwrap();
        let xml = String::from_utf8(buf).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        // The XSD's zone-less form, which quick-junit's reader (RFC 3339 only) refuses.
        let stamp = r#" timestamp="2026-11-23T02:51:20""#;
        assert!(xml.contains(stamp), "{xml}");
        let back = Report::deserialize_from_str(&xml.replace(stamp, "")).unwrap();
        assert_eq!((back.tests, back.failures, back.errors), (2, 1, 0));
        assert_eq!(back.time, Some(Duration::from_millis(1500)));
        let [suite] = &back.test_suites[..] else {
            panic!("one suite: {xml}")
        };
        assert_eq!(suite.name.as_str(), "loadgen http://h/<&>");
        let prop = |k: &str| {
            let p = suite.properties.iter().find(|p| p.name.as_str() == k);
            p.map(|p| p.value.as_str().to_string())
        };
        assert_eq!(prop("requests").as_deref(), Some("10"));
        assert_eq!(prop("target_rate").as_deref(), Some("closed loop"));
        let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["p99<=1s", "status5xx==0"]);
        let pass = &suite.test_cases[0];
        assert!(matches!(pass.status, TestCaseStatus::Success { .. }));
        assert_eq!(pass.classname.as_deref(), Some(CLASSNAME));
        assert!(pass.system_out.as_deref().unwrap().starts_with("p99 = "));
        match &suite.test_cases[1].status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                ty,
                description,
                ..
            } => {
                assert_eq!(ty.as_deref(), Some("threshold"));
                let d = description.as_deref().unwrap();
                assert!(d.starts_with("status5xx = 10"), "{d}");
                assert_eq!(message.as_deref(), Some(&*format!("status5xx==0: {d}")));
            }
            s => panic!("not a failure: {s:?}"),
        }
    }
}
