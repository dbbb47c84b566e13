//! One HTTP/2 client connection's state and its task (RFC 9113): the streams of its slots,
//! the frames read and written, flow control, SETTINGS, PING, RST_STREAM and GOAWAY.
//!
//! A connection is a [`Wire`] shared (on one thread: `Rc`, `RefCell`) by its stream slots and
//! its task ([`run`]). A slot opens a stream and appends its request's frames to the output
//! buffer ([`Wire::send`]), then waits for its stream's end ([`Wire::poll_outcome`]). The
//! task reads what arrived, frame by frame, into the streams' state (waking their slots), and
//! writes the output buffer: the requests of every slot that ran since its last turn go out
//! in one write.
//!
//! This file holds the state and the slots' side of it; `recv` handles the frames read, and
//! `task` is the connection's I/O.
//!
//! - **Flow control**: the client opens every window at 2^30 − 1 (as h2load) and gives the
//!   connection's and each stream's back in WINDOW_UPDATEs once half of it is used; request
//!   bodies are sent within the server's windows, the rest when it opens them.
//! - **Times**: the kernel receive time of the read that brought a stream's response head,
//!   and of the one that brought its end, and when the write that carried its request's last
//!   byte returned.
//! - **Ends**: a GOAWAY lets the streams at or below its last stream id finish and fails
//!   those above it as unprocessed; a connection error (a protocol error, the socket closed
//!   or failing) fails every open stream.
//!
//! Hand-written rather than on the `h2` crate: this is every HTTP/2 request's path, and h2's
//! general-purpose machinery (a header map per response with every field decoded, shared
//! stream state behind a mutex, `Bytes` per frame) cost loadgen about twice h2load's CPU per
//! request (docs/http2.md). Here a response that nobody reads costs the parsing of its
//! frames, the fields the server indexes, and no allocation.

mod recv;
mod task;
#[cfg(test)]
mod tests;

pub use task::run;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::frame;
use super::hpack::{self, Decoder};
use crate::pacer::mono_ns;
use crate::read_errors::ReadReason;

/// The windows the client opens (h2load's): a response never waits for a WINDOW_UPDATE.
pub const WINDOW: u32 = (1 << 30) - 1;

/// The read buffer's size: several frames of the largest size the client allows.
const READ_BUF: usize = 64 * 1024;

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server sent GOAWAY (with this error code).
    Goaway(u32),
    /// A connection error: the socket closed, failed, or the server broke the protocol.
    Error(ReadReason),
    /// The client closed it: its slots left, or its stream ids ran out.
    Closed,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its response is complete.
    Done,
    /// The server reset it with this error code.
    Reset(u32),
    /// Above a GOAWAY's last stream id: the server did not process it.
    Unprocessed,
    /// Its connection ended under it.
    Lost(ReadReason),
}

/// A slot's stream, from its request's send to its outcome.
#[derive(Default)]
struct Stream {
    /// The stream id (0: no stream open).
    id: u32,
    /// Set when the stream ended.
    outcome: Option<Outcome>,
    /// The final response's status, once its head is in.
    status: u16,
    /// Kernel receive times (CLOCK_REALTIME ns) of the reads that brought the head and the end.
    head_rx: Option<u64>,
    end_rx: Option<u64>,
    /// When the write carrying the request's last byte returned (`mono_ns`; 0: not yet).
    wrote: u64,
    /// The slot waiting on this stream.
    waker: Option<Waker>,
    /// The request body not yet sent (flow control), from this offset.
    body: Option<(Bytes, usize)>,
    /// The server's window for this stream.
    send_window: i64,
    /// Bytes received on the stream and not yet given back.
    recv_used: u32,
    /// Whether the slot reads the response (a script): its fields and body are kept.
    wants: bool,
    /// The response's fields (names and values back to back) and each one's name and value
    /// lengths; the body.
    fields: Vec<u8>,
    spans: Vec<(u32, u32)>,
    data: Vec<u8>,
}

/// The identity hash of stream ids (distinct small integers: nothing to defend against).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("stream ids hash as u32")
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = v as u64;
    }
}

