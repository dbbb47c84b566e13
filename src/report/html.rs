//! The HTML report (`--html FILE`, `loadgen report|merge --html`, `loadgen find --html`): one
//! self-contained page, nothing fetched from any network, so it opens offline and as a CI
//! artifact.
//!
//! **How the charts are drawn.** The page embeds its data as one JSON object
//! ([`ChartData`], `<script id="loadgen-data" type="application/json">`) and a small
//! hand-written renderer (`html/report.js`, ~300 lines, no library) that draws every chart as
//! inline SVG from it. Chosen over the alternatives because:
//! - the live dashboard must show the same plots updated every second: with the data apart
//!   from the drawing, a live page sends only a new snapshot (a few KB of JSON) and calls the
//!   same `render`; charts rendered to SVG in Rust (plotters' SVG backend or hand-written)
//!   would have to be re-sent whole each second, and plotters adds a dependency tree for four
//!   kinds of line;
//! - an embedded chart library (Chart.js, uPlot) weighs 50–200 KB, is third-party code to
//!   vendor and keep up to date, and none draws HdrHistogram's 1/(1−p) percentile axis
//!   without custom code anyway;
//! - the page stays small: ~17 KB of renderer and style plus the data, which grows by ~100
//!   bytes a second of run (each spectrum is bounded: 20 points a decade); a 60 s run's page
//!   is ~26 KB.
//!
//! Every chart's `<svg class="chart">` carries `data-chart` (its name) and `data-points` (the
//! points it drew), the body `data-charts` (how many charts were drawn), and an error in any
//! script puts `<pre id="script-error">` at the top: what the tests check in headless
//! Chromium.
//!
//! **A live page** (the dashboard) reuses all of this: [`page`] with a `live_script` that
//! receives new snapshots (e.g. `new EventSource('/events').onmessage = e =>
//! loadgen.render(JSON.parse(e.data))`), each one [`ChartData::of`] the run so far, serialized
//! with [`data_json`]. `window.loadgen.render(data)` redraws the whole page from a snapshot.

use serde::Serialize;

use crate::report::charts::{self, ChartData};
use crate::result::RunResult;

/// The renderer.
const SCRIPT: &str = include_str!("html/report.js");
/// The page's style.
const STYLE: &str = include_str!("html/report.css");
/// Runs first: any later script error becomes visible (and testable) in the DOM.
const ON_ERROR: &str = "window.onerror=function(m,src,line){var p=document.getElementById('script-error');\
if(!p){p=document.createElement('pre');p.id='script-error';(document.body||document.documentElement).prepend(p);}\
p.textContent+='script error: '+m+' (line '+line+')\\n';};";

/// `data` as JSON safe inside a `<script>` element: `<` is escaped (it can only occur in
/// strings), so no `</script>` or `<!--` in a URL or a note can end the element.
pub fn data_json(data: &impl Serialize) -> String {
    serde_json::to_string(data)
        .expect("chart data serializes")
        .replace('<', "\\u003c")
}

/// Text escaped for HTML element content.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page for `data`; `live_script` (JavaScript, may be empty) runs after the first render.
pub fn page(data: &ChartData, live_script: &str) -> String {
    let title = escape(&data.title);
    let json = data_json(data);
    let live = live_script.replace("</", "<\\/");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"loadgen {version}\">\n\
         <title>{title}</title>\n<script>{ON_ERROR}</script>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <div id=\"app\"><h1>{title}</h1><noscript><p>This report draws its charts with \
         JavaScript; the text report and the data are in the page source.</p></noscript></div>\n\
         <script id=\"loadgen-data\" type=\"application/json\">{json}</script>\n\
         <script>\n{SCRIPT}</script>\n<script>{live}</script>\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The report page of a run (or a merged or re-read result).
pub fn report(r: &RunResult) -> String {
    page(&ChartData::of(r), "")
}

/// What `loadgen find`'s page shows besides its steps.
#[derive(Debug, Clone, Default)]
pub struct FindPage {
    /// After "loadgen find: " in the title (the target URL).
    pub target: String,
    /// One line saying how the search ended and what it found.
    pub outcome: String,
    /// A rate was found (and confirmed, when asked).
    pub found: bool,
    /// The thresholds every step had to meet (their verdicts: whether a rate was found).
    pub thresholds: Vec<charts::Check>,
    /// The steps, in the order they ran.
    pub steps: Vec<charts::Step>,
    /// The search's settings, label and value.
    pub facts: Vec<(String, String)>,
}

/// `loadgen find`'s page: its steps (rate tried against p99, achieved, verdict) and what was
/// found.
pub fn find_report(f: FindPage) -> String {
    page(&find_data(f), "")
}

/// The data of `loadgen find`'s page (also its `--dashboard`'s snapshots).
pub fn find_data(f: FindPage) -> ChartData {
    ChartData {
        kind: "find".into(),
        title: format!("loadgen find: {}", f.target),
        header: vec![f.outcome],
        facts: f.facts,
        thresholds: f.thresholds,
        passed: f.found,
        steps: f.steps,
        ..ChartData::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_cannot_close_its_script_element() {
        let d = ChartData {
            title: "x</script><script>alert(1)</script><!--".into(),
            ..ChartData::default()
        };
        let p = page(&d, "");
        let data = p.split("id=\"loadgen-data\"").nth(1).unwrap();
        let data = &data[..data.find("</script>").unwrap()];
        assert!(!data.contains("<script") && !data.contains("<!--"));
        let v: serde_json::Value =
            serde_json::from_str(&data[data.find('>').unwrap() + 1..]).unwrap();
        assert_eq!(v["title"], d.title);
        assert!(p.contains("<title>x&lt;/script&gt;"));
    }
}
