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

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{self, Head};
use super::hpack::{self, Decoder};
use crate::conn::error::ReadError;
use crate::conn::rxtime::TimedRead;
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

    /// Handles the frames in `buf` (whole frames only); returns how many bytes it used, or
    /// `Err` after a connection error.
    fn frames(&mut self, buf: &[u8]) -> Result<usize, ()> {
        let mut at = 0;
        while buf.len() - at >= frame::HEADER {
            let h = Head::parse(&buf[at..]);
            if h.len > frame::DEFAULT_MAX_FRAME {
                self.protocol_error(frame::FRAME_SIZE_ERROR);
                return Err(());
            }
            if buf.len() - at < frame::HEADER + h.len {
                break;
            }
            let p = &buf[at + frame::HEADER..at + frame::HEADER + h.len];
            at += frame::HEADER + h.len;
            if let Err(code) = self.frame(h, p) {
                self.protocol_error(code);
                return Err(());
            }
        }
        Ok(at)
    }

    /// One frame; `Err` with the error code of a connection error.
    fn frame(&mut self, h: Head, p: &[u8]) -> Result<(), u32> {
        if !self.settings_seen && h.kind != frame::SETTINGS {
            return Err(frame::PROTOCOL_ERROR);
        }
        if self.block.is_some() && h.kind != frame::CONTINUATION {
            return Err(frame::PROTOCOL_ERROR);
        }
        match h.kind {
            frame::DATA => self.data(h, p),
            frame::HEADERS => self.headers(h, p),
            frame::CONTINUATION => {
                let (stream, end_stream) = self.block.ok_or(frame::PROTOCOL_ERROR)?;
                if h.stream != stream {
                    return Err(frame::PROTOCOL_ERROR);
                }
                self.block_buf.extend_from_slice(p);
                if h.flags & frame::END_HEADERS != 0 {
                    self.block = None;
                    let block = std::mem::take(&mut self.block_buf);
                    let r = self.header_block(stream, &block, end_stream);
                    self.block_buf = block;
                    self.block_buf.clear();
                    r?;
                }
                Ok(())
            }
            frame::PRIORITY => Ok(()),
            frame::RST_STREAM => {
                if p.len() != 4 || h.stream == 0 {
                    return Err(frame::PROTOCOL_ERROR);
                }
                let code = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                if let Some(&slot) = self.ids.get(&h.stream) {
                    self.finish(slot, Outcome::Reset(code));
                }
                Ok(())
            }
            frame::SETTINGS => self.settings(h, p),
            frame::PUSH_PROMISE => Err(frame::PROTOCOL_ERROR),
            frame::PING => {
                if p.len() != 8 || h.stream != 0 {
                    return Err(frame::PROTOCOL_ERROR);
                }
                if h.flags & frame::ACK == 0 {
                    frame::put_head(&mut self.out, 8, frame::PING, frame::ACK, 0);
                    self.out.extend_from_slice(p);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if p.len() < 8 || h.stream != 0 {
                    return Err(frame::PROTOCOL_ERROR);
                }
                let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & frame::MAX_STREAM_ID;
                let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                self.goaway_last = self.goaway_last.min(last);
                if !matches!(self.end, Some(End::Error(_))) {
                    self.end = Some(End::Goaway(code));
                }
                let above: Vec<usize> = self
                    .ids
                    .iter()
                    .filter(|(&id, _)| id > self.goaway_last)
                    .map(|(_, &s)| s)
                    .collect();
                for slot in above {
                    self.finish(slot, Outcome::Unprocessed);
                }
                for slot in std::mem::take(&mut self.waiting) {
                    if let Some(w) = self.streams[slot].waker.take() {
                        w.wake();
                    }
                }
                Ok(())
            }
            frame::WINDOW_UPDATE => {
                if p.len() != 4 {
                    return Err(frame::FRAME_SIZE_ERROR);
                }
                let inc = (u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff) as i64;
                if h.stream == 0 {
                    if inc == 0 {
                        return Err(frame::PROTOCOL_ERROR);
                    }
                    self.send_window += inc;
                    if self.send_window > frame::MAX_STREAM_ID as i64 {
                        return Err(frame::FLOW_CONTROL_ERROR);
                    }
                } else if let Some(&slot) = self.ids.get(&h.stream) {
                    self.streams[slot].send_window += inc;
                }
                if !self.pending.is_empty() {
                    self.resume_bodies();
                }
                Ok(())
            }
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn settings(&mut self, h: Head, p: &[u8]) -> Result<(), u32> {
        if h.stream != 0 {
            return Err(frame::PROTOCOL_ERROR);
        }
        if h.flags & frame::ACK != 0 {
            return if p.is_empty() {
                Ok(())
            } else {
                Err(frame::FRAME_SIZE_ERROR)
            };
        }
        if !p.len().is_multiple_of(6) {
            return Err(frame::FRAME_SIZE_ERROR);
        }
        self.settings_seen = true;
        for e in p.chunks_exact(6) {
            let id = u16::from_be_bytes([e[0], e[1]]);
            let v = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
            match id {
                frame::SETTINGS_MAX_CONCURRENT_STREAMS => {
                    self.max_open = v as usize;
                    self.server_max = Some(v as u64);
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    if v > frame::MAX_STREAM_ID {
                        return Err(frame::FLOW_CONTROL_ERROR);
                    }
                    let delta = v as i64 - self.initial_send_window;
                    self.initial_send_window = v as i64;
                    for &slot in self.ids.values() {
                        self.streams[slot].send_window += delta;
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..=(1 << 24) - 1).contains(&v) {
                        return Err(frame::PROTOCOL_ERROR);
                    }
                    self.max_frame = v as usize;
                }
                // Lowered: the table is emptied by the next block and no longer used.
                frame::SETTINGS_HEADER_TABLE_SIZE if (v as usize) < self.enc_max => {
                    self.enc_max = 0;
                    self.enc_update = Some(0);
                }
                // Push is off; the rest is advice.
                _ => {}
            }
        }
        frame::put_head(&mut self.out, 0, frame::SETTINGS, frame::ACK, 0);
        // A raised limit lets waiting slots open their streams.
        while self.ids.len() < self.max_open {
            let Some(slot) = self.waiting.pop_front() else {
                break;
            };
            if let Some(w) = self.streams[slot].waker.take() {
                w.wake();
            }
        }
        if !self.pending.is_empty() {
            self.resume_bodies();
        }
        Ok(())
    }

    fn data(&mut self, h: Head, p: &[u8]) -> Result<(), u32> {
        if h.stream == 0 {
            return Err(frame::PROTOCOL_ERROR);
        }
        // The whole payload counts against the windows, padding included.
        let n = p.len() as u32;
        self.recv_used += n;
        if self.recv_used >= WINDOW / 2 {
            frame::put_window_update(&mut self.out, 0, self.recv_used);
            self.recv_used = 0;
        }
        let body = unpad(h, p)?;
        let Some(&slot) = self.ids.get(&h.stream) else {
            return Ok(());
        };
        let end = h.flags & frame::END_STREAM != 0;
        let rx = self.rx;
        let s = &mut self.streams[slot];
        if s.status == 0 {
            // DATA before the response head: the stream is malformed (RFC 9113 §8.1.1).
            frame::put_rst(&mut self.out, h.stream, frame::PROTOCOL_ERROR);
            self.finish(slot, Outcome::Reset(frame::PROTOCOL_ERROR));
            return Ok(());
        }
        if s.wants {
            s.data.extend_from_slice(body);
        }
        if end {
            s.end_rx = rx;
            self.finish(slot, Outcome::Done);
        } else {
            s.recv_used += n;
            if s.recv_used >= WINDOW / 2 {
                let inc = std::mem::take(&mut s.recv_used);
                frame::put_window_update(&mut self.out, h.stream, inc);
            }
        }
        Ok(())
    }

    fn headers(&mut self, h: Head, p: &[u8]) -> Result<(), u32> {
        if h.stream == 0 {
            return Err(frame::PROTOCOL_ERROR);
        }
        let mut frag = unpad(h, p)?;
        if h.flags & frame::PRIORITY_FLAG != 0 {
            frag = frag.get(5..).ok_or(frame::PROTOCOL_ERROR)?;
        }
        let end_stream = h.flags & frame::END_STREAM != 0;
        if h.flags & frame::END_HEADERS == 0 {
            self.block = Some((h.stream, end_stream));
            self.block_buf.clear();
            self.block_buf.extend_from_slice(frag);
            return Ok(());
        }
        self.header_block(h.stream, frag, end_stream)
    }

    /// A whole header block of `stream`: a response head (1xx ones skipped), or trailers.
    fn header_block(&mut self, stream: u32, block: &[u8], end_stream: bool) -> Result<(), u32> {
        let slot = self.ids.get(&stream).copied();
        let rx = self.rx;
        let State { hpack, streams, .. } = self;
        let s = slot.map(|i| &mut streams[i]);
        // The block is decoded whatever the stream, to keep the table as the server's encoder.
        let (all, first) = match &s {
            Some(s) => (s.wants && s.status == 0, s.status == 0),
            None => (false, false),
        };
        let status = match s {
            Some(s) if all => {
                s.fields.clear();
                s.spans.clear();
                let (f, sp) = (&mut s.fields, &mut s.spans);
                hpack.decode(block, true, |n, v| {
                    f.extend_from_slice(n);
                    f.extend_from_slice(v);
                    sp.push((n.len() as u32, v.len() as u32));
                })
            }
            _ => hpack.decode(block, false, |_, _| {}),
        }
        .map_err(|_: hpack::HpackError| frame::COMPRESSION_ERROR)?;
        let Some(slot) = slot else {
            return Ok(());
        };
        let s = &mut self.streams[slot];
        if first {
            if (100..200).contains(&status) {
                // An interim response: the final one follows.
                if end_stream {
                    frame::put_rst(&mut self.out, stream, frame::PROTOCOL_ERROR);
                    self.finish(slot, Outcome::Reset(frame::PROTOCOL_ERROR));
                } else if s.wants {
                    s.fields.clear();
                    s.spans.clear();
                }
                return Ok(());
            }
            if status == 0 {
                frame::put_rst(&mut self.out, stream, frame::PROTOCOL_ERROR);
                self.finish(slot, Outcome::Reset(frame::PROTOCOL_ERROR));
                return Ok(());
            }
            s.status = status;
            s.head_rx = rx;
        } else if !end_stream {
            // Trailers end the stream.
            frame::put_rst(&mut self.out, stream, frame::PROTOCOL_ERROR);
            self.finish(slot, Outcome::Reset(frame::PROTOCOL_ERROR));
            return Ok(());
        }
        if end_stream {
            let s = &mut self.streams[slot];
            s.end_rx = rx;
            self.finish(slot, Outcome::Done);
        }
        Ok(())
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

/// A padded frame's payload without its padding.
fn unpad(h: Head, p: &[u8]) -> Result<&[u8], u32> {
    if h.flags & frame::PADDED == 0 {
        return Ok(p);
    }
    let pad = *p.first().ok_or(frame::PROTOCOL_ERROR)? as usize;
    if pad + 1 > p.len() {
        return Err(frame::PROTOCOL_ERROR);
    }
    Ok(&p[1..p.len() - pad])
}

/// The connection's task: reads and writes `io` until the connection ends, and says how;
/// `on_read` is told the size of every read.
pub async fn run<S>(wire: Rc<Wire>, mut io: S, on_read: impl Fn(u64)) -> End
where
    S: AsyncRead + AsyncWrite + TimedRead + Unpin,
{
    let mut rbuf: Vec<u8> = vec![0; READ_BUF];
    let mut filled = 0usize;
    // A TLS stream may hold written records until flushed.
    let mut unflushed = false;
    std::future::poll_fn(|cx| {
        let st = &mut *wire.st.borrow_mut();
        // Read everything that arrived.
        if !matches!(st.end, Some(End::Error(_))) {
            loop {
                let mut rb = ReadBuf::new(&mut rbuf[filled..]);
                match Pin::new(&mut io).poll_read(cx, &mut rb) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => {
                        st.fail(End::Error(ReadError::Io(e).reason()));
                        break;
                    }
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            st.fail(End::Error(ReadReason::Closed));
                            break;
                        }
                        on_read(n as u64);
                        if let Some(at) = io.last_rx() {
                            st.rx = Some(at);
                        }
                        filled += n;
                        match st.frames(&rbuf[..filled]) {
                            Ok(used) => {
                                rbuf.copy_within(used..filled, 0);
                                filled -= used;
                            }
                            Err(()) => break,
                        }
                    }
                }
            }
        }
        // Write what the slots and the frames read queued.
        while st.wpos < st.out.len() {
            match Pin::new(&mut io).poll_write(cx, &st.out[st.wpos..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    st.fail(End::Error(ReadReason::Io));
                    st.out.clear();
                    st.wpos = 0;
                    break;
                }
                Poll::Ready(Ok(n)) => {
                    unflushed = true;
                    st.wrote(n);
                }
                Poll::Pending => break,
            }
        }
        if unflushed && Pin::new(&mut io).poll_flush(cx).is_ready() {
            unflushed = false;
        }
        // Done when the slots are gone, at a connection error, or once the streams still
        // allowed to finish (below a GOAWAY's last id, or before the ids ran out) have.
        let done = st.users == 0
            || match st.end {
                Some(End::Error(_)) => true,
                Some(End::Goaway(_)) | Some(End::Closed) => st.ids.is_empty(),
                None => false,
            };
        if done {
            let end = *st.end.get_or_insert(End::Closed);
            return Poll::Ready(end);
        }
        match &st.task {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.task = Some(cx.waker().clone()),
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of a server's first flight: SETTINGS, then a response to stream 1.
    fn server_flight(max_streams: Option<u32>) -> Vec<u8> {
        let mut b = Vec::new();
        match max_streams {
            Some(m) => frame::put_settings(&mut b, &[(frame::SETTINGS_MAX_CONCURRENT_STREAMS, m)]),
            None => frame::put_settings(&mut b, &[]),
        }
        b
    }

    fn response(b: &mut Vec<u8>, stream: u32, body: &[u8]) {
        let mut block = Vec::new();
        hpack::put_field_indexed(&mut block, b":status", b"200");
        hpack::put_field(&mut block, b"x-a", b"1");
        frame::put_headers(b, stream, &block, body.is_empty(), 16_384);
        if !body.is_empty() {
            frame::put_head(b, body.len(), frame::DATA, frame::END_STREAM, stream);
            b.extend_from_slice(body);
        }
    }

    fn send(w: &Wire, slot: usize, wants: bool) {
        let blocks = hpack::Blocks::new([(&b":method"[..], &b"GET"[..])]);
        w.send(slot, &blocks, false, None, wants).unwrap();
    }

    #[test]
    fn responses_end_their_streams_and_are_kept_when_wanted() {
        let w = Wire::new(2);
        send(&w, 0, true);
        send(&w, 1, false);
        let mut b = server_flight(None);
        response(&mut b, 3, b"");
        response(&mut b, 1, b"hello");
        let mut st = w.st.borrow_mut();
        // Split anywhere: only whole frames are used.
        let used = st.frames(&b[..b.len() - 3]).unwrap();
        assert!(used < b.len());
        assert_eq!(st.streams[1].outcome, Some(Outcome::Done));
        assert_eq!(st.streams[0].outcome, None);
        let used2 = st.frames(&b[used..]).unwrap();
        assert_eq!(used + used2, b.len());
        assert_eq!(st.streams[0].outcome, Some(Outcome::Done));
        assert_eq!(st.streams[0].status, 200);
        assert_eq!(st.streams[0].data, b"hello");
        assert!(st.streams[1].data.is_empty() && st.streams[1].spans.is_empty());
        assert!(st.ids.is_empty());
        drop(st);
        let mut seen = Vec::new();
        w.take_response(0, |f, body| {
            seen = f
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect();
            assert_eq!(body, b"hello");
        });
        assert_eq!(seen, vec![("x-a".to_string(), b"1".to_vec())]);
        // The SETTINGS were acknowledged.
        let out = &w.st.borrow().out;
        assert!(out
            .windows(9)
            .any(|f| f == [0, 0, 0, frame::SETTINGS, frame::ACK, 0, 0, 0, 0]));
    }

    #[test]
    fn a_goaway_fails_the_streams_above_its_last_id_and_refuses_new_ones() {
        let w = Wire::new(3);
        for s in 0..3 {
            send(&w, s, false);
        }
        let mut b = server_flight(None);
        frame::put_goaway(&mut b, 3, frame::NO_ERROR);
        response(&mut b, 1, b"x");
        let mut st = w.st.borrow_mut();
        st.frames(&b).unwrap();
        assert_eq!(st.streams[0].outcome, Some(Outcome::Done));
        assert_eq!(st.streams[1].outcome, None);
        assert_eq!(st.streams[2].outcome, Some(Outcome::Unprocessed));
        drop(st);
        let waker = futures_noop();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(w.poll_open(2, &mut cx), Poll::Ready(Err(End::Goaway(0))));
    }

    #[test]
    fn the_servers_stream_limit_holds_slots_back() {
        let w = Wire::new(3);
        let mut st = w.st.borrow_mut();
        st.frames(&server_flight(Some(1))).unwrap();
        drop(st);
        let waker = futures_noop();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(w.poll_open(0, &mut cx), Poll::Ready(Ok(())));
        send(&w, 0, false);
        assert_eq!(w.poll_open(1, &mut cx), Poll::Pending);
        assert_eq!(w.server_max(), Some(1));
        let mut b = Vec::new();
        frame::put_rst(&mut b, 1, frame::REFUSED_STREAM);
        w.st.borrow_mut().frames(&b).unwrap();
        assert_eq!(
            w.st.borrow().streams[0].outcome,
            Some(Outcome::Reset(frame::REFUSED_STREAM))
        );
        assert_eq!(w.poll_open(1, &mut cx), Poll::Ready(Ok(())));
    }

    #[test]
    fn bodies_wait_for_the_servers_windows() {
        let w = Wire::new(1);
        let mut st = w.st.borrow_mut();
        st.frames(&server_flight(None)).unwrap();
        drop(st);
        let body = Bytes::from(vec![b'b'; 70_000]);
        let blocks = hpack::Blocks::new([(&b":method"[..], &b"POST"[..])]);
        assert_eq!(w.send(0, &blocks, false, Some(&body), false), Ok(true));
        let st = w.st.borrow();
        assert_eq!(st.send_window, 0);
        assert!(st.streams[0].body.is_some());
        assert!(st.unwritten.is_empty());
        drop(st);
        let mut b = Vec::new();
        frame::put_window_update(&mut b, 0, 10_000);
        frame::put_window_update(&mut b, 1, 10_000);
        w.st.borrow_mut().frames(&b).unwrap();
        let st = w.st.borrow();
        assert!(st.streams[0].body.is_none());
        assert_eq!(st.unwritten.len(), 1);
        assert_eq!(st.send_window, 65_535 + 10_000 - 70_000);
    }

    #[test]
    fn an_early_response_cancels_the_rest_of_the_body() {
        let w = Wire::new(1);
        w.st.borrow_mut().frames(&server_flight(None)).unwrap();
        let body = Bytes::from(vec![b'b'; 70_000]);
        let blocks = hpack::Blocks::new([(&b":method"[..], &b"POST"[..])]);
        assert_eq!(w.send(0, &blocks, false, Some(&body), false), Ok(true));
        let mut b = Vec::new();
        response(&mut b, 1, b"");
        let mut st = w.st.borrow_mut();
        st.frames(&b).unwrap();
        assert_eq!(st.streams[0].outcome, Some(Outcome::Done));
        assert!(st.streams[0].body.is_none() && st.pending.is_empty());
        let mut rst = Vec::new();
        frame::put_rst(&mut rst, 1, frame::CANCEL);
        assert!(st.out.ends_with(&rst));
    }

    #[test]
    fn frames_before_settings_and_oversized_ones_are_connection_errors() {
        let w = Wire::new(1);
        send(&w, 0, false);
        let mut b = Vec::new();
        response(&mut b, 1, b"");
        assert!(w.st.borrow_mut().frames(&b).is_err());
        assert_eq!(
            w.st.borrow().streams[0].outcome,
            Some(Outcome::Lost(ReadReason::Io))
        );
        let w = Wire::new(1);
        let mut b = server_flight(None);
        frame::put_head(&mut b, 20_000, frame::DATA, 0, 1);
        assert!(w.st.borrow_mut().frames(&b).is_err());
    }

    /// The run's request indexes its fields once the server's SETTINGS are in, and refers to
    /// them after; a server that lowers its table size gets a size update and plain blocks.
    #[test]
    fn the_runs_request_uses_the_servers_table_while_it_may() {
        let blocks = hpack::Blocks::new([(&b":authority"[..], &b"h:1"[..])]);
        let sent = |w: &Wire, slot: usize| {
            let mut st = w.st.borrow_mut();
            st.out.clear();
            st.wpos = 0;
            drop(st);
            w.send(slot, &blocks, true, None, false).unwrap();
            w.st.borrow().out[frame::HEADER..].to_vec()
        };
        let w = Wire::new(4);
        assert_eq!(sent(&w, 0), blocks.plain);
        w.st.borrow_mut().frames(&server_flight(None)).unwrap();
        assert_eq!(sent(&w, 1), blocks.first);
        assert_eq!(sent(&w, 2), blocks.steady);
        let mut b = Vec::new();
        frame::put_settings(&mut b, &[(frame::SETTINGS_HEADER_TABLE_SIZE, 0)]);
        w.st.borrow_mut().frames(&b).unwrap();
        let mut want = vec![0x20];
        want.extend_from_slice(&blocks.plain);
        assert_eq!(sent(&w, 3), want);
    }

    fn futures_noop() -> Waker {
        Waker::noop().clone()
    }
}
