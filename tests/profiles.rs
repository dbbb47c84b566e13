//! Rate profiles and arrivals end to end: a ramp sends its plan's integral and follows it
//! second by second, a step load steps, Poisson arrivals are reproducible from their seed,
//! and the M/D/1 queue they make of a one-at-a-time server has the analytic mean time in
//! system. Servers on 127.0.0.1:0; every run bounded in time and requests.

use std::time::Duration;

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `args` with `--json` into a temporary file; returns the report and the document.
fn run_json(args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    let mut all: Vec<&str> = args.to_vec();
    let ps = p.to_str().unwrap().to_string();
    all.extend(["--json", &ps]);
    let out = run(&all, LIMIT);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let doc = json(&p);
    (out, doc)
}

/// Every whole second of the series holds the plan's count for it, within `share`.
fn seconds_follow_the_plan(doc: &serde_json::Value, share: f64) {
    let series = doc["series"].as_array().unwrap();
    // The first and last seconds are partial (the run starts and ends inside them).
    for s in &series[1..series.len() - 1] {
        let planned = s["planned"].as_f64().unwrap();
        let got = s["requests"].as_f64().unwrap();
        assert!(
            (got - planned).abs() <= planned * share + 2.0,
            "second {}: {got} of {planned} planned\n{series:?}",
            s["t"]
        );
    }
}

/// `-R1000 --stages 2s:1000,2s:3000`: 2000 requests at 1000/s, then a ramp to 3000/s (4000
/// more): the plan's 6000 are sent, and each whole second's count is its planned count.
#[test]
fn a_ramp_sends_its_integral_second_by_second() {
    // Its assertions are about timing (counts per second, send lag): no other load beside it.
    let s = serve_alone(&[]);
    let ramp = || {
        run_json(&[
            "-t1",
            "-c20",
            "-R1000",
            "--stages",
            "2s:1000,2s:3000",
            &s.url,
        ])
    };
    // A run the shared host stalled (send lag p99 over 5 ms) is repeated, twice at most.
    let (mut out, mut doc) = ramp();
    for _ in 0..2 {
        if doc["latency"]["send_lag"]["p99"].as_u64().unwrap() < 5_000 {
            break;
        }
        (out, doc) = ramp();
    }
    let text = stdout(&out);
    let r = parse(&text);
    assert!((5940..=6060).contains(&r.requests), "{text}");
    assert!(
        text.contains("rate profile: 1000 -> 1000 over 2s -> 3000 over 2s"),
        "{text}"
    );
    assert!(text.contains("Per second (planned vs achieved"), "{text}");
    assert_eq!(doc["config"]["profile"]["planned"], 6000.0);
    assert_eq!(doc["config"]["duration_s"], 4.0);
    assert_eq!(doc["config"]["rate"], 1500.0);
    seconds_follow_the_plan(&doc, 0.03);
    // The generator kept to the plan through the ramp (an unoptimised test build, on CI's
    // two cores; release figures are in docs/accuracy.md).
    assert!(
        doc["latency"]["send_lag"]["p99"].as_u64().unwrap() < 10_000,
        "{text}"
    );
}

/// `--step 200+200/1s..600`: 200, 400 and 600 req/s for a second each.
#[test]
fn a_step_load_steps() {
    let s = serve_alone(&[]);
    let (out, doc) = run_json(&["-t1", "-c10", "--step", "200+200/1s..600", &s.url]);
    let text = stdout(&out);
    let r = parse(&text);
    assert!((1188..=1212).contains(&r.requests), "{text}");
    assert_eq!(doc["config"]["profile"]["peak"], 600.0);
    assert_eq!(doc["config"]["duration_s"], 3.0);
    seconds_follow_the_plan(&doc, 0.03);
}

