//! Closed-loop ramps (`--conn-stages`): how many connections a closed-loop run keeps in use
//! over time, and when each one is in use. Pure arithmetic — no I/O, no clock.
//!
//! The number in use moves linearly from the previous stage's target to each stage's target
//! over its duration (k6's ramping-vus stages; a `0s` stage is a jump), starting from 0.
//! At time `t`, ⌊N(t)⌋ connections are in use: connection `i` (numbered from 0 across all
//! threads, dealt round-robin as usual) while N(t) ≥ i + 1, so the first connections join
//! first and the last leave first, and the threads stay balanced as the count moves. A
//! connection is opened when it joins and closed when it leaves (after the exchange it has
//! in flight), as a user who arrives and leaves would; in between it sends back to back, as
//! every closed-loop connection does. Locust's "N users at a hatch rate of H a second" is
//! `--conn-stages (N/H)s:N,…`.

use std::time::Duration;

use crate::schedule::Stage;

/// The most connections a profile may ask for (the same bound `-c` has in practice: one file
/// descriptor each).
pub const MAX_CONNECTIONS: f64 = 1_000_000.0;

/// A closed-loop connection profile: the stages as given.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnProfile {
    stages: std::sync::Arc<[Stage]>,
}

/// When one connection is in use: half-open windows `[from, to)`, ns since the run's start,
/// in order, never overlapping or touching. Connection tasks keep a cursor into it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Turns {
    windows: Vec<(u64, u64)>,
    /// The first window that has not ended yet, as last seen.
    next: std::cell::Cell<usize>,
}

impl ConnProfile {
    /// A profile through `stages`, starting from no connection. Fails (with a message) when a
    /// target is negative, not a whole number or over [`MAX_CONNECTIONS`], when the stages
    /// last no time, or when no connection is ever in use.
    pub fn new(stages: Vec<Stage>) -> Result<ConnProfile, String> {
        for s in &stages {
            if !(s.target.is_finite() && s.target >= 0.0 && s.target.fract() == 0.0) {
                return Err(format!(
                    "a connection count must be a whole number >= 0, got {}",
                    s.target
                ));
            }
            if s.target > MAX_CONNECTIONS {
                return Err(format!(
                    "at most {MAX_CONNECTIONS} connections, got {}",
                    s.target
                ));
            }
        }
        let p = ConnProfile {
            stages: stages.into(),
        };
        if p.duration().is_zero() {
            return Err("the stages last no time (every stage is 0s)".into());
        }
        if p.peak() == 0 {
            return Err("no connection is ever in use (every target is 0)".into());
        }
        if p.turns(0).windows.is_empty() {
            return Err(
                "no connection is in use before the end: a ramp reaches N only at \
                 its end, so hold it with another stage (e.g. 10s:5,20s:5)"
                    .into(),
            );
        }
        Ok(p)
    }

