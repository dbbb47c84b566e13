//! Property tests of the HTTP/1 response reader, the parser of the most untrusted bytes
//! loadgen reads: arbitrary bytes, split at arbitrary points, never panic and never make it
//! loop (every call ends, in a bounded number of reads); and generated valid responses
//! (random heads of few or hundreds of fields, `Content-Length`, chunked with extensions and
//! trailers, close-delimited, interim 1xx, answers to HEAD), pipelined and split at random
//! points, read as the same status, header fields and body as httparse and the generator
//! say. Case counts are modest so that the suite stays within seconds in a debug build.

use std::pin::Pin;
use std::task::{Context, Poll};

use loadgen::conn::http1::{Discard, ResponseReader, ResponseSink};
use loadgen::conn::rxtime::TimedRead;
use proptest::prelude::*;

/// A stream that returns `data` in pieces whose sizes cycle through `pieces`, then EOF; it
/// panics when read far more often than the data can explain (the reader would be looping).
struct Pieces {
    data: Vec<u8>,
    at: usize,
    pieces: Vec<usize>,
    reads: usize,
}

impl Pieces {
    fn new(data: Vec<u8>, pieces: Vec<usize>) -> Pieces {
        Pieces {
            data,
            at: 0,
            pieces,
            reads: 0,
        }
    }
}

impl tokio::io::AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = &mut *self;
        me.reads += 1;
        assert!(
            me.reads <= me.data.len() + 64,
            "{} reads of {} bytes: the reader loops",
            me.reads,
            me.data.len()
        );
        let piece = me.pieces[me.reads % me.pieces.len()].max(1);
        let n = piece.min(me.data.len() - me.at).min(buf.remaining());
        buf.put_slice(&me.data[me.at..me.at + n]);
        me.at += n;
        Poll::Ready(Ok(()))
    }
}

impl TimedRead for Pieces {}

/// One response as a script sees it: status, header fields, body.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    status: u16,
    fields: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// A sink that keeps what it is given.
#[derive(Default)]
struct Keep(Vec<Seen>);

impl ResponseSink for Keep {
    fn wants(&self) -> bool {
        true
    }
    fn head(&mut self, status: u16, headers: &[httparse::Header<'_>]) {
        let fields = headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        self.0.push(Seen {
            status,
            fields,
            body: Vec::new(),
        });
    }
    fn body(&mut self, bytes: &[u8]) {
        self.0.last_mut().unwrap().body.extend_from_slice(bytes);
    }
}

/// Reads one response per entry of `head_requests` from `data` split by `pieces`; returns the
/// statuses (or error reasons) and what `sink` was given.
fn read_all<S: ResponseSink>(
    data: Vec<u8>,
    pieces: Vec<usize>,
    head_requests: &[bool],
    sink: &mut S,
) -> Vec<Result<u16, String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut io = Pieces::new(data, pieces);
        let mut r = ResponseReader::new();
        let mut out = Vec::new();
        for &head in head_requests {
            let res = r.read_response(&mut io, head, &mut 0, sink).await;
            let failed = res.is_err();
            out.push(res.map(|h| h.status).map_err(|e| e.to_string()));
            if failed {
                break;
            }
        }
        out
    })
}

/// How a generated response's body is delimited.
#[derive(Debug, Clone)]
enum Body {
    /// `Content-Length`, sent once, twice or as a list of one value.
    Length(u8),
    /// Chunked, in chunks whose sizes cycle through the list, each with an extension or not,
    /// upper- or lower-case hex with leading zeros or not, then trailer fields.
    Chunked(Vec<usize>, Vec<u8>, Vec<(String, String)>),
    /// Until the server closes (only for the last response).
    Close,
    /// A 204: no body.
    NoContent,
}

/// A generated response.
#[derive(Debug, Clone)]
struct Gen {
    /// A 1xx interim response before it.
    interim: Option<u16>,
    status: u16,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Body,
    /// It answers a HEAD request: no body whatever the head says.
    head: bool,
}

fn token() -> impl Strategy<Value = String> {
    let chars: Vec<char> =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
            .chars()
            .collect();
    prop::collection::vec(prop::sample::select(chars), 1..10).prop_map(|v| v.into_iter().collect())
}

fn value() -> impl Strategy<Value = String> {
    let chars: Vec<char> = (0x21u8..0x7f).map(char::from).chain([' ', '\t']).collect();
    prop::collection::vec(prop::sample::select(chars), 0..30).prop_map(|v| {
        let s: String = v.into_iter().collect();
        s.trim().to_string()
    })
}

fn field() -> impl Strategy<Value = (String, String)> {
    (token(), value()).prop_map(|(n, v)| (format!("x-{n}"), v))
}

fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    prop_oneof![
        4 => prop::collection::vec(field(), 0..12),
        1 => prop::collection::vec(field(), 95..320),
    ]
}

fn response() -> impl Strategy<Value = Gen> {
    let framing = prop_oneof![
        (0u8..3).prop_map(Body::Length),
        (
            prop::collection::vec(1usize..40, 1..5),
            prop::collection::vec(0u8..4, 1..4),
            prop::collection::vec((token(), value()), 0..3)
        )
            .prop_map(|(c, e, t)| Body::Chunked(c, e, t)),
        Just(Body::Close),
        Just(Body::NoContent),
    ];
    (
        prop::option::weighted(0.2, prop::sample::select(vec![100u16, 102, 103])),
        200u16..600,
        fields(),
        prop::collection::vec(any::<u8>(), 0..200),
        framing,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(interim, status, fields, body, framing, head)| Gen {
            interim,
            status,
            fields,
            body,
            framing,
            head,
        })
}

