//! One connection's driver: open (TCP or TLS), then loop *next intended time → wait → send →
//! read the response → record*, reopening the connection after any error or `Connection: close`.
//!
//! The loop is the same for open and closed loop; only where the intended time comes from
//! differs (the plan, or "now"). Everything it touches per request is thread-local: the
//! thread's [`Stats`] behind a `RefCell` (never borrowed across an `.await`), the prebuilt
//! request bytes, and the connection's own read buffer. No locks, no atomics, no allocation.
//! One exchange (write, read, record) is `exchange.rs`; what a connection leaves unfinished,
//! and how each such request counts, is `unfinished.rs`.

pub mod chunked;
pub mod connect;
pub mod error;
mod exchange;
pub mod h2;
pub mod h2req;
mod head;
pub mod hooks;
pub mod http1;
pub(crate) mod proto;
pub mod rxtime;
mod unfinished;
pub mod verify;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::conn_profile::{Turn, Turns};
use crate::pacer::{mono_ns, Pacer};
use crate::record::{Errors, Stats};
use crate::request::Request;
use crate::schedule::Plan;
use exchange::{Slot, Times};
use hooks::{Hooks, Stop};
use proto::Exchange;
pub use unfinished::Abandon;
use unfinished::{Out, Progress};

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
    pub cut_at: Instant,
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

impl ThreadCtx {
    /// Now, in ns since `t0`.
    #[inline]
    pub fn now(&self) -> u64 {
        mono_ns().saturating_sub(self.t0)
    }