    /// The sum of profiles of one shape (the same stage lengths): the targets add up, as the
    /// connections of runs side by side do. `None` when their shapes differ.
    pub fn sum(parts: &[&ConnProfile]) -> Option<ConnProfile> {
        let lists: Vec<&[Stage]> = parts.iter().map(|p| &p.stages[..]).collect();
        ConnProfile::new(crate::schedule::sum_stages(&lists)?).ok()
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The run's length: the stages' sum.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The most connections in use at once: the run's connection count (`-c`).
    pub fn peak(&self) -> usize {
        self.stages.iter().map(|s| s.target).fold(0.0, f64::max) as usize
    }

    /// The profile as points `(t, N)` (seconds): from `(0, 0)`, one per stage end; a jump
    /// repeats its time.
    fn points(&self) -> Vec<(f64, f64)> {
        let mut t = 0.0;
        let mut out = vec![(0.0, 0.0)];
        for s in self.stages.iter() {
            t += s.duration.as_secs_f64();
            out.push((t, s.target));
        }
        out
    }

    /// N(t): how many connections the profile has at `t_ns` after the start, before
    /// rounding down (after a jump at exactly `t_ns`, the value after it).
    pub fn at(&self, t_ns: u64) -> f64 {
        let t = t_ns as f64 / 1e9;
        let pts = self.points();
        let mut v = 0.0;
        for w in pts.windows(2) {
            let ((ta, va), (tb, vb)) = (w[0], w[1]);
            if t < ta {
                break;
            }
            v = if tb <= ta || t >= tb {
                vb
            } else {
                va + (vb - va) * (t - ta) / (tb - ta)
            };
        }
        v
    }

    /// How many connections are in use at `t_ns`: ⌊N(t)⌋.
    pub fn in_use(&self, t_ns: u64) -> usize {
        // A hair of tolerance: a ramp's crossing computed in f64 must not lose a connection.
        (self.at(t_ns) + 1e-9).floor() as usize
    }

    /// When connection `i` (from 0) is in use: while N(t) ≥ i + 1, within the run.
    pub fn turns(&self, i: usize) -> Turns {
        let h = (i + 1) as f64;
        let ns = |t: f64| (t * 1e9).round() as u64;
        let pts = self.points();
        let end = ns(pts.last().map_or(0.0, |p| p.0));
        let mut windows = Vec::new();
        let mut open: Option<u64> = None;
        for w in pts.windows(2) {
            let ((ta, va), (tb, vb)) = (w[0], w[1]);
            if tb <= ta {
                // A jump at `ta`.
                match (open, vb >= h) {
                    (None, true) => open = Some(ns(ta)),
                    (Some(from), false) => {
                        windows.push((from, ns(ta)));
                        open = None;
                    }
                    _ => {}
                }
                continue;
            }
            // A linear stage: it crosses the threshold at most once.
            if open.is_none() && vb >= h {
                let at = if va >= h {
                    ta
                } else {
                    ta + (h - va) / (vb - va) * (tb - ta)
                };
                open = Some(ns(at));
            } else if let (Some(from), true) = (open, vb < h) {
                let at = ta + (va - h) / (va - vb) * (tb - ta);
                windows.push((from, ns(at)));
                open = None;
            }
        }
        if let Some(from) = open {
            windows.push((from, end));
        }
        windows.retain(|&(a, b)| b > a);
        // Windows that touch (a jump down and up at one instant) are one.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(windows.len());
        for w in windows {
            match merged.last_mut() {
                Some(last) if last.1 >= w.0 => last.1 = last.1.max(w.1),
                _ => merged.push(w),
            }
        }
        Turns {
            windows: merged,
            next: 0.into(),
        }
    }
}

/// Where a connection stands at an instant ([`Turns::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// In use, until the given instant (ns since the start).
    Until(u64),
    /// Not in use; its next window starts at the given instant.
    From(u64),
    /// Never in use again.
    Over,
}

impl Turns {
    /// The windows, `[from, to)` ns since the start.
    pub fn windows(&self) -> &[(u64, u64)] {
        &self.windows
    }

    /// Whether the connection is in use at the start of the run (then opened before it).
    pub fn at_start(&self) -> bool {
        self.windows.first().is_some_and(|w| w.0 == 0)
    }

