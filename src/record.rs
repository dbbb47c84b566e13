//! Per-thread measurements and their merge.
//!
//! Each worker thread owns one [`Stats`]; every connection of that thread records into it (the
//! thread is single-threaded, so there is no lock and no atomic). After the threads join, the
//! engine adds them together once with `+=`. All latencies are HdrHistograms in microseconds
//! (1 µs to 24 h, 3 significant digits — the same range wrk2 uses), so recording is lossless
//! and memory does not grow with the number of requests.

use std::ops::AddAssign;

use hdrhistogram::Histogram;

use crate::read_errors::ReadReasons;
use crate::timeline::Timeline;
use crate::timing::Timing;

pub use crate::hdr::{new_histogram, MAX_LATENCY_US, SIGFIG};

/// Socket and HTTP errors, by kind (wrk's categories).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Errors {
    /// Connections that could not be opened (TCP or TLS handshake), timed-out attempts
    /// included.
    pub connect: u64,
    /// Of `connect`: attempts that had not opened within `--timeout`, or were still pending
    /// when the run ended (a listener whose accept queue is full drops the SYNs silently).
    pub connect_timeout: u64,
    /// Reads that failed, or connections closed before a response was complete.
    pub read: u64,
    /// Writes that failed.
    pub write: u64,
    /// Requests sent and not answered within `--timeout` (or by the end of the drain period).
    /// Planned requests that were never sent are not timeouts: see [`Stats::dropped`].
    pub timeout: u64,
    /// Responses whose status was outside 2xx/3xx.
    pub status: u64,
    /// The `read` errors by reason (they add up to `read`, except in results read from files
    /// written before reasons were kept).
    pub read_reasons: ReadReasons,
    /// HTTP/2's own errors, by kind.
    pub h2: H2Errors,
}

/// HTTP/2 errors by kind. A request lost to one also counts as a `read` error (reason
/// `reset` for a stream reset, `closed`/`io` for a connection error); a GOAWAY counts here only,
/// since the requests it left unprocessed are sent again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct H2Errors {
    /// Streams the server reset (RST_STREAM), any error code.
    pub rst_stream: u64,
    /// Of `rst_stream`: REFUSED_STREAM (the server did not process the request; it is sent
    /// again once).
    pub refused_stream: u64,
    /// Connections the server ended with GOAWAY (gracefully or with an error code).
    pub goaway: u64,
    /// Connections that failed otherwise (a protocol error, a reset or closed socket).
    pub connection: u64,
    /// Requests whose body did not fit the server's flow-control windows, so that its rest
    /// waited for a WINDOW_UPDATE (a flow-control stall; the request goes on when it comes).
    pub flow_control: u64,
}

impl AddAssign<&H2Errors> for H2Errors {
    fn add_assign(&mut self, o: &H2Errors) {
        self.rst_stream += o.rst_stream;
        self.refused_stream += o.refused_stream;
        self.goaway += o.goaway;
        self.connection += o.connection;
        self.flow_control += o.flow_control;
    }
}

