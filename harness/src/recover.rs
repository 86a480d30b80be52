//! `latlab recover`: rebuild a killed or interrupted run's Parquet and histogram files from
//! its append-only logs (`frames.parquet` too, from `frames.jsonl`, when the run had a vision
//! lane).

use std::path::Path;

use latlab_core::timing::{Outcome, Span, TurnTimeline};
use latlab_core::vision::FrameRecord;

use crate::manifest::{Counts, RunManifest, RunStatus};
use crate::runner::sort_results;
use crate::sinks::{self, SPANS_LOG, TURNS_LOG};

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// Spans recovered.
    pub spans: usize,
    /// Turns recovered.
    pub turns: usize,
    /// Torn lines skipped (a write cut by the kill).
    pub torn_lines: usize,
}

/// Rebuilds `spans.parquet`, `turns.parquet` and `latency.hlog` in `dir` from its logs.
pub fn recover(dir: &Path) -> anyhow::Result<Recovered> {
    let (mut spans, torn_spans) = sinks::read_log::<Span>(&dir.join(SPANS_LOG))?;
    let (mut turns, torn_turns) = sinks::read_log::<TurnTimeline>(&dir.join(TURNS_LOG))?;
    // A span whose turn line never made it is still a complete, valid span: keep both logs as they are.
    sort_results(&mut spans, &mut turns);
    sinks::write_tables(dir, &spans, &turns)?;
    let frames_log = dir.join(latlab_results::files::FRAMES_LOG);
    let (mut frames, torn_frames) = if frames_log.exists() {
        sinks::read_log::<FrameRecord>(&frames_log)?
    } else {
        (Vec::new(), 0)
    };
    let manifest = RunManifest::read(dir);
    if frames_log.exists() {
        let (run, scenario) = manifest
            .as_ref()
            .map(|m| (m.run_id.as_str(), m.scenario.name.as_str()))
            .unwrap_or_default();
        crate::vision::write_table(dir, run, scenario, &mut frames)?;
    }
    if let Ok(mut manifest) = manifest
        && manifest.status == RunStatus::Running
    {
        manifest.status = RunStatus::Recovered;
        manifest.notes.push(format!(
            "recovered from the span logs after the run stopped early ({} torn lines skipped)",
            torn_spans + torn_turns
        ));
        let calls: std::collections::BTreeSet<_> = turns
            .iter()
            .map(|t| (&t.profile, &t.call, t.iteration))
            .collect();
        manifest.counts = Some(Counts {
            calls: calls.len(),
            turns: turns.len(),
            failed_turns: turns.iter().filter(|t| t.outcome != Outcome::Ok).count(),
            spans: spans.len(),
            dropped_calls: manifest.counts.as_ref().map_or(0, |c| c.dropped_calls),
            max_in_flight: manifest.counts.as_ref().map_or(0, |c| c.max_in_flight),
        });
        manifest.llm_queue_wait = crate::measurer::llm_queue_wait(&turns);
        if let Some(v) = &mut manifest.vision {
            let names: Vec<String> = manifest.profiles.iter().map(|p| p.name.clone()).collect();
            v.accuracy = crate::vision::accuracy_of(&frames, &names);
            v.count(&frames);
        }
        manifest.write(dir)?;
    }
    Ok(Recovered {
        spans: spans.len(),
        turns: turns.len(),
        torn_lines: torn_spans + torn_turns + torn_frames,
    })
}
