//! Criterion micro-benchmarks of the per-request pieces: recording into the per-thread
//! histograms, computing intended send times, reading and parsing a response (the product's
//! `ResponseReader` over an in-memory stream, with its head memo hitting and missing, and
//! httparse alone with zeroed or uninitialised header slots), and converting a kernel receive
//! timestamp to the monotonic clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use loadgen::conn::http1::{Discard, ResponseReader};
use loadgen::conn::rxtime::{self, TimedRead};
use loadgen::pacer::mono_ns;
use loadgen::record::Stats;
use loadgen::schedule::{Plan, RateProfile};
use tokio::io::{AsyncRead, ReadBuf};

/// nginx's reply to `GET /index.html` for a 600-byte file, as in scripts/bench.sh.
const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 02:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 600\r\nLast-Modified: Mon, 23 Nov 2026 01:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"1-258\"\r\nAccept-Ranges: bytes\r\n\r\n";

fn record(c: &mut Criterion) {
    let mut s = Stats::new();
    let mut t = 0u64;
    c.bench_function("record one response", |b| {
        b.iter(|| {
            t += 50_000;
            s.record(black_box(t), t, t + 1_000, t + 90_000, 200);
        })
    });
}

fn schedule(c: &mut Criterion) {
    let p = Plan::new(RateProfile::Constant(20_000.0), 7, 50);
    let mut k = 0u64;
    c.bench_function("intended send time", |b| {
        b.iter(|| {
            k += 1;
            black_box(p.intended_ns(black_box(k)))
        })
    });
}

fn parse_head(c: &mut Criterion) {
    c.bench_function("httparse: nginx head, 100 zeroed header slots", |b| {
        b.iter(|| {
            let mut h = [httparse::EMPTY_HEADER; 100];
            let mut r = httparse::Response::new(&mut h);
            black_box(r.parse(black_box(NGINX)).unwrap());
        })
    });
    c.bench_function(
        "httparse: nginx head, 100 uninitialised header slots",
        |b| {
            b.iter(|| {
                let mut h = [const { std::mem::MaybeUninit::uninit() }; 100];
                let mut r = httparse::Response::new(&mut []);
                let cfg = httparse::ParserConfig::default();
                black_box(
                    cfg.parse_response_with_uninit_headers(&mut r, black_box(NGINX), &mut h)
                        .unwrap(),
                );
            })
        },
    );
}

/// An in-memory connection that answers every read with one whole nginx response (head and
/// 600-byte body), as a socket holding one response would.
struct OneResponse {
    bytes: Vec<u8>,
}

impl AsyncRead for OneResponse {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        buf.put_slice(&self.bytes);
        Poll::Ready(Ok(()))
    }
}

impl TimedRead for OneResponse {}

fn read_response(c: &mut Criterion) {
    let mut bytes = NGINX.to_vec();
    bytes.extend_from_slice(&[b'x'; 600]);
    let mut io = OneResponse { bytes };
    let mut reader = ResponseReader::new();
    let mut cx = Context::from_waker(Waker::noop());
    c.bench_function("ResponseReader: read and parse one nginx response", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut sink = Discard;
            let fut = reader.read_response(&mut io, false, &mut n, &mut sink);
            let mut fut = std::pin::pin!(fut);
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(r) => black_box(r.unwrap()),
                Poll::Pending => unreachable!("the stream is always ready"),
            };
        })
    });
}

/// As [`read_response`], but the responses alternate between two `Date`s, so that no head
/// repeats the one before and every head is parsed (the thread's head memo never hits).
fn read_response_parsed(c: &mut Criterion) {
    let other_date = String::from_utf8_lossy(NGINX).replace("02:00:00 GMT", "02:00:01 GMT");
    let mut ios = [NGINX.to_vec(), other_date.into_bytes()].map(|mut bytes| {
        bytes.extend_from_slice(&[b'x'; 600]);
        OneResponse { bytes }
    });
    let mut reader = ResponseReader::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut i = 0;
    c.bench_function(
        "ResponseReader: read and parse one nginx response, head not as the last",
        |b| {
            b.iter(|| {
                i ^= 1;
                let mut n = 0u64;
                let mut sink = Discard;
                let fut = reader.read_response(&mut ios[i], false, &mut n, &mut sink);
                let mut fut = std::pin::pin!(fut);
                match fut.as_mut().poll(&mut cx) {
                    Poll::Ready(r) => black_box(r.unwrap()),
                    Poll::Pending => unreachable!("the stream is always ready"),
                };
            })
        },
    );
}

fn rx_stamp(c: &mut Criterion) {
    let stamp = rxtime::real_ns();
    c.bench_function(
        "receive stamp to monotonic, with the read's own clock read",
        |b| {
            b.iter(|| {
                let now = mono_ns();
                black_box(rxtime::to_monotonic(black_box(stamp), now))
            })
        },
    );
    c.bench_function("clock_gettime(CLOCK_MONOTONIC) alone", |b| {
        b.iter(|| black_box(mono_ns()))
    });
}

criterion_group!(
    benches,
    record,
    schedule,
    parse_head,
    read_response,
    read_response_parsed,
    rx_stamp
);
criterion_main!(benches);