impl Errors {
    /// Socket-level errors (everything but `status`).
    pub fn socket(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

impl AddAssign<&Errors> for Errors {
    fn add_assign(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.connect_timeout += o.connect_timeout;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.status += o.status;
        self.read_reasons += &o.read_reasons;
        self.h2 += &o.h2;
    }
}

/// Why a planned request has no response when it is recorded as a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Sent, and past `--timeout` or still out at the end of the drain period: a timeout
    /// error.
    TimedOut,
    /// Planned before the deadline but never sent: its connection was still busy (waiting on
    /// the server, or opening) when the drain period ended. k6 calls these
    /// `dropped_iterations`. Not an error of any kind: counted in [`Stats::dropped`].
    Dropped,
    /// Out, or due and not yet sent, when the run was stopped early (Ctrl-C, SIGTERM, a
    /// script error): not an error of the server's.
    Stopped,
}

/// Number of distinct status codes tracked individually (0..=999).
pub const STATUS_CODES: usize = 1000;

/// Everything one thread (or, after merging, the whole run) measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Response complete − intended send time, µs (coordinated-omission corrected). In closed
    /// loop the intended time is the actual send time, so this equals `uncorrected`.
    pub corrected: Histogram<u64>,
    /// Response complete − actual send time, µs.
    pub uncorrected: Histogram<u64>,
    /// Actual send − the later of (intended send, the connection becoming free), µs: how far
    /// the generator itself fell behind its plan. Time a connection spent waiting for the
    /// previous response is the server's, not the generator's, and is not counted here.
    pub send_lag: Histogram<u64>,
    /// Requests completed per second by one thread, one sample per full second per thread
    /// (the "Req/Sec" row).
    pub req_per_sec: Histogram<u64>,
    /// Completed responses.
    pub requests: u64,
    /// When the latest request that got a response was sent, ns since the run's start: the
    /// end of the sending window, when it lies past the planned duration (see
    /// `Summary::rate_window`).
    pub last_sent_ns: u64,
    /// Bytes read from sockets (headers and bodies).
    pub bytes: u64,
    /// Errors by kind.
    pub errors: Errors,
    /// Responses per status code; codes >= 1000 are counted at index 0.
    pub status: Box<[u64; STATUS_CODES]>,
    /// Responses completed in each second since `t0` (8 bytes a second of run time), for the
    /// "Req/Sec" samples that [`finish`](Self::finish) takes. Not derived from `timeline`:
    /// that one counts per *wall-clock* second, and a run starts mid-second, so its seconds
    /// straddle two of the run's and a run of d full seconds has only d − 1 whole wall-clock
    /// seconds in it: the samples would differ in number and value from those per second of
    /// the run, which is what wrk's per-thread Req/Sec row is.
    pub per_second: Vec<u64>,
    /// Per wall-clock second: responses, errors and the corrected-latency histogram.
    pub timeline: Timeline,
    /// The script held the rate down on purpose (`delay()` think time or `thread:stop()`), so
    /// a shortfall against `-R` is not the server's or the generator's doing.
    pub script_limited: bool,
    /// Planned requests in flight or due but unsent when the run was stopped early; their
    /// waits until then are in `corrected` as lower bounds (see [`Unfinished::Stopped`]).
    pub stopped_unfinished: u64,
    /// Planned requests never sent because every connection was busy until the drain period
    /// ended; their waits until then are in `corrected` as lower bounds
    /// (see [`Unfinished::Dropped`]).
    pub dropped: u64,
    /// Requests re-sent once on a new connection because the server had closed the reused
    /// keep-alive connection before any byte of the response (an idle timeout), and idle
    /// connections found closed before a request was written to them. Not errors.
    pub reconnects: u64,
    /// CPU time the worker threads used (user + system), ns: with the elapsed time and the
    /// thread count, how busy the generator was.
    pub cpu_ns: u64,
    /// HTTP/2: the lowest SETTINGS_MAX_CONCURRENT_STREAMS a server connection announced, when
    /// it was below `--streams` (the streams were clamped to it). `None` otherwise.
    pub h2_streams_clamp: Option<u64>,
    /// The timing breakdown: connect and handshake per connection, sending, waiting and
    /// receiving per response ([`Stats::record_phases`], [`Stats::record_connect`]).
    pub timing: Timing,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty statistics.
    pub fn new() -> Stats {
        Stats {
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            send_lag: new_histogram(),
            req_per_sec: Histogram::new_with_bounds(1, 1_000_000_000, SIGFIG).expect("bounds"),
            requests: 0,
            last_sent_ns: 0,
            bytes: 0,
            errors: Errors::default(),
            status: Box::new([0; STATUS_CODES]),
            per_second: Vec::new(),
            timeline: Timeline::default(),
            script_limited: false,
            stopped_unfinished: 0,
            dropped: 0,
            reconnects: 0,
            cpu_ns: 0,
            h2_streams_clamp: None,
            timing: Timing::default(),
        }
    }

    /// Empty statistics for a run whose start instant `t0` is at Unix time `t0_unix_ns`, so
    /// that the per-second [`Timeline`] follows the wall clock.
    pub fn anchored(t0_unix_ns: u64) -> Stats {
        Stats {
            timeline: Timeline::new(t0_unix_ns),
            ..Stats::new()
        }
    }

    /// Records one complete response. Times are nanoseconds since the run's start `t0`:
    /// `intended` is when the plan wanted the request sent, `free` when the connection became
    /// able to send it (previous response read, or connection opened), `sent` when it was
    /// written, `done` when the last byte of the response was read.
    #[inline]
    pub fn record(&mut self, intended: u64, free: u64, sent: u64, done: u64, status: u16) {
        // A request the pacer released a little before its slot is timed from its actual
        // send; one sent late, from its slot (coordinated-omission correction).
        let latency = done.saturating_sub(intended.min(sent)) / 1000;
        self.corrected.saturating_record(latency);
        self.uncorrected
            .saturating_record(done.saturating_sub(sent) / 1000);
        self.send_lag
            .saturating_record(sent.saturating_sub(intended.max(free)) / 1000);
        self.requests += 1;
        self.last_sent_ns = self.last_sent_ns.max(sent);
        let code = status as usize;
        self.status[if code < STATUS_CODES { code } else { 0 }] += 1;
        let bad = !(200..400).contains(&status);
        if bad {
            self.errors.status += 1;
        }
        self.timeline.record(done, latency, bad);
        let sec = (done / 1_000_000_000) as usize;
        if sec >= self.per_second.len() {
            self.per_second.resize(sec + 1, 0);
        }
        self.per_second[sec] += 1;
    }