/// Profiles are refused with one line where they make no sense.
#[test]
fn profile_usage_errors() {
    for (args, says) in [
        (vec!["--stages", "2s:100", "-d3s"], "not with --stages"),
        (vec!["--stages", "2s"], "expected DUR:RATE"),
        (vec!["--stages", "2s:-5"], "must be >= 0"),
        (vec!["--stages", "0s:100"], "last no time"),
        (vec!["--step", "100+50/1s..500", "-R100"], "not with -R"),
        (vec!["--step", "100+50..500"], "missing /EVERY"),
        (vec!["--arrivals", "poisson"], "needs a rate"),
        (vec!["-R100", "--seed", "3"], "only with --arrivals poisson"),
    ] {
        let mut a = args.clone();
        a.push("http://127.0.0.1:1/");
        let out = run(&a, LIMIT);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// A seed reproduces a Poisson plan exactly: against a server that answers everything, the
/// count of requests planned before the end is the same on every run with the same seed, and
/// differs from run to run with other seeds (the gaps are random).
#[test]
fn poisson_arrivals_are_reproducible_from_the_seed() {
    let s = serve(&[]);
    let count = |seed: &str| {
        let (out, doc) = run_json(&[
            "-t1",
            "-c4",
            "-d1s",
            "-R1000",
            "--arrivals",
            "poisson",
            "--seed",
            seed,
            &s.url,
        ]);
        assert!(stdout(&out).contains(&format!("Poisson arrivals (--seed {seed})")));
        assert_eq!(doc["config"]["arrivals"], "poisson");
        doc["requests"].as_u64().unwrap()
    };
    let a = count("11");
    assert!((880..=1120).contains(&a), "{a}");
    assert_eq!(count("11"), a);
    let others = [count("12"), count("13"), count("14")];
    assert!(others.iter().any(|&n| n != a), "{a} {others:?}");
}

/// The built-in server with `--capacity 1000` serves one request at a time in 1 ms. Offered
/// 800 req/s with Poisson arrivals it is an M/D/1 queue at load 0.8, whose mean time in system
/// is s + ρs / (2(1 − ρ)) = 1 + 0.8 / 0.4 = 3.0 ms; evenly spaced arrivals never queue
/// (≈ 1.0 ms). The corrected mean latency shows both.
#[test]
fn poisson_arrivals_make_an_m_d_1_queue() {
    let s = serve_alone(&["--capacity", "1000", "--spin", "300us"]);
    let mean = |arrivals: &str| {
        let (_, doc) = run_json(
            &[
                "-t1",
                "-c50",
                "-d12s",
                "-R800",
                "--arrivals",
                arrivals,
                "--seed",
                "5",
                &s.url,
            ]
            .into_iter()
            .filter(|a| arrivals == "poisson" || (*a != "--seed" && *a != "5"))
            .collect::<Vec<_>>(),
        );
        (
            doc["latency"]["corrected"]["mean"].as_f64().unwrap() / 1000.0,
            doc["latency"]["send_lag"]["p99"].as_u64().unwrap(),
        )
    };
    // A run in which the generator itself was held up (send lag p99 over 2 ms: the shared
    // host stalled it) measured the host, not the queue: it is repeated, twice at most.
    let (mut poisson, mut uniform) = (0.0, 0.0);
    for _ in 0..3 {
        let (p, lag_p) = mean("poisson");
        let (u, lag_u) = mean("uniform");
        (poisson, uniform) = (p, u);
        if lag_p < 2_000 && lag_u < 2_000 {
            break;
        }
    }
    // Below by 20% at most. Above by up to 40%: at load 0.8 the queue multiplies the delivery
    // jitter of an unoptimised test server sharing two cores (a response 50 µs late is a load
    // of 0.84 and a mean of 3.8 ms). The figures measured are in docs/accuracy.md.
    assert!(
        (2.4..=4.2).contains(&poisson),
        "Poisson mean {poisson} ms, truth 3.0 ms (uniform {uniform} ms)"
    );
    assert!(
        (0.9..=1.4).contains(&uniform),
        "uniform mean {uniform} ms, truth ≈ 1.0 ms"
    );
    // The queueing is Poisson's alone: the same server, the same rate, evenly spaced, has none.
    assert!(
        poisson - uniform >= 1.5,
        "Poisson {poisson} ms, uniform {uniform} ms"
    );
}
