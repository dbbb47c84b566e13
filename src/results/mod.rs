//! Results for machines and CI: the commands that turn a run (or saved runs) into outputs and
//! an exit code — the text report (or, with `--quiet`, only the threshold table), the JSON
//! result, JUnit XML, the HdrHistogram interval log, the HTML report, Locust-style CSV — and `loadgen merge` / `loadgen report`.
//!
//! A load test, `merge` and `report` all end the same way ([`finish`]): print, write the files
//! (each atomically: a killed run never leaves a half-written file), then fail with
//! [`Error::Threshold`] (exit code 3, one line naming the failed thresholds) when any
//! threshold failed. The text is rendered from a [`RunResult`] only, so a result read back from
//! JSON prints exactly what the run printed.

pub mod args;
pub mod merge;

use std::io::{self, Read, Write};
use std::path::Path;

pub use args::{Dest, DetailArgs, MergeArgs, OutputArgs, Outputs, ReportArgs};

use crate::config::Config;
use crate::engine;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::report::json;
use crate::report::run_text::{write_body, write_header};
use crate::report::{csv, hlog, html, junit, text};
use crate::result::RunResult;
use crate::slo;

/// Writes text to stdout (or stderr), treating a closed pipe as success. Stdout is the
/// original one, for the JSON document, after [`reserve_stdout`].
fn emit(to_stderr: bool, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let res = if to_stderr {
        let mut w = io::stderr().lock();
        f(&mut w).and_then(|_| w.flush())
    } else if let Some(mut w) = RESERVED_STDOUT.get() {
        f(&mut w).and_then(|_| w.flush())
    } else {
        let mut w = io::stdout().lock();
        f(&mut w).and_then(|_| w.flush())
    };
    match res {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Writes to stdout (see [`emit`]), treating a closed pipe (`loadgen ... | head`) as success:
/// for the commands' own lines around a report.
pub fn out(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    emit(false, f)
}

/// The process's original stdout, once [`reserve_stdout`] has moved everything else off it.
static RESERVED_STDOUT: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// With `--json -` stdout carries the JSON document and nothing else: a script's `print()` or
/// `io.write()` (C stdio, on file descriptor 1) would corrupt it. So descriptor 1 becomes a
/// copy of stderr, where the text report goes too, and the document is written to a
/// duplicate of the original stdout.
fn reserve_stdout() -> Result<()> {
    if RESERVED_STDOUT.get().is_some() {
        return Ok(());
    }
    io::stdout().flush()?;
    // SAFETY: dup and dup2 on the process's standard descriptors; the duplicate is owned by
    // the `File` from here on.
    let original = unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        let file = <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd);
        if libc::dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error().into());
        }
        file
    };
    let _ = RESERVED_STDOUT.set(original);
    Ok(())
}

/// Writes the JSON, JUnit, interval-log, HTML and CSV outputs that `out` asks for.
pub fn write_files(r: &RunResult, out: &Outputs) -> Result<()> {
    // Each output is attempted even when one before it failed (a full disk for one file
    // should not cost the others); the first failure is returned.
    let mut results = Vec::new();
    match &out.json {
        None => {}
        Some(Dest::Stdout) => {
            let doc = json::to_json(r);
            results.push(emit(false, |w| w.write_all(doc.as_bytes())));
        }
        Some(Dest::File(p)) => results.push(write_atomic(p, json::to_json(r).as_bytes())),
    }
    if let Some(p) = &out.junit {
        let mut buf = Vec::new();
        junit::write(&mut buf, r)?;
        results.push(write_atomic(p, &buf));
    }
    if let Some(p) = &out.hlog {
        let mut buf = Vec::new();
        hlog::write(&mut buf, r)?;
        results.push(write_atomic(p, &buf));
    }
    if let Some(p) = &out.html {
        results.push(write_atomic(p, html::report(r).as_bytes()));
    }
    if let Some((stats, history)) = &out.csv {
        results.push(
            csv::stats(r)
                .map_err(Into::into)
                .and_then(|b| write_atomic(stats, &b)),
        );
        results.push(
            csv::history(r)
                .map_err(Into::into)
                .and_then(|b| write_atomic(history, &b)),
        );
    }
    results.into_iter().collect()
}

/// Prints the report, writes the files, then gives the result's [`verdict`].
pub fn finish(r: &RunResult, out: &Outputs) -> Result<i32> {
    emit(out.text_to_stderr(), |w| write_body(w, r, out.quiet))?;
    write_files(r, out)?;
    verdict(r)
}

