//! The unit the gate judges: one scenario × profile × stage, its backends' spans together.

use latlab_analysis::frames::SpanGroup;

/// The successful latencies and error counts of one scenario × profile × stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSample {
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Stage (`turn` is voice-to-voice).
    pub stage: String,
    /// Failed spans.
    pub errors: u64,
    /// Skipped spans (never attempted: not part of the error rate).
    pub skipped: u64,
    /// Successful latencies in ms, ascending.
    pub sorted_ms: Vec<f64>,
}

impl StageSample {
    /// Attempted spans: successful plus failed.
    pub fn attempts(&self) -> u64 {
        self.sorted_ms.len() as u64 + self.errors
    }
}

/// Merges span groups that differ only in run or backend, keeping first-seen order.
pub fn stage_samples(groups: &[SpanGroup]) -> Vec<StageSample> {
    let mut out: Vec<StageSample> = Vec::new();
    for g in groups {
        let found = out
            .iter_mut()
            .find(|s| s.scenario == g.scenario && s.profile == g.profile && s.stage == g.stage);
        match found {
            Some(s) => {
                s.errors += g.errors;
                s.skipped += g.skipped;
                s.sorted_ms.extend_from_slice(&g.sorted_ms);
                s.sorted_ms.sort_by(f64::total_cmp);
            }
            None => out.push(StageSample {
                scenario: g.scenario.clone(),
                profile: g.profile.clone(),
                stage: g.stage.clone(),
                errors: g.errors,
                skipped: g.skipped,
                sorted_ms: g.sorted_ms.clone(),
            }),
        }
    }
    out
}