struct State {
    /// Frames to write, from `wpos`.
    out: Vec<u8>,
    wpos: usize,
    /// Bytes written before `out[0]` (with `wpos`: the output's history).
    flushed: u64,
    /// Requests in the output, in order, waiting to be written: their slot, stream id and
    /// where their last byte is in the output's history.
    unwritten: VecDeque<(usize, u32, u64)>,
    /// The task, to wake when there is something to write or it should end.
    task: Option<Waker>,
    streams: Vec<Stream>,
    /// Open stream ids and their slots.
    ids: HashMap<u32, usize, BuildHasherDefault<IdHasher>>,
    next_id: u32,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says).
    max_open: usize,
    server_max: Option<u64>,
    /// Slots waiting for a stream to open.
    waiting: VecDeque<usize>,
    /// Slots whose body waits for the server's windows.
    pending: Vec<usize>,
    send_window: i64,
    initial_send_window: i64,
    max_frame: usize,
    /// Bytes received on the connection and not yet given back.
    recv_used: u32,
    /// Set when no stream may open any more: a GOAWAY, an error, or the ids ran out.
    end: Option<End>,
    /// The highest stream id a GOAWAY let finish.
    goaway_last: u32,
    /// The handles on this connection (its slots' links).
    users: usize,
    /// The kernel receive time of the latest read.
    rx: Option<u64>,
    hpack: Decoder,
    /// A header block continued in CONTINUATION frames: its stream, END_STREAM, and bytes.
    block: Option<(u32, bool)>,
    block_buf: Vec<u8>,
    /// The server's first frame (its SETTINGS) was read.
    settings_seen: bool,
    /// The encoder's dynamic table size (the server's SETTINGS_HEADER_TABLE_SIZE; 0 once it
    /// lowered it: the client then stops indexing), and a size update the next block must
    /// begin with (RFC 7541 §4.2).
    enc_max: usize,
    enc_update: Option<usize>,
    /// The run's request's first block went out on this connection: its fields are in the
    /// server's table.
    indexed: bool,
}

/// One HTTP/2 connection, shared by its slots and its task.
pub struct Wire {
    st: RefCell<State>,
}

/// The client's SETTINGS: no push, 2^30 − 1 stream windows; the connection's window is opened
/// by a WINDOW_UPDATE.
fn preface(out: &mut Vec<u8>) {
    out.extend_from_slice(frame::PREFACE);
    frame::put_settings(
        out,
        &[
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, WINDOW),
        ],
    );
    frame::put_window_update(out, 0, WINDOW - frame::DEFAULT_WINDOW as u32);
}

impl Wire {
    /// A connection for `slots` stream slots; its preface is the first output.
    pub fn new(slots: usize) -> Rc<Wire> {
        let mut out = Vec::with_capacity(16 * 1024);
        preface(&mut out);
        Rc::new(Wire {
            st: RefCell::new(State {
                out,
                wpos: 0,
                flushed: 0,
                unwritten: VecDeque::new(),
                task: None,
                streams: (0..slots).map(|_| Stream::default()).collect(),
                ids: HashMap::default(),
                next_id: 1,
                max_open: usize::MAX,
                server_max: None,
                waiting: VecDeque::new(),
                pending: Vec::new(),
                send_window: frame::DEFAULT_WINDOW,
                initial_send_window: frame::DEFAULT_WINDOW,
                max_frame: frame::DEFAULT_MAX_FRAME,
                recv_used: 0,
                end: None,
                goaway_last: frame::MAX_STREAM_ID,
                users: 0,
                rx: None,
                hpack: Decoder::default(),
                block: None,
                block_buf: Vec::new(),
                settings_seen: false,
                enc_max: hpack::TABLE_SIZE,
                enc_update: None,
                indexed: false,
            }),
        })
    }

    /// A handle more on the connection.
    pub fn hold(&self) {
        self.st.borrow_mut().users += 1;
    }

