//! Rate profiles and arrivals end to end: a ramp sends its plan's integral and follows it
//! second by second, a step load steps, Poisson arrivals are reproducible from their seed,
//! the M/D/1 queue they make of a one-at-a-time server has the analytic mean time in
//! system, and a closed-loop ramp keeps the connections it says open. Servers on 127.0.0.1:0; every run bounded in time and requests.

use std::time::Duration;

use crate::check;
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

/// Every whole second of the series holds the plan's count for it, within `share`; `Err` names
/// the first that does not.
fn seconds_follow_the_plan(doc: &serde_json::Value, share: f64) -> Result<(), String> {
    let series = doc["series"].as_array().unwrap();
    // The first and last seconds are partial (the run starts and ends inside them).
    for s in &series[1..series.len() - 1] {
        let planned = s["planned"].as_f64().unwrap();
        let got = s["requests"].as_f64().unwrap();
        if (got - planned).abs() > planned * share + 2.0 {
            return Err(format!(
                "second {}: {got} of {planned} planned\n{series:?}",
                s["t"]
            ));
        }
    }
    Ok(())
}

/// `-R1000 --stages 2s:1000,2s:3000`: 2000 requests at 1000/s, then a ramp to 3000/s (4000
/// more): the plan's 6000 are sent, and each whole second's count is its planned count.
#[test]
fn a_ramp_sends_its_integral_second_by_second() {
    // Its assertions are about timing (counts per second, send lag): no other load beside it.
    let s = serve_alone(&[]);
    let (out, doc) = settle(TRIES, || {
        let (out, doc) = run_json(&[
            "-t1",
            "-c20",
            "-R1000",
            "--stages",
            "2s:1000,2s:3000",
            &s.url,
        ]);
        // The seconds differ from each other by a third or more, so 5% still tells a ramp
        // from anything else; a burst of the host's steal shifts a few dozen requests from
        // one second into the next.
        seconds_follow_the_plan(&doc, 0.05)?;
        // The generator kept to the plan through the ramp (an unoptimised test build, on
        // CI's two cores; release figures are in docs/accuracy.md).
        let lag = doc["latency"]["send_lag"]["p99"].as_u64().unwrap();
        if lag >= 10_000 {
            return Err(format!("send lag p99 {lag} µs\n{}", stdout(&out)));
        }
        Ok((out, doc))
    });
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
}

