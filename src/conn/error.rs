//! Why a response could not be read: [`ReadError`] (what the reader returns) and the
//! [`ReadReason`] each comes down to (the reasons and their counters are `crate::read_errors`,
//! which the statistics keep without depending on the connection code).

pub use crate::read_errors::{ReadReason, ReadReasons};

/// The largest response head (status line and header fields) the reader accepts, in bytes.
/// Any number of header fields fits within it; wrk2's parser stops at 80 KB, curl's at 100 KB,
/// Go's client at 10 MB. A head beyond this is a [`ReadReason::HeadTooLarge`] error.
pub const MAX_HEAD: usize = 1024 * 1024;

/// What went wrong while reading a response.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The socket (or the TLS layer over it) failed.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes were not a complete, valid HTTP/1.x response.
    #[error("{}", .0.describe())]
    Response(ReadReason),
}

impl ReadError {
    /// The reason this error counts under.
    pub fn reason(&self) -> ReadReason {
        match self {
            ReadError::Response(r) => *r,
            ReadError::Io(e) => match e.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => ReadReason::Reset,
                // rustls: the peer closed without close_notify, mid-response.
                std::io::ErrorKind::UnexpectedEof => ReadReason::Closed,
                // rustls reports its own failures (bad record, alert) as invalid data.
                std::io::ErrorKind::InvalidData => ReadReason::Tls,
                _ => ReadReason::Io,
            },
        }
    }
}

impl From<ReadReason> for ReadError {
    fn from(r: ReadReason) -> Self {
        ReadError::Response(r)
    }
}
