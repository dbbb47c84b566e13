//! One connection's driver: open (TCP or TLS), then loop *next intended time → wait → send →
//! read the response → record*, reopening the connection after any error or `Connection: close`.
//!
//! The loop is the same for open and closed loop; only where the intended time comes from
//! differs (the plan, or "now"). Everything it touches per request is thread-local: the
//! thread's [`Stats`] behind a `RefCell` (never borrowed across an `.await`), the prebuilt
//! request bytes, and the connection's own read buffer. No locks, no atomics, no allocation.

pub mod chunked;
pub mod connect;
pub mod error;
mod head;
pub mod hooks;
pub mod http1;
pub mod rxtime;
pub mod verify;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::time::Sleep;

use crate::pacer::{mono_ns, Pacer};
use crate::record::{Errors, Stats, Unfinished, MAX_LATENCY_US};
use crate::request::Request;
use crate::schedule::Plan;
use connect::Connector;
use hooks::{Hooks, Stop};
use http1::ResponseReader;

/// State shared by the connections of one worker thread (thread-local, behind an `Rc`).
pub struct ThreadCtx {
    /// The run's start instant as CLOCK_MONOTONIC ns; plans are relative to it and all
    /// recorded times are ns since it.
    pub t0: u64,
    /// The thread's timer (precise or ticked, per `--pacing`), for plan slots and think time.
    pub pacer: Rc<Pacer>,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The request every connection of this thread sends.
    pub request: Request,
    /// Per-request timeout (from the send to the response's last byte) and connect timeout.
    pub timeout: Duration,
    /// `timeout` in ns.
    pub timeout_ns: u64,
    /// End of the run, ns since `t0`: no request is started at or after it.
    pub end_ns: u64,
    /// End of the drain period, ns since `t0` (open loop): requests planned before `end_ns`
    /// are still sent and awaited until then; whatever is unfinished at this instant is
    /// recorded as a lower bound ([`Stats::unfinished_n`]).
    pub cut_ns: u64,
    /// `cut_ns` as an `Instant`, for read deadlines.
    pub cut: Instant,
    /// Open loop (`-R`): a request still out at `cut_ns` is recorded as unfinished. In closed
    /// loop, as in wrk, what is in flight at the end of the run is not counted at all.
    pub open_loop: bool,
    /// The thread's measurements.
    pub stats: RefCell<Stats>,
    /// Set by the worker just before it drops the connections' tasks (the run was stopped
    /// early, or the drain period's backstop passed), so that each records what it leaves
    /// unfinished (open loop; see [`Progress`]).
    pub abandoned: Cell<Option<Abandon>>,
}

/// Why and when a worker dropped its connections' tasks, and so how a dropped connection
/// records the requests it leaves unfinished: its request out, and its slots intended before
/// `before_ns` that it never sent, each with the lower bound `at_ns − intended`.
#[derive(Debug, Clone, Copy)]
pub struct Abandon {
    /// When the requests stopped being awaited, ns since `t0`.
    pub at_ns: u64,
    /// Slots intended before this (ns since `t0`) were due.
    pub before_ns: u64,
    /// Whether they count as timeouts.
    pub why: Unfinished,
}

impl Abandon {
    /// The engine stopped the run now (Ctrl-C, SIGTERM, a script error): what was due until
    /// now, and planned before the end of the run (a stop may come in the drain period), is
    /// unfinished, and not an error.
    pub fn stopped(ctx: &ThreadCtx) -> Abandon {
        let at_ns = ctx.now();
        Abandon {
            at_ns,
            before_ns: at_ns.min(ctx.end_ns),
            why: Unfinished::Stopped,
        }
    }

    /// The drain period of `ctx` is over and a connection still has not ended (stuck in a
    /// connect, say): what was planned before the deadline is unfinished: a request out as a
    /// timeout, slots never sent as dropped.
    pub fn drained(ctx: &ThreadCtx) -> Abandon {
        Abandon {
            at_ns: ctx.cut_ns,
            before_ns: ctx.end_ns,
            why: Unfinished::TimedOut,
        }
    }
}

impl ThreadCtx {
    /// Now, in ns since `t0`.
    #[inline]
    pub fn now(&self) -> u64 {
        mono_ns().saturating_sub(self.t0)
    }

