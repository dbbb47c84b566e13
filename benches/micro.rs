//! Criterion micro-benchmarks of the per-request pieces: recording into the per-thread
//! histograms, computing intended send times, parsing a response head.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use loadgen::record::Stats;
use loadgen::schedule::{Plan, RateProfile};

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
    let resp = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 02:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 600\r\nLast-Modified: Mon, 23 Nov 2026 01:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"1-258\"\r\nAccept-Ranges: bytes\r\n\r\n";
    c.bench_function("parse nginx response head", |b| {
        b.iter(|| {
            let mut h = [httparse::EMPTY_HEADER; 100];
            let mut r = httparse::Response::new(&mut h);
            black_box(r.parse(black_box(resp)).unwrap());
        })
    });
}

criterion_group!(benches, record, schedule, parse_head);
criterion_main!(benches);
