//! latlab-analysis: results folders → statistics with bootstrap confidence intervals → the
//! one report model every output renders from.
//!
//! polars does the grouping ([`frames`]); the statistics are pure functions ([`stats`],
//! [`wer`], the vision lane's in [`video`], agent runs' in [`agent`] and tool calls' in
//! [`tool`]); [`report`] assembles the model; [`compare`]
//! sets two sides against each other.
//! This crate renders nothing and writes nothing but what [`export`] is asked to.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;

pub mod agent;
pub mod compare;
pub mod export;
pub mod frames;
pub mod grouping;
pub mod load;
pub mod report;
pub mod stats;
pub mod telemetry;
pub mod tool;
pub mod video;

pub use compare::{Side, compare};
pub use load::Run;
pub use report::{analyze, summarize};

/// What can go wrong reading or analysing results.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A required file is missing.
    #[error("{path} is missing ({hint})")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
    },
    /// `manifest.json` is missing, not valid, or newer than this build reads.
    #[error(transparent)]
    Manifest(#[from] latlab_results::ResultsError),
    /// polars failed (unreadable Parquet, missing column).
    #[error("analysis: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// An export's destination lies among a results folder's own files.
    #[error(
        "refusing to write {path}: it would sit among the own files of the results folder {run}; export to {run}/export/ (the default) or to a path outside any results folder"
    )]
    RunFile {
        /// The refused destination.
        path: PathBuf,
        /// The results folder it lies in.
        run: PathBuf,
    },
    /// A results file holds a value its contract does not allow.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// Nothing to analyse.
    #[error("{0}")]
    Empty(String),
}
