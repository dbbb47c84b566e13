//! Coarse pacing (`--pacing coarse`): the worker thread wakes once per tick instead of once
//! per request, releases the slots due before the next tick, and reads the responses that
//! arrived meanwhile (timed by their kernel receive timestamps). This module owns the tick
//! loop ([`Pacer::ticks`]), the rule that keeps the thread in the reactor for connections that
//! need it ([`Pacer::hold_awake`]), and the count of live connection tasks that lets an idle
//! thread skip empty ticks ([`Pacer::task`]). The heap and the sleeps are the parent module's.

use std::io;
use std::rc::Rc;

use super::policy::Follow;
use super::{block_until, mono_ns, Pacer, SLACK_NS};

/// A connection task alive on its thread ([`Pacer::task`]).
pub struct Task<'a>(&'a Pacer);

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.0.inner.borrow_mut().tasks -= 1;
    }
}

/// Keeps a coarse-paced thread in the reactor while it lives (see [`Pacer::ticks`]).
pub struct Awake<'a>(&'a Pacer);

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        self.0.awake.set(self.0.awake.get() - 1);
    }
}

/// Coarse pacing: the longest an idle thread sleeps between ticks, ns (see [`Pacer::ticks`]).
const MAX_IDLE_NS: u64 = 20_000_000;

/// Coarse pacing's default tick (`--tick`). Each tick costs the generator a wake-up and the
/// server one (about 35 µs of the generator's CPU in this VM), and each tick's requests reach
/// the server as one burst, which it queues. Measured at `-t1 -c50 -R20000 --pacing coarse`
/// against nginx, interleaved with wrk2 at the same rate (8 s runs, 5 rounds, medians), tick →
/// p50, CPU per request: 500 µs → 76 µs, 8.61 µs (0.57× wrk2's); 750 µs → 100 µs, 7.70 µs
/// (0.51×); 1 ms → 119 µs, 7.99 µs (0.53×); with `perf` counting system calls in the same
/// runs the ratios rise (500 µs: 0.60–0.68×). The unloaded, single-connection p50 is
/// 76–102 µs (`scripts/probe.py`). 750 µs keeps p50 near the unloaded latency and the CPU
/// under 0.6× wrk2's with a margin, at 2.14 system calls per request (500 µs: 2.21).
pub const DEFAULT_TICK_NS: u64 = 750_000;

