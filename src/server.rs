//! The built-in target server (`loadgen serve`, `loadgen demo`, and the tests' target): hyper
//! HTTP/1.1 and HTTP/2 (hyper-util's auto server: h2c with prior knowledge over TCP, ALPN `h2`
//! or `http/1.1` over TLS) with knobs for a fixed delay, body size, status code, a scheduled
//! stall (every response held from T to T+S after start — the pathology that coordinated
//! omission hides) and closing the connection every N responses.
//!
//! Like mini-redis, [`serve`] takes an already-bound listener and a shutdown future, so a test
//! starts a server in one line.
//!
//! # Login flow (`--auth`, [`Knobs::auth`])
//!
//! - `POST /login` with a non-empty body (anything; when it is a JSON object, its `"user"` and
//!   `"password"` fields, where present, must be non-empty) answers `200` with
//!   `Content-Type: application/json`, body `{"token":"<token>"}` and
//!   `Set-Cookie: session=<token>; Path=/; HttpOnly`. An empty body (or one over 64 KiB) gets
//!   `400`. Tokens are 32 lowercase hex digits, unique per login (a keyed hash of a counter
//!   followed by the counter masked with a per-server random value); the server keeps every
//!   token it issued for its lifetime.
//! - `GET /__stats` (no token needed) answers `200` with `Content-Type: application/json` and
//!   `{"logins":N,"unauthorized":M,"connections_open":K,"connections_accepted":A}`: logins
//!   served and `401`s sent so far, connections open now (this one included) and accepted
//!   so far. It answers without `--auth` too. The integration tests read the counters here,
//!   since they run the server as a child process.
//! - Every other request needs an issued token as `Authorization: Bearer <token>` or as the
//!   `session` cookie (`Cookie: session=<token>`, possibly among others: `a=b; session=<token>`);
//!   without one it gets `401` with `WWW-Authenticate: Bearer` and body `unauthorized`. An
//!   authorized request gets the normal response, with every other knob applied.
//!
//! Login, `/__stats` and `401` responses are immediate (no delay, stall, slow or capacity);
//! `--close-every` counts and applies to every response on a connection.
//!
//! # Service times as delivered
//!
//! [`serve`] returns a histogram of each normal response's service time, from the kernel's
//! receive timestamp of the request (`conn::rxtime`; when the kernel gave none, from the
//! handler's start) to the response handed back to hyper: the delay knobs as this machine's
//! timers and scheduler actually delivered them (a 5 ms sleep in a small VM ends 0.05–0.1 ms
//! late at p50 and up to several ms late at p99.9; `--spin` busy-waits the end of each wait,
//! which leaves only the host's own pauses). The delay knobs count from that receive
//! timestamp, so a late wake-up for the request is not added to its delay. The accuracy suite
//! compares loadgen's numbers with it as well as with the knobs' analytic values.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::conn::rxtime::Stamped;
use crate::error::{Error, Result};

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Delay added before every response.
    pub delay: Duration,
    /// Size of every response body.
    pub body_size: usize,
    /// Status code of every response.
    pub status: u16,
    /// `(at, for)`: responses are held from `at` after start until `at + for`.
    pub stall: Option<(Duration, Duration)>,
    /// With `stall`: the stall repeats with this period (`at`, `at + every`, …).
    pub stall_every: Option<Duration>,
    /// `(share, delay)`: this share of responses (every `1/share`-th) gets `delay` added.
    pub slow: Option<(f64, Duration)>,
    /// Serve at most this many requests per second, one at a time (a queue forms when the
    /// offered rate is higher: latency then grows linearly through the run).
    pub capacity: Option<f64>,
    /// Busy-wait this last part of every delay, stall and capacity wait (timer wake-ups from
    /// an idle CPU can be a millisecond late in a VM).
    pub spin: Duration,
    /// Close the connection after this many responses on it.
    pub close_every: Option<u64>,
    /// Require a login (`POST /login`) and a token on every other request; see the module doc.
    pub auth: bool,
    /// HTTP/2: the SETTINGS_MAX_CONCURRENT_STREAMS the server announces (hyper's default
    /// otherwise: 200).
    pub max_streams: Option<u32>,
    /// HTTP/2: the initial stream and connection windows the server gives the client
    /// ([`H2_WINDOW`] unless a test asks for flow-control stalls).
    pub h2_window: u32,
    /// Fail every N-th request on a connection: HTTP/2 resets its stream (RST_STREAM,
    /// INTERNAL_ERROR); HTTP/1.1 closes the connection without a response.
    pub reset_every: Option<u64>,
    /// Speak HTTP/1.1 only: no h2c, and over TLS offer only `http/1.1` by ALPN.
    pub http1_only: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            delay: Duration::ZERO,
            body_size: 13,
            status: 200,
            stall: None,
            stall_every: None,
            slow: None,
            capacity: None,
            spin: Duration::ZERO,
            close_every: None,
            auth: false,
            max_streams: None,
            h2_window: H2_WINDOW,
            reset_every: None,
            http1_only: false,
        }
    }
}

