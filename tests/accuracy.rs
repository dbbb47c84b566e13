//! Accuracy suite (issue 5, item 2): server pathologies whose true latency distribution is known
//! analytically, run end to end against the built-in server, with loadgen's corrected
//! percentiles compared to the truth. Each run is at most 3 s at ≤ 1000 req/s on loopback, with
//! the debug binary on a shared machine, so the margins allow a few ms of scheduling noise on
//! top of the analytic value; `scripts/accuracy.sh` runs the same cases longer with a release
//! build and prints the error of every percentile.

use crate::check;
use crate::common::{delivered, parse, run, serve_alone, settle, stdout, Report, TRIES};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// Runs loadgen with `args` + `-U` against `url`, asserts success, returns the parsed report
/// and the text (for failure messages).
fn measure(args: &[&str], url: &str) -> (Report, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-U", url]);
    let out = run(&all, LIMIT);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        crate::common::stderr(&out)
    );
    (parse(&text), text)
}

fn ms(us: f64) -> f64 {
    us / 1e3
}

/// Constant service time: every response takes `--delay 5ms`. Truth: every request's latency is
/// 5 ms + the loopback/base cost (tens to a few hundred µs), so p50 and p99 both lie just above
/// 5 ms. Per connection the plan interval is 4/200 s = 20 ms > 5 ms, so no request waits for
/// its predecessor and the corrected and uncorrected distributions coincide.
#[test]
fn constant_service_time() {
    // p99 here is 4 samples: one burst of the shared host's steal moves it, and such bursts
    // come in spells of several seconds. A run whose p99 is off is repeated on a fresh
    // server, four times at most; the assertions judge the last.
    let mut attempt = 0;
    let (s, r, text) = loop {
        let s = serve_alone(&["--delay", "5ms"]);
        let (r, text) = measure(&["-t1", "-c4", "-d2s", "-R200"], &s.url);
        attempt += 1;
        if attempt == 5 || (5.0..9.0).contains(&ms(r.p(99.0))) {
            break (s, r, text);
        }
    };
    assert!(r.requests >= 350, "{text}");
    let (p50, p99) = (ms(r.p(50.0)), ms(r.p(99.0)));
    // Never below the service time; base cost + noise on a debug build stays under 1.5 ms at
    // the median and 4 ms at p99.
    assert!((5.0..6.5).contains(&p50), "p50 {p50} ms\n{text}");
    assert!((5.0..9.0).contains(&p99), "p99 {p99} ms\n{text}");
    // The server's own record of what it delivered (kernel receive of each request to its
    // response, timer overshoot included) is the closer truth: loadgen's median is that plus
    // the request's way in and the response's way out, a few tens of µs on loopback.
    let summary = s.stop();
    let served = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no service summary in {summary:?}"));
    // Every request loadgen recorded was served; at most one per connection more (one the run
    // cut off at its end, had there been one).
    assert!(
        (r.requests..=r.requests + 4).contains(&served),
        "{summary}\n{text}"
    );
    let delivered = delivered(&summary, "p50");
    assert!((5.0..6.5).contains(&delivered), "{summary}");
    assert!(
        (-0.05..0.5).contains(&(p50 - delivered)),
        "loadgen p50 {p50} ms, server delivered {delivered} ms\n{summary}\n{text}"
    );
}

/// `serve --spin`: the server sleeps to 500 µs before each delay's end and busy-waits the rest,
/// so the delays it delivers end on time instead of a timer wake-up late (50–100 µs at the
/// median in a VM: the kernel's 50 µs timer slack plus the idle CPU's wake-up). Counted from
/// each request's arrival in the socket, so a late wake-up for the request is not added either.
#[test]
fn spin_makes_the_server_deliver_its_delay_on_time() {
    settle(TRIES, || {
        let s = serve_alone(&["--delay", "2ms", "--spin", "500us"]);
        let (r, text) = measure(&["-t1", "-c2", "-d1s", "-R100"], &s.url);
        assert!(r.requests >= 80, "{text}");
        let summary = s.stop();
        let delivered = delivered(&summary, "p50");
        check!(
            (2.0..2.04).contains(&delivered),
            "delivered p50 {delivered} ms\n{summary}"
        );
        let p50 = ms(r.p(50.0));
        check!((2.0..2.6).contains(&p50), "p50 {p50} ms\n{text}");
        Ok(())
    })
}

