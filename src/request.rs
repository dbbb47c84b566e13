//! The request source: the bytes a connection writes for each planned request. Without a
//! script, one request is built once from the configuration and reused for the whole run.

use crate::config::Config;

/// What a connection sends in one planned slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The raw bytes written to the socket (one request, or several back to back).
    pub bytes: Vec<u8>,
    /// How many responses these bytes ask for (more than one when pipelined).
    pub responses: usize,
    /// The request(s) use HEAD, so responses carry no body.
    pub head: bool,
    /// The (first) request's method is idempotent (RFC 9110 §9.2.2: GET, HEAD, PUT, DELETE,
    /// OPTIONS, TRACE), so it may be sent again when a reused connection turns out closed
    /// before its response began. Decided when the bytes are built, not per request.
    pub idempotent: bool,
}

/// Whether the request in `bytes` starts with an idempotent method (RFC 9110 §9.2.2).
pub fn idempotent(bytes: &[u8]) -> bool {
    const IDEMPOTENT: [&[u8]; 6] = [
        b"GET ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"TRACE ",
    ];
    IDEMPOTENT.iter().any(|m| bytes.starts_with(m))
}

/// Formats one HTTP/1.1 request. `Host` is added first unless `headers` has one, and
/// `Content-Length` is added when there is a body and `headers` has none.
pub fn format(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.map_or(0, <[u8]>::len));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("host") {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(b) = body {
        if !has("content-length") && !has("transfer-encoding") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", b.len()).as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
    out
}

/// The request described by the command line (method, URL, `-H` headers, body).
pub fn from_config(config: &Config) -> Request {
    let bytes = format(
        &config.method,
        &config.target.path,
        &config.target.host_header(),
        &config.headers,
        config.body.as_deref(),
    );
    Request {
        idempotent: idempotent(&bytes),
        bytes,
        responses: 1,
        head: config.method.eq_ignore_ascii_case("HEAD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_layout() {
        let r = format(
            "GET",
            "/a?b=1",
            "h:8080",
            &[("X-A".into(), "1".into())],
            None,
        );
        assert_eq!(r, b"GET /a?b=1 HTTP/1.1\r\nHost: h:8080\r\nX-A: 1\r\n\r\n");
    }

    #[test]
    fn body_gets_content_length_and_host_can_be_overridden() {
        let r = format(
            "POST",
            "/",
            "h",
            &[("host".into(), "other".into())],
            Some(b"abc"),
        );
        assert_eq!(
            r,
            b"POST / HTTP/1.1\r\nhost: other\r\nContent-Length: 3\r\n\r\nabc"
        );
    }
}
