//! End-to-end tests of the command line's wording: numeric flags that are negative or too
//! large are refused with one line that says so (exit 2), and a repeated flag takes its last
//! value, as wrk's getopt does.

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
