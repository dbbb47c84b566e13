//! Response heads: where one ends and what it means for the connection driver (status, how
//! the body is delimited, whether the connection closes after it). httparse parses the head in
//! place into header slots on the stack; the rare head with more fields than those slots is
//! parsed again into the thread's larger, reused slots, so any number of fields is read within
//! [`MAX_HEAD`] bytes without an allocation per response. A head that repeats the thread's
//! previous one byte for byte is recognised without a parse ([`HeadMemo`]).

use std::cell::Cell;
use std::mem::MaybeUninit;

use super::error::{ReadReason, MAX_HEAD};
use super::http1::ResponseSink;

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
pub(super) enum Framing {
    /// No body (a response to HEAD, 204, 304).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// What the start of the buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parsed {
    /// A complete final head of `len` bytes and its meaning.
    Final {
        len: usize,
        head: ResponseHead,
        framing: Framing,
    },
    /// A complete interim (1xx but 101) head of this many bytes: the final one follows it.
    Interim(usize),
    /// The head is not complete yet.
    Partial,
}

/// Header slots on the stack: enough for nearly every server (nginx sends under 10 fields).
const STACK_SLOTS: usize = 100;
/// Spare slots a thread keeps after a head with many fields (128 KB of slots); past this the
/// slots are freed after use, so only a server sending thousands of fields costs allocations.
const KEEP_SLOTS: usize = 4096;

thread_local! {
    /// The thread's reused header slots for heads with more than [`STACK_SLOTS`] fields
    /// (empty, with their capacity, between uses).
    static SLOTS: Cell<Vec<httparse::Header<'static>>> = const { Cell::new(Vec::new()) };
}

/// Parses the head at the start of `buf` (a response to HEAD when `head_request`), handing
/// the status and fields to `sink` if it wants them. Only the first [`MAX_HEAD`] bytes are
/// looked at: a head not complete within them is [`ReadReason::HeadTooLarge`].
#[inline]
pub(super) fn parse<S: ResponseSink>(
    buf: &[u8],
    head_request: bool,
    sink: &mut S,
) -> Result<Parsed, ReadReason> {
    // The same head as this thread's last one means the same: no parse.
    if !sink.wants() {
        if let Some((len, head, framing)) = memo_lookup(buf, head_request) {
            return Ok(Parsed::Final { len, head, framing });
        }
    }
    let view = &buf[..buf.len().min(MAX_HEAD)];
    // Left uninitialised: httparse writes the slots it fills (zeroing 3 KB of slots for every
    // response would cost more than parsing it).
    let mut slots = [const { MaybeUninit::uninit() }; STACK_SLOTS];
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, view, &mut slots)
    {
        Ok(status) => complete(&resp, status, buf, head_request, sink),
        Err(httparse::Error::TooManyHeaders) => parse_many(view, buf, head_request, sink),
        Err(e) => Err(classify(e, buf)),
    }
}

/// [`parse`] for a head with more fields than the stack holds: into the thread's larger
/// slots, doubled until they hold every field (a field takes at least 3 bytes, so the count
/// is bounded by the head's size).
#[cold]
#[inline(never)]
fn parse_many<S: ResponseSink>(
    view: &[u8],
    buf: &[u8],
    head_request: bool,
    sink: &mut S,
) -> Result<Parsed, ReadReason> {
    let mut slots = relabel(SLOTS.take());
    let out = loop {
        let n = (slots.len() * 2).max(STACK_SLOTS * 4);
        slots.resize(n, httparse::EMPTY_HEADER);
        let mut resp = httparse::Response::new(&mut slots);
        match httparse::ParserConfig::default().parse_response(&mut resp, view) {
            Ok(status) => break complete(&resp, status, buf, head_request, sink),
            Err(httparse::Error::TooManyHeaders) if n < view.len() => {}
            Err(e) => break Err(classify(e, buf)),
        }
    };
    if slots.capacity() <= KEEP_SLOTS {
        slots.clear();
        SLOTS.set(relabel(slots));
    }
    out
}

