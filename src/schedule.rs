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
//! honest. `RateProfile` is the seam for rates that change over time (ramps, stages).

/// How the total request rate behaves over the run.
#[derive(Debug, Clone, PartialEq)]
pub enum RateProfile {
    /// A constant total rate in requests per second (must be > 0).
    Constant(f64),
}

impl RateProfile {
    /// Nanoseconds after `t0` at which global slot `j` is due.
    #[inline]
    pub fn time_of(&self, j: u64) -> u64 {
        match self {
            RateProfile::Constant(rate) => (j as f64 * (1e9 / rate)) as u64,
        }
    }

    /// Number of global slots due before `t_ns`: the least `j` with `time_of(j) >= t_ns`.
    /// Exact (agrees with `time_of` at every boundary), in O(1).
    pub fn slots_before(&self, t_ns: u64) -> u64 {
        match self {
            RateProfile::Constant(rate) => {
                // The estimate is off by a rounding step at most; `time_of` settles it.
                let mut j = (t_ns as f64 * rate / 1e9).ceil() as u64;
                while j > 0 && self.time_of(j - 1) >= t_ns {
                    j -= 1;
                }
                while self.time_of(j) < t_ns {
                    j += 1;
                }
                j
            }
        }
    }
}

/// One connection's plan: its slice of the global slot sequence.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Index of the first slot this plan owns (the connection's global index).
    first: u64,
    /// Distance between this plan's slots in the global sequence (the total connection count).
    stride: u64,
    /// The shared rate profile.
    profile: RateProfile,
}

impl Plan {
    /// The plan of connection `index` out of `connections`, sharing `profile`.
    pub fn new(profile: RateProfile, index: usize, connections: usize) -> Plan {
        assert!(connections > 0 && index < connections);
        Plan {
            first: index as u64,
            stride: connections as u64,
            profile,
        }
    }

    /// Nanoseconds after `t0` at which this plan's `k`-th request is intended.
    #[inline]
    pub fn intended_ns(&self, k: u64) -> u64 {
        self.profile.time_of(self.first + k * self.stride)
    }

    /// Number of this plan's requests intended before `t_ns`: the least `k` with
    /// `intended_ns(k) >= t_ns`.
    pub fn slots_before(&self, t_ns: u64) -> u64 {
        let global = self.profile.slots_before(t_ns);
        global.saturating_sub(self.first).div_ceil(self.stride)
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

    #[test]
    fn threads_get_round_robin_connections() {
        assert_eq!(connections_of_thread(0, 2, 5), vec![0, 2, 4]);
        assert_eq!(connections_of_thread(1, 2, 5), vec![1, 3]);
    }
}
