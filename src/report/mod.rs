//! Reports: writers that turn a [`Summary`](crate::result::Summary) into text for people (the
//! wrk2 layout) or documents for machines (JSON, JUnit, .hlog, CSV, HTML). Each writes into any `impl Write`; none measures.

pub mod charts;
pub mod csv;
pub mod hlog;
pub mod html;
pub mod json;
pub mod json_limits;
pub mod json_read;
pub mod json_series;
pub mod json_timing;
pub mod junit;
pub mod profile_table;
pub mod run_text;
pub mod text;
pub mod thresholds;
pub mod timing_text;
