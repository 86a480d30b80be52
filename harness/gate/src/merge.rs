//! The unit the gate judges: one scenario × profile × stage, its backends' spans together —
//! or, for the vision lane, the `frame` stage of a profile's replayed video frames — or, for
//! an agent run, the caller's-ear stages of its turns (`agent`, `interruption`, `agent_lead`,
//! `unseen`).

use latlab_analysis::agent::{self, AgentTurnRow};
use latlab_analysis::frames::SpanGroup;
use latlab_analysis::tool::{self, ToolSpanRow};
use latlab_analysis::video::{self, VideoFrame};
use latlab_results::frame::FrameOutcome;

use crate::targets::FRAME_STAGE;

/// The successful latencies and error counts of one scenario × profile × stage.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Stage `frame`: frames captured (the deadline-miss rate's trials); 0 otherwise.
    pub frames: u64,
    /// Stage `frame`: frames that missed their deadline (late, skipped or failed).
    pub missed: u64,
    /// Stage `frame`: achieved FPS of each stream in each whole 1 s window, ascending.
    pub fps_windows: Vec<f64>,
    /// (statistic, events, trials) of each rate of the stage beyond its errors: stage
    /// `agent`'s turn-taking rates (`latlab_analysis::agent::RATES`), stage `tool`'s cache hit
    /// rate (`latlab_analysis::tool::HIT_RATE`); empty otherwise.
    pub rates: Vec<(&'static str, u64, u64)>,
}

impl StageSample {
    /// Attempted spans: successful plus failed.
    pub fn attempts(&self) -> u64 {
        self.sorted_ms.len() as u64 + self.errors
    }

    /// Events and trials of one of [`StageSample::rates`]; (0, 0) when the sample has none.
    pub fn rate(&self, statistic: &str) -> (u64, u64) {
        self.rates
            .iter()
            .find(|(s, _, _)| *s == statistic)
            .map_or((0, 0), |&(_, k, n)| (k, n))
    }
}

/// The caller's-ear stages of each scenario × profile of agent runs (runs together, in
/// first-seen order): `agent` (the turn-taking and gap rates), and the latencies
/// `interruption`, `agent_lead` (the reply's leading silence) and `unseen` (voice-to-voice −
/// the agent's own figure), each in ms, ascending. A stage with no samples is left out.
pub fn agent_samples(turns: &[AgentTurnRow]) -> Vec<StageSample> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for t in turns {
        let pair = (t.scenario.as_str(), t.profile.as_str());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let mut out = Vec::new();
    for (scenario, profile) in pairs {
        let of: Vec<&AgentTurnRow> = turns
            .iter()
            .filter(|t| t.scenario == scenario && t.profile == profile)
            .collect();
        let sample = |stage: &str, sorted_ms: Vec<f64>| StageSample {
            scenario: scenario.to_string(),
            profile: profile.to_string(),
            stage: stage.to_string(),
            sorted_ms,
            ..StageSample::default()
        };
        out.push(StageSample {
            rates: agent::RATES
                .iter()
                .filter_map(|r| agent::rate_counts(&of, r).map(|(k, n)| (*r, k, n)))
                .collect(),
            ..sample(agent::AGENT_STAGE, Vec::new())
        });
        for (stage, sorted_ms) in [
            (agent::INTERRUPTION_STAGE, agent::interruption_ms(&of)),
            (agent::LEAD_STAGE, agent::lead_ms(&of)),
            (agent::UNSEEN_STAGE, agent::unseen_ms(&of)),
        ] {
            if !sorted_ms.is_empty() {
                out.push(sample(stage, sorted_ms));
            }
        }
    }
    out
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
                ..StageSample::default()
            }),
        }
    }
    out
}

/// Adds the cache's hit rate (`latlab_analysis::tool::HIT_RATE`: hits over the calls that
/// reached the cache) to each scenario × profile's `tool` stage, from its tool spans that ran
/// (a `tool` stage missing from `stages` is added, without latencies).
pub fn add_tool_rates(stages: &mut Vec<StageSample>, spans: &[ToolSpanRow]) {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for s in spans {
        let pair = (s.scenario.as_str(), s.profile.as_str());
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    for (scenario, profile) in pairs {
        let of: Vec<&ToolSpanRow> = spans
            .iter()
            .filter(|s| s.scenario == scenario && s.profile == profile)
            .collect();
        let (k, n) = tool::hit_counts(&of);
        let at = stages.iter().position(|s| {
            s.scenario == scenario && s.profile == profile && s.stage == tool::TOOL_STAGE
        });
        let at = at.unwrap_or_else(|| {
            stages.push(StageSample {
                scenario: scenario.to_string(),
                profile: profile.to_string(),
                stage: tool::TOOL_STAGE.to_string(),
                ..StageSample::default()
            });
            stages.len() - 1
        });
        stages[at].rates.push((tool::HIT_RATE, k, n));
    }
}

/// The `frame` stage of each scenario × profile (runs and streams together, in first-seen
/// order): processed frames' latencies (capture → result), failed and skipped frames,
/// deadline misses over frames captured, and the per-stream 1 s FPS windows (computed per
/// run, `source_fps` giving each run's recorded rate).
pub fn frame_samples(
    frames: &[VideoFrame],
    source_fps: impl Fn(&str) -> Option<f64>,
) -> Vec<StageSample> {
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for f in frames {
        let key = (f.scenario.as_str(), f.profile.as_str(), f.run.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut out: Vec<StageSample> = Vec::new();
    for (scenario, profile, run) in keys {
        let of: Vec<&VideoFrame> = frames
            .iter()
            .filter(|f| f.scenario == scenario && f.profile == profile && f.run == run)
            .collect();
        let count = |o: FrameOutcome| of.iter().filter(|f| f.outcome == o).count() as u64;
        let windows = video::fps_windows(&of, source_fps(run));
        let part = StageSample {
            scenario: scenario.to_string(),
            profile: profile.to_string(),
            stage: FRAME_STAGE.to_string(),
            errors: count(FrameOutcome::Error),
            skipped: count(FrameOutcome::Skipped),
            sorted_ms: video::latencies_ms(&of),
            frames: of.len() as u64,
            missed: of.iter().filter(|f| f.missed).count() as u64,
            fps_windows: windows.iter().map(|w| w.fps).collect(),
            rates: Vec::new(),
        };
        match out
            .iter_mut()
            .find(|s| s.scenario == scenario && s.profile == profile)
        {
            Some(s) => {
                s.errors += part.errors;
                s.skipped += part.skipped;
                s.frames += part.frames;
                s.missed += part.missed;
                s.sorted_ms.extend(part.sorted_ms);
                s.fps_windows.extend(part.fps_windows);
            }
            None => out.push(part),
        }
    }
    for s in &mut out {
        s.sorted_ms.sort_by(f64::total_cmp);
        s.fps_windows.sort_by(f64::total_cmp);
    }
    out
}
