//! Tool calls and their cache: the `tool` spans of `spans.parquet` (latency, cache outcome,
//! error) and the `tool_*`/`llm2_*` columns of `turns.parquet` (the two LLM rounds) read into
//! plain rows, and the statistics of the report's "Tools and cache" section — the cache's hit
//! rate, the tool's latency by cache outcome, the latency a hit saves, the tool's errors and
//! the LLM's first- and second-round time to first token.
//!
//! Definitions are in `docs/analysis.md` ("Tools and cache"). Everything but the two readers
//! is a pure function over rows already read. A file written before the tool columns existed
//! has no tool rows (the `cache` column and the turn columns are absent, so null).

use std::path::Path;

use latlab_report::model::{Estimate, Proportion, ToolLatency, ToolRow};
use latlab_results::columns as c;
use latlab_results::span::{Outcome, Stage};
use latlab_results::tool::CacheOutcome;
use polars::prelude::*;

use crate::AnalysisError;
use crate::frames::{opt_i64, opt_str, strings};
use crate::stats::{
    REPLICATES, percentile_interval, proportion_estimate, quantile, quantile_replicates, rng_for,
};
use crate::video::latency_stats;

/// The stage name of the tool in spans, comparisons and targets files.
pub const TOOL_STAGE: &str = Stage::Tool.as_str();
/// The statistic name of the cache's hit rate: hits over hits + misses (values in %).
pub const HIT_RATE: &str = "hit_rate";
/// The statistic name of the latency a cache hit saves: median miss − median hit (ms).
pub const SAVING: &str = "saving";

/// One `tool` span that ran (ok or error), as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpanRow {
    /// Run id.
    pub run: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Backend (the tool's API).
    pub backend: String,
    /// `ok` or `error`.
    pub outcome: Outcome,
    /// The error kind, on a failed call.
    pub error_kind: Option<String>,
    /// Call → result in hand, ms (on a successful call).
    pub latency_ms: Option<f64>,
    /// Where the result came from (None when the call never reached the cache, or the file
    /// predates the `cache` column).
    pub cache: Option<CacheOutcome>,
}

/// One turn with a tool call, as plain values (times ns since the run's epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolTurnRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// The function the LLM called.
    pub name: String,
    /// The first LLM request was sent.
    pub llm_request_sent_ns: Option<i64>,
    /// The tool call was complete in the first round's stream.
    pub call_ns: Option<i64>,
    /// The second LLM request (with the tool's result) was sent.
    pub llm2_request_sent_ns: Option<i64>,
    /// Its first content token.
    pub llm2_first_token_ns: Option<i64>,
}

impl ToolTurnRow {
    /// The first round's time to the complete tool call, ms.
    pub fn round1_ms(&self) -> Option<f64> {
        Some((self.call_ns? - self.llm_request_sent_ns?) as f64 / 1e6)
    }

    /// The second round's time to first token, ms.
    pub fn round2_ms(&self) -> Option<f64> {
        Some((self.llm2_first_token_ns? - self.llm2_request_sent_ns?) as f64 / 1e6)
    }
}

fn invalid(path: &Path, row: usize, e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Invalid {
        path: path.to_path_buf(),
        message: format!("row {row}: {e}"),
    }
}

