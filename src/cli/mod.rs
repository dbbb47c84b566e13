//! Command-line definitions (clap derive) with wrk2's flags, defaults and meanings, and their
//! validation into a [`Config`]. Nothing below this layer sees a string flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{Config, HttpVersion, Pacing, PacingMode, Target};
use crate::conn_profile::ConnProfile;
use crate::error::{Error, Result};
use crate::schedule::RateProfile;
use crate::units::{parse_count, parse_duration};

mod dashboard;
mod find;
mod profile;

pub use dashboard::DashboardArgs;
pub use find::FindArgs;
pub use profile::{conn_stages, stages, step};
mod serve;
pub mod values;
pub use serve::{DemoArgs, KnobArgs, ServeArgs};
use values::{ArrivalsArg, HttpArg, PacingArg};

/// loadgen: a wrk2-compatible HTTP load generator with constant-throughput (open-loop) load and
/// coordinated-omission-corrected latency.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    // As wrk (getopt): a flag given twice takes its last value (`-d3s -d2s` runs 2s).
    // Repeatable flags (-H, --slo) still collect every value.
    args_override_self = true,
    override_usage = "loadgen [OPTIONS] <URL> [-- SCRIPT_ARGS...]\n       loadgen serve [OPTIONS]\n       loadgen demo [OPTIONS]\n       loadgen find [OPTIONS] --slo <EXPR>... <URL>\n       loadgen merge [OPTIONS] <RESULT>...\n       loadgen report [OPTIONS] <RESULT>",
    after_help = "Numbers take SI suffixes (10k, 1M); times take us, ms, s, m, h (a bare number is seconds). Flags may also follow the URL; put -- before script arguments.\nWith -R, latency is measured from when each request should have been sent (coordinated-omission corrected), to when the response reached the socket (kernel receive timestamp).\nWithout -R, loadgen runs closed loop at maximum throughput, like wrk.\nExit codes: 0 ok, 1 run failed, 2 usage error, 3 threshold breached."
)]
pub struct Cli {
    /// A subcommand; without one, loadgen runs a load test against URL.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Load-test flags (wrk2's).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands besides the default load test.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in target server (for demos and tests); on Ctrl-C or SIGTERM it prints the
    /// service times it delivered
    Serve(ServeArgs),
    /// Start the built-in server on a loopback port and run a short constant-rate test against it.
    Demo(DemoArgs),
    /// Find the highest constant rate at which every --slo threshold holds: climb, bisect,
    /// confirm, with short open-loop runs.
    Find(Box<FindArgs>),
    /// Merge JSON results (from several processes or machines) exactly and print the report.
    Merge(crate::results::MergeArgs),
    /// Re-print a saved JSON result (and re-check its thresholds).
    Report(crate::results::ReportArgs),
}

