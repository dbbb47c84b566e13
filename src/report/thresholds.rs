//! The PASS/FAIL table of thresholds printed at the end of the text report (and alone with
//! `--quiet`): one line per threshold with the measured value, then a count.

use std::io::{self, Write};

use crate::slo::Outcome;

/// Writes the table; nothing when there are no thresholds.
pub fn write_table(w: &mut impl Write, outcomes: &[Outcome]) -> io::Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let width = outcomes.iter().map(|o| o.expr.len()).max().unwrap_or(0);
    writeln!(w, "Thresholds:")?;
    for o in outcomes {
        let verdict = if o.pass { "PASS" } else { "FAIL" };
        writeln!(w, "  {verdict}  {:<width$}  {}", o.expr, o.detail)?;
    }
    let failed = outcomes.iter().filter(|o| !o.pass).count();
    if failed == 0 {
        writeln!(w, "  all {} passed", outcomes.len())
    } else {
        writeln!(w, "  {failed} of {} failed", outcomes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(expr: &str, pass: bool, detail: &str) -> Outcome {
        Outcome {
            expr: expr.into(),
            metric: String::new(),
            op: "<=",
            limit: 0.0,
            unit: "us",
            actual: Some(1.0),
            pass,
            detail: detail.into(),
        }
    }

    #[test]
    fn aligned_table() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &[
                outcome("p99<=250ms", true, "p99 = 1.20ms"),
                outcome("errors<=0.1%", false, "errors = 100.00% (5 of 5)"),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Thresholds:\n  PASS  p99<=250ms    p99 = 1.20ms\n  FAIL  errors<=0.1%  errors = 100.00% (5 of 5)\n  1 of 2 failed\n"
        );
        let mut none = Vec::new();
        write_table(&mut none, &[]).unwrap();
        assert!(none.is_empty());
    }
}
