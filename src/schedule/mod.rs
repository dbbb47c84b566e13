//! Pacing: when each request is *intended* to be sent. Pure arithmetic — no I/O, no clock.
//!
//! The total rate is laid out as one global sequence of evenly spaced slots: slot `j` is due at
//! `profile.time_of(j)` nanoseconds after the run's start instant `t0`. Connection `i` of `C`
//! owns slots `i, i + C, i + 2C, …`, so each connection runs at `R / C` and the connections are
//! staggered evenly over one interval (the aggregate load is smooth, never a burst of all
//! connections at once). Connections are dealt to threads round-robin, so every thread's own
//! slots are evenly spaced too.
//!
//! A connection that is behind its plan sends at once; the plan itself never moves, which is
//! what makes the coordinated-omission correction (latency measured from the intended time)
//! honest. A [`RateProfile`] is a constant rate or stages (ramps, jumps, steps): slot `j` is
//! due where the profile's cumulative count reaches `j`. With Poisson [`Arrivals`] each
//! connection instead follows its own seeded Poisson process at `rate / C`.

mod profile;
pub use profile::{sum_stages, RateProfile, Stage, Stages};

/// How requests arrive within the rate: evenly spaced (wrk2's plan) or as a Poisson process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arrivals {
    /// Evenly spaced slots, staggered over the connections (the default).
    #[default]
    Uniform,
    /// Exponential gaps at the (possibly changing) rate, from one seeded sequence per run:
    /// the seed reproduces the plan exactly.
    Poisson {
        /// The run's seed (`--seed`).
        seed: u64,
    },
}

/// One connection's Poisson arrivals: its own process at `rate / C`, so that the
/// connections' union is a Poisson process at the profile's rate. Arrival `k` is where the
/// profile's count reaches `C · (E_0 + … + E_k)` for unit exponential draws `E`, each a pure
/// function of (seed, connection, k); their sum is kept in fixed point (2^-32 units), so
/// that walking the plan backwards or forwards gives exactly the same times whatever the
/// order the driver asks for them in.
#[derive(Debug, Clone)]
struct PoissonPlan {
    /// Draw stream of this connection (from the run's seed and the connection's index).
    stream: u64,
    /// `C`, the connection count.
    connections: f64,
    /// The last arrival computed and the sum of draws through it (fixed point).
    cursor: std::cell::Cell<(u64, u64)>,
}

/// Fixed-point scale of the summed draws.
const DRAW_ONE: f64 = 4_294_967_296.0;

/// splitmix64's output function: a well-mixed 64-bit value from any input.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl PoissonPlan {
    fn new(seed: u64, index: u64, connections: usize) -> PoissonPlan {
        let p = PoissonPlan {
            stream: mix(seed ^ mix(index)),
            connections: connections as f64,
            cursor: std::cell::Cell::new((0, 0)),
        };
        p.cursor.set((0, p.draw(0)));
        p
    }

    /// Unit exponential draw `k`, in fixed point.
    #[inline]
    fn draw(&self, k: u64) -> u64 {
        let u = ((mix(self.stream ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03)) >> 11) as f64 + 0.5)
            * (1.0 / (1u64 << 53) as f64);
        (-u.ln() * DRAW_ONE).round() as u64
    }

    /// The sum of draws 0..=k, walking from the cursor.
    fn sum(&self, k: u64) -> u64 {
        let (mut at, mut sum) = self.cursor.get();
        while at < k {
            at += 1;
            sum = sum.saturating_add(self.draw(at));
        }
        while at > k {
            sum -= self.draw(at);
            at -= 1;
        }
        self.cursor.set((at, sum));
        sum
    }

    fn intended_ns(&self, profile: &RateProfile, k: u64) -> u64 {
        let units = self.sum(k) as f64 / DRAW_ONE;
        profile.time_at_count(units * self.connections)
    }
}