/// Largest `POST /login` body read.
const LOGIN_BODY_LIMIT: usize = 64 * 1024;

/// The login flow's state: issued tokens and counters.
struct Auth {
    /// Every token issued so far.
    tokens: RwLock<HashSet<String>>,
    /// Logins served (tokens issued).
    logins: AtomicU64,
    /// `401` responses sent.
    unauthorized: AtomicU64,
    /// Keyed (randomly seeded) hash for the unpredictable half of a token.
    keyed: RandomState,
    /// Per-server random mask for the counter half.
    mask: u64,
}

impl Auth {
    fn new() -> Self {
        let keyed = RandomState::new();
        let mask = RandomState::new().hash_one(Instant::now());
        Auth {
            tokens: RwLock::new(HashSet::new()),
            logins: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            keyed,
            mask,
        }
    }

    /// `POST /login`.
    async fn login(&self, body: Incoming) -> Response<Full<Bytes>> {
        let body = match Limited::new(body, LOGIN_BODY_LIMIT).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad login body"),
        };
        if !login_body_ok(&body) {
            return plain(StatusCode::BAD_REQUEST, "login needs a non-empty body");
        }
        // Unique: the counter, masked by a bijection, is half of the token.
        let n = self.logins.fetch_add(1, Ordering::Relaxed);
        let token = format!("{:016x}{:016x}", self.keyed.hash_one(n), n ^ self.mask);
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone());
        let mut r = Response::new(Full::new(Bytes::from(format!("{{\"token\":\"{token}\"}}"))));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("session={token}; Path=/; HttpOnly")) {
            h.insert(header::SET_COOKIE, v);
        }
        r
    }

    /// Whether the request carries an issued token (bearer or `session` cookie).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| {
                let (name, value) = c.trim().split_once('=')?;
                (name.trim() == "session").then(|| value.trim())
            });
        bearer.chain(cookies).any(|t| tokens.contains(t))
    }

    fn unauthorized(&self) -> Response<Full<Bytes>> {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
        let mut r = plain(StatusCode::UNAUTHORIZED, "unauthorized");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

/// A login body is acceptable when it is not empty and, if it is a JSON object, its `user` and
/// `password` fields (where present) are neither empty strings nor null.
fn login_body_ok(body: &[u8]) -> bool {
    if body.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => ["user", "password"].iter().all(|k| match m.get(*k) {
            None => true,
            Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        }),
        _ => true,
    }
}

/// A `text/plain` response.
fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, with the TLS acceptor using it
/// (ALPN: `h2`, then `http/1.1`; [`SelfSigned::http1_only`] offers only the latter).
pub struct SelfSigned {
    /// The certificate in PEM (give it to clients as `--cacert`).
    pub cert_pem: String,
    /// The server side.
    pub acceptor: tokio_rustls::TlsAcceptor,
}

