//! Command-line flags for results (`--json`, `--slo`, `--fail-on-errors`, `--junit`, `--hlog`,
//! `--html`, `--csv`, `--quiet`) and the `merge` / `report` subcommands, validated into [`Outputs`] before any
//! load is sent. Output paths may name environment variables (`{env:VAR}`, `${VAR}`, `$VAR`),
//! so that each instance of a distributed run writes its own file.

use std::path::{Path, PathBuf};

use clap::{ArgAction, Args};

use crate::error::{Error, Result};
use crate::slo::{self, Slo};

/// Flags that say what to do with a result; shared by a load test, `merge` and `report`.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Write the result as JSON to FILE ("-": stdout, the text report then goes to stderr).
    /// {env:VAR}, ${VAR} and $VAR in FILE are replaced by environment variables
    #[arg(long = "json", value_name = "FILE")]
    pub json: Option<String>,
    /// A threshold that must hold, e.g. 'p99<=250ms', 'errors<=0.1%', 'rate>=99%',
    /// 'status5xx==0' (repeatable); any failing one makes the exit code 3. See docs/slo.md
    #[arg(long = "slo", value_name = "EXPR", action = ArgAction::Append)]
    pub slo: Vec<String>,
    /// Fail (exit code 3) when any request failed: the same as --slo 'errors==0'
    #[arg(long = "fail-on-errors")]
    pub fail_on_errors: bool,
    /// Write a JUnit XML report (one test case per threshold) to FILE
    #[arg(long = "junit", value_name = "FILE")]
    pub junit: Option<String>,
    /// Write an HdrHistogram interval log (.hlog, one interval per second) to FILE
    #[arg(long = "hlog", value_name = "FILE")]
    pub hlog: Option<String>,
    /// Write a self-contained HTML report with charts (rates, latency per second, errors,
    /// percentile spectrum, send lag, thresholds) to FILE. See docs/html-report.md
    #[arg(long = "html", value_name = "FILE")]
    pub html: Option<String>,
    /// Write Locust-style CSV: PREFIX_stats.csv (the run) and PREFIX_stats_history.csv (one
    /// row per second)
    #[arg(long = "csv", value_name = "PREFIX")]
    pub csv: Option<String>,
    /// Print only the threshold table (and the failure line)
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// `loadgen merge`: combine JSON results into one.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON results written with --json (or by merge)
    #[arg(value_name = "RESULT", required = true)]
    pub files: Vec<PathBuf>,
    /// How much of the distribution to print.
    #[command(flatten)]
    pub detail: DetailArgs,
    /// What to write and check.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `-L`/`-U` for `merge` and `report`, as for a run.
#[derive(Debug, Args)]
pub struct DetailArgs {
    /// Print the latency distribution and detailed percentile spectrum
    #[arg(short = 'L', long = "latency")]
    pub latency: bool,
    /// Also print the uncorrected latency distribution (implies --latency)
    #[arg(short = 'U', long = "u_latency")]
    pub u_latency: bool,
    /// Print the timing breakdown: connect and TLS handshake per connection; sending,
    /// waiting (time to first byte) and receiving per response
    #[arg(long = "timing")]
    pub timing: bool,
}

/// `loadgen report`: re-print a saved JSON result.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A JSON result written with --json or by merge
    #[arg(value_name = "RESULT")]
    pub file: PathBuf,
    /// How much of the distribution to print.
    #[command(flatten)]
    pub detail: DetailArgs,
    /// What to write and check.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where the JSON result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// Standard output (`--json -`).
    Stdout,
    /// A file, written atomically.
    File(PathBuf),
}

/// Validated result options.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `--json`.
    pub json: Option<Dest>,
    /// `--junit`.
    pub junit: Option<PathBuf>,
    /// `--hlog`.
    pub hlog: Option<PathBuf>,
    /// `--html`.
    pub html: Option<PathBuf>,
    /// `--csv PREFIX`: the `PREFIX_stats.csv` and `PREFIX_stats_history.csv` paths.
    pub csv: Option<(PathBuf, PathBuf)>,
    /// `--slo` and `--fail-on-errors`, parsed; empty when none were given.
    pub slos: Vec<Slo>,
    /// `--quiet`.
    pub quiet: bool,
}

