//! Shared helpers: start the built-in server (`loadgen serve`) as a child process on a free
//! loopback port, run the loadgen binary, and pick numbers out of its wrk2-style report.

#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Tests run in parallel on a 2-core CI machine. Tests whose assertions are about timing
/// (latency percentiles against a known truth) take this lock exclusively with [`alone`], so
/// that no other load test shares the CPU with them; every other test that starts a server
/// takes it shared (in [`serve`]), once per test thread. std's lock is writer-preferring, so
/// a waiting timing test is not starved by the others.
static LOAD: RwLock<()> = RwLock::new(());

enum Held {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

thread_local! {
    /// The guard this test thread holds; released when the test's thread ends (libtest runs
    /// each test on its own thread) or when [`alone`] upgrades it.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Makes the calling test run with no other load test beside it, until it ends.
pub fn alone() {
    HELD.with(|h| {
        // Drop a shared guard first (only possible with --test-threads=1, where tests share
        // the main thread), or the write lock would wait for ourselves.
        if matches!(*h.borrow(), Some(Held::Alone(_))) {
            return;
        }
        *h.borrow_mut() = None;
        let g = LOAD.write().unwrap_or_else(|e| e.into_inner());
        *h.borrow_mut() = Some(Held::Alone(g));
    });
}

/// Takes the load lock shared for the calling test, unless it already holds it: a test that
/// starts no server but keeps a CPU busy (the property tests) calls it too, so that it never
/// runs beside a timing test.
pub fn shared() {
    HELD.with(|h| {
        if h.borrow().is_none() {
            let g = LOAD.read().unwrap_or_else(|e| e.into_inner());
            *h.borrow_mut() = Some(Held::Shared(g));
        }
    });
}

/// Path of the binary under test. Whoever runs it takes the load lock shared (see
/// [`shared`]): a loadgen process under a test is load, even against a server of the test's
/// own, and must not run beside a timing test.
pub fn bin() -> &'static str {
    shared();
    env!("CARGO_BIN_EXE_loadgen")
}

/// A `loadgen serve` child process; killed on drop.
pub struct Server {
    child: Child,
    /// The rest of its standard output, after the "listening on" line.
    out: Option<BufReader<ChildStdout>>,
    /// `http://127.0.0.1:PORT/` (or https).
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `loadgen serve --listen 127.0.0.1:0 <knobs>` and waits for its "listening on" line.
pub fn serve(knobs: &[&str]) -> Server {
    shared();
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1"])
        .args(knobs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start loadgen serve");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).expect("read listening line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
        .to_string();
    let addr = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    Server {
        child,
        out: Some(out),
        url,
        addr,
    }
}

impl Server {
    /// The server process's id (for `--watch-pid`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server as an operator would (SIGTERM) and returns what it printed on the way
    /// out (its service-time summary). Panics if it has not exited within 10 s (it is then
    /// killed on drop).
    pub fn stop(mut self) -> String {
        // SAFETY: plain syscall on our own child's pid, which `self.child` has not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let mut out = self.out.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = out.read_to_string(&mut rest);
            let _ = tx.send(rest);
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("server did not exit on SIGTERM within 10 s")
    }
}

/// [`serve`] for a test whose assertions are about timing: it runs with no other load test
/// beside it (see [`alone`]).
pub fn serve_alone(knobs: &[&str]) -> Server {
    alone();
    serve(knobs)
}

/// How many runs a timing test gets ([`settle`]): a burst of the host's steal can last several
/// seconds and spoil a few short runs in a row, while a real fault fails them all.
pub const TRIES: usize = 5;

/// Runs a timing `attempt` up to `tries` times and returns the first that passes; panics with
/// every attempt's complaint when none does. CI's two cores are shared with other machines,
/// and a burst of the host's steal (tens of ms with no CPU) moves a percentile or a per-second
/// count of one run; such a burst rarely hits three runs in a row, while a real fault fails
/// them all. Only the assertions about timing go inside the attempt; the rest are asserted once.
///
/// After a failed attempt it pauses 1 s, then 2, 4, at most 8 s (the lock stays held): a spell
/// of steal lasts seconds to minutes, and the next attempt should not be spent inside it.
pub fn settle<T>(tries: usize, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let mut seen = Vec::new();
    for i in 0..tries {
        match attempt() {
            Ok(v) => return v,
            Err(e) => seen.push(e),
        }
        if i + 1 < tries {
            std::thread::sleep(Duration::from_secs(1 << i.min(3)));
        }
    }
    panic!("{} attempts failed:\n{}", tries, seen.join("\n---\n"))
}

/// Inside a [`settle`] attempt: `assert!` that returns the complaint as `Err` instead of
/// panicking, so that the attempt can be repeated.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        let ok: bool = $cond;
        if !ok {
            return Err(format!($($msg)+));
        }
    };
}

/// A figure `stat` (`"mean"`, `"p50"`, `"p99"`…), in ms, from the summary `loadgen serve`
/// prints when it stops: `served N responses; service time mean 3.02ms, p50 5.13ms, …`.
pub fn delivered(summary: &str, stat: &str) -> f64 {
    summary
        .split(&format!(" {stat} "))
        .nth(1)
        .and_then(|t| t.split(',').next())
        .map(|v| time_us(v.trim()) / 1e3)
        .unwrap_or_else(|| panic!("no {stat} in {summary:?}"))
}

/// A loopback port with nothing listening on it.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs loadgen with `args` (killed after `limit`) and returns its output.
pub fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait loadgen") {
            break s;
        }
        if Instant::now() >= deadline {
            // Past the limit: kill it so the test fails instead of hanging. (The child is not
            // reaped yet, so its pid cannot belong to anything else.)
            let _ = child.kill();
            break child.wait().expect("wait loadgen");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses a wrk time such as `832.76us`, `2.17ms`, `1.02s` into microseconds.
pub fn time_us(s: &str) -> f64 {
    let s = s.trim();
    for (suffix, mult) in [("us", 1.0), ("ms", 1e3), ("s", 1e6)] {
        if let Some(v) = s.strip_suffix(suffix) {
            return v.parse::<f64>().unwrap() * mult;
        }
    }
    panic!("not a time: {s:?}")
}

/// Numbers from a wrk2-style report.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub non2xx: u64,
    /// "Dropped: N planned requests …".
    pub dropped: u64,
    /// "Reconnects: N (…)".
    pub reconnects: u64,
    /// Of `connect`: "connect N (M timed out)".
    pub connect_timeout: u64,
    /// Corrected ("Recorded Latency") percentiles: (percentile, µs).
    pub corrected: Vec<(f64, f64)>,
    /// Uncorrected percentiles, with -U.
    pub uncorrected: Vec<(f64, f64)>,
}

