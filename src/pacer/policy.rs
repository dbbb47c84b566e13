//! The pacing policy: which pacing a run gets (`--pacing precise|coarse|auto`, `--tick`) and,
//! for `auto`, the rule behind it — precise pacing until a thread's share of the rate puts a
//! few requests in each tick, then coarse pacing with a tick short enough to bound each
//! burst; under a rate profile that crosses the switch, the same rule applied as the rate
//! moves ([`Pacing::Adaptive`], [`Follow`]). Pure arithmetic; the timer that carries it out
//! is the rest of `pacer/`, the plan it paces is `schedule/`.

use std::time::Duration;

use crate::schedule::RateProfile;

/// `--pacing auto` (the default) chooses coarse pacing when the busiest worker thread's share of
/// the rate puts at least this many requests in each tick. There, precise pacing's wake-up per
/// request is most of the generator's CPU (docs/performance.md has the measurements), while a
/// burst of a few requests per tick adds only a few microseconds of queueing at the server;
/// below it, coarse pacing would save few wake-ups, and precise pacing keeps each send within
/// microseconds of its slot.
pub const AUTO_COARSE_REQUESTS_PER_TICK: f64 = 4.0;

/// `--pacing auto` bounds the burst a tick releases: above the switch to coarse pacing the tick
/// shortens as the busiest thread's rate grows, so that a tick carries at most this many
/// requests, down to [`AUTO_MIN_TICK`]. A tick's requests reach the server together and it
/// queues them: a fixed default tick at high per-thread rates released so many at once that
/// the server's median latency read several times its warm latency. Each tick costs one
/// wake-up, so the bound trades the server's queueing against the generator's CPU: smaller
/// bounds cost about as much CPU per request as wrk2 spends or more; this one kept the CPU
/// under wrk2's and the median at the warm server's latency (docs/performance.md has the
/// curve).
pub const AUTO_MAX_BURST: f64 = 10.0;

/// The shortest tick `--pacing auto` chooses (also `--tick`'s lower limit): past the rate at
/// which it carries [`AUTO_MAX_BURST`] requests, bursts grow again rather than the wake-ups.
pub const AUTO_MIN_TICK: Duration = Duration::from_micros(100);

/// How a connection waits for its next planned send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// A per-thread timerfd with nanosecond resolution: requests leave within microseconds of
    /// their intended time when the generator has CPU to spare. Costs one timer wake-up (and one
    /// `timerfd_settime`) per request at high rates.
    #[default]
    Precise,
    /// Each worker thread wakes once per tick (`--tick`; chosen by `--pacing auto`, see
    /// [`AUTO_MAX_BURST`]: `Pacer::ticks`), releases the requests due before the next tick (up
    /// to a tick early, never late, so no timer slack is latency) and handles every response
    /// that arrived meanwhile, timed by its kernel receive timestamp: a fraction of precise
    /// pacing's CPU at high rates, but the server sees per-tick bursts.
    Coarse,
    /// `--pacing auto` under a rate profile whose peak needs coarse pacing: each thread paces
    /// precisely while its share of the current rate is below the switch
    /// ([`AUTO_COARSE_REQUESTS_PER_TICK`] a default tick), coarsely above it, with the tick that
    /// bounds the burst at the current rate ([`Follow`]). The run's `tick` is the shortest, at
    /// the peak.
    Adaptive,
}

impl Pacing {
    /// Whether the thread's timer is the tick loop (`Pacer::ticks`), all or part of the run.
    pub fn ticks(self) -> bool {
        self != Pacing::Precise
    }
}

/// `--pacing` as given, before a rate is known: `auto` is decided per run (for `find`, per
/// step), from that run's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacingMode {
    /// `--pacing precise` or `--pacing coarse`.
    Fixed(Pacing),
    /// `--pacing auto`; `tick` says whether `--tick` was given (which asks for ticks).
    Auto {
        /// `--tick` was given.
        tick: bool,
    },
}

/// What a run's pacing is chosen from.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    /// The rate (`None`: closed loop).
    pub rate: Option<&'a RateProfile>,
    /// Worker threads.
    pub threads: usize,
    /// Connections, dealt round-robin to the threads.
    pub connections: usize,
    /// HTTP/2 streams per connection (1 with HTTP/1.1): a tick may carry one connection's.
    pub streams: usize,
    /// Coarse pacing's tick as configured (`--tick`, or the default).
    pub tick: Duration,
}

/// The busiest worker thread's share of the rate: `connections` are dealt round-robin to
/// `threads`, and the plan gives each connection an equal share.
pub fn busiest_share(threads: usize, connections: usize) -> f64 {
    connections.div_ceil(threads.max(1)) as f64 / connections.max(1) as f64
}

