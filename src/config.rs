//! The validated run configuration and the target URL. Everything below the CLI layer works
//! from a [`Config`]; no string flags travel further down.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::schedule::RateProfile;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS over TCP (rustls).
    Https,
}

impl Scheme {
    /// The scheme's name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed target URL. The path and query are kept byte-for-byte as written (wrk does the
/// same): no normalisation, no re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL exactly as given on the command line.
    pub url: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets for IPv6.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Whether the URL named the port explicitly.
    pub explicit_port: bool,
    /// Path and query, e.g. `/search?q=a%20b`; `/` when the URL has none.
    pub path: String,
}

impl Target {
    /// Parses `http[s]://host[:port][/path][?query][#fragment]`; the fragment is dropped.
    pub fn parse(url: &str) -> Result<Target> {
        let bad = |why: &str| Error::Usage(format!("invalid URL {url:?}: {why}"));
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some((s, _)) = url.split_once("://") {
            return Err(bad(&format!(
                "unsupported scheme {s:?} (use http or https)"
            )));
        } else {
            return Err(bad("expected http://host[:port]/path or https://..."));
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad(
                "user information in URLs is not supported (use -H Authorization)",
            ));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
            let host = &r[..close];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("invalid IPv6 address"));
            }
            let after = &r[close + 1..];
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if !host.starts_with(|c: char| c.is_ascii_hexdigit() || c == ':')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return Err(bad("invalid host"));
        }
        let explicit_port = port.is_some();
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad(&format!("invalid port {p:?}"))),
            },
        };
        let tail = tail.split('#').next().unwrap_or("");
        let path = if tail.is_empty() {
            "/".to_string()
        } else if tail.starts_with('?') {
            format!("/{tail}")
        } else {
            tail.to_string()
        };
        Ok(Target {
            url: url.to_string(),
            scheme,
            host: host.to_string(),
            port,
            explicit_port,
            path,
        })
    }

    /// The value of the `Host` header: the host, bracketed if IPv6, with the port when the URL
    /// named a non-default one.
    pub fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port != self.scheme.default_port() {
            format!("{h}:{}", self.port)
        } else {
            h
        }
    }
}

/// `--pacing auto` (the default) chooses coarse pacing when the busiest worker thread's share of
/// the rate puts at least this many requests in each tick. There, precise pacing's wake-up per
/// request is most of the generator's CPU (measured at `-t1 -c50 -R20000` against nginx: 3.5×
/// coarse pacing's CPU per request, and 2.5× wrk2's), while a burst of a few requests per tick
/// adds only a few microseconds of queueing at the server; below it, coarse pacing would save
/// few wake-ups, and precise pacing keeps each send within microseconds of its slot.
pub const AUTO_COARSE_REQUESTS_PER_TICK: f64 = 4.0;

/// How a connection waits for its next planned send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// A per-thread timerfd with nanosecond resolution: requests leave within microseconds of
    /// their intended time when the generator has CPU to spare. Costs one timer wake-up (and one
    /// `timerfd_settime`) per request at high rates.
    #[default]
    Precise,
    /// Each worker thread wakes once per tick (`--tick`, 750 µs by default: `Pacer::ticks`),
    /// releases the requests due before the next tick (up to a tick early, never late, so no
    /// timer slack is latency) and handles every response that arrived meanwhile, timed by its
    /// kernel receive timestamp: a quarter of precise pacing's CPU at 20000 req/s a thread, but
    /// the server sees per-tick bursts.
    Coarse,
}

impl Pacing {
    /// What `--pacing auto` chooses for a total `rate` over `connections` dealt round-robin to
    /// `threads`, with coarse pacing's `tick` (see [`AUTO_COARSE_REQUESTS_PER_TICK`]).
    pub fn auto(rate: f64, threads: usize, connections: usize, tick: Duration) -> Pacing {
        let busiest = connections.div_ceil(threads.max(1)) as f64 / connections.max(1) as f64;
        if rate * busiest * tick.as_secs_f64() >= AUTO_COARSE_REQUESTS_PER_TICK {
            Pacing::Coarse
        } else {
            Pacing::Precise
        }
    }
}

/// `--pacing` as given, before a rate is known: `auto` is decided per run (for `find`, per
/// step), from that run's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacingMode {
    /// `--pacing precise` or `--pacing coarse`.
    Fixed(Pacing),
    /// `--pacing auto`; `tick` says whether `--tick` was given (which asks for ticks).
    Auto {
        /// `--tick` was given.
        tick: bool,
    },
}