    /// `at_ns` (ns since `t0`, at most `cut_ns`) as a tokio instant, for the deadline timer.
    fn instant_at(&self, at_ns: u64) -> tokio::time::Instant {
        (self.cut - Duration::from_nanos(self.cut_ns - at_ns)).into()
    }

    fn error(&self, kind: fn(&mut Errors) -> &mut u64) {
        let now = self.now();
        self.stats.borrow_mut().error(now, kind);
    }
}

/// Thread slot spacing from which low-rate mode applies (2 ms: at most 500 requests/s a thread).
pub const LOW_RATE_GAP_NS: u64 = 2_000_000;
/// Busy-wait budget in low-rate mode, before a slot. A VM's idle CPU can take 100 µs or more
/// to wake, and a request sent from a cold CPU is slower through the loopback stack too; at
/// <= 500 requests/s this costs < 15% of a CPU. (Responses need no such spin: they are timed
/// by their kernel receive timestamps, whenever the thread wakes.)
pub const LOW_RATE_SPIN_NS: u64 = 150_000;

/// Pause after a failed connect in closed loop, so a dead server is not hammered in a busy loop.
const CLOSED_LOOP_RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What the driver does after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Keep the connection for the next request.
    Keep,
    /// Reopen the connection (error, timeout, or the server asked to close).
    Reconnect,
    /// Stop this connection for good (`thread:stop()` or a script error).
    Stop,
    /// The server had closed this reused keep-alive connection (an idle timeout) before any
    /// byte of the response: reopen it and send the same request again, from the same
    /// intended time, as browsers and HTTP client libraries do. Once: a request that fails on
    /// a fresh connection is an error.
    Resend,
    /// The drain period ended with this connection's request unfinished.
    Cut,
}

