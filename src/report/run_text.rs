//! A [`RunResult`]'s text, as printed: the header before the run (wrk2's, and for a merged
//! result its inputs) and the body after it (wrk2's report, the watched processes' lines, the
//! threshold table). The HTML report embeds the same text.

use std::io::{self, Write};

use super::{text, thresholds};
use crate::result::RunResult;

/// The lines printed before the run: wrk2's header, and for a merged result its inputs.
pub fn write_header(w: &mut dyn Write, r: &RunResult) -> io::Result<()> {
    let mut w = w;
    text::write_header(&mut w, &r.summary.config)?;
    if !r.sources.is_empty() {
        // Name each input's URL when they differ (the header shows the first).
        let mixed = r
            .sources
            .iter()
            .any(|s| s.url != r.summary.config.target.url);
        let files: Vec<String> = r
            .sources
            .iter()
            .map(|s| {
                if mixed {
                    format!("{} ({})", s.file, s.url)
                } else {
                    s.file.clone()
                }
            })
            .collect();
        let noun = if files.len() == 1 {
            "result"
        } else {
            "results"
        };
        writeln!(
            w,
            "  merged from {} {noun}: {}",
            files.len(),
            files.join(", ")
        )?;
    }
    Ok(())
}

/// The lines printed after the run: the wrk2 report (unless `quiet`) and the threshold table.
pub fn write_body(w: &mut dyn Write, r: &RunResult, quiet: bool) -> io::Result<()> {
    let mut w = w;
    if !quiet {
        text::write_report(&mut w, &r.summary)?;
        for x in &r.watch {
            writeln!(w, "{}", crate::watch::report_line(x))?;
        }
    }
    thresholds::write_table(&mut w, &r.outcomes)
}
