//! Opening connections: plain TCP or TLS (rustls), with ALPN by HTTP version. The choice is made once per run, by type, so
//! the request loop is monomorphised for one stream type and never branches on TLS (as wrk
//! does with its function pointers). Each connect says how long its TCP connect and TLS
//! handshake took ([`Opened`]), for the timing breakdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::rxtime::{self, TimedRead};
use super::verify::{NoVerify, OwnCerts};
use crate::config::{Config, HttpVersion};
use crate::error::{Error, Result};
use crate::pacer::mono_ns;

/// How long opening one connection took, ns (`Stats::record_connect` records it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opened {
    /// The TCP connect, from the call to the socket being connected.
    pub connect_ns: u64,
    /// The TLS handshake after it; `None` for plain TCP.
    pub tls_ns: Option<u64>,
}

/// Something that opens a fresh stream to the target.
pub trait Connector: Clone + 'static {
    /// The connected stream type.
    type Stream: AsyncRead + AsyncWrite + TimedRead + Unpin + 'static;
    /// Opens one connection (TCP connect, then the TLS handshake if any), and says how long
    /// each took.
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> impl std::future::Future<Output = io::Result<(Self::Stream, Opened)>>;
}

/// A TCP connection with `TCP_NODELAY`, the clock (`mono_ns`) when it was connected, and how
/// long that took.
async fn tcp(addr: SocketAddr) -> io::Result<(TcpStream, u64, u64)> {
    let start = mono_ns();
    let s = TcpStream::connect(addr).await?;
    let at = mono_ns();
    s.set_nodelay(true)?;
    Ok((s, at, at - start))
}

/// Plain TCP with `TCP_NODELAY`.
#[derive(Clone, Copy)]
pub struct Tcp;

impl Connector for Tcp {
    type Stream = TcpStream;
    async fn connect(&self, addr: SocketAddr) -> io::Result<(TcpStream, Opened)> {
        let (s, _, connect_ns) = tcp(addr).await?;
        // Responses are timed by when they arrived (see rxtime); without the kernel's
        // timestamps, by the clock after the read.
        rxtime::enable(&s);
        let tls_ns = None;
        Ok((s, Opened { connect_ns, tls_ns }))
    }
}

/// Plain TCP whose reads keep the kernel's receive timestamps through `AsyncRead`
/// ([`rxtime::Stamped`]), for HTTP/2 (h2c), whose connection task reads the socket.
#[derive(Clone, Copy)]
pub struct TcpStamped;

impl Connector for TcpStamped {
    type Stream = rxtime::Stamped;
    async fn connect(&self, addr: SocketAddr) -> io::Result<(rxtime::Stamped, Opened)> {
        let (s, _, connect_ns) = tcp(addr).await?;
        let tls_ns = None;
        Ok((rxtime::Stamped::new(s), Opened { connect_ns, tls_ns }))
    }
}

/// TLS over TCP with rustls; SNI from the URL host, ALPN by the HTTP version: `http/1.1`,
/// `h2` (required: a server that selects anything else fails the handshake with a line that
/// says so), or both (`--http-version auto`, before the engine settles on one).
#[derive(Clone)]
pub struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    /// The server must select `h2` by ALPN.
    require_h2: bool,
}

impl Connector for Tls {
    type Stream = tokio_rustls::client::TlsStream<rxtime::Stamped>;
    async fn connect(&self, addr: SocketAddr) -> io::Result<(Self::Stream, Opened)> {
        let (s, at, connect_ns) = tcp(addr).await?;
        let s = rxtime::Stamped::new(s);
        let s = self
            .connector
            .connect(self.name.clone(), s)
            .await
            .map_err(handshake_error)?;
        if self.require_h2 && s.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(no_h2(s.get_ref().1.alpn_protocol()));
        }
        let tls_ns = Some(mono_ns().saturating_sub(at));
        Ok((s, Opened { connect_ns, tls_ns }))
    }
}

/// The error of a server that did not select `h2` by ALPN.
#[cold]
fn no_h2(chosen: Option<&[u8]>) -> io::Error {
    let chose = match chosen {
        Some(p) => format!("it selected {:?}", String::from_utf8_lossy(p)),
        None => "it selected no protocol".into(),
    };
    io::Error::other(format!(
        "the server does not speak HTTP/2 over TLS: ALPN offered h2 and {chose} (without \
         --http2 loadgen speaks HTTP/1.1; --http-version auto takes what the server selects)"
    ))
}

impl Tls {
    /// The protocol the server selects by ALPN when offered both `h2` and `http/1.1`
    /// (`--http-version auto`): `true` for `h2`.
    pub async fn selects_h2(&self, addr: SocketAddr) -> io::Result<bool> {
        let (s, _) = self.connect(addr).await?;
        Ok(s.get_ref().1.alpn_protocol() == Some(b"h2"))
    }
}

/// A failed handshake's error, said so that a person can act on it where rustls's words
/// would not tell them what to do.
#[cold]
fn handshake_error(e: io::Error) -> io::Error {
    use rustls::{CertificateError, InvalidMessage};
    let hint = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        // The first byte back was no TLS record type: "HTTP/1.1 400 ..." from a plain server.
        Some(rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            "the server did not answer with TLS (it may speak plain HTTP: try http://)"
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "invalid peer certificate: issued by an unknown CA (give it with --cacert FILE, or \
             skip verification with --insecure)"
        }
        _ if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the TLS handshake (does it speak TLS on \
             this port? try http://)"
        }
        _ => return e,
    };
    io::Error::new(e.kind(), hint)
}

impl Tls {
    /// Builds the TLS client from the configuration: webpki roots plus `--cacert` (a
    /// `--cacert` certificate may also be the server's own: [`OwnCerts`]), or no verification
    /// at all with `--insecure`.
    pub fn new(config: &Config) -> Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Runtime(format!("TLS set-up: {e}")))?;
        let mut tls = if config.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let mut own = Vec::new();
            if let Some(path) = &config.cacert {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::Usage(format!("cannot read --cacert {}: {e}", path.display()))
                })?;
                let mut n = 0;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| {
                        Error::Usage(format!("bad certificate in {}: {e}", path.display()))
                    })?;
                    roots.add(cert.clone()).map_err(|e| {
                        Error::Usage(format!("bad certificate in {}: {e}", path.display()))
                    })?;
                    own.push(cert);
                    n += 1;
                }
                if n == 0 {
                    return Err(Error::Usage(format!(
                        "no PEM certificates found in {}",
                        path.display()
                    )));
                }
            }
            let verifier = OwnCerts::new(roots, own, provider)
                .map_err(|e| Error::Runtime(format!("TLS set-up: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        };
        tls.alpn_protocols = match config.http {
            HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
            // `--http2` offers `http/1.1` too, so that a server without HTTP/2 answers the
            // handshake (rather than failing it with an alert) and the error can say what it
            // selected.
            HttpVersion::Http2 | HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        let name = ServerName::try_from(config.target.host.clone()).map_err(|e| {
            Error::Usage(format!(
                "invalid TLS server name {:?}: {e}",
                config.target.host
            ))
        })?;
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            name,
            require_h2: config.http == HttpVersion::Http2,
        })
    }
}