    /// `at_ns` (ns since `t0`, at most `cut_ns`) as a tokio instant, for the deadline timer.
    fn instant_at(&self, at_ns: u64) -> tokio::time::Instant {
        (self.cut_at - Duration::from_nanos(self.cut_ns - at_ns)).into()
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
pub(crate) enum Next {
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

/// When a slot sends: open loop, its share of the plan; closed loop, back to back, while it
/// is in use (`turns`, with `--conn-stages`; `None`: all the run).
pub struct Pace {
    /// Open loop: the slot's share of the plan.
    pub plan: Option<Plan>,
    /// Closed loop with `--conn-stages`: when the slot's connection is in use.
    pub turns: Option<Turns>,
}

/// Runs one slot (an HTTP/1.1 connection, or one stream slot of an HTTP/2 connection) until
/// its plan ends (the end of the run, or of the drain period), the script stops it, or the
/// engine drops the task (a stop, or the drain period's backstop; what the slot then leaves
/// unfinished is recorded by [`Progress`]). `proto` opens links and exchanges requests on
/// them ([`proto`]); `stream` is the already-open first link, if the engine opened one. A
/// closed-loop slot whose connection leaves (`pace.turns`) closes its link after the exchange
/// it has in flight, and opens a new one when it joins again.
pub(crate) async fn drive<P: Exchange, H: Hooks>(
    ctx: Rc<ThreadCtx>,
    mut proto: P,
    pace: Pace,
    mut stream: Option<P::Link>,
    mut hooks: H,
) {
    let Pace { plan, turns } = pace;
    let turns = turns.as_ref();
    // Coarse pacing skips idle ticks only while every live connection task sleeps.
    let _task = ctx.pacer.task();
    // The connection's response deadline: one timer for its whole life, set to `timer_ns`
    // (ns since `t0`). A request's deadline is later than the one before, so the timer is
    // left where it is and moved only when it fires before the current request's deadline
    // (`before`): once per timeout period at most, instead of a timer registered and
    // cancelled per request (each under the timer driver's lock) or moved per request.
    let mut deadline = Box::pin(tokio::time::sleep_until(ctx.instant_at(ctx.cut_ns)));
    let mut timer_ns = ctx.cut_ns;
    let mut progress = Progress {
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
            None => match wait_for_slot(&ctx, plan.as_ref(), turns, progress.k).await {
                Some(t) => t,
                None => return progress.backlog(),
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
                progress.connecting = true;
                let opened = tokio::time::timeout(ctx.timeout, proto.open(&ctx)).await;
                progress.connecting = false;
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
                            progress.k += 1; // the slot is spent; the next attempt waits for the next one
                        } else {
                            tokio::time::sleep(CLOSED_LOOP_RECONNECT_PAUSE).await;
                        }
                        continue;
                    }
                }
            }
        };
        proto.fresh();
        let mut intended = intended;
        let mut free_at = if preopened { 0 } else { ctx.now() };
        let mut times = Times {
            sent: free_at,
            done: free_at,
        };
        // How long this connection's last exchange last_exchange_ns, ns.
        let mut last_exchange_ns = 0u64;
        // Whether this connection has served a response: only then may a request whose
        // response never began be sent again (`Next::Resend`).
        let mut served = false;
        loop {
            // Coarse pacing: when this connection's next slot may come before the tick after
            // its response is likely in, keep the thread in the reactor while it waits, so the
            // response is read when it arrives and the next request is not held to a tick
            // (`Pacer::ticks`). Never true with precise pacing.
            let _awake = plan.as_ref().and_then(|p| {
                let next = ctx.t0 + p.intended_ns(progress.k + 1);
                ctx.pacer.hold_awake_if_before(next, last_exchange_ns)
            });
            let slot = Slot {
                intended,
                free: free_at,
                reused: served,
                again: resend.take().is_some(),
            };
            let (next, sent) = proto
                .exchange(
                    &ctx,
                    &mut io,
                    &mut hooks,
                    deadline.as_mut(),
                    &mut timer_ns,
                    slot,
                    &mut times,
                    &mut progress.out,
                )
                .await;
            // Pipelined requests (several in one write) use as many slots of the plan.
            progress.out = Out::NONE;
            progress.k += sent;
            last_exchange_ns = times.done.saturating_sub(times.sent);
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
                Next::Cut => return progress.backlog(),
            }
            // Free from the last response's last byte: time spent in the script's response()
            // after it is the generator's, and shows as send lag, not as server latency.
            free_at = times.done;
            // Think time (`delay()`): the connection is not free until it has passed, and the
            // next request is intended no earlier than that, so think time is never latency.
            let thought = match hooks.delay() {
                Ok(None) => 0,
                Ok(Some(d)) => {
                    free_at = free_at.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64);
                    if free_at >= ctx.end_ns {
                        return;
                    }
                    // The plan's slots that pass while the connection thinks are not owed:
                    // its next request takes the last of them (intended when thinking ends),
                    // so the connection never falls behind its plan by its think time alone.
                    if let Some(p) = &plan {
                        progress.thinks = true;
                        progress.k = progress
                            .k
                            .max(p.slots_before(free_at.saturating_add(1)).saturating_sub(1));
                    }
                    sleep_until(&ctx, free_at).await;
                    free_at
                }
                Err(Stop) => return,
            };
            // A connection that has left closes (its link is dropped with the loop) and waits
            // for its next turn in the outer loop.
            if turns.is_some_and(|t| !matches!(t.at(ctx.now()), Turn::Until(_))) {
                proto.leave();
                break;
            }
            match wait_for_slot(&ctx, plan.as_ref(), None, progress.k).await {
                // Never `max(slot, free)` without think time: that would be the uncorrected
                // latency, hiding a slow server.
                Some(t) => intended = t.max(thought),
                None => return progress.backlog(),
            }
        }
    }
}

/// Waits until the plan's `k`-th slot and returns its intended time (ns since `t0`), or `None`
/// when that slot lies at or after the end of the run or the drain period is over (the caller
/// then records the backlog: [`Progress::backlog`]). In closed loop there is no plan: the
/// intended time is now. With a plan it waits on the thread's pacer: to within microseconds
/// with precise pacing; with coarse pacing, until the tick before the slot (the request leaves
/// up to a tick early and is timed from its actual send, so the timer's granularity is never
/// counted as latency, as wrk2 counts it). One clock read decides both whether the drain period
/// is over and whether to sleep. In closed loop with `turns`, a connection not in use waits
/// for its next turn (never before it), and its intended time is when it joins.
#[inline]
async fn wait_for_slot(
    ctx: &ThreadCtx,
    plan: Option<&Plan>,
    turns: Option<&Turns>,
    k: u64,
) -> Option<u64> {
    let Some(p) = plan else {
        let mut now = ctx.now();
        if let Some(t) = turns {
            match t.at(now) {
                Turn::Until(_) => {}
                Turn::From(at) if at < ctx.end_ns => {
                    sleep_until(ctx, at).await;
                    now = ctx.now();
                }
                _ => return None,
            }
        }
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