/// The bytes of `g`, and the body a reader should see.
fn serialize(g: &Gen, last: bool) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    if let Some(i) = g.interim {
        out.extend_from_slice(format!("HTTP/1.1 {i} Interim\r\nLink: </a>\r\n\r\n").as_bytes());
    }
    let framing = match g.framing {
        Body::Close if !last => Body::Length(0),
        ref f => f.clone(),
    };
    let status = match framing {
        Body::NoContent => 204,
        // 304 has no body whatever the head says.
        _ if g.status == 204 || g.status == 304 => 200,
        _ => g.status,
    };
    let mut head = format!("HTTP/1.1 {status} Whatever\r\n");
    for (n, v) in &g.fields {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    let n = g.body.len();
    let mut body = Vec::new();
    match &framing {
        Body::Length(form) => {
            head.push_str(&match form {
                0 => format!("Content-Length: {n}\r\n"),
                1 => format!("Content-Length: {n}\r\ncontent-length: {n}\r\n"),
                _ => format!("Content-Length: {n}, {n}\r\n"),
            });
            body.extend_from_slice(&g.body);
        }
        Body::Chunked(sizes, exts, trailers) => {
            head.push_str("Transfer-Encoding: chunked\r\n");
            let mut rest = &g.body[..];
            let mut k = 0;
            let ext = |k: usize| match exts[k % exts.len()] {
                0 => "",
                1 => ";a=b",
                2 => "; name=\"quoted;value\"",
                _ => ";x",
            };
            while !rest.is_empty() {
                let take = sizes[k % sizes.len()].min(rest.len());
                let size = if k % 2 == 0 {
                    format!("{take:x}")
                } else {
                    format!("00{take:X}")
                };
                body.extend_from_slice(format!("{size}{}\r\n", ext(k)).as_bytes());
                body.extend_from_slice(&rest[..take]);
                body.extend_from_slice(b"\r\n");
                rest = &rest[take..];
                k += 1;
            }
            body.extend_from_slice(format!("0{}\r\n", ext(k)).as_bytes());
            for (n, v) in trailers {
                body.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
        }
        Body::Close => {
            head.push_str("Connection: close\r\n");
            body.extend_from_slice(&g.body);
        }
        Body::NoContent => {}
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    // A response to HEAD sends its head only.
    let seen = if g.head || matches!(framing, Body::NoContent) {
        Vec::new()
    } else {
        out.extend_from_slice(&body);
        match framing {
            Body::Chunked(..) | Body::Length(_) | Body::Close => g.body.clone(),
            Body::NoContent => Vec::new(),
        }
    };
    (out, seen)
}

/// The final head of `bytes` (after any interim ones), as httparse reads it.
fn httparse_head(bytes: &[u8]) -> (u16, Vec<(String, Vec<u8>)>) {
    let mut at = 0;
    loop {
        let mut slots = vec![httparse::EMPTY_HEADER; 1000];
        let mut r = httparse::Response::new(&mut slots);
        let httparse::Status::Complete(len) = r.parse(&bytes[at..]).unwrap() else {
            panic!("generated head incomplete")
        };
        let code = r.code.unwrap();
        if (100..200).contains(&code) {
            at += len;
            continue;
        }
        let fields = r
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        return (code, fields);
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes, in any pieces, as the answer to up to three requests: every read ends (a
    /// response or an error), within a bounded number of socket reads, and nothing panics.
    #[test]
    fn arbitrary_bytes_never_panic_or_loop(
        prefix in prop::sample::select(vec![
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n",
            b"HTTP/1.0 100 Continue\r\n\r\n",
            b"\x16\x03\x01",
        ]),
        tail in prop::collection::vec(any::<u8>(), 0..600),
        pieces in prop::collection::vec(1usize..300, 1..6),
        heads in prop::collection::vec(any::<bool>(), 1..4),
        wants in any::<bool>(),
    ) {
        crate::common::shared();
        let mut data = prefix.to_vec();
        data.extend_from_slice(&tail);
        let n = if wants {
            read_all(data, pieces, &heads, &mut Keep::default()).len()
        } else {
            read_all(data, pieces, &heads, &mut Discard).len()
        };
        prop_assert!(n >= 1);
    }

    /// Valid pipelined responses, split anywhere, read as httparse and the generator say:
    /// status and fields (a script's view), body bytes, and, without a script (through the
    /// head memo), the same statuses.
    #[test]
    fn valid_responses_read_as_generated(
        gens in prop::collection::vec(response(), 1..4),
        pieces in prop::collection::vec(1usize..400, 1..6),
        twice in any::<bool>(),
    ) {
        crate::common::shared();
        // Twice: the same responses again, so that repeated heads come from the memo.
        let gens: Vec<Gen> = if twice { gens.iter().chain(&gens).cloned().collect() } else { gens };
        let mut data = Vec::new();
        let mut want = Vec::new();
        let mut heads = Vec::new();
        for (i, g) in gens.iter().enumerate() {
            let last = i + 1 == gens.len();
            let (bytes, body) = serialize(g, last);
            let (status, fields) = httparse_head(&bytes);
            want.push(Seen { status, fields, body });
            heads.push(g.head);
            data.extend_from_slice(&bytes);
            if matches!(g.framing, Body::Close) && last {
                break;
            }
        }
        let mut keep = Keep::default();
        let got = read_all(data.clone(), pieces.clone(), &heads, &mut keep);
        let statuses: Vec<Result<u16, String>> = want.iter().map(|w| Ok(w.status)).collect();
        prop_assert_eq!(&got, &statuses);
        prop_assert_eq!(&keep.0, &want);
        let got = read_all(data, pieces, &heads, &mut Discard);
        prop_assert_eq!(&got, &statuses);
    }
}
