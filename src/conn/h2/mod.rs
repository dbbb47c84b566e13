//! HTTP/2's exchange, on loadgen's own HTTP/2 client ([`wire`]): a connection ([`H2Conn`])
//! is shared by its `--streams` slots, each of which follows its own plan through the one slot
//! driver ([`super::drive`]) and sends one request at a time on a handle ([`H2Link`]) to the
//! connection. The connection's frames are read and written by a task of its own
//! ([`wire::run`]), spawned on the thread's `LocalSet`.
//!
//! - **Flow control.** Both windows are 2^30 − 1 (as h2load's), so a response never waits for
//!   a WINDOW_UPDATE.
//! - **Streams.** A server whose SETTINGS_MAX_CONCURRENT_STREAMS is below `--streams` clamps
//!   them: the slots beyond it wait for a free stream (their waits count in their corrected
//!   latencies), and the lowest such setting is reported (`Stats::h2_streams_clamp`).
//! - **Errors**, counted by kind ([`crate::record::H2Errors`]), and the run goes on: a stream
//!   the server resets (RST_STREAM) fails its request, the connection stays; REFUSED_STREAM,
//!   and a stream above a GOAWAY's last stream id, were not processed and are sent again once
//!   (RFC 9113 §8.7); a GOAWAY, or any other connection error, ends the connection, and the
//!   next request opens a new one.
//! - **Times.** A request is sent when it is handed to the connection, and its sending ends
//!   when the write that carried its last byte returned. Its first response byte is the
//!   kernel's receive time (`rxtime`) of the read that brought its response head, its last
//!   that of the read that brought its end, each kept between the previous phase's end and
//!   the time it was seen.
//! - **Bytes** counted are the connection's socket bytes (frames included).

mod frame;
pub mod hpack;
mod huffman;
pub mod wire;

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};

use tokio::time::Sleep;

use super::connect::Connector;
use super::exchange::{before, Slot, Times};
pub use super::h2req::H2Request;
use super::hooks::{Hooks, Stop};
use super::http1::ResponseSink;
use super::proto::Exchange;
use super::rxtime;
use super::unfinished::{deadline_missed, Out};
use super::{error::ReadReason, Next, ThreadCtx};
use crate::pacer::mono_ns;
use crate::record::H2Errors;
use wire::{End, Outcome, Wire};

pub use wire::WINDOW;

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

/// A slot's handle on its connection; the connection ends when the last is dropped.
pub struct H2Link {
    wire: Rc<Wire>,
    /// Which of the connection's successive sockets this is.
    gen: u64,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS was looked at.
    checked: bool,
}

impl H2Link {
    fn new(wire: Rc<Wire>, gen: u64) -> H2Link {
        wire.hold();
        H2Link {
            wire,
            gen,
            checked: false,
        }
    }
}

impl Clone for H2Link {
    fn clone(&self) -> H2Link {
        let mut l = H2Link::new(self.wire.clone(), self.gen);
        l.checked = self.checked;
        l
    }
}

impl Drop for H2Link {
    fn drop(&mut self) {
        self.wire.release();
    }
}

