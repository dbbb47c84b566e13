//! `--dashboard[=ADDR]`: a live web page of the run, the HTML report's page
//! ([`crate::report::html::page`]) fed a new snapshot every second by server-sent events, and
//! the final report when the run ends; `--dashboard-linger T` keeps it up that long after.
//!
//! Its data come from the live collector ([`crate::live`]), which pushes every second it
//! shows ([`Dashboard::second`]): the dashboard adds nothing to the workers' hot path, and a
//! stalled server still gives it a second every second. The snapshot of the run so far
//! ([`snapshot::Run`]) is rebuilt and serialized once per second on the collector's thread;
//! the HTTP side ([`http`], hyper on a thread and runtime of its own) only hands out the
//! latest one.
//!
//! The port is bound before the run starts (a port in use is a usage error); the URL is printed
//! on stderr. The default address is loopback (`127.0.0.1:5665`, k6's port); any other address
//! must be given explicitly and is served with a loud warning: the page has no authentication
//! and shows the target and its results.

pub mod http;
pub mod snapshot;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::report::charts::ChartData;
use crate::report::html;
use crate::result::RunResult;

/// The address `--dashboard` without a value listens on (k6's dashboard port).
pub const DEFAULT_ADDR: &str = "127.0.0.1:5665";

/// The longest `--dashboard-linger`.
pub const MAX_LINGER: Duration = Duration::from_secs(24 * 3600);

/// Where the dashboard listens and how long it stays after the run (`--dashboard`,
/// `--dashboard-linger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The address to listen on (port 0: any free port; the URL printed says which).
    pub addr: SocketAddr,
    /// How long it stays up after the final report.
    pub linger: Duration,
}

/// What one event carries: a snapshot of the page's data.
#[derive(Debug)]
pub struct Snapshot {
    /// Counts the snapshots published, from 1 (the SSE event id).
    pub id: u64,
    /// The data.
    pub data: ChartData,
    /// `data` as JSON (see [`html::data_json`]).
    pub json: String,
    /// The final report: nothing follows it.
    pub last: bool,
}

/// Parses `--dashboard`'s ADDR: `HOST:PORT` (an IP address) or a bare port (on loopback).
pub fn parse_addr(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let s = s
        .strip_prefix("localhost:")
        .map_or(s.to_string(), |p| format!("127.0.0.1:{p}"));
    s.parse().map_err(|_| {
        Error::Usage(format!(
            "--dashboard: invalid address {s:?} (want IP:PORT or PORT, e.g. {DEFAULT_ADDR})"
        ))
    })
}

/// The live dashboard of one run; cheap to clone (every clone is the same dashboard).
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    linger: Duration,
    tx: watch::Sender<Arc<Snapshot>>,
    run: Mutex<Option<snapshot::Run>>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("url", &self.inner.url)
            .finish()
    }
}

impl Dashboard {
    /// Binds `addr` (a usage error if it cannot), starts serving the page for a run of
    /// `config`, fed by the live collector, and prints its URL on stderr.
    pub fn for_run(s: &Settings, config: &Config) -> Result<Dashboard> {
        let run = snapshot::Run::new(config);
        Dashboard::start(s, run.data(), Some(run))
    }

    /// Binds `addr` (a usage error if it cannot), starts serving a page of `data` (new
    /// snapshots come from [`Dashboard::show`]), and prints its URL on stderr (with a warning
    /// when the address is not loopback).
    pub fn bind(s: &Settings, data: ChartData) -> Result<Dashboard> {
        Dashboard::start(s, data, None)
    }

    fn start(s: &Settings, data: ChartData, run: Option<snapshot::Run>) -> Result<Dashboard> {
        let addr = s.addr;
        let listener = TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| Error::Usage(format!("--dashboard: cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr()?;
        let url = format!("http://{bound}/");
        let first = Arc::new(Snapshot {
            id: 1,
            json: html::data_json(&data),
            data,
            last: false,
        });
        let (tx, _) = watch::channel(first);
        let rx = tx.subscribe();
        std::thread::Builder::new()
            .name("loadgen-dashboard".into())
            .spawn(move || http::serve(listener, rx))
            .map_err(|e| Error::Runtime(format!("cannot start the dashboard: {e}")))?;
        if !bound.ip().is_loopback() {
            eprintln!(
                "loadgen: WARNING: the dashboard listens on {bound}, beyond this machine: anyone who can reach it sees the target and the results (it has no authentication)"
            );
        }
        eprintln!("loadgen: dashboard at {url}");
        Ok(Dashboard {
            inner: Arc::new(Inner {
                url,
                linger: s.linger,
                tx,
                run: Mutex::new(run),
            }),
        })
    }

    /// The page's URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    fn publish(&self, data: ChartData, last: bool) {
        let json = html::data_json(&data);
        self.inner.tx.send_modify(|s| {
            *s = Arc::new(Snapshot {
                id: s.id + 1,
                data,
                json,
                last,
            })
        });
    }

    /// Adds a second the live collector has shown and publishes the run so far (once a
    /// second, on the collector's thread; ignored after the final report).
    pub fn second(&self, s: snapshot::LiveSecond) {
        let data = {
            let mut run = self.inner.run.lock().unwrap_or_else(|e| e.into_inner());
            let Some(run) = run.as_mut() else { return };
            run.push(s);
            run.data()
        };
        self.publish(data, false);
    }

    /// Publishes a new page (`find`'s steps so far).
    pub fn show(&self, data: ChartData) {
        self.publish(data, false);
    }

    /// Publishes the final report of the run, `r`: the page then shows what `--html` writes.
    pub fn finish(&self, r: &RunResult) {
        self.finish_with(ChartData::of(r));
    }

    /// Publishes the final page, `data`: nothing follows it.
    pub fn finish_with(&self, data: ChartData) {
        self.inner
            .run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.publish(data, true);
    }

    /// After the final report, keeps the dashboard up for `--dashboard-linger` (saying so on
    /// stderr), or less if a signal comes; returns at once without a final report.
    pub fn linger(&self) {
        let linger = self.inner.linger;
        if linger.is_zero() || !self.inner.tx.borrow().last || crate::interrupt::signalled() {
            return;
        }
        eprintln!(
            "loadgen: dashboard at {} for {} more (Ctrl-C ends it)",
            self.inner.url,
            crate::units::format_duration(linger)
        );
        let end = Instant::now() + linger;
        while !crate::interrupt::signalled() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(100)));
        }
    }
}
