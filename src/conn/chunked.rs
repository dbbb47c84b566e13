//! `Transfer-Encoding: chunked` bodies: a small state machine fed whatever slices of the stream
//! the socket delivers, which counts (and, for a script, hands on) the data and stops exactly
//! after the last chunk's trailer section, so that a pipelined next response stays unread.

use super::error::ReadReason;

/// Decoder state for `Transfer-Encoding: chunked`, fed arbitrary slices of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chunked {
    /// Reading the hex size (and any extension) up to CRLF.
    #[default]
    Size,
    /// Skipping an extension after the size, up to LF.
    SizeLine,
    /// Inside a chunk's data with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: reading trailer lines until an empty one.
    Trailer { line_len: usize },
    /// Complete.
    Done,
}

/// Progress of [`ChunkedDecoder::feed`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ChunkedDecoder {
    state: Chunked,
    size: u64,
    digits: u8,
}

impl ChunkedDecoder {
    /// Feeds bytes; returns how many were consumed. The body is complete when
    /// [`ChunkedDecoder::done`] is true (consumed bytes past that point are not taken).
    /// `data` receives each run of body bytes, for callers that want the body.
    pub fn feed(&mut self, buf: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, ReadReason> {
        let mut i = 0;
        while i < buf.len() {
            match self.state {
                Chunked::Size => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (b as char).to_digit(16).unwrap() as u64;
                            self.digits += 1;
                            if self.digits > 15 {
                                return Err(ReadReason::Chunked);
                            }
                            self.size = self.size * 16 + d;
                        }
                        b'\r' | b';' | b' ' | b'\t' => self.state = Chunked::SizeLine,
                        b'\n' => self.end_size_line()?,
                        _ => return Err(ReadReason::Chunked),
                    }
                }
                Chunked::SizeLine => {
                    if buf[i] == b'\n' {
                        self.end_size_line()?;
                    }
                    i += 1;
                }
                Chunked::Data(left) => {
                    let n = (left as usize).min(buf.len() - i);
                    data(&buf[i..i + n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                }
                Chunked::DataEnd => {
                    match buf[i] {
                        b'\r' => {}
                        b'\n' => self.state = Chunked::Size,
                        _ => return Err(ReadReason::Chunked),
                    }
                    i += 1;
                }
                Chunked::Trailer { line_len } => {
                    let b = buf[i];
                    i += 1;
                    match b {
                        b'\n' if line_len == 0 => {
                            self.state = Chunked::Done;
                            return Ok(i);
                        }
                        b'\n' => self.state = Chunked::Trailer { line_len: 0 },
                        b'\r' => {}
                        _ => {
                            self.state = Chunked::Trailer {
                                line_len: line_len + 1,
                            }
                        }
                    }
                }
                Chunked::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn end_size_line(&mut self) -> Result<(), ReadReason> {
        if self.digits == 0 {
            return Err(ReadReason::Chunked);
        }
        self.state = if self.size == 0 {
            Chunked::Trailer { line_len: 0 }
        } else {
            Chunked::Data(self.size)
        };
        self.size = 0;
        self.digits = 0;
        Ok(())
    }

    /// Whether the terminating chunk and trailers have been read.
    pub fn done(&self) -> bool {
        self.state == Chunked::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_decoder_collects_data() {
        let mut d = ChunkedDecoder::default();
        let mut got = Vec::new();
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        let used = d.feed(input, |b| got.extend_from_slice(b)).unwrap();
        assert!(d.done());
        assert_eq!(&input[used..], b"NEXT");
        assert_eq!(got, b"abcde");
        assert!(ChunkedDecoder::default().feed(b"zz\r\n", |_| {}).is_err());
    }
}
