//! HTTP/2 requests from HTTP/1.1 bytes: the request a run sends is built as HTTP/1.1 bytes (by
//! the command line, or by a script's `wrk.format()`), so that scripts stay unmodified; for
//! HTTP/2 those bytes are parsed once into method, `:authority`/`:path`, headers and body
//! ([`H2Request`]) and encoded once as an HPACK header block, which every request sends as it
//! is (no parse or encoding per request while the bytes do not change). Connection-specific fields (`Connection`, `Keep-Alive`, `Proxy-Connection`,
//! `Transfer-Encoding`, `Upgrade`, and `TE` other than `trailers`) are malformed in HTTP/2
//! (RFC 9113 §8.2.2) and left out; `Host` becomes `:authority`. Of pipelined bytes (several
//! requests back to back) only the first is sent: streams replace pipelining.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use super::h2::hpack;

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
    /// The request's header blocks: pseudo-fields, then the fields.
    pub blocks: hpack::Blocks,
    /// The scheme and authority a script's request falls back to (the target's).
    pub scheme: String,
    pub authority: String,
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
        let auth = uri.authority().map_or(authority, |a| a.as_str());
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let pseudo: [(&[u8], &[u8]); 4] = [
            (b":method", method.as_str().as_bytes()),
            (b":scheme", uri.scheme_str().unwrap_or(scheme).as_bytes()),
            (b":authority", auth.as_bytes()),
            (b":path", target.as_bytes()),
        ];
        let fields = headers
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
        let blocks = hpack::Blocks::new(pseudo.into_iter().chain(fields));
        Ok(H2Request {
            method,
            uri,
            headers,
            body,
            blocks,
            scheme: scheme.to_string(),
            authority: authority.to_string(),
        })
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
        // The block decodes to the pseudo-fields, then the fields, in lower case.
        let mut fields = Vec::new();
        hpack::Decoder::default()
            .decode(&r.blocks.plain, true, |n, v| {
                fields.push(format!(
                    "{}: {}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                ))
            })
            .unwrap();
        assert_eq!(
            fields,
            [
                ":method: POST",
                ":scheme: http",
                ":authority: h:8080",
                ":path: /a?b=1",
                "x-a: 1",
                "content-length: 3"
            ]
        );
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
