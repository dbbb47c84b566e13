//! Sub-millisecond pacing for one worker thread.
//!
//! tokio's timer wheel has a 1 ms resolution: a connection that sleeps until its slot wakes on
//! the next millisecond tick, so every request would be sent up to 1 ms late and, because the
//! latency is measured from the intended time, the generator's own timer slack would be recorded
//! as server latency (wrk2's flaw). Written by hand because no crate offers a precise timer that
//! lives inside a current-thread tokio runtime: each worker thread has one `timerfd`
//! (CLOCK_MONOTONIC, absolute expiry, nanosecond resolution) registered with tokio's reactor,
//! and a min-heap of the connections waiting on it. The timerfd is armed for the earliest
//! deadline only; when it fires, every connection whose slot has come is woken and the timer is
//! re-armed for the next one. Thread-local: no locks, no atomics, no allocation once the heap
//! has grown to the number of connections. Coarse pacing, which shares the heap but wakes once
//! per tick instead, is in `coarse.rs`.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::io::unix::AsyncFd;

mod coarse;
pub mod policy;
pub use coarse::{Awake, Task, DEFAULT_TICK_NS};

/// Deadlines closer than this to "now" are treated as due (the wake-up itself takes longer).
const SLACK_NS: u64 = 2_000;

/// Current CLOCK_MONOTONIC time in nanoseconds (the clock `std::time::Instant` uses on Linux).
#[inline]
pub fn mono_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Blocks the calling thread, outside any reactor, until `at` (absolute CLOCK_MONOTONIC ns);
/// a signal may end it early.
pub fn block_until(at: u64) {
    let ts = timespec(at);
    // SAFETY: plain syscall on a timespec we own.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Current time of `clock` in nanoseconds (a vDSO read, no system call, for the clocks used
/// here).
#[inline]
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Entry {
    due: u64,
    seq: u64,
    waker: Waker,
    /// Coarse pacing: this entry counts its task in [`Inner::asleep`] until it is popped.
    counted: bool,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

struct Inner {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Coarse pacing: connection tasks alive on this thread ([`Pacer::task`]).
    tasks: usize,
    /// Coarse pacing: how many of them sleep in the heap (see [`Pacer::ticks`]). Never more
    /// than are: a task counts once per [`Sleep`], from its first entry until that entry is
    /// popped.
    asleep: usize,
    /// The timerfd's next expiry (`u64::MAX`: disarmed).
    armed: u64,
    seq: u64,
}

/// A worker thread's timer. Create it inside the thread's runtime with [`Pacer::new`]
/// (precise) or [`Pacer::ticked`] (coarse), spawn [`Pacer::run`] or [`Pacer::ticks`] on the
/// thread's `LocalSet`, and await [`Pacer::sleep_until`].
pub struct Pacer {
    fd: AsyncFd<OwnedFd>,
    inner: RefCell<Inner>,
    /// Wake this long before a deadline and spin for the rest (0: never spin). Waking an idle
    /// CPU takes tens to hundreds of microseconds (far more in a VM); at low rates the engine
    /// buys that back with a short busy-wait, which costs little CPU there.
    spin: u64,
    /// The most a sleep may end before its deadline (0: never early).
    max_early: u64,
    /// How early sleeps end now: an estimate of this thread's wake-up latency (a running mean
    /// of how late the timer's wake-ups have been), at most `max_early`. Waking that much
    /// before a slot sends the request close to its slot instead of a wake-up late; a request
    /// sent early is timed from its actual send (`Stats::record`), so nothing is under-reported.
    /// Coarse pacing aims each tick's wake-up this much before the tick, at most a quarter tick.
    early: std::cell::Cell<u64>,
    /// Coarse pacing: the end of the current tick's window (0: precise pacing). A sleep due
    /// before it is released at once; later ones wait in the heap for [`Pacer::ticks`].
    window_end: std::cell::Cell<u64>,
    /// Coarse pacing: connections that need the thread to stay in the reactor this tick
    /// ([`Pacer::hold_awake`]).
    awake: std::cell::Cell<u32>,
    /// Coarse pacing: the tick, ns (0: precise pacing). Adaptive pacing moves it with the
    /// rate ([`policy::Follow`]).
    tick: std::cell::Cell<u64>,
    /// This worker thread's number and the run's thread count (for `phase`).
    index: usize,
    threads: usize,
    /// Coarse pacing: how many times [`Pacer::ticks`] has woken (for the tests).
    #[cfg(test)]
    tick_wakes: std::cell::Cell<u64>,
    /// Coarse pacing: this thread's ticks fall at `phase` past each multiple of `tick`, so
    /// that the threads of a run take turns instead of bursting at the same instants.
    phase: std::cell::Cell<u64>,
}

/// A one-shot timer setting expiring at `at` (absolute CLOCK_MONOTONIC ns).
fn one_shot(at: u64) -> libc::itimerspec {
    libc::itimerspec {
        it_interval: timespec(0),
        it_value: timespec(at),
    }
}

/// `ns` nanoseconds as a timespec.
fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

impl Inner {
    /// Adds a sleeper woken at `due`.
    fn push(&mut self, due: u64, waker: &Waker, counted: bool) {
        self.seq += 1;
        let seq = self.seq;
        self.asleep += counted as usize;
        self.heap.push(Reverse(Entry {
            due,
            seq,
            waker: waker.clone(),
            counted,
        }));
    }

    /// Wakes, in order, every sleeper whose time is before `until`.
    fn wake_before(&mut self, until: u64) {
        while self.heap.peek().is_some_and(|e| e.0.due < until) {
            if let Some(Reverse(e)) = self.heap.pop() {
                self.asleep -= e.counted as usize;
                e.waker.wake();
            }
        }
    }
}

/// A new non-blocking CLOCK_MONOTONIC timerfd.
fn new_timerfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor is owned below.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Pacer {
    /// Creates the timerfd and registers it with the current runtime's reactor.
    /// `spin_ns`: how long before each deadline to wake and busy-wait (0 for never).
    /// `max_early_ns`: the most a sleep may end before its deadline to make up for the
    /// thread's wake-up latency (0: never early).
    pub fn new(spin_ns: u64, max_early_ns: u64) -> io::Result<Rc<Pacer>> {
        let owned = new_timerfd()?;
        // SAFETY: `owned` is a valid open descriptor, owned by the AsyncFd from here on, so it
        // stays open and unchanged for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Rc::new(Pacer {
            fd,
            inner: RefCell::new(Inner {
                heap: BinaryHeap::with_capacity(64),
                tasks: 0,
                asleep: 0,
                armed: u64::MAX,
                seq: 0,
            }),
            spin: spin_ns,
            max_early: max_early_ns,
            early: std::cell::Cell::new(0),
            window_end: std::cell::Cell::new(0),
            awake: std::cell::Cell::new(0),
            tick: std::cell::Cell::new(0),
            index: 0,
            threads: 1,
            #[cfg(test)]
            tick_wakes: std::cell::Cell::new(0),
            phase: std::cell::Cell::new(0),
        }))
    }

    fn arm(&self, inner: &mut Inner, at: u64) {
        let spec = one_shot(at);
        // SAFETY: valid descriptor and itimerspec.
        unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        inner.armed = at;
    }

    /// Disarms the timerfd.
    fn disarm(&self, inner: &mut Inner) {
        let spec = one_shot(0);
        // SAFETY: valid descriptor and itimerspec (all zero: disarm).
        unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        inner.armed = u64::MAX;
    }

    /// Completes at `due` (CLOCK_MONOTONIC ns), to within a few microseconds when the thread
    /// is not busy.
    pub fn sleep_until(self: &Rc<Self>, due: u64) -> Sleep<'_> {
        Sleep {
            pacer: self,
            due,
            wake: None,
            not_before: false,
            counted: false,
        }
    }

    /// Completes at `due` (CLOCK_MONOTONIC ns) and never before it (to within `SLACK_NS`):
    /// for think time. With coarse pacing, on the first tick at or after `due`.
    pub fn sleep_not_before(self: &Rc<Self>, due: u64) -> Sleep<'_> {
        Sleep {
            not_before: true,
            ..self.sleep_until(due)
        }
    }

    /// Wakes the sleepers whose time has come; runs for the life of the thread.
    pub async fn run(self: Rc<Self>) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            // The expiration count is not read: the timer is one-shot and re-armed below (which
            // resets the count), and epoll, edge-triggered as tokio registers it, reports each
            // new expiry anyway — one system call fewer per slot. (A periodic timerfd re-arms
            // only when read, so it would save nothing.)
            guard.clear_ready();
            let mut inner = self.inner.borrow_mut();
            let woke = mono_ns();
            if self.max_early > 0 && inner.armed != u64::MAX {
                // Running mean (1/8 weight) of how late this wake-up is.
                let late = woke.saturating_sub(inner.armed).min(self.max_early);
                let e = self.early.get();
                self.early.set((e * 7 + late) / 8);
            }
            inner.armed = u64::MAX;
            inner.wake_before(woke + SLACK_NS + 1);
            if let Some(next) = inner.heap.peek().map(|e| e.0.due) {
                self.arm(&mut inner, next);
            }
        }
    }
}