impl Outputs {
    /// Whether the text report goes to stderr (because the JSON goes to stdout).
    pub fn text_to_stderr(&self) -> bool {
        self.json == Some(Dest::Stdout)
    }
}

/// Replaces `{env:VAR}`, `${VAR}` and `$VAR` in `s` by the variable's value; an unset
/// variable is a usage error naming `flag`. A `$` not followed by a name stays as it is.
pub fn expand_env(s: &str, flag: &str) -> Result<String> {
    expand_with(s, flag, |v| std::env::var(v).ok())
}

fn expand_with(s: &str, flag: &str, get: impl Fn(&str) -> Option<String>) -> Result<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let lookup = |name: &str| {
        get(name).ok_or_else(|| {
            Error::Usage(format!(
                "{flag}: environment variable {name} is not set (in {s:?})"
            ))
        })
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['{', '$']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let braced = if let Some(t) = tail.strip_prefix("{env:") {
            Some(t)
        } else {
            tail.strip_prefix("${")
        };
        if let Some(t) = braced {
            let end = t
                .find('}')
                .ok_or_else(|| Error::Usage(format!("{flag}: unclosed '{{' in {s:?}")))?;
            let name = &t[..end];
            if name.is_empty() || !name.chars().all(is_name) {
                return Err(Error::Usage(format!(
                    "{flag}: invalid variable name {name:?} in {s:?}"
                )));
            }
            out.push_str(&lookup(name)?);
            rest = &t[end + 1..];
        } else if let Some(t) = tail.strip_prefix('$') {
            let len = t.find(|c: char| !is_name(c)).unwrap_or(t.len());
            if len == 0 || t.starts_with(|c: char| c.is_ascii_digit()) {
                out.push('$');
                rest = t;
            } else {
                out.push_str(&lookup(&t[..len])?);
                rest = &t[len..];
            }
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// An output file path: variables expanded, and its directory must exist.
pub fn out_path(s: &str, flag: &str) -> Result<PathBuf> {
    if s == "-" {
        return Err(Error::Usage(format!(
            "{flag}: only --json can go to stdout (-); give a file name"
        )));
    }
    let expanded = expand_env(s, flag)?;
    let p = PathBuf::from(&expanded);
    if p.file_name().is_none() || expanded.ends_with('/') || p.is_dir() {
        return Err(Error::Usage(format!(
            "{flag}: not a file path: {s:?} (a directory?)"
        )));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{flag}: directory {} does not exist",
            dir.display()
        )));
    }
    // Checked before the run, so that a long run's results are not lost at its end.
    if !writable(dir) {
        return Err(Error::Usage(format!(
            "{flag}: cannot write in directory {}",
            dir.display()
        )));
    }
    // Some directories pass that check but take no new file (/proc, /sys, a read-only mount
    // as root): the temporary file the result will be written through is created now.
    crate::fsutil::check_creatable(&p)
        .map_err(|e| Error::Usage(format!("{flag}: cannot write {}: {e}", p.display())))?;
    Ok(p)
}

/// Whether this process may create files in `dir`.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path we pass.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

