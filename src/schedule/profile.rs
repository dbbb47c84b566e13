//! Rate profiles: a constant rate or stages (ramps, jumps, steps), as the plan reads them —
//! the cumulative planned count, its inverse (when slot j is due), the rate at an instant.
//! Pure arithmetic.

/// How the total request rate behaves over the run.
#[derive(Debug, Clone, PartialEq)]
pub enum RateProfile {
    /// A constant total rate in requests per second (must be > 0).
    Constant(f64),
    /// A rate that moves linearly between targets over stages (`--stages`, `--step`).
    Stages(Stages),
}

/// One stage of a profile: the rate moves linearly to `target` (req/s) over `duration`; a
/// zero duration is a jump.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: std::time::Duration,
    /// The rate at its end, req/s (>= 0).
    pub target: f64,
}

/// A piecewise-linear rate profile: the stages as given, and the cumulative planned count at
/// the start of each (so that slot `j`'s time is found by a binary search and one square
/// root: the inverse of the count, a quadratic within a linear stage).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages {
    /// The rate at the start, req/s (the first stage moves from it).
    start: f64,
    /// The stages, in order.
    stages: std::sync::Arc<[Stage]>,
    /// One segment per stage of non-zero duration.
    segs: std::sync::Arc<[Seg]>,
}

/// A stage as arithmetic: from `t0` (s) for `d` (s), the rate moves from `r0` to `r1`;
/// `n0` requests were planned before it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seg {
    t0: f64,
    d: f64,
    r0: f64,
    r1: f64,
    n0: f64,
}

impl Seg {
    /// Requests planned in this segment.
    fn count(&self) -> f64 {
        (self.r0 + self.r1) / 2.0 * self.d
    }

    /// Requests planned from the segment's start to `tau` seconds into it.
    fn count_to(&self, tau: f64) -> f64 {
        let a = (self.r1 - self.r0) / self.d;
        self.r0 * tau + a * tau * tau / 2.0
    }

    /// Seconds into the segment at which `dn` requests have been planned (the count's
    /// inverse), written to stay exact when the slope is small or negative.
    fn time_to(&self, dn: f64) -> f64 {
        if dn <= 0.0 {
            return 0.0;
        }
        let a = (self.r1 - self.r0) / self.d;
        if a.abs() < 1e-12 {
            return dn / self.r0;
        }
        let disc = (self.r0 * self.r0 + 2.0 * a * dn).max(0.0);
        2.0 * dn / (self.r0 + disc.sqrt())
    }
}

impl Stages {
    /// A profile starting at `start` req/s through `stages`. Fails (with a message) when a
    /// rate is negative or not finite, or when the profile plans no request at all.
    pub fn new(start: f64, stages: Vec<Stage>) -> Result<Stages, String> {
        if !(start.is_finite() && start >= 0.0) {
            return Err(format!("the start rate {start} must be >= 0"));
        }
        let (mut t, mut n, mut r) = (0.0f64, 0.0f64, start);
        let mut segs = Vec::new();
        for st in &stages {
            if !(st.target.is_finite() && st.target >= 0.0) {
                return Err(format!("the rate {} must be >= 0", st.target));
            }
            let d = st.duration.as_secs_f64();
            if d > 0.0 {
                let seg = Seg {
                    t0: t,
                    d,
                    r0: r,
                    r1: st.target,
                    n0: n,
                };
                n += seg.count();
                t += d;
                segs.push(seg);
            }
            r = st.target;
        }
        if stages.is_empty() || t <= 0.0 {
            return Err("the stages last no time".into());
        }
        if n < 1.0 {
            return Err("the stages plan less than one request".into());
        }
        Ok(Stages {
            start,
            stages: stages.into(),
            segs: segs.into(),
        })
    }

    /// The rate at the start, req/s.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// The stages as given.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stages' total length.
    pub fn duration(&self) -> std::time::Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Requests planned over the whole profile.
    pub fn total(&self) -> f64 {
        self.segs.last().map_or(0.0, |s| s.n0 + s.count())
    }

