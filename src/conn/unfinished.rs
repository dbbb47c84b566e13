//! The requests a connection leaves unfinished, and how each counts: a connection's place in
//! its plan ([`Progress`], with the write it has out, [`Out`]), kept where dropping its task
//! can see it, so that a run stopped early or cut at the end of its drain period records the
//! requests still out and the planned slots never sent as lower bounds of their latencies
//! ([`Abandon`] says why and when); a response deadline that passed ([`deadline_missed`]);
//! and the rule that only a request out for the whole `--timeout` is a timeout, while one
//! never sent in time is dropped ([`cut_off`]).

use crate::record::{Stats, Unfinished, MAX_LATENCY_US};
use crate::schedule::Plan;

use super::{Next, ThreadCtx};

/// Why and when a worker dropped its connections' tasks, and so how a dropped connection
/// records the requests it leaves unfinished: its request out, and its slots intended before
/// `before_ns` that it never sent, each with the lower bound `at_ns − intended`.
#[derive(Debug, Clone, Copy)]
pub struct Abandon {
    /// When the requests stopped being awaited, ns since `t0`.
    pub at_ns: u64,
    /// Slots intended before this (ns since `t0`) were due.
    pub before_ns: u64,
    /// Whether they count as timeouts.
    pub why: Unfinished,
}

impl Abandon {
    /// The engine stopped the run now (Ctrl-C, SIGTERM, a script error): what was due until
    /// now, and planned before the end of the run (a stop may come in the drain period), is
    /// unfinished, and not an error.
    pub fn stopped(ctx: &ThreadCtx) -> Abandon {
        let at_ns = ctx.now();
        Abandon {
            at_ns,
            before_ns: at_ns.min(ctx.end_ns),
            why: Unfinished::Stopped,
        }
    }

    /// The drain period of `ctx` is over and a connection still has not ended (stuck in a
    /// connect, say): what was planned before the deadline is unfinished: a request out as a
    /// timeout, slots never sent as dropped.
    pub fn drained(ctx: &ThreadCtx) -> Abandon {
        Abandon {
            at_ns: ctx.cut_ns,
            before_ns: ctx.end_ns,
            why: Unfinished::TimedOut,
        }
    }
}

/// A connection's place in its plan, kept where dropping the connection's task can see it: the
/// engine drops the tasks when it stops the run early, and the requests this connection then
/// leaves unfinished are recorded as lower bounds (open loop), as at the end of a drain period.
pub(super) struct Progress<'a> {
    /// The thread's state (its `abandoned` says whether and how the task was dropped).
    pub(super) ctx: &'a ThreadCtx,
    /// The connection's plan; `None` in closed loop, where nothing is recorded.
    pub(super) plan: Option<&'a Plan>,
    /// The plan's next slot: the first of the write out now, if any, else the next to send.
    pub(super) k: u64,
    /// The write out now, if any.
    pub(super) out: Out,
    /// The connection thinks between requests (the script's `delay()`): it keeps to no plan
    /// beyond its next request, so the slots it has not sent are not owed, and only requests
    /// out are recorded.
    pub(super) thinks: bool,
    /// The connection is being opened: a task dropped at the end of the run (the drain
    /// period's backstop, or closed loop's deadline) counts the attempt as a connect timeout,
    /// so that a listener that never completes a handshake does not go unreported.
    pub(super) connecting: bool,
}

/// A connection's write out now: [`exchange`] keeps it current at every wait, so that a task
/// dropped in the middle of one records exactly the requests still unanswered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    /// The write's intended time (ns since `t0`), from which its requests' latencies count.
    pub(super) intended: u64,
    /// How many slots of the plan the write holds (pipelining: one per request in it).
    pub(super) held: u64,
    /// How many of its requests are still unanswered and unrecorded.
    pub(super) left: u64,
    /// When it was sent (ns since `t0`).
    pub(super) sent: u64,
}

impl Out {
    /// No write out.
    pub(super) const NONE: Out = Out {
        intended: 0,
        held: 0,
        left: 0,
        sent: 0,
    };
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        let Some(a) = self.ctx.abandoned.get() else {
            return;
        };
        let Ok(mut stats) = self.ctx.stats.try_borrow_mut() else {
            return;
        };
        // A connect still pending when the run ended (not when it was stopped early).
        if self.connecting && a.at_ns >= self.ctx.end_ns {
            stats.error(a.at_ns, |e| &mut e.connect);
            stats.errors.connect_timeout += 1;
        }
        let Some(plan) = self.plan else {
            return;
        };
        let out = self.out;
        if out.left > 0 {
            let us = a.at_ns.saturating_sub(out.intended) / 1000;
            let why = match a.why {
                Unfinished::TimedOut => cut_off(self.ctx, out.sent, a.at_ns),
                w => w,
            };
            stats.unfinished_n(us, a.at_ns, out.left, why);
        }
        if !self.thinks {
            // Slots never sent are dropped, not timed out (a stopped run's stay stopped).
            let why = match a.why {
                Unfinished::TimedOut => Unfinished::Dropped,
                w => w,
            };
            let next = self.k + out.held;
            record_unsent(&mut stats, plan, next, a.before_ns, a.at_ns, why);
        }
    }
}