/// What a result means for the exit code, most important first: a failed threshold
/// ([`Error::Threshold`], 3); an interrupted run ([`Error::Interrupted`], 128 + the signal:
/// its figures cover part of the run only); no successful (2xx or 3xx) response at all (1: a CI job must
/// not pass on a run in which nothing worked, thresholds or not); else success. A run stopped
/// by a script error is reported as that error by the caller.
pub fn verdict(r: &RunResult) -> Result<i32> {
    if let Some(line) = slo::failure_line(&r.outcomes) {
        return Err(Error::Threshold(line));
    }
    let s = &r.summary;
    if s.interrupted {
        return Err(Error::Interrupted(
            format!(
                "interrupted after {:.2}s; the report covers the elapsed time only",
                s.elapsed.as_secs_f64()
            ),
            crate::interrupt::exit_code(),
        ));
    }
    let st = &s.stats;
    if st.status_range(200, 400) == 0 && s.script_error.is_none() {
        let e = &st.errors;
        let mut why = vec![format!(
            "{} response{}",
            st.requests,
            if st.requests == 1 { "" } else { "s" }
        )];
        if e.status > 0 {
            why.push(format!("{} with a status outside 2xx/3xx", e.status));
        }
        for (kind, n) in [
            ("connect", e.connect),
            ("read", e.read),
            ("write", e.write),
            ("timeout", e.timeout),
        ] {
            if n > 0 {
                why.push(format!("{n} {kind} error{}", if n == 1 { "" } else { "s" }));
            }
        }
        if st.dropped > 0 {
            why.push(format!("{} dropped", st.dropped));
        }
        return Err(Error::Runtime(format!(
            "no successful (2xx or 3xx) response in {:.2}s: {}",
            s.elapsed.as_secs_f64(),
            why.join(", ")
        )));
    }
    Ok(0)
}

/// A load test with result outputs: header, run, report, files, thresholds.
pub fn load_test(config: &Config, out: &Outputs, live_opts: &crate::live::Options) -> Result<i32> {
    if config.script.is_some() && out.json == Some(Dest::Stdout) {
        reserve_stdout()?;
    }
    if config.script.is_some() {
        crate::script::check(config)?;
    }
    crate::sys::ensure_nofile_limit(config)?;
    if !out.quiet {
        emit(out.text_to_stderr(), |w| {
            let mut w = w;
            text::write_header(&mut w, config)
        })?;
    }
    let live = crate::live::Live::start(config, live_opts.clone());
    let run = engine::run_live(config, live.as_ref().map(|l| l.sender()));
    let watch = live.map(|l| l.finish()).unwrap_or_default();
    let run = run?;
    let script_error = run.summary.script_error.clone();
    let mut result = RunResult::new(run.summary, out.slos.clone(), Vec::new());
    result.watch = watch;
    if let Some(d) = &live_opts.dashboard {
        d.finish(&result);
    }
    let verdict = finish(&result, out);
    // As wrk: the script's done() runs after the report, whatever the verdict.
    if let Some(s) = &run.session {
        s.done(&result.summary)?;
    }
    // A run stopped by a script error has printed its partial report; now the error (a
    // failed threshold still says so first).
    match (verdict, script_error) {
        (Err(Error::Threshold(l)), _) => Err(Error::Threshold(l)),
        (_, Some(e)) => Err(Error::Script(e)),
        (v, None) => v,
    }
}

/// Reads a JSON result (`-`: standard input).
pub fn read(path: &Path) -> Result<RunResult> {
    let name = path.display().to_string();
    let mut text = String::new();
    let res = if name == "-" {
        io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    res.map_err(|e| Error::Usage(format!("cannot read {name}: {e}")))?;
    crate::report::json_read::from_json(&text, &name)
}

/// Applies `-L`/`-U`/`--timing` and `--slo` given to `merge`/`report`, then finishes.
fn reprint(mut r: RunResult, d: &DetailArgs, out: &Outputs) -> Result<i32> {
    r.summary.config.latency |= d.latency || d.u_latency;
    r.summary.config.u_latency |= d.u_latency;
    r.summary.config.timing |= d.timing;
    if !out.slos.is_empty() {
        r.set_slos(out.slos.clone());
    }
    if r.summary.config.target_rate().is_none() {
        if let Some(t) = r.slos.iter().find(|t| t.needs_target_rate()) {
            return Err(Error::Usage(format!(
                "--slo {:?}: the result has no target rate (closed loop)",
                t.expr
            )));
        }
    }
    if !out.quiet {
        emit(out.text_to_stderr(), |w| write_header(w, &r))?;
    }
    finish(&r, out)
}

/// `loadgen report FILE`: re-prints a saved result (and re-checks its thresholds).
pub fn report(a: ReportArgs) -> Result<i32> {
    let out = a.output.validate(None, false)?;
    let r = read(&a.file)?;
    reprint(r, &a.detail, &out)
}

/// `loadgen merge FILE...`: merges saved results exactly and reports the merged result.
pub fn merge(a: MergeArgs) -> Result<i32> {
    let out = a.output.validate(None, false)?;
    let inputs = a
        .files
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let r = merge::merge(&inputs)?;
    reprint(r, &a.detail, &out)
}
