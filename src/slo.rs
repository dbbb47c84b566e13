//! Thresholds (service-level objectives) over a run's result: the `--slo EXPR` grammar, its
//! parser, and evaluation against a [`Summary`].
//!
//! ```text
//! expr     = metric op value            (spaces anywhere are ignored)
//! op       = "<" | "<=" | ">" | ">=" | "=="
//! metric   = latency | "errors" | "dropped" | "rate" | "requests" | status
//! latency  = [ "uncorrected." | "lag." | phase "." ] ( "p" NUMBER | "mean" | "max" | "stdev" )
//! phase    = "dns" | "connecting" | "tls_handshaking" | "sending" | "waiting" | "receiving"
//! status   = "status" DIGIT "xx"  |  "status" DIGIT DIGIT DIGIT
//! value    = NUMBER unit            latency: unit is us, ms, s or m (required)
//!          | NUMBER "%"             errors, dropped, status: share; rate: share of the target
//!          | NUMBER [k|M|G]         errors, dropped, status, requests: a count; rate: req/s
//! ```
//!
//! Latency metrics read the corrected histogram unless prefixed (`uncorrected.` for
//! response − actual send, `lag.` for the generator's send lag, a phase of the timing breakdown
//! such as `waiting.` or `connecting.`: `crate::timing`); values are compared as the
//! report prints them (HdrHistogram, 3 significant digits). `errors` counts socket errors and
//! non-2xx/3xx responses; as a share it is of all attempts (responses + socket errors).
//! `dropped` counts planned requests never sent in time (every connection busy); as a share
//! it is of the planned requests that ended one way or another (attempts + dropped).
//! A malformed expression is a usage error, reported before any load is sent.
//! The reference, with examples, is docs/slo.md.

use std::fmt;

use hdrhistogram::Histogram;

use crate::error::{Error, Result};
use crate::summary::Summary;
use crate::timing::Phase;
use crate::units::{format_time_us, parse_count};

/// How a metric is compared with its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    /// Whether `actual op limit` holds.
    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
            Op::Eq => actual == limit,
        }
    }
}

/// Which latency histogram a latency metric reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Response complete − intended send (the default).
    Corrected,
    /// Response complete − actual send (`uncorrected.`).
    Uncorrected,
    /// Actual send − intended send (`lag.`).
    SendLag,
    /// A phase of the timing breakdown (`waiting.`, `connecting.`, …).
    Phase(Phase),
}

/// A statistic of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A percentile in (0, 100].
    Percentile(f64),
    /// The mean.
    Mean,
    /// The maximum.
    Max,
    /// The standard deviation.
    Stdev,
}

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A latency statistic, in µs.
    Latency(Which, Stat),
    /// Errors of every kind: a count, or a share of attempts.
    Errors,
    /// Planned requests never sent in time: a count, or a share of attempts + dropped.
    Dropped,
    /// Achieved request rate: req/s, or a share of the target rate.
    Rate,
    /// Completed responses.
    Requests,
    /// Responses with a status in `lo..hi`: a count, or a share of responses.
    Status(u16, u16),
}

/// The limit on the right-hand side, in the unit the metric is compared in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Microseconds (latency metrics).
    Micros(f64),
    /// Percent (errors, status, rate of target).
    Percent(f64),
    /// A plain number (counts, or req/s for `rate`).
    Number(f64),
}

impl Limit {
    fn value(self) -> f64 {
        match self {
            Limit::Micros(v) | Limit::Percent(v) | Limit::Number(v) => v,
        }
    }

    /// The unit name used in JSON results.
    pub fn unit(self, metric: &Metric) -> &'static str {
        match (self, metric) {
            (Limit::Micros(_), _) => "us",
            (Limit::Percent(_), _) => "percent",
            (Limit::Number(_), Metric::Rate) => "req/s",
            (Limit::Number(_), _) => "count",
        }
    }
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The expression as the user wrote it (trimmed): the threshold's name in reports.
    pub expr: String,
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// With what.
    pub limit: Limit,
}