impl PacingMode {
    /// The pacing of a run configured as `c` (its rate, threads, connections and tick):
    /// closed loop is precise unless coarse was asked for.
    pub fn resolve(self, c: &Config) -> Pacing {
        // A profile's pacing is chosen for its peak, the rate that costs most.
        match (self, c.peak_rate()) {
            (PacingMode::Fixed(p), _) => p,
            (PacingMode::Auto { .. }, None) => Pacing::Precise,
            (PacingMode::Auto { tick: true }, Some(_)) => Pacing::Coarse,
            (PacingMode::Auto { tick: false }, Some(r)) => {
                Pacing::auto(r, c.threads, c.connections, c.tick)
            }
        }
    }
}

/// A complete, validated description of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to load.
    pub target: Target,
    /// Worker OS threads (`-t`), each with its own runtime.
    pub threads: usize,
    /// Connections in total (`-c`), dealt round-robin to threads; always >= `threads`.
    pub connections: usize,
    /// Test length (`-d`).
    pub duration: Duration,
    /// Open-loop rate (`-R`, or a profile: `--stages`, `--step`); `None` means closed loop at
    /// maximum throughput (wrk's mode).
    pub rate: Option<RateProfile>,
    /// How requests arrive within the rate (`--arrivals`, `--seed`).
    pub arrivals: crate::schedule::Arrivals,
    /// How connections wait for their planned send times (`--pacing`, with `auto` resolved).
    pub pacing: Pacing,
    /// Coarse pacing's tick (`--tick`).
    pub tick: Duration,
    /// HTTP method (`-m`), default GET.
    pub method: String,
    /// Extra request headers (`-H "K: V"`), in order.
    pub headers: Vec<(String, String)>,
    /// Request body (`--body` / `--body-file`).
    pub body: Option<Vec<u8>>,
    /// Per-request timeout (`--timeout`): a response not complete this long after the request
    /// was sent counts as a timeout error and the connection is reopened.
    pub timeout: Duration,
    /// Print the corrected latency distribution (`-L/--latency`).
    pub latency: bool,
    /// Also print the uncorrected distribution (`-U/--u_latency`).
    pub u_latency: bool,
    /// Print the timing breakdown (`--timing`).
    pub timing: bool,
    /// Skip TLS certificate verification (`--insecure`).
    pub insecure: bool,
    /// Extra CA certificates (PEM) to trust (`--cacert`).
    pub cacert: Option<PathBuf>,
    /// Lua script (`-s`).
    pub script: Option<PathBuf>,
    /// Arguments for the script's `init(args)`: the URL then everything after it.
    pub script_args: Vec<String>,
}

impl Config {
    /// A configuration with wrk2's defaults for `url` (2 threads, 10 connections, 10 s,
    /// closed loop, 2 s timeout).
    pub fn new(target: Target) -> Config {
        Config {
            script_args: vec![target.url.clone()],
            target,
            threads: 2,
            connections: 10,
            duration: Duration::from_secs(10),
            rate: None,
            arrivals: crate::schedule::Arrivals::Uniform,
            pacing: Pacing::Precise,
            tick: Duration::from_nanos(crate::pacer::DEFAULT_TICK_NS),
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            timeout: Duration::from_secs(2),
            latency: false,
            u_latency: false,
            timing: false,
            insecure: false,
            cacert: None,
            script: None,
        }
    }

    /// The target rate in requests per second, when open loop: with a profile, its mean over
    /// the run (the planned count over the duration), which is what an achieved rate is
    /// compared with.
    pub fn target_rate(&self) -> Option<f64> {
        self.rate.as_ref().map(|r| match r {
            RateProfile::Constant(r) => *r,
            RateProfile::Stages(s) => s.total() / s.duration().as_secs_f64(),
        })
    }

    /// The highest planned rate, req/s, when open loop (a constant rate's own).
    pub fn peak_rate(&self) -> Option<f64> {
        self.rate.as_ref().map(RateProfile::peak)
    }

    /// Requests planned over the whole run, when open loop.
    pub fn planned(&self) -> Option<f64> {
        self.rate
            .as_ref()
            .map(|r| r.count_before(self.duration.as_nanos() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_exactly() {
        let t = Target::parse("http://127.0.0.1:8080/a/../b?x=1&y=%20#frag").unwrap();
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/a/../b?x=1&y=%20");
        assert_eq!(t.host_header(), "127.0.0.1:8080");

        let t = Target::parse("https://example.com").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
        assert_eq!(t.host_header(), "example.com");

        let t = Target::parse("http://[::1]:9000?q").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 9000, "/?q")
        );
        assert_eq!(t.host_header(), "[::1]:9000");
    }

    #[test]
    fn refuses_bad_urls() {
        for u in [
            "ftp://x/",
            "localhost:8080",
            "http://",
            "http://host:99999/",
            "http://host:abc/",
            "http://[::1/",
            "http://a b/",
            "http://u:p@host/",
        ] {
            assert!(Target::parse(u).is_err(), "{u}");
        }
    }
}
