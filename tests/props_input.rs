//! Property tests of the parsers of what a person or a file gives loadgen: the `--slo`
//! grammar, the unit parsers (`10k`, `2s`) and the JSON result reader behind `loadgen merge`
//! and `loadgen report`. Hostile input gives an error, never a panic, and what parses can be
//! used (an SLO evaluates, a result prints and writes again); well-formed input reads as what
//! it says. Case counts are modest so that the suite stays within seconds in a debug build.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use loadgen::config::{Config, Target};
use loadgen::record::Stats;
use loadgen::report::json::to_json;
use loadgen::report::json_read::from_json;
use loadgen::result::RunResult;
use loadgen::result::Summary;
use loadgen::slo::{evaluate_all, Slo};
use loadgen::units::{format_binary, format_metric, format_time_us, parse_count, parse_duration};
use proptest::prelude::*;
use serde_json::Value;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A small two-second open-loop run with a few requests, errors and a threshold.
fn sample() -> RunResult {
    let start_ns = 1_800_000_000 * 1_000_000_000u64;
    let mut stats = Stats::anchored(start_ns);
    for k in 0..300u64 {
        let t = k * 6_000_000;
        stats.record(
            t,
            t,
            t + 1000,
            t + 200_000 + k * 1000,
            if k % 50 == 0 { 503 } else { 200 },
        );
    }
    stats.error(1_000_000_000, |e| &mut e.read);
    stats
        .errors
        .read_reasons
        .count(loadgen::conn::error::ReadReason::Closed);
    stats.unfinished_n(
        100_000,
        2_000_000_000,
        1,
        loadgen::record::Unfinished::TimedOut,
    );
    stats.finish(2_000_000_000);
    let mut config = Config::new(Target::parse("http://127.0.0.1:8080/").unwrap());
    config.rate = Some(loadgen::schedule::RateProfile::Constant(150.0));
    let summary = Summary {
        config,
        addr: "127.0.0.1:8080".parse().unwrap(),
        started: UNIX_EPOCH + Duration::from_nanos(start_ns),
        elapsed: Duration::from_secs(2),
        interrupted: false,
        script_error: None,
        stats,
    };
    let slos = vec![
        Slo::parse("p99<=1s").unwrap(),
        Slo::parse("errors<5%").unwrap(),
    ];
    RunResult::new(summary, slos, Vec::new())
}

/// Prints and writes `r` again, as `loadgen report` and `merge --json` would.
fn use_result(r: &RunResult) {
    let mut out = Vec::new();
    loadgen::report::text::write_report(&mut out, &r.summary).unwrap();
    let _ = to_json(r);
}

/// Every value's JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A hostile replacement for a value.
fn hostile() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None), // the key removed
        Just(Some(Value::Null)),
        any::<bool>().prop_map(|b| Some(Value::Bool(b))),
        prop::sample::select(vec![0u64, 1, 999, 1000, u32::MAX as u64, u64::MAX])
            .prop_map(|n| Some(Value::from(n))),
        prop::sample::select(vec![-1i64, i64::MIN]).prop_map(|n| Some(Value::from(n))),
        prop::sample::select(vec![0.5f64, -0.5, 1e308, -1e308, 1e-300])
            .prop_map(|x| Some(Value::from(x))),
        prop::sample::select(vec!["", "x", "p99<", "-1", "9999-99-99", "http://[::1"])
            .prop_map(|s| Some(Value::from(s))),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| {
            Some(Value::from(
                base64::engine::general_purpose::STANDARD.encode(b),
            ))
        }),
        Just(Some(Value::Array(Vec::new()))),
        Just(Some(
            serde_json::json!({"200": 1, "x": 2, "99999999999999999999": 3})
        )),
    ]
}

/// `doc` with the value at `ptr` replaced by `with` (or removed).
fn mutate(doc: &mut Value, ptr: &str, with: Option<Value>) {
    let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ""));
    if ptr.is_empty() {
        *doc = with.unwrap_or(Value::Null);
        return;
    }
    let key = key.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => match with {
            Some(v) => drop(m.insert(key, v)),
            None => drop(m.remove(&key)),
        },
        Some(Value::Array(a)) => {
            let i: usize = key.parse().unwrap();
            match with {
                Some(v) => a[i] = v,
                None => drop(a.remove(i)),
            }
        }
        _ => {}
    }
}

/// Corrupts the histogram string at `ptr` in `doc`: flips, truncates or extends its bytes.
fn corrupt_histogram(doc: &mut Value, ptr: &str, at: usize, byte: u8, how: u8) {
    let Some(Value::String(s)) = doc.pointer_mut(ptr) else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(mut bytes) = b64.decode(s.as_bytes()) else {
        return;
    };
    if bytes.is_empty() {
        return;
    }
    let i = at % bytes.len();
    match how % 3 {
        0 => bytes[i] ^= byte | 1,
        1 => bytes.truncate(i),
        _ => bytes
            .splice(i..i, std::iter::repeat_n(byte, 40))
            .for_each(drop),
    }
    *s = b64.encode(bytes);
}

