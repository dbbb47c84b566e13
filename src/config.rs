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

use crate::pacer::policy::{busiest_share, Load};
pub use crate::pacer::policy::{Pacing, PacingMode};

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
    /// Closed loop only: the connections in use over time (`--conn-stages`); `None`: all
    /// `connections`, all the run.
    pub conn_profile: Option<crate::conn_profile::ConnProfile>,
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
    /// The HTTP version to speak (`--http2`, `--http-version`); after the engine's probe, in
    /// a run's summary, never `Auto`.
    pub http: HttpVersion,
    /// Concurrent streams per HTTP/2 connection (`--streams`); 1 with HTTP/1.1.
    pub streams: usize,
}

/// The HTTP version a run speaks (`--http-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 (the default, as wrk).
    Http1,
    /// HTTP/2: by ALPN `h2` over TLS (refused if the server does not select it), with prior
    /// knowledge (h2c) over plain TCP.
    Http2,
    /// Over TLS, offer `h2` and `http/1.1` and speak what the server selects; HTTP/1.1 over
    /// plain TCP.
    Auto,
}

impl Config {
    /// What ran, as `config.protocol` in the JSON and the report's header say it: `http/1.1`,
    /// `h2` (HTTP/2 over TLS) or `h2c` (HTTP/2 over plain TCP).
    pub fn protocol(&self) -> &'static str {
        match (self.http, self.target.scheme) {
            (HttpVersion::Http2, Scheme::Https) => "h2",
            (HttpVersion::Http2, Scheme::Http) => "h2c",
            _ => "http/1.1",
        }
    }
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
            conn_profile: None,
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
            http: HttpVersion::Http1,
            streams: 1,
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

    /// With coarse pacing, the most requests one tick releases together on the busiest
    /// thread at the peak rate (what the server sees as one burst); `None` otherwise.
    pub fn coarse_burst(&self) -> Option<u64> {
        let r = self.peak_rate()?;
        self.pacing.ticks().then(|| {
            let n = r * busiest_share(self.threads, self.connections) * self.tick.as_secs_f64();
            (n - 1e-6).ceil().max(1.0) as u64
        })
    }

    /// Sets the pacing (and, for `--pacing auto`, the tick) of this run from its rate, threads,
    /// connections and tick ([`PacingMode::choose`]).
    pub fn set_pacing(&mut self, mode: PacingMode) {
        (self.pacing, self.tick) = mode.choose(self.load());
    }

    /// What the pacing policy reads of this run.
    pub fn load(&self) -> Load<'_> {
        Load {
            rate: self.rate.as_ref(),
            threads: self.threads,
            connections: self.connections,
            streams: if self.http == HttpVersion::Http2 {
                self.streams
            } else {
                1
            },
            tick: self.tick,
        }
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

    /// The burst the report names: a tick's share of the peak rate on the busiest thread.
    #[test]
    fn coarse_burst_is_the_peak_ticks_share() {
        let at = |rate: f64, threads: usize, conns: usize, mode: PacingMode| {
            let mut c = Config::new(Target::parse("http://127.0.0.1:1/").unwrap());
            c.rate = Some(crate::schedule::RateProfile::Constant(rate));
            (c.threads, c.connections) = (threads, conns);
            c.set_pacing(mode);
            (c.pacing, c.tick.as_micros() as u64, c.coarse_burst())
        };
        let auto = PacingMode::Auto { tick: false };
        assert_eq!(at(5334.0, 1, 50, auto), (Pacing::Coarse, 750, Some(5)));
        assert_eq!(at(13_334.0, 1, 50, auto), (Pacing::Coarse, 749, Some(10)));
        assert_eq!(at(30_000.0, 2, 3, auto), (Pacing::Coarse, 500, Some(10)));
        // Past 100000 req/s a thread the tick stays at 100 µs and the burst grows.
        assert_eq!(at(200_000.0, 1, 50, auto), (Pacing::Coarse, 100, Some(20)));
        let coarse = PacingMode::Fixed(Pacing::Coarse);
        assert_eq!(at(20_000.0, 1, 50, coarse), (Pacing::Coarse, 750, Some(15)));
        assert_eq!(at(100.0, 1, 1, auto).2, None);
        // HTTP/2: a tick carries up to one connection's streams.
        let mut c = Config::new(Target::parse("http://127.0.0.1:1/").unwrap());
        c.rate = Some(crate::schedule::RateProfile::Constant(20_000.0));
        (c.threads, c.connections, c.http, c.streams) = (1, 10, HttpVersion::Http2, 14);
        c.set_pacing(auto);
        assert_eq!((c.tick.as_micros(), c.coarse_burst()), (700, Some(14)));
    }

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