/// Runs one connection until its plan ends (the end of the run, or of the drain period), the
/// script stops it, or the engine drops the task (a stop, or the drain period's backstop; what
/// the connection then leaves unfinished is recorded by [`Progress`]). `stream` is the
/// already-open first connection, if the engine opened one.
pub async fn drive<C: Connector, H: Hooks>(
    ctx: Rc<ThreadCtx>,
    connector: C,
    plan: Option<Plan>,
    mut stream: Option<C::Stream>,
    mut hooks: H,
) {
    // Coarse pacing skips idle ticks only while every live connection task sleeps.
    let _task = ctx.pacer.task();
    let mut reader = ResponseReader::new();
    // The connection's response deadline: one timer for its whole life, set to `timer_ns`
    // (ns since `t0`). A request's deadline is later than the one before, so the timer is
    // left where it is and moved only when it fires before the current request's deadline
    // (`before`): once per timeout period at most, instead of a timer registered and
    // cancelled per request (each under the timer driver's lock) or moved per request.
    let mut deadline = Box::pin(tokio::time::sleep_until(ctx.instant_at(ctx.cut_ns)));
    let mut timer_ns = ctx.cut_ns;
    let mut g = Progress {
        ctx: &ctx,
        plan: plan.as_ref(),
        k: 0,
        out: Out::NONE,
        thinks: false,
        connecting: false,
    };
    // The intended time of a request to send again on a new connection (`Next::Resend`).
    let mut resend: Option<u64> = None;
    loop {
        // Wait for the slot first, so that reconnecting never runs ahead of the plan. A
        // request to send again is already due: it keeps its slot and intended time, so the
        // reconnect counts in its latency.
        let intended = match resend {
            Some(t) => t,
            None => match wait_for_slot(&ctx, plan.as_ref(), g.k).await {
                Some(t) => t,
                None => return g.backlog(),
            },
        };
        if hooks.stopped() {
            return;
        }
        // A connection opened before the run was free all along: its first request's send lag
        // is all the generator's. A reopened one is free once open.
        let preopened = stream.is_some();
        let mut io = match stream.take() {
            Some(s) => s,
            None => {
                // Coarse pacing: a connection being opened keeps the thread in the reactor,
                // so the request leaves as soon as it is open (see `Pacer::ticks`).
                let awake = ctx.pacer.hold_awake();
                g.connecting = true;
                let opened = tokio::time::timeout(ctx.timeout, connector.connect(ctx.addr)).await;
                g.connecting = false;
                drop(awake);
                match opened {
                    Ok(Ok(s)) => s,
                    failed => {
                        {
                            let mut stats = ctx.stats.borrow_mut();
                            stats.error(ctx.now(), |e| &mut e.connect);
                            if failed.is_err() {
                                stats.errors.connect_timeout += 1;
                            }
                        }
                        // A request to send again fails with its connection.
                        resend = None;
                        if plan.is_some() {
                            g.k += 1; // the slot is spent; the next attempt waits for the next one
                        } else {
                            tokio::time::sleep(CLOSED_LOOP_RECONNECT_PAUSE).await;
                        }
                        continue;
                    }
                }
            }
        };
        reader.clear();
        let mut intended = intended;
        let mut free = if preopened { 0 } else { ctx.now() };
        let mut times = Times {
            sent: free,
            done: free,
        };
        // How long this connection's last exchange took, ns.
        let mut took = 0u64;
        // Whether this connection has served a response: only then may a request whose
        // response never began be sent again (`Next::Resend`).
        let mut served = false;
        loop {
            // Coarse pacing: when this connection's next slot may come before the tick after
            // its response is likely in, keep the thread in the reactor while it waits, so the
            // response is read when it arrives and the next request is not held to a tick
            // (`Pacer::ticks`). Never true with precise pacing.
            let _awake = plan.as_ref().and_then(|p| {
                let next = ctx.t0 + p.intended_ns(g.k + 1);
                ctx.pacer.hold_awake_if_before(next, took)
            });
            let slot = Slot {
                intended,
                free,
                reused: served,
                again: resend.take().is_some(),
            };
            let (next, sent) = exchange(
                &ctx,
                &mut io,
                &mut reader,
                &mut hooks,
                deadline.as_mut(),
                &mut timer_ns,
                slot,
                &mut times,
                &mut g.out,
            )
            .await;
            // Pipelined requests (several in one write) use as many slots of the plan.
            g.out = Out::NONE;
            g.k += sent;
            took = times.done.saturating_sub(times.sent);
            drop(_awake);
            match next {
                Next::Keep => served = true,
                Next::Reconnect => break,
                Next::Resend => {
                    ctx.stats.borrow_mut().reconnects += 1;
                    resend = Some(intended);
                    break;
                }
                Next::Stop => return,
                Next::Cut => return g.backlog(),
            }
            // Free from the last response's last byte: time spent in the script's response()
            // after it is the generator's, and shows as send lag, not as server latency.
            free = times.done;
            // Think time (`delay()`): the connection is not free until it has passed, and the
            // next request is intended no earlier than that, so think time is never latency.
            let thought = match hooks.delay() {
                Ok(None) => 0,
                Ok(Some(d)) => {
                    free = free.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64);
                    if free >= ctx.end_ns {
                        return;
                    }
                    // The plan's slots that pass while the connection thinks are not owed:
                    // its next request takes the last of them (intended when thinking ends),
                    // so the connection never falls behind its plan by its think time alone.
                    if let Some(p) = &plan {
                        g.thinks = true;
                        g.k =
                            g.k.max(p.slots_before(free.saturating_add(1)).saturating_sub(1));
                    }
                    sleep_until(&ctx, free).await;
                    free
                }
                Err(Stop) => return,
            };
            match wait_for_slot(&ctx, plan.as_ref(), g.k).await {
                // Never `max(slot, free)` without think time: that would be the uncorrected
                // latency, hiding a slow server.
                Some(t) => intended = t.max(thought),
                None => return g.backlog(),
            }
        }
    }
}

/// A connection's place in its plan, kept where dropping the connection's task can see it: the
/// engine drops the tasks when it stops the run early, and the requests this connection then
/// leaves unfinished are recorded as lower bounds (open loop), as at the end of a drain period.
struct Progress<'a> {
    /// The thread's state (its `abandoned` says whether and how the task was dropped).
    ctx: &'a ThreadCtx,
    /// The connection's plan; `None` in closed loop, where nothing is recorded.
    plan: Option<&'a Plan>,
    /// The plan's next slot: the first of the write out now, if any, else the next to send.
    k: u64,
    /// The write out now, if any.
    out: Out,
    /// The connection thinks between requests (the script's `delay()`): it keeps to no plan
    /// beyond its next request, so the slots it has not sent are not owed, and only requests
    /// out are recorded.
    thinks: bool,
    /// The connection is being opened: a task dropped at the end of the run (the drain
    /// period's backstop, or closed loop's deadline) counts the attempt as a connect timeout,
    /// so that a listener that never completes a handshake does not go unreported.
    connecting: bool,
}