/// Reads the `tool` spans of a `spans.parquet` that ran (skipped ones are turns without a
/// tool call). polars reads only the tool rows' few columns.
pub fn read_tool_spans(path: &Path) -> Result<Vec<ToolSpanRow>, AnalysisError> {
    let p = PlRefPath::try_from_path(path)?;
    let mut lf = LazyFrame::scan_parquet(p, ScanArgsParquet::default())?;
    let schema = lf.collect_schema()?;
    let wanted = [
        c::RUN,
        c::SCENARIO,
        c::PROFILE,
        c::BACKEND,
        c::OUTCOME,
        c::ERROR_KIND,
        c::LATENCY_NS,
        c::CACHE,
    ];
    let df = lf
        .filter(
            col(c::STAGE)
                .cast(DataType::String)
                .eq(lit(TOOL_STAGE))
                .and(
                    col(c::OUTCOME)
                        .cast(DataType::String)
                        .neq(lit(Outcome::Skipped.as_str())),
                ),
        )
        .select(
            wanted
                .iter()
                .filter(|name| schema.contains(name))
                .map(|name| col(*name))
                .collect::<Vec<_>>(),
        )
        .collect()?;
    let run = strings(&df, c::RUN)?;
    let scenario = strings(&df, c::SCENARIO)?;
    let profile = strings(&df, c::PROFILE)?;
    let backend = strings(&df, c::BACKEND)?;
    let outcome = strings(&df, c::OUTCOME)?;
    let kind = opt_str(&df, c::ERROR_KIND)?;
    let latency = opt_i64(&df, c::LATENCY_NS)?;
    let cache = opt_str(&df, c::CACHE)?;
    (0..df.height())
        .map(|i| {
            Ok(ToolSpanRow {
                run: run[i].clone(),
                scenario: scenario[i].clone(),
                profile: profile[i].clone(),
                backend: backend[i].clone(),
                outcome: outcome[i]
                    .parse::<Outcome>()
                    .map_err(|e| invalid(path, i, e))?,
                error_kind: kind[i].clone(),
                latency_ms: latency[i].map(|ns| ns as f64 / 1e6),
                cache: match &cache[i] {
                    Some(name) => Some(
                        name.parse::<CacheOutcome>()
                            .map_err(|e| invalid(path, i, e))?,
                    ),
                    None => None,
                },
            })
        })
        .collect()
}

/// Reads the turns of a `turns.parquet` that called a tool (none in a file older than the tool
/// columns).
pub fn read_tool_turns(path: &Path) -> Result<Vec<ToolTurnRow>, AnalysisError> {
    let file = std::fs::File::open(path).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let df = ParquetReader::new(file).finish()?;
    if df.column(c::TOOL_NAME).is_err() {
        return Ok(Vec::new());
    }
    let maybe_i64 = |name: &str| -> Result<Vec<Option<i64>>, AnalysisError> {
        if df.column(name).is_ok() {
            opt_i64(&df, name)
        } else {
            Ok(vec![None; df.height()])
        }
    };
    let run = strings(&df, c::RUN)?;
    let profile = strings(&df, c::PROFILE)?;
    let name = opt_str(&df, c::TOOL_NAME)?;
    let sent = maybe_i64(c::LLM_REQUEST_SENT_NS)?;
    let call = maybe_i64(c::TOOL_CALL_NS)?;
    let sent2 = maybe_i64(c::LLM2_REQUEST_SENT_NS)?;
    let first2 = maybe_i64(c::LLM2_FIRST_TOKEN_NS)?;
    Ok((0..df.height())
        .filter_map(|i| {
            Some(ToolTurnRow {
                run: run[i].clone(),
                profile: profile[i].clone(),
                name: name[i].clone()?,
                llm_request_sent_ns: sent[i],
                call_ns: call[i],
                llm2_request_sent_ns: sent2[i],
                llm2_first_token_ns: first2[i],
            })
        })
        .collect())
}

/// The tool spans of one run × profile (`profile` None: every profile of the run).
pub fn spans_of<'a>(
    rows: &'a [ToolSpanRow],
    run: &str,
    profile: Option<&str>,
) -> Vec<&'a ToolSpanRow> {
    rows.iter()
        .filter(|s| s.run == run && profile.is_none_or(|p| s.profile == p))
        .collect()
}

/// The tool turns of one run × profile (`profile` None: every profile of the run).
pub fn turns_of<'a>(
    rows: &'a [ToolTurnRow],
    run: &str,
    profile: Option<&str>,
) -> Vec<&'a ToolTurnRow> {
    rows.iter()
        .filter(|t| t.run == run && profile.is_none_or(|p| t.profile == p))
        .collect()
}