/// wrk2's load-test flags plus loadgen's additions.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Duration of the test, e.g. 30s, 2m, 1h (a bare number is seconds) [default: 10s]
    #[arg(
        short = 'd',
        long = "duration",
        value_name = "T",
        allow_hyphen_values = true,
        value_parser = values::PositiveDuration
    )]
    pub duration: Option<Duration>,
    /// Total requests per second (open loop, e.g. 10k; at most 1G); without it, closed loop at
    /// full speed
    #[arg(
        short = 'R',
        long = "rate",
        value_name = "N",
        allow_hyphen_values = true,
        value_parser = values::Rate
    )]
    pub rate: Option<f64>,
    /// Rate profile (open loop), k6's stages: DUR:RATE[,DUR:RATE...]. The rate moves linearly
    /// from the previous target (the first from -R if given, else 0) to each stage's RATE over
    /// its DUR; a 0s stage is a jump. The run lasts the stages' sum (not with -d)
    #[arg(long = "stages", value_name = "STAGES", conflicts_with = "step")]
    pub stages: Option<String>,
    /// Step load: START+STEP/EVERY..END, e.g. 1000+500/30s..5000: START req/s for EVERY, then
    /// STEP more every EVERY until END, which is held for EVERY too (not with -R or -d)
    #[arg(long = "step", value_name = "SPEC")]
    pub step: Option<String>,
    /// Closed-loop ramp (k6's ramping-vus): DUR:N[,DUR:N...]. The connections in use move
    /// linearly from 0 (then from the previous target) to each stage's N over its DUR; a 0s
    /// stage is a jump. Each sends back to back, opened when it joins and closed when it
    /// leaves. The run lasts the stages' sum and its peak is -c (not with -R, --stages,
    /// --step, -d or -c)
    #[arg(long = "conn-stages", value_name = "STAGES")]
    pub conn_stages: Option<String>,
    /// How requests arrive within the rate: uniform (evenly spaced, wrk2's plan) or poisson
    /// (exponential gaps at the rate, as independent users arrive; seeded by --seed)
    #[arg(long = "arrivals", value_name = "KIND", value_enum, default_value_t = ArrivalsArg::Uniform)]
    pub arrivals: ArrivalsArg,
    /// Seed of the Poisson arrivals: the same seed gives the same plan [default: from the
    /// clock, printed in the report and the JSON]
    #[arg(long = "seed", value_name = "N")]
    pub seed: Option<u64>,
    /// What to load and how: connections, threads, requests, pacing, TLS, the URL.
    #[command(flatten)]
    pub load: LoadArgs,
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
    /// With pipelining, time whole batches (accepted for wrk2 compatibility; loadgen always
    /// times each response)
    #[arg(short = 'B', long = "batch_latency", hide = true)]
    pub batch_latency: bool,
    /// Results: JSON, thresholds, JUnit, interval log, quiet.
    #[command(flatten)]
    pub output: crate::results::OutputArgs,
    /// Print a progress line every second on stderr even when it is not a terminal (on a
    /// terminal the line is redrawn in place anyway; -q silences it)
    #[arg(long = "progress")]
    pub progress: bool,
    /// Sample this process' CPU, memory and threads once a second (repeatable): shown in the
    /// progress line, the report and the JSON
    #[arg(long = "watch-pid", value_name = "PID", action = ArgAction::Append)]
    pub watch_pid: Vec<u32>,
    /// The live dashboard.
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    /// Print version
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}

impl RunArgs {
    /// The live view's options (`--progress`, `--watch-pid`, `-q`); a `--watch-pid` that
    /// names no running process is a usage error.
    pub fn live_options(&self) -> Result<crate::live::Options> {
        crate::watch::check(&self.watch_pid)?;
        Ok(crate::live::Options {
            mode: crate::live::Mode::choose(self.progress, self.output.quiet),
            pids: self.watch_pid.clone(),
            label: String::new(),
            dashboard: None,
        })
    }
}

/// The flags that say what load to send and how, shared by a load test and `find` (which
/// chooses the rate and duration of its steps itself).
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Connections to keep open, in total (split evenly over threads) [default: 10]
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        allow_hyphen_values = true,
        value_parser = values::Count
    )]
    pub connections: Option<usize>,
    /// Number of worker threads
    #[arg(
        short = 't',
        long = "threads",
        default_value = "2",
        value_name = "N",
        allow_hyphen_values = true,
        value_parser = values::Count
    )]
    pub threads: usize,
    /// Lua script (wrk/wrk2 API)
    #[arg(short = 's', long = "script", value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Add a request header, "Name: value" (repeatable)
    #[arg(short = 'H', long = "header", value_name = "H", action = ArgAction::Append)]
    pub headers: Vec<String>,
    /// Request timeout, at least 1ms: a response not complete in this time counts as a timeout
    /// error (with -R, also as a lower bound in the corrected latencies)
    #[arg(
        long = "timeout",
        default_value = "2s",
        value_name = "T",
        allow_hyphen_values = true,
        value_parser = values::PositiveDuration
    )]
    pub timeout: Duration,
    /// How requests wait for their intended send time: precise (timerfd, microseconds),
    /// coarse (the thread wakes once per --tick: a quarter of the CPU; requests leave in
    /// per-tick batches, up to a tick early, timed from their actual send), or auto: coarse
    /// when a thread's share of -R puts 4 or more requests in each 750us tick (5334 req/s a
    /// thread), with the tick shortened so that no tick sends more than 10 together (down to
    /// 100us), else precise; under --stages or --step, following the rate as it moves
    #[arg(long = "pacing", value_name = "MODE", value_enum, default_value_t = PacingArg::Auto)]
    pub pacing: PacingArg,
    /// Coarse pacing's tick, 100us to 10ms: longer costs less CPU, but each tick's requests
    /// reach the server as one larger burst; with --pacing auto, implies coarse [default:
    /// 750us, or the shorter one auto chooses]
    #[arg(long = "tick", value_name = "T", value_parser = values::PositiveDuration)]
    pub tick: Option<Duration>,
    /// HTTP method
    #[arg(
        short = 'm',
        long = "method",
        default_value = "GET",
        value_name = "METHOD"
    )]
    pub method: String,
    /// Request body
    #[arg(long = "body", value_name = "STRING", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from a file
    #[arg(long = "body-file", value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Do not verify TLS certificates (verification is on by default)
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Also trust the CA certificates in this PEM file
    #[arg(long = "cacert", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Speak HTTP/2: by ALPN h2 over https:// (an error if the server does not select it),
    /// with prior knowledge (h2c) over http://. Same as --http-version 2
    #[arg(long = "http2", conflicts_with = "http_version")]
    pub http2: bool,
    /// HTTP version: 1.1 (default), 2 (as --http2), or auto (over https://, offer h2 and
    /// http/1.1 by ALPN and speak what the server selects; HTTP/1.1 over http://)
    #[arg(long = "http-version", value_name = "V", value_enum)]
    pub http_version: Option<HttpArg>,
    /// HTTP/2: concurrent streams per connection (h2load's -m); -R is spread over
    /// connections x streams, each stream keeping its own plan [default: 1]
    #[arg(
        long = "streams",
        value_name = "N",
        allow_hyphen_values = true,
        value_parser = values::Count
    )]
    pub streams: Option<usize>,
    /// Target URL: http://host:port/path or https://... (the port is optional)
    #[arg(value_name = "URL", required = true)]
    pub url: Option<String>,
    /// Arguments passed to the script's init(args), after the URL. As with wrk (GNU getopt),
    /// flags are read anywhere, also after the URL; `--` ends them, so an argument that starts
    /// with `-` goes after it
    #[arg(value_name = "SCRIPT_ARGS")]
    pub script_args: Vec<String>,
}

