//! The end-of-run table: per profile × stage, count, errors and exact percentiles.
//!
//! Percentiles are exact (nearest rank over the sorted sample), computed over successful
//! spans only; errors are counted beside them, so no summary hides how many samples it
//! stands on or how many turns failed.

use std::collections::BTreeMap;
use std::fmt::Write;

use latlab_analysis::stats::rank;
use latlab_core::timing::{Outcome, Span, Stage};
use serde::Serialize;

/// The quantiles every summary shows.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.50, "p50"), (0.90, "p90"), (0.95, "p95"), (0.99, "p99")];

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Profile.
    pub profile: String,
    /// Stage (`turn` is voice-to-voice).
    pub stage: Stage,
    /// Successful spans the percentiles stand on.
    pub count: usize,
    /// Spans that failed.
    pub errors: usize,
    /// Spans skipped because an earlier stage failed.
    pub skipped: usize,
    /// p50, p90, p95, p99 in ms (None without samples).
    pub percentiles_ms: [Option<f64>; 4],
    /// Max in ms.
    pub max_ms: Option<f64>,
}

/// Summarises spans by profile (in first-seen order) and stage.
pub fn summarize(spans: &[Span]) -> Vec<Row> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<(usize, Stage), Vec<&Span>> = BTreeMap::new();
    for s in spans {
        let p = match order.iter().position(|p| *p == s.profile) {
            Some(p) => p,
            None => {
                order.push(s.profile.clone());
                order.len() - 1
            }
        };
        groups.entry((p, s.stage)).or_default().push(s);
    }
    // A called agent is opaque: its endpoint, STT, LLM and TTS spans are all skipped and
    // carry the agent's name, the turn span's backend; a run without tools has only skipped
    // `tool` spans of backend `none`. They have nothing to summarise.
    let turn_backend: BTreeMap<usize, String> = groups
        .iter()
        .filter(|((_, stage), _)| *stage == Stage::Turn)
        .filter_map(|((p, _), spans)| Some((*p, spans.first()?.backend.clone())))
        .collect();
    groups
        .into_iter()
        .filter(|((p, stage), spans)| {
            !(*stage != Stage::Turn
                && spans.iter().all(|s| s.outcome == Outcome::Skipped)
                && (spans.iter().all(|s| s.backend == "none")
                    || turn_backend
                        .get(p)
                        .is_some_and(|b| spans.iter().all(|s| &s.backend == b))))
        })
        .map(|((p, stage), spans)| {
            let mut ok: Vec<i64> = spans
                .iter()
                .filter(|s| s.outcome == Outcome::Ok)
                .filter_map(|s| s.latency_ns)
                .collect();
            ok.sort_unstable();
            let ms = |v: Option<i64>| v.map(|ns| ns as f64 / 1e6);
            Row {
                profile: order[p].clone(),
                stage,
                count: ok.len(),
                errors: spans.iter().filter(|s| s.outcome == Outcome::Error).count(),
                skipped: spans
                    .iter()
                    .filter(|s| s.outcome == Outcome::Skipped)
                    .count(),
                percentiles_ms: QUANTILES
                    .map(|(q, _)| ms((!ok.is_empty()).then(|| ok[rank(ok.len(), q) - 1]))),
                max_ms: ms(ok.last().copied()),
            }
        })
        .collect()
}

/// Renders the rows as a fixed-width text table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<16} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "profile", "stage", "count", "errors", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    for r in rows {
        let stage = match r.stage {
            Stage::Turn => "voice-to-voice".to_string(),
            s => s.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<14} {:<16} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
            r.profile,
            stage,
            r.count,
            r.errors,
            cell(r.percentiles_ms[0]),
            cell(r.percentiles_ms[1]),
            cell(r.percentiles_ms[2]),
            cell(r.percentiles_ms[3]),
            cell(r.max_ms),
        );
    }
    out
}
