//! End-to-end tests of a script stuck in an endless loop (a JIT-compiled `while true do end`,
//! which no Lua hook interrupts), in each phase: its top level, `setup()`, `init()`,
//! `request()`, `response()`, `delay()` and `done()`. Ctrl-C twice always quits at once; one
//! SIGTERM ends the run (with its report when there is one) or, with nothing to report, the
//! process; and the deadline ends a run whose worker is stuck in a hook, one second after the
//! run's end, with the report of what was measured and exit code 1. Each test waits for the
//! script to say that it has reached its loop, then signals it, and is bounded to seconds.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{bin, serve, stderr, stdout};

/// What the scripts write on stderr when they reach their loop.
const MARK: &str = "entering the loop";

/// The longest a test waits for loadgen to end.
const LIMIT: Duration = Duration::from_secs(10);

/// A script file whose `phase` code is `body`, then the loop.
fn script(dir: &tempfile::TempDir, body: &str) -> String {
    let p = dir.path().join("stuck.lua");
    std::fs::write(
        &p,
        body.replace(
            "LOOP",
            &format!("io.stderr:write('{MARK}\\n') while true do end"),
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// Runs loadgen with `args`, waits until it writes [`MARK`], sends `signals` (`-INT`,
/// `-TERM`) 100 ms apart, and returns its output and how long it ran on after the mark.
fn stuck(args: &[&str], signals: &[&str]) -> (Output, Duration) {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let mut so = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let (tx, rx) = mpsc::channel();
    let se = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(se).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
        }
        all
    });
    let started = Instant::now();
    loop {
        match rx.recv_timeout(LIMIT.saturating_sub(started.elapsed())) {
            Ok(l) if l.contains(MARK) => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the script never reached its loop: {:?}", err.join());
            }
        }
    }
    let marked = Instant::now();
    let pid = child.id().to_string();
    for (i, s) in signals.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        // The process may have ended already (it is not reaped yet, so the pid is its own).
        let _ = Command::new("kill").args([*s, &pid]).status();
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if marked.elapsed() > LIMIT {
            let _ = child.kill();
            let s = child.wait().unwrap();
            let o = Output {
                status: s,
                stdout: out.join().unwrap(),
                stderr: err.join().unwrap(),
            };
            panic!("loadgen did not end: {}{}", stdout(&o), stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = marked.elapsed();
    let o = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (o, took)
}

/// Asserts that loadgen quit at once with exit code `code` and one line saying `says` (after
/// the script's own mark).
fn quit_at_once(o: &Output, took: Duration, code: i32, says: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{}{err}", stdout(o));
    assert!(took < Duration::from_secs(2), "took {took:?}: {err}");
    let ours: Vec<&str> = err.lines().filter(|l| l.starts_with("loadgen:")).collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert!(ours[0].contains(says), "{err}");
}

const TOP: &str = "LOOP\n";
const SETUP: &str = "function setup(thread)\n  LOOP\nend\n";
const DONE: &str = "function done(summary, latency, requests)\n  LOOP\nend\n";
const INIT: &str = "function init(args)\n  LOOP\nend\n";
const REQUEST: &str = "function request()\n  LOOP\nend\n";

/// The main thread's phases: nothing is measured yet (top level, setup) or the report is out
/// (done), so the first signal of either kind quits at once.
fn main_thread_phase(body: &str, signals: &[&str], code: i32, says: &str) {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, body);
    let (o, took) = stuck(&["-t1", "-c1", "-d1s", "-R20", "-s", &sc, &s.url], signals);
    quit_at_once(&o, took, code, says);
    assert!(stderr(&o).contains("stuck.lua"), "{}", stderr(&o));
    if body == DONE {
        assert!(stdout(&o).contains("requests in"), "{}", stdout(&o));
    }
}

#[test]
fn stuck_top_level_quits_on_ctrl_c_twice() {
    main_thread_phase(TOP, &["-INT", "-INT"], 130, "interrupted while loading");
}

#[test]
fn stuck_top_level_quits_on_one_sigterm() {
    main_thread_phase(TOP, &["-TERM"], 143, "interrupted while loading");
}

#[test]
fn stuck_setup_quits_on_ctrl_c_twice() {
    main_thread_phase(SETUP, &["-INT", "-INT"], 130, "interrupted in setup()");
}

#[test]
fn stuck_setup_quits_on_one_sigterm() {
    main_thread_phase(SETUP, &["-TERM"], 143, "interrupted in setup()");
}

#[test]
fn stuck_done_quits_on_ctrl_c_twice_after_the_report() {
    main_thread_phase(DONE, &["-INT", "-INT"], 130, "interrupted in done()");
}

