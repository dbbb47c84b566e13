//! The wrk2 text report, line for line: header, "Thread Stats" table, the optional HdrHistogram
//! distribution and detailed percentile spectrum (corrected and, with `-U`, uncorrected), the
//! totals, socket errors, non-2xx/3xx count, Requests/sec and Transfer/sec. Beyond wrk2: one
//! line when latencies are not corrected (closed loop), and a warning when the generator itself
//! could not keep to its plan.

use std::io::{self, Write};

use hdrhistogram::Histogram;

use crate::record::{within_stdev, Errors, SIGFIG};
use crate::result::Summary;
use crate::schedule::{Arrivals, RateProfile};
use crate::units::{format_binary, format_duration, format_metric, format_time_us};

/// Worker threads busy at least this share of the run: the generator is saturated.
pub const BUSY_WARN_SHARE: f64 = 0.9;
/// Send-lag p99 above which the report warns that the generator fell behind (µs).
pub const LAG_WARN_US: u64 = 1000;
/// Achieved rate below this share of the target triggers the same warning.
pub const RATE_WARN_SHARE: f64 = 0.98;

/// The header printed before the run starts: wrk2's two lines, and with a rate profile or
/// Poisson arrivals a third that says what was planned.
pub fn write_header(w: &mut impl Write, s: &crate::config::Config) -> io::Result<()> {
    writeln!(
        w,
        "Running {} test @ {}",
        format_duration(s.duration),
        s.target.url
    )?;
    // HTTP/1.1 keeps wrk2's line as it is; HTTP/2 says what it speaks, as h2load's
    // "Application protocol" line does.
    let protocol = match s.http {
        crate::config::HttpVersion::Http1 => String::new(),
        crate::config::HttpVersion::Auto => ", HTTP version by ALPN".into(),
        crate::config::HttpVersion::Http2 => {
            format!(", {}, {} streams each", s.protocol(), s.streams)
        }
    };
    writeln!(
        w,
        "  {} threads and {} connections{protocol}",
        s.threads, s.connections
    )?;
    let arrivals = match s.arrivals {
        Arrivals::Uniform => String::new(),
        Arrivals::Poisson { seed } => format!("Poisson arrivals (--seed {seed})"),
    };
    if let Some(p) = &s.conn_profile {
        let line = stages_line(0.0, p.stages());
        return writeln!(w, "  connection profile: {line} connections (closed loop)");
    }
    match &s.rate {
        Some(RateProfile::Stages(p)) => {
            let mut line = format!("  rate profile: {}", stages_line(p.start(), p.stages()));
            line.push_str(&format!(" req/s; {:.0} planned", p.total()));
            if !arrivals.is_empty() {
                line.push_str(&format!("; {arrivals}"));
            }
            writeln!(w, "{line}")
        }
        Some(_) if !arrivals.is_empty() => writeln!(w, "  {arrivals}"),
        _ => Ok(()),
    }
}

/// A profile's stages as `0 -> 100 over 10s, jump to 50`.
fn stages_line(start: f64, stages: &[crate::schedule::Stage]) -> String {
    let num = |r: f64| {
        if r.fract() == 0.0 {
            format!("{r:.0}")
        } else {
            format!("{r:.2}")
        }
    };
    let mut line = num(start);
    for st in stages {
        if st.duration.is_zero() {
            line.push_str(&format!(", jump to {}", num(st.target)));
        } else {
            line.push_str(&format!(
                " -> {} over {}",
                num(st.target),
                format_duration(st.duration)
            ));
        }
    }
    line
}

/// wrk's `print_units`: right-align in `width`, two columns of padding when there is no unit.
fn units(w: &mut impl Write, msg: &str, width: usize) -> io::Result<()> {
    let b = msg.as_bytes();
    let mut pad = 2usize;
    if b.last().is_some_and(u8::is_ascii_alphabetic) {
        pad -= 1;
    }
    if b.len() >= 2 && b[b.len() - 2].is_ascii_alphabetic() {
        pad -= 1;
    }
    let width = width - pad;
    write!(w, "{msg:>width$}{}", &"  "[..pad])
}