/// `--step 200+200/1s..600`: 200, 400 and 600 req/s for a second each.
#[test]
fn a_step_load_steps() {
    let s = serve_alone(&[]);
    let (out, doc) = settle(TRIES, || {
        let (out, doc) = run_json(&["-t1", "-c10", "--step", "200+200/1s..600", &s.url]);
        seconds_follow_the_plan(&doc, 0.05)?;
        Ok((out, doc))
    });
    let text = stdout(&out);
    let r = parse(&text);
    assert!((1188..=1212).contains(&r.requests), "{text}");
    assert_eq!(doc["config"]["profile"]["peak"], 600.0);
    assert_eq!(doc["config"]["duration_s"], 3.0);
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
        (
            vec!["--conn-stages", "2s:4", "-c4"],
            "not with --conn-stages",
        ),
        (vec!["--conn-stages", "2s:4", "-R100"], "closed loop only"),
        (
            vec!["--conn-stages", "2s:4", "--stages", "1s:5"],
            "closed loop only",
        ),
        (
            vec!["--conn-stages", "2s:4", "-d3s"],
            "not with --conn-stages",
        ),
        (vec!["--conn-stages", "2s:2.5"], "whole number"),
        (
            vec!["--conn-stages", "2s:0"],
            "no connection is ever in use",
        ),
        (vec!["--conn-stages", "0s:1,2s:1", "-t2"], "lower -t"),
        (vec!["--conn-stages", "2s:1", "-t1"], "hold it"),
        (vec!["--conn-stages", "2s"], "expected DUR:N"),
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
/// (≈ 1.0 ms). Two references judge loadgen's corrected mean: the server's own record of each
/// request's time in system (kernel arrival to response), which loadgen's must match whatever
/// the host did; and the analytic mean, for the queue itself.
#[test]
fn poisson_arrivals_make_an_m_d_1_queue() {
    // (loadgen's corrected mean, the server's recorded mean), ms; a fresh server per run, so
    // that its record is this run's alone.
    let measure = |arrivals: &str| {
        let s = serve_alone(&["--capacity", "1000", "--spin", "300us"]);
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
        let mean = |k: &str| doc["latency"][k]["mean"].as_f64().unwrap() / 1000.0;
        (
            mean("corrected"),
            mean("uncorrected"),
            delivered(&s.stop(), "mean"),
        )
    };
    // More runs than other timing tests: its check of the host (the server's record of its
    // own 1 ms service) fails whole runs through a spell of steal, which in CI lasted minutes.
    let tries = TRIES + 3;
    let mut unfit = 0;
    let measured = settle(tries, || {
        // Evenly spaced first: it tells whether the host can deliver the 1 ms service at all,
        // and a host that cannot is not worth the Poisson run.
        let (u, u_up, u_srv) = measure("uniform");
        let host = format!("uniform {u:.3} ms (from the actual send {u_up:.3}, server {u_srv:.3})");
        // Whatever the host did, loadgen's mean from the actual send is the server's record.
        check!(
            (-0.05..=0.1 * u_srv + 0.3).contains(&(u_up - u_srv)),
            "loadgen and the server's record differ: {host}"
        );
        // Evenly spaced, a request finds the server idle: the time in system is the service
        // time as this host delivered it (timer wake-ups, steal), s'. A host too slow for the
        // test (s' past 1.2 ms: load over 0.96) measured the host, not the queue. A host unfit
        // in every attempt leaves the queue unjudged (said on stderr); the agreement with the
        // server's record above was still checked in each.
        if !(0.9..=1.2).contains(&u_srv) {
            unfit += 1;
            if unfit == tries {
                return Ok(None);
            }
            return Err(format!("the host delivered 1 ms as {u_srv:.3} ms: {host}"));
        }
        let (p, p_up, p_srv) = measure("poisson");
        let all = format!(
            "Poisson {p:.3} ms (from the actual send {p_up:.3}, server {p_srv:.3}), {host}"
        );
        // Timed from its actual send, a request's mean is the server's plus its way in and
        // out over loopback (tens of µs; a few hundred in an unoptimised build on a busy
        // host). The corrected mean adds the generator's own lateness, which the server
        // cannot see; it is judged against the analytic truth below.
        for (got, srv) in [(p_up, p_srv), (u_up, u_srv)] {
            check!(
                (-0.05..=0.1 * srv + 0.3).contains(&(got - srv)),
                "loadgen and the server's record differ: {all}"
            );
        }
        // The queue itself. Poisson arrivals queue as M/D/1 with s', and s' ≥ 1 ms only
        // raises the 3.0 ms truth. Bounds: 20% under the 1 ms truth, 30% over the s'
        // prediction (the service time varies a little under s', which M/D/1 leaves out).
        let rho = 0.8 * u_srv;
        let truth = u_srv + rho * u_srv / (2.0 * (1.0 - rho));
        if !(2.4..=1.3 * truth).contains(&p) {
            return Err(format!(
                "Poisson mean {p:.3} ms, truth {truth:.3} ms: {all}"
            ));
        }
        Ok(Some((p, u)))
    });
    let Some((poisson, uniform)) = measured else {
        eprintln!(
            "poisson_arrivals_make_an_m_d_1_queue: this host delivered the server's 1 ms \
             service 20% late or worse in all {tries} runs; the M/D/1 mean was not judged"
        );
        return;
    };
    // The queueing is Poisson's alone: the same server, the same rate, evenly spaced, has none.
    assert!(
        poisson - uniform >= 1.5,
        "Poisson {poisson} ms, uniform {uniform} ms"
    );
}

/// A closed-loop ramp (`--conn-stages`) keeps the connections it says open, as the server
/// counts them: 2 for 2 s, a jump to 6 for 2 s, then 1 for 2 s. The server's `/__stats`,
/// polled every 50 ms, sees 2, then 6, then 1 open (never more than 6), and accepts six
/// connections from the run (connections 0 and 1 stay, 2–5 join at 2 s and leave at 4 s,
/// each closed when it leaves). Each connection sends back to back, so a second with six in
/// use completes about three times the requests of a second with two.
#[test]
fn a_closed_loop_ramp_keeps_its_connections_open() {
    let attempt = || {
        let s = serve_alone(&["--delay", "5ms"]);
        let stats = |addr: &str| {
            let (_, _, body) = http(addr, "GET", "/__stats", &[], "");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            (
                v["connections_open"].as_u64().unwrap() - 1, // the poll's own
                v["connections_accepted"].as_u64().unwrap(),
            )
        };
        let (_, before) = stats(&s.addr);
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let poller = {
            let (addr, polls) = (s.addr.clone(), polls.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut n = 0;
                while polls.load(std::sync::atomic::Ordering::Relaxed) {
                    let (open, _) = stats(&addr);
                    n += 1;
                    if seen.last() != Some(&open) {
                        seen.push(open);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                (seen, n)
            })
        };
        let (out, doc) = run_json(&[
            "-t2",
            "--conn-stages",
            "0s:2,2s:2,0s:6,2s:6,0s:1,2s:1",
            &s.url,
        ]);
        polls.store(false, std::sync::atomic::Ordering::Relaxed);
        let (seen, n) = poller.join().unwrap();
        let (_, after) = stats(&s.addr);
        // The polls' own connections (n of them, and the one after) are not the run's.
        let accepted = after - before - 1 - n;
        (out, doc, seen, accepted)
    };
    let (out, doc, seen, accepted) = attempt();
    let text = stdout(&out);
    assert!(
        text.contains(
            "connection profile: 0, jump to 2 -> 2 over 2s, jump to 6 -> 6 over 2s, jump to 1 \
             -> 1 over 2s connections (closed loop)"
        ),
        "{text}"
    );
    assert!(
        text.contains("connections in use vs achieved requests"),
        "{text}"
    );
    assert_eq!(doc["config"]["connections"], 6);
    assert_eq!(doc["config"]["conn_profile"]["peak"], 6);
    assert_eq!(doc["config"]["rate"], serde_json::Value::Null);
    // Opened when it joins, closed when it leaves: six connections, one each (a seventh is
    // the generator's probe of the target, when it makes one).
    assert!((6..=7).contains(&accepted), "accepted {accepted}");
    assert!(seen.iter().all(|&o| o <= 6), "open counts seen: {seen:?}");
    // 2, then 6, then 1, in that order (with what the jumps pass through between them).
    let at = |v: u64, from: usize| seen[from..].iter().position(|&o| o == v).map(|i| i + from);
    let two = at(2, 0).unwrap_or_else(|| panic!("never 2 open: {seen:?}"));
    let six = at(6, two).unwrap_or_else(|| panic!("never 6 open after 2: {seen:?}"));
    at(1, six).unwrap_or_else(|| panic!("never 1 open after 6: {seen:?}"));
    // Throughput follows the connections: seconds 0–1 (two) against 2–3 (six).
    settle(TRIES, || {
        let (_, doc, _, _) = attempt();
        let start = doc["start_unix_us"].as_f64().unwrap() / 1e6;
        // The mean count of the whole wall-clock seconds within [from, to) s of the run.
        let mean = |from: f64, to: f64| {
            let full: Vec<f64> = doc["series"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| {
                    let t = e["t"].as_f64().unwrap();
                    t >= start + from && t + 1.0 <= start + to
                })
                .map(|e| e["requests"].as_f64().unwrap())
                .collect();
            full.iter().sum::<f64>() / full.len() as f64
        };
        let (two, six) = (mean(0.0, 2.0), mean(2.0, 4.0));
        check!(
            (2.2..=3.8).contains(&(six / two)),
            "six connections did {six} requests a second, two did {two}"
        );
        Ok(())
    });
}
