//! `--csv PREFIX`: Locust-shaped `PREFIX_stats.csv` and `PREFIX_stats_history.csv`, read back
//! with Python's csv module and with the csv crate, their counts equal to the JSON result's;
//! `report` and `merge` write them from saved results.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{run, serve, stderr};

/// Locust's `_stats.csv` columns, which loadgen's file starts with.
const LOCUST_STATS: [&str; 22] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
];

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The rows of a CSV file as read by Python's csv module (`DictReader`), as JSON: a list of
/// objects, column name to cell text.
fn python_rows(path: &Path) -> Vec<serde_json::Map<String, Value>> {
    let script = "import csv, json, sys\n\
                  with open(sys.argv[1], newline='') as f:\n    \
                  r = csv.DictReader(f)\n    \
                  json.dump({'header': r.fieldnames, 'rows': list(r)}, sys.stdout)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 (needed to read the CSV back)");
    assert!(
        out.status.success(),
        "python3 could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

/// The header and records of a CSV file as the csv crate reads it (every record must have
/// the header's length).
fn rust_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = ::csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn num(cell: &Value) -> f64 {
    cell.as_str().unwrap().parse().unwrap()
}

/// Runs `args` writing `--csv dir/r` and `--json dir/r.json`; returns the JSON.
fn run_csv(dir: &Path, url: &str, args: &[&str]) -> Value {
    let prefix = dir.join("r");
    let json = dir.join("r.json");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--csv",
        prefix.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        url,
    ]);
    let o = run(&all, Duration::from_secs(30));
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    read_json(&json)
}

/// Checks both files under `dir` against the JSON result `doc`.
fn check_against_json(dir: &Path, doc: &Value) {
    let stats = python_rows(&dir.join("r_stats.csv"));
    assert_eq!(stats.len(), 1, "one row per run");
    let row = &stats[0];
    assert_eq!(row["Type"], "GET");
    assert_eq!(row["Name"], doc["config"]["url"]);
    assert_eq!(
        num(&row["Request Count"]),
        doc["requests"].as_f64().unwrap()
    );
    assert_eq!(
        num(&row["Failure Count"]),
        doc["errors"]["total"].as_f64().unwrap()
    );
    assert_eq!(num(&row["Dropped Count"]), doc["dropped"].as_f64().unwrap());
    let c = &doc["latency"]["corrected"];
    // Milliseconds with µs resolution.
    assert_eq!(num(&row["99%"]), c["p99"].as_f64().unwrap() / 1000.0);
    assert_eq!(num(&row["100%"]), c["max"].as_f64().unwrap() / 1000.0);
    assert_eq!(num(&row["Median Response Time"]), num(&row["50%"]));
    assert!((num(&row["Requests/s"]) - doc["rate"]["achieved"].as_f64().unwrap()).abs() < 0.01);

    let history = python_rows(&dir.join("r_stats_history.csv"));
    let series = doc["series"].as_array().unwrap();
    assert_eq!(history.len(), series.len(), "one row per second");
    let mut requests = 0.0;
    let mut failures = 0.0;
    for (h, s) in history.iter().zip(series) {
        assert_eq!(num(&h["Timestamp"]), s["t"].as_f64().unwrap());
        assert_eq!(num(&h["Requests/s"]), s["requests"].as_f64().unwrap());
        assert_eq!(num(&h["Failures/s"]), s["errors"].as_f64().unwrap());
        match s["p99_us"].as_f64() {
            Some(p99) => assert_eq!(num(&h["99%"]), p99 / 1000.0),
            None => assert_eq!(h["99%"], ""),
        }
        if let Some(p) = s["planned"].as_f64() {
            assert!((num(&h["Planned Requests/s"]) - p).abs() < 0.006);
        }
        requests += num(&h["Requests/s"]);
        failures += num(&h["Failures/s"]);
        assert_eq!(num(&h["Total Request Count"]), requests);
    }
    assert_eq!(requests, doc["requests"].as_f64().unwrap());
    assert_eq!(failures, doc["errors"]["total"].as_f64().unwrap());

    // The csv crate reads the same: Locust's columns first, every record complete.
    let (header, rows) = rust_rows(&dir.join("r_stats.csv"));
    assert_eq!(&header[..LOCUST_STATS.len()], LOCUST_STATS);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][2], doc["requests"].to_string());
    let (header, rows) = rust_rows(&dir.join("r_stats_history.csv"));
    assert_eq!(header[0], "Timestamp");
    assert_eq!(rows.len(), series.len());
}

#[test]
fn csv_counts_equal_the_json_result() {
    let s = serve(&["--delay", "1ms"]);
    let dir = tempfile::tempdir().unwrap();
    let doc = run_csv(dir.path(), &s.url, &["-t1", "-c4", "-R300", "-d2s"]);
    assert!(doc["requests"].as_u64().unwrap() > 400, "{doc}");
    check_against_json(dir.path(), &doc);
    // `report` writes the same files from the JSON, byte for byte.
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let o = run(
        &["report", &p("r.json"), "--csv", &p("again")],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in ["stats.csv", "stats_history.csv"] {
        assert_eq!(
            std::fs::read(p(&format!("r_{f}"))).unwrap(),
            std::fs::read(p(&format!("again_{f}"))).unwrap(),
            "{f}"
        );
    }
    // `merge` of the result with itself counts everything twice.
    let o = run(
        &["merge", &p("r.json"), &p("r.json"), "--csv", &p("m")],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = python_rows(&dir.path().join("m_stats.csv"));
    assert_eq!(
        num(&m[0]["Request Count"]),
        2.0 * doc["requests"].as_f64().unwrap()
    );
}

#[test]
fn csv_counts_failures_per_second() {
    // Every response a 500: the run fails (exit 1) but writes its files.
    let s = serve(&["--status", "500"]);
    let dir = tempfile::tempdir().unwrap();
    let doc = run_csv(dir.path(), &s.url, &["-t1", "-c2", "-R200", "-d1s"]);
    let errors = doc["errors"]["total"].as_u64().unwrap();
    assert!(errors > 100, "{doc}");
    check_against_json(dir.path(), &doc);
}

#[test]
fn csv_paths_are_checked_before_the_run() {
    let o = run(
        &["-d1s", "--csv", "/nonexistent/dir/p", "http://127.0.0.1:9/"],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("--csv: directory /nonexistent/dir does not exist"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    let stats = format!("{}_stats.csv", p.display());
    let o = run(
        &[
            "-d1s",
            "--csv",
            p.to_str().unwrap(),
            "--json",
            &stats,
            "http://127.0.0.1:9/",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--json and --csv name the same file"));
}
