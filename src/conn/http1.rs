//! HTTP/1.1 response reading for the client side, written by hand on purpose: this is the
//! generator's hot path. hyper's client cannot pipeline, allocates a `Response` and a header map
//! per request, and hides the byte-level timing we measure; here a response is parsed in place
//! (httparse for the head, a small state machine for chunked bodies) without copying or
//! allocating, and the body is counted and discarded unless a script asks for it. A head that
//! repeats the thread's previous one byte for byte is recognised without a parse (`HeadMemo`).

use super::rxtime::TimedRead;

/// What went wrong while reading a response.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The socket failed.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before the response was complete.
    #[error("connection closed before the response was complete")]
    Closed,
    /// The bytes were not a valid HTTP/1.x response.
    #[error("invalid HTTP response: {0}")]
    Invalid(&'static str),
}

/// The parts of a response the connection driver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// The server asked to close the connection (or spoke HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Decoder state for `Transfer-Encoding: chunked`, fed arbitrary slices of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chunked {
    /// Reading the hex size (and any extension) up to CRLF.
    #[default]
    Size,
    /// Skipping an extension after the size, up to LF.
    SizeLine,
    /// Inside a chunk's data with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: reading trailer lines until an empty one.
    Trailer { line_len: usize },
    /// Complete.
    Done,
}

/// Progress of [`ChunkedDecoder::feed`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ChunkedDecoder {
    state: Chunked,
    size: u64,
    digits: u8,
}

impl ChunkedDecoder {
    /// Feeds bytes; returns how many were consumed. The body is complete when
    /// [`ChunkedDecoder::done`] is true (consumed bytes past that point are not taken).
    /// `data` receives each run of body bytes, for callers that want the body.
    pub fn feed(&mut self, buf: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, ReadError> {
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                Chunked::Size => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (b as char).to_digit(16).unwrap() as u64;
                            self.digits += 1;
                            if self.digits > 15 {
                                return Err(ReadError::Invalid("chunk size too large"));
                            }
                            self.size = self.size * 16 + d;
                        }
                        b'\r' | b';' | b' ' | b'\t' => self.state = Chunked::SizeLine,
                        b'\n' => self.end_size_line()?,
                        _ => return Err(ReadError::Invalid("bad chunk size")),
                    }
                }
                Chunked::SizeLine => {
                    if buf[i] == b'\n' {
                        self.end_size_line()?;
                    }
                    i += 1;
                }
                Chunked::Data(left) => {
                    let n = (left as usize).min(buf.len() - i);
                    data(&buf[i..i + n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                }
                Chunked::DataEnd => {
                    match buf[i] {
                        b'\r' => {}
                        b'\n' => self.state = Chunked::Size,
                        _ => return Err(ReadError::Invalid("missing CRLF after chunk")),
                    }
                    i += 1;
                }
                Chunked::Trailer { line_len } => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' if line_len == 0 => {
                            self.state = Chunked::Done;
                            return Ok(i);
                        }
                        b'\n' => self.state = Chunked::Trailer { line_len: 0 },
                        b'\r' => {}
                        _ => {
                            self.state = Chunked::Trailer {
                                line_len: line_len + 1,
                            }
                        }
                    }
                }
                Chunked::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn end_size_line(&mut self) -> Result<(), ReadError> {
        if self.digits == 0 {
            return Err(ReadError::Invalid("empty chunk size"));
        }
        self.state = if self.size == 0 {
            Chunked::Trailer { line_len: 0 }
        } else {
            Chunked::Data(self.size)
        };
        self.size = 0;
        self.digits = 0;
        Ok(())
    }

    /// Whether the terminating chunk and trailers have been read.
    pub fn done(&self) -> bool {
        self.state == Chunked::Done
    }
}