/// One connection's plan: its slice of the global slot sequence (uniform arrivals), or its
/// own Poisson process (Poisson arrivals).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Index of the first slot this plan owns (the connection's global index).
    first: u64,
    /// Distance between this plan's slots in the global sequence (the total connection count).
    stride: u64,
    /// The shared rate profile.
    profile: RateProfile,
    /// Poisson arrivals' state; `None` for uniform ones.
    poisson: Option<PoissonPlan>,
    /// Uniform arrivals at a constant rate: ns per global slot (`1e9 / rate`, the same value
    /// `RateProfile::time_of` multiplies by), so the common plan costs one multiply a slot.
    period: Option<f64>,
}

impl Plan {
    /// The uniform plan of connection `index` out of `connections`, sharing `profile`.
    pub fn new(profile: RateProfile, index: usize, connections: usize) -> Plan {
        Plan::with_arrivals(profile, Arrivals::Uniform, index, connections)
    }

    /// The plan of connection `index` out of `connections`, sharing `profile`, with
    /// `arrivals`.
    pub fn with_arrivals(
        profile: RateProfile,
        arrivals: Arrivals,
        index: usize,
        connections: usize,
    ) -> Plan {
        assert!(connections > 0 && index < connections);
        let period = match (&profile, arrivals) {
            (RateProfile::Constant(rate), Arrivals::Uniform) => Some(1e9 / rate),
            _ => None,
        };
        Plan {
            first: index as u64,
            stride: connections as u64,
            period,
            profile,
            poisson: match arrivals {
                Arrivals::Uniform => None,
                Arrivals::Poisson { seed } => {
                    Some(PoissonPlan::new(seed, index as u64, connections))
                }
            },
        }
    }

    /// Nanoseconds after `t0` at which this plan's `k`-th request is intended.
    #[inline]
    pub fn intended_ns(&self, k: u64) -> u64 {
        if let Some(period) = self.period {
            return ((self.first + k * self.stride) as f64 * period) as u64;
        }
        match &self.poisson {
            None => self.profile.time_of(self.first + k * self.stride),
            Some(p) => p.intended_ns(&self.profile, k),
        }
    }

    /// Number of this plan's requests intended before `t_ns`: the least `k` with
    /// `intended_ns(k) >= t_ns`.
    pub fn slots_before(&self, t_ns: u64) -> u64 {
        match &self.poisson {
            None => {
                let global = self.profile.slots_before(t_ns);
                global.saturating_sub(self.first).div_ceil(self.stride)
            }
            Some(p) => {
                // A walk from the cursor: each step is one draw.
                let mut k = p.cursor.get().0;
                while k > 0 && self.intended_ns(k - 1) >= t_ns {
                    k -= 1;
                }
                while self.intended_ns(k) < t_ns {
                    k += 1;
                }
                k
            }
        }
    }
}