/// Hits and trials of the cache: the spans whose call reached the cache (hit or miss; a call
/// with the cache off is no trial).
pub fn hit_counts(spans: &[&ToolSpanRow]) -> (u64, u64) {
    let count = |o: CacheOutcome| spans.iter().filter(|s| s.cache == Some(o)).count() as u64;
    let hits = count(CacheOutcome::Hit);
    (hits, hits + count(CacheOutcome::Miss))
}

/// Events and trials of a tool rate ([`HIT_RATE`]); None for another name.
pub fn rate_counts(spans: &[&ToolSpanRow], statistic: &str) -> Option<(u64, u64)> {
    (statistic == HIT_RATE).then(|| hit_counts(spans))
}

/// Latencies (ms, ascending) of the successful calls with cache outcome `cache` (None: all).
pub fn latencies_ms(spans: &[&ToolSpanRow], cache: Option<CacheOutcome>) -> Vec<f64> {
    let mut v: Vec<f64> = spans
        .iter()
        .filter(|s| s.outcome == Outcome::Ok && cache.is_none_or(|c| s.cache == Some(c)))
        .filter_map(|s| s.latency_ms)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The latency a cache hit saves: median miss − median hit (ms), and that as a share of the
/// median miss, each with a 95 % bootstrap interval that resamples each group on its own.
/// None when either group is empty.
pub fn saving(hits: &[f64], misses: &[f64], seed: u64, what: &str) -> Option<(Estimate, Estimate)> {
    let (h, m) = (quantile(hits, 0.5)?, quantile(misses, 0.5)?);
    let rep = |x: &[f64], side: &str| {
        quantile_replicates(
            x,
            0.5,
            REPLICATES,
            &mut rng_for(seed, &format!("{what}/{side}")),
        )
    };
    let (rh, rm) = (rep(hits, "hit"), rep(misses, "miss"));
    let diffs: Vec<f64> = rh.iter().zip(&rm).map(|(h, m)| m - h).collect();
    let shares: Vec<f64> = rh
        .iter()
        .zip(&rm)
        .filter(|(_, m)| **m != 0.0)
        .map(|(h, m)| (m - h) / m)
        .collect();
    let with = |value: f64, reps: Vec<f64>| {
        let (lo, hi) = percentile_interval(reps).unwrap_or((f64::NAN, f64::NAN));
        Estimate {
            value,
            lo: lo.min(value),
            hi: hi.max(value),
        }
    };
    let share = if m != 0.0 { (m - h) / m } else { f64::NAN };
    Some((with(m - h, diffs), with(share, shares)))
}

/// Names and counts, most frequent first (then by name).
fn tally<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    for n in names {
        *counts.entry(n).or_default() += 1;
    }
    let mut out: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(n, k)| (n.to_string(), k))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The "Tools and cache" row of one run × profile; None when it made no tool call.