impl OutputArgs {
    /// Validates the flags. `target_rate` is the run's `-R` (for a load test), used to refuse
    /// `rate>=N%` without one; `None` with `check_rate = false` skips that check (merge and
    /// report know the rate only after reading their inputs).
    pub fn validate(&self, target_rate: Option<f64>, check_rate: bool) -> Result<Outputs> {
        let slos = slo::parse_all(&self.slo, self.fail_on_errors)?;
        if check_rate && target_rate.is_none() {
            if let Some(t) = slos.iter().find(|t| t.needs_target_rate()) {
                return Err(Error::Usage(format!(
                    "--slo {:?}: a rate share needs a target rate (-R); use e.g. 'rate>=900' for req/s",
                    t.expr
                )));
            }
        }
        let json = match self.json.as_deref() {
            None => None,
            Some("-") => Some(Dest::Stdout),
            Some(p) => Some(Dest::File(out_path(p, "--json")?)),
        };
        let junit = self
            .junit
            .as_deref()
            .map(|p| out_path(p, "--junit"))
            .transpose()?;
        let hlog = self
            .hlog
            .as_deref()
            .map(|p| out_path(p, "--hlog"))
            .transpose()?;
        let html = self
            .html
            .as_deref()
            .map(|p| out_path(p, "--html"))
            .transpose()?;
        let csv = match self.csv.as_deref() {
            None => None,
            Some(p) => Some((
                out_path(&format!("{p}_stats.csv"), "--csv")?,
                out_path(&format!("{p}_stats_history.csv"), "--csv")?,
            )),
        };
        let json_file = match &json {
            Some(Dest::File(p)) => Some(p),
            _ => None,
        };
        let files = [
            ("--json", json_file),
            ("--junit", junit.as_ref()),
            ("--hlog", hlog.as_ref()),
            ("--html", html.as_ref()),
            ("--csv", csv.as_ref().map(|c| &c.0)),
            ("--csv", csv.as_ref().map(|c| &c.1)),
        ];
        for (i, (a, pa)) in files.iter().enumerate() {
            for (b, pb) in &files[i + 1..] {
                if let (Some(pa), Some(pb)) = (pa, pb) {
                    if pa == pb {
                        return Err(Error::Usage(format!(
                            "{a} and {b} name the same file: {}",
                            pa.display()
                        )));
                    }
                }
            }
        }
        Ok(Outputs {
            json,
            junit,
            hlog,
            html,
            csv,
            slos,
            quiet: self.quiet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "JOB_COMPLETION_INDEX" => Some("3".into()),
            "HOME" => Some("/h".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables() {
        let x = |s: &str| expand_with(s, "--json", env);
        assert_eq!(
            x("out/result-{env:JOB_COMPLETION_INDEX}.json").unwrap(),
            "out/result-3.json"
        );
        assert_eq!(x("r-${JOB_COMPLETION_INDEX}.json").unwrap(), "r-3.json");
        assert_eq!(
            x("$HOME/r-$JOB_COMPLETION_INDEX.json").unwrap(),
            "/h/r-3.json"
        );
        assert_eq!(x("a$-b{c}$1.json").unwrap(), "a$-b{c}$1.json");
        assert_eq!(x("plain.json").unwrap(), "plain.json");
        let e = x("r-{env:NOPE}.json").unwrap_err().to_string();
        assert!(e.contains("NOPE is not set"), "{e}");
        assert!(x("r-${A").unwrap_err().to_string().contains("unclosed"));
        assert!(x("r-{env:a b}")
            .unwrap_err()
            .to_string()
            .contains("invalid"));
    }

    #[test]
    fn validation() {
        let a = OutputArgs {
            slo: vec!["rate>=99%".into()],
            ..Default::default()
        };
        let e = a.validate(None, true).unwrap_err().to_string();
        assert!(e.contains("needs a target rate"), "{e}");
        assert!(a.validate(Some(100.0), true).is_ok());
        assert!(a.validate(None, false).is_ok());
        let a = OutputArgs {
            json: Some("/nonexistent/dir/r.json".into()),
            ..Default::default()
        };
        assert!(a
            .validate(None, true)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        let a = OutputArgs {
            json: Some("-".into()),
            ..Default::default()
        };
        assert!(a.validate(None, true).unwrap().text_to_stderr());
        // Refused before the run: a directory, stdout for a file-only output, one file for
        // two outputs.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let f = format!("{d}/r.json");
        let cases: [(OutputArgs, &str); 4] = [
            (
                OutputArgs {
                    json: Some(d.clone()),
                    ..Default::default()
                },
                "a directory",
            ),
            (
                OutputArgs {
                    json: Some(format!("{d}/sub/")),
                    ..Default::default()
                },
                "a directory",
            ),
            (
                OutputArgs {
                    junit: Some("-".into()),
                    ..Default::default()
                },
                "only --json",
            ),
            (
                OutputArgs {
                    json: Some(f.clone()),
                    hlog: Some(f.clone()),
                    ..Default::default()
                },
                "--json and --hlog name the same file",
            ),
        ];
        for (a, needle) in cases {
            let e = a.validate(None, true).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let a = OutputArgs {
            json: Some(f),
            ..Default::default()
        };
        assert!(a.validate(None, true).is_ok());
    }
}
