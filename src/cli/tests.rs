//! Unit tests of the flags' validation.

use super::*;

fn cfg(args: &[&str]) -> Result<Config> {
    let mut v = vec!["loadgen"];
    v.extend_from_slice(args);
    let cli = Cli::try_parse_from(v).map_err(|e| Error::Usage(e.to_string()))?;
    cli.run.to_config()
}

#[test]
fn wrk2_flags() {
    let c = cfg(&[
        "-t10",
        "-c10",
        "-d30s",
        "-R10k",
        "--latency",
        "-H",
        "X-A: 1",
        "http://h:1/p",
    ])
    .unwrap();
    assert_eq!((c.threads, c.connections), (10, 10));
    assert_eq!(c.duration, Duration::from_secs(30));
    assert_eq!(c.target_rate(), Some(10_000.0));
    assert!(c.latency && !c.u_latency);
    assert_eq!(c.headers, vec![("X-A".to_string(), "1".to_string())]);
    let c = cfg(&["-U", "-d", "2", "http://h/", "--", "a", "-b"]).unwrap();
    assert!(c.latency && c.u_latency);
    assert_eq!(c.duration, Duration::from_secs(2));
    assert_eq!(c.script_args, vec!["http://h/", "a", "-b"]);
    assert_eq!(c.target_rate(), None);
    // Flags after the URL are flags, as with wrk's getopt; plain words are script args.
    let c = cfg(&["http://h/", "-d", "3s", "x", "-R100", "y"]).unwrap();
    assert_eq!(c.duration, Duration::from_secs(3));
    assert_eq!(c.target_rate(), Some(100.0));
    assert_eq!(c.script_args, vec!["http://h/", "x", "y"]);
    assert!(cfg(&["http://h/", "a", "-b"]).is_err());
}

#[test]
fn refusals() {
    let msg = |a: &[&str]| cfg(a).unwrap_err().to_string();
    assert!(msg(&["-t4", "-c2", "http://h/"]).contains("connections must be >= threads"));
    assert!(msg(&["-t4", "-c8", "-R3", "http://h/"]).contains("less than one per thread"));
    assert!(msg(&["-R0", "http://h/"]).contains("greater than zero"));
    assert!(msg(&["-R-5", "http://h/"]).contains("-R"));
    assert!(msg(&["-d0", "http://h/"]).contains("greater than zero"));
    assert!(msg(&["ftp://h/"]).contains("unsupported scheme"));
    assert!(msg(&["-H", "nocolon", "http://h/"]).contains("Name: value"));
    assert!(msg(&["--body-file", "/nonexistent/x", "http://h/"]).contains("cannot read"));
}

/// A negative number is a value (wrk's getopt takes it as one), refused as not positive;
/// a number too large says so and gives the maximum; for -t, -c, -d, -R and --timeout.
#[test]
fn numeric_flags_say_what_is_wrong() {
    let msg = |a: &[&str]| cfg(a).unwrap_err().to_string();
    for (args, want) in [
        (
            &["-R", "-5", "http://h/"][..],
            "-R/--rate: must be greater than zero",
        ),
        (
            &["--rate", "-5", "http://h/"],
            "-R/--rate: must be greater than zero",
        ),
        (
            &["-c", "-5", "http://h/"],
            "-c/--connections: must be a whole number >= 1",
        ),
        (
            &["-t", "-1", "http://h/"],
            "-t/--threads: must be a whole number >= 1",
        ),
        (
            &["-d", "-5", "http://h/"],
            "-d/--duration: must be greater than zero",
        ),
        (
            &["-d", "-2s", "http://h/"],
            "-d/--duration: must be greater than zero",
        ),
        (
            &["--timeout", "-1s", "http://h/"],
            "--timeout: must be greater than zero",
        ),
        (
            &["-c", "99999999999", "http://h/"],
            "-c/--connections: too large: at most 10000000",
        ),
        (
            &["-t", "99999999999", "http://h/"],
            "-t/--threads: too large: at most 10000000",
        ),
        (&["-R", "99999999999", "http://h/"], "-R/--rate: at most 1G"),
        (
            &["-d", "99999999999h", "http://h/"],
            "-d/--duration: too long: at most 1000000000s",
        ),
        (
            &["--timeout", "99999999999", "http://h/"],
            "--timeout: too long",
        ),
        (
            &["-d", "10x", "http://h/"],
            "-d/--duration: invalid duration",
        ),
    ] {
        let m = msg(args);
        assert!(m.contains(want), "{args:?}: {m}");
    }
}

/// As wrk (getopt), a flag given twice takes its last value; repeatable flags collect.
#[test]
fn a_repeated_flag_takes_the_last_value() {
    let c = cfg(&["-d3s", "-d2s", "-t1", "-t2", "-c3", "-c4", "http://h/"]).unwrap();
    assert_eq!(c.duration, Duration::from_secs(2));
    assert_eq!((c.threads, c.connections), (2, 4));
    let c = cfg(&[
        "-R10",
        "--rate",
        "20",
        "--timeout",
        "1s",
        "--timeout=3s",
        "http://h/",
    ])
    .unwrap();
    assert_eq!(c.target_rate(), Some(20.0));
    assert_eq!(c.timeout, Duration::from_secs(3));
    let c = cfg(&["-H", "A: 1", "-H", "B: 2", "http://h/"]).unwrap();
    assert_eq!(c.headers.len(), 2);
}

/// `--pacing auto` (the default) picks coarse pacing once the busiest thread's share of the
/// rate puts 4 requests in a tick; an explicit mode or tick decides instead.
#[test]
fn auto_pacing_turns_coarse_at_four_requests_per_tick() {
    let pacing = |args: &[&str]| {
        let mut v = args.to_vec();
        v.push("http://h/");
        cfg(&v).unwrap().pacing
    };
    // 20000/s on one thread: 15 requests per 750 µs tick.
    assert_eq!(pacing(&["-t1", "-c50", "-R20000"]), Pacing::Coarse);
    // 200/s: one request every 6.7 ticks.
    assert_eq!(pacing(&["-t1", "-c1", "-R200"]), Pacing::Precise);
    // 6000/s a thread is 4.5 per tick; 5000 is 3.75.
    assert_eq!(pacing(&["-t2", "-c10", "-R12000"]), Pacing::Coarse);
    assert_eq!(pacing(&["-t2", "-c10", "-R10000"]), Pacing::Precise);
    // The busiest thread decides: 3 connections on 2 threads, 2 of them on thread 0
    // (6000/s of 9000).
    assert_eq!(pacing(&["-t2", "-c3", "-R9000"]), Pacing::Coarse);
    // A longer tick holds more requests.
    assert_eq!(pacing(&["-t1", "-R4000", "--tick", "1ms"]), Pacing::Coarse);
    assert_eq!(
        pacing(&["-t1", "-R2000", "--pacing", "auto"]),
        Pacing::Precise
    );
    assert_eq!(pacing(&["-t1", "-R100", "--tick", "1ms"]), Pacing::Coarse);
    assert_eq!(
        pacing(&["-t1", "-R20000", "--pacing", "precise"]),
        Pacing::Precise
    );
    assert_eq!(
        pacing(&["-t1", "-R100", "--pacing", "coarse"]),
        Pacing::Coarse
    );
    let err = cfg(&["-R100", "--pacing", "precise", "--tick", "1ms", "http://h/"]);
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("not with --pacing precise"));
}