proptest! {
    #![proptest_config(config())]

    /// Any text, and any sequence of the grammar's own tokens: an error or an SLO, never a
    /// panic; an SLO parses again from its own expression and evaluates on a real result.
    #[test]
    fn slo_grammar_never_panics(
        words in prop::collection::vec(prop::sample::select(vec![
            "p", "p99", "p99.9", "p100", "p0", "p-1", "p1e3", "pNaN", "mean", "max", "stdev",
            "uncorrected.", "lag.", "errors", "rate", "requests", "status", "status5xx",
            "status200", "status9", "xx", "<", "<=", ">", ">=", "==", "=", "!", "!=", " ", "1",
            "0", "-1", "0.5", "1e308", "NaN", "inf", "ms", "s", "us", "m", "%", "k", "M", "G",
            "é", ".", "\u{3000}",
        ]), 0..8),
        text in any::<String>(),
    ) {
        crate::common::shared();
        let r = sample();
        for expr in [words.concat(), text] {
            if let Ok(slo) = Slo::parse(&expr) {
                prop_assert!(Slo::parse(&slo.expr).is_ok(), "{}", slo.expr);
                let _ = evaluate_all(&[slo], &r.summary);
            }
        }
    }

    /// Counts and durations: any text is an error or a value, never a panic; numbers read as
    /// written, with their suffixes; formatting any non-negative value gives its unit.
    #[test]
    fn unit_parsers_read_what_is_written(
        text in any::<String>(),
        n in 0u64..1_000_000_000_000,
        ms in 0u64..1_000_000_000,
        x in 0.0f64..1e18,
    ) {
        crate::common::shared();
        let _ = parse_count(&text);
        let _ = parse_duration(&text);
        prop_assert_eq!(parse_count(&n.to_string()), Ok(n as f64));
        prop_assert_eq!(parse_count(&format!("{n}k")), Ok(n as f64 * 1e3));
        let d = parse_duration(&format!("{ms}ms")).unwrap();
        let want = Duration::from_millis(ms);
        prop_assert!(d.abs_diff(want) <= Duration::from_micros(1), "{:?} vs {:?}", d, want);
        let secs = ms % 100_000;
        prop_assert_eq!(parse_duration(&format!("{secs}s")), Ok(Duration::from_secs(secs)));
        prop_assert!(format_time_us(x).ends_with('s'));
        prop_assert!(format_binary(x).chars().last().is_some());
        prop_assert!(!format_metric(x).is_empty());
    }

    /// Any text is refused with an error.
    #[test]
    fn result_reader_refuses_any_text(text in any::<String>()) {
        crate::common::shared();
        prop_assert!(from_json(&text, "x.json").is_err());
    }

    /// A real result with values replaced by hostile ones, keys removed or histograms
    /// corrupted: an error, or a result that prints and writes again; never a panic.
    #[test]
    fn result_reader_survives_hostile_documents(
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), hostile(), prop::bool::weighted(0.8)),
            1..6,
        ),
        histogram in prop::option::of((
            prop::sample::select(vec!["corrected", "uncorrected", "send_lag", "req_per_sec"]),
            any::<usize>(),
            any::<u8>(),
            any::<u8>(),
        )),
    ) {
        crate::common::shared();
        let mut doc: Value = serde_json::from_str(&to_json(&sample())).unwrap();
        if let Some((name, at, byte, how)) = histogram {
            corrupt_histogram(&mut doc, &format!("/histograms/{name}"), at, byte, how);
        }
        for (i, with, keep_type) in edits {
            let mut ptrs = Vec::new();
            pointers(&doc, String::new(), &mut ptrs);
            let ptr = i.get(&ptrs).clone();
            // Mostly a value of the same JSON type, which the reader must take or refuse on
            // its merits; else anything.
            let same = |old: Option<&Value>, new: &Option<Value>| match (old, new) {
                (Some(o), Some(n)) => std::mem::discriminant(o) == std::mem::discriminant(n)
                    && o.is_f64() == n.is_f64(),
                _ => false,
            };
            if !keep_type || same(doc.pointer(&ptr), &with) {
                mutate(&mut doc, &ptr, with);
            }
        }
        if let Ok(r) = from_json(&doc.to_string(), "x.json") {
            use_result(&r);
        }
    }
}

/// The sample itself reads back and prints: the properties above start from a valid result.
#[test]
fn the_sample_result_reads_back() {
    let r = from_json(&to_json(&sample()), "x.json").unwrap();
    assert_eq!(r.summary.stats.requests, 300);
    assert_eq!(r.summary.stats.errors.read, 1);
    use_result(&r);
}