/// Headers parsed per response; responses with more are refused.
const MAX_HEADERS: usize = 100;
/// Initial read buffer size per connection: small, so that `-c 10000` stays small; a buffer
/// that a read fills completely doubles, up to `MAX_READ_BUF`, so large bodies are still read in
/// few system calls.
const INITIAL_BUF: usize = 1024;
/// Largest buffer growth for reading bodies (head growth beyond this is allowed up to MAX_HEAD).
const MAX_READ_BUF: usize = 64 * 1024;
/// Refuse response heads larger than this.
const MAX_HEAD: usize = 1024 * 1024;

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
    }

    /// When the kernel received the bytes of the last read (CLOCK_REALTIME ns), if it said:
    /// for a response just read, the instant it was complete. Taken once.
    pub fn take_rx(&mut self) -> Option<u64> {
        self.rx.take()
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
        // Head.
        let (head, framing) = loop {
            if self.start < self.end {
                // The same head as this thread's last one means the same: no parse.
                if !sink.wants() {
                    if let Some((len, head, framing)) =
                        memo_lookup(&self.buf[self.start..self.end], head_request)
                    {
                        self.start += len;
                        break (head, framing);
                    }
                }
                // Left uninitialised: httparse writes the headers it finds (zeroing 3 KB of
                // header slots for every response would cost more than parsing it).
                let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut []);
                let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                    &mut resp,
                    &self.buf[self.start..self.end],
                    &mut headers,
                );
                match parsed {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or(0);
                        // An interim response (100 Continue, 103 Early Hints) comes before the
                        // request's final one: skip it. 101 ends HTTP/1.1 on the connection,
                        // so it is final.
                        if (100..200).contains(&status) && status != 101 {
                            self.start += len;
                            continue;
                        }
                        let (head, framing) = interpret(&resp, head_request)?;
                        if sink.wants() {
                            sink.head(status, resp.headers);
                        } else {
                            memo_store(
                                &self.buf[self.start..self.start + len],
                                head_request,
                                head,
                                framing,
                            );
                        }
                        self.start += len;
                        break (head, framing);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.end - self.start > MAX_HEAD {
                            return Err(ReadError::Invalid("response head too large"));
                        }
                    }
                    Err(_) => return Err(ReadError::Invalid("malformed response head")),
                }
            }
            let n = self.fill(io).await?;
            if n == 0 {
                return Err(ReadError::Closed);
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
                    return Err(ReadError::Closed);
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
                        return Err(ReadError::Closed);
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

/// Longest response head the memo keeps (nginx's are about 250 bytes).
const MEMO_MAX: usize = 512;

/// The last response head this thread parsed, byte for byte, and what it meant. A server
/// answering the same request sends the same head again and again, except when its `Date`
/// changes once a second; and httparse's verdict on a complete head depends on nothing but the
/// head's bytes. So a buffer that starts with exactly these bytes holds a complete head of the
/// same meaning, found by one comparison instead of a parse of every header (the parse and
/// [`interpret`] were about a third of the generator's user-space instructions per request,
/// callgrind against nginx). Per thread, not per connection: the connections of a thread share
/// the request, and `-c 10000` stays small. A script that wants the headers bypasses it.
struct HeadMemo {
    bytes: [u8; MEMO_MAX],
    /// Length of the memorised head; 0: none yet.
    len: usize,
    head_request: bool,
    head: ResponseHead,
    framing: Framing,
}

thread_local! {
    static MEMO: std::cell::RefCell<HeadMemo> = const {
        std::cell::RefCell::new(HeadMemo {
            bytes: [0; MEMO_MAX],
            len: 0,
            head_request: false,
            head: ResponseHead { status: 0, close: false },
            framing: Framing::None,
        })
    };
}

/// The memorised head's length and meaning, if `buf` starts with it (for a request of the same
/// kind: a response to HEAD has no body whatever its headers say).
#[inline]
fn memo_lookup(buf: &[u8], head_request: bool) -> Option<(usize, ResponseHead, Framing)> {
    MEMO.with_borrow(|m| {
        let len = m.len;
        (len > 0
            && m.head_request == head_request
            && buf.len() >= len
            && buf[..len] == m.bytes[..len])
            .then_some((len, m.head, m.framing))
    })
}

/// Memorises a head just parsed as complete, and its meaning.
fn memo_store(bytes: &[u8], head_request: bool, head: ResponseHead, framing: Framing) {
    if bytes.len() > MEMO_MAX {
        return;
    }
    MEMO.with_borrow_mut(|m| {
        m.bytes[..bytes.len()].copy_from_slice(bytes);
        m.len = bytes.len();
        m.head_request = head_request;
        m.head = head;
        m.framing = framing;
    });
}

fn interpret(
    resp: &httparse::Response<'_, '_>,
    head_request: bool,
) -> Result<(ResponseHead, Framing), ReadError> {
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = http10;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(ReadError::Invalid("bad Content-Length"))?;
            length = Some(v);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for tok in h.value.split(|&b| b == b',') {
                let tok = tok.trim_ascii();
                if tok.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok((ResponseHead { status, close }, framing))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn chunked_decoder_collects_data() {
        let mut d = ChunkedDecoder::default();
        let mut got = Vec::new();
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        let used = d.feed(input, |b| got.extend_from_slice(b)).unwrap();
        assert!(d.done());
        assert_eq!(&input[used..], b"NEXT");
        assert_eq!(got, b"abcde");
        assert!(ChunkedDecoder::default().feed(b"zz\r\n", |_| {}).is_err());
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

    #[test]
    fn garbage_is_invalid() {
        let r = read_all(b"SSH-2.0-OpenSSH\r\n\r\n", false, 1);
        assert!(r[0].as_ref().unwrap_err().contains("invalid"));
    }
}