#[test]
fn stuck_done_quits_on_one_sigterm_after_the_report() {
    main_thread_phase(DONE, &["-TERM"], 143, "interrupted in done()");
}

/// A worker's hooks: the first Ctrl-C stops the run, the second quits without the report.
fn worker_ctrl_c_twice(body: &str) {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, body);
    let (o, took) = stuck(
        &["-t1", "-c1", "-d5s", "-s", &sc, &s.url],
        &["-INT", "-INT"],
    );
    quit_at_once(
        &o,
        took,
        130,
        "interrupted again; quitting without a report",
    );
}

#[test]
fn stuck_init_quits_on_ctrl_c_twice() {
    worker_ctrl_c_twice(INIT);
}

#[test]
fn stuck_request_quits_on_ctrl_c_twice() {
    worker_ctrl_c_twice(REQUEST);
}

/// Asserts a run ended because a worker was stuck in `hook`, about a second after `when`
/// (`took` counted from the mark), with exit code 1.
fn left_behind(o: &Output, took: Duration, most: Duration, hook: &str, when: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{}{err}", stdout(o));
    assert!(took < most, "took {took:?}: {err}");
    let want = format!("stuck.lua: {hook} did not return within 1s of {when}");
    assert!(err.contains(&want), "{err}");
}

/// One SIGTERM ends a run whose worker is stuck in `request()`: one second later the run is
/// reported without that thread, and the exit code is 1.
#[test]
fn stuck_request_ends_on_one_sigterm_with_the_report() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, REQUEST);
    let (o, took) = stuck(&["-t1", "-c1", "-d30s", "-s", &sc, &s.url], &["-TERM"]);
    left_behind(
        &o,
        took,
        Duration::from_secs(3),
        "request()",
        "the interrupt",
    );
    assert!(stderr(&o).contains("; stopping"), "{}", stderr(&o));
    assert!(stdout(&o).contains("requests in"), "{}", stdout(&o));
}

/// One SIGTERM ends a run whose worker is stuck in `init()` before the run started.
#[test]
fn stuck_init_ends_on_one_sigterm() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, INIT);
    let (o, took) = stuck(&["-t1", "-c1", "-d30s", "-s", &sc, &s.url], &["-TERM"]);
    left_behind(&o, took, Duration::from_secs(3), "init()", "the interrupt");
}

/// The deadline ends a run whose worker never returns from `init()`: the run cannot start,
/// and a second after it would have ended loadgen says so (exit 1).
#[test]
fn stuck_init_ends_at_the_deadline() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, INIT);
    let (o, took) = stuck(&["-t1", "-c1", "-d1s", "-s", &sc, &s.url], &[]);
    left_behind(&o, took, Duration::from_secs(4), "init()", "the run's end");
}

/// The deadline ends a closed-loop run whose worker never returns from `request()`.
#[test]
fn stuck_request_ends_at_the_deadline_with_the_report() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, REQUEST);
    let (o, took) = stuck(&["-t1", "-c1", "-d1s", "-s", &sc, &s.url], &[]);
    left_behind(
        &o,
        took,
        Duration::from_secs(4),
        "request()",
        "the run's end",
    );
    assert!(
        stderr(&o).contains("request() did not return within 1s of the run's end; stopping"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("requests in"), "{}", stdout(&o));
}

/// Open loop: one thread of two stuck in `response()` after some requests; the deadline and
/// the drain period (--timeout) pass, and a second later the other thread's measurements
/// are reported.
#[test]
fn stuck_response_in_one_thread_ends_at_the_deadline_with_the_others_measurements() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let body = "local n = 0\nfunction response(status, headers, body)\n  n = n + 1\n  \
                if wrk.thread.id == 1 and n == 3 then LOOP end\nend\n";
    let sc = script(&dir, body);
    let (o, took) = stuck(
        &[
            "-t2",
            "-c2",
            "-d1s",
            "-R40",
            "--timeout",
            "500ms",
            "-s",
            &sc,
            &s.url,
        ],
        &[],
    );
    left_behind(
        &o,
        took,
        Duration::from_secs(4),
        "response()",
        "the run's end",
    );
    let r = crate::common::parse(&stdout(&o));
    assert!((10..=25).contains(&r.requests), "{}", stdout(&o));
}

/// The deadline ends a run stuck in `delay()`.
#[test]
fn stuck_delay_ends_at_the_deadline() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sc = script(&dir, "function delay()\n  LOOP\nend\n");
    let (o, took) = stuck(
        &[
            "-t1",
            "-c1",
            "-d1s",
            "-R10",
            "--timeout",
            "200ms",
            "-s",
            &sc,
            &s.url,
        ],
        &[],
    );
    left_behind(&o, took, Duration::from_secs(4), "delay()", "the run's end");
}