impl SelfSigned {
    /// The same certificate, offering only `http/1.1` by ALPN (`--http1-only`).
    pub fn http1_only(self) -> SelfSigned {
        let mut cfg = (**self.acceptor.config()).clone();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        SelfSigned {
            cert_pem: self.cert_pem,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        }
    }
}

/// Makes a fresh self-signed certificate and a rustls server configuration for it.
pub fn self_signed() -> Result<SelfSigned> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Runtime(format!("certificate generation: {e}")))?;
    let cert_der = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![cert_der], key)
        })
        .map_err(|e| Error::Runtime(format!("TLS server set-up: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(SelfSigned {
        cert_pem: ck.cert.pem(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
    })
}

struct Shared {
    knobs: Knobs,
    body: Bytes,
    start: Instant,
    /// `start` on `pacer::mono_ns`'s clock (CLOCK_MONOTONIC ns): the sleeps' and the arrival
    /// stamps' clock.
    start_ns: u64,
    /// Requests served so far (for `slow`).
    served: AtomicU64,
    /// Connections open now (`/__stats`).
    open: AtomicU64,
    /// Connections accepted so far (`/__stats`).
    accepted: AtomicU64,
    /// With `capacity`: ns after `start` when the single server slot is next free.
    next_free: std::sync::Mutex<u64>,
    /// With `auth`: the login flow's state.
    auth: Option<Auth>,
    /// Handler time of each normal response, ns, sharded by thread so that the server's worker
    /// threads do not contend on one lock.
    service: [std::sync::Mutex<Histogram<u64>>; SHARDS],
}

/// Shards of [`Shared::service`]; a thread uses shard `its number % SHARDS`.
const SHARDS: usize = 16;

/// Highest handler time recorded (longer ones are clamped): one hour, in ns.
const MAX_SERVICE_NS: u64 = 3_600_000_000_000;

/// This thread's shard of [`Shared::service`].
fn shard() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local!(static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) as usize % SHARDS);
    SHARD.with(|s| *s)
}

fn service_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_SERVICE_NS, 3).expect("valid bounds")
}

impl Shared {
    /// Sleeps until `at` after server start, to the microsecond (tokio's timer would round
    /// every delay up to the next millisecond); with `spin`, sleeps until `spin` before it and
    /// busy-waits the rest. Measured on this 2-vCPU VM (2000 sleeps of 5 ms on an otherwise
    /// idle CPU, late by p50 / p99.9 / max): a plain sleep 92 µs / 0.4–0.6 ms / 0.9–3.2 ms;
    /// spinning the last 200 µs, 0 / 97 µs / 0.6 ms; the last 1 ms, 0 / 6 µs / 38 µs.
    async fn sleep_until(&self, at: Duration) {
        let due = self.start_ns + at.as_nanos() as u64;
        let wake = due.saturating_sub(self.knobs.spin.as_nanos() as u64);
        if wake > crate::pacer::mono_ns() && crate::pacer::sleep_until_precise(wake).await.is_err()
        {
            let fallback = self.start + at.saturating_sub(self.knobs.spin);
            tokio::time::sleep_until(fallback.into()).await;
        }
        // Busy-waits on this runtime thread: the other connections wait too, for at most
        // `spin` (the accuracy suite runs this at a few hundred responses a second).
        while crate::pacer::mono_ns() < due {
            std::hint::spin_loop();
        }
    }

