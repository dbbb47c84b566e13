//! `--dashboard`: the live page of a run. A plain TCP client reads the server-sent events
//! (one snapshot a second, growing, on through a server stall, then the final report);
//! headless Chromium renders the page during the run with every chart drawn from live data;
//! a port in use is a usage error before the run; `--dashboard-linger` keeps the final report
//! up after the run, then the process exits. Every dashboard listens on 127.0.0.1:0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{bin, dead_port, serve, serve_alone};
use crate::html::{assert_rendered, dom_of};

/// A loadgen run whose stderr lines are read as they come, each with when it came.
struct Loadgen {
    child: Child,
    lines: Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Loadgen {
    fn start(args: &[&str]) -> Loadgen {
        let mut child = Command::new(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start loadgen");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(|l| l.ok()) {
                let _ = tx.send((Instant::now(), l));
            }
        });
        Loadgen {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line containing `what` (panics after `limit`).
    fn wait_line(&mut self, what: &str, limit: Duration) -> (Instant, String) {
        if let Some(l) = self.seen.iter().find(|(_, l)| l.contains(what)) {
            return l.clone();
        }
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.1.contains(what) {
                        return l;
                    }
                }
                Err(_) => panic!("no {what:?} on stderr in {limit:?}: {:?}", self.seen),
            }
        }
    }

    /// The dashboard's `127.0.0.1:PORT`, from the URL printed on stderr.
    fn dashboard(&mut self) -> String {
        let (_, l) = self.wait_line("dashboard at http://", Duration::from_secs(20));
        let url = l.split("dashboard at ").nth(1).unwrap();
        url.trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }

    /// Waits for the process to exit (killed after `limit`): its status and when it ended.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, Instant) {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, Instant::now());
            }
            assert!(
                Instant::now() < end,
                "loadgen still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A GET of `path` from `addr` with a plain TCP client: the response's body.
fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    r[r.find("\r\n\r\n").unwrap() + 4..].to_string()
}

/// One server-sent event: when it came, whether it was the final report, its snapshot.
struct Event {
    at: Instant,
    last: bool,
    data: Value,
}

/// Reads `/events` from `addr` until the final report (or `limit`, or the end of the stream).
/// The body is chunked; each event is one chunk, so its lines are whole lines of the stream.
fn events(addr: &str, limit: Duration) -> Vec<Event> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let end = Instant::now() + limit;
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut last = false;
    let mut line = String::new();
    while Instant::now() < end {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let l = line.trim_end();
        if l.eq_ignore_ascii_case("content-type: text/event-stream") {
            continue;
        }
        if l == "event: final" {
            last = true;
        } else if let Some(json) = l.strip_prefix("data: ") {
            out.push(Event {
                at: Instant::now(),
                last,
                data: serde_json::from_str(json).unwrap(),
            });
            if last {
                break;
            }
        }
    }
    out
}

fn seconds(d: &Value) -> usize {
    d["series"]["x"].as_array().unwrap().len()
}

fn last_achieved(d: &Value) -> Option<u64> {
    d["series"]["achieved"].as_array().unwrap().last()?.as_u64()
}

#[test]
fn events_come_every_second_through_a_stall_then_the_final_report() {
    // The server holds every response from 1.5 s to 3.5 s after its start: two seconds
    // without a response, in which nothing but the clock closes a second.
    let s = serve_alone(&["--stall-at", "1500ms", "--stall-for", "2s"]);
    let mut lg = Loadgen::start(&[
        "-t1",
        "-c8",
        "-R200",
        "-d6s",
        "--dashboard=127.0.0.1:0",
        "--dashboard-linger",
        "1s",
        &s.url,
    ]);
    let addr = lg.dashboard();
    let ev = events(&addr, Duration::from_secs(20));
    let (status, _) = lg.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: {:?}", lg.seen);
    let live: Vec<&Event> = ev.iter().filter(|e| !e.last).collect();
    let fin = ev.last().filter(|e| e.last).expect("no final report");
    // A 6 s run shows 6 or 7 seconds, one event each (the first event is the snapshot at
    // connecting, which may hold none yet).
    assert!(live.len() >= 5, "{} live events", live.len());
    let n: Vec<usize> = live.iter().map(|e| seconds(&e.data)).collect();
    assert!(n.windows(2).all(|w| w[1] > w[0]), "not growing: {n:?}");
    // Each arrives about a second after the one before: a second closes on the clock, plus
    // at most the collector's 300 ms grace. 2.5 s of slack: this 2-core host can stall a
    // process for a second or more, but a second that waited for the stall's end would arrive
    // up to 2 s late and leave the next gap near zero (checked below).
    let gaps: Vec<Duration> = live.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(2500)),
        "{gaps:?}"
    );
    assert!(
        live.windows(2)
            .any(|w| seconds(&w[1].data) == seconds(&w[0].data) + 1
                && w[1].at - w[0].at >= Duration::from_millis(500)),
        "no two updates a second apart: {n:?} {gaps:?}"
    );
    // The stall: a second with no response, shown while the stall lasted (the next event
    // came at least half a second later, not with it).
    let stalled = live
        .iter()
        .position(|e| last_achieved(&e.data) == Some(0))
        .unwrap_or_else(|| panic!("no stalled second: {n:?}"));
    let next = live
        .get(stalled + 1)
        .expect("no event after the stalled second");
    assert!(
        next.at - live[stalled].at >= Duration::from_millis(500),
        "the stalled second came with the next one: {gaps:?}"
    );
    // The live snapshots are the page's data: a live title, the live note, the charts'
    // columns (planned beside achieved).
    let d = &live[stalled].data;
    assert!(d["title"].as_str().unwrap().starts_with("loadgen (live): "));
    assert!(d["notes"][0].as_str().unwrap().starts_with("Live: "), "{d}");
    assert_eq!(d["series"]["planned"].as_array().unwrap().len(), seconds(d));
    // The final report is the run's: its text report and every second.
    let f = &fin.data;
    assert!(f["title"].as_str().unwrap().starts_with("loadgen: "), "{f}");
    assert!(f["text"].as_str().unwrap().contains("Requests/sec"), "{f}");
    assert!(seconds(f) >= 6, "{f}");
    assert!(!f["spectrum"]["uncorrected"].as_array().unwrap().is_empty());
}

