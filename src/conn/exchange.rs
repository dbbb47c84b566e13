//! One exchange of a connection: write a request (its bytes counted, so that one none of
//! whose bytes were written may be sent again), read its response(s) before the deadline,
//! time each by its arrival, record it, hand it to the script; and the rule for sending a
//! request again on a new connection when a reused keep-alive connection turns out closed
//! before any byte of its response ([`Slot`], `Next::Resend`).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::AsyncWriteExt;
use tokio::time::Sleep;

use crate::pacer::mono_ns;
use crate::request::Request;

use super::hooks::{Hooks, Stop};
use super::http1::{self, ResponseReader};
use super::unfinished::{deadline_missed, Out};
use super::{error, rxtime, Next, ThreadCtx};

/// When a connection's latest request was sent and its latest response complete (ns since
/// `t0`): `done` frees the connection; `done - sent` tells coarse pacing how long an exchange
/// takes (`Pacer::hold_awake_if_before`).
pub(crate) struct Times {
    pub(super) sent: u64,
    pub(super) done: u64,
}

/// `fut`'s output, or `None` if the deadline `at_ns` (ns since `t0`) passes first. `timer`,
/// set to `*timer_ns`, may have been left at an earlier request's deadline: when it fires
/// before `at_ns`, it is moved there and the wait goes on.
pub(super) async fn before<F: Future>(
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

/// A kernel receive time `at` (CLOCK_REALTIME ns) as ns since `t0`, with `now_abs` the
/// clock (`mono_ns`) just read; `None` when it cannot be this response's: bytes cannot
/// arrive before the request left (`sent`, ns since `t0`), so an earlier stamp is a stale one
/// (TLS data decrypted from an earlier read).
#[inline]
fn arrived(ctx: &ThreadCtx, at: u64, now_abs: u64, sent: u64) -> Option<u64> {
    let at = rxtime::to_monotonic(at, now_abs)?.saturating_sub(ctx.t0);
    (at >= sent).then_some(at)
}

/// What one exchange is for: its slot of the plan and the state of its connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// The request's intended send time, ns since `t0`.
    pub(super) intended: u64,
    /// When the connection became able to send it, ns since `t0`.
    pub(super) free: u64,
    /// The connection has served a response already (a keep-alive connection the server may
    /// have closed while it was idle).
    pub(super) reused: bool,
    /// The request is sent again on a new connection (`Next::Resend`): the same bytes as
    /// before, without asking the script for new ones.
    pub(super) again: bool,
}

/// How long a connection must have been idle before its request for the event loop's word
/// on whether the server closed it (see [`exchange`]).
const IDLE_CHECK_NS: u64 = 10_000_000;

/// Whether a request whose response never began may be sent again on a new connection: the
/// server cannot have acted on one it never got (nothing was written), and RFC 9110 §9.2.2
/// lets a client retry an idempotent method ([`Request::idempotent`], decided when the
/// request was built).
#[inline]
fn may_resend(req: &Request, written: usize) -> bool {
    written == 0 || req.idempotent
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

/// Sends the request and reads its response(s), recording each and handing each to the
/// script's `response()` when it has one; `timer` is the connection's deadline timer, set to
/// `*timer_ns`, which this request's deadline may move earlier (only its first) or later
/// (`before`). Returns what to do next and how many requests the write held (at least
/// 1, so a failed slot is spent; 0 for `Next::Resend`, which keeps its slot).
#[allow(clippy::too_many_arguments)]
pub(super) async fn exchange<S, H: Hooks>(
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
    // its socket is readable. Only after an idle stretch (servers time connections out after
    // a second or more; a busy connection's check would cost every request its readiness
    // test), and not twice for one request: a server that closes every new connection at
    // once makes its requests fail.
    if !slot.again
        && slot.intended.saturating_sub(slot.free) >= IDLE_CHECK_NS
        && io.closed_while_idle()
    {
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
    // How much of a non-idempotent request was written decides whether it may be sent again
    // (`may_resend`); an idempotent one may be whatever was written, so it takes tokio's
    // plain `write_all`.
    let mut written = 0;
    let wrote = if req.idempotent {
        before(
            ctx,
            io.write_all(&req.bytes),
            timer.as_mut(),
            timer_ns,
            deadline_ns,
        )
        .await
    } else {
        before(
            ctx,
            write_counted(io, &req.bytes, &mut written),
            timer.as_mut(),
            timer_ns,
            deadline_ns,
        )
        .await
    };
    // The request's last byte was handed to the socket (the timing breakdown's `sending`
    // ends, `waiting` begins): the one clock read the breakdown adds per request.
    let wrote_at = ctx.now();
    match wrote {
        Some(Ok(())) => {}
        Some(Err(_)) if slot.reused && may_resend(req, written) => {
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
    let resendable = slot.reused && may_resend(req, written);
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
        let rx = reader.take_rx();
        let done = match (&res, rx) {
            (Some(Ok(_)), Some(at)) => arrived(ctx, at, now_abs, sent).map_or(now, |t| t.min(now)),
            _ => now,
        };
        times.done = done;
        {
            let mut stats = ctx.stats.borrow_mut();
            stats.bytes += bytes;
            match res {
                Some(Ok(head)) => {
                    stats.record(intended, free, sent, done, head.status);
                    // The breakdown: the first byte's arrival, when an earlier read than the
                    // last brought it, else the response's; kept within [written, done] so
                    // that the phases add up to the uncorrected latency.
                    let wrote = wrote_at.min(done);
                    let first = match reader.first_rx() {
                        Some(at) if Some(at) != rx => {
                            arrived(ctx, at, now_abs, sent).unwrap_or(done)
                        }
                        _ => done,
                    }
                    .clamp(wrote, done);
                    stats.record_phases(wrote - sent, first - wrote, done - first);
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
