//! JUnit XML for CI systems that render test reports natively (GitHub, GitLab, Jenkins, …):
//! one `<testsuite>` for the run, one `<testcase>` per threshold, a `<failure>` for each that
//! failed. The run's figures travel as `<properties>`.

use std::io::{self, Write};

use crate::clock::{rfc3339, unix_us};
use crate::report::json::RunResult;

/// Escapes text for XML attributes and content.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Writes the JUnit document for `r`.
pub fn write(w: &mut impl Write, r: &RunResult) -> io::Result<()> {
    let s = &r.summary;
    let tests = r.outcomes.len();
    let failures = r.outcomes.iter().filter(|o| !o.pass).count();
    let secs = s.elapsed.as_secs_f64();
    let start_us = unix_us(s.started);
    let name = escape(&format!("loadgen {}", s.config.target.url));
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<testsuites name="loadgen" tests="{tests}" failures="{failures}" errors="0" time="{secs:.3}">"#
    )?;
    writeln!(
        w,
        r#"  <testsuite name="{name}" tests="{tests}" failures="{failures}" errors="0" skipped="0" time="{secs:.3}" timestamp="{}">"#,
        &rfc3339(start_us)[..19]
    )?;
    writeln!(w, "    <properties>")?;
    let target = s
        .config
        .target_rate()
        .map_or_else(|| "closed loop".to_string(), |r| format!("{r}"));
    let c = &s.stats.corrected;
    let q = |p: f64| crate::hdr::value_at_quantile(c, p);
    for (k, v) in [
        ("url", s.config.target.url.clone()),
        ("threads", s.config.threads.to_string()),
        ("connections", s.config.connections.to_string()),
        ("target_rate", target),
        ("achieved_rate", format!("{:.2}", s.achieved_rate())),
        ("requests", s.stats.requests.to_string()),
        (
            "errors",
            (s.stats.errors.socket() + s.stats.errors.status).to_string(),
        ),
        ("p50_us", q(0.5).to_string()),
        ("p99_us", q(0.99).to_string()),
    ] {
        writeln!(
            w,
            r#"      <property name="{}" value="{}"/>"#,
            escape(k),
            escape(&v)
        )?;
    }
    writeln!(w, "    </properties>")?;
    for o in &r.outcomes {
        let open = format!(
            r#"    <testcase name="{}" classname="loadgen.thresholds" time="{secs:.3}""#,
            escape(&o.expr)
        );
        if o.pass {
            writeln!(w, "{open}>")?;
            writeln!(w, "      <system-out>{}</system-out>", escape(&o.detail))?;
            writeln!(w, "    </testcase>")?;
        } else {
            writeln!(w, "{open}>")?;
            writeln!(
                w,
                r#"      <failure type="threshold" message="{}">{}</failure>"#,
                escape(&format!("{}: {}", o.expr, o.detail)),
                escape(&o.detail)
            )?;
            writeln!(w, "    </testcase>")?;
        }
    }
    writeln!(w, "  </testsuite>")?;
    writeln!(w, "</testsuites>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"p99<=1s & "x" 'y' >"#),
            "p99&lt;=1s &amp; &quot;x&quot; &apos;y&apos; &gt;"
        );
    }
}