#[test]
fn chromium_renders_the_live_page_during_the_run() {
    let s = serve(&[]);
    let mut lg = Loadgen::start(&[
        "-t1",
        "-c4",
        "-R200",
        "-d10s",
        "--dashboard=127.0.0.1:0",
        &s.url,
    ]);
    let addr = lg.dashboard();
    // Wait until the run has shown two seconds.
    let t0 = Instant::now();
    loop {
        let d: Value = serde_json::from_str(&get(&addr, "/data.json")).unwrap();
        if seconds(&d) >= 2 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "no seconds: {d}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let dom = dom_of(&format!("http://{addr}/"));
    let charts = assert_rendered(&dom, 5);
    // Drawn from live data: the run was still going (the live title and note are rendered).
    assert!(
        dom.contains("<h1>loadgen (live): "),
        "{}",
        &dom[..2000.min(dom.len())]
    );
    assert!(dom.contains("<li>Live: "));
    assert_eq!(charts[0].0, "rate");
    let (status, _) = lg.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {:?}", lg.seen);
}

#[test]
fn a_dashboard_port_in_use_is_a_usage_error_before_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{}/", dead_port());
    let t0 = Instant::now();
    let out = Command::new(bin())
        .args(["-d1s", &format!("--dashboard=127.0.0.1:{port}"), &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("--dashboard: cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    // Before the run: no report, and no wait for the dead target.
    assert!(out.stdout.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(5));
    for bad in ["--dashboard=nowhere", "--dashboard=127.0.0.1:99999"] {
        let out = Command::new(bin()).args([bad, &url]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
}

#[test]
fn linger_keeps_the_final_report_up_then_exits() {
    let s = serve(&[]);
    let mut lg = Loadgen::start(&[
        "-t1",
        "-c2",
        "-R100",
        "-d1s",
        "--dashboard=127.0.0.1:0",
        "--dashboard-linger",
        "2s",
        &s.url,
    ]);
    let addr = lg.dashboard();
    let (lingering, _) = lg.wait_line("for 2s more", Duration::from_secs(20));
    let d: Value = serde_json::from_str(&get(&addr, "/data.json")).unwrap();
    assert!(d["title"].as_str().unwrap().starts_with("loadgen: "), "{d}");
    assert!(d["text"].as_str().unwrap().contains("Requests/sec"));
    let page = get(&addr, "/");
    assert!(page.contains("new EventSource('events')"));
    // A client connecting now gets the final report at once, and the stream ends after it.
    let ev = events(&addr, Duration::from_secs(5));
    assert_eq!(ev.len(), 1);
    assert!(ev[0].last);
    let (status, ended) = lg.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    // It stayed for the linger (printed just before it began), and not much longer: 3 s of
    // slack for a slow host.
    let stayed = ended - lingering;
    assert!(
        stayed >= Duration::from_millis(1800) && stayed <= Duration::from_secs(5),
        "{stayed:?}"
    );
}

#[test]
fn find_shows_each_step_as_it_finishes() {
    let s = serve(&[]);
    let mut lg = Loadgen::start(&[
        "find",
        "-t1",
        "-c4",
        "--start",
        "200",
        "--max",
        "400",
        "--step-duration",
        "1s",
        "--confirm",
        "0",
        "--slo",
        "p99<=1s",
        "--dashboard=127.0.0.1:0",
        "--dashboard-linger",
        "1s",
        &s.url,
    ]);
    let addr = lg.dashboard();
    let ev = events(&addr, Duration::from_secs(30));
    let (status, _) = lg.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {:?}", lg.seen);
    let fin = ev.last().filter(|e| e.last).expect("no final page");
    assert_eq!(fin.data["kind"], "find");
    let steps = |d: &Value| d["steps"].as_array().unwrap().len();
    assert_eq!(steps(&fin.data), 2, "{}", fin.data);
    assert!(fin.data["header"][0]
        .as_str()
        .unwrap()
        .starts_with("outcome: found"));
    // Before it, the pages of the search going on, one more step each.
    let live: Vec<usize> = ev
        .iter()
        .filter(|e| !e.last)
        .map(|e| steps(&e.data))
        .collect();
    assert!(
        !live.is_empty() && live.windows(2).all(|w| w[1] == w[0] + 1),
        "{live:?}"
    );
    let first = &ev[0].data;
    assert!(first["header"][0]
        .as_str()
        .unwrap()
        .starts_with("searching: "));
}
