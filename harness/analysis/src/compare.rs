//! Two sides set against each other: two results folders, or two profiles of one run. Each
//! statistic is shown side by side with B − A and (B − A) / A, each with a bootstrap interval.

use std::path::PathBuf;

use latlab_report::model::{Comparison, ComparisonRow, Estimate, Report};

use crate::AnalysisError;
use latlab_results::span::Stage;

use crate::agent;
use crate::report::{
    BOOTSTRAP_SEED, Loaded, QUANTILES, STAGES, build, cdf_series, cdf_series_of, load,
};
use crate::stats::{
    REPLICATES, difference, mean_estimate, mean_replicates, proportion_estimate,
    proportion_replicates, quantile_estimate, quantile_replicates, rng_for,
};
use crate::tool;
use crate::video::{self, VideoFrame};

/// The stage name of frame latency in comparisons (and in targets files).
pub const FRAME_STAGE: &str = "frame";
/// The statistic name of the deadline-miss rate in comparisons (values in %).
pub const DEADLINE_MISS_RATE: &str = "deadline_miss_rate";

/// The frames of one side.
fn side_frames<'a>(loaded: &'a Loaded, run: &str, profile: Option<&str>) -> Vec<&'a VideoFrame> {
    loaded
        .frames
        .iter()
        .filter(|f| f.run == run && profile.is_none_or(|p| f.profile == p))
        .collect()
}

/// The q-quantile (ms) of both sides, B − A with bootstrap intervals; None when either side
/// has no samples. Seeds are named `compare/{stage}/{statistic}/{side}`.
fn quantile_row(
    stage: &str,
    statistic: &str,
    q: f64,
    xa: &[f64],
    xb: &[f64],
) -> Option<ComparisonRow> {
    let what = |side: &str| format!("compare/{stage}/{statistic}/{side}");
    let rep = |x: &[f64], side: &str| {
        quantile_replicates(x, q, REPLICATES, &mut rng_for(BOOTSTRAP_SEED, &what(side)))
    };
    let ea = quantile_estimate(xa, q, BOOTSTRAP_SEED, &what("a"))?;
    let eb = quantile_estimate(xb, q, BOOTSTRAP_SEED, &what("b"))?;
    let (diff, relative) = difference(&ea, &rep(xa, "ra"), &eb, &rep(xb, "rb"))?;
    Some(ComparisonRow {
        stage: stage.into(),
        statistic: statistic.into(),
        count_a: xa.len() as u64,
        count_b: xb.len() as u64,
        a: ea,
        b: eb,
        diff,
        relative,
    })
}

/// A rate `k / n` of both sides in %, each interval exact (Clopper–Pearson), B − A's from a
/// parametric bootstrap of each side's binomial count; None when either side has no trials.
fn rate_row(
    stage: &str,
    statistic: &str,
    (ka, na): (u64, u64),
    (kb, nb): (u64, u64),
) -> Option<ComparisonRow> {
    let what = |side: &str| format!("compare/{stage}/{statistic}/{side}");
    let pct = |e: Estimate| Estimate {
        value: e.value * 100.0,
        lo: e.lo * 100.0,
        hi: e.hi * 100.0,
    };
    let reps = |k: u64, n: u64, side: &str| -> Vec<f64> {
        proportion_replicates(k, n, REPLICATES, &mut rng_for(BOOTSTRAP_SEED, &what(side)))
            .into_iter()
            .map(|p| p * 100.0)
            .collect()
    };
    let ea = pct(proportion_estimate(ka, na)?);
    let eb = pct(proportion_estimate(kb, nb)?);
    let (diff, relative) = difference(&ea, &reps(ka, na, "ra"), &eb, &reps(kb, nb, "rb"))?;
    Some(ComparisonRow {
        stage: stage.into(),
        statistic: statistic.into(),
        count_a: na,
        count_b: nb,
        a: ea,
        b: eb,
        diff,
        relative,
    })
}

/// Frame latency p50 and p95 (ms) and the deadline-miss rate (%) of both sides, B − A with
/// bootstrap intervals; nothing when either side has no frames.
fn frame_rows(
    loaded: &Loaded,
    (run_a, a): (&str, &Side),
    (run_b, b): (&str, &Side),
) -> Vec<ComparisonRow> {
    let fa = side_frames(loaded, run_a, a.profile.as_deref());
    let fb = side_frames(loaded, run_b, b.profile.as_deref());
    if fa.is_empty() || fb.is_empty() {
        return Vec::new();
    }
    let (xa, xb) = (video::latencies_ms(&fa), video::latencies_ms(&fb));
    let mut rows: Vec<ComparisonRow> = [(0.50, "p50"), (0.95, "p95")]
        .into_iter()
        .filter_map(|(q, statistic)| quantile_row(FRAME_STAGE, statistic, q, &xa, &xb))
        .collect();
    let missed = |f: &[&VideoFrame]| f.iter().filter(|f| f.missed).count() as u64;
    rows.extend(rate_row(
        FRAME_STAGE,
        DEADLINE_MISS_RATE,
        (missed(&fa), fa.len() as u64),
        (missed(&fb), fb.len() as u64),
    ));
    rows
}

