//! The flags of `loadgen serve` (the built-in server and its knobs) and `loadgen demo`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::values;

/// `loadgen serve`: the built-in target server. On Ctrl-C or SIGTERM it prints the service times
/// it delivered (from each request's kernel receive timestamp to its response).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the bound address is printed)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    #[command(flatten)]
    pub knobs: KnobArgs,
    /// Worker threads of the server's runtime (default: all CPUs)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Behaviour knobs of the built-in server.
#[derive(Debug, Args, Clone)]
pub struct KnobArgs {
    /// Fixed delay before each response, e.g. 1ms
    #[arg(long, value_name = "T", value_parser = values::AnyDuration)]
    pub delay: Option<Duration>,
    /// Response body size in bytes (e.g. 600, 1k)
    #[arg(long = "body-size", default_value = "13", value_name = "N")]
    pub body_size: String,
    /// Response status code
    #[arg(long, default_value = "200", value_name = "CODE")]
    pub status: u16,
    /// Start of a stall, measured from server start: every response is held from then...
    #[arg(long = "stall-at", value_name = "T", value_parser = values::AnyDuration, requires = "stall_for")]
    pub stall_at: Option<Duration>,
    /// ...for this long, then all are released (the pathology coordinated omission hides)
    #[arg(long = "stall-for", value_name = "T", value_parser = values::AnyDuration, requires = "stall_at")]
    pub stall_for: Option<Duration>,
    /// Repeat the stall with this period (periodic stalls)
    #[arg(long = "stall-every", value_name = "T", value_parser = values::AnyDuration, requires = "stall_at")]
    pub stall_every: Option<Duration>,
    /// Share of responses (every 1/share-th) that get --slow-delay added: a bimodal server
    #[arg(long = "slow-share", value_name = "F", requires = "slow_delay")]
    pub slow_share: Option<f64>,
    /// Extra delay of the slow responses
    #[arg(long = "slow-delay", value_name = "T", value_parser = values::AnyDuration, requires = "slow_share")]
    pub slow_delay: Option<Duration>,
    /// Serve at most N requests/s, one at a time (offered more, a queue builds up)
    #[arg(long, value_name = "N")]
    pub capacity: Option<String>,
    /// Busy-wait the last T of every delay, stall and capacity wait (e.g. 200us), so that it
    /// ends on time: an idle CPU, in a VM especially, can wake a millisecond late. Costs up to
    /// T of CPU per delayed response
    #[arg(long, value_name = "T", value_parser = values::AnyDuration)]
    pub spin: Option<Duration>,
    /// Close the connection after every N responses (Connection: close; GOAWAY over HTTP/2)
    #[arg(long = "close-every", value_name = "N")]
    pub close_every: Option<u64>,
    /// Require a login: POST /login (non-empty body) returns {"token":"..."} and the cookie
    /// session=TOKEN; every other request needs "Authorization: Bearer TOKEN" or that cookie,
    /// else 401. GET /__stats (no token) returns the counts (docs/serve.md)
    #[arg(long)]
    pub auth: bool,
    /// Serve HTTPS with a fresh self-signed certificate for localhost/127.0.0.1 (ALPN h2 and
    /// http/1.1)
    #[arg(long)]
    pub tls: bool,
    /// HTTP/2: announce this SETTINGS_MAX_CONCURRENT_STREAMS (default 200)
    #[arg(long = "max-streams", value_name = "N")]
    pub max_streams: Option<u32>,
    /// HTTP/2: the server's initial stream and connection flow-control windows, 65535 to
    /// 2147483647 bytes (default 1073741823); a request body larger than it waits for the
    /// server's WINDOW_UPDATEs
    #[arg(long = "h2-window", value_name = "BYTES", value_parser = clap::value_parser!(u32).range(65535..=2147483647))]
    pub h2_window: Option<u32>,
    /// Fail every N-th request on a connection: HTTP/2 resets its stream (RST_STREAM),
    /// HTTP/1.1 closes the connection
    #[arg(long = "reset-every", value_name = "N")]
    pub reset_every: Option<u64>,
    /// Speak HTTP/1.1 only (no h2c; over TLS, ALPN offers only http/1.1)
    #[arg(long = "http1-only")]
    pub http1_only: bool,
    /// With --tls, write the self-signed certificate (PEM) here, for --cacert
    #[arg(long = "cert-out", value_name = "FILE", requires = "tls")]
    pub cert_out: Option<PathBuf>,
}

/// `loadgen demo`: built-in server + a short open-loop run with a stall, showing the
/// coordinated-omission correction.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Test duration
    #[arg(short = 'd', long, default_value = "5s", value_name = "T", value_parser = values::PositiveDuration)]
    pub duration: Duration,
    /// Total request rate
    #[arg(short = 'R', long, default_value = "2000", value_name = "N", value_parser = values::Rate)]
    pub rate: f64,
    /// Connections
    #[arg(short = 'c', long, default_value = "20", value_name = "N", value_parser = values::Count)]
    pub connections: usize,
    /// Threads
    #[arg(short = 't', long, default_value = "2", value_name = "N", value_parser = values::Count)]
    pub threads: usize,
    /// Length of the server stall in the middle of the run (0 for none)
    #[arg(long, default_value = "500ms", value_name = "T", value_parser = values::AnyDuration)]
    pub stall: Duration,
}