    /// Where the connection stands at `now_ns`. Times only move forward, so a cursor skips
    /// the windows that have ended: O(1) per call in a run.
    #[inline]
    pub fn at(&self, now_ns: u64) -> Turn {
        let mut i = self.next.get();
        while self.windows.get(i).is_some_and(|w| w.1 <= now_ns) {
            i += 1;
        }
        self.next.set(i);
        match self.windows.get(i) {
            Some(&(from, to)) if from <= now_ns => Turn::Until(to),
            Some(&(from, _)) => Turn::From(from),
            None => Turn::Over,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stages from `(ms, target)` pairs.
    fn stages(spec: &[(u64, f64)]) -> Vec<Stage> {
        spec.iter()
            .map(|&(ms, target)| Stage {
                duration: Duration::from_millis(ms),
                target,
            })
            .collect()
    }

    fn profile(spec: &[(u64, f64)]) -> ConnProfile {
        ConnProfile::new(stages(spec)).unwrap()
    }

    const S: u64 = 1_000_000_000;

    /// A ramp 0 → 4 over 4 s, held 2 s: connection i joins at (i + 1) s and stays.
    #[test]
    fn a_ramp_up_adds_connections_one_by_one() {
        let p = profile(&[(4000, 4.0), (2000, 4.0)]);
        assert_eq!(p.peak(), 4);
        assert_eq!(p.duration(), Duration::from_secs(6));
        for i in 0..4 {
            assert_eq!(p.turns(i).windows(), &[((i as u64 + 1) * S, 6 * S)], "{i}");
        }
        assert_eq!(p.in_use(S / 2), 0);
        assert_eq!(p.in_use(S), 1);
        assert_eq!(p.in_use(2500 * S / 1000), 2);
        assert_eq!(p.in_use(5 * S), 4);
        assert!(!p.turns(0).at_start());
    }

    /// Up, down, up again: the last to join leaves first, and joins again.
    #[test]
    fn ramps_down_and_up_again() {
        // 0 → 2 over 2 s, 2 → 0 over 2 s, 0 → 2 over 2 s.
        let p = profile(&[(2000, 2.0), (2000, 0.0), (2000, 2.0)]);
        assert_eq!(p.turns(0).windows(), &[(S, 3 * S), (5 * S, 6 * S)]);
        // Connection 1 is in use at the peaks only (N = 2 at exactly 2 s and at 6 s, the end).
        assert!(p.turns(1).windows().is_empty());
        assert_eq!(p.in_use(2 * S), 2);
    }

    /// Jumps: `0s` stages open and close connections at once.
    #[test]
    fn jumps_open_and_close_at_once() {
        let p = profile(&[
            (0, 3.0),
            (1000, 3.0),
            (0, 1.0),
            (1000, 1.0),
            (0, 2.0),
            (1000, 2.0),
        ]);
        assert_eq!(p.turns(0).windows(), &[(0, 3 * S)]);
        assert_eq!(p.turns(1).windows(), &[(0, S), (2 * S, 3 * S)]);
        assert_eq!(p.turns(2).windows(), &[(0, S)]);
        assert!(p.turns(0).at_start());
        assert_eq!(p.in_use(0), 3);
        assert_eq!(p.in_use(S), 1);
        assert_eq!(p.in_use(2 * S), 2);
    }

    /// A step down and up at one instant leaves the connection in use.
    #[test]
    fn a_dip_at_one_instant_is_no_leave() {
        let p = profile(&[(0, 2.0), (1000, 2.0), (0, 1.0), (0, 2.0), (1000, 2.0)]);
        assert_eq!(p.turns(1).windows(), &[(0, 2 * S)]);
    }

    #[test]
    fn the_cursor_follows_time() {
        let p = profile(&[(2000, 2.0), (2000, 0.0), (2000, 2.0)]);
        let t = p.turns(0);
        assert_eq!(t.at(0), Turn::From(S));
        assert_eq!(t.at(S), Turn::Until(3 * S));
        assert_eq!(t.at(3 * S), Turn::From(5 * S));
        assert_eq!(t.at(5 * S + 1), Turn::Until(6 * S));
        assert_eq!(t.at(6 * S), Turn::Over);
    }

    #[test]
    fn bad_profiles_say_why() {
        let bad = |spec: &[(u64, f64)]| ConnProfile::new(stages(spec)).unwrap_err();
        assert!(bad(&[(1000, 2.5)]).contains("whole number"));
        assert!(bad(&[(1000, -1.0)]).contains("whole number"));
        assert!(bad(&[(0, 5.0)]).contains("no time"));
        assert!(bad(&[(1000, 0.0)]).contains("every target is 0"));
        assert!(bad(&[(1000, 1.0)]).contains("hold it"));
        assert!(bad(&[(1000, 2e6)]).contains("at most"));
    }
}
