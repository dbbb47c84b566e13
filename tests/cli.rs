//! End-to-end tests of what the command line checks before any load: numeric flags that are
//! negative or too large are refused with one line that says so (exit 2), a repeated flag
//! takes its last value (as wrk's getopt does), and an output file that cannot be created is
//! refused up front rather than after the run.

use std::time::Duration;

use crate::common::{parse, run, serve, stderr, stdout};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn negative_and_too_large_numbers_say_so() {
    let cases: &[(&[&str], &str)] = &[
        (&["-R", "-5"], "-R/--rate: must be greater than zero"),
        (
            &["-c", "-5"],
            "-c/--connections: must be a whole number >= 1",
        ),
        (&["-d", "-5s"], "-d/--duration: must be greater than zero"),
        (&["--timeout", "-1"], "--timeout: must be greater than zero"),
        (&["-c", "99999999999"], "too large: at most 10000000"),
        (&["-t", "99999999999"], "too large: at most 10000000"),
        (&["-d", "99999999999"], "too long: at most 1000000000s"),
    ];
    for (args, needle) in cases {
        let mut a = args.to_vec();
        a.push("http://127.0.0.1:1/");
        let out = run(&a, LIMIT);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

/// `-d3s -d1s` runs for one second (wrk takes the last value) instead of being refused.
#[test]
fn a_repeated_flag_takes_the_last_value() {
    let s = serve(&[]);
    let out = run(
        &["-t1", "-c1", "-c2", "-d3s", "-d1s", "-R50", "-R100", &s.url],
        LIMIT,
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("1s test @"), "{text}");
    assert!(text.contains("2 connections"), "{text}");
    let r = parse(&text);
    assert!((80..=130).contains(&r.requests), "{text}");
}

/// `/proc` passes the directory checks (it exists, and root may write in it) but takes no new
/// file: the run is refused before it starts (exit 2, nothing sent), instead of losing its
/// result after it. (Without root, the directory check already refuses it.)
#[test]
fn an_output_file_that_cannot_be_created_is_refused_before_the_run() {
    let s = serve(&[]);
    for flag in ["--json", "--junit", "--hlog"] {
        let out = run(
            &[
                "-t1",
                "-c1",
                "-d5s",
                "-R10",
                flag,
                "/proc/loadgen-out.json",
                &s.url,
            ],
            LIMIT,
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert_eq!(err.lines().count(), 1, "{flag}: {err}");
        assert!(err.contains(flag) && err.contains("/proc"), "{err}");
        assert!(!stdout(&out).contains("Running"), "{}", stdout(&out));
    }
    assert!(s.stop().contains("served 0 responses"));
}

/// A run that fails after its outputs were reserved leaves no temporary file behind.
#[test]
fn a_failed_run_leaves_no_temporary_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let url = format!("http://127.0.0.1:{}/", crate::common::dead_port());
    let out = run(
        &["-t1", "-c1", "-d1s", "--json", json.to_str().unwrap(), &url],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
