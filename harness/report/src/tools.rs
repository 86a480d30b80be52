//! The "Tools and cache" section as tables, shared by every renderer (each escapes the cells
//! its own way): what was called and where results came from; the tool's latency by cache
//! outcome and what a hit saves; errors; the LLM's two rounds.

use crate::model::{LatencyStats, ToolSection};
use crate::text::{VideoTable, estimate, rate};

/// `name × 12, other × 3`.
fn counts(named: &[(String, u64)]) -> String {
    if named.is_empty() {
        return "-".to_string();
    }
    named
        .iter()
        .map(|(n, k)| format!("{n} × {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn latency_cells(l: &LatencyStats) -> [String; 4] {
    [
        l.count.to_string(),
        estimate(&l.p50),
        estimate(&l.p90),
        estimate(&l.p95),
    ]
}

/// The section's tables, in report order. Every figure's sample count is in its row.
pub fn tool_tables(t: &ToolSection) -> Vec<VideoTable> {
    let mut out = Vec::new();
    out.push(VideoTable {
        title: "Tool calls and the cache (hit rate = hits / (hits + misses), 95 % Clopper–Pearson CI)",
        header: vec![
            "run", "profile", "tools", "tool turns", "calls", "hit", "miss", "off", "hit rate",
            "errors",
        ],
        rows: t
            .profiles
            .iter()
            .map(|r| {
                let cache = |o: &str| {
                    r.cache
                        .iter()
                        .find(|(c, _)| c == o)
                        .map_or(0, |(_, k)| *k)
                        .to_string()
                };
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    counts(&r.tools),
                    r.turns.to_string(),
                    r.calls.to_string(),
                    cache("hit"),
                    cache("miss"),
                    cache("off"),
                    rate(&r.hit_rate),
                    counts(&r.error_kinds),
                ]
            })
            .collect(),
        left: 3,
    });
    out.push(VideoTable {
        title: "Tool latency by cache outcome (tool call complete in the LLM's stream → result in hand; ms, 95 % bootstrap CI)",
        header: vec!["run", "profile", "cache", "n", "p50", "p90", "p95"],
        rows: t
            .profiles
            .iter()
            .flat_map(|r| {
                let all = std::iter::once(("all", &r.latency));
                let each = r.by_cache.iter().map(|b| (b.cache.as_str(), &b.latency));
                all.chain(each)
                    .map(|(cache, l)| {
                        let mut row = vec![r.run.clone(), r.profile.clone(), cache.to_string()];
                        row.extend(latency_cells(l));
                        row
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        left: 3,
    });
    out.push(VideoTable {
        title: "What a cache hit saves (median miss − median hit, ms and share of the miss; 95 % bootstrap CI, each group resampled)",
        header: vec!["run", "profile", "saving ms", "share of a miss"],
        rows: t
            .profiles
            .iter()
            .filter(|r| r.saving.is_some())
            .map(|r| {
                let share = r.saving_share.map_or_else(
                    || "-".to_string(),
                    |e| {
                        format!(
                            "{:.1} % [{:.1}, {:.1}]",
                            e.value * 100.0,
                            e.lo * 100.0,
                            e.hi * 100.0
                        )
                    },
                );
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    estimate(&r.saving),
                    share,
                ]
            })
            .collect(),
        left: 2,
    });
    out.push(VideoTable {
        title: "The LLM's two rounds on tool turns (round 1: request sent → tool call complete; round 2: request with the result sent → first token; ms, 95 % bootstrap CI)",
        header: vec![
            "run", "profile", "round 1 n", "p50", "p90", "p95", "round 2 n", "p50", "p90", "p95",
        ],
        rows: t
            .profiles
            .iter()
            .map(|r| {
                let mut row = vec![r.run.clone(), r.profile.clone()];
                row.extend(latency_cells(&r.llm_round1));
                row.extend(latency_cells(&r.llm_round2));
                row
            })
            .collect(),
        left: 2,
    });
    out.retain(|t| !t.rows.is_empty());
    out
}