/// Periodic stalls: every response is held from 0.4 s + k·1 s to 0.6 s + k·1 s after server
/// start (S = 200 ms every P = 1 s). The run (D = 3 s, starting a few ms after the server)
/// contains n = 3 whole stalls. A request intended at time t inside a stall waits until the
/// stall ends, so its latency is (end − t) + base: uniform on (0, S). The share of all
/// requests slower than x (x < S) is therefore n·(S − x)/D = 3·(0.2 − x)/3 = 0.2 − x:
/// p90 (share 0.10) ≈ 100 ms, p99 (share 0.01) ≈ 190 ms, p99.9 ≈ 199 ms.
/// After a stall each connection's backlog (S·R/c = 20 requests at 100 req/s per connection)
/// drains back to back, adding about one base latency per queued request: a few ms at most.
#[test]
fn periodic_stalls() {
    settle(TRIES, || {
        let s = serve_alone(&[
            "--stall-at",
            "400ms",
            "--stall-for",
            "200ms",
            "--stall-every",
            "1s",
        ]);
        let (r, text) = measure(&["-t1", "-c10", "-d3s", "-R1000"], &s.url);
        let (n, stall, d) = (3.0, 200.0, 3000.0);
        let truth = |p: f64| stall - (1.0 - p / 100.0) * d / n; // ms
        for p in [90.0, 99.0] {
            let got = ms(r.p(p));
            let want = truth(p);
            check!(
                got >= want * 0.9 && got <= want * 1.1 + 5.0,
                "corrected p{p} {got} ms, truth {want} ms\n{text}"
            );
        }
        // A closed-loop view sees only the c in-flight requests per stall: 30 of ~3000 (1%).
        check!(ms(r.up(90.0)) < 20.0, "uncorrected p90\n{text}");
        Ok(())
    })
}

/// Bimodal: every 10th response served gets +20 ms. Truth: 90% of requests take the base
/// latency, 10% take 20 ms + base, so p50 and p75 ≈ base (well under 1 ms on loopback) and
/// p95 and p99 ≈ 20 ms. The per-connection interval (50/500 s = 100 ms) is longer than the slow
/// delay, so a slow response never delays the next request on its connection; with fewer
/// connections (interval < 20 ms) the next requests would queue behind it and the corrected
/// distribution would rightly show more than 10% slow.
#[test]
fn bimodal_slow_share() {
    settle(TRIES, || {
        let s = serve_alone(&["--slow-share", "0.1", "--slow-delay", "20ms"]);
        let (r, text) = measure(&["-t1", "-c50", "-d2s", "-R500"], &s.url);
        let (p50, p75) = (ms(r.p(50.0)), ms(r.p(75.0)));
        check!(p50 < 2.0 && p75 < 3.0, "p50 {p50} p75 {p75} ms\n{text}");
        // The report prints 50/75/90/99/…: p90 is the boundary between the modes and is not
        // checked; p99 and p99.9 fall in the slow mode. Of 1000 samples, p99.9 is the second
        // largest, so one stall of this shared VM decides it: it gets a wider margin.
        for (p, limit) in [(99.0, 24.0), (99.9, 30.0)] {
            let got = ms(r.p(p));
            check!(
                (20.0..limit).contains(&got),
                "p{p} {got} ms, truth ≈ 20 ms\n{text}"
            );
        }
        // Against what the server delivered: each connection's requests are 100 ms apart, so
        // none waits for its predecessor, and loadgen's p99 from the actual send (uncorrected:
        // this debug build's own send lag, when other tests load the CPU, is not the server's)
        // is the server's plus the way in and out.
        let summary = s.stop();
        let (got, truth) = (ms(r.up(99.0)), delivered(&summary, "p99"));
        check!(
            (-0.05..2.0).contains(&(got - truth)),
            "loadgen uncorrected p99 {got} ms, server delivered {truth} ms\n{summary}\n{text}"
        );
        Ok(())
    })
}

