//! The HTML report (`--html`) in a real browser: headless Chromium (Debian's `chromium`
//! package; .ci/run installs it) loads the page from disk, with no network, and the DOM it
//! leaves must hold every chart drawn with the run's data points and no script error. Also:
//! `report` and `merge` write the page from saved results, `find` charts its steps, and a
//! 60-second run's page stays under 1 MB.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::common::{run, serve, shared, stderr};

/// Chromium's binary: the first of the usual names on the PATH. A test that needs it fails
/// (not skips) without it: CI installs it.
fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return name.to_string();
        }
    }
    panic!("chromium not found: install it (Debian: apt-get install -y chromium; .ci/run does) to test the HTML report");
}

/// The DOM headless Chromium leaves after loading `page` (scripts run), with network access
/// switched off by a proxy that does not exist.
fn dom(page: &Path) -> String {
    dom_of(&format!("file://{}", page.display()))
}

/// The DOM headless Chromium leaves after loading `url` (scripts run), with network access
/// switched off by a proxy that does not exist (Chromium never proxies loopback, so a
/// dashboard on 127.0.0.1 is reachable).
pub fn dom_of(url: &str) -> String {
    // Chromium takes a core for a second or two: never beside a timing test.
    shared();
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    // Read while it runs: a DOM larger than the pipe's buffer would block it.
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url} in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {status:?}");
    String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
}

/// The value of attribute `name` in the first tag of `tag` that has it.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[at..].split('"').next()?.to_string())
}

