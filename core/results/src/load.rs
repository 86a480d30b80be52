//! A run's load as its manifest records it: the model (closed or open loop), how open-loop
//! calls arrive, and the stages of a ramp, placed on the profile's timeline as windows.
//!
//! Times are nanoseconds from the start of a profile's load, in recording time. The arrival
//! plans themselves (seeded random draws) are `latlab_core::load`'s; this module holds only
//! what a reader of a results folder needs.

use serde::{Deserialize, Serialize};

/// How open-loop calls arrive within a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps: independent arrivals at a mean rate (the usual model of callers).
    #[default]
    Poisson,
    /// Evenly spaced arrivals.
    Constant,
}

/// One stage of a load ramp: a level held for a duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// A name for the stage (`light`, `medium`, `heavy`, `stress`); recorded in the manifest.
    #[serde(default)]
    pub name: String,
    /// How long the stage lasts, seconds of recording time (unbounded: infinite, written as
    /// `null` in JSON).
    #[serde(deserialize_with = "duration_or_unbounded")]
    pub duration_s: f64,
    /// Calls in flight (closed loop) or calls started per second (open loop).
    pub target: f64,
}

/// A duration, where JSON's `null` (how serde_json writes an infinite float) means unbounded.
fn duration_or_unbounded<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// A stage placed on the profile's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageWindow {
    /// The stage's name.
    pub name: String,
    /// Start, ns from the profile's load start (recording time).
    pub start_ns: u64,
    /// End (exclusive); `u64::MAX` for an unbounded last stage.
    pub end_ns: u64,
    /// Its level.
    pub target: f64,
}

/// Places stages one after another from 0.
pub fn windows(stages: &[Stage]) -> Vec<StageWindow> {
    let mut start = 0u64;
    stages
        .iter()
        .map(|s| {
            let end = if s.duration_s.is_finite() {
                start.saturating_add((s.duration_s * 1e9).round() as u64)
            } else {
                u64::MAX
            };
            let w = StageWindow {
                name: s.name.clone(),
                start_ns: start,
                end_ns: end,
                target: s.target,
            };
            start = end;
            w
        })
        .collect()
}

/// The index of the stage holding `t_ns` (ns from the load start), or `None` after the last
/// stage ends.
pub fn window_at(windows: &[StageWindow], t_ns: u64) -> Option<usize> {
    windows
        .iter()
        .position(|w| w.start_ns <= t_ns && t_ns < w.end_ns)
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LoadModel {
    /// A number of calls in flight; each slot starts its next call when one ends.
    #[default]
    Closed,
    /// Calls arrive on a plan, whatever the system's state.
    Open,
}

/// A scenario's load, resolved: what the runner drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPlan {
    /// Closed or open.
    pub model: LoadModel,
    /// Open loop: how arrivals are spaced.
    pub arrival: Arrival,
    /// The stages (one unnamed stage when the scenario gives none).
    pub stages: Vec<Stage>,
    /// The most calls per profile (`None`: the stages bound the run).
    pub max_calls: Option<usize>,
    /// Open loop: the in-flight cap.
    pub max_in_flight: usize,
}
