//! Kernel receive timestamps: when a response's last bytes reached the socket, rather than when
//! the generator got round to reading them.
//!
//! A response that arrives while the worker thread is asleep, or busy with other connections,
//! sits in the socket until the thread wakes up and reads it. Timing the response by the clock
//! read after that would add the generator's own wake-up latency and scheduling delay to the
//! server's latency — tens of microseconds when idle in a VM, far more when the generator's CPU
//! is busy. Linux timestamps every received packet when a socket asks for it
//! (`SO_TIMESTAMPING` with `SOF_TIMESTAMPING_RX_SOFTWARE`) and `recvmsg` returns the timestamp
//! of the last packet it read; for a response whose last bytes were read in that call, that is
//! the instant the response was complete. Written by hand (a `recvmsg` with one control
//! message) because tokio and socket2 expose no receive timestamps; this is the product's
//! measurement core.
//!
//! Over TLS the socket under rustls is a [`Stamped`] stream, which keeps the timestamp of its
//! latest read; a decrypted response is timed by the latest ciphertext received when it
//! completed. The built-in server reads through a [`Stamped`] stream too, to time each request
//! from its arrival ([`Stamped::publishing`]).

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Implements `AsyncWrite` for a wrapper `$t` (with generics `[$g]`) by forwarding every call
/// to its field `$f`: the wrappers here (this module's [`Stamped`], HTTP/2's counting reader)
/// change how a socket is read, never how it is written.
macro_rules! forward_async_write {
    ([$($g:tt)*] $t:ty, $f:ident) => {
        impl<$($g)*> tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.get_mut().$f), cx, buf)
            }
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write_vectored(
                    std::pin::Pin::new(&mut self.get_mut().$f),
                    cx,
                    bufs,
                )
            }
            fn is_write_vectored(&self) -> bool {
                tokio::io::AsyncWrite::is_write_vectored(&self.$f)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.get_mut().$f), cx)
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut self.get_mut().$f), cx)
            }
        }
    };
}

use crate::pacer::{clock_ns, mono_ns};

/// A stream whose reads can say when the kernel received the bytes they returned.
pub trait TimedRead: AsyncRead + Unpin {
    /// Reads into `buf` like `AsyncRead::read`; also returns the kernel's receive timestamp of
    /// the last byte read, as it gave it (CLOCK_REALTIME ns: [`to_monotonic`] converts it),
    /// when it knows. The default knows nothing.
    fn read_timed<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, Option<u64>)>> + 'a {
        async move { Ok((self.read(buf).await?, None)) }
    }

    /// Whether the peer has closed this idle connection (or sent bytes nobody asked for, such
    /// as a 408 before closing), as far as the event loop already knows: never a wait. The
    /// default knows nothing.
    fn closed_while_idle(&mut self) -> bool {
        false
    }

    /// When the bytes of the latest read arrived (CLOCK_REALTIME ns, as the kernel said), for
    /// a reader that reads through `AsyncRead` (HTTP/2's connection task). The default knows
    /// nothing.
    fn last_rx(&self) -> Option<u64> {
        None
    }
}

impl TimedRead for TlsStream<Stamped> {
    fn last_rx(&self) -> Option<u64> {
        self.get_ref().0.last
    }

    async fn read_timed(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
        let n = self.read(buf).await?;
        // The latest ciphertext read: at or after the arrival of what was just decrypted.
        Ok((n, self.get_ref().0.last))
    }
}

/// A TCP stream for rustls to read from: each read is a `recvmsg` that keeps the kernel's
/// receive timestamp of what it returned.
pub struct Stamped {
    tcp: TcpStream,
    /// When the bytes of the latest read arrived (CLOCK_REALTIME ns, as the kernel said), if
    /// known.
    last: Option<u64>,
    /// Where [`Stamped::publishing`] shares each read's arrival time (0: not known).
    sink: Option<Arc<AtomicU64>>,
}

impl Stamped {
    /// Wraps `tcp`, asking the kernel to timestamp what it receives.
    pub fn new(tcp: TcpStream) -> Stamped {
        enable(&tcp);
        Stamped {
            tcp,
            last: None,
            sink: None,
        }
    }