/// An empty `Vec` of slots with `v`'s allocation, for fields borrowing from another buffer.
/// (`Header<'a>` and `Header<'b>` have one layout, so collecting the empty iterator reuses the
/// allocation in place: `reused_slots_keep_their_allocation` checks that.)
fn relabel<'a, 'b>(mut v: Vec<httparse::Header<'a>>) -> Vec<httparse::Header<'b>> {
    v.clear();
    v.into_iter().map(|_| httparse::EMPTY_HEADER).collect()
}

/// The meaning of a parse that did not fail: the head is complete, or more bytes are needed
/// (unless [`MAX_HEAD`] bytes are already there).
#[inline]
fn complete<S: ResponseSink>(
    resp: &httparse::Response<'_, '_>,
    status: httparse::Status<usize>,
    buf: &[u8],
    head_request: bool,
    sink: &mut S,
) -> Result<Parsed, ReadReason> {
    let len = match status {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() >= MAX_HEAD => return Err(ReadReason::HeadTooLarge),
        httparse::Status::Partial => return Ok(Parsed::Partial),
    };
    let code = resp.code.unwrap_or(0);
    // An interim response (100 Continue, 103 Early Hints) comes before the request's final
    // one: skip it. 101 ends HTTP/1.1 on the connection, so it is final.
    if (100..200).contains(&code) && code != 101 {
        return Ok(Parsed::Interim(len));
    }
    let (head, framing) = interpret(resp, head_request)?;
    if sink.wants() {
        sink.head(code, resp.headers);
    } else {
        memo_store(&buf[..len], head_request, head, framing);
    }
    Ok(Parsed::Final { len, head, framing })
}

/// The reason for httparse's verdict on `buf`. A TLS record (an alert or a handshake message:
/// content type 21 or 22, then major version 3) means the server speaks TLS.
#[cold]
fn classify(e: httparse::Error, buf: &[u8]) -> ReadReason {
    if matches!(buf.first(), Some(0x15 | 0x16)) && buf.get(1).is_none_or(|&b| b == 0x03) {
        return ReadReason::TlsOnPlain;
    }
    match e {
        httparse::Error::Version | httparse::Error::Status => ReadReason::StatusLine,
        _ => ReadReason::HeaderField,
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

/// What a complete final head means: status, framing, and whether the connection closes.
/// Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304 whatever the fields say;
/// then chunked; then `Content-Length`, whose values must agree (several fields, or a list,
/// of one value are accepted as RFC 9110 §8.6 allows; differing ones make the response
/// invalid); else the body runs until the server closes.
fn interpret(
    resp: &httparse::Response<'_, '_>,
    head_request: bool,
) -> Result<(ResponseHead, Framing), ReadReason> {
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut length: Result<Option<u64>, ReadReason> = Ok(None);
    let mut chunked = false;
    let mut close = http10;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if let Ok(seen) = length {
                length = content_length(h.value, seen);
            }
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
    } else if let Some(n) = length? {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok((ResponseHead { status, close }, framing))
}

/// The length a `Content-Length` field's `value` gives, after the fields before it gave
/// `seen`: a comma-separated list of decimal numbers (empty elements ignored), all equal to
/// each other and to `seen`.
fn content_length(value: &[u8], mut seen: Option<u64>) -> Result<Option<u64>, ReadReason> {
    let mut any = false;
    for v in value.split(|&b| b == b',') {
        let v = v.trim_ascii();
        if v.is_empty() {
            continue;
        }
        if !v.iter().all(u8::is_ascii_digit) {
            return Err(ReadReason::BadLength);
        }
        let n = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(ReadReason::BadLength)?;
        match seen {
            Some(m) if m != n => return Err(ReadReason::ConflictingLength),
            _ => seen = Some(n),
        }
        any = true;
    }
    if any {
        Ok(seen)
    } else {
        Err(ReadReason::BadLength)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_keep_their_allocation() {
        let mut v: Vec<httparse::Header<'static>> = Vec::with_capacity(1000);
        v.push(httparse::EMPTY_HEADER);
        let ptr = v.as_ptr() as usize;
        let w: Vec<httparse::Header<'_>> = relabel(v);
        assert!(w.is_empty() && w.capacity() >= 1000);
        assert_eq!(w.as_ptr() as usize, ptr);
    }

    #[test]
    fn content_length_values_must_agree() {
        assert_eq!(content_length(b"5", None), Ok(Some(5)));
        assert_eq!(content_length(b" 5 , 5", None), Ok(Some(5)));
        assert_eq!(content_length(b"5", Some(5)), Ok(Some(5)));
        assert_eq!(
            content_length(b"5, 6", None),
            Err(ReadReason::ConflictingLength)
        );
        assert_eq!(
            content_length(b"6", Some(5)),
            Err(ReadReason::ConflictingLength)
        );
        for bad in [
            &b"+5"[..],
            b"-1",
            b"5x",
            b"",
            b" , ",
            b"99999999999999999999",
        ] {
            assert_eq!(
                content_length(bad, None),
                Err(ReadReason::BadLength),
                "{bad:?}"
            );
        }
    }
}
