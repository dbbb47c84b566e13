//! HTTP/2 frames (RFC 9113 §4, §6): the nine-byte frame header, the frame types, flags,
//! settings and error codes the client uses, and appending the frames it sends to a
//! connection's output buffer.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame header's length.
pub const HEADER: usize = 9;

/// Frame types.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// Settings (RFC 9113 §6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// Error codes (RFC 9113 §7).
#[cfg(test)]
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;

/// The largest frame payload either side may send before SETTINGS_MAX_FRAME_SIZE says more
/// (the client never says more).
pub const DEFAULT_MAX_FRAME: usize = 16_384;

/// The flow-control window every stream and connection opens with.
pub const DEFAULT_WINDOW: i64 = 65_535;

/// The largest stream id.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// A frame's header.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads a frame header from the first nine bytes of `b`.
    #[inline]
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize,
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_STREAM_ID,
        }
    }
}

/// Appends a frame header.
#[inline]
pub fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len < 1 << 24);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Appends a SETTINGS frame with these settings.
pub fn put_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for &(id, v) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a WINDOW_UPDATE frame.
pub fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends a RST_STREAM frame.
pub fn put_rst(out: &mut Vec<u8>, stream: u32, code: u32) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a GOAWAY frame.
pub fn put_goaway(out: &mut Vec<u8>, last: u32, code: u32) {
    put_head(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&last.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a header block as a HEADERS frame and as many CONTINUATION frames as
/// `max_frame` needs.
pub fn put_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let es = if end_stream { END_STREAM } else { 0 };
    let mut chunks = block.chunks(max_frame.max(1)).peekable();
    let first = chunks.next().unwrap_or(&[]);
    let eh = if chunks.peek().is_none() {
        END_HEADERS
    } else {
        0
    };
    put_head(out, first.len(), HEADERS, es | eh, stream);
    out.extend_from_slice(first);
    while let Some(c) = chunks.next() {
        let eh = if chunks.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        put_head(out, c.len(), CONTINUATION, eh, stream);
        out.extend_from_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_split_into_continuations() {
        let mut out = Vec::new();
        put_headers(&mut out, 3, &[7u8; 10], true, 4);
        let h = Head::parse(&out);
        assert_eq!(
            (h.len, h.kind, h.flags, h.stream),
            (4, HEADERS, END_STREAM, 3)
        );
        let h = Head::parse(&out[13..]);
        assert_eq!((h.len, h.kind, h.flags), (4, CONTINUATION, 0));
        let h = Head::parse(&out[26..]);
        assert_eq!((h.len, h.kind, h.flags), (2, CONTINUATION, END_HEADERS));
        assert_eq!(out.len(), 3 * HEADER + 10);
        out.clear();
        put_headers(&mut out, 5, &[1, 2], false, 16_384);
        let h = Head::parse(&out);
        assert_eq!(
            (h.len, h.kind, h.flags, h.stream),
            (2, HEADERS, END_HEADERS, 5)
        );
    }
}