/// A connection's write out now: [`exchange`] keeps it current at every wait, so that a task
/// dropped in the middle of one records exactly the requests still unanswered.
#[derive(Debug, Clone, Copy)]
struct Out {
    /// The write's intended time (ns since `t0`), from which its requests' latencies count.
    intended: u64,
    /// How many slots of the plan the write holds (pipelining: one per request in it).
    held: u64,
    /// How many of its requests are still unanswered and unrecorded.
    left: u64,
    /// When it was sent (ns since `t0`).
    sent: u64,
}

impl Out {
    /// No write out.
    const NONE: Out = Out {
        intended: 0,
        held: 0,
        left: 0,
        sent: 0,
    };
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        let Some(a) = self.ctx.abandoned.get() else {
            return;
        };
        let Ok(mut stats) = self.ctx.stats.try_borrow_mut() else {
            return;
        };
        // A connect still pending when the run ended (not when it was stopped early).
        if self.connecting && a.at_ns >= self.ctx.end_ns {
            stats.error(a.at_ns, |e| &mut e.connect);
            stats.errors.connect_timeout += 1;
        }
        let Some(plan) = self.plan else {
            return;
        };
        let out = self.out;
        if out.left > 0 {
            let us = a.at_ns.saturating_sub(out.intended) / 1000;
            let why = match a.why {
                Unfinished::TimedOut => cut_off(self.ctx, out.sent, a.at_ns),
                w => w,
            };
            stats.unfinished_n(us, a.at_ns, out.left, why);
        }
        if !self.thinks {
            // Slots never sent are dropped, not timed out (a stopped run's stay stopped).
            let why = match a.why {
                Unfinished::TimedOut => Unfinished::Dropped,
                w => w,
            };
            let next = self.k + out.held;
            record_unsent(&mut stats, plan, next, a.before_ns, a.at_ns, why);
        }
    }
}

impl Progress<'_> {
    /// The connection's plan has ended: at the end of the drain period, the slots from `k`
    /// that were planned before the end of the run but never sent (the connection was still
    /// busy) are recorded as unfinished. (At the end of the run there are none.) A connection
    /// that thinks owes no slots.
    #[cold]
    fn backlog(&self) {
        let Some(plan) = self.plan.filter(|_| !self.thinks) else {
            return;
        };
        let ctx = self.ctx;
        let mut stats = ctx.stats.borrow_mut();
        record_unsent(
            &mut stats,
            plan,
            self.k,
            ctx.end_ns,
            ctx.cut_ns,
            Unfinished::Dropped,
        );
    }
}

/// Records the slots of `plan` from `k` intended before `before_ns` as unfinished at `cut_ns`,
/// each with its lower bound `cut_ns − intended`. Slots whose lower bounds fall in the same
/// histogram bucket are recorded together, so the cost is one record per bucket, not per slot:
/// a plan far beyond the server (`-R 1G`) can leave billions.
#[cold]
fn record_unsent(
    stats: &mut Stats,
    plan: &Plan,
    mut k: u64,
    before_ns: u64,
    cut_ns: u64,
    why: Unfinished,
) {
    let end = plan.slots_before(before_ns);
    while k < end {
        // Lower bounds fall as `k` grows; every slot intended by `last` shares this bucket.
        let us = (cut_ns.saturating_sub(plan.intended_ns(k)) / 1000).min(MAX_LATENCY_US);
        let lowest_ns = stats.corrected.lowest_equivalent(us) * 1000;
        let last = cut_ns.saturating_sub(lowest_ns);
        let upto = plan.slots_before(last.saturating_add(1)).clamp(k + 1, end);
        stats.unfinished_n(us, cut_ns, upto - k, why);
        k = upto;
    }
}

