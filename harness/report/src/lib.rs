//! latlab-report: the report model and its renderers.
//!
//! One model ([`model::Report`]) is built once; the terminal table, `summary.md`,
//! `summary.json` and the HTML report all render from it, so they cannot disagree. This
//! crate does no statistics and no I/O beyond what a renderer returns as a string.
#![forbid(unsafe_code)]

pub mod html;
pub mod markdown;
pub mod model;
pub mod telemetry;
pub mod terminal;
pub mod text;

/// The report as pretty JSON (`summary.json`).
pub fn json(report: &model::Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}
