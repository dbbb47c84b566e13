//! HTTP/2's exchange, on the `h2` crate's client: a connection ([`H2Conn`]) is shared by its
//! `--streams` slots, each of which follows its own plan through the one slot driver
//! ([`super::drive`]) and sends one request at a time on a handle ([`H2Link`]) to the
//! connection. The connection's frames are read and written by a task of its own (h2's
//! `Connection`), spawned on the thread's `LocalSet`.
//!
//! - **Flow control.** Both windows are 2^30 − 1 (as h2load's), so a response never waits for
//!   a WINDOW_UPDATE; received data is released as it is read (a stream's last chunk by h2
//!   itself, when the ended stream is dropped).
//! - **Streams.** A server whose SETTINGS_MAX_CONCURRENT_STREAMS is below `--streams` clamps
//!   them: the slots beyond it wait in h2's queue for a free stream (their waits count in
//!   their corrected latencies), and the lowest such setting is reported
//!   (`Stats::h2_streams_clamp`).
//! - **Errors**, counted by kind ([`crate::record::H2Errors`]), and the run goes on: a stream
//!   the server resets (RST_STREAM) fails its request, the connection stays; REFUSED_STREAM,
//!   and a stream above a GOAWAY's last stream id, were not processed and are sent again once
//!   (RFC 9113 §8.7); a GOAWAY, or any other connection error, ends the connection, and the
//!   next request opens a new one.
//! - **Times.** A request is sent when it is handed to the connection; h2 gives no signal of
//!   its frames' write, so its sending ends when the handing over (waiting for a stream, the
//!   headers and body queued) returns. Its first response byte is the kernel's receive time
//!   (`rxtime`) of the connection's latest read when its response head is seen, its last that
//!   of the latest read when its body's end is seen, each clamped between the previous phase's
//!   end and now: the connection task may have read later frames since, so these err late,
//!   never early.
//! - **Bytes** counted are the connection's socket bytes (frames included).

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::connect::Connector;
use super::exchange::{before, Slot, Times};
pub use super::h2req::H2Request;
use super::hooks::{Hooks, Stop};
use super::http1::ResponseSink;
use super::proto::Exchange;
use super::rxtime::{self, TimedRead};
use super::unfinished::{deadline_missed, Out};
use super::{error::ReadReason, Next, ThreadCtx};
use crate::pacer::mono_ns;
use crate::record::H2Errors;

/// The flow-control windows a connection and each stream open with (h2load's: 2^30 − 1).
pub const WINDOW: u32 = (1 << 30) - 1;

/// What one worker thread's HTTP/2 connections count outside the per-request recording (their
/// connection tasks have no `Stats` of their own); added to the thread's `Stats` at the end.
pub struct H2Thread {
    /// Socket bytes read.
    pub bytes: Cell<u64>,
    /// Errors by kind.
    pub errors: Cell<H2Errors>,
    /// The lowest SETTINGS_MAX_CONCURRENT_STREAMS seen below `streams`.
    pub clamp: Cell<Option<u64>>,
    /// `--streams`.
    pub streams: usize,
    /// The request every slot sends unless a script says otherwise, in HTTP/2 form.
    pub request: H2Request,
}

impl H2Thread {
    /// Counters for a thread whose slots send `request` over `streams` streams a connection.
    pub fn new(streams: usize, request: H2Request) -> H2Thread {
        H2Thread {
            bytes: Cell::new(0),
            errors: Cell::new(H2Errors::default()),
            clamp: Cell::new(None),
            streams,
            request,
        }
    }

    fn count(&self, kind: fn(&mut H2Errors) -> &mut u64) {
        let mut e = self.errors.get();
        *kind(&mut e) += 1;
        self.errors.set(e);
    }

    /// Adds what the connections counted to the thread's statistics.
    pub fn finish(&self, stats: &mut crate::record::Stats) {
        stats.bytes += self.bytes.get();
        stats.errors.h2 += &self.errors.get();
        stats.h2_streams_clamp = self.clamp.get();
    }
}

/// A slot's handle on its connection.
#[derive(Clone)]
pub struct H2Link {
    send: SendRequest<Bytes>,
    /// Which of the connection's successive sockets this is.
    gen: u64,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS was looked at.
    checked: bool,
}

