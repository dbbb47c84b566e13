//! The progress line: one second of a run, as one line of text (pure formatting, no I/O).

use crate::units::format_time_us;
use crate::watch::format_mb;

/// A watched process in a progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    /// The process id.
    pub pid: u32,
    /// Its command name.
    pub name: String,
    /// CPU % of one core over the second and RSS bytes; `None` once it has gone.
    pub now: Option<(f64, u64)>,
}

/// What one progress line shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line {
    /// What is running, e.g. `find step 3 (bisect)`; empty for a plain run.
    pub label: String,
    /// Time since the run's start at the end of the second, s.
    pub elapsed_s: f64,
    /// The planned duration, s.
    pub planned_s: f64,
    /// The rate the plan set for the second, req/s; `None` in closed loop.
    pub planned_rate: Option<f64>,
    /// Responses completed in the second, per second.
    pub achieved_rate: f64,
    /// The second's corrected median latency, µs (`None`: no responses).
    pub p50_us: Option<u64>,
    /// The second's corrected 99th percentile, µs.
    pub p99_us: Option<u64>,
    /// Errors in the second.
    pub errors: u64,
    /// Requests dropped so far (planned, never sent).
    pub dropped: u64,
    /// The second's send lag, 99th percentile, µs (`None`: nothing sent).
    pub lag_p99_us: Option<u64>,
    /// The watched processes.
    pub watched: Vec<Proc>,
    /// loadgen's own CPU over the second, % of one core.
    pub own_cpu: Option<f64>,
}

fn time(us: Option<u64>) -> String {
    us.map_or_else(|| "-".into(), |v| format_time_us(v as f64))
}

impl Line {
    /// The line, without a newline.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.label.is_empty() {
            s.push_str(&self.label);
            s.push_str(": ");
        }
        s.push_str(&format!(
            "{:.0}s/{:.0}s  ",
            self.elapsed_s.max(0.0),
            self.planned_s
        ));
        match self.planned_rate {
            Some(p) => s.push_str(&format!("{:.0}/{:.0} req/s", self.achieved_rate, p)),
            None => s.push_str(&format!("{:.0} req/s", self.achieved_rate)),
        }
        s.push_str(&format!(
            "  p50 {}  p99 {}  errors {}  dropped {}  lag p99 {}",
            time(self.p50_us),
            time(self.p99_us),
            self.errors,
            self.dropped,
            time(self.lag_p99_us)
        ));
        for Proc { pid, name, now } in &self.watched {
            match now {
                Some((cpu, rss)) => {
                    s.push_str(&format!("  | {name} {pid}: {cpu:.0}% {}", format_mb(*rss)))
                }
                None => s.push_str(&format!("  | {name} {pid}: gone")),
            }
        }
        if let Some(c) = self.own_cpu {
            s.push_str(&format!("  | loadgen {c:.0}%"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_every_figure() {
        let l = Line {
            label: String::new(),
            elapsed_s: 3.0,
            planned_s: 10.0,
            planned_rate: Some(20000.0),
            achieved_rate: 19990.4,
            p50_us: Some(95),
            p99_us: Some(1800),
            errors: 2,
            dropped: 0,
            lag_p99_us: Some(12),
            watched: vec![Proc {
                pid: 42,
                name: "nginx".into(),
                now: Some((72.4, 12_300_000)),
            }],
            own_cpu: Some(35.0),
        };
        assert_eq!(
            l.render(),
            "3s/10s  19990/20000 req/s  p50 95.00us  p99 1.80ms  errors 2  dropped 0  \
             lag p99 12.00us  | nginx 42: 72% 12.3 MB  | loadgen 35%"
        );
        let idle = Line {
            label: "find step 2 (climb)".into(),
            planned_s: 5.0,
            ..Line::default()
        };
        assert_eq!(
            idle.render(),
            "find step 2 (climb): 0s/5s  0 req/s  p50 -  p99 -  errors 0  dropped 0  lag p99 -"
        );
    }
}