/// The drawn charts in `dom`: (name, points) for every `<svg class="chart">`, in order.
pub fn charts(dom: &str) -> Vec<(String, u64)> {
    dom.split("<svg ")
        .skip(1)
        .map(|t| format!(" {}", &t[..t.find('>').unwrap()]))
        .filter(|t| attr(t, "class").as_deref() == Some("chart"))
        .map(|t| {
            (
                attr(&t, "data-chart").unwrap(),
                attr(&t, "data-points").unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Asserts that `dom` rendered without a script error and drew `n` charts.
pub fn assert_rendered(dom: &str, n: usize) -> Vec<(String, u64)> {
    assert!(
        !dom.contains("<pre id=\"script-error\">"),
        "script error: {}",
        &dom[dom.find("script-error").unwrap()..]
            [..300.min(dom.len() - dom.find("script-error").unwrap())]
    );
    assert!(
        dom.contains(&format!("data-charts=\"{n}\"")),
        "the renderer did not finish"
    );
    let c = charts(dom);
    assert_eq!(c.len(), n, "{c:?}");
    assert!(
        c.iter().all(|(_, points)| *points > 0),
        "a chart without data: {c:?}"
    );
    c
}

/// The data object a page embeds.
fn embedded(page: &str) -> Value {
    let tail = &page[page.find("id=\"loadgen-data\"").unwrap()..];
    let body = &tail[tail.find('>').unwrap() + 1..tail.find("</script>").unwrap()];
    serde_json::from_str(body).unwrap()
}

/// What a self-contained page must not contain: anything that loads from elsewhere.
fn assert_self_contained(page: &str) {
    for needle in ["<script src", "<link", "@import", "url(", "<img", "<iframe"] {
        assert!(!page.contains(needle), "the page loads something: {needle}");
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn run_page_draws_every_chart_with_the_runs_data() {
    // A server that stalls for 300 ms: the corrected and uncorrected spectra differ.
    let s = serve(&["--delay", "1ms", "--stall-at", "1s", "--stall-for", "300ms"]);
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("r.html"), dir.path().join("r.json"));
    let o = run(
        &[
            "-t1",
            "-c10",
            "-R400",
            "-d3s",
            "--slo",
            "p99<=10s",
            "--html",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            &s.url,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_self_contained(&page);
    let doc = read_json(&json);
    let seconds = doc["series"].as_array().unwrap().len() as u64;
    let with_latency = doc["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["p50_us"].is_null())
        .count() as u64;
    let c = assert_rendered(&dom(&html), 5);
    let points = |name: &str| c.iter().find(|(n, _)| n == name).unwrap().1;
    // Planned and achieved, each second; four percentiles of each second with responses;
    // errors and dropped, each second.
    assert_eq!(points("rate"), 2 * seconds, "{c:?}");
    assert_eq!(points("latency"), 4 * with_latency, "{c:?}");
    assert_eq!(points("errors"), 2 * seconds, "{c:?}");
    // Spectra: 20 points a decade of 1/(1-p) up to the count, then the max; corrected and
    // uncorrected.
    let n = doc["latency"]["corrected"]["count"].as_u64().unwrap() as f64;
    let per_spectrum = (n.log10() / 0.05).ceil() as u64 + 1;
    assert!(
        points("spectrum").abs_diff(2 * per_spectrum) <= 2,
        "{c:?} for {n} requests"
    );
    assert!(points("send-lag") > 10, "{c:?}");
    // The embedded data is the run's: its per-second counts add up to the JSON's.
    let data = embedded(&page);
    let achieved: u64 = data["series"]["achieved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(achieved, doc["requests"].as_u64().unwrap());
    assert_eq!(data["thresholds"][0]["expr"], "p99<=10s");
    assert_eq!(data["thresholds"][0]["pass"], true);
    assert!(page.len() < 200_000, "{} bytes for a 3 s run", page.len());
}

#[test]
fn report_and_merge_write_the_page_from_saved_results() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let o = run(
        &[
            "-t1",
            "-c4",
            "-R300",
            "-d2s",
            "--html",
            &p("run.html"),
            "--json",
            &p("r.json"),
            &s.url,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // `report` draws the same page from the JSON: the same data object.
    let o = run(
        &["report", &p("r.json"), "--html", &p("report.html")],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let read = |n: &str| std::fs::read_to_string(p(n)).unwrap();
    assert_eq!(embedded(&read("run.html")), embedded(&read("report.html")));
    // `merge` of the result with itself: twice the requests, in the same seconds.
    let o = run(
        &[
            "merge",
            &p("r.json"),
            &p("r.json"),
            "--html",
            &p("merge.html"),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (one, two) = (embedded(&read("run.html")), embedded(&read("merge.html")));
    let doubled: Vec<u64> = one["series"]["achieved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| 2 * v.as_u64().unwrap())
        .collect();
    assert_eq!(
        two["series"]["achieved"],
        serde_json::to_value(doubled).unwrap()
    );
    assert_rendered(&dom(&dir.path().join("merge.html")), 5);
    // A bad path is a usage error before any load.
    let o = run(
        &["report", &p("r.json"), "--html", "/nonexistent/dir/x.html"],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--html: directory /nonexistent/dir does not exist"));
    let o = run(
        &["report", &p("r.json"), "--html", &p("a"), "--json", &p("a")],
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--json and --html name the same file"));
}

#[test]
fn find_page_charts_every_step() {
    let s = serve(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (dir.path().join("find.html"), dir.path().join("find.json"));
    // Up to three short climbing steps to --max, no confirmation. A fast server passes them
    // all; a host that stalls the generator can make a step invalid, which ends the search
    // (exit 1) with the steps so far: the page must show whatever ran, as the JSON does.
    let o = run(
        &[
            "find",
            "--slo",
            "p99<=10s",
            "--start",
            "50",
            "--max",
            "200",
            "--step-duration",
            "1s",
            "--confirm",
            "0",
            "-t1",
            "-c10",
            "--html",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            &s.url,
        ],
        Duration::from_secs(60),
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_self_contained(&page);
    let data = embedded(&page);
    let steps = data["steps"].as_array().unwrap();
    let doc = read_json(&json);
    let in_json = doc["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert_eq!(steps.len(), in_json.len());
    for (a, b) in steps.iter().zip(in_json) {
        assert_eq!(a["rate"], b["rate"]);
        assert_eq!(a["verdict"], b["verdict"]);
        assert_eq!(a["kind"], b["kind"]);
        assert_eq!(a["p99"], b["result"]["latency"]["corrected"]["p99"]);
    }
    let rates: Vec<f64> = steps.iter().map(|x| x["rate"].as_f64().unwrap()).collect();
    assert_eq!(rates, [50.0, 100.0, 200.0][..rates.len()]);
    let c = assert_rendered(&dom(&html), 2);
    // The step order line and the verdict dots; tried and achieved per step.
    let n = 2 * steps.len() as u64;
    assert_eq!(c, vec![("steps".into(), n), ("step-rates".into(), n)]);
}

/// A 60-second run at 5000 req/s, built through the library (a real 60 s run is too long
/// for CI): what the page holds grows with the seconds, not the requests.
#[test]
fn a_minute_long_run_page_is_under_one_megabyte() {
    use loadgen::config::{Config, Target};
    use loadgen::record::Stats;
    use loadgen::result::{RunResult, Summary};
    use loadgen::schedule::RateProfile;

    let started = SystemTime::now();
    let t0 = loadgen::clock::unix_ns(started);
    let mut stats = Stats::anchored(t0);
    let (rate, secs) = (5000u64, 60u64);
    for k in 0..rate * secs {
        let intended = k * 1_000_000_000 / rate;
        // Latencies from 50 µs to ~80 ms, with a one-second stall of growing waits at 30 s.
        let mut lat = 50_000 + (k * 7919 % 400) * 200_000 / 400 + (k % 97) * 800_000;
        if (30..31).contains(&(intended / 1_000_000_000)) {
            lat += 1_000_000_000 - intended % 1_000_000_000;
        }
        let sent = intended + k % 50 * 1000;
        stats.record(intended, intended, sent, sent + lat, 200);
    }
    stats.finish(secs * 1_000_000_000);
    let mut config = Config::new(Target::parse("http://127.0.0.1:8080/").unwrap());
    config.duration = Duration::from_secs(secs);
    config.rate = Some(RateProfile::Constant(rate as f64));
    let summary = Summary {
        config,
        addr: "127.0.0.1:8080".parse().unwrap(),
        started,
        elapsed: Duration::from_secs(secs),
        interrupted: false,
        script_error: None,
        stats,
    };
    let slos = vec![loadgen::slo::Slo::parse("p99<=100ms").unwrap()];
    let page = loadgen::report::html::report(&RunResult::new(summary, slos, Vec::new()));
    assert!(page.len() < 1_000_000, "{} bytes", page.len());
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("minute.html");
    std::fs::write(&html, &page).unwrap();
    let c = assert_rendered(&dom(&html), 5);
    let points = |name: &str| c.iter().find(|(n, _)| n == name).unwrap().1;
    // 60 seconds (61 wall-clock seconds unless the start fell on a whole second).
    assert!((120..=122).contains(&points("rate")), "{c:?}");
    eprintln!("a 60 s run's page: {} bytes", page.len());
}