/// The verdict on one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The threshold's expression.
    pub expr: String,
    /// The metric's name as written (e.g. `p99`, `status5xx`).
    pub metric: String,
    /// The operator as written.
    pub op: &'static str,
    /// The limit, in `unit`.
    pub limit: f64,
    /// `us`, `percent`, `count` or `req/s`.
    pub unit: &'static str,
    /// The measured value in `unit`; `None` when there was nothing to measure (no responses).
    pub actual: Option<f64>,
    /// Whether the threshold held.
    pub pass: bool,
    /// The measured value for people, e.g. `p99 = 1.23ms` or `errors = 0.50% (5 of 1000)`.
    pub detail: String,
}

fn usage(expr: &str, why: impl fmt::Display) -> Error {
    Error::Usage(format!(
        "--slo {expr:?}: {why} (e.g. 'p99<=250ms', 'errors<=0.1%'; see docs/slo.md)"
    ))
}

/// Splits `text` into (number, suffix) at the first character that is not part of a number.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn parse_number(expr: &str, s: &str) -> Result<f64> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(usage(expr, format!("{s:?} is not a number"))),
    }
}

fn parse_metric(expr: &str, name: &str) -> Result<Metric> {
    let lower = name.to_ascii_lowercase();
    let (which, stat) = if let Some(r) = lower.strip_prefix("uncorrected.") {
        (Some(Which::Uncorrected), r)
    } else if let Some(r) = lower.strip_prefix("lag.") {
        (Some(Which::SendLag), r)
    } else if let Some((p, r)) = lower
        .split_once('.')
        .and_then(|(k, r)| Some((Phase::from_key(k)?, r)))
    {
        (Some(Which::Phase(p)), r)
    } else {
        (None, lower.as_str())
    };
    let latency = match stat {
        "mean" => Some(Stat::Mean),
        "max" => Some(Stat::Max),
        "stdev" => Some(Stat::Stdev),
        s if s.starts_with('p') && s.len() > 1 => {
            let p = parse_number(expr, &s[1..])
                .map_err(|_| usage(expr, format!("{name:?} is not a percentile such as p99")))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(usage(expr, "a percentile must be above 0 and at most 100"));
            }
            Some(Stat::Percentile(p))
        }
        _ => None,
    };
    if let Some(stat) = latency {
        return Ok(Metric::Latency(which.unwrap_or(Which::Corrected), stat));
    }
    if which.is_some() {
        return Err(usage(
            expr,
            format!(
                "{name:?}: after uncorrected., lag. or a timing phase comes p<N>, mean, max or stdev"
            ),
        ));
    }
    match stat {
        "errors" => return Ok(Metric::Errors),
        "dropped" => return Ok(Metric::Dropped),
        "rate" => return Ok(Metric::Rate),
        "requests" => return Ok(Metric::Requests),
        _ => {}
    }
    if let Some(code) = stat.strip_prefix("status") {
        let b = code.as_bytes();
        if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && &code[1..] == "xx" {
            let lo = u16::from(b[0] - b'0') * 100;
            return Ok(Metric::Status(lo, lo + 100));
        }
        if let Ok(c) = code.parse::<u16>() {
            if code.len() == 3 && (100..=999).contains(&c) {
                return Ok(Metric::Status(c, c + 1));
            }
        }
        return Err(usage(
            expr,
            format!("{name:?}: use status<D>xx (e.g. status5xx) or a code (e.g. status503)"),
        ));
    }
    Err(usage(
        expr,
        format!(
            "unknown metric {name:?}: use p<N>, mean, max, stdev, errors, dropped, rate, requests, status<D>xx, or a timing phase (waiting.p99, connecting.max, …)"
        ),
    ))
}