/// The highest `-R` accepted: the plan's slots are whole nanoseconds apart.
const MAX_RATE: f64 = 1e9;

/// `-c` when not given (wrk's default).
const DEFAULT_CONNECTIONS: usize = 10;

fn usage(e: crate::units::ParseError, flag: &str) -> Error {
    Error::Usage(format!("{flag}: {e}"))
}

/// The highest count `-t`/`-c` accept.
const MAX_COUNT: f64 = 10_000_000.0;

/// The longest duration accepted (what [`parse_duration`] can represent), s.
const MAX_DURATION_S: f64 = 1e9;

/// Parses a positive whole count such as `-c 10k`.
pub fn count(s: &str, flag: &str) -> Result<usize> {
    let v = parse_count(s).map_err(|e| usage(e, flag))?;
    if v > MAX_COUNT {
        return Err(Error::Usage(format!(
            "{flag}: too large: at most {MAX_COUNT}, got {s:?}"
        )));
    }
    if v < 1.0 || v.fract() != 0.0 {
        return Err(Error::Usage(format!(
            "{flag}: must be a whole number >= 1, got {s:?}"
        )));
    }
    Ok(v as usize)
}

/// Parses a positive duration such as `-d 30s`. A negative or too long one is refused with
/// a message that says so, rather than as an unreadable duration.
pub fn duration(s: &str, flag: &str) -> Result<Duration> {
    let d = parse_duration(s).map_err(|e| match out_of_range(s) {
        Some(true) => Error::Usage(format!("{flag}: must be greater than zero, got {s:?}")),
        Some(false) => Error::Usage(format!(
            "{flag}: too long: at most {MAX_DURATION_S}s (about 31 years), got {s:?}"
        )),
        None => usage(e, flag),
    })?;
    if d.is_zero() {
        return Err(Error::Usage(format!("{flag}: must be greater than zero")));
    }
    Ok(d)
}

/// Why a duration that [`parse_duration`] refused is refused, when it is a number with a
/// known unit: `Some(true)` negative, `Some(false)` too long; `None` when it is unreadable.
fn out_of_range(s: &str) -> Option<bool> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().ok()?;
    if !["", "s", "ms", "us", "m", "h", "d"].contains(&unit) || v.is_nan() {
        return None;
    }
    Some(v < 0.0)
}