/// Agent metrics of both sides, so two builds of an agent compare: interruption latency p50
/// and p95, the turn-taking and gap rates (%), the reply's leading silence p50 and p95, and
/// the unseen time p50 and p90 (voice-to-voice − the agent's own figure); nothing when either
/// side has no agent turns. Voice-to-voice compares as the `turn` stage.
fn agent_rows(
    loaded: &Loaded,
    (run_a, a): (&str, &Side),
    (run_b, b): (&str, &Side),
) -> Vec<ComparisonRow> {
    let ta = agent::turns_of(&loaded.agent, run_a, a.profile.as_deref());
    let tb = agent::turns_of(&loaded.agent, run_b, b.profile.as_deref());
    if ta.is_empty() || tb.is_empty() {
        return Vec::new();
    }
    let mut rows = Vec::new();
    let (ia, ib) = (agent::interruption_ms(&ta), agent::interruption_ms(&tb));
    for (q, statistic) in [(0.50, "p50"), (0.95, "p95")] {
        rows.extend(quantile_row(
            agent::INTERRUPTION_STAGE,
            statistic,
            q,
            &ia,
            &ib,
        ));
    }
    for statistic in agent::RATES {
        if let (Some(ka), Some(kb)) = (
            agent::rate_counts(&ta, statistic),
            agent::rate_counts(&tb, statistic),
        ) {
            rows.extend(rate_row(agent::AGENT_STAGE, statistic, ka, kb));
        }
    }
    let (la, lb) = (agent::lead_ms(&ta), agent::lead_ms(&tb));
    for (q, statistic) in [(0.50, "p50"), (0.95, "p95")] {
        rows.extend(quantile_row(agent::LEAD_STAGE, statistic, q, &la, &lb));
    }
    let (ua, ub) = (agent::unseen_ms(&ta), agent::unseen_ms(&tb));
    for (q, statistic) in [(0.50, "p50"), (0.90, "p90")] {
        rows.extend(quantile_row(agent::UNSEEN_STAGE, statistic, q, &ua, &ub));
    }
    rows
}

/// The cache's hit rate (%) of both sides, B − A with an interval, so tool caches compare
/// (`none` / `memory` / `redis`); nothing when either side has no call that reached a cache
/// (a side with the cache off has none). The tool's latency compares as the `tool` stage.
fn tool_rows(
    loaded: &Loaded,
    (run_a, a): (&str, &Side),
    (run_b, b): (&str, &Side),
) -> Vec<ComparisonRow> {
    let sa = tool::spans_of(&loaded.tool_spans, run_a, a.profile.as_deref());
    let sb = tool::spans_of(&loaded.tool_spans, run_b, b.profile.as_deref());
    rate_row(
        tool::TOOL_STAGE,
        tool::HIT_RATE,
        tool::hit_counts(&sa),
        tool::hit_counts(&sb),
    )
    .into_iter()
    .collect()
}

/// One side of a comparison: a results folder, optionally narrowed to one profile.
#[derive(Debug, Clone)]
pub struct Side {
    /// The results folder.
    pub dir: PathBuf,
    /// Only this profile (else every profile of the run, pooled).
    pub profile: Option<String>,
}

impl Side {
    /// Parses `DIR` or `DIR:PROFILE`.
    pub fn parse(arg: &str) -> Side {
        let path = PathBuf::from(arg);
        if path.exists() {
            return Side {
                dir: path,
                profile: None,
            };
        }
        match arg.rsplit_once(':') {
            Some((dir, profile)) => Side {
                dir: PathBuf::from(dir),
                profile: Some(profile.to_string()),
            },
            None => Side {
                dir: path,
                profile: None,
            },
        }
    }
}

