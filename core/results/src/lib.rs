//! latlab-results: the contract of a results folder.
//!
//! A results folder is written by the runner, its sinks, `latlab merge` and `latlab recover`,
//! and read by the analysis, the gate, the report and `latlab show`. Everything they must
//! agree on lives here and only here: the [`manifest`] and its parts, the run's
//! [`manifest::RunStatus`], the rows of the results tables ([`span::Span`],
//! [`span::TurnTimeline`]) with their [`span::Stage`], [`span::Outcome`] and
//! [`span::ErrorKind`] names, the vision lane's [`frame::FrameRecord`] rows, the [`load`] stages, the [`telemetry`] samples, the profiles'
//! knobs ([`profile`]), how transcripts are scored ([`wer`]), and every [`files`] and
//! [`columns`] name.
//!
//! This crate is a leaf: serde and nothing heavy, so that readers (which need polars) never
//! build a network stack and writers (which need one) never build polars.
//!
//! ```
//! use latlab_results::manifest::{RunManifest, RunStatus};
//! use latlab_results::{files, span::Stage};
//!
//! assert_eq!(files::MANIFEST, "manifest.json");
//! assert_eq!("llm".parse::<Stage>(), Ok(Stage::Llm));
//! assert_eq!(RunStatus::Interrupted.to_string(), "interrupted");
//! // A folder without a manifest is a typed error that names the file.
//! let dir = std::env::temp_dir().join("latlab-results-doctest-empty");
//! std::fs::create_dir_all(&dir).unwrap();
//! let err = RunManifest::read(&dir).unwrap_err();
//! assert!(err.to_string().contains("manifest.json"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;

pub mod agent;
pub mod columns;
pub mod files;
pub mod frame;
pub mod load;
pub mod manifest;
pub mod profile;
pub mod span;
pub mod telemetry;
pub mod tool;
pub mod wer;

/// What can go wrong reading or writing a results folder's files.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read or written. Check the path and its permissions; a
    /// missing `manifest.json` means the folder is not a results folder.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what its name says (serde's message names the line, column and
    /// field). A run killed while writing leaves a `.tmp` beside it; `latlab recover`
    /// rebuilds what can be rebuilt.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
    /// A newer latlab wrote the file: its schema version is past what this build reads.
    /// Read it with that version of latlab, or a later one.
    #[error(
        "{path}: schema version {found} is newer than this latlab reads (up to {supported}); use a newer latlab"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// The version it has.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
}
