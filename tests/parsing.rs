//! End-to-end tests of real servers' edges: heads with hundreds of fields or tens of
//! kilobytes, heads past the reader's limit, conflicting `Content-Length`, bytes that are no
//! HTTP, a self-signed CA certificate used as the server's own, and TLS on one side only.
//! Every read error says why, in the text report and in the JSON. The servers here are small
//! raw-TCP (or rustls) threads on 127.0.0.1:0 that answer every request with canned bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{parse, run, serve, stderr, stdout};

const LIMIT: Duration = Duration::from_secs(30);

/// Starts a loopback server that answers every request (a head up to its blank line; the
/// load tests send no bodies) on every connection with `response`, through `wrap` (plain TCP,
/// or TLS). Returns its `host:port`. It serves until the test process ends.
fn canned_with<S, W>(response: Vec<u8>, wrap: W) -> String
where
    S: Read + Write,
    W: Fn(TcpStream) -> S + Send + Sync + 'static,
{
    // A load test: never beside a timing test (see `common::alone`).
    crate::common::shared();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let response = Arc::new(response);
    let wrap = Arc::new(wrap);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let (response, wrap) = (response.clone(), wrap.clone());
            std::thread::spawn(move || answer(wrap(s), &response));
        }
    });
    addr
}

/// [`canned_with`] over plain TCP; returns the `http://` URL.
fn canned(response: impl Into<Vec<u8>>) -> String {
    format!("http://{}/", canned_with(response.into(), |s| s))
}

/// Answers each request read from `s` with `response`, until the peer closes or a write fails.
fn answer<S: Read + Write>(mut s: S, response: &[u8]) {
    let mut buf = [0u8; 4096];
    let mut pending = Vec::new();
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
        while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..i + 4);
            if s.write_all(response).and_then(|_| s.flush()).is_err() {
                return;
            }
        }
    }
}

/// A 200 response whose head has `fields` header fields of `pad` value bytes each, and a
/// 2-byte body.
fn many_fields(fields: usize, pad: usize) -> Vec<u8> {
    let mut s = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..fields {
        s.push_str(&format!("X-Field-{i}: {}\r\n", "v".repeat(pad)));
    }
    (s + "Content-Length: 2\r\n\r\nok").into_bytes()
}

/// 50 requests over 1 s on two connections to `url`, with `extra` arguments.
fn short_run(url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["-t1", "-c2", "-d1s", "-R50"];
    args.extend_from_slice(extra);
    args.push(url);
    run(&args, LIMIT)
}

/// wrk2 accepts 150 header fields; loadgen refused more than 100 (every response a read
/// error). Now any number is read within the 1 MiB head limit: 150 fields, and 300 fields
/// making a 66 KB head.
#[test]
fn heads_with_hundreds_of_fields_or_64_kb_are_read() {
    for (fields, pad) in [(150, 16), (300, 210)] {
        let response = many_fields(fields, pad);
        let url = canned(response.clone());
        let out = short_run(&url, &[]);
        let text = stdout(&out);
        let r = parse(&text);
        assert!(out.status.success(), "{text}{}", stderr(&out));
        assert!(r.requests >= 45 && r.read == 0, "{fields} fields: {text}");
        assert!(response.len() > 64 * 1024 || fields == 150);
    }
}

/// A head past the limit is a read error whose reason names the limit.
#[test]
fn a_head_over_the_limit_is_a_read_error_that_names_it() {
    let url = canned(many_fields(70_000, 8));
    let out = run(&["-t1", "-c1", "-d1s", "-R5", &url], LIMIT);
    let text = stdout(&out);
    let r = parse(&text);
    assert!(r.read >= 3 && r.requests == 0, "{text}");
    assert!(text.contains("header section over 1 MiB"), "{text}");
}

/// RFC 9112 §6.3: differing Content-Length values make the response invalid. They were read
/// with the later one (so every request timed out waiting for 18 bytes that never came); now
/// each is a read error that says so. Repeating one value is accepted.
#[test]
fn conflicting_content_lengths_are_invalid_responses() {
    let url = canned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nok");
    let out = short_run(&url, &["--timeout", "500ms"]);
    let text = stdout(&out);
    let r = parse(&text);
    assert!(r.read >= 40 && r.timeout == 0 && r.requests == 0, "{text}");
    assert!(
        text.contains("invalid response: conflicting Content-Length"),
        "{text}"
    );

    let url = canned("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok");
    let out = short_run(&url, &[]);
    let r = parse(&stdout(&out));
    assert!(r.requests >= 45 && r.read == 0, "{}", stdout(&out));
}