pub fn tool_row(
    run: &str,
    profile: &str,
    spans: &[&ToolSpanRow],
    turns: &[&ToolTurnRow],
    seed: u64,
) -> Option<ToolRow> {
    if spans.is_empty() && turns.is_empty() {
        return None;
    }
    let what = |metric: &str| format!("tool/{run}/{profile}/{metric}");
    let (hits, trials) = hit_counts(spans);
    let by_cache: Vec<ToolLatency> = CacheOutcome::ALL
        .iter()
        .filter_map(|&o| {
            let v = latencies_ms(spans, Some(o));
            (!v.is_empty()).then(|| ToolLatency {
                cache: o.as_str().to_string(),
                latency: latency_stats(&v, seed, &what(o.as_str())),
            })
        })
        .collect();
    let (saving, saving_share) = saving(
        &latencies_ms(spans, Some(CacheOutcome::Hit)),
        &latencies_ms(spans, Some(CacheOutcome::Miss)),
        seed,
        &what(SAVING),
    )
    .map_or((None, None), |(s, r)| (Some(s), Some(r)));
    let sorted = |f: fn(&ToolTurnRow) -> Option<f64>| {
        let mut v: Vec<f64> = turns.iter().filter_map(|t| f(t)).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    Some(ToolRow {
        run: run.to_string(),
        profile: profile.to_string(),
        tools: tally(turns.iter().map(|t| t.name.as_str())),
        turns: turns.len() as u64,
        calls: spans.len() as u64,
        errors: spans.iter().filter(|s| s.outcome == Outcome::Error).count() as u64,
        cache: CacheOutcome::ALL
            .iter()
            .map(|&o| {
                let k = spans.iter().filter(|s| s.cache == Some(o)).count() as u64;
                (o.as_str().to_string(), k)
            })
            .collect(),
        hit_rate: Proportion {
            k: hits,
            n: trials,
            rate: proportion_estimate(hits, trials),
        },
        latency: latency_stats(&latencies_ms(spans, None), seed, &what("all")),
        by_cache,
        saving,
        saving_share,
        error_kinds: tally(
            spans
                .iter()
                .filter(|s| s.outcome == Outcome::Error)
                .map(|s| s.error_kind.as_deref().unwrap_or("unknown")),
        ),
        llm_round1: latency_stats(&sorted(ToolTurnRow::round1_ms), seed, &what("llm1")),
        llm_round2: latency_stats(&sorted(ToolTurnRow::round2_ms), seed, &what("llm2")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(cache: Option<CacheOutcome>, ms: f64, ok: bool) -> ToolSpanRow {
        ToolSpanRow {
            run: "r".into(),
            scenario: "s".into(),
            profile: "p".into(),
            backend: "api".into(),
            outcome: if ok { Outcome::Ok } else { Outcome::Error },
            error_kind: (!ok).then(|| "timeout".into()),
            latency_ms: ok.then_some(ms),
            cache,
        }
    }

    #[test]
    fn hit_rate_counts_only_calls_that_reached_the_cache() {
        let rows = [
            span(Some(CacheOutcome::Hit), 1.0, true),
            span(Some(CacheOutcome::Hit), 2.0, true),
            span(Some(CacheOutcome::Miss), 100.0, true),
            span(Some(CacheOutcome::Miss), 0.0, false),
            span(Some(CacheOutcome::Off), 90.0, true),
            span(None, 0.0, false),
        ];
        let refs: Vec<&ToolSpanRow> = rows.iter().collect();
        assert_eq!(hit_counts(&refs), (2, 4));
        assert_eq!(rate_counts(&refs, HIT_RATE), Some((2, 4)));
        assert_eq!(rate_counts(&refs, "p50"), None);
        assert_eq!(latencies_ms(&refs, Some(CacheOutcome::Miss)), vec![100.0]);
        assert_eq!(latencies_ms(&refs, None), vec![1.0, 2.0, 90.0, 100.0]);
        let row = tool_row("r", "p", &refs, &[], 1).unwrap();
        assert_eq!((row.calls, row.errors, row.turns), (6, 2, 0));
        assert_eq!(row.error_kinds, vec![("timeout".to_string(), 2)]);
        assert_eq!(row.saving.unwrap().value, 99.0);
    }

    #[test]
    fn saving_resamples_each_group() {
        let hits: Vec<f64> = (1..=20).map(f64::from).collect();
        let misses: Vec<f64> = (101..=120).map(f64::from).collect();
        let (s, share) = saving(&hits, &misses, 7, "t").unwrap();
        assert_eq!(s.value, 100.0);
        assert!(s.lo <= 100.0 && s.hi >= 100.0 && s.lo >= 81.0 && s.hi <= 119.0);
        assert!((share.value - 100.0 / 110.0).abs() < 1e-12);
        assert!(saving(&[], &misses, 7, "t").is_none());
    }
}
