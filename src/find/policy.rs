//! The search policy of `loadgen find`, as a pure function: given the steps run so far and
//! their verdicts, which rate to run next (and for how long), or what was found. No I/O and
//! no clock, so every path (climb, bisect, confirm, step down, invalid) is unit-tested.
//!
//! The search climbs geometrically from the start rate by `factor` until a step fails or
//! `max` is reached; then bisects between the highest passing and the lowest failing rate
//! until they are within `precision` of each other; then confirms the highest passing rate
//! with a longer run. A failed confirmation steps down by `precision` and confirms again,
//! at most `confirm_tries` times in all. A step the generator limited (invalid) ends the
//! search: above it, nothing measured would be the server's.

/// The search's parameters (validated by the CLI).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// First rate, req/s.
    pub start: f64,
    /// Highest rate tried, req/s (>= `start`).
    pub max: f64,
    /// Factor between climbing steps (> 1).
    pub factor: f64,
    /// Relative gap at which bisection stops, and the step down after a failed confirmation
    /// (a fraction, e.g. 0.02).
    pub precision: f64,
    /// Whether the found rate is confirmed by a longer run.
    pub confirm: bool,
    /// Confirmation runs at most (the first and the step-downs).
    pub confirm_tries: usize,
    /// The lowest rate that may be run (one request a second per thread).
    pub min: f64,
}

/// Which phase of the search a step belongs to (its length follows: a confirmation is the
/// longer run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Climbing from the start rate by the factor.
    Climb,
    /// Bisecting between the highest pass and the lowest fail.
    Bisect,
    /// The longer run that confirms a rate.
    Confirm,
}

impl Kind {
    /// The name used in the text and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Climb => "climb",
            Kind::Bisect => "bisect",
            Kind::Confirm => "confirm",
        }
    }
}

/// A step's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every threshold held (and the rate was achieved).
    Pass,
    /// A threshold failed (or the server did not keep up with the rate).
    Fail,
    /// The generator, not the server, was the limit: the step says nothing about the server.
    Invalid,
}

impl Verdict {
    /// The name used in the text and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Invalid => "invalid",
        }
    }
}

/// One step that was run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tried {
    /// Its rate, req/s.
    pub rate: f64,
    /// Its phase.
    pub kind: Kind,
    /// Its verdict.
    pub verdict: Verdict,
}

/// Where the search ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum End {
    /// `rate` holds (confirmed, when confirmation is on); `first_fail` is the lowest rate
    /// above it that failed (`None`: it held up to `max`).
    Found {
        /// The highest rate at which every threshold held.
        rate: f64,
        /// The lowest failing rate above it.
        first_fail: Option<f64>,
    },
    /// The very first step failed: the server does not hold even the start rate.
    FirstFailed,
    /// Every confirmation failed; `first_fail` is the lowest rate that failed.
    NotConfirmed {
        /// The lowest rate that failed.
        first_fail: f64,
    },
    /// The step at `rate` was limited by the generator.
    Invalid {
        /// The invalid step's rate.
        rate: f64,
    },
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run a step at `rate`.
    Run {
        /// The rate, req/s (whole).
        rate: f64,
        /// Its phase.
        kind: Kind,
    },
    /// The search is over.
    Done(End),
}

/// The highest rate that passed among `steps` of the climb and bisect phases.
pub fn highest_pass(steps: &[Tried]) -> Option<f64> {
    steps
        .iter()
        .filter(|t| t.kind != Kind::Confirm && t.verdict == Verdict::Pass)
        .map(|t| t.rate)
        .reduce(f64::max)
}

/// The lowest rate above `above` that failed, confirmations included.
pub fn lowest_fail(steps: &[Tried], above: f64) -> Option<f64> {
    steps
        .iter()
        .filter(|t| t.verdict == Verdict::Fail && t.rate > above)
        .map(|t| t.rate)
        .reduce(f64::min)
}