/// Parses one `-H` header: `Name: value`.
pub fn header(h: &str) -> Result<(String, String)> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| Error::Usage(format!("-H: expected \"Name: value\", got {h:?}")))?;
    let k = k.trim();
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(Error::Usage(format!("-H: invalid header name in {h:?}")));
    }
    if v.contains(['\r', '\n']) {
        return Err(Error::Usage(format!(
            "-H: header value contains a line break: {h:?}"
        )));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

/// Parses a total request rate for `flag` (`-R`, `find --start`): positive and at most 1G
/// req/s ([`values::Rate`]).
pub fn rate_value(s: &str, flag: &str) -> Result<f64> {
    let rate = parse_count(s).map_err(|e| usage(e, flag))?;
    if rate <= 0.0 {
        return Err(Error::Usage(format!(
            "{flag}: must be greater than zero, got {s:?}"
        )));
    }
    if rate > MAX_RATE {
        return Err(Error::Usage(format!(
            "{flag}: at most 1G req/s (one request a nanosecond), got {s:?}"
        )));
    }
    Ok(rate)
}

/// A total rate for `flag` checked against the threads: at least one request a second each.
pub fn rate_for_threads(rate: f64, flag: &str, threads: usize) -> Result<f64> {
    if rate < threads as f64 {
        return Err(Error::Usage(format!(
            "{flag}: {rate} req/s is less than one per thread ({threads} threads); lower -t"
        )));
    }
    Ok(rate)
}

impl RunArgs {
    /// The rate profile `--stages` or `--step` asks for, starting from `rate` (`-R`).
    fn profile(&self, rate: Option<f64>) -> Result<Option<crate::schedule::Stages>> {
        let (list, flag) = match (&self.stages, &self.step) {
            (Some(s), _) => (stages(s)?, "--stages"),
            (None, Some(s)) => {
                if rate.is_some() {
                    return Err(Error::Usage(
                        "--step: not with -R (the step load sets its own start)".into(),
                    ));
                }
                (step(s)?, "--step")
            }
            (None, None) => return Ok(None),
        };
        crate::schedule::Stages::new(rate.unwrap_or(0.0), list)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{flag}: {e}")))
    }

    /// `--conn-stages`, validated against the flags it excludes.
    fn conn_profile(&self) -> Result<Option<ConnProfile>> {
        let Some(spec) = &self.conn_stages else {
            return Ok(None);
        };
        if self.rate.is_some() || self.stages.is_some() || self.step.is_some() {
            return Err(Error::Usage(
                "--conn-stages: closed loop only, not with -R, --stages or --step".into(),
            ));
        }
        if self.duration.is_some() {
            return Err(Error::Usage(
                "-d/--duration: not with --conn-stages, which sets the run's length".into(),
            ));
        }
        if self.load.connections.is_some() {
            return Err(Error::Usage(
                "-c/--connections: not with --conn-stages, whose peak is the connection count"
                    .into(),
            ));
        }
        ConnProfile::new(conn_stages(spec)?)
            .map(Some)
            .map_err(|e| Error::Usage(format!("--conn-stages {spec:?}: {e}")))
    }

    /// Validates the flags into a [`Config`].
    pub fn to_config(&self) -> Result<Config> {
        let conns = self.conn_profile()?;
        let mut c = self
            .load
            .config_with(conns.as_ref().map(ConnProfile::peak))?;
        if let Some(p) = conns {
            c.duration = p.duration();
            c.conn_profile = Some(p);
        }
        if let Some(d) = self.duration {
            c.duration = d;
        }
        if let Some(r) = self.rate {
            c.rate = Some(RateProfile::Constant(rate_for_threads(
                r,
                "-R/--rate",
                c.threads,
            )?));
        }
        if let Some(profile) = self.profile(c.target_rate())? {
            if self.duration.is_some() {
                return Err(Error::Usage(
                    "-d/--duration: not with --stages or --step, which set the run's length".into(),
                ));
            }
            if profile.peak() > MAX_RATE {
                return Err(Error::Usage(
                    "--stages: at most 1G req/s (one request a nanosecond)".into(),
                ));
            }
            c.duration = profile.duration();
            c.rate = Some(RateProfile::Stages(profile));
        }
        if self.arrivals == ArrivalsArg::Poisson {
            if c.rate.is_none() {
                return Err(Error::Usage(
                    "--arrivals poisson: needs a rate (-R, --stages or --step)".into(),
                ));
            }
            let seed = self.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    % 1_000_000_007
            });
            c.arrivals = crate::schedule::Arrivals::Poisson { seed };
        } else if self.seed.is_some() {
            return Err(Error::Usage(
                "--seed: only with --arrivals poisson (uniform arrivals are not random)".into(),
            ));
        }
        c.set_pacing(self.load.pacing_mode());
        c.latency = self.latency || self.u_latency;
        c.u_latency = self.u_latency;
        c.timing = self.timing;
        Ok(c)
    }
}

