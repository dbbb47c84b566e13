//! HTTP/1.1 response reading for the client side, written by hand on purpose: this is the
//! generator's hot path. hyper's client cannot pipeline, allocates a `Response` and a header map
//! per request, and hides the byte-level timing we measure; here a response is parsed in place
//! (its head by `conn::head`, a chunked body by [`super::chunked`]) without copying or
//! allocating, and the body is counted and discarded unless a script asks for it. This module
//! owns the connection's read buffer and the loop that fills it until a response is complete.

use super::chunked::ChunkedDecoder;
pub use super::error::ReadError;
use super::error::ReadReason;
pub use super::head::ResponseHead;
use super::head::{self, Framing, Parsed};
use super::rxtime::TimedRead;

/// Initial read buffer size per connection: small, so that `-c 10000` stays small; a buffer
/// that a read fills completely doubles, up to `MAX_READ_BUF`, so large bodies are still read in
/// few system calls.
const INITIAL_BUF: usize = 1024;
/// Largest buffer growth for reading bodies (a head may grow it further, up to `MAX_HEAD`).
const MAX_READ_BUF: usize = 64 * 1024;

/// A connection's read buffer and response parser. Bytes that follow a complete response stay
/// in the buffer for the next one (pipelining).
pub struct ResponseReader {
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    /// End of valid bytes in `buf`.
    end: usize,
    /// When the kernel received the bytes of the last read (CLOCK_REALTIME ns, as the kernel
    /// said: `rxtime::to_monotonic` converts it), if known.
    rx: Option<u64>,
    /// The same, kept after `take_rx`: when the bytes still buffered arrived.
    last_rx: Option<u64>,
    /// When the first bytes of the response being read arrived (CLOCK_REALTIME ns), if the
    /// kernel said: the stamp of the read that brought them.
    first_rx: Option<u64>,
    /// No byte of the response being read has arrived yet: the next read's stamp is its
    /// first byte's.
    first_open: bool,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader::new()
    }
}