/// Waits until the plan's `k`-th slot and returns its intended time (ns since `t0`), or `None`
/// when that slot lies at or after the end of the run or the drain period is over (the caller
/// then records the backlog: [`Progress::backlog`]). In closed loop there is no plan: the
/// intended time is now. With a plan it waits on the thread's pacer: to within microseconds
/// with precise pacing; with coarse pacing, until the tick before the slot (the request leaves
/// up to a tick early and is timed from its actual send, so the timer's granularity is never
/// counted as latency, as wrk2 counts it). One clock read decides both whether the drain period
/// is over and whether to sleep.
#[inline]
async fn wait_for_slot(ctx: &ThreadCtx, plan: Option<&Plan>, k: u64) -> Option<u64> {
    let Some(p) = plan else {
        let now = ctx.now();
        return (now < ctx.end_ns).then_some(now);
    };
    let due_ns = p.intended_ns(k);
    if due_ns >= ctx.end_ns {
        return None;
    }
    let now = mono_ns();
    // Past the drain period (so far past this slot, planned before the deadline): stop.
    if now.saturating_sub(ctx.t0) >= ctx.cut_ns {
        return None;
    }
    let due = ctx.t0 + due_ns;
    if now < due {
        ctx.pacer.sleep_until(due).await;
    }
    Some(due_ns)
}

/// Sleeps until `at_ns` (ns since `t0`) on the thread's pacer, never before it (think time).
#[inline]
async fn sleep_until(ctx: &ThreadCtx, at_ns: u64) {
    let due = ctx.t0 + at_ns;
    let now = mono_ns();
    if now < due {
        ctx.pacer.sleep_not_before(due).await;
    }
}

/// When a connection's latest request was sent and its latest response complete (ns since
/// `t0`): `done` frees the connection; `done - sent` tells coarse pacing how long an exchange
/// takes (`Pacer::hold_awake_if_before`).
struct Times {
    sent: u64,
    done: u64,
}

/// `fut`'s output, or `None` if the deadline `at_ns` (ns since `t0`) passes first. `timer`,
/// set to `*timer_ns`, may have been left at an earlier request's deadline: when it fires
/// before `at_ns`, it is moved there and the wait goes on.
async fn before<F: Future>(
    ctx: &ThreadCtx,
    fut: F,
    mut timer: Pin<&mut Sleep>,
    timer_ns: &mut u64,
    at_ns: u64,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        while timer.as_mut().poll(cx).is_ready() {
            if *timer_ns >= at_ns {
                return Poll::Ready(None);
            }
            *timer_ns = at_ns;
            timer.as_mut().reset(ctx.instant_at(at_ns));
        }
        Poll::Pending
    })
    .await
}

/// The deadline passed at `now` (ns since `t0`) with `left` of a write's requests unanswered.
/// Past the drain period they are all unfinished, recorded with their lower bounds (open
/// loop; closed loop has no drain period: the run is over, and a request it happened to have
/// out is no measurement). Before it, they timed out: open loop records each with its lower
/// bound (leaving them out would hide the slowest requests); closed loop counts the write as
/// wrk does, as one error only.
fn deadline_missed(ctx: &ThreadCtx, intended: u64, sent: u64, now: u64, left: usize) -> Next {
    let mut stats = ctx.stats.borrow_mut();
    if now >= ctx.cut_ns {
        if ctx.open_loop {
            let us = ctx.cut_ns.saturating_sub(intended) / 1000;
            let why = cut_off(ctx, sent, ctx.cut_ns);
            stats.unfinished_n(us, ctx.cut_ns, left as u64, why);
        }
        Next::Cut
    } else {
        if ctx.open_loop {
            let us = now.saturating_sub(intended.min(sent)) / 1000;
            stats.unfinished_n(us, now, left as u64, Unfinished::TimedOut);
        } else {
            stats.error(now, |e| &mut e.timeout);
        }
        Next::Reconnect
    }
}

/// What one exchange is for: its slot of the plan and the state of its connection.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The request's intended send time, ns since `t0`.
    intended: u64,
    /// When the connection became able to send it, ns since `t0`.
    free: u64,
    /// The connection has served a response already (a keep-alive connection the server may
    /// have closed while it was idle).
    reused: bool,
    /// The request is sent again on a new connection (`Next::Resend`): the same bytes as
    /// before, without asking the script for new ones.
    again: bool,
}