/// One HTTP/2 connection, shared by its stream slots; reopened by the first slot that needs
/// it after it ended.
pub struct H2Conn<C> {
    connector: C,
    thread: Rc<H2Thread>,
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
            live: RefCell::new(None),
            gen: Cell::new(0),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts HTTP/2 on the open socket `io` (the preface and SETTINGS go out first; nothing
    /// is awaited from the server) and spawns its connection task on the thread's `LocalSet`.
    pub async fn handshake(self: &Rc<Self>, io: C::Stream) -> io::Result<H2Link> {
        let wire = Wire::new(self.thread.streams);
        let gen = self.gen.get() + 1;
        self.gen.set(gen);
        let me: Weak<H2Conn<C>> = Rc::downgrade(self);
        let thread = self.thread.clone();
        let task_wire = wire.clone();
        tokio::task::spawn_local(async move {
            let on_read = |n: u64| thread.bytes.set(thread.bytes.get() + n);
            let ended = wire::run(task_wire, io, on_read).await;
            // Gone: the slots ended and dropped the connection themselves.
            if let Some(me) = me.upgrade() {
                me.ended(gen, ended);
            }
        });
        let link = H2Link::new(wire, gen);
        *self.live.borrow_mut() = Some(link.clone());
        Ok(link)
    }

    /// The connection task of socket `gen` ended while its slots still wanted it: with a GOAWAY
    /// or a connection error (or closed by the client: not counted).
    #[cold]
    fn ended(&self, gen: u64, how: End) {
        self.dead(gen);
        match how {
            End::Goaway(_) => self.thread.count(|e| &mut e.goaway),
            End::Error(_) => self.thread.count(|e| &mut e.connection),
            End::Closed => {}
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

/// One stream slot of an HTTP/2 connection.
pub struct H2Slot<C> {
    conn: Rc<H2Conn<C>>,
    /// Which of the connection's stream slots this is.
    index: usize,
    /// The script's latest request bytes and their HTTP/2 form (parsed again only when the
    /// bytes change).
    scripted: Option<(Vec<u8>, H2Request)>,
}

impl<C> H2Slot<C> {
    /// Stream slot `index` of `conn`.
    pub fn new(conn: Rc<H2Conn<C>>, index: usize) -> H2Slot<C> {
        H2Slot {
            conn,
            index,
            scripted: None,
        }
    }
}

/// A request that failed on its stream or connection: counted, and what the slot does next
/// with how many slots of the plan it used (a request to send again keeps its slot).
#[cold]
fn failed<C: Connector>(
    ctx: &ThreadCtx,
    conn: &H2Conn<C>,
    link: &H2Link,
    how: Outcome,
    slot: Slot,
    out: &mut Out,
) -> (Next, u64) {
    let thread = &conn.thread;
    let (unprocessed, stream_only, reason) = match how {
        Outcome::Reset(code) => {
            thread.count(|e| &mut e.rst_stream);
            let refused = code == frame::REFUSED_STREAM;
            if refused {
                thread.count(|e| &mut e.refused_stream);
            }
            (refused, true, ReadReason::Reset)
        }
        Outcome::Unprocessed => (true, false, ReadReason::Closed),
        Outcome::Lost(r) => (false, false, r),
        Outcome::Done => unreachable!("a complete response did not fail"),
    };
    if !stream_only {
        conn.dead(link.gen);
    }
    // Not processed by the server (RFC 9113 §8.7): sent again once.
    if unprocessed && !slot.again {
        *out = Out::NONE;
        return (Next::Resend, 0);
    }
    let mut stats = ctx.stats.borrow_mut();
    stats.error(ctx.now(), |e| &mut e.read);
    stats.errors.read_reasons.count(reason);
    if stream_only {
        (Next::Keep, 1)
    } else {
        (Next::Reconnect, 1)
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
        // The run's own request may use the connection's table; a script's is sent plain.
        let (req, indexed) = match scripted {
            None => (&self.conn.thread.request, true),
            Some(r) => {
                let same = matches!(&self.scripted, Some((b, _)) if *b == r.bytes);
                if !same {
                    let base = &self.conn.thread.request;
                    match H2Request::parse(&r.bytes, &base.scheme, &base.authority) {
                        Ok(p) => self.scripted = Some((r.bytes.clone(), p)),
                        Err(_) => {
                            ctx.error(|e| &mut e.write);
                            return (Next::Keep, 1);
                        }
                    }
                }
                (&self.scripted.as_ref().expect("parsed above").1, false)
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
        let (wire, index) = (&*link.wire, self.index);
        let wants = hooks.sink().wants();
        // Ready at once unless the server's stream limit holds this slot back.
        let open = std::future::poll_fn(|cx| wire.poll_open(index, cx));
        let sent_on = match before(ctx, open, timer.as_mut(), timer_ns, deadline_ns).await {
            Some(Ok(())) => wire.send(index, &req.blocks, indexed, req.body.as_ref(), wants),
            Some(Err(e)) => Err(e),
            None => {
                let now = ctx.now();
                times.done = now;
                return (deadline_missed(ctx, intended, sent, now, 1), 1);
            }
        };
        if sent_on.is_err() {
            // The connection has gone (a GOAWAY, an error): nothing of this request was sent,
            // so it is sent again on a new one, once.
            conn.dead(link.gen);
            if !slot.again {
                *out = Out::NONE;
                return (Next::Resend, 0);
            }
            return failed(
                ctx,
                conn,
                link,
                Outcome::Lost(ReadReason::Closed),
                slot,
                out,
            );
        }
        if sent_on == Ok(true) {
            conn.thread.count(|e| &mut e.flow_control);
        }
        let ended = std::future::poll_fn(|cx| wire.poll_outcome(index, cx));
        match before(ctx, ended, timer.as_mut(), timer_ns, deadline_ns).await {
            Some(Outcome::Done) => {}
            Some(o) => {
                times.done = ctx.now();
                return failed(ctx, conn, link, o, slot, out);
            }
            None => {
                wire.cancel(index);
                let now = ctx.now();
                times.done = now;
                return (deadline_missed(ctx, intended, sent, now, 1), 1);
            }
        }
        let (status, head_rx, end_rx, wrote_abs) = wire.times(index);
        if !link.checked {
            // The server's SETTINGS came before any response on this connection.
            link.checked = true;
            let thread = &conn.thread;
            if let Some(max) = wire.server_max().filter(|&m| m < thread.streams as u64) {
                thread
                    .clamp
                    .set(Some(thread.clamp.get().map_or(max, |c| c.min(max))));
            }
        }
        let now_abs = mono_ns();
        let now = now_abs.saturating_sub(ctx.t0);
        let arrived = |rx: Option<u64>| {
            let at = rxtime::to_monotonic(rx?, now_abs)?.saturating_sub(ctx.t0);
            (at >= sent).then_some(at.min(now))
        };
        let done = arrived(end_rx).unwrap_or(now);
        times.done = done;
        // The breakdown, each phase kept within its neighbours so that they add up to the
        // uncorrected latency.
        let wrote = match wrote_abs {
            0 => done,
            w => w.saturating_sub(ctx.t0),
        }
        .clamp(sent, done);
        let first = arrived(head_rx).unwrap_or(done).clamp(wrote, done);
        let mut stats = ctx.stats.borrow_mut();
        stats.record(intended, free, sent, done, status);
        stats.record_phases(wrote - sent, first - wrote, done - first);
        drop(stats);
        out.left = 0;
        if wants {
            let sink = hooks.sink();
            wire.take_response(index, |fields, body| {
                sink.head(status, fields);
                sink.body(body);
            });
        }
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