    /// The highest rate anywhere in the profile, req/s.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, f64::max)
    }

    /// The sum of profiles of one shape (the same stage lengths, in order): start and targets
    /// add up, so the sum plans, over every interval, what the parts plan together. `None`
    /// when their shapes differ (or there are none).
    pub fn sum(parts: &[&Stages]) -> Option<Stages> {
        let lists: Vec<&[Stage]> = parts.iter().map(|p| &p.stages[..]).collect();
        let start = parts.iter().map(|p| p.start).sum();
        Stages::new(start, sum_stages(&lists)?).ok()
    }

    /// The lowest rate of the profile, req/s (a profile is linear between its targets).
    pub fn lowest(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, f64::min)
    }

    /// The rate at `t` seconds (after a jump at exactly `t`, the rate after it).
    fn rate_at(&self, t: f64) -> f64 {
        let i = self.segs.partition_point(|s| s.t0 + s.d <= t);
        match self.segs.get(i) {
            Some(s) if t >= s.t0 => s.r0 + (s.r1 - s.r0) * (t - s.t0) / s.d,
            // Between segments only at a jump: the rate is the next segment's start.
            Some(s) => s.r0,
            None => self.last_rate(),
        }
    }

    /// The rate after the end (the last stage's target): the plan goes on at it, though no
    /// slot after the end is ever sent.
    fn last_rate(&self) -> f64 {
        self.stages.last().map_or(self.start, |s| s.target)
    }

    /// Requests planned before `t` seconds.
    fn count_at(&self, t: f64) -> f64 {
        let i = self.segs.partition_point(|s| s.t0 + s.d <= t);
        match self.segs.get(i) {
            Some(s) => s.n0 + s.count_to((t - s.t0).max(0.0)),
            None => {
                let end = self.segs.last().map_or(0.0, |s| s.t0 + s.d);
                self.total() + self.last_rate() * (t - end).max(0.0)
            }
        }
    }

    /// Seconds at which `x` requests have been planned: the first instant the count reaches
    /// it (the end of a stage, when it ends on exactly `x`).
    fn time_at(&self, x: f64) -> f64 {
        let i = self.segs.partition_point(|s| s.n0 + s.count() < x);
        match self.segs.get(i) {
            Some(s) => s.t0 + s.time_to(x - s.n0),
            None => {
                let end = self.segs.last().map_or(0.0, |s| s.t0 + s.d);
                let r = self.last_rate();
                if r > 0.0 {
                    end + (x - self.total()) / r
                } else {
                    f64::INFINITY
                }
            }
        }
    }
}

impl RateProfile {
    /// Nanoseconds after `t0` at which global slot `j` is due.
    #[inline]
    pub fn time_of(&self, j: u64) -> u64 {
        match self {
            RateProfile::Constant(rate) => (j as f64 * (1e9 / rate)) as u64,
            RateProfile::Stages(_) => self.time_at_count(j as f64),
        }
    }

    /// Nanoseconds after `t0` at which `x` (a real number) requests have been planned: the
    /// inverse of the profile's cumulative count. Saturates at `u64::MAX` (never).
    #[inline]
    pub fn time_at_count(&self, x: f64) -> u64 {
        match self {
            RateProfile::Constant(rate) => (x * (1e9 / rate)) as u64,
            RateProfile::Stages(s) => {
                let t = s.time_at(x) * 1e9;
                if t >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    t as u64
                }
            }
        }
    }

    /// Requests planned in `[0, t_ns)`, as a real number (the cumulative count).
    pub fn count_before(&self, t_ns: u64) -> f64 {
        match self {
            RateProfile::Constant(rate) => t_ns as f64 * rate / 1e9,
            RateProfile::Stages(s) => s.count_at(t_ns as f64 / 1e9),
        }
    }

    /// Requests planned in `[a_ns, b_ns)`.
    pub fn count_between(&self, a_ns: u64, b_ns: u64) -> f64 {
        (self.count_before(b_ns) - self.count_before(a_ns)).max(0.0)
    }

    /// The highest rate of the profile, req/s.
    pub fn peak(&self) -> f64 {
        match self {
            RateProfile::Constant(r) => *r,
            RateProfile::Stages(s) => s.peak(),
        }
    }

    /// The planned rate at `t_ns` after the start, req/s.
    pub fn rate_at(&self, t_ns: u64) -> f64 {
        match self {
            RateProfile::Constant(r) => *r,
            RateProfile::Stages(s) => s.rate_at(t_ns as f64 / 1e9),
        }
    }

    /// Number of global slots due before `t_ns`: the least `j` with `time_of(j) >= t_ns`.
    /// Exact (agrees with `time_of` at every boundary); O(1) for a constant rate.
    pub fn slots_before(&self, t_ns: u64) -> u64 {
        // The estimate is off by a rounding step at most; `time_of` settles it.
        let mut j = self.count_before(t_ns).ceil().min(u64::MAX as f64 / 2.0) as u64;
        while j > 0 && self.time_of(j - 1) >= t_ns {
            j -= 1;
        }
        while self.time_of(j) < t_ns {
            j += 1;
        }
        j
    }
}

/// The stage lists of profiles of one shape (the same stage lengths, in order) added up,
/// target by target; `None` when their shapes differ or there are none. Both kinds of
/// profile (rates, connections) merge with it.
pub fn sum_stages(lists: &[&[Stage]]) -> Option<Vec<Stage>> {
    let first = lists.first()?;
    let same = lists.iter().all(|l| {
        l.len() == first.len()
            && l.iter()
                .zip(first.iter())
                .all(|(a, b)| a.duration == b.duration)
    });
    same.then(|| {
        (0..first.len())
            .map(|i| Stage {
                duration: first[i].duration,
                target: lists.iter().map(|l| l[i].target).sum(),
            })
            .collect()
    })
}