/// Whether a request whose response never began may be sent again on a new connection: the
/// server cannot have acted on one it never got (nothing was written), and RFC 9110 §9.2.2
/// lets a client retry an idempotent method.
#[inline]
fn may_resend(bytes: &[u8], written: usize) -> bool {
    const IDEMPOTENT: [&[u8]; 6] = [
        b"GET ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"TRACE ",
    ];
    written == 0 || IDEMPOTENT.iter().any(|m| bytes.starts_with(m))
}

/// Whether a failed read means the server had closed the connection before sending anything
/// (EOF or a reset, no byte of the response read).
fn closed_before_response(e: &http1::ReadError) -> bool {
    use error::ReadReason::{Closed, Reset};
    matches!(e.reason(), Closed | Reset)
}

/// Writes all of `buf`, counting in `written` what the socket took (tokio's `write_all`
/// keeps that to itself): a request none of whose bytes were written may be sent again
/// whatever its method.
async fn write_counted<S: tokio::io::AsyncWrite + Unpin>(
    io: &mut S,
    buf: &[u8],
    written: &mut usize,
) -> std::io::Result<()> {
    while *written < buf.len() {
        match io.write(&buf[*written..]).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => *written += n,
        }
    }
    Ok(())
}

/// How a request sent at `sent` and still unanswered when the drain period ended (`at_ns`)
/// counts: as a timeout only if it had been out for `--timeout`; one sent later in the drain
/// period (its connection was busy until then) was cut off by the end of the run, not by the
/// server's slowness, and counts with the planned requests never sent, as dropped.
fn cut_off(ctx: &ThreadCtx, sent: u64, at_ns: u64) -> Unfinished {
    if at_ns.saturating_sub(sent) >= ctx.timeout_ns {
        Unfinished::TimedOut
    } else {
        Unfinished::Dropped
    }
}