    /// Like [`Stamped::new`], and each read that returns bytes stores when they arrived
    /// (CLOCK_MONOTONIC ns, 0 when the kernel gave no timestamp) in `sink`, for whoever handles
    /// what was read.
    pub fn publishing(tcp: TcpStream, sink: Arc<AtomicU64>) -> Stamped {
        let mut s = Stamped::new(tcp);
        s.sink = Some(sink);
        s
    }
}

impl TimedRead for Stamped {
    async fn read_timed(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
        let n = self.read(buf).await?;
        Ok((n, self.last))
    }

    fn last_rx(&self) -> Option<u64> {
        self.last
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.tcp.poll_read_ready(cx))?;
            match try_recv(&this.tcp, buf.initialize_unfilled()) {
                Ok((n, at)) => {
                    buf.advance(n);
                    if at.is_some() {
                        this.last = at;
                    }
                    if let (Some(sink), true) = (&this.sink, n > 0) {
                        let mono = at.and_then(|at| to_monotonic(at, mono_ns()));
                        sink.store(mono.unwrap_or(0), Ordering::Relaxed);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

forward_async_write!([] Stamped, tcp);

/// One non-blocking stamped read from `tcp` (WouldBlock when it has nothing; tokio then waits
/// for readiness). After a short read, which emptied the socket (as tokio's own read assumes,
/// with epoll), it drops the readiness without a system call, so the next read waits for new
/// data instead of first failing with EAGAIN: the edge-triggered epoll reports anything that
/// arrives later, and tokio keeps a read-closed state when clearing.
fn try_recv(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let fd = tcp.as_raw_fd();
    let len = buf.len();
    let (n, at) = tcp.try_io(Interest::READABLE, || recv(fd, buf))?;
    if 0 < n && n < len {
        let _ = tcp.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
    Ok((n, at))
}

impl TimedRead for TcpStream {
    /// A peek, made only when the socket's readiness (already known to the event loop, no
    /// system call) says it has something: an idle connection normally does not, since each
    /// response's read ends on a short read that drops the readiness (`try_recv`).
    fn closed_while_idle(&mut self) -> bool {
        let fd = self.as_raw_fd();
        let peeked = self.try_io(Interest::READABLE, || {
            let mut b = 0u8;
            // SAFETY: recv writes at most one byte into `b`.
            let n = unsafe {
                libc::recv(
                    fd,
                    (&mut b as *mut u8).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n)
            }
        });
        match peeked {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }

    async fn read_timed(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
        loop {
            // The stream's own readiness slot, not `readable()`: that future queues a waiter
            // node under the registration's lock on every wait, about 150 instructions more a
            // response (callgrind); a connection has one task, so the single slot suffices.
            std::future::poll_fn(|cx| self.poll_read_ready(cx)).await?;
            match try_recv(self, buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

/// Asks the kernel to timestamp the packets this socket receives. Returns whether it agreed;
/// without it, reads simply return no timestamp. When no socket on the machine had asked
/// before, the kernel turns timestamping on from a work queue, so the first packets may still
/// come unstamped; the engine's probe connection, opened before any load, asks first.
pub fn enable(s: &TcpStream) -> bool {
    let flags: libc::c_int =
        (libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE) as libc::c_int;
    // SAFETY: a valid socket descriptor and an int option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            &flags as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Room for one `SCM_TIMESTAMPING` control message (three timespecs), 8-byte aligned.
#[repr(C, align(8))]
struct Control([u8; 64]);

/// One non-blocking `recvmsg` into `buf`, returning the byte count and the receive time of the
/// last packet read (CLOCK_REALTIME ns, as the kernel gives it) if the kernel attached one.
fn recv(fd: libc::c_int, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = Control([0; 64]);
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: fd is an open socket; msg points at a live iovec and control buffer.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut at = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, bounded by
    // msg_controllen; the timestamp payload is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPING {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                if ts.tv_sec > 0 {
                    at = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, at))
}

/// How often each thread re-reads the offset between CLOCK_REALTIME and CLOCK_MONOTONIC, ns.
/// The offset moves only when NTP slews the real-time clock (at most 500 ppm: 0.5 µs a
/// millisecond) or steps it (which [`to_monotonic`] notices).
const OFFSET_REFRESH_NS: u64 = 1_000_000;

thread_local! {
    /// This thread's latest (CLOCK_MONOTONIC ns when read, CLOCK_REALTIME − CLOCK_MONOTONIC ns).
    static OFFSET: std::cell::Cell<(u64, i128)> = const { std::cell::Cell::new((0, 0)) };
}

/// Converts a kernel receive timestamp (CLOCK_REALTIME ns) to CLOCK_MONOTONIC ns, given the
/// monotonic `now` (which the caller reads anyway, to time the read). The offset between the
/// clocks is cached per thread and re-read once a millisecond, so a response costs no clock
/// reads of its own. `None` when the result is implausible (in the future, or more than 1000 s
/// old: the real-time clock was stepped since the packet came); the caller then times the
/// response by `now`.
pub fn to_monotonic(real_ns: u64, now: u64) -> Option<u64> {
    let (read_at, mut offset) = OFFSET.get();
    if read_at == 0 || now.wrapping_sub(read_at) > OFFSET_REFRESH_NS {
        offset = real_minus_mono();
        OFFSET.set((mono_ns(), offset));
    }
    let mono = real_ns as i128 - offset;
    let age = now as i128 - mono;
    // 1 µs of tolerance for the offset's own reading error.
    if !(-1_000..1_000_000_000_000).contains(&age) {
        // Maybe the clock was stepped within the last millisecond: read the offset again.
        OFFSET.set((0, 0));
        return None;
    }
    Some(mono.min(now as i128).max(0) as u64)
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC now, ns: the real-time clock read between two monotonic
/// reads, against their midpoint.
fn real_minus_mono() -> i128 {
    let before = mono_ns();
    let real = real_ns();
    let after = mono_ns();
    real as i128 - (before as i128 + after as i128) / 2
}

/// Current CLOCK_REALTIME time in nanoseconds (the clock the kernel's receive stamps use).
pub fn real_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Real-time stamps convert to the monotonic clock by the cached offset; a stamp from the
    /// future (a stepped clock) is refused.
    #[test]
    fn converts_real_time_stamps() {
        for _ in 0..3 {
            let real = real_ns();
            let now = mono_ns();
            let at = to_monotonic(real - 5_000_000, now).expect("a plausible stamp");
            let age = now - at;
            assert!((4_900_000..5_100_000).contains(&age), "{age}");
            assert_eq!(to_monotonic(real + 1_000_000_000, now), None);
            // Not newer than `now`, whatever the offset's reading error.
            assert!(to_monotonic(real, now).unwrap() <= now);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// A response that waits in the socket is timed by its arrival, not by the late read.
    #[test]
    fn read_reports_when_the_bytes_arrived() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let (mut s, _) = l.accept().await.unwrap();
            assert!(enable(&c));
            let mut buf = [0u8; 64];
            // The first socket to ask makes the kernel start timestamping received packets,
            // from a work queue, so packets in the first moments may have no stamp (reads then
            // fall back to the clock). Retry until one has.
            let mut stamped = None;
            for _ in 0..50 {
                let sent = mono_ns();
                s.write_all(b"hello").await.unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
                let (n, at) = c.read_timed(&mut buf).await.unwrap();
                let read = mono_ns();
                assert_eq!(&buf[..n], b"hello");
                if let Some(at) = at.and_then(|at| to_monotonic(at, read)) {
                    stamped = Some((sent, at, read));
                    break;
                }
            }
            let (sent, at, read) = stamped.expect("a receive timestamp");
            assert!(at >= sent - 1_000_000, "{at} vs {sent}");
            // Arrived within a few ms of the write, read 20 ms later.
            assert!(read - at >= 15_000_000, "{}", read - at);
            // Nothing more to read: the next read waits rather than failing.
            s.write_all(b"!").await.unwrap();
            let (n, _) = c.read_timed(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"!");
        });
    }
}
