//! HTTP/2 requests from HTTP/1.1 bytes: the request a run sends is built as HTTP/1.1 bytes (by
//! the command line, or by a script's `wrk.format()`), so that scripts stay unmodified; for
//! HTTP/2 those bytes are parsed once into method, `:authority`/`:path`, headers and body
//! ([`H2Request`]), and each request is a copy of that (no parse per request while the bytes do
//! not change). Connection-specific fields (`Connection`, `Keep-Alive`, `Proxy-Connection`,
//! `Transfer-Encoding`, `Upgrade`, and `TE` other than `trailers`) are malformed in HTTP/2
//! (RFC 9113 §8.2.2) and left out; `Host` becomes `:authority`. Of pipelined bytes (several
//! requests back to back) only the first is sent: streams replace pipelining.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri, Version};

/// One request in HTTP/2 form, ready to copy per send.
#[derive(Debug, Clone)]
pub struct H2Request {
    /// The method.
    pub method: Method,
    /// `scheme://authority/path`: h2 takes `:scheme`, `:authority` and `:path` from it.
    pub uri: Uri,
    /// The header fields, connection-specific ones left out.
    pub headers: HeaderMap,
    /// The body (`Content-Length` bytes after the head), if any.
    pub body: Option<Bytes>,
}

/// Fields that are malformed in HTTP/2 (RFC 9113 §8.2.2), and `Host` (`:authority` instead).
fn dropped(name: &str, value: &[u8]) -> bool {
    const HOP: [&str; 6] = [
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || (name.eq_ignore_ascii_case("te") && !value.eq_ignore_ascii_case(b"trailers"))
}

impl H2Request {
    /// Parses the first request in `bytes` (HTTP/1.1 request bytes); `scheme` is `http` or
    /// `https`, `authority` the `:authority` when the bytes carry no `Host`.
    pub fn parse(bytes: &[u8], scheme: &str, authority: &str) -> Result<H2Request, String> {
        let mut fields = vec![httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut fields);
        let len = match req.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err("the request's head is incomplete".into()),
            Err(e) => return Err(format!("the request cannot be parsed: {e}")),
        };
        let method = Method::from_bytes(req.method.unwrap_or("GET").as_bytes())
            .map_err(|e| format!("invalid method: {e}"))?;
        let path = req.path.unwrap_or("/");
        let mut host = None;
        let mut length = None;
        let mut headers = HeaderMap::new();
        for f in req.headers.iter() {
            if f.name.eq_ignore_ascii_case("host") {
                host = std::str::from_utf8(f.value).ok().map(str::trim);
            }
            if f.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(f.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
            }
            if dropped(f.name, f.value) {
                continue;
            }
            let name = HeaderName::from_bytes(f.name.as_bytes())
                .map_err(|e| format!("invalid header name {:?}: {e}", f.name))?;
            let value = HeaderValue::from_bytes(f.value)
                .map_err(|e| format!("invalid value of header {:?}: {e}", f.name))?;
            headers.append(name, value);
        }
        let uri = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{scheme}://{}{path}", host.unwrap_or(authority))
        };
        let uri = Uri::try_from(uri).map_err(|e| format!("invalid request target: {e}"))?;
        let rest = &bytes[len..];
        let body = match length {
            Some(n) if n > 0 => Some(Bytes::copy_from_slice(&rest[..n.min(rest.len())])),
            _ => None,
        };
        Ok(H2Request {
            method,
            uri,
            headers,
            body,
        })
    }

    /// A fresh `http::Request` with this method, URI and headers (no parse: copies).
    #[inline]
    pub fn build(&self) -> http::Request<()> {
        let mut r = http::Request::new(());
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        *r.version_mut() = Version::HTTP_2;
        if !self.headers.is_empty() {
            *r.headers_mut() = self.headers.clone();
        }
        r
    }

    /// Whether responses carry no body (HEAD).
    pub fn head(&self) -> bool {
        self.method == Method::HEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_format_bytes_become_an_h2_request() {
        let b = crate::request::format(
            "POST",
            "/a?b=1",
            "h:8080",
            &[
                ("X-A".into(), "1".into()),
                ("Connection".into(), "keep-alive".into()),
            ],
            Some(b"abc"),
        );
        let r = H2Request::parse(&b, "http", "ignored").unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.uri.to_string(), "http://h:8080/a?b=1");
        assert_eq!(r.headers.get("x-a").unwrap(), "1");
        assert!(r.headers.get("connection").is_none());
        assert!(r.headers.get("host").is_none());
        assert_eq!(r.headers.get("content-length").unwrap(), "3");
        assert_eq!(r.body.as_deref(), Some(&b"abc"[..]));
        let built = r.build();
        assert_eq!(built.uri(), &r.uri);
        assert_eq!(built.version(), Version::HTTP_2);
    }

    #[test]
    fn pipelined_bytes_send_their_first_request() {
        let one = crate::request::format("GET", "/x", "h", &[], None);
        let mut two = one.clone();
        two.extend_from_slice(&crate::request::format("GET", "/y", "h", &[], None));
        let r = H2Request::parse(&two, "https", "h").unwrap();
        assert_eq!(r.uri.path(), "/x");
        assert!(r.body.is_none());
        assert!(H2Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n", "http", "h").is_err());
    }
}
