//! `--watch-pid`: the server's side of a run. Each watched process (and loadgen itself) is
//! sampled from `/proc/PID/stat` and `/proc/PID/statm` once a second: CPU time (user + system,
//! as a percentage of one core over the second), resident memory and thread count. A process
//! that goes away during the run is a note in the result, not a failure; one that does not
//! exist when the run starts is a usage error ([`check`]).
//!
//! The average CPU is the process's CPU time over the whole sampled span (first sample to
//! last) divided by that span, so it agrees with `/proc/PID/stat` read before and after the
//! run; the maximum is the busiest one-second sample. The kernel counts CPU time in clock
//! ticks (`sysconf(_SC_CLK_TCK)`, usually 100 a second), so a one-second sample is exact to
//! about one percentage point.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One process's counters at one instant, as `/proc` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// User + system CPU time, ns.
    pub cpu_ns: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Threads of the process.
    pub threads: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/statm` (`pid` 0: this process); `None` when the
/// process does not exist (any more).
pub fn read(pid: u32) -> Option<Reading> {
    let dir = proc_dir(pid);
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let statm = std::fs::read_to_string(format!("{dir}/statm")).ok()?;
    parse(&stat, &statm, clock_ticks(), page_size())
}

/// The process's command name (`/proc/PID/comm`), or `?`.
pub fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("{}/comm", proc_dir(pid)))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn proc_dir(pid: u32) -> String {
    if pid == 0 {
        "/proc/self".into()
    } else {
        format!("/proc/{pid}")
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Parses the two files' text. The command name in `stat` (field 2, in parentheses) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse(stat: &str, statm: &str, ticks: u64, page: u64) -> Option<Reading> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3; utime 14, stime 15, num_threads 20.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i - 3)?.parse::<u64>().ok();
    let cpu_ticks = num(14)? + num(15)?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(Reading {
        cpu_ns: cpu_ticks.saturating_mul(1_000_000_000) / ticks.max(1),
        rss_bytes: rss_pages.saturating_mul(page),
        threads: num(20)?,
    })
}

/// Checks the `--watch-pid` values before the run: each must name a running process.
pub fn check(pids: &[u32]) -> Result<()> {
    for &pid in pids {
        if pid == 0 || read(pid).is_none() {
            return Err(Error::Usage(format!(
                "--watch-pid {pid}: no such process (nothing readable at /proc/{pid}/stat)"
            )));
        }
    }
    Ok(())
}

/// One second of a watched process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The second, Unix time (as `series[].t`): the sample covers the second before the
    /// instant it was taken, which lies in `[t + 1, t + 2)`.
    pub t: u64,
    /// CPU used over that second, percent of one core (user + system).
    pub cpu_pct: f64,
    /// Resident memory at the sample, bytes.
    pub rss_bytes: u64,
    /// Threads at the sample.
    pub threads: u64,
}

/// CPU figures of a watched process over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// CPU time over the sampled span ÷ the span, percent of one core.
    pub avg_pct: f64,
    /// The busiest one-second sample, percent of one core.
    pub max_pct: f64,
}

/// What was seen of one watched process (`RunResult::watch`, JSON `watch[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watched {
    /// The process id.
    pub pid: u32,
    /// Its command name when the run started.
    pub name: String,
    /// CPU average and maximum.
    pub cpu: Cpu,
    /// Largest resident memory seen, bytes.
    pub rss_max_bytes: u64,
    /// Most threads seen.
    pub threads_max: u64,
    /// The process went away during the run; the figures cover the time before.
    pub exited: bool,
    /// One entry per second sampled.
    pub series: Vec<Sample>,
}

/// The sampler of one process: its first reading, its latest, and the samples so far.
#[derive(Debug)]
pub struct Watch {
    /// The process (0: loadgen itself).
    pub pid: u32,
    name: String,
    first: Option<(SystemTime, Reading)>,
    last: Option<(SystemTime, Reading)>,
    exited: bool,
    series: Vec<Sample>,
}

impl Watch {
    /// Starts watching `pid` (0: this process), with a first reading now.
    pub fn start(pid: u32) -> Watch {
        let now = SystemTime::now();
        let first = read(pid).map(|r| (now, r));
        Watch {
            pid,
            name: name(pid),
            first,
            last: first,
            exited: first.is_none(),
            series: Vec::new(),
        }
    }

    /// Takes one sample now (once a second); the latest one, or `None` once the process is
    /// gone.
    pub fn sample(&mut self) -> Option<&Sample> {
        if self.exited {
            return None;
        }
        let now = SystemTime::now();
        let Some(r) = read(self.pid) else {
            self.exited = true;
            return None;
        };
        let (then, before) = self
            .last
            .expect("a watch that has not exited has a reading");
        let span = now.duration_since(then).unwrap_or_default().as_nanos() as f64;
        let cpu_pct = if span > 0.0 {
            r.cpu_ns.saturating_sub(before.cpu_ns) as f64 * 100.0 / span
        } else {
            0.0
        };
        self.last = Some((now, r));
        let t = crate::clock::unix_ns(now) / 1_000_000_000;
        self.series.push(Sample {
            t: t.saturating_sub(1),
            cpu_pct,
            rss_bytes: r.rss_bytes,
            threads: r.threads,
        });
        self.series.last()
    }

    /// The latest sample, or `None` before the first or once the process is gone.
    pub fn last_sample(&self) -> Option<&Sample> {
        if self.exited {
            None
        } else {
            self.series.last()
        }
    }

    /// The process's command name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The result, after a last sample.
    pub fn finish(mut self) -> Watched {
        self.sample();
        let avg_pct = match (self.first, self.last) {
            (Some((t0, a)), Some((t1, b))) => {
                let span = t1.duration_since(t0).unwrap_or_default().as_nanos() as f64;
                if span > 0.0 {
                    b.cpu_ns.saturating_sub(a.cpu_ns) as f64 * 100.0 / span
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        let max = |f: fn(&Sample) -> f64| self.series.iter().map(f).fold(0.0, f64::max);
        let first_rss = self.first.map_or(0, |(_, r)| r.rss_bytes);
        let first_threads = self.first.map_or(0, |(_, r)| r.threads);
        Watched {
            pid: self.pid,
            name: self.name.clone(),
            cpu: Cpu {
                avg_pct,
                max_pct: max(|s| s.cpu_pct),
            },
            rss_max_bytes: (max(|s| s.rss_bytes as f64) as u64).max(first_rss),
            threads_max: (max(|s| s.threads as f64) as u64).max(first_threads),
            exited: self.exited,
            series: self.series,
        }
    }
}

/// The report line of a watched process, e.g.
/// `Server: pid 1234 (nginx): CPU avg 72%, max 98%; RSS max 12.3 MB; 2 threads`.
pub fn report_line(w: &Watched) -> String {
    let mut s = format!(
        "Server: pid {} ({}): CPU avg {:.0}%, max {:.0}%; RSS max {}; {} thread{}",
        w.pid,
        w.name,
        w.cpu.avg_pct,
        w.cpu.max_pct,
        format_mb(w.rss_max_bytes),
        w.threads_max,
        if w.threads_max == 1 { "" } else { "s" }
    );
    if w.exited {
        s.push_str(&format!(
            " (note: it exited during the run, after {} sample{})",
            w.series.len(),
            if w.series.len() == 1 { "" } else { "s" }
        ));
    }
    s
}

/// Bytes as decimal megabytes, `12.3 MB`.
pub fn format_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_an_awkward_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice num_threads ...
        let stat = "42 (a) b) (c) S 1 42 42 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 7 0 123 \
                    456 789";
        let r = parse(stat, "1000 300 20 1 0 50 0\n", 100, 4096).unwrap();
        assert_eq!(r.cpu_ns, 3_000_000_000);
        assert_eq!(r.rss_bytes, 300 * 4096);
        assert_eq!(r.threads, 7);
        assert_eq!(parse("garbage", "", 100, 4096), None);
    }

    #[test]
    fn reads_this_process() {
        let r = read(0).expect("/proc/self");
        assert!(r.rss_bytes > 0 && r.threads >= 1);
        assert!(check(&[std::process::id()]).is_ok());
        assert!(check(&[u32::MAX - 1]).is_err());
    }

    #[test]
    fn report_line_reads_like_the_issue() {
        let w = Watched {
            pid: 1234,
            name: "nginx".into(),
            cpu: Cpu {
                avg_pct: 72.2,
                max_pct: 98.0,
            },
            rss_max_bytes: 12_300_000,
            threads_max: 1,
            exited: false,
            series: Vec::new(),
        };
        assert_eq!(
            report_line(&w),
            "Server: pid 1234 (nginx): CPU avg 72%, max 98%; RSS max 12.3 MB; 1 thread"
        );
    }
}