/// One HTTP/2 connection, shared by its stream slots; reopened by the first slot that needs
/// it after it ended.
pub struct H2Conn<C> {
    connector: C,
    thread: Rc<H2Thread>,
    /// The kernel receive time of the connection's latest read (CLOCK_REALTIME ns).
    rx: Rc<Cell<Option<u64>>>,
    /// The open connection, if any.
    live: RefCell<Option<H2Link>>,
    /// Sockets opened so far.
    gen: Cell<u64>,
    /// Held while a slot opens the connection, so that its other slots wait and join it.
    opening: tokio::sync::Mutex<()>,
}

impl<C: Connector> H2Conn<C> {
    /// A connection (not open yet) of a thread with `thread`'s counters.
    pub fn new(connector: C, thread: Rc<H2Thread>) -> Rc<H2Conn<C>> {
        Rc::new(H2Conn {
            connector,
            thread,
            rx: Rc::new(Cell::new(None)),
            live: RefCell::new(None),
            gen: Cell::new(0),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts HTTP/2 on the open socket `io` (the preface and SETTINGS are written; nothing is
    /// awaited from the server) and spawns its connection task on the thread's `LocalSet`.
    pub async fn handshake(self: &Rc<Self>, io: C::Stream) -> io::Result<H2Link> {
        let io = Counted {
            io,
            thread: self.thread.clone(),
            rx: self.rx.clone(),
        };
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(WINDOW)
            .initial_connection_window_size(WINDOW)
            .initial_max_send_streams(self.thread.streams)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(io::Error::other)?;
        let gen = self.gen.get() + 1;
        self.gen.set(gen);
        let me: Weak<H2Conn<C>> = Rc::downgrade(self);
        tokio::task::spawn_local(async move {
            let ended = conn.await;
            // Gone: the slots ended and dropped the connection themselves.
            if let Some(me) = me.upgrade() {
                me.ended(gen, ended);
            }
        });
        let link = H2Link {
            send,
            gen,
            checked: false,
        };
        *self.live.borrow_mut() = Some(link.clone());
        Ok(link)
    }

    /// The connection task of socket `gen` ended while its slots still wanted it: with a GOAWAY
    /// (graceful, or with an error code) or another error.
    #[cold]
    fn ended(&self, gen: u64, how: Result<(), h2::Error>) {
        self.dead(gen);
        match how {
            Ok(()) => self.thread.count(|e| &mut e.goaway),
            Err(e) if e.is_go_away() && e.is_remote() => self.thread.count(|e| &mut e.goaway),
            Err(_) => self.thread.count(|e| &mut e.connection),
        }
    }

    /// Socket `gen` is of no more use: the next slot to open the connection opens a new one.
    fn dead(&self, gen: u64) {
        let mut live = self.live.borrow_mut();
        if live.as_ref().is_some_and(|l| l.gen == gen) {
            *live = None;
        }
    }

    fn link(&self) -> Option<H2Link> {
        self.live.borrow().clone()
    }
}

/// Handshakes each of a thread's preopened sockets (in order; `None` for those that did not
/// open): the connections and their first links.
pub async fn start_all<C: Connector>(
    connector: &C,
    thread: &Rc<H2Thread>,
    streams: Vec<Option<C::Stream>>,
) -> Vec<(Rc<H2Conn<C>>, Option<H2Link>)> {
    let mut out = Vec::with_capacity(streams.len());
    for s in streams {
        let conn = H2Conn::new(connector.clone(), thread.clone());
        let link = match s {
            Some(io) => conn.handshake(io).await.ok(),
            None => None,
        };
        out.push((conn, link));
    }
    out
}

/// The socket under h2, counting the bytes read and keeping the latest read's receive time.
struct Counted<S> {
    io: S,
    thread: Rc<H2Thread>,
    rx: Rc<Cell<Option<u64>>>,
}

impl<S: TimedRead + AsyncWrite + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.thread.bytes.set(this.thread.bytes.get() + n);
            if let Some(at) = this.io.last_rx() {
                this.rx.set(Some(at));
            }
        }
        Poll::Ready(Ok(()))
    }
}

rxtime::forward_async_write!([S: AsyncWrite + Unpin] Counted<S>, io);

/// One stream slot of an HTTP/2 connection.
pub struct H2Slot<C> {
    conn: Rc<H2Conn<C>>,
    /// The script's latest request bytes and their HTTP/2 form (parsed again only when the
    /// bytes change).
    scripted: Option<(Vec<u8>, H2Request)>,
}

impl<C> H2Slot<C> {
    /// A slot of `conn`.
    pub fn new(conn: Rc<H2Conn<C>>) -> H2Slot<C> {
        H2Slot {
            conn,
            scripted: None,
        }
    }
}

/// What a failed exchange returns: a request to send again keeps its slot of the plan (0
/// used, as `Exchange::exchange` requires), any other failure used its slot.
fn failed_slots(next: Next) -> (Next, u64) {
    let used = if matches!(next, Next::Resend) { 0 } else { 1 };
    (next, used)
}

/// How a request's stream failed, and so what the slot does next.
#[cold]
fn failed<C: Connector>(
    ctx: &ThreadCtx,
    conn: &H2Conn<C>,
    link: &H2Link,
    e: h2::Error,
    slot: Slot,
    out: &mut Out,
) -> Next {
    let thread = &conn.thread;
    let unprocessed = (e.is_go_away() && e.is_remote())
        || (e.is_reset() && e.is_remote() && e.reason() == Some(h2::Reason::REFUSED_STREAM));
    if e.is_reset() && e.is_remote() {
        thread.count(|e| &mut e.rst_stream);
        if e.reason() == Some(h2::Reason::REFUSED_STREAM) {
            thread.count(|e| &mut e.refused_stream);
        }
    }
    let stream_only = e.is_reset() && e.is_remote();
    if !stream_only {
        conn.dead(link.gen);
    }
    // Not processed by the server (RFC 9113 §8.7): sent again once.
    if unprocessed && !slot.again {
        *out = Out::NONE;
        return Next::Resend;
    }
    let reason = if stream_only {
        ReadReason::Reset
    } else if e.is_io() || e.is_go_away() {
        ReadReason::Closed
    } else {
        ReadReason::Io
    };
    let mut stats = ctx.stats.borrow_mut();
    stats.error(ctx.now(), |e| &mut e.read);
    stats.errors.read_reasons.count(reason);
    if stream_only {
        Next::Keep
    } else {
        Next::Reconnect
    }
}

impl<C: Connector> Exchange for H2Slot<C> {
    type Link = H2Link;