fn parse_limit(expr: &str, metric: &Metric, value: &str) -> Result<Limit> {
    if value.is_empty() {
        return Err(usage(expr, "missing value after the operator"));
    }
    if let Metric::Latency(..) = metric {
        let (num, unit) = split_number(value);
        if num.is_empty() {
            return Err(usage(
                expr,
                format!("{value:?} is not a latency (e.g. 250ms)"),
            ));
        }
        let v = parse_number(expr, num)?;
        let scale = match unit {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "m" => 60e6,
            "" => return Err(usage(expr, "a latency needs a unit: us, ms, s or m")),
            u => {
                return Err(usage(
                    expr,
                    format!("unknown time unit {u:?}: use us, ms, s or m"),
                ))
            }
        };
        return Ok(Limit::Micros(v * scale));
    }
    if let Some(num) = value.strip_suffix('%') {
        if *metric == Metric::Requests {
            return Err(usage(expr, "requests takes a count, not a percentage"));
        }
        let v = parse_number(expr, num)?;
        if v > 100.0 && *metric != Metric::Rate {
            return Err(usage(expr, "a share cannot exceed 100%"));
        }
        return Ok(Limit::Percent(v));
    }
    match parse_count(value) {
        Ok(v) if v >= 0.0 => Ok(Limit::Number(v)),
        _ => Err(usage(expr, format!("{value:?} is not a number"))),
    }
}

impl Slo {
    /// Parses one expression (see the module documentation for the grammar).
    pub fn parse(expr: &str) -> Result<Slo> {
        let trimmed = expr.trim();
        let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| usage(trimmed, "missing comparison (<, <=, >, >=, ==)"))?;
        let (name, rest) = compact.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("==") {
            (Op::Eq, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return Err(usage(
                trimmed,
                format!(
                    "unknown comparison starting at {:?}: use <, <=, >, >= or ==",
                    &rest[..1]
                ),
            ));
        };
        if name.is_empty() {
            return Err(usage(trimmed, "missing metric before the comparison"));
        }
        if value.starts_with(['<', '>', '=', '!']) {
            return Err(usage(trimmed, "unknown comparison: use <, <=, >, >= or =="));
        }
        let metric = parse_metric(trimmed, name)?;
        let limit = parse_limit(trimmed, &metric, value)?;
        Ok(Slo {
            expr: trimmed.to_string(),
            metric,
            op,
            limit,
        })
    }

    /// The metric part of the expression as written, e.g. `p99.9` or `status5xx`.
    pub fn metric_name(&self) -> String {
        let compact: String = self.expr.chars().filter(|c| !c.is_whitespace()).collect();
        let end = compact.find(['<', '>', '=']).unwrap_or(compact.len());
        compact[..end].to_string()
    }

    /// Whether evaluating this threshold needs a target rate (`rate` as a percentage).
    pub fn needs_target_rate(&self) -> bool {
        self.metric == Metric::Rate && matches!(self.limit, Limit::Percent(_))
    }