impl Policy {
    /// What to run after `steps` (in the order they ran).
    pub fn next(&self, steps: &[Tried]) -> Next {
        let Some(last) = steps.last() else {
            return self.run(self.start, Kind::Climb);
        };
        if last.verdict == Verdict::Invalid {
            return Next::Done(End::Invalid { rate: last.rate });
        }
        let confirms = steps.iter().filter(|t| t.kind == Kind::Confirm).count();
        if last.kind == Kind::Confirm {
            if last.verdict == Verdict::Pass {
                return Next::Done(End::Found {
                    rate: last.rate,
                    first_fail: lowest_fail(steps, last.rate),
                });
            }
            let down = (last.rate * (1.0 - self.precision)).floor();
            if confirms >= self.confirm_tries || down < self.min {
                return Next::Done(End::NotConfirmed {
                    first_fail: lowest_fail(steps, 0.0).unwrap_or(last.rate),
                });
            }
            return self.run(down, Kind::Confirm);
        }
        let Some(lo) = highest_pass(steps) else {
            return Next::Done(End::FirstFailed);
        };
        match lowest_fail(steps, lo) {
            None if lo >= self.max => self.found(lo, None),
            None => self.run((lo * self.factor).min(self.max), Kind::Climb),
            Some(hi) => {
                let mid = ((lo + hi) / 2.0).round();
                if hi - lo <= self.precision * lo || mid <= lo || mid >= hi {
                    self.found(lo, Some(hi))
                } else {
                    self.run(mid, Kind::Bisect)
                }
            }
        }
    }

    /// The end of the short steps: confirm `lo`, or (without confirmation) report it.
    fn found(&self, lo: f64, first_fail: Option<f64>) -> Next {
        if self.confirm {
            Next::Run {
                rate: lo,
                kind: Kind::Confirm,
            }
        } else {
            Next::Done(End::Found {
                rate: lo,
                first_fail,
            })
        }
    }

    /// A step at `rate`, rounded to a whole number of requests a second.
    fn run(&self, rate: f64, kind: Kind) -> Next {
        Next::Run {
            rate: rate.round().max(self.min),
            kind,
        }
    }
}

