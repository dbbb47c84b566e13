//! `loadgen find` end to end: against the built-in server with a known capacity (one request
//! at a time, `--capacity N`) it reports a rate near N, with one line per step and a JSON
//! document holding every step's full result; refusals are usage errors (exit 2); a server
//! that fails the first step exits 3; Ctrl-C stops the search with what was found (130).

use std::time::{Duration, Instant};

use crate::common::{run, run_signalled, serve, serve_alone, stderr, stdout};

/// The rate in `... N req/s ...` after `prefix` in `text`.
fn rate_after(text: &str, prefix: &str) -> Option<f64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The field paths in docs/find.md's table, sorted.
fn documented_fields() -> Vec<String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/find.md")).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let cell = l.strip_prefix("| `")?;
            Some(cell.split('`').next()?.to_string())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn find_reports_the_capacity_of_a_server() {
    // The threshold p99 <= 50 ms: a failing step's latency is then the server's queue by a
    // wide margin over the generator's own lag (the lag must reach a quarter of the p99 to
    // make a step invalid). A rate r over the capacity C still passes a step of D = 1 s while
    // the queue it builds, (r − C)·D/C, stays under 50 ms: up to 1.05·C, hence the range.
    // 400 req/s: the climb's overload step (twice the capacity) stays well within what the
    // tests' unoptimised generator and server, sharing CI's two cores, hold, so that the
    // server and not the generator is the limit found (at 1000 the 800 req/s steps already
    // read generator lag of 10 ms and more on a busy host).
    let n = 400.0;
    let s = serve_alone(&["--capacity", "400"]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("find.json");
    let json = json.to_str().unwrap();
    // A search whose steps a burst of the shared host's steal failed finds less than the
    // server's capacity, or stops where the generator fell behind: such a search is
    // repeated, three times at most.
    let (text, found) = crate::common::settle(4, || {
        let t0 = Instant::now();
        let out = run(
            &[
                "find",
                "-t1",
                "-c20",
                "--step-duration",
                "1s",
                "--confirm",
                "2s",
                "--slo",
                "p99<=50ms",
                "--json",
                json,
                &s.url,
            ],
            Duration::from_secs(60),
        );
        let text = stdout(&out);
        // Exit 1 is a search that stopped where the generator fell behind its plan (the
        // host held it up), exit 3 one whose first short step (40 requests: p99 is the
        // slowest) a host stall failed: runs of the host, repeated like a missed range.
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 3)),
            "{text}{}",
            stderr(&out)
        );
        crate::check!(out.status.code() == Some(0), "{text}{}", stderr(&out));
        assert!(t0.elapsed() < Duration::from_secs(40), "{:?}", t0.elapsed());
        let found = rate_after(&text, "Highest rate meeting every threshold: ").expect(&text);
        crate::check!(
            (0.90 * n..=1.10 * n).contains(&found),
            "found {found} req/s for capacity {n}:\n{text}"
        );
        Ok((text, found))
    });
    let first_fail = rate_after(&text, "first failing rate ").expect(&text);
    assert!(first_fail > found, "{text}");
    // One line per step, with its verdict.
    assert!(text.contains("climb") && text.contains("bisect"), "{text}");
    assert!(text.contains(" pass") && text.contains(" fail"), "{text}");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(doc["schema"], "loadgen.find");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["outcome"], "found");
    assert_eq!(doc["max_rate"].as_f64(), Some(found));
    assert_eq!(doc["first_failing_rate"].as_f64(), Some(first_fail));
    let steps = doc["steps"].as_array().unwrap();
    assert!(steps.len() >= 6, "{}", steps.len());
    // The fields are those docs/find.md lists, top level and per step.
    let documented = documented_fields();
    let mut written: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
    for k in steps[0].as_object().unwrap().keys() {
        written.push(format!("steps[].{k}"));
    }
    written.sort();
    assert_eq!(written, documented);
    for st in steps {
        let r = &st["result"];
        assert_eq!(r["schema"], "loadgen.result");
        assert_eq!(r["config"]["rate"], st["rate"]);
        let passed = r["thresholds"]["passed"].as_bool().unwrap();
        match st["verdict"].as_str().unwrap() {
            "pass" => assert!(passed, "{st}"),
            "fail" => assert!(st["reason"].is_string(), "{st}"),
            v => panic!("unexpected verdict {v} in {st}"),
        }
    }
    let last = steps.last().unwrap();
    assert_eq!(last["kind"], "confirm");
    assert_eq!(last["verdict"], "pass");
    assert_eq!(last["rate"].as_f64(), Some(found));
    assert_eq!(last["result"]["config"]["duration_s"].as_f64(), Some(2.0));
}

#[test]
fn find_refusals_are_usage_errors() {
    let url = "http://127.0.0.1:1/";
    let cases: &[(&[&str], &str)] = &[
        (&[], "at least one threshold"),
        (
            &["--slo", "p99<=20ms", "--start", "500", "--max", "100"],
            "--start 500 is above --max 100",
        ),
        (&["--slo", "p99<=20ms", "--factor", "1"], "--factor"),
        (&["--slo", "p99<=20ms", "--precision", "0"], "--precision"),
        (
            &["--slo", "p99<=20ms", "--step-duration", "0"],
            "--step-duration",
        ),
        (&["--slo", "p99<=20ms", "--json", "-"], "--json"),
        (&["--slo", "p99<=20ms", "-R", "100"], "-R"),
        (&["--slo", "p99"], "p99"),
    ];
    for (args, needle) in cases {
        let mut a = vec!["find"];
        a.extend_from_slice(args);
        a.push(url);
        let out = run(&a, Duration::from_secs(10));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// A server slower than the threshold at every rate: the first step fails, exit 3.
#[test]
fn find_exits_3_when_the_first_step_fails() {
    let s = serve(&["--delay", "50ms"]);
    let out = run(
        &[
            "find",
            "-t1",
            "-c10",
            "--start",
            "50",
            "--step-duration",
            "500ms",
            "--slo",
            "p99<=20ms",
            &s.url,
        ],
        Duration::from_secs(20),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{}{err}", stdout(&out));
    assert!(
        err.contains("even the first step, 50 req/s, failed"),
        "{err}"
    );
    // One step, failed.
    let text = stdout(&out);
    let steps: Vec<&str> = text.lines().filter(|l| l.contains("  climb  ")).collect();
    assert_eq!(steps.len(), 1, "{text}");
    assert!(steps[0].contains("  fail: "), "{text}");
}

/// Ctrl-C stops the current step and reports what was found so far (exit 130).
#[test]
fn find_interrupted_reports_what_it_found() {
    let s = serve(&[]);
    let out = run_signalled(
        &[
            "find",
            "-t1",
            "-c2",
            "--start",
            "100",
            "--max",
            "200",
            "--step-duration",
            "1s",
            "--confirm",
            "20s",
            "--slo",
            "p99<=1s",
            &s.url,
        ],
        "-INT",
        Duration::from_millis(3500),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(130), "{text}{}", stderr(&out));
    assert!(
        text.contains("find: interrupted; highest rate that passed so far: 200 req/s"),
        "{text}"
    );
}
