//! The live view: `--progress` prints one line a second on stderr (also through a server
//! stall: seconds close on the clock), `-q` silences it, stdout carries only the report; and
//! `--watch-pid` samples a process' CPU and memory, agreeing with `/proc/PID/stat` read
//! before and after the run.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{bin, run, serve, serve_alone, stderr, stdout};

const LIMIT: Duration = Duration::from_secs(30);

/// Whether `l` is a progress line (`3s/5s  200/200 req/s  p50 …`).
fn is_progress(l: &str) -> bool {
    l.contains(" req/s  p50 ") && l.contains("  lag p99 ")
}

/// Runs loadgen with `args` and returns its stdout and its stderr lines, each with the time
/// since the start at which it arrived.
fn run_timed(args: &[&str]) -> (String, Vec<(Duration, String)>, bool) {
    let start = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let mut out = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    for l in err.lines() {
        let Ok(l) = l else { break };
        lines.push((start.elapsed(), l));
        assert!(start.elapsed() < LIMIT, "loadgen ran past {LIMIT:?}");
    }
    let ok = child.wait().expect("wait loadgen").success();
    (out.join().unwrap(), lines, ok)
}

/// The `Ns` elapsed figure at the start of a progress line.
fn elapsed_of(l: &str) -> u64 {
    l.split('s').next().unwrap().trim().parse().unwrap()
}

/// The achieved rate of a progress line (`A/P req/s`).
fn achieved_of(l: &str) -> u64 {
    let rate = l.split("  ").nth(1).unwrap();
    rate.split('/').next().unwrap().parse().unwrap()
}

#[test]
fn progress_prints_a_line_every_second_through_a_stall() {
    // The server holds every response from 1.5 s to 3.5 s after its start: two seconds
    // without a single response, in which a second closed by the next response would print
    // nothing.
    let s = serve_alone(&["--stall-at", "1500ms", "--stall-for", "2s"]);
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("r.json");
    let (out, lines, ok) = run_timed(&[
        "-t2",
        "-c8",
        "-R400",
        "-d6s",
        "--progress",
        "--json",
        j.to_str().unwrap(),
        &s.url,
    ]);
    assert!(ok, "{lines:?}");
    // Seconds closed on the clock still make the JSON series as before: one entry per
    // wall-clock second, without gaps, adding up to the run's responses.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let series = doc["series"].as_array().unwrap();
    let sum: u64 = series.iter().map(|x| x["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, doc["requests"].as_u64().unwrap());
    for w in series.windows(2) {
        assert_eq!(w[1]["t"].as_u64(), w[0]["t"].as_u64().map(|t| t + 1));
    }
    assert!(out.starts_with("Running 6s test @"), "{out}");
    assert!(!out.lines().any(is_progress), "progress on stdout: {out}");
    let progress: Vec<&(Duration, String)> = lines.iter().filter(|(_, l)| is_progress(l)).collect();
    // A 6 s run overlaps 6 or 7 wall-clock seconds; the one that ends after the run is not
    // shown when every thread ended before it closed.
    assert!(
        (6..=7).contains(&progress.len()),
        "{} lines: {progress:?}",
        progress.len()
    );
    let elapsed: Vec<u64> = progress.iter().map(|(_, l)| elapsed_of(l)).collect();
    for w in elapsed.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{elapsed:?}");
    }
    // Each line arrives about a second after the one before (a second closes on the clock,
    // plus at most the collector's grace). 2 s of slack: this 2-core host can stall a
    // process for a second or more, but a second that waited for the stall's end would
    // arrive up to 2 s late *and* leave the next gap near zero.
    for w in progress.windows(2) {
        let gap = w[1].0.saturating_sub(w[0].0);
        assert!(
            gap <= Duration::from_millis(2500),
            "{gap:?} between lines: {progress:?}"
        );
    }
    // The stall shows as seconds with no responses, printed while it lasted: at least one
    // line with nothing achieved, and more than one second before the line after the stall.
    let stalled = progress
        .iter()
        .position(|(_, l)| achieved_of(l) == 0)
        .unwrap_or_else(|| panic!("no stalled second: {progress:?}"));
    let resumed = progress[stalled..]
        .iter()
        .find(|(_, l)| achieved_of(l) > 0)
        .unwrap_or_else(|| panic!("no second after the stall: {progress:?}"));
    assert!(
        resumed.0.saturating_sub(progress[stalled].0) >= Duration::from_millis(500),
        "the stalled second was printed with the next one: {progress:?}"
    );
    // The line after the stall carries the stalled requests' corrected latency (seconds).
    assert!(
        progress
            .iter()
            .any(|(_, l)| l.contains("p99 1.") || l.contains("p99 2.")),
        "{progress:?}"
    );
}

#[test]
fn quiet_silences_progress_and_stdout_has_only_the_report() {
    let s = serve(&[]);
    let out = run(
        &["-q", "--progress", "-t1", "-c2", "-R100", "-d2s", &s.url],
        LIMIT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).lines().any(is_progress), "{}", stderr(&out));
    assert!(!stdout(&out).lines().any(is_progress), "{}", stdout(&out));
    // Without --progress, on a pipe, there is no progress either.
    let out = run(&["-t1", "-c2", "-R100", "-d2s", &s.url], LIMIT);
    assert!(!stderr(&out).lines().any(is_progress), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Running 2s test @"), "{text}");
    assert!(!text.lines().any(is_progress), "{text}");
}

/// User + system CPU time of `pid`, ns, from `/proc/PID/stat`.
fn proc_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000_000 / hz
}