    /// Records the phases of one complete response, ns (the exchange of either protocol
    /// calls it beside [`record`](Self::record)): `sending`, from the request's first byte
    /// handed to the socket to its last; `waiting`, from then to the response's first byte;
    /// `receiving`, from the first byte to the last. They add up to its uncorrected latency.
    #[inline]
    pub fn record_phases(&mut self, sending_ns: u64, waiting_ns: u64, receiving_ns: u64) {
        self.timing
            .record_phases(sending_ns / 1000, waiting_ns / 1000, receiving_ns / 1000);
    }

    /// Records one connection opened: its TCP connect and, over TLS, its handshake, ns.
    pub fn record_connect(&mut self, connect_ns: u64, tls_ns: Option<u64>) {
        self.timing.connecting.saturating_record(connect_ns / 1000);
        if let Some(tls) = tls_ns {
            self.timing.tls_handshaking.saturating_record(tls / 1000);
        }
    }

    /// Records the run's name lookup, ns.
    pub fn record_dns(&mut self, ns: u64) {
        self.timing.dns.saturating_record(ns / 1000);
    }

    /// Records `n` planned requests unfinished at `cut` (ns since `t0`: the end of the drain
    /// period, their timeout, or the instant the run was stopped) whose corrected latencies
    /// are at least `latency_us` (µs; the caller groups requests whose lower bounds share a
    /// histogram bucket). That lower bound goes into the corrected histogram (leaving it out
    /// would hide the worst requests of an overloaded run); `why` says whether they count as
    /// timeouts. They are not completed requests: `requests` and the uncorrected histogram do
    /// not change.
    pub fn unfinished_n(&mut self, latency_us: u64, cut: u64, n: u64, why: Unfinished) {
        self.corrected.saturating_record_n(latency_us, n);
        let errors = match why {
            Unfinished::TimedOut => n,
            Unfinished::Dropped => {
                self.dropped += n;
                0
            }
            Unfinished::Stopped => {
                self.stopped_unfinished += n;
                0
            }
        };
        self.errors.timeout += errors;
        self.timeline.lower_bounds(cut, latency_us, n, errors);
    }

    /// Counts one error at `at_ns` (ns since `t0`); `kind` picks the counter.
    pub fn error(&mut self, at_ns: u64, kind: fn(&mut Errors) -> &mut u64) {
        *kind(&mut self.errors) += 1;
        self.timeline.error(at_ns);
    }

    /// Closes the thread's recording after a run of `elapsed_ns`: every *complete* second of
    /// this thread becomes one "Req/Sec" sample. A run shorter than one second contributes its
    /// average rate instead, so short runs still report a rate (wrk2 prints `-nan` there).
    pub fn finish(&mut self, elapsed_ns: u64) {
        self.timeline.close();
        self.timing.settle();
        let full = (elapsed_ns / 1_000_000_000) as usize;
        if full == 0 {
            if elapsed_ns > 0 {
                let rate = self.requests as f64 * 1e9 / elapsed_ns as f64;
                self.req_per_sec.saturating_record(rate.round() as u64);
            }
            return;
        }
        for i in 0..full {
            let n = self.per_second.get(i).copied().unwrap_or(0);
            self.req_per_sec.saturating_record(n);
        }
    }

    /// Count of responses with a status in `[lo, hi)`.
    pub fn status_range(&self, lo: usize, hi: usize) -> u64 {
        self.status[lo.min(STATUS_CODES)..hi.min(STATUS_CODES)]
            .iter()
            .sum()
    }
}

