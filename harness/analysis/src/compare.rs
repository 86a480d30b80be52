//! Two sides set against each other: two results folders, or two profiles of one run. Each
//! statistic is shown side by side with B − A and (B − A) / A, each with a bootstrap interval.

use std::path::PathBuf;

use latlab_report::model::{Comparison, ComparisonRow, Report};

use crate::AnalysisError;
use latlab_results::span::Stage;

use crate::report::{BOOTSTRAP_SEED, Loaded, QUANTILES, STAGES, build, cdf_series, load};
use crate::stats::{
    REPLICATES, difference, mean_estimate, mean_replicates, quantile_estimate, quantile_replicates,
    rng_for,
};

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
    report.comparison = Some(Comparison {
        a: label_a,
        b: label_b,
        rows,
    });
    Ok(report)
}
