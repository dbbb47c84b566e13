//! Typed values at the CLI edge: clap value parsers built on `units.rs`, so that the flag
//! structs hold durations, counts, rates and modes rather than strings. Each parser names
//! the flag it parses in its message (`-d/--duration: must be greater than zero, got "-5"`),
//! from the clap argument itself, so one parser serves every flag of its kind; the binary
//! prints the message as one line (`main.rs`).

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Arg, Command, ValueEnum};

use crate::error::Error;

/// How a flag is named in messages: `-d/--duration`, `--timeout`.
fn flag_name(arg: Option<&Arg>) -> String {
    match arg.map(|a| (a.get_short(), a.get_long())) {
        Some((Some(s), Some(l))) => format!("-{s}/--{l}"),
        Some((None, Some(l))) => format!("--{l}"),
        Some((Some(s), None)) => format!("-{s}"),
        _ => arg.map_or_else(|| "value".into(), |a| a.get_id().to_string()),
    }
}

/// Runs `parse` on the value as text, turning its usage error into clap's.
fn with<T>(
    arg: Option<&Arg>,
    value: &OsStr,
    parse: impl FnOnce(&str, &str) -> crate::error::Result<T>,
) -> Result<T, clap::Error> {
    let flag = flag_name(arg);
    let text = value.to_str().ok_or_else(|| {
        clap::Error::raw(ErrorKind::InvalidUtf8, format!("{flag}: not valid UTF-8\n"))
    })?;
    parse(text, &flag).map_err(|e| {
        let msg = match e {
            Error::Usage(m) => m,
            other => other.to_string(),
        };
        clap::Error::raw(ErrorKind::ValueValidation, format!("{msg}\n"))
    })
}

/// Defines a value parser `$name` of `$ty` that runs `$parse(text, flag)` ([`with`]).
macro_rules! value_parser {
    ($(#[$doc:meta])* $name:ident: $ty:ty = $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl TypedValueParser for $name {
            type Value = $ty;
            fn parse_ref(
                &self,
                _: &Command,
                arg: Option<&Arg>,
                value: &OsStr,
            ) -> Result<$ty, clap::Error> {
                with(arg, value, $parse)
            }
        }
    };
}

value_parser!(
    /// A positive duration (`30s`, `2m`; a bare number is seconds): [`super::duration`].
    PositiveDuration: Duration = super::duration
);

value_parser!(
    /// A duration that may be zero (`0` turns a feature off): `--stall`, `--confirm`.
    AnyDuration: Duration = |s: &str, flag: &str| {
        if crate::units::parse_duration(s).is_ok_and(|d| d.is_zero()) {
            Ok(Duration::ZERO)
        } else {
            super::duration(s, flag)
        }
    }
);

value_parser!(
    /// A whole count >= 1 (`10`, `10k`): [`super::count`].
    Count: usize = super::count
);

value_parser!(
    /// A positive rate in req/s, at most 1G (`10k`): [`super::rate_value`]. Whether it is at
    /// least one a thread depends on `-t`, and is checked with the rest of the configuration.
    Rate: f64 = super::rate_value
);

/// `--pacing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PacingArg {
    /// Precise or coarse, by the rate (see `pacer::policy`).
    Auto,
    /// The timerfd, a wake-up per request.
    Precise,
    /// A wake-up per tick.
    Coarse,
}

/// `--http-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpArg {
    /// HTTP/1.1.
    #[value(name = "1.1")]
    Http1,
    /// HTTP/2.
    #[value(name = "2")]
    Http2,
    /// By ALPN over https://; HTTP/1.1 over http://.
    Auto,
}

/// `--arrivals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArrivalsArg {
    /// Evenly spaced.
    Uniform,
    /// Exponential gaps.
    Poisson,
}
