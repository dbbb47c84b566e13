//! Opening connections: plain TCP or TLS (rustls). The choice is made once per run, by type, so
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
use crate::config::Config;
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

/// TLS over TCP with rustls; SNI from the URL host, ALPN `http/1.1`.
#[derive(Clone)]
pub struct Tls {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
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
        let tls_ns = Some(mono_ns().saturating_sub(at));
        Ok((s, Opened { connect_ns, tls_ns }))
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
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = ServerName::try_from(config.target.host.clone()).map_err(|e| {
            Error::Usage(format!(
                "invalid TLS server name {:?}: {e}",
                config.target.host
            ))
        })?;
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            name,
        })
    }
}