/// A server slower than the offered rate: `--capacity 400` serves one request at a time, each
/// taking 1/C = 2.5 ms, while the plan offers R = 500 req/s for D = 2 s. The server never idles,
/// so request j (in plan order, intended at j/R) completes at (j+1)/C and its true latency is
/// (j+1)/C − j/R = 2.5 ms + j·(1/C − 1/R) = 2.5 ms + j·0.5 ms: it grows linearly through the
/// run. Over the N = R·D planned requests, the p-quantile is at j = p·N, so
/// p50 ≈ 0.5·D·(R/C − 1) = 250 ms and p99 ≈ 0.99·D·(R/C − 1) = 495 ms.
///
/// Connections: each connection has at most one request in flight and sends its next one as
/// soon as the previous response arrives when it is behind plan. With c connections the server
/// can hold at most c queued requests; the rest of the backlog waits inside the generator, which
/// is what the corrected latency (measured from the intended time) accounts for. The truth above
/// needs the server never to idle, i.e. at least one request always queued: with c = 50 and a
/// per-connection interval of 100 ms, the queue (up to 250 ms of work at the end) spans many
/// connections and the server never waits for a round trip. With c = 1 every request would also
/// pay a loopback round trip outside the server's service time and the server would idle
/// between requests, so the achieved capacity (and the truth) would differ.
///
/// Requests planned late in the run complete after the deadline: by D the server has finished
/// only C·D = 800 of the 1000 planned. Their latency is still part of the truth; a generator
/// that drops them reports the percentiles of the first 800 only (p50 ≈ 200 ms, p99 ≈ 398 ms,
/// a 20% under-report: a coordinated omission at the end of the run). loadgen keeps sending and
/// awaiting what was planned before the deadline for a drain period (`--timeout`, 2 s: enough
/// for the 0.5 s of queue left), so all 1000 complete and the run's elapsed time covers them
/// (2.5 s). Requests/sec counts the responses per second of the window in which their
/// requests were sent: the backlog left the generator until the server had 50 (c) requests
/// left to answer, at 950/C = 2.375 s, so it is 1000/2.375 = 421 req/s, not the planned 500
/// (the server could not take them as planned) and within 5% of the capacity.
#[test]
fn server_slower_than_offered_rate() {
    settle(TRIES, || {
        let s = serve_alone(&["--capacity", "400"]);
        let (r, text) = measure(&["-t1", "-c50", "-d2s", "-R500"], &s.url);
        let (d, rate, cap) = (2.0, 500.0, 400.0);
        // Every planned request completed, over D + 0.5 s; the last sends at 2.375 s.
        assert_eq!(r.requests, (rate * d) as u64, "{text}");
        let window = (rate * d - 50.0) / cap;
        check!((r.rps - rate * d / window).abs() <= 15.0, "{text}");
        assert!(
            text.contains("connections were waiting on the server"),
            "{text}"
        );
        // The queue is visible only in the corrected view: the uncorrected latency is capped
        // at c·(1/C) = 125 ms (at most c requests queued at the server).
        check!(ms(r.up(99.0)) < 140.0 && ms(r.p(99.0)) > 400.0, "{text}");
        for p in [50.0, 90.0, 99.0] {
            let want = p / 100.0 * d * (rate / cap - 1.0) * 1e3 + 2.5; // ms
            let got = ms(r.p(p));
            check!(
                (got - want).abs() <= want * 0.1 + 5.0,
                "corrected p{p} {got} ms, truth over all planned requests {want} ms\n{text}"
            );
        }
        Ok(())
    })
}

/// A stall that outlasts the run: from 1 s on the server answers nothing. Every request planned
/// in the second half (1 s..2 s, 100 of them at 100 req/s) is unfinished: the 10 in flight time
/// out 1.5 s after they were sent and are recorded with that lower bound; the rest are still
/// waiting when the drain period (`--timeout`, 1.5 s after the deadline) ends at 3.5 s, and are
/// recorded with their lower bound, 3.5 s − intended (1.5 s to 2.4 s). The 10 that were out
/// for 1.5 s are timeouts; the 90 that their connections were too busy to send in time (or
/// sent too late in the drain period to time out) are dropped. Leaving them out would report
/// a healthy run.
#[test]
fn stall_past_the_end_is_recorded_as_lower_bounds() {
    settle(TRIES, || {
        let s = serve_alone(&["--stall-at", "1s", "--stall-for", "30s"]);
        let (r, text) = measure(
            &["-t1", "-c10", "-d2s", "-R100", "--timeout", "1500ms"],
            &s.url,
        );
        check!((95..=101).contains(&r.requests), "{text}");
        check!((8..=12).contains(&r.timeout), "{text}");
        check!((95..=105).contains(&(r.timeout + r.dropped)), "{text}");
        check!((3.4..3.7).contains(&r.seconds), "{text}");
        // 100 of the 200 recorded latencies are lower bounds: 10 at 1.5 s, then 90 spread
        // evenly from 1.5 s to 2.4 s. p75 (the 150th) is the 40th of those 90, ≈ 1.9 s.
        check!((1800.0..2100.0).contains(&ms(r.p(75.0))), "{text}");
        check!((2300.0..2600.0).contains(&ms(r.p(99.0))), "{text}");
        Ok(())
    })
}
