//! The worker side of the per-second stream: one task per worker thread that wakes just after
//! every wall-clock second boundary, closes the thread's second on the clock
//! ([`Timeline::roll`](crate::timeline::Timeline::roll)) and hands what closed to the main
//! side over a channel. It runs on the worker's own runtime, so it reads the thread's
//! [`Stats`](crate::record::Stats) without a lock; the connections' hot path is unchanged (no
//! lock, atomic or channel per request): the whole cost is one timer wake-up, one copy of the
//! closed second's encoded histogram and one send-lag histogram difference per second.

use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Msg, Tick};
use crate::conn::ThreadCtx;
use crate::hdr;
use crate::timeline::NS_PER_SEC;

/// How long after a second's boundary the ticker closes it: responses that arrived just
/// before the boundary (their kernel timestamps say so) but that the thread reads a little
/// later — up to one coarse-pacing tick — still land in their own second.
const AFTER_BOUNDARY: Duration = Duration::from_millis(2);

/// Runs until its task is dropped with the worker's runtime: every second, closes the
/// thread's second and sends a [`Tick`].
pub async fn run(ctx: Rc<ThreadCtx>, thread: usize, tx: Sender<Msg>) {
    let anchor = ctx.stats.borrow().timeline.anchor_ns();
    let mut sent = 0usize;
    // The thread's send-lag histogram at the previous tick: the difference is this second's.
    let mut lag_before: Histogram<u64> = hdr::new_histogram();
    loop {
        let now = ctx.now();
        let second = (anchor + now) / NS_PER_SEC;
        let boundary_ns = (second + 1) * NS_PER_SEC - anchor;
        let wake = ctx.t0 + boundary_ns + AFTER_BOUNDARY.as_nanos() as u64;
        sleep_until_mono(wake).await;
        let tick = {
            let mut st = ctx.stats.borrow_mut();
            st.timeline.roll(ctx.now());
            let closed = st.timeline.intervals();
            let intervals = closed.get(sent..).unwrap_or_default().to_vec();
            sent = closed.len();
            let mut lag = st.send_lag.clone();
            // `lag_before` was a copy of the same, only-growing histogram.
            let _ = lag.subtract(&lag_before);
            let mut send_lag = Vec::new();
            if !lag.is_empty() {
                hdr::encode_v2(&lag, &mut send_lag);
            }
            lag_before = st.send_lag.clone();
            Tick {
                thread,
                anchor_ns: anchor,
                through: second + 1,
                intervals,
                send_lag,
                dropped: st.dropped,
            }
        };
        if tx.send(Msg::Tick(tick)).is_err() {
            return;
        }
    }
}

/// Sleeps until CLOCK_MONOTONIC reaches `at` ns (tokio's timer: a millisecond is plenty here).
async fn sleep_until_mono(at: u64) {
    let now = crate::pacer::mono_ns();
    if at > now {
        tokio::time::sleep(Duration::from_nanos(at - now)).await;
    }
}