/// The global connection indices that thread `thread` of `threads` drives (round-robin deal).
pub fn connections_of_thread(thread: usize, threads: usize, connections: usize) -> Vec<usize> {
    (thread..connections).step_by(threads).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_slots_are_evenly_spaced() {
        let p = RateProfile::Constant(1000.0);
        assert_eq!(p.time_of(0), 0);
        assert_eq!(p.time_of(1), 1_000_000);
        assert_eq!(p.time_of(1000), 1_000_000_000);
        assert_eq!(p.slots_before(1_000_000_000), 1000);
        assert_eq!(p.slots_before(1), 1);
        assert_eq!(p.slots_before(0), 0);
    }

    #[test]
    fn slots_before_agrees_with_intended_times() {
        for rate in [3.0, 999.7, 7777.0, 1e6 / 3.0, 1e9] {
            let p = RateProfile::Constant(rate);
            for c in [1, 7] {
                for i in 0..c {
                    let pl = Plan::new(p.clone(), i, c);
                    for t in [0, 1, 999, 1_000_000, 123_456_789, 10_000_000_000] {
                        let n = pl.slots_before(t);
                        assert!(n == 0 || pl.intended_ns(n - 1) < t, "{rate} {c} {i} {t}");
                        assert!(pl.intended_ns(n) >= t, "{rate} {c} {i} {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn connections_are_staggered_over_one_interval() {
        // 4 connections at 4000 req/s: each runs at 1000/s, offsets 0, 250, 500, 750 µs.
        let p = RateProfile::Constant(4000.0);
        let plans: Vec<Plan> = (0..4).map(|i| Plan::new(p.clone(), i, 4)).collect();
        let firsts: Vec<u64> = plans.iter().map(|pl| pl.intended_ns(0)).collect();
        assert_eq!(firsts, vec![0, 250_000, 500_000, 750_000]);
        for pl in &plans {
            assert_eq!(pl.intended_ns(1) - pl.intended_ns(0), 1_000_000);
            assert_eq!(pl.intended_ns(1000) - pl.intended_ns(0), 1_000_000_000);
        }
    }

    #[test]
    fn union_of_plans_covers_every_slot_once() {
        let p = RateProfile::Constant(7777.0);
        let c = 13;
        let mut all: Vec<u64> = (0..c)
            .flat_map(|i| {
                let pl = Plan::new(p.clone(), i, c);
                (0..100).map(move |k| pl.intended_ns(k))
            })
            .collect();
        all.sort_unstable();
        let expect: Vec<u64> = (0..(c as u64 * 100)).map(|j| p.time_of(j)).collect();
        assert_eq!(all, expect);
    }

    #[test]
    fn no_drift_over_long_runs() {
        // A fractional period must not accumulate rounding error: slot 10^9 of 3 req/s.
        let p = RateProfile::Constant(3.0);
        let t = p.time_of(3_000_000_000);
        assert!((t as i128 - 1_000_000_000_000_000_000i128).abs() < 1_000_000);
    }

    fn stages(start: f64, list: &[(f64, f64)]) -> RateProfile {
        let st = list
            .iter()
            .map(|&(d, target)| Stage {
                duration: std::time::Duration::from_secs_f64(d),
                target,
            })
            .collect();
        RateProfile::Stages(Stages::new(start, st).unwrap())
    }

    #[test]
    fn a_ramp_plans_its_integral_and_inverts_it() {
        // 1000 req/s for 3 s, then 1000 -> 3000 over 3 s: 3000 + 6000 requests.
        let p = stages(1000.0, &[(3.0, 1000.0), (3.0, 3000.0)]);
        let RateProfile::Stages(s) = &p else {
            unreachable!()
        };
        assert!((s.total() - 9000.0).abs() < 1e-6);
        assert_eq!(s.peak(), 3000.0);
        assert_eq!(s.duration(), std::time::Duration::from_secs(6));
        assert!((p.count_before(3_000_000_000) - 3000.0).abs() < 1e-6);
        // Half way up the ramp (rate 2000): 3000 + (1000 + 2000) / 2 * 1.5 = 5250.
        assert!((p.count_before(4_500_000_000) - 5250.0).abs() < 1e-6);
        assert_eq!(p.slots_before(6_000_000_000), 9000);
        // Inverse: slot 5250 is due at 4.5 s; slot 1000 at 1 s.
        assert!((p.time_of(5250) as i64 - 4_500_000_000).abs() <= 1);
        assert_eq!(p.time_of(1000), 1_000_000_000);
        // The plan's own gaps follow the rate: 1 ms at 1000 req/s, ~0.333 ms at the end.
        let gap = p.time_of(8999) - p.time_of(8998);
        assert!((333_000..334_500).contains(&gap), "{gap}");
        // Every boundary agrees with time_of.
        for t in (0..6_500_000_000u64).step_by(7_777_777) {
            let n = p.slots_before(t);
            assert!(n == 0 || p.time_of(n - 1) < t, "{t}");
            assert!(p.time_of(n) >= t, "{t}");
        }
    }

    #[test]
    fn jumps_pauses_and_the_end() {
        // From 0: jump to 100 (0 s), hold 1 s; pause at 0 for 1 s; ramp 0 -> 200 over 1 s.
        let p = stages(
            0.0,
            &[
                (0.0, 100.0),
                (1.0, 100.0),
                (0.0, 0.0),
                (1.0, 0.0),
                (1.0, 200.0),
            ],
        );
        assert!((p.count_before(1_000_000_000) - 100.0).abs() < 1e-9);
        assert!((p.count_between(1_000_000_000, 2_000_000_000)).abs() < 1e-9);
        assert!((p.count_before(3_000_000_000) - 200.0).abs() < 1e-6);
        // Slot 100 is due where the count reaches 100: the end of the hold, at 1 s. Slot 101
        // is the ramp's first, after the pause: at 2 s + sqrt(2·1/200) = 2.1 s.
        assert_eq!(p.time_of(100), 1_000_000_000);
        let t = p.time_of(101);
        assert!((t as i64 - 2_100_000_000).abs() < 1000, "{t}");
        // Past the end the plan goes on at the last rate (200/s); nothing there is sent.
        assert!((p.time_of(400) as i64 - 4_000_000_000).abs() <= 1);
        // A profile that ends at rate 0 reaches its total at its end (where nothing is sent
        // any more), and never a slot past it.
        let q = stages(0.0, &[(1.0, 10.0), (1.0, 0.0)]);
        assert_eq!(q.time_of(10), 2_000_000_000);
        assert_eq!(q.time_of(11), u64::MAX);
        assert!(q.time_of(9) < 2_000_000_000);
    }

    #[test]
    fn stages_refuse_what_plans_nothing() {
        let st = |d: f64, r: f64| Stage {
            duration: std::time::Duration::from_secs_f64(d),
            target: r,
        };
        assert!(Stages::new(0.0, vec![]).is_err());
        assert!(Stages::new(0.0, vec![st(0.0, 100.0)]).is_err());
        assert!(Stages::new(0.0, vec![st(1.0, 0.0)]).is_err());
        assert!(Stages::new(0.0, vec![st(1.0, -5.0)]).is_err());
        assert!(Stages::new(f64::NAN, vec![st(1.0, 5.0)]).is_err());
    }

    #[test]
    fn poisson_plans_are_reproducible_and_read_in_any_order() {
        let p = RateProfile::Constant(1000.0);
        let a = Plan::with_arrivals(p.clone(), Arrivals::Poisson { seed: 7 }, 1, 4);
        let b = Plan::with_arrivals(p.clone(), Arrivals::Poisson { seed: 7 }, 1, 4);
        let forward: Vec<u64> = (0..500).map(|k| a.intended_ns(k)).collect();
        let backward: Vec<u64> = (0..500).rev().map(|k| b.intended_ns(k)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        assert!(forward.windows(2).all(|w| w[0] <= w[1]));
        let other = Plan::with_arrivals(p.clone(), Arrivals::Poisson { seed: 8 }, 1, 4);
        assert_ne!(forward[10], other.intended_ns(10));
        let t = forward[250];
        let n = a.slots_before(t);
        assert!(n == 0 || a.intended_ns(n - 1) < t);
        assert!(a.intended_ns(n) >= t);
    }

    #[test]
    fn poisson_gaps_are_exponential_at_the_rate() {
        // 4 connections at 2000 req/s in all: each at 500/s, mean gap 2 ms; over 20000
        // arrivals the union's count in 10 s is 20000 ± 3%, and the gaps' coefficient of
        // variation is 1 (an exponential's), not 0 (a uniform plan's).
        let p = RateProfile::Constant(2000.0);
        let mut gaps = Vec::new();
        let mut count = 0u64;
        for i in 0..4 {
            let pl = Plan::with_arrivals(p.clone(), Arrivals::Poisson { seed: 42 }, i, 4);
            count += pl.slots_before(10_000_000_000);
            let t: Vec<u64> = (0..5000).map(|k| pl.intended_ns(k)).collect();
            gaps.extend(t.windows(2).map(|w| (w[1] - w[0]) as f64));
        }
        assert!((19_400..=20_600).contains(&count), "{count}");
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 2e6).abs() < 2e6 * 0.03, "{mean}");
        let cv = var.sqrt() / mean;
        assert!((cv - 1.0).abs() < 0.05, "{cv}");
    }

    #[test]
    fn threads_get_round_robin_connections() {
        assert_eq!(connections_of_thread(0, 2, 5), vec![0, 2, 4]);
        assert_eq!(connections_of_thread(1, 2, 5), vec![1, 3]);
    }
}