    async fn open(&mut self, ctx: &ThreadCtx) -> io::Result<H2Link> {
        if let Some(l) = self.conn.link() {
            return Ok(l);
        }
        let _opening = self.conn.opening.lock().await;
        if let Some(l) = self.conn.link() {
            return Ok(l);
        }
        let (io, o) = self.conn.connector.connect(ctx.addr).await?;
        ctx.stats
            .borrow_mut()
            .record_connect(o.connect_ns, o.tls_ns);
        self.conn.handshake(io).await
    }

    fn fresh(&mut self) {}

    /// The connection's slots leave together (they share its turns): the first to leave
    /// forgets the connection, which closes once the last slot has dropped its link.
    fn leave(&mut self) {
        self.conn.live.borrow_mut().take();
    }

    async fn exchange<H: Hooks>(
        &mut self,
        ctx: &ThreadCtx,
        link: &mut H2Link,
        hooks: &mut H,
        mut timer: Pin<&mut Sleep>,
        timer_ns: &mut u64,
        slot: Slot,
        times: &mut Times,
        out: &mut Out,
    ) -> (Next, u64) {
        let Slot { intended, free, .. } = slot;
        let scripted = if slot.again {
            hooks.last_request()
        } else {
            match hooks.request() {
                Ok(r) => r,
                Err(Stop) => return (Next::Stop, 1),
            }
        };
        let (req, body) = match scripted {
            None => {
                let t = &self.conn.thread.request;
                (t.build(), t.body.clone())
            }
            Some(r) => {
                let same = matches!(&self.scripted, Some((b, _)) if *b == r.bytes);
                if !same {
                    let base = &self.conn.thread.request.uri;
                    let scheme = base.scheme_str().unwrap_or("http");
                    let authority = base.authority().map_or("", |a| a.as_str());
                    match H2Request::parse(&r.bytes, scheme, authority) {
                        Ok(p) => self.scripted = Some((r.bytes.clone(), p)),
                        Err(_) => {
                            ctx.error(|e| &mut e.write);
                            return (Next::Keep, 1);
                        }
                    }
                }
                let t = &self.scripted.as_ref().expect("parsed above").1;
                (t.build(), t.body.clone())
            }
        };
        let sent = ctx.now();
        times.sent = sent;
        *out = Out {
            intended,
            held: 1,
            left: 1,
            sent,
        };
        let deadline_ns = sent.saturating_add(ctx.timeout_ns).min(ctx.cut_ns);
        if deadline_ns < *timer_ns {
            *timer_ns = deadline_ns;
            timer.as_mut().reset(ctx.instant_at(deadline_ns));
        }
        let conn = &*self.conn;
        // Ready at once unless this handle's previous stream still waits to open.
        let ready = std::future::poll_fn(|cx| link.send.poll_ready(cx));
        let sent_on = match before(ctx, ready, timer.as_mut(), timer_ns, deadline_ns).await {
            Some(Ok(())) => link.send.send_request(req, body.is_none()),
            Some(Err(e)) => Err(e),
            None => {
                let now = ctx.now();
                times.done = now;
                return (deadline_missed(ctx, intended, sent, now, 1), 1);
            }
        };
        let (response, mut tx) = match sent_on {
            Ok(r) => r,
            // The connection has gone (a GOAWAY, an error): nothing of this request was sent,
            // so it is sent again on a new one, once.
            Err(e) => {
                conn.dead(link.gen);
                if !slot.again {
                    *out = Out::NONE;
                    return (Next::Resend, 0);
                }
                return failed_slots(failed(ctx, conn, link, e, slot, out));
            }
        };
        if let Some(b) = body {
            // A failure shows in the response.
            let _ = tx.send_data(b, true);
        }
        // h2 says nothing of when its frames are written: sending ends when the request (and
        // its body) has been handed over, that is, when these calls return.
        let wrote = ctx.now();
        let res = before(ctx, response, timer.as_mut(), timer_ns, deadline_ns).await;
        // The head's arrival: the kernel receive time of the connection's latest read, which
        // brought it (or a later frame: errs late).
        let head_rx = conn.rx.get();
        let res = match res {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                times.done = ctx.now();
                return failed_slots(failed(ctx, conn, link, e, slot, out));
            }
            None => {
                let now = ctx.now();
                times.done = now;
                return (deadline_missed(ctx, intended, sent, now, 1), 1);
            }
        };
        if !link.checked {
            // The server's SETTINGS came before any response on this connection.
            link.checked = true;
            let max = link.send.current_max_send_streams();
            let thread = &conn.thread;
            if max < thread.streams {
                let m = max as u64;
                thread
                    .clamp
                    .set(Some(thread.clamp.get().map_or(m, |c| c.min(m))));
            }
        }
        let status = res.status().as_u16();
        let (parts, mut recv) = res.into_parts();
        let wants = hooks.sink().wants();
        if wants {
            let fields: Vec<httparse::Header<'_>> = parts
                .headers
                .iter()
                .map(|(k, v)| httparse::Header {
                    name: k.as_str(),
                    value: v.as_bytes(),
                })
                .collect();
            hooks.sink().head(status, &fields);
        }
        // The body, until its end: seen with its last chunk (END_STREAM on the frame), so that
        // the stream is not polled once more for it.
        while !recv.is_end_stream() {
            let data = std::future::poll_fn(|cx| recv.poll_data(cx));
            match before(ctx, data, timer.as_mut(), timer_ns, deadline_ns).await {
                Some(None) => break,
                Some(Some(Ok(chunk))) => {
                    // A closed stream's unreleased data is released by h2 when the stream is
                    // dropped (`release_closed_capacity`): only an open one's is released here.
                    if !recv.is_end_stream() {
                        let _ = recv.flow_control().release_capacity(chunk.len());
                    }
                    if wants {
                        hooks.sink().body(&chunk);
                    }
                }
                Some(Some(Err(e))) => {
                    times.done = ctx.now();
                    return failed_slots(failed(ctx, conn, link, e, slot, out));
                }
                None => {
                    let now = ctx.now();
                    times.done = now;
                    return (deadline_missed(ctx, intended, sent, now, 1), 1);
                }
            }
        }
        let now_abs = mono_ns();
        let now = now_abs.saturating_sub(ctx.t0);
        let arrived = |rx: Option<u64>| {
            let at = rxtime::to_monotonic(rx?, now_abs)?.saturating_sub(ctx.t0);
            (at >= sent).then_some(at.min(now))
        };
        let done = arrived(conn.rx.get()).unwrap_or(now);
        times.done = done;
        // The breakdown, each phase kept within its neighbours so that they add up to the
        // uncorrected latency.
        let wrote = wrote.clamp(sent, done);
        let first = arrived(head_rx).unwrap_or(done).clamp(wrote, done);
        let mut stats = ctx.stats.borrow_mut();
        stats.record(intended, free, sent, done, status);
        stats.record_phases(wrote - sent, first - wrote, done - first);
        drop(stats);
        out.left = 0;
        if hooks.response().is_err() {
            return (Next::Stop, 1);
        }
        if hooks.stopped() {
            (Next::Stop, 1)
        } else {
            (Next::Keep, 1)
        }
    }
}