impl Report {
    /// The corrected latency at percentile `p` (one of 50, 75, 90, 99, 99.9, …), in µs.
    pub fn p(&self, p: f64) -> f64 {
        self.corrected
            .iter()
            .find(|(q, _)| *q == p)
            .expect("percentile")
            .1
    }
    /// The uncorrected latency at percentile `p`, in µs.
    pub fn up(&self, p: f64) -> f64 {
        self.uncorrected
            .iter()
            .find(|(q, _)| *q == p)
            .expect("percentile")
            .1
    }
}

/// Parses the report text.
pub fn parse(text: &str) -> Report {
    let mut r = Report::default();
    let mut section = 0;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Latency Distribution (HdrHistogram - Recorded") {
            section = 1;
        } else if t.starts_with("Latency Distribution (HdrHistogram - Uncorrected") {
            section = 2;
        } else if let Some(rest) = t.strip_suffix(" read") {
            // "N requests in 2.00s, 1.2MB read"
            let mut it = rest.split_whitespace();
            r.requests = it.next().unwrap().parse().unwrap();
            it.next(); // requests
            it.next(); // in
            r.seconds = time_us(it.next().unwrap().trim_end_matches(',')) / 1e6;
        } else if let Some(rest) = t.strip_prefix("Socket errors: ") {
            // "connect 9 (9 timed out), read 3 (reason), write 0, timeout 0"
            for part in rest.split(", ") {
                let mut words = part.split_whitespace();
                let (Some(k), Some(Ok(v))) = (words.next(), words.next().map(str::parse::<u64>))
                else {
                    continue;
                };
                if k == "connect" {
                    if let Some(t) = part.split_once('(').and_then(|(_, x)| {
                        x.strip_suffix(" timed out)").and_then(|n| n.parse().ok())
                    }) {
                        r.connect_timeout = t;
                    }
                }
                match k {
                    "connect" => r.connect = v,
                    "read" => r.read = v,
                    "write" => r.write = v,
                    "timeout" => r.timeout = v,
                    _ => {}
                }
            }
        } else if let Some(rest) = t.strip_prefix("Dropped: ") {
            r.dropped = rest.split(' ').next().unwrap().parse().unwrap();
        } else if let Some(rest) = t.strip_prefix("Reconnects: ") {
            r.reconnects = rest.split(' ').next().unwrap().parse().unwrap();
        } else if let Some(rest) = t.strip_prefix("Non-2xx or 3xx responses: ") {
            r.non2xx = rest.parse().unwrap();
        } else if let Some(rest) = t.strip_prefix("Requests/sec:") {
            r.rps = rest.trim().parse().unwrap();
        } else if section > 0 && t.contains('%') && !t.starts_with('#') {
            if let Some((p, v)) = t.split_once('%') {
                if let Ok(p) = p.trim().parse::<f64>() {
                    let entry = (p, time_us(v));
                    if section == 1 {
                        r.corrected.push(entry);
                    } else {
                        r.uncorrected.push(entry);
                    }
                }
            }
        }
    }
    r
}

/// One HTTP/1.1 request on a fresh loopback connection (`Connection: close`); returns the
/// status code, the head (lower-cased) and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// N from the report's note "N planned requests were unfinished when the run stopped; …".
pub fn unfinished_noted(text: &str) -> Option<i64> {
    text.split("Note: ").find_map(|note| {
        let (n, rest) = note.split_once(' ')?;
        rest.starts_with("planned request")
            .then(|| n.parse().ok())?
    })
}

/// Runs loadgen with `args`, sends it `signal` (`-INT`, `-TERM`) after `after`, and returns
/// what it printed once it has ended.
pub fn run_signalled(args: &[&str], signal: &str, after: Duration) -> Output {
    let child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    assert!(killed.unwrap().success());
    child.wait_with_output().unwrap()
}
