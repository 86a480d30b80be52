//! latlab-core: the reusable pipeline of a voice agent under measurement.
//!
//! Data flows one way: a [`dataset`] of recorded calls becomes a replay [`schedule`],
//! a [`pipeline`] call session feeds it through the streaming [`stage`]s (endpointing,
//! speech-to-text, LLM, text-to-speech) implemented by [`backends`], and every stage boundary
//! becomes a timestamp in the [`timing`] model, handed to a [`timing::SpanSink`] (the
//! harness's sinks record through a [`recorder::SpanRecorder`]).
//!
//! This crate never analyses, plots or parses command lines: that is the harness's job.
//! All times are nanoseconds on one monotonic [`clock::Epoch`] per run.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod audio;
pub mod backends;
pub mod clock;
pub mod dataset;
pub mod load;
pub mod pipeline;
pub mod recorder;
pub mod schedule;
pub mod stage;
pub mod text;
pub mod timing;
pub mod tools;
pub mod vision;

pub use latlab_results::{profile, wer};