fn stats_row(
    w: &mut impl Write,
    name: &str,
    h: &Histogram<u64>,
    fmt: fn(f64) -> String,
) -> io::Result<()> {
    write!(w, "    {name:<10}")?;
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean(), h.stdev(), h.max() as f64)
    };
    units(w, &fmt(mean), 8)?;
    units(w, &fmt(sd), 10)?;
    units(w, &fmt(max), 9)?;
    writeln!(w, "{:8.2}%", within_stdev(h, 1.0))
}

/// The seven-line percentile block followed by the detailed spectrum.
fn distribution(w: &mut impl Write, h: &Histogram<u64>, title: &str) -> io::Result<()> {
    writeln!(w, "  Latency Distribution (HdrHistogram - {title})")?;
    for p in [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0] {
        write!(w, "{p:7.3}%")?;
        let v = crate::hdr::value_at_percentile(h, p);
        units(w, &format_time_us(v as f64), 10)?;
        writeln!(w)?;
    }
    writeln!(w, "\n  Detailed Percentile spectrum:")?;
    percentile_spectrum(w, h, 5, 1000.0)?;
    writeln!(
        w,
        "----------------------------------------------------------"
    )
}

/// HdrHistogram's standard "percentile distribution" text (as `hdr_percentiles_print` in the
/// CLASSIC format writes it), values divided by `scale` (1000: µs → ms).
pub fn percentile_spectrum(
    w: &mut impl Write,
    h: &Histogram<u64>,
    ticks_per_half: u32,
    scale: f64,
) -> io::Result<()> {
    writeln!(
        w,
        "{:>12} {:>12} {:>12} {:>12}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(ticks_per_half) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
            if q < 1.0 {
                writeln!(
                    w,
                    "{value:12.3} {q:12.6} {total:12} {:12.2}",
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(w, "{value:12.3} {q:12.6} {total:12} {:>12}", "inf")?;
            }
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    writeln!(w, "#[Mean    = {mean:12.3}, StdDeviation   = {sd:12.3}]")?;
    writeln!(
        w,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    )?;
    writeln!(
        w,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets(SIGFIG)
    )
}

/// HdrHistogram's sub-bucket count for a precision: the power of two covering 2·10^sigfig.
fn sub_buckets(sigfig: u8) -> u64 {
    let largest = 2 * 10u64.pow(sigfig as u32);
    largest.next_power_of_two()
}

/// Everything after the run: the full wrk2 report (without the header).
pub fn write_report(w: &mut impl Write, s: &Summary) -> io::Result<()> {
    let c = &s.config;
    let st = &s.stats;
    writeln!(w, "  Thread Stats   Avg      Stdev     Max   +/- Stdev")?;
    stats_row(w, "Latency", &st.corrected, format_time_us)?;
    stats_row(w, "Req/Sec", &st.req_per_sec, format_metric)?;
    if c.latency || c.u_latency {
        distribution(w, &st.corrected, "Recorded Latency")?;
        if c.u_latency {
            writeln!(w)?;
            distribution(
                w,
                &st.uncorrected,
                "Uncorrected Latency (measured without taking delayed starts into account)",
            )?;
        }
    }
    writeln!(
        w,
        "  {} requests in {}, {}B read",
        st.requests,
        format_time_us(s.elapsed.as_micros() as f64),
        format_binary(st.bytes as f64)
    )?;
    if s.config.http != crate::config::HttpVersion::Http1 {
        let clamp = match st.h2_streams_clamp {
            Some(m) => format!(
                "; clamped to {m} by the server's SETTINGS_MAX_CONCURRENT_STREAMS (asked {})",
                s.config.streams
            ),
            None => String::new(),
        };
        writeln!(
            w,
            "  Protocol: {}, {} streams per connection{clamp}",
            s.config.protocol(),
            s.config.streams
        )?;
    }
    let e = &st.errors;
    let h2 = &e.h2;
    if *h2 != crate::record::H2Errors::default() {
        writeln!(
            w,
            "  HTTP/2 errors: RST_STREAM {} ({} refused), GOAWAY {}, connection {}, \
             flow-control stalls {}",
            h2.rst_stream, h2.refused_stream, h2.goaway, h2.connection, h2.flow_control
        )?;
    }
    if e.socket() > 0 {
        let connect = match e.connect_timeout {
            0 => e.connect.to_string(),
            t => format!("{} ({t} timed out)", e.connect),
        };
        writeln!(
            w,
            "  Socket errors: connect {connect}, read {}, write {}, timeout {}",
            read_errors(e),
            e.write,
            e.timeout
        )?;
    }
    if e.status > 0 {
        writeln!(w, "  Non-2xx or 3xx responses: {}", e.status)?;
    }
    if st.dropped > 0 {
        writeln!(
            w,
            "  Dropped: {} planned request{} not sent in time (every connection was busy)",
            st.dropped,
            if st.dropped == 1 { " was" } else { "s" }
        )?;
    }
    if st.reconnects > 0 {
        // Over HTTP/1.1 only a reused connection closed while idle is re-sent on; over HTTP/2
        // also a stream the server refused or left unprocessed by a GOAWAY.
        let why = if c.http == crate::config::HttpVersion::Http2 {
            "the server had not processed them (a refused stream, a GOAWAY or a closed connection); they were sent again"
        } else {
            "the server had closed idle keep-alive connections; their requests were sent again"
        };
        writeln!(w, "  Reconnects: {} ({why})", st.reconnects)?;
    }
    // Rates are per second of the sending window: the drain period does not dilute them.
    let secs = s.rate_window().as_secs_f64();
    let (rps, bps) = if secs > 0.0 {
        (st.requests as f64 / secs, st.bytes as f64 / secs)
    } else {
        (0.0, 0.0)
    };
    writeln!(w, "Requests/sec: {rps:9.2}")?;
    writeln!(w, "Transfer/sec: {:>10}B", format_binary(bps))?;
    if (c.latency || c.u_latency) && c.rate.is_some() && !st.send_lag.is_empty() {
        let l = &st.send_lag;
        // Which pacing ran (`--pacing auto` chooses): coarse pacing sends up to a tick early.
        let pacing = match c.pacing {
            crate::config::Pacing::Precise => "precise pacing".to_string(),
            crate::config::Pacing::Coarse => format!(
                "coarse pacing, {} tick: up to {} requests left together",
                format_time_us(c.tick.as_nanos() as f64 / 1000.0),
                c.coarse_burst().unwrap_or(1)
            ),
            crate::config::Pacing::Adaptive => format!(
                "adaptive pacing: precise at low rates, coarse at high ones with ticks down to \
                 {}: up to {} requests left together",
                format_time_us(c.tick.as_nanos() as f64 / 1000.0),
                c.coarse_burst().unwrap_or(1)
            ),
        };
        writeln!(
            w,
            "Send lag:     p50 {}, p99 {}, max {} (actual − planned send time; {pacing})",
            format_time_us(crate::hdr::value_at_quantile(l, 0.5) as f64),
            format_time_us(crate::hdr::value_at_quantile(l, 0.99) as f64),
            format_time_us(l.max() as f64)
        )?;
    }
    if c.timing {
        super::timing_text::write(w, &st.timing)?;
    }
    super::profile_table::profile_table(w, s)?;
    for line in notes(s) {
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// The read-error count with its reasons, most frequent first: `200 (invalid response: no
/// HTTP status line)`, or `30 (20 connection closed before the response was complete; 10 TLS
/// error)`. Reasons hold no commas, so the wrk2 line still splits on `, `.
fn read_errors(e: &Errors) -> String {
    let reasons = e.read_reasons.by_count();
    match reasons.as_slice() {
        [] => e.read.to_string(),
        [(r, n)] if *n == e.read => format!("{} ({})", e.read, r.describe()),
        _ => {
            let list: Vec<String> = reasons
                .iter()
                .map(|(r, n)| format!("{n} {}", r.describe()))
                .collect();
            format!("{} ({})", e.read, list.join("; "))
        }
    }
}

/// Share of the run the generator's worker threads spent on a CPU (0 when unknown).
pub fn busy_share(s: &Summary) -> f64 {
    let span = s.elapsed.as_nanos() as f64 * s.config.threads as f64;
    if span > 0.0 {
        s.stats.cpu_ns as f64 / span
    } else {
        0.0
    }
}

/// The kinds of socket errors that occurred, e.g. `read 200, timeout 3`.
fn error_kinds(e: &crate::record::Errors) -> String {
    [
        ("connect", e.connect),
        ("read", e.read),
        ("write", e.write),
        ("timeout", e.timeout),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| format!("{k} {n}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Connections an open-loop run at its target rate would need to keep every request's slot
/// (Little's law: rate × the mean time a request holds its connection, i.e. the uncorrected
/// latency), rounded up; `None` without a target rate or a response.
pub fn connections_needed(s: &Summary) -> Option<u64> {
    let target = s.config.target_rate()?;
    let h = &s.stats.uncorrected;
    if h.is_empty() {
        return None;
    }
    Some((target * h.mean() / 1e6).ceil().max(1.0) as u64)
}

/// Whether the generator's lateness can account for the run's shortfall. A generator that can
/// send only G of the target T req/s falls behind steadily: by the deadline it is D·(T/G − 1)
/// late, it sends that backlog in the drain, and the sending window grows by as much. A
/// shortfall T/achieved − 1 thus needs a maximum send lag of about that share of the planned
/// duration; half of it is taken as the bar. A lag far smaller (a few ms when the server held
/// the rate down by a fifth) is noise of a busy host beside the server's limit, not its cause.
fn lag_explains_shortfall(s: &Summary, target: f64) -> bool {
    let achieved = s.achieved_rate().max(1e-9);
    let needed_s = 0.5 * (target / achieved - 1.0) * s.config.duration.as_secs_f64();
    s.stats.send_lag.max() as f64 / 1e6 >= needed_s
}

/// loadgen's own remarks after the wrk2 lines: closed-loop caveat, interruption, and whether
/// the generator kept to its plan.
pub fn notes(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if s.interrupted {
        out.push(format!(
            "Note: interrupted after {:.2}s; figures cover the elapsed time only.",
            s.elapsed.as_secs_f64()
        ));
    }
    let cut = s.stats.stopped_unfinished;
    if cut > 0 {
        out.push(format!(
            "Note: {cut} planned request{} unfinished when the run stopped; {} wait until \
             then is in the latency figures as a lower bound.",
            if cut == 1 { " was" } else { "s were" },
            if cut == 1 { "its" } else { "their" },
        ));
    }
    if let Some(e) = &s.script_error {
        // The rate the run reached says nothing then: no rate or generator-load notes.
        out.push(format!(
            "Note: stopped after {:.2}s by a script error ({e}); figures cover the elapsed time only.",
            s.elapsed.as_secs_f64()
        ));
        return out;
    }
    match s.config.target_rate() {
        None => out.push(
            "Note: closed loop (no -R): latencies are not corrected for coordinated omission."
                .into(),
        ),
        Some(target) => {
            let lag = &s.stats.send_lag;
            let lag99 = crate::hdr::value_at_quantile(lag, 0.99);
            let achieved = s.achieved_rate();
            let short = achieved < target * RATE_WARN_SHARE;
            let busy = busy_share(s);
            if short && s.stats.script_limited {
                out.push(format!(
                    "Note: achieved {achieved:.0} of {target:.0} req/s: the script's delay() (think time) or thread:stop() held the rate down."
                ));
            }
            let e = &s.stats.errors;
            // Drops the server's latency explains (Little's law): the connections were busy
            // waiting on it, not on the generator.
            let needed = connections_needed(s);
            let server_dropped =
                s.stats.dropped > 0 && needed.is_some_and(|n| n > s.config.connections as u64);
            if short && e.socket() > 0 {
                // Failed requests explain a shortfall before any latency does.
                out.push(format!(
                    "Warning: achieved {achieved:.0} of {target:.0} req/s: {} request{} failed ({}); see Socket errors above.",
                    e.socket(),
                    if e.socket() == 1 { "" } else { "s" },
                    error_kinds(e),
                ));
            } else if short && server_dropped {
                out.push(format!(
                    "Warning: achieved {achieved:.0} of {target:.0} req/s: {} planned requests were dropped because every connection was waiting on the server: at its latency, {target:.0} req/s needs about {} connections (Little's law; -c {}).",
                    s.stats.dropped,
                    needed.unwrap_or(0),
                    s.config.connections
                ));
            } else if lag99 > LAG_WARN_US && (!short || lag_explains_shortfall(s, target)) {
                out.push(format!(
                    "Warning: the generator fell behind its own plan (send lag p99 {}, achieved {:.0} of {:.0} req/s): the generator, not the server, may have been the limit.",
                    format_time_us(lag99 as f64),
                    achieved,
                    target
                ));
            } else if short && busy >= BUSY_WARN_SHARE {
                out.push(format!(
                    "Warning: achieved {achieved:.0} of {target:.0} req/s with the generator's threads busy {:.0}% of the run: the generator, not the server, was probably the limit (try more threads, -t).",
                    busy * 100.0
                ));
            } else if short && !s.stats.script_limited {
                out.push(format!(
                    "Warning: achieved {:.0} of {:.0} req/s ({:.1}% short) while the generator kept to its plan (send lag p99 {}{}): connections were waiting on the server; the latencies above include that wait.",
                    achieved,
                    target,
                    100.0 * (1.0 - achieved / target),
                    format_time_us(lag99 as f64),
                    if lag99 > LAG_WARN_US {
                        ", too little to explain the shortfall"
                    } else {
                        ""
                    },
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::notes;
    use crate::config::{Config, Target};
    use crate::record::Stats;
    use crate::result::Summary;
    use crate::schedule::RateProfile;

    /// A 10 s open-loop run at 1000 req/s, one thread, that completed `done` requests with a
    /// constant send lag of `lag_us`.
    fn run(done: u64, lag_us: u64) -> Summary {
        let mut c = Config::new(Target::parse("http://127.0.0.1:1/").unwrap());
        c.threads = 1;
        c.rate = Some(RateProfile::Constant(1000.0));
        let mut stats = Stats::new();
        for i in 0..done {
            let t = i * 1_000_000;
            stats.record(t, t, t + lag_us * 1000, t + 200_000, 200);
        }
        Summary {
            config: c,
            addr: "127.0.0.1:1".parse().unwrap(),
            started: SystemTime::now(),
            elapsed: Duration::from_secs(10),
            interrupted: false,
            script_error: None,
            stats,
        }
    }

    /// Read errors list their reasons, most frequent first, without commas.
    #[test]
    fn read_errors_list_their_reasons() {
        use crate::conn::error::ReadReason;
        let mut e = crate::record::Errors {
            read: 3,
            ..Default::default()
        };
        assert_eq!(super::read_errors(&e), "3");
        e.read_reasons.add(ReadReason::StatusLine, 3);
        assert_eq!(
            super::read_errors(&e),
            "3 (invalid response: no HTTP status line)"
        );
        e.read = 30;
        e.read_reasons.add(ReadReason::Closed, 20);
        e.read_reasons.add(ReadReason::Tls, 7);
        assert_eq!(
            super::read_errors(&e),
            "30 (20 connection closed before the response was complete; 7 TLS error; \
             3 invalid response: no HTTP status line)"
        );
    }

    fn text(s: &Summary) -> String {
        notes(s).join("\n")
    }

    #[test]
    fn says_who_was_the_limit() {
        // On plan, on rate: nothing to say.
        assert_eq!(text(&run(10_000, 5)), "");
        // Late sends: the generator.
        assert!(text(&run(10_000, 5000)).contains("the generator fell behind its own plan"));
        // Short, on plan, threads idle: the server.
        let s = run(5000, 5);
        assert!(text(&s).contains("connections were waiting on the server"));
        // Short by half with every send 5 ms late: far too little lateness to explain the
        // shortfall (that needs seconds), so still the server; the lag is named.
        let t = text(&run(5000, 5000));
        assert!(
            t.contains("connections were waiting on the server")
                && t.contains("too little to explain the shortfall"),
            "{t}"
        );
        // Short by half with the sends falling seconds behind: the generator.
        let mut late = run(5000, 5000);
        late.stats.send_lag.record(6_000_000).unwrap();
        assert!(text(&late).contains("the generator fell behind its own plan"));
        // Short with the threads on a CPU 95% of the run: the generator.
        let mut busy = run(5000, 5);
        busy.stats.cpu_ns = 9_500_000_000;
        assert!(text(&busy).contains("threads busy 95%"), "{}", text(&busy));
        // Short because the script's delay()/thread:stop() said so.
        let mut script = run(5000, 5);
        script.stats.script_limited = true;
        let t = text(&script);
        assert!(
            t.contains("held the rate down") && !t.contains("Warning"),
            "{t}"
        );
    }
}
