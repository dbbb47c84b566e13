//! `--dashboard[=ADDR]` and `--dashboard-linger T`, shared by a load test and `find`.

use clap::Args;

use crate::dashboard::{self, Settings, DEFAULT_ADDR, MAX_LINGER};
use crate::error::{Error, Result};

/// The live dashboard's flags.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Serve a live page of the charts, updated every second, then the final report, at ADDR
    /// (IP:PORT or PORT; written --dashboard=ADDR); its URL goes to stderr [default:
    /// 127.0.0.1:5665]
    #[arg(
        long = "dashboard",
        value_name = "ADDR",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = DEFAULT_ADDR
    )]
    pub dashboard: Option<String>,
    /// Keep the dashboard up this long after the report (Ctrl-C ends it) [default: 0s: exit
    /// at once]
    #[arg(long = "dashboard-linger", value_name = "T", requires = "dashboard")]
    pub linger: Option<String>,
}

impl DashboardArgs {
    /// The dashboard asked for, if any.
    pub fn settings(&self) -> Result<Option<Settings>> {
        let Some(addr) = &self.dashboard else {
            return Ok(None);
        };
        let addr = dashboard::parse_addr(addr)?;
        let linger = match &self.linger {
            Some(t) => crate::units::parse_duration(t)
                .map_err(|e| Error::Usage(format!("--dashboard-linger: {e}")))?,
            None => std::time::Duration::ZERO,
        };
        if linger > MAX_LINGER {
            return Err(Error::Usage("--dashboard-linger: at most 24h".into()));
        }
        Ok(Some(Settings { addr, linger }))
    }
}