    /// `GET /__stats`: the login flow's counters (0 without `--auth`) and the connections'.
    fn stats(&self) -> Response<Full<Bytes>> {
        let (logins, unauthorized) = self.auth.as_ref().map_or((0, 0), |a| {
            (
                a.logins.load(Ordering::Relaxed),
                a.unauthorized.load(Ordering::Relaxed),
            )
        });
        let mut r = Response::new(Full::new(Bytes::from(format!(
            "{{\"logins\":{logins},\"unauthorized\":{unauthorized},\"connections_open\":{},\"connections_accepted\":{}}}",
            self.open.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
        ))));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

    /// Routes one request (the login flow, when on) and applies `close_every`.
    /// `arrived`: when the request's bytes reached the socket (CLOCK_MONOTONIC ns, 0: unknown).
    async fn handle(
        &self,
        req: Request<Incoming>,
        served_on_conn: u64,
        arrived: u64,
    ) -> Response<Full<Bytes>> {
        let stats = req.method() == Method::GET && req.uri().path() == "/__stats";
        let mut r = match &self.auth {
            _ if stats => self.stats(),
            None => {
                drop(req);
                self.respond(arrived).await
            }
            Some(auth) => {
                let path = req.uri().path();
                if req.method() == Method::POST && path == "/login" {
                    auth.login(req.into_body()).await
                } else if auth.authorized(req.headers()) {
                    drop(req);
                    self.respond(arrived).await
                } else {
                    auth.unauthorized()
                }
            }
        };
        if self
            .knobs
            .close_every
            .is_some_and(|n| n > 0 && served_on_conn.is_multiple_of(n))
        {
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }

    /// The normal response, after the delay knobs, recording its handler time.
    async fn respond(&self, arrived: u64) -> Response<Full<Bytes>> {
        let now = crate::pacer::mono_ns();
        let begin = if arrived > 0 && arrived <= now {
            arrived
        } else {
            now
        };
        let r = self.respond_after_knobs(begin).await;
        let took = (crate::pacer::mono_ns() - begin).clamp(1, MAX_SERVICE_NS);
        let mut h = self.service[shard()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _ = h.record(took);
        r
    }

    /// `arrived`: when the request reached the socket (`pacer::mono_ns` clock). The delay
    /// knobs count from then (or from the end of a stall or capacity wait it had), so that a
    /// late wake-up for the request does not add to its delay.
    async fn respond_after_knobs(&self, arrived: u64) -> Response<Full<Bytes>> {
        // When the delay starts, as time since `start`.
        let mut ready = Duration::from_nanos(arrived.saturating_sub(self.start_ns));
        if let Some((at, len)) = self.knobs.stall {
            let since = self.start.elapsed();
            if since >= at {
                // Start of the stall period we are in (the only one, unless it repeats).
                let begin = match self.knobs.stall_every {
                    Some(p) if !p.is_zero() => {
                        let n = ((since - at).as_nanos() / p.as_nanos()) as u32;
                        at + p * n
                    }
                    _ => at,
                };
                if since < begin + len {
                    self.sleep_until(begin + len).await;
                    ready = ready.max(begin + len);
                }
            }
        }
        let mut delay = self.knobs.delay;
        if let Some((share, slow)) = self.knobs.slow {
            let n = self.served.fetch_add(1, Ordering::Relaxed);
            let every = (1.0 / share).round().max(1.0) as u64;
            if n % every == every - 1 {
                delay += slow;
            }
        }
        if let Some(cap) = self.knobs.capacity {
            // One request at a time, each taking 1/cap: reserve the next free service slot.
            let service = (1e9 / cap) as u64;
            let now = self.start.elapsed().as_nanos() as u64;
            let done = {
                let mut next = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
                let begin = (*next).max(now);
                *next = begin + service;
                *next
            };
            self.sleep_until(Duration::from_nanos(done)).await;
            ready = ready.max(Duration::from_nanos(done));
        }
        if !delay.is_zero() {
            self.sleep_until(ready + delay).await;
        }
        Response::builder()
            .status(self.knobs.status)
            .body(Full::new(self.body.clone()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// Serves HTTP/1.1 and HTTP/2 on `listener` (TLS when `tls` is given) until `shutdown` completes, and
/// returns the handler times of the normal responses served (ns; see the module docs).
pub async fn serve(
    listener: TcpListener,
    knobs: Knobs,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> Histogram<u64> {
    let shared = Arc::new(Shared {
        body: Bytes::from(vec![b'x'; knobs.body_size]),
        auth: knobs.auth.then(Auth::new),
        knobs,
        start: Instant::now(),
        start_ns: crate::pacer::mono_ns(),
        served: AtomicU64::new(0),
        open: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        next_free: std::sync::Mutex::new(0),
        service: std::array::from_fn(|_| std::sync::Mutex::new(service_histogram())),
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => {
                let mut all = service_histogram();
                for s in &shared.service {
                    let _ = all.add(&*s.lock().unwrap_or_else(|e| e.into_inner()));
                }
                return all;
            }
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => {
                    // Out of file descriptors or similar: back off briefly.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let knobs = shared.knobs.clone();
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        shared.open.fetch_add(1, Ordering::Relaxed);
        let open = OpenGuard(shared.clone());
        tokio::spawn(async move {
            let _open = open;
            let count = Arc::new(AtomicU64::new(0));
            // When the latest bytes read on this connection arrived: a request is timed from
            // its arrival, not from when this server got round to it.
            let arrived = Arc::new(AtomicU64::new(0));
            let stream = Stamped::publishing(stream, arrived.clone());
            // `--close-every` over HTTP/2: the N-th response is followed by a GOAWAY (the
            // connection's graceful shutdown), HTTP/2's way to close a connection.
            let goaway = Arc::new(tokio::sync::Notify::new());
            let close_every = shared.knobs.close_every.filter(|&n| n > 0);
            let reset_every = shared.knobs.reset_every.filter(|&n| n > 0);
            let notify = goaway.clone();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                let at = arrived.load(Ordering::Relaxed);
                let h2 = req.version() == hyper::Version::HTTP_2;
                if h2 && close_every.is_some_and(|c| n.is_multiple_of(c)) {
                    notify.notify_one();
                }
                async move {
                    if reset_every.is_some_and(|r| n.is_multiple_of(r)) {
                        return Err(std::io::Error::other("--reset-every"));
                    }
                    let mut r = shared.handle(req, n, at).await;
                    if h2 {
                        // A connection-specific header is malformed in HTTP/2 (RFC 9113
                        // §8.2.2); GOAWAY does its work there.
                        r.headers_mut().remove(header::CONNECTION);
                    }
                    Ok::<_, std::io::Error>(r)
                }
            });
            match tls {
                None => conn(stream, svc, &knobs, goaway).await,
                Some(acc) => {
                    if let Ok(s) = acc.accept(stream).await {
                        conn(s, svc, &knobs, goaway).await;
                    }
                }
            }
        });
    }
}

/// Counts its connection open (`/__stats`) until the connection's task ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection, HTTP/1.1 or HTTP/2 as the client speaks (unless `--http1-only`),
/// shutting it down gracefully (GOAWAY over HTTP/2) when `goaway` is notified.
async fn conn<I, S>(io: I, svc: S, knobs: &Knobs, goaway: Arc<tokio::sync::Notify>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Full<Bytes>>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use hyper_util::server::conn::auto;
    let mut builder = auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    if knobs.http1_only {
        builder = builder.http1_only();
    }
    builder
        .http2()
        .max_concurrent_streams(knobs.max_streams)
        .initial_stream_window_size(knobs.h2_window)
        .initial_connection_window_size(knobs.h2_window);
    let c = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(c);
    tokio::select! {
        _ = c.as_mut() => return,
        _ = goaway.notified() => c.as_mut().graceful_shutdown(),
    }
    let _ = c.await;
}

/// The server's HTTP/2 flow-control windows (stream and connection): large, as the client's,
/// so that neither side waits for WINDOW_UPDATEs.
pub const H2_WINDOW: u32 = (1 << 30) - 1;