/// Sorted latencies (ms) of one stage on one side.
fn sample(loaded: &Loaded, run: &str, profile: Option<&str>, stage: &str) -> Vec<f64> {
    let mut v: Vec<f64> = loaded
        .groups
        .iter()
        .filter(|g| g.run == run && g.stage == stage && profile.is_none_or(|p| g.profile == p))
        .flat_map(|g| g.sorted_ms.iter().copied())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Compares side B against side A.
pub fn compare(a: &Side, b: &Side) -> Result<Report, AnalysisError> {
    let mut dirs = vec![a.dir.clone()];
    if b.dir != a.dir {
        dirs.push(b.dir.clone());
    }
    let loaded = load(&dirs)?;
    let run_a = loaded.runs[0].facts.run_id.clone();
    let run_b = loaded
        .runs
        .last()
        .map(|r| r.facts.run_id.clone())
        .unwrap_or_default();
    let name = |run: &str, side: &Side| match &side.profile {
        Some(p) => format!("{run} · {p}"),
        None => run.to_string(),
    };
    let (label_a, label_b) = (name(&run_a, a), name(&run_b, b));
    if label_a == label_b {
        return Err(AnalysisError::Empty(format!("both sides are {label_a}")));
    }
    let mut rows = Vec::new();
    for stage in STAGES {
        let xa = sample(&loaded, &run_a, a.profile.as_deref(), stage);
        let xb = sample(&loaded, &run_b, b.profile.as_deref(), stage);
        if xa.is_empty() || xb.is_empty() {
            continue;
        }
        let mut stats: Vec<(&str, Option<f64>)> =
            QUANTILES.iter().map(|(q, n)| (*n, Some(*q))).collect();
        stats.push(("mean", None));
        for (statistic, q) in stats {
            let what = |side: &str| format!("compare/{stage}/{statistic}/{side}");
            let (ea, eb, ra, rb) = match q {
                Some(q) => (
                    quantile_estimate(&xa, q, BOOTSTRAP_SEED, &what("a")),
                    quantile_estimate(&xb, q, BOOTSTRAP_SEED, &what("b")),
                    quantile_replicates(
                        &xa,
                        q,
                        REPLICATES,
                        &mut rng_for(BOOTSTRAP_SEED, &what("ra")),
                    ),
                    quantile_replicates(
                        &xb,
                        q,
                        REPLICATES,
                        &mut rng_for(BOOTSTRAP_SEED, &what("rb")),
                    ),
                ),
                None => (
                    mean_estimate(&xa, BOOTSTRAP_SEED, &what("a")),
                    mean_estimate(&xb, BOOTSTRAP_SEED, &what("b")),
                    mean_replicates(&xa, REPLICATES, &mut rng_for(BOOTSTRAP_SEED, &what("ra"))),
                    mean_replicates(&xb, REPLICATES, &mut rng_for(BOOTSTRAP_SEED, &what("rb"))),
                ),
            };
            let (Some(ea), Some(eb)) = (ea, eb) else {
                continue;
            };
            let Some((diff, relative)) = difference(&ea, &ra, &eb, &rb) else {
                continue;
            };
            rows.push(ComparisonRow {
                stage: stage.to_string(),
                statistic: statistic.to_string(),
                count_a: xa.len() as u64,
                count_b: xb.len() as u64,
                a: ea,
                b: eb,
                diff,
                relative,
            });
        }
    }
    rows.extend(frame_rows(
        &loaded,
        (run_a.as_str(), a),
        (run_b.as_str(), b),
    ));
    rows.extend(agent_rows(
        &loaded,
        (run_a.as_str(), a),
        (run_b.as_str(), b),
    ));
    rows.extend(tool_rows(&loaded, (run_a.as_str(), a), (run_b.as_str(), b)));
    let mut report = build(&loaded);
    // Only the two sides' rows and curves.
    let keep = |run: &str, profile: &str| {
        (run == run_a && a.profile.as_deref().is_none_or(|p| p == profile))
            || (run == run_b && b.profile.as_deref().is_none_or(|p| p == profile))
    };
    report.summary.retain(|r| keep(&r.run, &r.profile));
    report.plots.cdf = [("A", &label_a, &run_a, a), ("B", &label_b, &run_b, b)]
        .into_iter()
        .filter_map(|(side_name, label, run, side)| {
            cdf_series(
                format!("{side_name}: {label}"),
                &sample(&loaded, run, side.profile.as_deref(), Stage::Turn.as_str()),
            )
        })
        .collect();
    report.plots.frame_cdf = [("A", &label_a, &run_a, a), ("B", &label_b, &run_b, b)]
        .into_iter()
        .filter_map(|(side_name, label, run, side)| {
            cdf_series_of(
                format!("{side_name}: {label}"),
                &video::latencies_ms(&side_frames(&loaded, run, side.profile.as_deref())),
                "frame_latency",
            )
        })
        .collect();
    if let Some(v) = report.video.as_mut() {
        v.frames.retain(|r| keep(&r.run, &r.profile));
        v.errors.retain(|r| keep(&r.run, &r.profile));
        v.accuracy.retain(|r| keep(&r.run, &r.profile));
        v.tradeoff.retain(|r| keep(&r.run, &r.profile));
    }
    if let Some(g) = report.agent.as_mut() {
        g.runs.retain(|r| r.run == run_a || r.run == run_b);
        g.profiles.retain(|r| keep(&r.run, &r.profile));
        g.self_report.retain(|r| keep(&r.run, &r.profile));
    }
    if let Some(t) = report.tools.as_mut() {
        t.profiles.retain(|r| keep(&r.run, &r.profile));
    }
    report.comparison = Some(Comparison {
        a: label_a,
        b: label_b,
        rows,
    });
    Ok(report)
}