/// Sends the request and reads its response(s), recording each and handing each to the
/// script's `response()` when it has one; `timer` is the connection's deadline timer, set to
/// `*timer_ns`, which this request's deadline may move earlier (only its first) or later
/// (`before`). Returns what to do next and how many requests the write held (at least
/// 1, so a failed slot is spent; 0 for `Next::Resend`, which keeps its slot).
#[allow(clippy::too_many_arguments)]
async fn exchange<S, H: Hooks>(
    ctx: &ThreadCtx,
    io: &mut S,
    reader: &mut ResponseReader,
    hooks: &mut H,
    mut timer: Pin<&mut Sleep>,
    timer_ns: &mut u64,
    slot: Slot,
    times: &mut Times,
    out: &mut Out,
) -> (Next, u64)
where
    S: rxtime::TimedRead + tokio::io::AsyncWrite,
{
    let Slot { intended, free, .. } = slot;
    // An idle connection (kept alive, or opened before the run) whose close the event loop
    // has already seen is reopened before anything is written to it: no system call unless
    // its socket is readable. Not twice for one request: a server that closes every new
    // connection at once makes its requests fail.
    if !slot.again && io.closed_while_idle() {
        return (Next::Resend, 0);
    }
    let req = if slot.again {
        hooks.last_request().unwrap_or(&ctx.request)
    } else {
        match hooks.request() {
            Ok(Some(r)) => r,
            Ok(None) => &ctx.request,
            Err(Stop) => return (Next::Stop, 1),
        }
    };
    let (responses, head) = (req.responses, req.head);
    let sent = ctx.now();
    times.sent = sent;
    *out = Out {
        intended,
        held: responses as u64,
        left: responses as u64,
        sent,
    };
    // The deadline, from the send time. The timer moves only if it is set later (the first
    // request); an earlier setting is moved when it fires (`before`). It bounds the write
    // too: a server that reads nothing fills the socket with a large body.
    let deadline_ns = sent.saturating_add(ctx.timeout_ns).min(ctx.cut_ns);
    if deadline_ns < *timer_ns {
        *timer_ns = deadline_ns;
        timer.as_mut().reset(ctx.instant_at(deadline_ns));
    }
    let mut written = 0;
    let wrote = before(
        ctx,
        write_counted(io, &req.bytes, &mut written),
        timer.as_mut(),
        timer_ns,
        deadline_ns,
    )
    .await;
    match wrote {
        Some(Ok(())) => {}
        Some(Err(_)) if slot.reused && may_resend(&req.bytes, written) => {
            *out = Out::NONE;
            return (Next::Resend, 0);
        }
        Some(Err(_)) => {
            ctx.error(|e| &mut e.write);
            return (Next::Reconnect, responses as u64);
        }
        None => {
            let now = ctx.now();
            times.done = now;
            let missed = deadline_missed(ctx, intended, sent, now, responses);
            return (missed, responses as u64);
        }
    }
    // Decided while the request is in hand (the reads below borrow the script's state).
    let resendable = slot.reused && may_resend(&req.bytes, written);
    let mut keep = true;
    let n = responses as u64;
    for i in 0..responses {
        let mut bytes = 0u64;
        // Nothing of this response is in hand yet (only then may it be sent again).
        let fresh = i == 0 && !reader.buffered();
        let read = reader.read_response(io, head, &mut bytes, hooks.sink());
        let res = before(ctx, read, timer.as_mut(), timer_ns, deadline_ns).await;
        let now_abs = mono_ns();
        let now = now_abs.saturating_sub(ctx.t0);
        // The response was complete when its last bytes reached the socket, if the kernel
        // said when (rxtime); not when this thread got round to reading it.
        let done = match (&res, reader.take_rx()) {
            (Some(Ok(_)), Some(at)) => match rxtime::to_monotonic(at, now_abs) {
                // Bytes cannot arrive before the request left: a receive time from before the
                // send is a stale one (TLS data decrypted from an earlier read), so use now.
                Some(at) if at.saturating_sub(ctx.t0) >= sent => at.saturating_sub(ctx.t0).min(now),
                _ => now,
            },
            _ => now,
        };
        times.done = done;
        {
            let mut stats = ctx.stats.borrow_mut();
            stats.bytes += bytes;
            match res {
                Some(Ok(head)) => {
                    stats.record(intended, free, sent, done, head.status);
                    out.left -= 1;
                    keep &= !head.close;
                }
                Some(Err(e)) if resendable && fresh && bytes == 0 && closed_before_response(&e) => {
                    *out = Out::NONE;
                    return (Next::Resend, 0);
                }
                Some(Err(e)) => {
                    stats.error(done, |e| &mut e.read);
                    stats.errors.read_reasons.count(e.reason());
                    return (Next::Reconnect, n);
                }
                None => {
                    drop(stats);
                    return (deadline_missed(ctx, intended, sent, done, responses - i), n);
                }
            }
        }
        if hooks.response().is_err() {
            return (Next::Stop, n);
        }
    }
    let next = if hooks.stopped() {
        Next::Stop
    } else if keep {
        Next::Keep
    } else {
        Next::Reconnect
    };
    (next, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::RateProfile;

    /// Recording a backlog a bucket at a time gives the same histogram, counts and time line
    /// as recording each slot on its own.
    #[test]
    fn unsent_slots_grouped_by_bucket_match_one_by_one() {
        for (rate, c, i, k, before, cut) in [
            (1000.0, 1, 0, 0, 2_000_000_000, 3_500_000_000),
            (7777.0, 13, 5, 3, 10_000_000_000, 10_200_000_000),
            (3.0e6, 2, 1, 17, 1_000_000_000, 1_000_000_000),
            (100.0, 1, 0, 50, 2_000_000_000, 3_000_000_000),
        ] {
            let plan = Plan::new(RateProfile::Constant(rate), i, c);
            let mut grouped = Stats::new();
            record_unsent(&mut grouped, &plan, k, before, cut, Unfinished::TimedOut);
            let mut single = Stats::new();
            let mut j = k;
            while plan.intended_ns(j) < before {
                let lower_bound_us = cut.saturating_sub(plan.intended_ns(j)) / 1000;
                single.unfinished_n(lower_bound_us, cut, 1, Unfinished::TimedOut);
                j += 1;
            }
            assert_eq!(grouped.corrected, single.corrected, "{rate} {c} {i}");
            assert_eq!(grouped.errors, single.errors);
            grouped.timeline.close();
            single.timeline.close();
            assert_eq!(grouped.timeline.intervals(), single.timeline.intervals());
        }
    }
}