/// Whether `per_thread` req/s puts enough requests in a `tick` for coarse pacing.
fn coarse_at(per_thread: f64, tick: Duration) -> bool {
    per_thread * tick.as_secs_f64() >= AUTO_COARSE_REQUESTS_PER_TICK
}

/// The most requests `--pacing auto` lets a tick carry: [`AUTO_MAX_BURST`], or with HTTP/2
/// one connection's streams (a burst of one connection's streams is one write and one read:
/// the plan's consecutive slots are one connection's streams).
fn max_burst(streams: usize) -> f64 {
    AUTO_MAX_BURST.max(streams as f64)
}

/// The tick that keeps a thread at `per_thread` req/s to `burst` requests a tick: rounded
/// down, so that the tick never holds more, within [`AUTO_MIN_TICK`] and `longest`.
fn bounded_tick(per_thread: f64, burst: f64, longest: Duration) -> Duration {
    let t = Duration::from_nanos((burst / per_thread * 1e9).floor() as u64);
    t.clamp(AUTO_MIN_TICK, longest.max(AUTO_MIN_TICK))
}

impl PacingMode {
    /// The pacing and tick of a run of `load`: closed loop is precise unless coarse was asked
    /// for; `auto` without `--tick` chooses coarse pacing from the switch on, with the tick
    /// that bounds its bursts ([`AUTO_MAX_BURST`]) at the peak rate, and adaptive pacing for a
    /// profile whose rate crosses the switch.
    pub fn choose(self, load: Load) -> (Pacing, Duration) {
        let peak = load.rate.map(RateProfile::peak);
        match (self, peak) {
            (PacingMode::Fixed(p), _) => (p, load.tick),
            (PacingMode::Auto { .. }, None) => (Pacing::Precise, load.tick),
            (PacingMode::Auto { tick: true }, Some(_)) => (Pacing::Coarse, load.tick),
            (PacingMode::Auto { tick: false }, Some(r)) => {
                let per_thread = r * busiest_share(load.threads, load.connections);
                if !coarse_at(per_thread, load.tick) {
                    return (Pacing::Precise, load.tick);
                }
                let tick = bounded_tick(per_thread, max_burst(load.streams), load.tick);
                let lowest = match load.rate {
                    Some(RateProfile::Stages(s)) => s.lowest(),
                    _ => r,
                };
                let lowest = lowest * busiest_share(load.threads, load.connections);
                // A profile whose rate moves across the switch, or through ticks of different
                // lengths, follows it.
                if !coarse_at(lowest, load.tick)
                    || bounded_tick(lowest, max_burst(load.streams), load.tick) != tick
                {
                    (Pacing::Adaptive, tick)
                } else {
                    (Pacing::Coarse, tick)
                }
            }
        }
    }
}

/// Adaptive pacing's rule for one worker thread: the tick for the rate of the moment.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The run's rate.
    pub profile: RateProfile,
    /// The plan's start, CLOCK_MONOTONIC ns.
    pub t0: u64,
    /// This thread's share of the rate (its connections' share).
    pub share: f64,
    /// The longest tick (the configured one), below which the switch lies.
    pub longest: Duration,
    /// The most requests a tick may carry.
    pub burst: f64,
}

impl Follow {
    /// The rule for a thread with `share` of `profile`, started at `t0`, under `load`. The
    /// longest tick is the default one: adaptive pacing is `auto` without `--tick`, and the
    /// run's own `tick` is already the peak's.
    pub fn new(profile: RateProfile, t0: u64, share: f64, load: &Load) -> Follow {
        Follow {
            profile,
            t0,
            share,
            longest: Duration::from_nanos(super::DEFAULT_TICK_NS),
            burst: max_burst(load.streams),
        }
    }

    /// The tick at CLOCK_MONOTONIC `now`, ns; 0: precise pacing.
    pub fn tick_at(&self, now: u64) -> u64 {
        let r = self.profile.rate_at(now.saturating_sub(self.t0)) * self.share;
        if !coarse_at(r, self.longest) {
            return 0;
        }
        bounded_tick(r, self.burst, self.longest).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Stage, Stages};

