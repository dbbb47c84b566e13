//! The connection's task: it reads what arrived (handing it to the state, which wakes the
//! slots whose streams ended) and writes what the slots and the frames read queued, in one
//! write a turn.

use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{End, Wire, READ_BUF};
use crate::conn::error::ReadError;
use crate::conn::rxtime::TimedRead;
use crate::read_errors::ReadReason;

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