impl LoadArgs {
    /// How `--pacing` (and `--tick`) choose the pacing of a run at a given rate.
    pub fn pacing_mode(&self) -> PacingMode {
        match self.pacing {
            PacingArg::Coarse => PacingMode::Fixed(Pacing::Coarse),
            PacingArg::Precise => PacingMode::Fixed(Pacing::Precise),
            PacingArg::Auto => PacingMode::Auto {
                tick: self.tick.is_some(),
            },
        }
    }

    /// Validates the flags into a closed-loop [`Config`] with the default duration; the
    /// caller sets the rate and duration, then the pacing ([`LoadArgs::pacing_mode`]).
    pub fn to_config(&self) -> Result<Config> {
        self.config_with(None)
    }

    /// [`LoadArgs::to_config`], with `peak` connections from `--conn-stages` in place of `-c`.
    pub fn config_with(&self, peak: Option<usize>) -> Result<Config> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| Error::Usage("missing URL".into()))?;
        let target = Target::parse(url)?;
        let mut c = Config::new(target);
        c.threads = self.threads;
        c.connections = peak.or(self.connections).unwrap_or(DEFAULT_CONNECTIONS);
        if c.connections < c.threads {
            return Err(Error::Usage(match peak {
                Some(n) => format!(
                    "--conn-stages: its peak of {n} connections is fewer than the {} threads; \
                     lower -t",
                    c.threads
                ),
                None => format!(
                    "number of connections must be >= threads ({} connections, {} threads)",
                    c.connections, c.threads
                ),
            }));
        }
        c.timeout = self.timeout;
        // tokio's timer, which enforces it, counts whole milliseconds.
        if c.timeout < std::time::Duration::from_millis(1) {
            return Err(Error::Usage(format!(
                "--timeout: at least 1ms, got {:?}",
                self.timeout
            )));
        }
        if let Some(d) = self.tick {
            if self.pacing == PacingArg::Precise {
                return Err(Error::Usage(
                    "--tick: not with --pacing precise (precise pacing has no tick)".into(),
                ));
            }
            if !(Duration::from_micros(100)..=Duration::from_millis(10)).contains(&d) {
                return Err(Error::Usage(format!(
                    "--tick: must be from 100us to 10ms, got {d:?}"
                )));
            }
            c.tick = d;
        }
        c.set_pacing(self.pacing_mode());
        c.headers = self
            .headers
            .iter()
            .map(|h| header(h))
            .collect::<Result<_>>()?;
        let m = self.method.trim();
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return Err(Error::Usage(format!("-m/--method: invalid method {m:?}")));
        }
        c.method = m.to_ascii_uppercase();
        c.body = match (&self.body, &self.body_file) {
            (Some(b), _) => Some(b.clone().into_bytes()),
            (None, Some(p)) => Some(std::fs::read(p).map_err(|e| {
                Error::Usage(format!("--body-file: cannot read {}: {e}", p.display()))
            })?),
            (None, None) => None,
        };
        c.insecure = self.insecure;
        if let Some(p) = &self.cacert {
            if !p.is_file() {
                return Err(Error::Usage(format!(
                    "--cacert: cannot read {}",
                    p.display()
                )));
            }
        }
        c.cacert = self.cacert.clone();
        if let Some(p) = &self.script {
            if let Err(e) = std::fs::metadata(p) {
                return Err(Error::Usage(format!(
                    "-s/--script: cannot read {}: {e}",
                    p.display()
                )));
            }
        }
        c.script = self.script.clone();
        c.http = match (self.http2, self.http_version) {
            (true, _) | (_, Some(HttpArg::Http2)) => HttpVersion::Http2,
            (_, Some(HttpArg::Auto)) => HttpVersion::Auto,
            _ => HttpVersion::Http1,
        };
        if let Some(n) = self.streams {
            c.streams = n;
            if c.http == HttpVersion::Http1 && c.streams > 1 {
                return Err(Error::Usage(
                    "--streams: needs HTTP/2 (--http2 or --http-version 2|auto); HTTP/1.1 \
                     has one request in flight per connection"
                        .into(),
                ));
            }
        }
        c.script_args = std::iter::once(url.to_string())
            .chain(self.script_args.iter().cloned())
            .collect();
        Ok(c)
    }
}

#[cfg(test)]
mod tests;
