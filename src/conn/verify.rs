//! How a TLS client checks the server's certificate: webpki against the built-in roots and
//! `--cacert` ([`OwnCerts`], which also accepts a self-signed CA certificate that the server
//! itself presents, as curl and OpenSSL do), or not at all with `--insecure` ([`NoVerify`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// webpki's verification, except for one case it refuses: the server presents a certificate
/// that is itself one of the `--cacert` certificates and a CA (`basicConstraints CA:TRUE`, as
/// `openssl req -x509` makes by default). webpki reports that as `CaUsedAsEndEntity` after it
/// has checked the certificate's validity period; the user has named this very certificate as
/// trusted, so it is accepted when it also names the server (DNS name or IP address). Every
/// other certificate gets webpki's full verification.
#[derive(Debug)]
pub struct OwnCerts {
    /// webpki, over the built-in roots and the `--cacert` certificates.
    inner: Arc<WebPkiServerVerifier>,
    /// The `--cacert` certificates, as given.
    own: Vec<CertificateDer<'static>>,
}

impl OwnCerts {
    /// A verifier trusting `roots` (which hold `own`), with `provider`'s algorithms.
    pub fn new(
        roots: rustls::RootCertStore,
        own: Vec<CertificateDer<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<OwnCerts, rustls::client::VerifierBuilderError> {
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(OwnCerts { inner, own })
    }
}

/// Whether `e` is webpki's refusal of a CA certificate as the server's own.
fn ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(o)) => matches!(
            o.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

impl ServerCertVerifier for OwnCerts {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(e) if ca_used_as_end_entity(&e) && self.own.iter().any(|c| c == end_entity) => {
                let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--insecure`: accepts any certificate but still checks handshake signatures (with the
/// provider's algorithms).
#[derive(Debug)]
pub struct NoVerify(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A self-signed CA certificate for localhost and 127.0.0.1, valid for `days` from now
    /// (negative: expired), as `openssl req -x509` makes it.
    fn ca_cert(days: i64) -> CertificateDer<'static> {
        let mut p =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let now = rcgen::date_time_ymd(2026, 1, 1);
        p.not_before = now;
        p.not_after = now + std::time::Duration::from_secs(86_400 * days.max(1) as u64);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().clone()
    }

    fn verifier(own: &[&CertificateDer<'static>]) -> OwnCerts {
        let mut roots = rustls::RootCertStore::empty();
        for c in own {
            roots.add((*c).clone()).unwrap();
        }
        OwnCerts::new(
            roots,
            own.iter().map(|c| (*c).clone()).collect(),
            provider(),
        )
        .unwrap()
    }

    fn check(v: &OwnCerts, cert: &CertificateDer<'_>, name: &str, day: u64) -> Result<(), String> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        // 2026-01-01 plus `day` days.
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            1_767_225_600 + day * 86_400 + 3600,
        ));
        v.verify_server_cert(cert, &[], &name, &[], now)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The server's certificate is the `--cacert` CA itself: accepted for its names while it
    /// is valid; refused for another name, after it expired, or when it is not the one given.
    #[test]
    fn a_given_ca_certificate_serves_as_its_own_server_certificate() {
        let ca = ca_cert(10);
        let v = verifier(&[&ca]);
        assert_eq!(check(&v, &ca, "localhost", 0), Ok(()));
        assert_eq!(check(&v, &ca, "127.0.0.1", 5), Ok(()));
        let wrong = check(&v, &ca, "example.com", 0).unwrap_err();
        assert!(wrong.contains("not valid for name"), "{wrong}");
        let expired = check(&v, &ca, "localhost", 11).unwrap_err();
        assert!(expired.contains("expired"), "{expired}");
        let other = ca_cert(10);
        let v = verifier(&[&other]);
        let unknown = check(&v, &ca, "localhost", 0).unwrap_err();
        assert!(unknown.contains("CaUsedAsEndEntity"), "{unknown}");
    }
}
