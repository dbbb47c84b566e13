//! The timing breakdown (`--timing`, JSON `timing.*`, `--slo waiting.p99…`): waiting matches
//! a server's known delay, every connection's connect and TLS handshake is recorded, and per
//! request sending + waiting + receiving is its uncorrected latency; the phases survive
//! `report` and add up exactly in `merge`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{run, serve, serve_alone, stderr, stdout};

const LIMIT: Duration = Duration::from_secs(30);

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn count(doc: &Value, phase: &str) -> u64 {
    doc["timing"][phase]["count"].as_u64().unwrap()
}

fn mean(doc: &Value, phase: &str) -> f64 {
    doc["timing"][phase]["mean"].as_f64().unwrap()
}

/// Checks what every run's breakdown must hold: one sending, waiting and receiving value per
/// response, and their means adding up to the uncorrected latency's mean, within 2%. Each
/// phase is cut to whole µs on its own, so the sum may fall short by up to 3 µs a request:
/// that much is allowed too, for runs whose latency is a few hundred µs. A phase recorded
/// wrongly misses by far more.
fn phases_add_up(doc: &Value) {
    let requests = doc["requests"].as_u64().unwrap();
    assert!(requests > 0);
    for p in ["sending", "waiting", "receiving"] {
        assert_eq!(count(doc, p), requests, "{p}");
    }
    let sum = mean(doc, "sending") + mean(doc, "waiting") + mean(doc, "receiving");
    let unc = doc["latency"]["uncorrected"]["mean"].as_f64().unwrap();
    assert!(
        (sum - unc).abs() <= (0.02 * unc).max(3.0),
        "sending + waiting + receiving = {sum:.1} µs, uncorrected mean {unc:.1} µs"
    );
    assert_eq!(count(doc, "dns"), 1);
}

