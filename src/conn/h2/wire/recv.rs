//! The frames read from the server, into the connection's state: each frame by its type,
//! SETTINGS, DATA (its flow control), and header blocks (HPACK, CONTINUATION) that give a
//! stream its status, fields and end.

use super::{frame, hpack, End, Outcome, State, WINDOW};
use frame::Head;

impl State {
    /// Handles the frames in `buf` (whole frames only); returns how many bytes it used, or
    /// `Err` after a connection error.
    pub(super) fn frames(&mut self, buf: &[u8]) -> Result<usize, ()> {
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
