//! The JSON document `loadgen find --json FILE` writes (schema `loadgen.find`, version 1;
//! reference: docs/find.md): what was found, and every step with its full `loadgen.result`
//! document, so that any step can be re-read or re-reported on its own.

use serde::{Deserialize, Serialize};

use crate::report::json::Document;

/// The value of the document's `schema` field.
pub const SCHEMA: &str = "loadgen.find";
/// The schema version this build writes.
pub const VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindDoc {
    /// Always `loadgen.find`.
    pub schema: String,
    /// Schema version (1).
    pub version: u32,
    /// How the search ended: `found`, `first_step_failed`, `not_confirmed`, `invalid` or
    /// `interrupted`.
    pub outcome: String,
    /// The highest rate at which every threshold held, req/s (confirmed, unless the outcome
    /// says otherwise); `null` when none did.
    pub max_rate: Option<f64>,
    /// The lowest rate above `max_rate` that failed, req/s; `null` when none failed.
    pub first_failing_rate: Option<f64>,
    /// The thresholds every step had to meet, as given.
    pub thresholds: Vec<String>,
    /// What the closed-loop probe achieved, req/s; `null` when `--start` was given.
    pub probe_rate: Option<f64>,
    /// The first step's rate, req/s.
    pub start_rate: f64,
    /// Every step, in the order they ran.
    pub steps: Vec<StepDoc>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDoc {
    /// The step's constant rate, req/s.
    pub rate: f64,
    /// `climb`, `bisect` or `confirm`.
    pub kind: String,
    /// `pass`, `fail` or `invalid`.
    pub verdict: String,
    /// Why it failed or was invalid; `null` for a pass.
    pub reason: Option<String>,
    /// The step's full result (schema `loadgen.result`).
    pub result: Document,
}