    fn load(rate: &RateProfile, threads: usize, connections: usize, streams: usize) -> Load<'_> {
        Load {
            rate: Some(rate),
            threads,
            connections,
            streams,
            tick: Duration::from_micros(750),
        }
    }

    /// `auto` keeps every tick's burst at 10 or fewer from the switch to coarse pacing until the
    /// tick reaches its 100 µs floor; an explicit `--tick` or `--pacing coarse` keeps its tick.
    #[test]
    fn auto_pacing_bounds_the_burst() {
        let auto = PacingMode::Auto { tick: false };
        let at = |rate: f64, threads: usize, conns: usize, mode: PacingMode| {
            let r = RateProfile::Constant(rate);
            let (p, t) = mode.choose(load(&r, threads, conns, 1));
            (p, t.as_micros() as u64)
        };
        assert_eq!(at(5000.0, 1, 50, auto).0, Pacing::Precise);
        // From the switch (4 a tick) to 13334 req/s the tick stays 750 µs, then shortens.
        assert_eq!(at(5334.0, 1, 50, auto), (Pacing::Coarse, 750));
        assert_eq!(at(13_334.0, 1, 50, auto), (Pacing::Coarse, 749));
        assert_eq!(at(20_000.0, 1, 50, auto), (Pacing::Coarse, 500));
        // Two threads, 3 connections: the busiest has 2 of them, 2/3 of the rate.
        assert_eq!(at(30_000.0, 2, 3, auto), (Pacing::Coarse, 500));
        assert_eq!(at(200_000.0, 1, 50, auto), (Pacing::Coarse, 100));
        let coarse = PacingMode::Fixed(Pacing::Coarse);
        assert_eq!(at(20_000.0, 1, 50, coarse), (Pacing::Coarse, 750));
        let ticked = PacingMode::Auto { tick: true };
        assert_eq!(at(20_000.0, 1, 50, ticked), (Pacing::Coarse, 750));
        // HTTP/2: a tick carries up to one connection's streams, or the bound if more.
        let h2 = |streams: usize| {
            let r = RateProfile::Constant(20_000.0);
            let (p, t) = auto.choose(load(&r, 1, 10, streams));
            (p, t.as_micros() as u64)
        };
        assert_eq!(h2(10), (Pacing::Coarse, 500));
        assert_eq!(h2(14), (Pacing::Coarse, 700));
        assert_eq!(h2(100), (Pacing::Coarse, 750));
    }

    fn ramp(from: f64, to: f64) -> RateProfile {
        RateProfile::Stages(
            Stages::new(
                from,
                vec![Stage {
                    duration: Duration::from_secs(10),
                    target: to,
                }],
            )
            .unwrap(),
        )
    }

    /// A profile crossing the switch is adaptive; one that stays precise, or stays coarse at
    /// one tick, is not.
    #[test]
    fn profiles_that_cross_the_switch_follow_their_rate() {
        let auto = PacingMode::Auto { tick: false };
        let choose = |r: &RateProfile| {
            let (p, t) = auto.choose(load(r, 1, 50, 1));
            (p, t.as_micros() as u64)
        };
        assert_eq!(choose(&ramp(100.0, 50_000.0)), (Pacing::Adaptive, 200));
        assert_eq!(choose(&ramp(50_000.0, 100.0)), (Pacing::Adaptive, 200));
        assert_eq!(choose(&ramp(100.0, 5000.0)).0, Pacing::Precise);
        assert_eq!(choose(&ramp(100.0, 6000.0)), (Pacing::Adaptive, 750));
        // 6000 to 12000 a thread: coarse at 750 µs all along.
        assert_eq!(choose(&ramp(6000.0, 12_000.0)), (Pacing::Coarse, 750));
        // --tick asks for coarse pacing whatever the rate.
        let ticked = PacingMode::Auto { tick: true };
        assert_eq!(
            ticked.choose(load(&ramp(100.0, 50_000.0), 1, 50, 1)).0,
            Pacing::Coarse
        );
    }

    /// The rule of the moment: precise below the switch, then a 750 µs tick, then shorter
    /// ticks that keep 10 requests a tick, down to the 100 µs floor.
    #[test]
    fn follow_gives_the_tick_of_the_moment() {
        let r = ramp(0.0, 200_000.0); // 20000 req/s more each second
                                      // The run's tick is the peak's; the rule still starts from the default one.
        let mut l = load(&r, 1, 1, 1);
        l.tick = Duration::from_micros(100);
        let f = Follow::new(r.clone(), 1_000, 0.5, &l); // half the rate: 10000 more a second
        let s = 1_000_000_000u64;
        assert_eq!(f.tick_at(1_000), 0);
        assert_eq!(f.tick_at(1_000 + s / 2), 0); // 5000 a thread
        assert_eq!(f.tick_at(1_000 + s * 6 / 10), 750_000); // 6000
        assert_eq!(f.tick_at(1_000 + 2 * s), 500_000); // 20000: 10 a tick
        assert_eq!(f.tick_at(1_000 + 9 * s), 111_111); // 90000
        assert_eq!(f.tick_at(1_000 + 10 * s), 100_000); // 100000: the floor
    }
}