impl Pacer {
    /// Counts a connection task as alive on this thread (for coarse pacing's idle ticks,
    /// [`Pacer::ticks`]) until the guard is dropped.
    pub fn task(&self) -> Task<'_> {
        self.inner.borrow_mut().tasks += 1;
        Task(self)
    }

    /// Coarse pacing: until the guard is dropped, the thread waits for its ticks in the
    /// reactor, so I/O is handled as it happens. `None` with precise pacing (always awake).
    pub fn hold_awake(&self) -> Option<Awake<'_>> {
        if self.window_end.get() == 0 {
            return None;
        }
        self.awake.set(self.awake.get() + 1);
        Some(Awake(self))
    }

    /// [`Pacer::hold_awake`] when a connection whose next slot is `next` (CLOCK_MONOTONIC ns)
    /// and whose last exchange lasted `last_exchange_ns` could need to send before the tick
    /// after its response: sleeping through the response would then hold that request back.
    pub fn hold_awake_if_before(&self, next: u64, last_exchange_ns: u64) -> Option<Awake<'_>> {
        let end = self.window_end.get();
        if end > 0 && next < end + self.tick.get() + last_exchange_ns {
            self.hold_awake()
        } else {
            None
        }
    }

    /// A pacer for coarse pacing on worker thread `index` of `threads`, ticking every
    /// `tick_ns`: sleeps are released by [`Pacer::ticks`], once per tick, never by the timerfd
    /// (which is never armed). The threads' ticks are spread evenly over the tick period.
    pub fn ticked(index: usize, threads: usize, tick_ns: u64) -> io::Result<Rc<Pacer>> {
        let mut p = Pacer::new(0, 0)?;
        let inner = Rc::get_mut(&mut p).expect("just made");
        inner.index = index;
        inner.threads = threads.max(1);
        p.set_tick(tick_ns);
        p.window_end.set(p.tick_after(mono_ns()));
        Ok(p)
    }

    /// Sets the tick (and this thread's phase within it).
    fn set_tick(&self, tick_ns: u64) {
        let tick = tick_ns.max(1);
        self.tick.set(tick);
        self.phase
            .set(tick * self.index as u64 / self.threads as u64);
    }

    /// Coarse pacing: this thread's first tick after `now`.
    pub(super) fn tick_after(&self, now: u64) -> u64 {
        let (tick, phase) = (self.tick.get(), self.phase.get());
        let since = now.saturating_sub(phase);
        (since / tick + 1) * tick + phase
    }

    /// Adaptive pacing's precise stretch: the sleeps are precise ([`super::Sleep`] sees no
    /// tick window) and this task wakes them on the timerfd, as [`Pacer::run`] does, until
    /// `follow` asks for ticks again; returns that tick. The sleeps registered for ticks wake
    /// on the timer from here on.
    async fn precise_while(&self, follow: &Follow) -> u64 {
        self.window_end.set(0);
        // Precise pacing here wakes on time, not early (the pacer has no early allowance).
        self.early.set(0);
        {
            let mut inner = self.inner.borrow_mut();
            inner.armed = u64::MAX;
            if let Some(next) = inner.heap.peek().map(|e| e.0.due) {
                self.arm(&mut inner, next);
            }
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return 0;
            };
            guard.clear_ready();
            let woke = mono_ns();
            {
                let mut inner = self.inner.borrow_mut();
                inner.armed = u64::MAX;
                inner.wake_before(woke + SLACK_NS + 1);
                if let Some(next) = inner.heap.peek().map(|e| e.0.due) {
                    self.arm(&mut inner, next);
                }
            }
            let tick = follow.tick_at(woke);
            if tick > 0 {
                // Ticks again: the timer is the tick loop's from here.
                self.disarm(&mut self.inner.borrow_mut());
                return tick;
            }
        }
    }

    /// Coarse pacing's clock, for the life of a worker thread. The thread sleeps to its next
    /// tick *outside* the reactor (`clock_nanosleep`); then it releases every
    /// sleeper due before the tick after that (so requests leave up to one tick early, plus
    /// the thread's usual wake-up latency, which it aims to wake before the tick by; never
    /// late; and are timed from their actual send), and yields, so that the runtime polls its
    /// sockets and timers once without blocking and runs everything that became ready: the
    /// released sends, the responses that arrived meanwhile (timed by their kernel receive
    /// timestamps, so reading them up to a tick late costs no accuracy), the timeouts. The
    /// thread wakes once per tick instead of once per request and per response: one
    /// `clock_nanosleep` and one `epoll_wait` per tick, shared by all of that tick's requests.
    /// The price: each tick's requests leave together, a burst the server sees. While every
    /// connection task ([`Pacer::task`]) sleeps in the heap, the ticks with nothing due are
    /// skipped (up to 20 ms at a time), so a thread at a low rate wakes about twice per
    /// request (the send, the response), not on every tick.
    ///
    /// While some connection could need to send again before the next tick after its
    /// response (a connection at more than ~2000 requests/s, one catching up after a stall,
    /// one being opened: [`Pacer::hold_awake`]), the thread instead waits for the tick in the
    /// reactor (the timerfd), handling responses as they arrive, as precise pacing does; else
    /// a connection could do at most one request per tick.
    ///
    /// With `follow` (adaptive pacing), each tick's length follows the rate of the moment, and
    /// while that rate is below the switch to coarse pacing the thread paces precisely instead
    /// ([`Pacer::precise_while`]).
    pub async fn ticks(self: Rc<Self>, follow: Option<Follow>) {
        // The tick handled last: a wake-up before its tick (see `early`) must not handle that
        // tick twice.
        let mut last = 0u64;
        // Let the connections, spawned after this task, register their first slots before
        // the first tick is chosen. From then on, the tasks a tick releases (and those the
        // responses wake) run before this task does again: the yield below queues it behind
        // them.
        tokio::task::yield_now().await;
        loop {
            if let Some(f) = &follow {
                let tick = match f.tick_at(mono_ns()) {
                    0 => self.precise_while(f).await,
                    t => t,
                };
                if tick == 0 {
                    return;
                }
                if tick != self.tick.get() {
                    self.set_tick(tick);
                }
            }
            let next = self.tick_after(mono_ns().max(last));
            let awake = self.awake.get() > 0;
            // When every connection task sleeps in the heap (none has a request out, none
            // is runnable), skip the ticks with nothing due: wake for the tick before the
            // earliest sleeper, at the latest after MAX_IDLE_NS (for tokio's timers: the
            // stop signal). Else the next tick: a response may come in, and its task may
            // want to send on it.
            let target = {
                let inner = self.inner.borrow();
                if awake || inner.tasks == 0 || inner.asleep < inner.tasks {
                    next
                } else {
                    let tick = self.tick.get();
                    let latest = next + MAX_IDLE_NS / tick * tick;
                    match inner.heap.peek() {
                        Some(e) => (self.tick_after(e.0.due) - tick).clamp(next, latest),
                        None => latest,
                    }
                }
            };
            // Aim before the tick by this thread's usual wake-up latency (`early`), so that the
            // slots just after the tick do not leave a wake-up late.
            let aim = target - self.early.get().min(target);
            if awake {
                self.arm(&mut self.inner.borrow_mut(), aim);
                if let Ok(mut g) = self.fd.readable().await {
                    g.clear_ready();
                }
                self.inner.borrow_mut().armed = u64::MAX;
            } else {
                // An early return (a signal) only makes this tick early.
                block_until(aim);
            }
            let woke = mono_ns();
            #[cfg(test)]
            self.tick_wakes.set(self.tick_wakes.get() + 1);
            // Running mean (1/8 weight) of how late the wake-ups are, at most a quarter tick.
            let late = woke.saturating_sub(aim).min(self.tick.get() / 4);
            self.early.set((self.early.get() * 7 + late) / 8);
            let end = self.tick_after(woke.max(target));
            last = end - self.tick.get();
            self.window_end.set(end);
            self.inner.borrow_mut().wake_before(end);
            tokio::task::yield_now().await;
        }
    }
}