/// Called with the parsed head and the body bytes of a response, for scripts that ask for them.
pub trait ResponseSink {
    /// Whether the sink wants headers and body at all (if not, nothing is copied).
    fn wants(&self) -> bool;
    /// The response head: status and headers.
    fn head(&mut self, status: u16, headers: &[httparse::Header<'_>]);
    /// A run of body bytes (called zero or more times).
    fn body(&mut self, bytes: &[u8]);
}

/// A sink that wants nothing: the default, zero-cost path.
pub struct Discard;

impl ResponseSink for Discard {
    #[inline]
    fn wants(&self) -> bool {
        false
    }
    fn head(&mut self, _: u16, _: &[httparse::Header<'_>]) {}
    fn body(&mut self, _: &[u8]) {}
}

impl ResponseReader {
    /// An empty reader with the default buffer.
    pub fn new() -> ResponseReader {
        ResponseReader {
            buf: vec![0; INITIAL_BUF],
            start: 0,
            end: 0,
            rx: None,
            last_rx: None,
            first_rx: None,
            first_open: false,
        }
    }

    /// Drops any buffered bytes (after a reconnect).
    /// Whether bytes of a response not yet read are in the buffer (pipelined responses, or
    /// bytes the server sent unasked).
    #[inline]
    pub fn buffered(&self) -> bool {
        self.start < self.end
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.rx = None;
        self.last_rx = None;
    }

    /// When the kernel received the bytes of the last read (CLOCK_REALTIME ns), if it said:
    /// for a response just read, the instant it was complete. Taken once.
    pub fn take_rx(&mut self) -> Option<u64> {
        self.rx.take()
    }

    /// When the first bytes of the response last read arrived (CLOCK_REALTIME ns), if the
    /// kernel said: the stamp of the read that brought them (bytes already buffered when the
    /// response's read began came with the read before). The timing breakdown's first byte.
    #[inline]
    pub fn first_rx(&self) -> Option<u64> {
        self.first_rx
    }

    /// Reads more bytes from `io` into the buffer; returns how many (0 = EOF).
    async fn fill<R: TimedRead>(&mut self, io: &mut R) -> Result<usize, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let room = self.buf.len() - self.end;
        let (n, rx) = io.read_timed(&mut self.buf[self.end..]).await?;
        self.rx = rx;
        self.last_rx = rx;
        if self.first_open && n > 0 {
            self.first_rx = rx;
            self.first_open = false;
        }
        self.end += n;
        if n == room && self.buf.len() < MAX_READ_BUF {
            // The socket had more than we could take: read bigger next time.
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        Ok(n)
    }

    /// Reads one complete response from `io`. `head_request` marks a response to HEAD (no body
    /// whatever the headers say). `bytes` is increased by every byte read from the socket.
    pub async fn read_response<R: TimedRead, S: ResponseSink>(
        &mut self,
        io: &mut R,
        head_request: bool,
        bytes: &mut u64,
        sink: &mut S,
    ) -> Result<ResponseHead, ReadError> {
        // The first byte's arrival: that of the buffered bytes, or of the next read's.
        self.first_open = !self.buffered();
        self.first_rx = if self.first_open { None } else { self.last_rx };
        // Head.
        let (head, framing) = loop {
            if self.start < self.end {
                match head::parse(&self.buf[self.start..self.end], head_request, sink)? {
                    Parsed::Final { len, head, framing } => {
                        self.start += len;
                        break (head, framing);
                    }
                    Parsed::Interim(len) => {
                        self.start += len;
                        continue;
                    }
                    Parsed::Partial => {}
                }
            }
            let n = self.fill(io).await?;
            if n == 0 {
                return Err(ReadReason::Closed.into());
            }
            *bytes += n as u64;
        };
        // Body.
        match framing {
            Framing::None => {}
            Framing::Length(mut left) => loop {
                let avail = ((self.end - self.start) as u64).min(left) as usize;
                if sink.wants() {
                    sink.body(&self.buf[self.start..self.start + avail]);
                }
                self.start += avail;
                left -= avail as u64;
                if left == 0 {
                    break;
                }
                let n = self.fill(io).await?;
                if n == 0 {
                    return Err(ReadReason::Closed.into());
                }
                *bytes += n as u64;
            },
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::default();
                loop {
                    let used = if sink.wants() {
                        dec.feed(&self.buf[self.start..self.end], |b| sink.body(b))?
                    } else {
                        dec.feed(&self.buf[self.start..self.end], |_| {})?
                    };
                    self.start += used;
                    if dec.done() {
                        break;
                    }
                    let n = self.fill(io).await?;
                    if n == 0 {
                        return Err(ReadReason::Closed.into());
                    }
                    *bytes += n as u64;
                }
            }
            Framing::UntilClose => loop {
                if sink.wants() {
                    sink.body(&self.buf[self.start..self.end]);
                }
                self.start = self.end;
                let n = self.fill(io).await?;
                if n == 0 {
                    break;
                }
                *bytes += n as u64;
            },
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::error::MAX_HEAD;

    /// Reads `n` responses from `input`, delivered in 7-byte pieces to exercise partial reads;
    /// `head`: they answer HEAD requests.
    fn read_all(input: &[u8], head: bool, n: usize) -> Vec<Result<ResponseHead, String>> {
        read_pieces(input, 7, &vec![head; n])
    }

    /// Reads one response per entry of `head_requests` (whether it answers a HEAD) from
    /// `input`, delivered in reads of up to 4 KB, so that whole heads sit in the buffer.
    fn read_seq(input: &[u8], head_requests: &[bool]) -> Vec<Result<ResponseHead, String>> {
        read_pieces(input, 4096, head_requests)
    }

    /// Reads one response per entry of `head_requests` from `input`, delivered in reads of at
    /// most `piece` bytes.
    fn read_pieces(
        input: &[u8],
        piece: usize,
        head_requests: &[bool],
    ) -> Vec<Result<ResponseHead, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut mock = tokio_test_reader(input, piece);
            let mut r = ResponseReader::new();
            let mut bytes = 0;
            let mut out = Vec::new();
            for &head in head_requests {
                out.push(
                    r.read_response(&mut mock, head, &mut bytes, &mut Discard)
                        .await
                        .map_err(|e| e.to_string()),
                );
            }
            out
        })
    }

    /// A stream that returns `input` in pieces of at most `piece` bytes.
    fn tokio_test_reader(input: &[u8], piece: usize) -> impl TimedRead {
        struct Pieces(Vec<u8>, usize, usize);
        impl tokio::io::AsyncRead for Pieces {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let n = self.2.min(self.0.len() - self.1).min(buf.remaining());
                let s = self.1;
                buf.put_slice(&self.0[s..s + n]);
                self.1 += n;
                std::task::Poll::Ready(Ok(()))
            }
        }
        impl TimedRead for Pieces {}
        Pieces(input.to_vec(), 0, piece)
    }

    /// A head that repeats the thread's last one is taken from the memo; one that differs only
    /// after the memo's first bytes, or that answers a HEAD, is parsed for what it says.
    #[test]
    fn repeated_heads_mean_the_same_and_changed_ones_are_parsed() {
        let a = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let b = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}",
            "x".repeat(50)
        );
        let c = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        // After `a` twice: `a`'s head answering a HEAD has no body, so the 204 follows it.
        let head_of_a = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
        let input = format!("{a}{a}{b}{a}{c}{a}{head_of_a}{no_content}{a}");
        let r = read_seq(
            input.as_bytes(),
            &[false, false, false, false, false, false, true, false, false],
        );
        let ok = |status, close| Ok(ResponseHead { status, close });
        assert_eq!(
            r,
            vec![
                ok(200, false),
                ok(200, false),
                ok(200, false),
                ok(200, false),
                ok(200, true),
                ok(200, false),
                ok(200, false),
                ok(204, false),
                ok(200, false),
            ]
        );
        // Nothing is left over or missing: another read finds the end of the stream.
        let r = read_seq(
            input.as_bytes(),
            &[
                false, false, false, false, false, false, true, false, false, false,
            ],
        );
        assert!(r[9].as_ref().unwrap_err().contains("closed"), "{r:?}");
    }

    #[test]
    fn content_length_and_pipelining() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 503 No\r\ncontent-length: 0\r\nConnection: close\r\n\r\n";
        let r = read_all(two, false, 3);
        assert_eq!(
            r[0],
            Ok(ResponseHead {
                status: 200,
                close: false
            })
        );
        assert_eq!(
            r[1],
            Ok(ResponseHead {
                status: 503,
                close: true
            })
        );
        assert!(r[2].as_ref().unwrap_err().contains("closed"));
    }

    #[test]
    fn chunked_bodies() {
        let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: y\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let r = read_all(body, false, 2);
        assert_eq!(
            r[0],
            Ok(ResponseHead {
                status: 200,
                close: false
            })
        );
        assert_eq!(
            r[1],
            Ok(ResponseHead {
                status: 204,
                close: false
            })
        );
    }

    #[test]
    fn head_responses_and_close_delimited() {
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close";
        let r = read_all(head, true, 1);
        assert_eq!(
            r[0],
            Ok(ResponseHead {
                status: 200,
                close: false
            })
        );
        let r = read_all(b"HTTP/1.0 200 OK\r\n\r\nuntil close", false, 1);
        assert_eq!(
            r[0],
            Ok(ResponseHead {
                status: 200,
                close: true
            })
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n";
        for r in [read_all(input, false, 2), read_seq(input, &[false, false])] {
            let status: Vec<u16> = r.iter().map(|h| h.as_ref().unwrap().status).collect();
            assert_eq!(status, [201, 404]);
        }
    }

    /// A head with `fields` header fields, each `pad` bytes of value, and a 2-byte body.
    fn many_fields(fields: usize, pad: usize) -> String {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..fields {
            s.push_str(&format!("X-Field-{i}: {}\r\n", "v".repeat(pad)));
        }
        s + "Content-Length: 2\r\n\r\nok"
    }

    /// The reasons the reads of `input` (one response per entry of `head_requests`, in
    /// pieces of `piece` bytes) failed with, or their statuses.
    fn outcomes(input: &[u8], piece: usize, n: usize) -> Vec<Result<u16, ReadReason>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut mock = tokio_test_reader(input, piece);
            let mut r = ResponseReader::new();
            let mut out = Vec::new();
            for _ in 0..n {
                let res = r
                    .read_response(&mut mock, false, &mut 0, &mut Discard)
                    .await;
                out.push(res.map(|h| h.status).map_err(|e| e.reason()));
            }
            out
        })
    }

    /// Any number of fields is read, within the head's size limit; past it the error names
    /// the limit.
    #[test]
    fn heads_with_many_fields_or_many_bytes() {
        for (fields, pad) in [(150, 1), (300, 8), (1000, 1), (64, 1024)] {
            let one = many_fields(fields, pad);
            let two = format!("{one}{one}");
            for piece in [7, 4096, 1 << 20] {
                assert_eq!(
                    outcomes(two.as_bytes(), piece, 2),
                    vec![Ok(200), Ok(200)],
                    "{fields} fields of {pad} bytes in pieces of {piece}"
                );
            }
        }
        // A 64 KB head, in one field.
        let big = format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
            "b".repeat(64 * 1024)
        );
        assert_eq!(outcomes(big.as_bytes(), 4096, 1), vec![Ok(200)]);
        // Just over the limit, complete or not, and however it arrives.
        let over = many_fields(MAX_HEAD / 16, 4);
        assert!(over.len() > MAX_HEAD);
        for piece in [4096, 1 << 21] {
            let r = outcomes(over.as_bytes(), piece, 1);
            assert_eq!(r, vec![Err(ReadReason::HeadTooLarge)]);
        }
        let unfinished = &over.as_bytes()[..MAX_HEAD + 10];
        assert_eq!(
            outcomes(unfinished, 65536, 1),
            vec![Err(ReadReason::HeadTooLarge)]
        );
        assert_eq!(MAX_HEAD, 1 << 20);
        let msg = ReadError::from(ReadReason::HeadTooLarge).to_string();
        assert!(msg.contains("1 MiB"), "{msg}");
    }

    /// RFC 9112 §6.3: differing Content-Length values make the response invalid; repeating
    /// one value is accepted.
    #[test]
    fn conflicting_content_lengths_are_invalid() {
        let same = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello\
                    HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello";
        assert_eq!(outcomes(same.as_bytes(), 7, 2), vec![Ok(200), Ok(200)]);
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nContent-Length: 50, 5\r\n\r\nhello",
        ] {
            assert_eq!(
                outcomes(bad.as_bytes(), 4096, 1),
                vec![Err(ReadReason::ConflictingLength)]
            );
        }
        let r = outcomes(b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", 4096, 1);
        assert_eq!(r, vec![Err(ReadReason::BadLength)]);
        // Chunked overrides Content-Length; 204 has no body whatever it says.
        let r = outcomes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 204 No\r\nContent-Length: x\r\n\r\n",
            4096,
            2,
        );
        assert_eq!(r, vec![Ok(200), Ok(204)]);
    }

    /// Each failure counts under the reason a person can act on.
    #[test]
    fn read_errors_have_reasons() {
        for (input, reason) in [
            (&b"SSH-2.0-OpenSSH\r\n\r\n"[..], ReadReason::StatusLine),
            (b"\x15\x03\x03\x00\x02\x02\x32", ReadReason::TlsOnPlain),
            (b"\x16\x03\x01\x00\x05hello", ReadReason::TlsOnPlain),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                ReadReason::HeaderField,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                ReadReason::Closed,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Le", ReadReason::Closed),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ReadReason::Chunked,
            ),
        ] {
            assert_eq!(outcomes(input, 3, 1), vec![Err(reason)], "{input:?}");
        }
    }

    #[test]
    fn garbage_is_invalid() {
        let r = read_all(b"SSH-2.0-OpenSSH\r\n\r\n", false, 1);
        assert!(r[0].as_ref().unwrap_err().contains("invalid"));
    }
}