    /// Evaluates the threshold against a run's summary.
    pub fn evaluate(&self, s: &Summary) -> Outcome {
        let name = self.metric_name();
        let st = &s.stats;
        let pct = |n: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                n as f64 * 100.0 / of as f64
            }
        };
        let (actual, detail): (Option<f64>, String) = match (&self.metric, self.limit) {
            (Metric::Latency(which, stat), _) => {
                let h: &Histogram<u64> = match which {
                    Which::Corrected => &st.corrected,
                    Which::Uncorrected => &st.uncorrected,
                    Which::SendLag => &st.send_lag,
                    Which::Phase(p) => st.timing.get(*p),
                };
                if h.is_empty() {
                    let what = match which {
                        Which::Phase(Phase::Dns) => "no name lookup",
                        Which::Phase(Phase::TlsHandshaking) => "no TLS handshakes",
                        Which::Phase(Phase::Connecting) => "no connections opened",
                        _ => "no responses",
                    };
                    (None, format!("{name}: {what}"))
                } else {
                    let v = match stat {
                        Stat::Percentile(p) => crate::hdr::value_at_percentile(h, *p) as f64,
                        Stat::Mean => h.mean(),
                        Stat::Max => h.max() as f64,
                        Stat::Stdev => h.stdev(),
                    };
                    (Some(v), format!("{name} = {}", format_time_us(v)))
                }
            }
            (Metric::Errors, limit) => {
                let errors = st.errors.socket() + st.errors.status;
                let attempts = st.requests + st.errors.socket();
                match limit {
                    Limit::Percent(_) => {
                        let p = pct(errors, attempts);
                        (
                            Some(p),
                            format!("{name} = {} ({errors} of {attempts} attempts)", percent(p)),
                        )
                    }
                    _ => (
                        Some(errors as f64),
                        format!("{name} = {errors} of {attempts} attempts"),
                    ),
                }
            }
            (Metric::Dropped, limit) => {
                let dropped = st.dropped;
                let planned = st.requests + st.errors.socket() + dropped;
                match limit {
                    Limit::Percent(_) => {
                        let p = pct(dropped, planned);
                        (
                            Some(p),
                            format!("{name} = {} ({dropped} of {planned} planned)", percent(p)),
                        )
                    }
                    _ => (
                        Some(dropped as f64),
                        format!("{name} = {dropped} of {planned} planned"),
                    ),
                }
            }
            (Metric::Requests, _) => (
                Some(st.requests as f64),
                format!("{name} = {}", st.requests),
            ),
            (Metric::Status(lo, hi), limit) => {
                let n = st.status_range(*lo as usize, *hi as usize);
                match limit {
                    Limit::Percent(_) => {
                        let p = pct(n, st.requests);
                        (
                            Some(p),
                            format!("{name} = {} ({n} of {} responses)", percent(p), st.requests),
                        )
                    }
                    _ => (
                        Some(n as f64),
                        format!("{name} = {n} of {} responses", st.requests),
                    ),
                }
            }
            (Metric::Rate, limit) => {
                let achieved = s.achieved_rate();
                match (limit, s.config.target_rate()) {
                    (Limit::Percent(_), Some(target)) => {
                        let p = achieved * 100.0 / target;
                        (
                            Some(p),
                            format!(
                                "{name} = {} of target ({achieved:.1} of {target:.1} req/s)",
                                percent(p)
                            ),
                        )
                    }
                    (Limit::Percent(_), None) => {
                        (None, format!("{name}: no target rate (-R) to compare with"))
                    }
                    _ => (Some(achieved), format!("{name} = {achieved:.1} req/s")),
                }
            }
        };
        let limit = self.limit.value();
        Outcome {
            expr: self.expr.clone(),
            metric: name,
            op: self.op.as_str(),
            limit,
            unit: self.limit.unit(&self.metric),
            actual,
            pass: actual.is_some_and(|a| self.op.holds(a, limit)),
            detail,
        }
    }
}

