//! The library's error type and the process exit code each kind maps to.
//!
//! Exit codes: 0 success · 1 runtime failure (nothing reachable, TLS refused, script error, no
//! successful response at all) · 2 usage error (bad flag, URL, file) · 3 a declared threshold
//! was breached · 128 + the signal (130 SIGINT, 143 SIGTERM) the run was interrupted, after
//! printing and writing what it measured. A run that is both breached and interrupted exits 3.

use std::fmt;

/// Everything that can stop a run. Each variant carries a one-line, human-readable message.
#[derive(Debug)]
pub enum Error {
    /// Bad command-line input or an unreadable input file: exit code 2.
    Usage(String),
    /// The target could not be resolved or reached before the run: exit code 1.
    Connect(String),
    /// A Lua script failed to load or raised an error: exit code 1.
    Script(String),
    /// Any other failure at run time (I/O, TLS set-up, thread start): exit code 1.
    Runtime(String),
    /// At least one declared threshold failed: exit code 3.
    Threshold(String),
    /// The run was interrupted (SIGINT, SIGTERM) and has reported what it measured: the exit
    /// code given (128 + the signal), so that a CI job stopped by `timeout` or its runner
    /// never passes.
    Interrupted(String, i32),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Threshold(_) => 3,
            Error::Interrupted(_, code) => *code,
            Error::Connect(_) | Error::Script(_) | Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m)
            | Error::Connect(m)
            | Error::Script(m)
            | Error::Runtime(m)
            | Error::Threshold(m)
            | Error::Interrupted(m, _) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Runtime(e.to_string())
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
