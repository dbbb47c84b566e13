//! `loadgen find --html FILE`: the search as a page of the HTML report
//! ([`crate::report::html`]): every step's rate tried against its corrected p99 and its rate
//! tried against achieved, coloured by verdict, the steps table, the thresholds and what was
//! found.

use super::{Settings, Step};
use crate::report::charts;
use crate::report::html::{self, FindPage};
use crate::units::format_duration;

/// The outcome of a search still going (its dashboard's pages before the last).
pub(crate) const RUNNING: &str = "running";

/// The page for the steps run so far and how the search ended (`outcome` as in the JSON).
pub(crate) fn render(
    s: &Settings,
    steps: &[Step],
    outcome: &str,
    max_rate: Option<f64>,
    first_fail: Option<f64>,
) -> String {
    html::page(&data(s, steps, outcome, max_rate, first_fail), "")
}

/// The page's data; `outcome` [`RUNNING`] while the search goes on (the dashboard).
pub(crate) fn data(
    s: &Settings,
    steps: &[Step],
    outcome: &str,
    max_rate: Option<f64>,
    first_fail: Option<f64>,
) -> charts::ChartData {
    let running = outcome == RUNNING;
    let found = outcome == "found";
    let rate = |r: Option<f64>| r.map_or("none".to_string(), |r| format!("{r:.0} req/s"));
    let line = if running {
        format!(
            "searching: {} step{} so far; highest rate meeting every threshold so far: {}; first failing rate: {}",
            steps.len(),
            if steps.len() == 1 { "" } else { "s" },
            rate(max_rate),
            rate(first_fail)
        )
    } else {
        format!(
            "outcome: {outcome}; highest rate meeting every threshold: {}; first failing rate: {}",
            rate(max_rate),
            rate(first_fail)
        )
    };
    // The thresholds' limits, from a step's verdicts (every step has the same thresholds).
    let thresholds = match steps.last() {
        Some(st) => charts::checks(&st.result)
            .into_iter()
            .map(|mut c| {
                c.detail = match (running, found) {
                    (true, _) if max_rate.is_some() => {
                        format!("held up to {} so far", rate(max_rate))
                    }
                    (true, _) => "no step has passed yet".into(),
                    (false, true) => format!("held up to {}", rate(max_rate)),
                    (false, false) => "no rate was found".into(),
                };
                c.pass = found || (running && max_rate.is_some());
                c
            })
            .collect(),
        None => Vec::new(),
    };
    let steps = steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let c = &st.result.summary.stats.corrected;
            charts::Step {
                n: i + 1,
                kind: st.tried.kind.as_str().into(),
                rate: st.tried.rate,
                achieved: (st.result.summary.achieved_rate() * 10.0).round() / 10.0,
                p99: (!c.is_empty()).then(|| crate::hdr::value_at_quantile(c, 0.99)),
                verdict: st.tried.verdict.as_str().into(),
                reason: st.judged.reason.clone(),
            }
        })
        .collect();
    let b = &s.base;
    let facts = vec![
        ("URL".into(), b.target.url.clone()),
        (
            "Threads / connections".into(),
            format!("{} / {}", b.threads, b.connections),
        ),
        ("Step duration".into(), format_duration(s.step)),
        (
            "Confirmation".into(),
            s.confirm.map_or("none".into(), format_duration),
        ),
        ("Factor".into(), format!("{}", s.factor)),
        ("Precision".into(), format!("{}%", s.precision * 100.0)),
        (
            "Start".into(),
            s.start
                .map_or("a closed-loop probe's rate / 10".into(), |r| {
                    format!("{r:.0} req/s")
                }),
        ),
        (
            "Max".into(),
            format!("{} req/s", crate::units::format_metric(s.max)),
        ),
    ];
    html::find_data(FindPage {
        target: b.target.url.clone(),
        outcome: line,
        found: found || (running && max_rate.is_some()),
        thresholds,
        steps,
        facts,
    })
}