/// `read N` says why, in the text and in the JSON (`errors.read_reasons`); merge adds the
/// reasons exactly, and a result written before reasons were kept still reads.
#[test]
fn read_errors_say_why_in_text_and_json() {
    let url = canned("SSH-2.0-OpenSSH_9.6\r\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    let f = file.to_str().unwrap();
    let out = short_run(&url, &["--json", f]);
    let text = stdout(&out);
    let r = parse(&text);
    assert!(r.read >= 40, "{text}");
    assert!(
        text.contains(&format!(
            "read {} (invalid response: no HTTP status line),",
            r.read
        )),
        "{text}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let reasons = &doc["errors"]["read_reasons"];
    assert_eq!(reasons["invalid_status_line"], r.read, "{reasons}");
    assert_eq!(reasons.as_object().unwrap().len(), 1, "{reasons}");

    let merged = run(&["merge", f, f], LIMIT);
    let mtext = stdout(&merged);
    // Nothing succeeded in either input: exit 1, after the report.
    assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
    assert!(
        mtext.contains(&format!(
            "read {} (invalid response: no HTTP status line),",
            2 * r.read
        )),
        "{mtext}"
    );

    // A document from before reasons were kept: the count, without reasons.
    let mut old = doc.clone();
    old["errors"]
        .as_object_mut()
        .unwrap()
        .remove("read_reasons");
    let old_file = dir.path().join("old.json");
    std::fs::write(&old_file, old.to_string()).unwrap();
    let again = run(&["report", old_file.to_str().unwrap()], LIMIT);
    let atext = stdout(&again);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        atext.contains(&format!("read {}, write", r.read)),
        "{atext}"
    );
}

/// A self-signed certificate with `CA:TRUE` for localhost and 127.0.0.1, as
/// `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -addext
/// subjectAltName=DNS:localhost,IP:127.0.0.1` makes it: (PEM, DER, PKCS#8 key DER).
fn ca_cert() -> (String, Vec<u8>, Vec<u8>) {
    let mut p =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec(), key.serialize_der())
}

/// A TLS server presenting `cert_der` and answering every request with a small 200; returns
/// its `https://127.0.0.1:PORT/` URL.
fn tls_server(cert_der: Vec<u8>, key_der: Vec<u8>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert_der.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
        )
        .unwrap();
    let cfg = Arc::new(cfg);
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let addr = canned_with(response, move |s| {
        rustls::StreamOwned::new(rustls::ServerConnection::new(cfg.clone()).unwrap(), s)
    });
    format!("https://{addr}/")
}

/// The commonest self-signed setup: the server presents a CA:TRUE certificate, given to the
/// client with `--cacert` (curl accepts it). It failed with `CaUsedAsEndEntity`; now it is
/// verified as the trusted certificate it is. Another CA certificate still does not vouch
/// for it.
#[test]
fn a_self_signed_ca_certificate_given_with_cacert_is_accepted() {
    let (pem, der, key) = ca_cert();
    let url = tls_server(der, key);
    let dir = tempfile::tempdir().unwrap();
    let cacert = dir.path().join("cert.pem");
    std::fs::write(&cacert, pem).unwrap();
    let out = short_run(&url, &["--cacert", cacert.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let r = parse(&text);
    assert!(r.requests >= 45 && r.read == 0, "{text}");

    let other = dir.path().join("other.pem");
    std::fs::write(&other, ca_cert().0).unwrap();
    let out = short_run(&url, &["--cacert", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("certificate"), "{}", stderr(&out));
}

/// An https URL to a plain-HTTP port says that the server did not answer TLS and suggests
/// http:// (it said "received corrupt message of type InvalidContentType").
#[test]
fn https_to_a_plain_http_port_says_so() {
    let s = serve(&[]);
    let url = s.url.replace("http://", "https://");
    let out = short_run(&url, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(
        err.contains("did not answer with TLS") && err.contains("try http://"),
        "{err}"
    );
}

/// An http URL to a TLS port: the server's TLS alert is recognised, and every read error
/// says so.
#[test]
fn http_to_a_tls_port_says_so() {
    let s = serve(&["--tls"]);
    let url = s.url.replace("https://", "http://");
    let out = short_run(&url, &[]);
    let text = stdout(&out);
    let r = parse(&text);
    assert!(r.read >= 40 && r.requests == 0, "{text}");
    assert!(
        text.contains(&format!(
            "read {} (TLS record on a plain-HTTP connection: the server speaks TLS; use https://)",
            r.read
        )),
        "{text}"
    );
}
