//! `loadgen find`'s flags and their validation into the search's settings.

use std::time::Duration;

use clap::{ArgAction, Args};

use super::{rate_for_threads, values, LoadArgs, MAX_RATE};
use crate::error::{Error, Result};

/// `loadgen find`: the highest constant rate at which every threshold holds.
#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct FindArgs {
    /// A threshold every step must meet, e.g. 'p99<=20ms', 'errors<=0.1%' (repeatable; at
    /// least one, or --fail-on-errors). See docs/slo.md
    #[arg(long = "slo", value_name = "EXPR", action = ArgAction::Append)]
    pub slo: Vec<String>,
    /// Also require that no request failed (the same as --slo 'errors==0')
    #[arg(long = "fail-on-errors")]
    pub fail_on_errors: bool,
    /// First rate to try, req/s [default: a 1s closed-loop probe's rate / 10]
    #[arg(long = "start", value_name = "N", allow_hyphen_values = true, value_parser = values::Rate)]
    pub start: Option<f64>,
    /// Highest rate to try, req/s [default: 1G]
    #[arg(long = "max", value_name = "N", allow_hyphen_values = true, value_parser = values::Rate)]
    pub max: Option<f64>,
    /// Factor between climbing steps, more than 1
    #[arg(long = "factor", value_name = "F", default_value = "2")]
    pub factor: f64,
    /// Bisect until the first failing rate is within this much of the highest passing one,
    /// 0.1% to 50%
    #[arg(long = "precision", value_name = "P", default_value = "2%")]
    pub precision: String,
    /// Length of each step (an open-loop run at one constant rate)
    #[arg(
        long = "step-duration",
        value_name = "T",
        default_value = "5s",
        allow_hyphen_values = true,
        value_parser = values::PositiveDuration
    )]
    pub step_duration: Duration,
    /// Length of the run that confirms the rate found (0: no confirmation); one that fails
    /// steps down by --precision and confirms again, at most 3 times [default: 3 x
    /// --step-duration]
    #[arg(long = "confirm", value_name = "T", allow_hyphen_values = true, value_parser = values::AnyDuration)]
    pub confirm: Option<Duration>,
    /// Write every step's full result, and what was found, as JSON to FILE (schema
    /// loadgen.find, docs/find.md)
    #[arg(long = "json", value_name = "FILE")]
    pub json: Option<String>,
    /// Print each step's progress line every second on stderr even when it is not a terminal
    /// (on a terminal it is redrawn in place anyway)
    #[arg(long = "progress")]
    pub progress: bool,
    /// Write an HTML report of the search (every step's rate, achieved rate, p99 and
    /// verdict, charted) to FILE
    #[arg(long = "html", value_name = "FILE")]
    pub html: Option<String>,
    /// The live dashboard (the steps as each finishes).
    #[command(flatten)]
    pub dashboard: super::DashboardArgs,
    /// What to load and how (the load-test flags, without -d and -R).
    #[command(flatten)]
    pub load: LoadArgs,
}

impl FindArgs {
    /// Validates the flags into the search's [`Settings`](crate::find::Settings).
    pub fn to_settings(&self) -> Result<crate::find::Settings> {
        let base = self.load.to_config()?;
        let slos = crate::slo::parse_all(&self.slo, self.fail_on_errors)?;
        if slos.is_empty() {
            return Err(Error::Usage(
                "find: give at least one threshold to hold, e.g. --slo 'p99<=20ms'".into(),
            ));
        }
        let start = self
            .start
            .map(|s| rate_for_threads(s, "--start", base.threads))
            .transpose()?;
        let max = match self.max {
            Some(m) => rate_for_threads(m, "--max", base.threads)?,
            None => MAX_RATE,
        };
        if let Some(s) = start {
            if s > max {
                return Err(Error::Usage(format!("--start {s} is above --max {max}")));
            }
        }
        if !(self.factor > 1.0 && self.factor <= 100.0) {
            return Err(Error::Usage(format!(
                "--factor: must be more than 1 and at most 100, got {}",
                self.factor
            )));
        }
        let p = self.precision.trim();
        let precision: f64 = p
            .strip_suffix('%')
            .unwrap_or(p)
            .trim()
            .parse()
            .map_err(|_| {
                Error::Usage(format!(
                    "--precision: expected a percentage such as 2%, got {p:?}"
                ))
            })?;
        if !(0.1..=50.0).contains(&precision) {
            return Err(Error::Usage(format!(
                "--precision: must be from 0.1% to 50%, got {p:?}"
            )));
        }
        let step = self.step_duration;
        let confirm = match self.confirm {
            None => Some(step * 3),
            Some(c) if c.is_zero() => None,
            Some(c) => Some(c),
        };
        let json = match self.json.as_deref() {
            None => None,
            Some("-") => {
                return Err(Error::Usage(
                    "--json: find writes its result to a file; give a file name".into(),
                ))
            }
            Some(p) => Some(crate::results::args::out_path(p, "--json")?),
        };
        let html = self
            .html
            .as_deref()
            .map(|p| crate::results::args::out_path(p, "--html"))
            .transpose()?;
        if html.is_some() && html == json {
            return Err(Error::Usage("--json and --html name the same file".into()));
        }
        Ok(crate::find::Settings {
            pacing: self.load.pacing_mode(),
            base,
            slos,
            start,
            max,
            factor: self.factor,
            precision: precision / 100.0,
            step,
            confirm,
            json,
            progress: crate::live::Mode::choose(self.progress, false),
            html,
            dashboard: self.dashboard.settings()?,
        })
    }
}
