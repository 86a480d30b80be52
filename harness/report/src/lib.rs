//! latlab-report: the report model and its renderers.
//!
//! One model ([`model::Report`]) is built once; the terminal table, `summary.md`,
//! `summary.json` and the HTML report all render from it, so they cannot disagree. This
//! crate does no statistics and no I/O beyond what a renderer returns as a string.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod html;
pub mod markdown;
pub mod model;
pub use latlab_results::telemetry;
pub mod terminal;
pub mod text;
pub mod tools;

/// The report as pretty JSON (`summary.json`).
pub fn json(report: &model::Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_default()
}
