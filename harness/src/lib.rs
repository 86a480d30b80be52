//! latlab-harness: scenarios, the runner, result sinks and the `latlab` command.
//!
//! Data flows one way: a [`scenario`] names a dataset, backends and profiles; the [`runner`]
//! replays it through `latlab-core`'s pipeline; [`sinks`] write what each turn recorded;
//! [`summary`] prints the end-of-run table; [`manifest`] records what the run stood on.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod backends;
pub mod cli;
pub mod exit;
pub mod gate;
pub mod interrupt;
pub mod live;
pub mod manifest;
pub mod measurer;
pub mod merge;
pub mod models;
pub mod recover;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sinks;
pub mod summary;
pub mod telemetry;
pub mod tools;
pub mod vision;