impl AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, o: &Stats) {
        self.script_limited |= o.script_limited;
        self.stopped_unfinished += o.stopped_unfinished;
        self.dropped += o.dropped;
        self.reconnects += o.reconnects;
        self.cpu_ns += o.cpu_ns;
        self.h2_streams_clamp = match (self.h2_streams_clamp, o.h2_streams_clamp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The histograms all share one range, so `add` cannot fail.
        self.corrected
            .add(&o.corrected)
            .expect("same histogram range");
        self.uncorrected
            .add(&o.uncorrected)
            .expect("same histogram range");
        self.send_lag
            .add(&o.send_lag)
            .expect("same histogram range");
        self.req_per_sec
            .add(&o.req_per_sec)
            .expect("same histogram range");
        self.requests += o.requests;
        self.last_sent_ns = self.last_sent_ns.max(o.last_sent_ns);
        self.bytes += o.bytes;
        self.errors += &o.errors;
        for (a, b) in self.status.iter_mut().zip(o.status.iter()) {
            *a += b;
        }
        if self.per_second.len() < o.per_second.len() {
            self.per_second.resize(o.per_second.len(), 0);
        }
        for (a, b) in self.per_second.iter_mut().zip(o.per_second.iter()) {
            *a += b;
        }
        self.timeline += &o.timeline;
        self.timing += &o.timing;
    }
}

/// Share of the recorded values that lie within `k` standard deviations of the mean, in percent
/// (wrk's "+/- Stdev" column).
pub fn within_stdev(h: &Histogram<u64>, k: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let (mean, sd) = (h.mean(), h.stdev());
    let (lo, hi) = (mean - k * sd, mean + k * sd);
    let inside: u64 = h
        .iter_recorded()
        .filter(|v| {
            let x = v.value_iterated_to() as f64;
            x >= lo && x <= hi
        })
        .map(|v| v.count_at_value())
        .sum();
    inside as f64 * 100.0 / h.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_sends_are_timed_from_the_send_late_ones_from_the_slot() {
        let mut s = Stats::new();
        // Released 20 µs before its slot at 1 ms, answered 100 µs after the send.
        s.record(1_000_000, 0, 980_000, 1_080_000, 200);
        // Sent 30 µs after its slot at 2 ms (connection free since 1.5 ms), answered 100 µs later.
        s.record(2_000_000, 1_500_000, 2_030_000, 2_130_000, 200);
        assert_eq!(s.corrected.min(), 100);
        assert_eq!(s.corrected.max(), 130);
        assert_eq!((s.send_lag.min(), s.send_lag.max()), (0, 30));
    }

    #[test]
    fn record_and_merge() {
        let mut a = Stats::new();
        a.record(0, 0, 1_000, 101_000, 200);
        a.record(1_000_000_000, 0, 1_000_000_000, 1_000_500_000, 500);
        let mut b = Stats::new();
        b.record(0, 0, 0, 2_000_000, 204);
        b.error(2_500_000_000, |e| &mut e.read);
        let mut m = Stats::new();
        m += &a;
        m += &b;
        assert_eq!(m.requests, 3);
        assert_eq!(m.errors.status, 1);
        assert_eq!(m.errors.read, 1);
        assert_eq!(m.status[200] + m.status[204] + m.status[500], 3);
        assert_eq!(m.status_range(500, 600), 1);
        assert_eq!(m.corrected.len(), 3);
        assert_eq!(m.corrected.max(), m.corrected.highest_equivalent(2000));
        assert_eq!(m.uncorrected.value_at_quantile(0.0), 100);
        assert_eq!(m.send_lag.value_at_quantile(1.0), 1);
        assert_eq!(m.per_second, vec![2, 1]);
        // Requests and errors per second, from the (unanchored: seconds since t0) time line.
        m.timeline.close();
        let per_second: Vec<(u64, u64, u64)> = m
            .timeline
            .intervals()
            .iter()
            .map(|i| (i.second, i.requests, i.errors))
            .collect();
        assert_eq!(per_second, vec![(0, 2, 0), (1, 1, 1), (2, 0, 1)]);
    }

    #[test]
    fn req_per_sec_samples_full_seconds() {
        let mut s = Stats::new();
        for i in 0..2500u64 {
            let t = i * 1_000_000; // 1000 per second for 2.5 s
            s.record(t, t, t, t + 10, 200);
        }
        s.finish(2_500_000_000);
        assert_eq!(s.req_per_sec.len(), 2);
        assert_eq!(s.req_per_sec.value_at_quantile(0.5), 1000);

        let mut short = Stats::new();
        for i in 0..50u64 {
            short.record(i * 1_000_000, 0, i * 1_000_000, i * 1_000_000 + 5, 200);
        }
        short.finish(500_000_000);
        assert_eq!(short.req_per_sec.value_at_quantile(0.5), 100);
    }

    #[test]
    fn within_one_stdev() {
        let mut h = new_histogram();
        for v in [10, 10, 10, 10, 1000] {
            h.record(v).unwrap();
        }
        let w = within_stdev(&h, 1.0);
        assert!((w - 80.0).abs() < 1e-9, "{w}");
    }
}