/// A percentage for people: two decimals, more when it is small but not zero.
fn percent(p: f64) -> String {
    if p > 0.0 && p < 0.01 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The thresholds a command line declares: every `--slo`, then `errors==0` for
/// `--fail-on-errors`. Any malformed expression is a usage error.
pub fn parse_all(exprs: &[String], fail_on_errors: bool) -> Result<Vec<Slo>> {
    let mut out: Vec<Slo> = exprs.iter().map(|e| Slo::parse(e)).collect::<Result<_>>()?;
    if fail_on_errors {
        out.push(Slo::parse("errors==0")?);
    }
    Ok(out)
}

/// Evaluates every threshold.
pub fn evaluate_all(slos: &[Slo], s: &Summary) -> Vec<Outcome> {
    slos.iter().map(|t| t.evaluate(s)).collect()
}

/// The one-line message for the thresholds that failed, or `None` when all passed.
pub fn failure_line(outcomes: &[Outcome]) -> Option<String> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.pass)
        .map(|o| format!("{} ({})", o.expr, o.detail))
        .collect();
    match failed.len() {
        0 => None,
        1 => Some(format!("threshold failed: {}", failed[0])),
        n => Some(format!(
            "{n} of {} thresholds failed: {}",
            outcomes.len(),
            failed.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let p = |e: &str| Slo::parse(e).unwrap();
        let t = p("p99<=250ms");
        assert_eq!(
            (t.metric, t.op, t.limit),
            (
                Metric::Latency(Which::Corrected, Stat::Percentile(99.0)),
                Op::Le,
                Limit::Micros(250_000.0)
            )
        );
        assert_eq!(p(" p99.9 < 1s ").limit, Limit::Micros(1e6));
        assert_eq!(p(" p99.9 < 1s ").expr, "p99.9 < 1s");
        assert_eq!(p(" p99.9 < 1s ").metric_name(), "p99.9");
        assert_eq!(p("errors<=0.1%").limit, Limit::Percent(0.1));
        assert_eq!(p("errors==0").limit, Limit::Number(0.0));
        assert!(p("rate>=99%").needs_target_rate());
        assert_eq!(p("rate>=1k").limit, Limit::Number(1000.0));
        assert!(!p("rate>=1k").needs_target_rate());
        assert_eq!(p("status5xx==0").metric, Metric::Status(500, 600));
        assert_eq!(p("STATUS503<1%").metric, Metric::Status(503, 504));
        assert_eq!(
            p("uncorrected.p50>500us").metric,
            Metric::Latency(Which::Uncorrected, Stat::Percentile(50.0))
        );
        assert_eq!(
            p("lag.max<1ms").metric,
            Metric::Latency(Which::SendLag, Stat::Max)
        );
        assert_eq!(p("mean<2m").limit, Limit::Micros(120e6));
        assert_eq!(p("requests>=100").metric, Metric::Requests);
        assert_eq!(
            p("waiting.p99<=50ms").metric,
            Metric::Latency(Which::Phase(Phase::Waiting), Stat::Percentile(99.0))
        );
        assert_eq!(
            p("Connecting.p99<=10ms").metric,
            Metric::Latency(Which::Phase(Phase::Connecting), Stat::Percentile(99.0))
        );
        assert_eq!(
            p("tls_handshaking.max<1s").metric,
            Metric::Latency(Which::Phase(Phase::TlsHandshaking), Stat::Max)
        );
        assert_eq!(
            p("p100<=1s").metric,
            Metric::Latency(Which::Corrected, Stat::Percentile(100.0))
        );
    }

    #[test]
    fn refuses_malformed_expressions() {
        for (e, why) in [
            ("p99", "missing comparison"),
            ("p99=<1s", "unknown comparison"),
            ("p99=1s", "unknown comparison"),
            ("p99!=1s", "unknown comparison"),
            ("p99<<1s", "unknown comparison"),
            ("<=1s", "missing metric"),
            ("p99<=", "missing value"),
            ("p99<=250", "needs a unit"),
            ("p99<=250xs", "unknown time unit"),
            ("p99<=abc", "\"abc\" is not a latency"),
            ("p99<=-5ms", "\"-5ms\" is not a latency"),
            ("p99<=5%", "unknown time unit"),
            ("p0<1s", "above 0"),
            ("p101<1s", "above 0"),
            ("pfoo<1s", "not a percentile"),
            ("latency<1s", "unknown metric"),
            ("status6xx==0", "status<D>xx"),
            ("status50==0", "status<D>xx"),
            ("errors<=abc", "not a number"),
            ("errors<=-1", "not a number"),
            ("errors<=150%", "cannot exceed 100%"),
            ("requests>=10%", "count, not a percentage"),
            ("lag.errors<1", "after uncorrected., lag. or a timing phase"),
            (
                "waiting.rate<1",
                "after uncorrected., lag. or a timing phase",
            ),
            ("blocked.p99<1ms", "unknown metric"),
            ("waiting.p99<=5", "needs a unit"),
        ] {
            let msg = Slo::parse(e).unwrap_err().to_string();
            assert!(msg.contains(why), "{e}: {msg}");
            assert!(msg.starts_with("--slo"), "{msg}");
            assert_eq!(msg.lines().count(), 1);
        }
    }

    #[test]
    fn fail_on_errors_is_errors_eq_zero() {
        let v = parse_all(&["p50<1s".into()], true).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].expr, "errors==0");
    }

    #[test]
    fn operators() {
        assert!(Op::Le.holds(1.0, 1.0) && !Op::Lt.holds(1.0, 1.0));
        assert!(Op::Ge.holds(1.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
        assert!(Op::Eq.holds(0.0, 0.0) && !Op::Eq.holds(0.1, 0.0));
    }
}