/// Sleeps until `due` (CLOCK_MONOTONIC ns) on a one-off timerfd: microsecond-accurate on any
/// tokio runtime, at the cost of a few system calls. For the built-in server's delays, where
/// tokio's 1 ms timer would blur the service times the accuracy tests rely on.
pub async fn sleep_until_precise(due: u64) -> io::Result<()> {
    if mono_ns() >= due {
        return Ok(());
    }
    let owned = new_timerfd()?;
    let spec = one_shot(due);
    // SAFETY: valid descriptor and itimerspec.
    if unsafe {
        libc::timerfd_settime(
            owned.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME,
            &spec,
            std::ptr::null_mut(),
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `owned` stays open and unchanged for the AsyncFd's whole life.
    let afd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    let _ = afd.readable().await?;
    Ok(())
}

/// Future returned by [`Pacer::sleep_until`] and [`Pacer::sleep_not_before`].
pub struct Sleep<'a> {
    pacer: &'a Rc<Pacer>,
    due: u64,
    /// The wake-up this sleep registered for (its deadline minus the early allowance).
    wake: Option<u64>,
    /// Never end before `due` (think time), rather than up to a tick or a wake-up early.
    not_before: bool,
    /// Coarse pacing: this sleep has counted its task in [`Inner::asleep`] once already.
    counted: bool,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let window_end = this.pacer.window_end.get();
        // Coarse: ready once the slot falls within the current tick's window (`ticks` moves
        // the window before waking the sleepers in it), which needs no clock read. Think time
        // waits in the heap for the first tick after its end.
        if window_end > 0 && this.due < window_end && !this.not_before {
            return Poll::Ready(());
        }
        let now = mono_ns();
        if now + SLACK_NS >= this.due {
            return Poll::Ready(());
        }
        if window_end > 0 {
            // A poll before the slot's tick (only a spurious one) registers again; a stale
            // entry just wakes the task once more.
            let first = !this.counted;
            this.counted = true;
            this.pacer
                .inner
                .borrow_mut()
                .push(this.due, cx.waker(), first);
            return Poll::Pending;
        }
        let spin = this.pacer.spin;
        if this.due - now <= spin {
            while mono_ns() < this.due {
                std::hint::spin_loop();
            }
            return Poll::Ready(());
        }
        // Without spinning, a sleep ends at the (early) wake-up it registered for.
        if spin == 0 && !this.not_before && this.wake.is_some_and(|w| now + SLACK_NS >= w) {
            return Poll::Ready(());
        }
        let early = if this.not_before {
            spin
        } else {
            spin.max(this.pacer.early.get())
        };
        let wake = this.due - early.min(this.due);
        this.wake = Some(wake);
        let pacer = this.pacer;
        let mut inner = pacer.inner.borrow_mut();
        inner.push(wake, cx.waker(), false);
        if wake < inner.armed {
            pacer.arm(&mut inner, wake);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleeps on a fresh pacer (precise, or `ticked`) until `t0 + offset` for each
    /// `(id, offset_ns)`, and returns, in wake-up order, each id with how early it woke
    /// (negative: late), in ns.
    fn sleepers(ticked: bool, offsets: &[(u64, u64)]) -> Vec<(u64, i64)> {
        sleepers_with(ticked, false, offsets).0
    }

    /// [`sleepers`], with `sleep_not_before` when `not_before`; also returns how many times
    /// the coarse ticks woke.
    fn sleepers_with(
        ticked: bool,
        not_before: bool,
        offsets: &[(u64, u64)],
    ) -> (Vec<(u64, i64)>, u64) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let pacer = if ticked {
                let p = Pacer::ticked(1, 3, DEFAULT_TICK_NS).unwrap();
                tokio::task::spawn_local(p.clone().ticks(None));
                p
            } else {
                let p = Pacer::new(0, 0).unwrap();
                tokio::task::spawn_local(p.clone().run());
                p
            };
            let t0 = mono_ns();
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for &(i, offset) in offsets {
                let (p, o) = (pacer.clone(), order.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let _task = p.task();
                    let due = t0 + offset;
                    if not_before {
                        p.sleep_not_before(due).await;
                    } else {
                        p.sleep_until(due).await;
                    }
                    o.borrow_mut().push((i, due as i64 - mono_ns() as i64));
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let wakes = pacer.tick_wakes.get();
            (Rc::try_unwrap(order).unwrap().into_inner(), wakes)
        })
    }

    /// An idle coarse thread skips the ticks with nothing due: two sleepers 15 ms apart take
    /// a handful of wake-ups, not one per tick (20 at 750 µs).
    #[test]
    fn ticked_skips_the_ticks_with_nothing_due() {
        let (woke, wakes) = sleepers_with(true, false, &[(0, 5_000_000), (1, 20_000_000)]);
        let ids: Vec<u64> = woke.iter().map(|w| w.0).collect();
        assert_eq!(ids, vec![0, 1]);
        for &(_, early) in &woke {
            assert!(early < (DEFAULT_TICK_NS * 5 / 4) as i64, "{woke:?}");
            // Late only by scheduling delays (a loaded test machine's can reach milliseconds).
            assert!(early > -15_000_000, "{woke:?}");
        }
        assert!(wakes <= 8, "{wakes} wake-ups");
    }

    /// A coarse thread does not skip ticks while a connection task is out of the heap (a
    /// request out): task A waits 3 ms for a "response" (completed from another thread) and
    /// then sleeps to its next slot at 4 ms, while task B sleeps to 30 ms. Sleeping to B's
    /// tick would send A's next request 26 ms late.
    #[test]
    fn ticked_keeps_ticking_while_a_request_is_out() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let late = local.block_on(&rt, async {
            let p = Pacer::ticked(0, 1, DEFAULT_TICK_NS).unwrap();
            tokio::task::spawn_local(p.clone().ticks(None));
            let t0 = mono_ns();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(3));
                let _ = tx.send(());
            });
            let pa = p.clone();
            let a = tokio::task::spawn_local(async move {
                let _task = pa.task();
                let _ = rx.await;
                let due = t0 + 4_000_000;
                pa.sleep_until(due).await;
                mono_ns() as i64 - due as i64
            });
            let pb = p.clone();
            let b = tokio::task::spawn_local(async move {
                let _task = pb.task();
                pb.sleep_until(t0 + 30_000_000).await;
            });
            let late = a.await.unwrap();
            b.await.unwrap();
            late
        });
        // The fault this guards against sends it 26 ms late; a loaded test machine can delay
        // any wake-up by a few milliseconds.
        assert!(late < 15_000_000, "A's slot left {late} ns late");
    }

    /// Adaptive pacing: precise while the rate of the moment is below the switch (a sleep
    /// then ends on time, never early, and no tick runs), coarse above it (a sleep may end up
    /// to a tick early, and ticks run).
    #[test]
    fn adaptive_pacing_switches_with_the_rate() {
        use crate::schedule::{RateProfile, Stage, Stages};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let (woke, ticks_before, ticks_after) = local.block_on(&rt, async {
            let t0 = mono_ns();
            // 1000 to 41000 req/s over 1 s: the switch (5334) comes at about 110 ms.
            let profile = RateProfile::Stages(
                Stages::new(
                    1000.0,
                    vec![Stage {
                        duration: std::time::Duration::from_secs(1),
                        target: 41_000.0,
                    }],
                )
                .unwrap(),
            );
            let load = policy::Load {
                rate: Some(&profile),
                threads: 1,
                connections: 1,
                streams: 1,
                tick: std::time::Duration::from_nanos(DEFAULT_TICK_NS),
            };
            let follow = policy::Follow::new(profile.clone(), t0, 1.0, &load);
            let p = Pacer::ticked(0, 1, DEFAULT_TICK_NS).unwrap();
            tokio::task::spawn_local(p.clone().ticks(Some(follow)));
            let _task = p.task();
            let mut woke = Vec::new();
            let mut ticks_before = 0;
            for ms in [20u64, 40, 60, 400, 600] {
                let due = t0 + ms * 1_000_000;
                p.sleep_until(due).await;
                woke.push(due as i64 - mono_ns() as i64);
                if ms == 60 {
                    ticks_before = p.tick_wakes.get();
                }
            }
            (woke, ticks_before, p.tick_wakes.get())
        });
        for &early in &woke[..3] {
            assert!(
                early <= SLACK_NS as i64,
                "precise stretch woke early: {woke:?}"
            );
        }
        assert_eq!(ticks_before, 0, "ticks ran below the switch");
        assert!(ticks_after > ticks_before, "no tick above the switch");
        for &early in &woke[3..] {
            assert!(early < (DEFAULT_TICK_NS * 5 / 4) as i64, "{woke:?}");
        }
    }

    /// Think time never ends before its deadline, with either pacing.
    #[test]
    fn not_before_never_ends_early() {
        for ticked in [false, true] {
            let (woke, _) = sleepers_with(
                ticked,
                true,
                &[(0, 1_300_000), (1, 2_700_000), (2, 300_000)],
            );
            assert_eq!(woke.len(), 3);
            for &(_, early) in &woke {
                assert!(early <= SLACK_NS as i64, "ticked {ticked}: {woke:?}");
            }
        }
    }

    #[test]
    fn wakes_in_deadline_order_never_early() {
        let woke = sleepers(
            false,
            &[(0, 3_300_000), (1, 1_300_000), (2, 2_300_000), (3, 300_000)],
        );
        let ids: Vec<u64> = woke.iter().map(|w| w.0).collect();
        assert_eq!(ids, vec![3, 1, 2, 0]);
        assert!(woke.iter().all(|w| w.1 <= SLACK_NS as i64), "{woke:?}");
    }

    /// With several threads, coarse ticks are spread over the tick period: thread i of n
    /// ticks at i/n of a tick past each multiple of it.
    #[test]
    fn threads_ticks_are_staggered() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            const T: u64 = DEFAULT_TICK_NS;
            let now = 1_000 * T + 10;
            let base = 1_000 * T;
            for (i, n, want) in [
                (0, 4, base + T),
                (1, 4, base + T / 4),
                (3, 4, base + T * 3 / 4),
            ] {
                let p = Pacer::ticked(i, n, T).unwrap();
                assert_eq!(p.tick_after(now), want);
                assert_eq!(p.tick_after(p.tick_after(now)) - p.tick_after(now), T);
            }
        });
    }

    /// Coarse pacing releases each sleeper at the tick before its deadline: in deadline order,
    /// less than one tick early, and not later than scheduling delays make it.
    #[test]
    fn ticked_releases_within_the_tick_before_the_deadline() {
        let woke = sleepers(
            true,
            &[(0, 4_700_000), (1, 2_500_000), (2, 3_100_000), (3, 300_000)],
        );
        let ids: Vec<u64> = woke.iter().map(|w| w.0).collect();
        assert_eq!(ids, vec![3, 1, 2, 0]);
        for &(_, early) in &woke {
            // A tick, plus at most a quarter tick of wake-up allowance.
            assert!(early < (DEFAULT_TICK_NS * 5 / 4) as i64, "{woke:?}");
            // Late only by scheduling delays (a loaded test machine's can reach milliseconds).
            assert!(early > -15_000_000, "{woke:?}");
        }
    }
}