impl Progress<'_> {
    /// The connection's plan has ended: at the end of the drain period, the slots from `k`
    /// that were planned before the end of the run but never sent (the connection was still
    /// busy) are recorded as unfinished. (At the end of the run there are none.) A connection
    /// that thinks owes no slots.
    #[cold]
    pub(super) fn backlog(&self) {
        let Some(plan) = self.plan.filter(|_| !self.thinks) else {
            return;
        };
        let ctx = self.ctx;
        let mut stats = ctx.stats.borrow_mut();
        record_unsent(
            &mut stats,
            plan,
            self.k,
            ctx.end_ns,
            ctx.cut_ns,
            Unfinished::Dropped,
        );
    }
}

/// Records the slots of `plan` from `k` intended before `before_ns` as unfinished at `cut_ns`,
/// each with its lower bound `cut_ns − intended`. Slots whose lower bounds fall in the same
/// histogram bucket are recorded together, so the cost is one record per bucket, not per slot:
/// a plan far beyond the server (`-R 1G`) can leave billions.
#[cold]
pub(super) fn record_unsent(
    stats: &mut Stats,
    plan: &Plan,
    mut k: u64,
    before_ns: u64,
    cut_ns: u64,
    why: Unfinished,
) {
    let end = plan.slots_before(before_ns);
    while k < end {
        // Lower bounds fall as `k` grows; every slot intended by `last` shares this bucket.
        let us = (cut_ns.saturating_sub(plan.intended_ns(k)) / 1000).min(MAX_LATENCY_US);
        let lowest_ns = stats.corrected.lowest_equivalent(us) * 1000;
        let last = cut_ns.saturating_sub(lowest_ns);
        let upto = plan.slots_before(last.saturating_add(1)).clamp(k + 1, end);
        stats.unfinished_n(us, cut_ns, upto - k, why);
        k = upto;
    }
}

/// The deadline passed at `now` (ns since `t0`) with `left` of a write's requests unanswered.
/// Past the drain period they are all unfinished, recorded with their lower bounds (open
/// loop; closed loop has no drain period: the run is over, and a request it happened to have
/// out is no measurement). Before it, they timed out: open loop records each with its lower
/// bound (leaving them out would hide the slowest requests); closed loop counts the write as
/// wrk does, as one error only.
pub(super) fn deadline_missed(
    ctx: &ThreadCtx,
    intended: u64,
    sent: u64,
    now: u64,
    left: usize,
) -> Next {
    let mut stats = ctx.stats.borrow_mut();
    if now >= ctx.cut_ns {
        if ctx.open_loop {
            let us = ctx.cut_ns.saturating_sub(intended) / 1000;
            let why = cut_off(ctx, sent, ctx.cut_ns);
            stats.unfinished_n(us, ctx.cut_ns, left as u64, why);
        }
        Next::Cut
    } else {
        if ctx.open_loop {
            let us = now.saturating_sub(intended.min(sent)) / 1000;
            stats.unfinished_n(us, now, left as u64, Unfinished::TimedOut);
        } else {
            stats.error(now, |e| &mut e.timeout);
        }
        Next::Reconnect
    }
}

/// How a request sent at `sent` and still unanswered when the drain period ended (`at_ns`)
/// counts: as a timeout only if it had been out for `--timeout`; one sent later in the drain
/// period (its connection was busy until then) was cut off by the end of the run, not by the
/// server's slowness, and counts with the planned requests never sent, as dropped.
pub(super) fn cut_off(ctx: &ThreadCtx, sent: u64, at_ns: u64) -> Unfinished {
    if at_ns.saturating_sub(sent) >= ctx.timeout_ns {
        Unfinished::TimedOut
    } else {
        Unfinished::Dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::RateProfile;

    /// Recording a backlog a bucket at a time gives the same histogram, counts and time line
    /// as recording each slot on its own.
    #[test]
    fn unsent_slots_grouped_by_bucket_match_one_by_one() {
        for (rate, c, i, k, before, cut) in [
            (1000.0, 1, 0, 0, 2_000_000_000, 3_500_000_000),
            (7777.0, 13, 5, 3, 10_000_000_000, 10_200_000_000),
            (3.0e6, 2, 1, 17, 1_000_000_000, 1_000_000_000),
            (100.0, 1, 0, 50, 2_000_000_000, 3_000_000_000),
        ] {
            let plan = Plan::new(RateProfile::Constant(rate), i, c);
            let mut grouped = Stats::new();
            record_unsent(&mut grouped, &plan, k, before, cut, Unfinished::TimedOut);
            let mut single = Stats::new();
            let mut j = k;
            while plan.intended_ns(j) < before {
                let lower_bound_us = cut.saturating_sub(plan.intended_ns(j)) / 1000;
                single.unfinished_n(lower_bound_us, cut, 1, Unfinished::TimedOut);
                j += 1;
            }
            assert_eq!(grouped.corrected, single.corrected, "{rate} {c} {i}");
            assert_eq!(grouped.errors, single.errors);
            grouped.timeline.close();
            single.timeline.close();
            assert_eq!(grouped.timeline.intervals(), single.timeline.intervals());
        }
    }
}