/// The start rate when none is given: a tenth of what a closed-loop probe achieved (well
/// below the server's capacity, so the first step passes), at least `min`.
pub fn start_from_probe(achieved: f64, min: f64) -> f64 {
    (achieved / 10.0).round().max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            start: 100.0,
            max: 1e9,
            factor: 2.0,
            precision: 0.02,
            confirm: true,
            confirm_tries: 3,
            min: 1.0,
        }
    }

    /// Runs the policy against a server that passes every step at or below `capacity`
    /// (confirmations at or below `confirm_capacity`), and is generator-limited at or above
    /// `generator`; returns the steps and where it ended.
    fn search(
        p: &Policy,
        capacity: f64,
        confirm_capacity: f64,
        generator: f64,
    ) -> (Vec<Tried>, End) {
        let mut steps = Vec::new();
        loop {
            match p.next(&steps) {
                Next::Done(end) => return (steps, end),
                Next::Run { rate, kind } => {
                    let limit = if kind == Kind::Confirm {
                        confirm_capacity
                    } else {
                        capacity
                    };
                    let verdict = if rate >= generator {
                        Verdict::Invalid
                    } else if rate <= limit {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    };
                    steps.push(Tried {
                        rate,
                        kind,
                        verdict,
                    });
                    assert!(steps.len() < 100, "no end: {steps:?}");
                }
            }
        }
    }

    fn rates(steps: &[Tried], kind: Kind) -> Vec<f64> {
        steps
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.rate)
            .collect()
    }

    #[test]
    fn climbs_by_the_factor_then_bisects_then_confirms() {
        let (steps, end) = search(&policy(), 2000.0, 2000.0, f64::INFINITY);
        assert_eq!(
            rates(&steps, Kind::Climb),
            [100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]
        );
        let bisect = rates(&steps, Kind::Bisect);
        assert_eq!(bisect[..2], [2400.0, 2000.0]);
        // Bisection narrows [2000, 2400) until the gap is within 2%.
        let Next::Done(End::Found { rate, first_fail }) = policy().next(&steps) else {
            panic!("{end:?}")
        };
        assert_eq!(end, End::Found { rate, first_fail });
        assert!((1960.0..=2000.0).contains(&rate), "{rate}");
        let hi = first_fail.unwrap();
        assert!(hi > rate && hi - rate <= 0.02 * rate, "{rate} {hi}");
        // Confirmed once, at the rate found.
        assert_eq!(rates(&steps, Kind::Confirm), [rate]);
    }

    #[test]
    fn a_failed_confirmation_steps_down_by_the_precision() {
        // Short steps pass up to 2000, the longer confirmations only up to 1930.
        let (steps, end) = search(&policy(), 2000.0, 1930.0, f64::INFINITY);
        let confirms = rates(&steps, Kind::Confirm);
        assert_eq!(confirms.len(), 3, "{steps:?}");
        assert_eq!(confirms[1], (confirms[0] * 0.98).floor());
        assert_eq!(confirms[2], (confirms[1] * 0.98).floor());
        let End::Found { rate, first_fail } = end else {
            panic!("{end:?}")
        };
        assert_eq!(rate, confirms[2]);
        // The first failing rate is the lowest failure above it: the failed confirmation.
        assert_eq!(first_fail, Some(confirms[1]));
    }

    #[test]
    fn confirmation_gives_up_after_its_tries() {
        let (steps, end) = search(&policy(), 2000.0, 1000.0, f64::INFINITY);
        assert_eq!(rates(&steps, Kind::Confirm).len(), 3);
        let low = rates(&steps, Kind::Confirm)[2];
        assert_eq!(end, End::NotConfirmed { first_fail: low });
    }

    #[test]
    fn the_first_step_failing_ends_it() {
        let (steps, end) = search(&policy(), 50.0, 50.0, f64::INFINITY);
        assert_eq!(steps.len(), 1);
        assert_eq!(end, End::FirstFailed);
    }

    #[test]
    fn an_invalid_step_ends_it() {
        // The generator tops out at 1000 req/s, below the server's capacity.
        let (steps, end) = search(&policy(), 5000.0, 5000.0, 1000.0);
        assert_eq!(
            rates(&steps, Kind::Climb),
            [100.0, 200.0, 400.0, 800.0, 1600.0]
        );
        assert_eq!(end, End::Invalid { rate: 1600.0 });
        // Also in the middle of a bisection or a confirmation.
        let p = policy();
        let s = |rate, kind, verdict| Tried {
            rate,
            kind,
            verdict,
        };
        let steps = [
            s(100.0, Kind::Climb, Verdict::Pass),
            s(200.0, Kind::Climb, Verdict::Fail),
            s(150.0, Kind::Bisect, Verdict::Invalid),
        ];
        assert_eq!(p.next(&steps), Next::Done(End::Invalid { rate: 150.0 }));
    }

    #[test]
    fn max_caps_the_climb_and_is_confirmed() {
        let p = Policy {
            max: 1000.0,
            ..policy()
        };
        let (steps, end) = search(&p, 5000.0, 5000.0, f64::INFINITY);
        assert_eq!(
            rates(&steps, Kind::Climb),
            [100.0, 200.0, 400.0, 800.0, 1000.0]
        );
        assert_eq!(rates(&steps, Kind::Confirm), [1000.0]);
        assert_eq!(
            end,
            End::Found {
                rate: 1000.0,
                first_fail: None
            }
        );
    }

    #[test]
    fn without_confirmation_the_bisection_decides() {
        let p = Policy {
            confirm: false,
            ..policy()
        };
        let (steps, end) = search(&p, 2000.0, 0.0, f64::INFINITY);
        assert!(rates(&steps, Kind::Confirm).is_empty());
        let End::Found { rate, first_fail } = end else {
            panic!("{end:?}")
        };
        assert_eq!(Some(rate), highest_pass(&steps));
        assert_eq!(first_fail, lowest_fail(&steps, rate));
    }

    #[test]
    fn start_is_a_tenth_of_the_probe() {
        assert_eq!(start_from_probe(20_134.0, 2.0), 2013.0);
        assert_eq!(start_from_probe(5.0, 2.0), 2.0);
    }
}