/// Against a server that holds every response 20 ms, the time to first byte is those 20 ms:
/// its median within 5% (the server's own work and loopback add tens of µs; the rate, 25
/// requests/s a connection, never queues a request behind another). The threshold on it
/// passes and is a JUnit case; `report --timing` prints the block from the file, and a merge
/// of two results adds the phase histograms exactly.
#[test]
fn waiting_is_the_servers_delay() {
    let s = serve_alone(&["--delay", "20ms"]);
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r.json");
    let junit = dir.path().join("junit.xml");
    let out = run(
        &[
            "-t1",
            "-c4",
            "-d3s",
            "-R100",
            "--timing",
            "--slo",
            "waiting.p99<=50ms",
            "--slo",
            "connecting.p99<=1s",
            "--json",
            r.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            &s.url,
        ],
        LIMIT,
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let doc = read_json(&r);
    let p50 = doc["timing"]["waiting"]["p50"].as_f64().unwrap();
    assert!(
        (19_000.0..=21_000.0).contains(&p50),
        "waiting p50 {p50} µs against a 20 ms delay\n{text}"
    );
    phases_add_up(&doc);
    // Every connection was opened before the run and kept: one connect each, no TLS.
    assert_eq!(count(&doc, "connecting"), 4, "{text}");
    assert_eq!(count(&doc, "tls_handshaking"), 0);
    assert!(text.contains("  Timing breakdown"), "{text}");
    for p in ["dns", "connecting", "sending", "waiting", "receiving"] {
        assert!(text.contains(&format!("    {p}.")), "{p}: {text}");
    }
    assert!(!text.contains("tls_handshaking."), "{text}");
    assert_eq!(doc["thresholds"]["passed"], true);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("waiting.p99&lt;=50ms"), "{xml}");
    assert!(xml.contains("connecting.p99&lt;=1s"), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");

    // Read back: the same text, block included (the run had --timing).
    let again = run(&["report", r.to_str().unwrap()], LIMIT);
    assert_eq!(stdout(&again), text);
    // A merge of the result with itself: every phase's histogram is twice the input's.
    let m = dir.path().join("m.json");
    let r_s = r.to_str().unwrap();
    let merged = run(&["merge", r_s, r_s, "--json", m.to_str().unwrap()], LIMIT);
    assert!(merged.status.success(), "{}", stderr(&merged));
    let mdoc = read_json(&m);
    for p in [
        "dns",
        "connecting",
        "tls_handshaking",
        "sending",
        "waiting",
        "receiving",
    ] {
        assert_eq!(count(&mdoc, p), 2 * count(&doc, p), "{p}");
        let (a, b) = (&doc["timing"][p], &mdoc["timing"][p]);
        for f in ["min", "max", "p50", "p99", "p99.9", "mean"] {
            assert_eq!(a[f], b[f], "{p}.{f}");
        }
    }
    // A threshold on a phase the run did not have is not met, and says why.
    let none = run(&["report", r_s, "--slo", "tls_handshaking.p99<1s"], LIMIT);
    assert_eq!(none.status.code(), Some(3), "{}", stdout(&none));
    assert!(
        stderr(&none).contains("no TLS handshakes"),
        "{}",
        stderr(&none)
    );
}

/// Over TLS every connection the load opens has its TCP connect and its handshake recorded
/// (those opened before the run, and those reopened after the server closed them), and a
/// handshake takes longer than the connect before it (a round trip more, and the
/// certificate's signature checked). The phases still add up to the uncorrected latency.
#[test]
fn tls_connections_record_connect_and_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let cert_s = cert.to_str().unwrap();
    // The server closes each connection after 5 responses: the run reopens them.
    let s = serve(&["--tls", "--cert-out", cert_s, "--close-every", "5"]);
    let r = dir.path().join("r.json");
    let out = run(
        &[
            "-t1",
            "-c4",
            "-d2s",
            "-R100",
            "--cacert",
            cert_s,
            "--slo",
            "tls_handshaking.p50<1us",
            "--json",
            r.to_str().unwrap(),
            &s.url,
        ],
        LIMIT,
    );
    // The deliberately impossible threshold fails the run (exit 3), with the handshakes'
    // median named.
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("tls_handshaking.p50 = "),
        "{}",
        stderr(&out)
    );
    let doc = read_json(&r);
    let requests = doc["requests"].as_u64().unwrap();
    assert_eq!(doc["errors"]["total"], 0, "{}", stdout(&out));
    assert!(requests >= 150, "{}", stdout(&out));
    let (conns, tls) = (count(&doc, "connecting"), count(&doc, "tls_handshaking"));
    assert_eq!(conns, tls, "one handshake per connection");
    // Each connection serves at most 5 responses, and each but the last of its slot's
    // chain exactly 5: requests/5 connections at least, 4 more (the last ones) at most.
    let least = requests.div_ceil(5);
    assert!(
        (least..=least + 4).contains(&conns),
        "{conns} connections for {requests} responses at 5 each"
    );
    let (c, h) = (mean(&doc, "connecting"), mean(&doc, "tls_handshaking"));
    assert!(h > c, "handshake mean {h} µs, connect mean {c} µs");
    phases_add_up(&doc);

    // Without reconnects: exactly one connect and handshake per connection, all opened
    // before the run.
    let s = serve(&["--tls", "--cert-out", cert_s]);
    let out = run(
        &[
            "-t1",
            "-c3",
            "-d1s",
            "-R60",
            "--insecure",
            "--json",
            r.to_str().unwrap(),
            &s.url,
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = read_json(&r);
    assert_eq!(count(&doc, "connecting"), 3);
    assert_eq!(count(&doc, "tls_handshaking"), 3);
    phases_add_up(&doc);
}

/// Over HTTP/2 (h2c, several streams a connection) the breakdown holds the same: the time to
/// first byte is the server's 20 ms delay (median within 5%), and per request sending +
/// waiting + receiving is its uncorrected latency. h2 writes frames on its own task, so
/// sending ends when the request is handed over (docs/timing.md); the sum is exact either way.
#[test]
fn waiting_is_the_servers_delay_over_h2c() {
    let s = serve_alone(&["--delay", "20ms"]);
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r.json");
    let out = run(
        &[
            "--http2",
            "--streams",
            "4",
            "-t1",
            "-c2",
            "-d3s",
            "-R100",
            "--timing",
            "--json",
            r.to_str().unwrap(),
            &s.url,
        ],
        LIMIT,
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("h2c"), "{text}");
    let doc = read_json(&r);
    assert_eq!(doc["errors"]["total"], 0, "{text}");
    let p50 = doc["timing"]["waiting"]["p50"].as_f64().unwrap();
    assert!(
        (19_000.0..=21_000.0).contains(&p50),
        "waiting p50 {p50} µs against a 20 ms delay\n{text}"
    );
    phases_add_up(&doc);
    // One connect per connection, all opened before the run.
    assert_eq!(count(&doc, "connecting"), 2, "{text}");
    assert!(text.contains("    waiting."), "{text}");
}