    /// A handle less; the last one gone ends the connection.
    pub fn release(&self) {
        let mut st = self.st.borrow_mut();
        st.users -= 1;
        if st.users == 0 {
            if let Some(w) = st.task.take() {
                w.wake();
            }
        }
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS are in.
    pub fn server_max(&self) -> Option<u64> {
        self.st.borrow().server_max
    }

    /// Ready when `slot` may open a stream: `Ok` to send now, `Err` when the connection takes
    /// no more streams (nothing was sent: the request may go on another).
    pub fn poll_open(&self, slot: usize, cx: &mut Context<'_>) -> Poll<Result<(), End>> {
        let mut st = self.st.borrow_mut();
        if let Some(e) = st.end {
            return Poll::Ready(Err(e));
        }
        if st.ids.len() < st.max_open {
            return Poll::Ready(Ok(()));
        }
        st.streams[slot].waker = Some(cx.waker().clone());
        if !st.waiting.contains(&slot) {
            st.waiting.push_back(slot);
        }
        Poll::Pending
    }

    /// Opens `slot`'s stream and queues its request: its header blocks (`indexed`: the run's
    /// own request, which may use the server's table once the server's SETTINGS are in) and
    /// body. `wants`: the response's fields and body are kept for [`Wire::take_response`].
    /// Call after [`Wire::poll_open`] said `Ok`. `Ok(true)`: the body did not fit the server's
    /// flow-control windows, and the rest waits until it opens them (a flow-control stall).
    pub fn send(
        &self,
        slot: usize,
        blocks: &hpack::Blocks,
        indexed: bool,
        body: Option<&Bytes>,
        wants: bool,
    ) -> Result<bool, End> {
        let st = &mut *self.st.borrow_mut();
        if let Some(e) = st.end {
            return Err(e);
        }
        let id = st.next_id;
        if id > frame::MAX_STREAM_ID {
            st.end = Some(End::Closed);
            st.wake_task();
            return Err(End::Closed);
        }
        st.next_id = id + 2;
        if let Some(i) = st.waiting.iter().position(|&s| s == slot) {
            st.waiting.remove(i);
        }
        st.ids.insert(id, slot);
        let initial = st.initial_send_window;
        let s = &mut st.streams[slot];
        s.id = id;
        s.outcome = None;
        s.status = 0;
        s.head_rx = None;
        s.end_rx = None;
        s.wrote = 0;
        s.send_window = initial;
        s.recv_used = 0;
        s.wants = wants;
        s.fields.clear();
        s.spans.clear();
        s.data.clear();
        let body = body.filter(|b| !b.is_empty());
        let block = if !indexed || !st.settings_seen || blocks.table > st.enc_max {
            &blocks.plain
        } else if st.indexed {
            &blocks.steady
        } else {
            st.indexed = true;
            &blocks.first
        };
        match st.enc_update.take() {
            None => frame::put_headers(&mut st.out, id, block, body.is_none(), st.max_frame),
            Some(size) => {
                let mut b = Vec::with_capacity(block.len() + 4);
                hpack::put_integer(&mut b, 0x20, 5, size);
                b.extend_from_slice(block);
                frame::put_headers(&mut st.out, id, &b, body.is_none(), st.max_frame);
            }
        }
        let stalled = match body {
            None => {
                st.queued(slot);
                false
            }
            Some(b) => {
                st.streams[slot].body = Some((b.clone(), 0));
                st.send_body(slot);
                st.streams[slot].body.is_some()
            }
        };
        st.wake_task();
        Ok(stalled)
    }

    /// Ready with `slot`'s stream's outcome once it ended.
    pub fn poll_outcome(&self, slot: usize, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut st = self.st.borrow_mut();
        let s = &mut st.streams[slot];
        match s.outcome {
            Some(o) => Poll::Ready(o),
            None => {
                match &s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// `slot`'s ended stream: its status, the kernel receive times of its head and end
    /// (CLOCK_REALTIME ns), and when its request's write returned (`mono_ns`, 0 if unknown).
    pub fn times(&self, slot: usize) -> (u16, Option<u64>, Option<u64>, u64) {
        let st = self.st.borrow();
        let s = &st.streams[slot];
        (s.status, s.head_rx, s.end_rx, s.wrote)
    }

    /// Gives `f` the ended stream's response fields (pseudo-fields left out) and body.
    pub fn take_response(&self, slot: usize, f: impl FnOnce(&[httparse::Header<'_>], &[u8])) {
        let st = self.st.borrow();
        let s = &st.streams[slot];
        let mut at = 0usize;
        let mut fields = Vec::with_capacity(s.spans.len());
        for &(n, v) in &s.spans {
            let (n, v) = (n as usize, v as usize);
            let name = &s.fields[at..at + n];
            let value = &s.fields[at + n..at + n + v];
            at += n + v;
            if let Ok(name) = std::str::from_utf8(name) {
                if !name.starts_with(':') {
                    fields.push(httparse::Header { name, value });
                }
            }
        }
        f(&fields, &s.data);
    }

    /// Gives up `slot`'s open stream (its deadline passed): RST_STREAM(CANCEL), and what
    /// arrives for it later is dropped.
    pub fn cancel(&self, slot: usize) {
        let st = &mut *self.st.borrow_mut();
        let s = &mut st.streams[slot];
        if s.outcome.is_some() || s.id == 0 {
            return;
        }
        let id = s.id;
        s.outcome = Some(Outcome::Lost(ReadReason::Closed));
        s.body = None;
        s.waker = None;
        st.pending.retain(|&p| p != slot);
        st.close(id);
        if st.end.is_none() || matches!(st.end, Some(End::Goaway(_))) {
            frame::put_rst(&mut st.out, id, frame::CANCEL);
            st.wake_task();
        }
    }
}

impl State {
    fn wake_task(&mut self) {
        if let Some(w) = self.task.take() {
            w.wake();
        }
    }

    /// `slot`'s request is whole in the output: its write is waited for.
    fn queued(&mut self, slot: usize) {
        let end = self.flushed + self.out.len() as u64;
        self.unwritten.push_back((slot, self.streams[slot].id, end));
    }

    /// Sends what the windows allow of `slot`'s body.
    fn send_body(&mut self, slot: usize) {
        let max_frame = self.max_frame;
        let s = &mut self.streams[slot];
        let Some((body, mut off)) = s.body.take() else {
            return;
        };
        let id = s.id;
        while off < body.len() {
            let room = self.send_window.min(s.send_window).min(max_frame as i64);
            if room <= 0 {
                break;
            }
            let n = (room as usize).min(body.len() - off);
            let last = off + n == body.len();
            frame::put_head(
                &mut self.out,
                n,
                frame::DATA,
                if last { frame::END_STREAM } else { 0 },
                id,
            );
            self.out.extend_from_slice(&body[off..off + n]);
            off += n;
            self.send_window -= n as i64;
            s.send_window -= n as i64;
        }
        if off < body.len() {
            s.body = Some((body, off));
            if !self.pending.contains(&slot) {
                self.pending.push(slot);
            }
        } else {
            self.pending.retain(|&p| p != slot);
            self.queued(slot);
        }
    }

    /// The windows opened: the waiting bodies go on.
    fn resume_bodies(&mut self) {
        for slot in std::mem::take(&mut self.pending) {
            self.send_body(slot);
        }
    }

    /// Stream `id` is no longer open: its slot's place goes to a waiting slot.
    fn close(&mut self, id: u32) {
        self.ids.remove(&id);
        if let Some(next) = self.waiting.pop_front() {
            if let Some(w) = self.streams[next].waker.take() {
                w.wake();
            }
        }
    }

    /// Ends `slot`'s stream with `o` and wakes its slot. A complete response that came before
    /// all of the request's body was sent ends the stream for the client too: the rest is not
    /// sent, and RST_STREAM (CANCEL) says so, so that the server need not keep the stream open
    /// for it (RFC 9113 §8.1 lets a server answer early; its own RST_STREAM may cross ours).
    fn finish(&mut self, slot: usize, o: Outcome) {
        let s = &mut self.streams[slot];
        s.outcome = Some(o);
        let abandoned = s.body.take().is_some();
        let id = s.id;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        if abandoned && o == Outcome::Done {
            frame::put_rst(&mut self.out, id, frame::CANCEL);
        }
        self.pending.retain(|&p| p != slot);
        self.close(id);
    }

    /// The connection cannot go on: every open stream is lost, every waiting slot told.
    fn fail(&mut self, e: End) {
        if self.end.is_none() || matches!(self.end, Some(End::Goaway(_))) {
            self.end = Some(e);
        }
        let lost = match e {
            End::Error(r) => r,
            _ => ReadReason::Closed,
        };
        let open: Vec<usize> = self.ids.values().copied().collect();
        for slot in open {
            self.finish(slot, Outcome::Lost(lost));
        }
        for slot in std::mem::take(&mut self.waiting) {
            if let Some(w) = self.streams[slot].waker.take() {
                w.wake();
            }
        }
    }

    /// A protocol error: GOAWAY with `code`, and the connection ends.
    fn protocol_error(&mut self, code: u32) {
        let last = self.next_id.saturating_sub(2);
        frame::put_goaway(&mut self.out, last, code);
        self.fail(End::Error(ReadReason::Io));
    }

    /// `n` more bytes written: the requests now wholly written get their write time.
    fn wrote(&mut self, n: usize) {
        self.wpos += n;
        let written = self.flushed + self.wpos as u64;
        let mut now = 0;
        while let Some(&(slot, id, end)) = self.unwritten.front() {
            if end > written {
                break;
            }
            if now == 0 {
                now = mono_ns();
            }
            let s = &mut self.streams[slot];
            if s.id == id {
                s.wrote = now;
            }
            self.unwritten.pop_front();
        }
        if self.wpos == self.out.len() {
            self.flushed += self.wpos as u64;
            self.out.clear();
            self.wpos = 0;
        }
    }
}