#[test]
fn watch_pid_cpu_agrees_with_proc_stat_before_and_after() {
    // Each response busy-waits its 2 ms delay: at 150 req/s the server is about 30% busy.
    let s = serve_alone(&["--delay", "2ms", "--spin", "2ms"]);
    let pid = s.pid();
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("r.json");
    let before = (Instant::now(), proc_cpu_ns(pid));
    let out = run(
        &[
            "-t1",
            "-c4",
            "-R150",
            "-d4s",
            "--watch-pid",
            &pid.to_string(),
            "--json",
            j.to_str().unwrap(),
            &s.url,
        ],
        LIMIT,
    );
    let after = (Instant::now(), proc_cpu_ns(pid));
    assert!(out.status.success(), "{}", stderr(&out));
    let truth = (after.1 - before.1) as f64 * 100.0 / (after.0 - before.0).as_nanos() as f64;
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let w = &doc["watch"][0];
    assert_eq!(w["pid"], pid);
    assert_eq!(w["name"], "loadgen");
    assert_eq!(w["exited"], false);
    let avg = w["cpu"]["avg_pct"].as_f64().unwrap();
    // The watch covers the run, the reference the whole process (its start-up too, when the
    // server idles): within 5 percentage points, as the issue asks.
    assert!(
        (avg - truth).abs() <= 5.0,
        "watch avg {avg:.1}% vs /proc {truth:.1}%"
    );
    assert!(truth > 10.0, "the server did not work: {truth:.1}%");
    let series = w["series"].as_array().unwrap();
    assert!((3..=6).contains(&series.len()), "{series:?}");
    assert!(w["cpu"]["max_pct"].as_f64().unwrap() >= avg - 1.0);
    assert!(w["rss_max_bytes"].as_u64().unwrap() > 1_000_000);
    // The report line, and `loadgen report` prints it again.
    let text = stdout(&out);
    let line = format!("Server: pid {pid} (loadgen): CPU avg ");
    assert!(text.contains(&line), "{text}");
    let again = run(&["report", j.to_str().unwrap()], LIMIT);
    assert_eq!(stdout(&again), text);
}

#[test]
fn watch_pid_that_goes_away_is_a_note_and_a_missing_one_a_usage_error() {
    let s = serve(&[]);
    let pid = s.pid();
    let url = s.url.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        drop(s); // kills the server
    });
    let out = run(
        &[
            "-t1",
            "-c2",
            "-R100",
            "-d3s",
            "--timeout",
            "500ms",
            "--watch-pid",
            &pid.to_string(),
            &url,
        ],
        LIMIT,
    );
    killer.join().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!("Server: pid {pid} (loadgen)"))
            && text.contains("exited during the run"),
        "{text}"
    );

    let out = run(&["--watch-pid", "999999999", "-d1s", &url], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--watch-pid 999999999"), "{err}");
}

#[test]
fn find_shows_its_steps_in_the_progress_lines() {
    // Every step fails (p99 ≥ 50 ms): one 2 s step, shown live on stderr.
    let s = serve(&["--delay", "50ms"]);
    let out = run(
        &[
            "find",
            "-t1",
            "-c10",
            "--start",
            "50",
            "--step-duration",
            "2s",
            "--slo",
            "p99<=20ms",
            "--progress",
            &s.url,
        ],
        LIMIT,
    );
    // 3: the step failed its threshold; 1 when a host that stalled the generator made the
    // step invalid (send lag) — the progress lines are the same either way.
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(1 | 3)), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| is_progress(l)).collect();
    assert!((2..=3).contains(&lines.len()), "{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("find step 1 (climb 50 req/s): ") && l.contains("/2s  ")),
        "{err}"
    );
    assert!(!stdout(&out).lines().any(is_progress), "{}", stdout(&out));
}
