//! The floor under a fixed-rate HTTP/1.1 generator on one thread: the least CPU per request
//! any generator can spend sending `-R` requests a second over `-c` keep-alive connections,
//! for `scripts/bench.sh` to measure loadgen and wrk2 against.
//!
//! It does only what no generator can skip: one `send` and one `recv` per request, and one
//! sleep per tick (the same 750 µs tick as loadgen's coarse pacing) shared by that tick's
//! requests. It has no event loop (no `epoll`: each tick it reads every connection with a
//! request out, and by then the response is in), no clocks per request, no parsing (every
//! response must be as long as the first, which is what a static file gives), no histograms
//! and no error handling beyond stopping. Written by hand because it is a measuring stick, not
//! a product: nothing in `src/` uses it.
//!
//! Usage: `floor HOST:PORT PATH CONNECTIONS RATE SECONDS [TICK_US] [--stamp] [--epoll]`.
//! Prints wrk's `N requests in Ts` and `Requests/sec:` lines, and the system calls it made per
//! request. Two flags add back, one at a time, kernel work that loadgen does and the floor
//! skips, to tell how much of loadgen's cost above the floor is the kernel's: `--stamp` asks
//! for kernel receive timestamps (`SO_TIMESTAMPNS`, read with `recvmsg`, as loadgen times its
//! responses), `--epoll` registers the sockets with an edge-triggered epoll and polls it once
//! per tick (as tokio's reactor does).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use loadgen::pacer::{block_until, mono_ns};

fn main() {
    if let Err(e) = run() {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, name: &str) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {name}"))?
        .parse()
        .map_err(|_| format!("bad {name}: {:?}", args[i]))
}

/// The length of one whole response to `req` on `s` (blocking): its head plus Content-Length.
fn response_len(s: &mut TcpStream, req: &[u8]) -> Result<usize, String> {
    s.write_all(req).map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).map_err(|e| format!("recv: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let body: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .ok_or("the response has no Content-Length")?
            .trim()
            .parse()
            .map_err(|_| "bad Content-Length")?;
        let len = end + 4 + body;
        if buf.len() >= len {
            return Ok(len);
        }
    }
}

/// An epoll with `fds` registered edge-triggered for reading and writing, as tokio registers
/// its sockets. The descriptor is closed when the process exits.
fn new_epoll(fds: &[i32]) -> Result<i32, String> {
    // SAFETY: plain syscall.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(format!("epoll_create1: {}", io::Error::last_os_error()));
    }
    for (i, &fd) in fds.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: i as u64,
        };
        // SAFETY: valid descriptors and an event we own.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(format!("epoll_ctl: {}", io::Error::last_os_error()));
        }
    }
    Ok(ep)
}

fn run() -> Result<(), String> {
    let all: Vec<String> = std::env::args().collect();
    let stamp = all.iter().any(|a| a == "--stamp");
    let use_epoll = all.iter().any(|a| a == "--epoll");
    let args: Vec<String> = all.into_iter().filter(|a| !a.starts_with("--")).collect();
    let addr: String = arg(&args, 1, "HOST:PORT")?;
    let path: String = arg(&args, 2, "PATH")?;
    let conns: usize = arg(&args, 3, "CONNECTIONS")?;
    let rate: f64 = arg(&args, 4, "RATE")?;
    let secs: f64 = arg(&args, 5, "SECONDS")?;
    let tick: u64 = if args.len() > 6 {
        arg::<u64>(&args, 6, "TICK_US")? * 1000
    } else {
        750_000
    };
    if conns == 0 || rate <= 0.0 || secs <= 0.0 || tick == 0 {
        return Err("CONNECTIONS, RATE, SECONDS and TICK_US must be positive".into());
    }
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();

    let mut socks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = TcpStream::connect(&addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        socks.push(s);
    }
    let len = response_len(&mut socks[0], &req)?;
    for s in &socks {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let fds: Vec<i32> = socks.iter().map(|s| s.as_raw_fd()).collect();
    if stamp {
        for &fd in &fds {
            let on: libc::c_int = 1;
            // SAFETY: a valid socket and an int option we own.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(format!("SO_TIMESTAMPNS: {}", io::Error::last_os_error()));
            }
        }
    }
    let ep = if use_epoll { new_epoll(&fds)? } else { -1 };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; conns];
    let mut cmsg = [0u8; 64];

    // Connection i's k-th slot is at t0 + (k + i / conns) * gap; a slot is released at the
    // tick before it, once the connection's last response is in.
    let gap = conns as f64 / rate * 1e9;
    let mut next_k = vec![0u64; conns];
    let mut got = vec![0usize; conns];
    let mut out = vec![false; conns];
    let mut buf = vec![0u8; 65536];
    let (mut sent, mut done, mut calls) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let t0 = mono_ns();
    let end = t0 + (secs * 1e9) as u64;
    let mut tick_at = t0;
    while tick_at < end + tick {
        if use_epoll {
            // SAFETY: a valid epoll descriptor and an event buffer we own.
            unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), conns as i32, 0) };
            calls += 1;
        }
        // Responses first: every connection with a request out.
        for i in 0..conns {
            if !out[i] {
                continue;
            }
            let n = if stamp {
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = cmsg.as_mut_ptr().cast();
                msg.msg_controllen = cmsg.len();
                // SAFETY: a valid socket and a msghdr whose buffers we own.
                unsafe { libc::recvmsg(fds[i], &mut msg, libc::MSG_DONTWAIT) }
            } else {
                // SAFETY: a valid socket and a buffer we own.
                unsafe {
                    libc::recv(
                        fds[i],
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                }
            };
            calls += 1;
            if n == 0 {
                return Err("the server closed a connection".into());
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    continue;
                }
                return Err(format!("recv: {e}"));
            }
            got[i] += n as usize;
            if got[i] > len {
                return Err("a response longer than the first: not a static file?".into());
            }
            if got[i] == len {
                got[i] = 0;
                out[i] = false;
                done += 1;
            }
        }
        // Then the slots due before the next tick, on the connections that are free.
        let until = tick_at + tick;
        if tick_at < end {
            for i in 0..conns {
                let slot = t0 + ((next_k[i] as f64 + i as f64 / conns as f64) * gap) as u64;
                if out[i] || slot >= until || slot >= end {
                    continue;
                }
                // SAFETY: a valid socket and the request bytes we own.
                let n = unsafe {
                    libc::send(
                        fds[i],
                        req.as_ptr().cast(),
                        req.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                calls += 1;
                if n != req.len() as isize {
                    return Err(format!("send: {}", io::Error::last_os_error()));
                }
                next_k[i] += 1;
                out[i] = true;
                sent += 1;
            }
        }
        tick_at = until;
        block_until(tick_at);
        calls += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "floor: {conns} connections, {rate} req/s, {} us ticks{}{}",
        tick / 1000,
        if stamp { ", receive timestamps" } else { "" },
        if use_epoll { ", epoll" } else { "" },
    );
    println!("  {done} requests in {elapsed:.2}s ({sent} sent)");
    println!("Requests/sec: {:.2}", done as f64 / elapsed);
    println!(
        "System calls per request: {:.2}",
        calls as f64 / done.max(1) as f64
    );
    Ok(())
}
