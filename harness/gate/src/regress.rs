//! Comparing a run with a baseline: for each stage percentile, a bootstrap confidence interval
//! of the difference (candidate − baseline) set against a noise band. REGRESSED only when the
//! whole interval is above the band, IMPROVED when it is below, UNCHANGED otherwise — the
//! shape of criterion's and iai-callgrind's comparisons.

use latlab_analysis::stats::{REPLICATES, quantile, quantile_replicates, rng_for};
use latlab_report::model::Estimate;
use serde::Serialize;

use crate::baseline::{Baseline, Sample};
use crate::bounds::min_samples_to_pass;
use crate::merge::StageSample;

/// Percentiles compared with the baseline.
pub const COMPARED: [(f64, &str); 4] = [(0.50, "p50"), (0.90, "p90"), (0.95, "p95"), (0.99, "p99")];

/// Seed of the comparison bootstrap: fixed, so a gate is reproducible.
pub const SEED: u64 = 0x9a7e;

/// Differences inside `±max(relative × baseline, absolute_ms)` are noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoiseBand {
    /// Fraction of the baseline's value.
    pub relative: f64,
    /// Floor in ms.
    pub absolute_ms: f64,
}

/// The default band, ±max(1 %, 2 ms) — criterion's noise threshold with a floor for clock and
/// scheduling jitter — as set by `benches/calibrate_gate.sh` (`docs/performance.md`, "Gate
/// calibration"): 2 of 200 A/A smoke pairs flagged (1.0 %; no band short of 5 % did better),
/// 0 of 12 gate-suite A/A pairs, and 12 of 12 injected 10 % p95 regressions caught at the gate
/// suite's 4,988 turns, where a 5 % band caught 9 of 12 (and 5 of 14 at 2,494 turns).
pub const DEFAULT_BAND: NoiseBand = NoiseBand {
    relative: 0.01,
    absolute_ms: 2.0,
};

impl NoiseBand {
    /// The band's half-width around a baseline value, in ms.
    pub fn width(&self, baseline_ms: f64) -> f64 {
        (self.relative * baseline_ms.abs()).max(self.absolute_ms)
    }
}

/// What the comparison concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Change {
    /// The whole interval of the difference is above the band.
    Regressed,
    /// The whole interval is below the band.
    Improved,
    /// The interval reaches into the band.
    Unchanged,
}

impl Change {
    /// As printed.
    pub fn as_str(&self) -> &'static str {
        match self {
            Change::Regressed => "REGRESSED",
            Change::Improved => "IMPROVED",
            Change::Unchanged => "UNCHANGED",
        }
    }
}

/// One stage percentile against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Stage.
    pub stage: String,
    /// `p50` ... `p99`.
    pub metric: &'static str,
    /// Baseline samples.
    pub baseline_samples: u64,
    /// Candidate samples.
    pub candidate_samples: u64,
    /// The baseline's percentile, ms.
    pub baseline_ms: f64,
    /// The candidate's percentile, ms.
    pub candidate_ms: f64,
    /// Candidate − baseline, ms, with its bootstrap interval.
    pub difference_ms: Estimate,
    /// The band's half-width here, ms.
    pub band_ms: f64,
    /// The gate's resolution here: the smallest increase (ms) it would mark REGRESSED about
    /// half the time — the band plus the interval's reach below its estimate. Far above the
    /// change you care about means the runs are too small to tell (more turns shrink it as
    /// 1/√n). `None` when the percentile cannot be compared at all (too few samples).
    pub detectable_ms: Option<f64>,
    /// Fewest samples each side needs before this percentile is compared at all.
    pub needs_samples: u64,
    /// The conclusion.
    pub change: Change,
}

/// Compares every stage present in both the run and the baseline. `confidence` is the
/// two-sided confidence of each interval.
pub fn compare(
    stages: &[StageSample],
    baseline: &Baseline,
    band: NoiseBand,
    confidence: f64,
) -> Vec<Comparison> {
    let mut out = Vec::new();
    for s in stages {
        let Some(b) = baseline.group(&s.scenario, &s.profile, &s.stage) else {
            continue;
        };
        if s.sorted_ms.is_empty() || b.latency.sorted_ms.is_empty() {
            continue;
        }
        for (q, metric) in COMPARED {
            out.push(compare_one(s, &b.latency, q, metric, band, confidence));
        }
    }
    out
}

fn compare_one(
    s: &StageSample,
    baseline: &Sample,
    q: f64,
    metric: &'static str,
    band: NoiseBand,
    confidence: f64,
) -> Comparison {
    let what = format!("{}/{}/{}/{metric}", s.scenario, s.profile, s.stage);
    let base_value = baseline.quantile(q).unwrap_or_default();
    let cand_value = quantile(&s.sorted_ms, q).unwrap_or_default();
    // The candidate is whole: the analysis's own order-statistic bootstrap (the baseline's
    // `Sample` draws the same way, read off its kept points).
    let cand = quantile_replicates(
        &s.sorted_ms,
        q,
        REPLICATES,
        &mut rng_for(SEED, &format!("{what}/c")),
    );
    let base =
        baseline.quantile_replicates(q, REPLICATES, &mut rng_for(SEED, &format!("{what}/b")));
    let mut diffs: Vec<f64> = cand.iter().zip(&base).map(|(c, b)| c - b).collect();
    diffs.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    let value = cand_value - base_value;
    let lo = quantile(&diffs, tail).unwrap_or(value).min(value);
    let hi = quantile(&diffs, 1.0 - tail).unwrap_or(value).max(value);
    let width = band.width(base_value);
    // A bootstrap of a tail percentile from a few samples only reshuffles the largest ones:
    // its interval is far too narrow (a p99 of 29 samples is their maximum, and so is nearly
    // every replicate). Compare a percentile only where the distribution-free order-statistic
    // bounds exist on both sides at this confidence, the same rule the targets obey.
    let needs = min_samples_to_pass(q, 1.0 - tail);
    let comparable = baseline.n >= needs && s.sorted_ms.len() as u64 >= needs;
    let change = if !comparable {
        Change::Unchanged
    } else if lo > width {
        Change::Regressed
    } else if hi < -width {
        Change::Improved
    } else {
        Change::Unchanged
    };
    Comparison {
        scenario: s.scenario.clone(),
        profile: s.profile.clone(),
        stage: s.stage.clone(),
        metric,
        baseline_samples: baseline.n,
        candidate_samples: s.sorted_ms.len() as u64,
        baseline_ms: base_value,
        candidate_ms: cand_value,
        difference_ms: Estimate { value, lo, hi },
        band_ms: width,
        detectable_ms: comparable.then_some(width + (value - lo)),
        needs_samples: needs,
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{BaselineGroup, MAX_POINTS, Source};
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};

    fn lognormal(n: usize, median_ms: f64, seed: u64) -> Vec<f64> {
        let d = LogNormal::new(median_ms.ln(), 0.3).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut v: Vec<f64> = (0..n).map(|_| d.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn stage(sorted_ms: Vec<f64>) -> StageSample {
        StageSample {
            scenario: "s".into(),
            profile: "p".into(),
            stage: "llm".into(),
            errors: 0,
            skipped: 0,
            sorted_ms,
            ..StageSample::default()
        }
    }

    fn baseline(sorted: &[f64]) -> Baseline {
        Baseline {
            schema_version: crate::baseline::BASELINE_SCHEMA_VERSION,
            name: "b".into(),
            source: Source {
                run_id: "r".into(),
                scenario: "s".into(),
                dataset: "d".into(),
                git_commit: None,
                started_at: String::new(),
                seed: 0,
            },
            groups: vec![BaselineGroup {
                scenario: "s".into(),
                profile: "p".into(),
                stage: "llm".into(),
                errors: 0,
                latency: Sample::from_sorted(sorted, MAX_POINTS),
            }],
        }
    }

    fn changes(candidate: Vec<f64>, base: &[f64]) -> Vec<Change> {
        compare(&[stage(candidate)], &baseline(base), DEFAULT_BAND, 0.99)
            .iter()
            .map(|c| c.change)
            .collect()
    }

    #[test]
    fn same_distribution_is_unchanged() {
        let base = lognormal(5000, 300.0, 1);
        assert!(
            changes(lognormal(5000, 300.0, 2), &base)
                .iter()
                .all(|c| *c == Change::Unchanged)
        );
    }

    #[test]
    fn a_clear_shift_regresses_or_improves() {
        let base = lognormal(5000, 300.0, 1);
        assert!(
            changes(lognormal(5000, 400.0, 2), &base)
                .iter()
                .all(|c| *c == Change::Regressed)
        );
        assert!(
            changes(lognormal(5000, 200.0, 2), &base)
                .iter()
                .all(|c| *c == Change::Improved)
        );
    }

    #[test]
    fn the_interval_contains_the_difference_and_is_reproducible() {
        let base = lognormal(800, 300.0, 1);
        let a = compare(
            &[stage(lognormal(800, 330.0, 2))],
            &baseline(&base),
            DEFAULT_BAND,
            0.99,
        );
        let b = compare(
            &[stage(lognormal(800, 330.0, 2))],
            &baseline(&base),
            DEFAULT_BAND,
            0.99,
        );
        assert_eq!(a, b);
        for c in &a {
            let d = c.difference_ms;
            assert!(d.lo <= d.value && d.value <= d.hi, "{c:?}");
        }
    }

    #[test]
    fn resolution_shrinks_with_the_sample_and_predicts_detection() {
        let p95 = |n: usize, median: f64, seed: u64| {
            let base = lognormal(n, 300.0, seed);
            compare(
                &[stage(lognormal(n, median, seed + 1))],
                &baseline(&base),
                DEFAULT_BAND,
                0.99,
            )
            .into_iter()
            .find(|c| c.metric == "p95")
            .unwrap()
        };
        let small = p95(150, 300.0, 1).detectable_ms.unwrap();
        let large = p95(3000, 300.0, 1);
        let resolution = large.detectable_ms.unwrap();
        assert!(small > resolution * 2.0, "{small} {large:?}");
        assert!(resolution > large.band_ms);
        // A p95 shift of 1.5 × the large sample's resolution is caught.
        let shift = 300.0 * (resolution * 1.5 / large.baseline_ms);
        assert_eq!(p95(3000, 300.0 + shift, 1).change, Change::Regressed);
    }

    #[test]
    fn tail_percentiles_of_small_samples_are_not_compared() {
        // 29 samples: the p99 is the maximum; even a doubling cannot be told for sure there,
        // while the median of the same samples can be compared.
        let base = lognormal(29, 300.0, 1);
        let cmps = compare(
            &[stage(lognormal(29, 900.0, 2))],
            &baseline(&base),
            DEFAULT_BAND,
            0.99,
        );
        let get = |m: &str| cmps.iter().find(|c| c.metric == m).unwrap();
        assert_eq!(get("p50").change, Change::Regressed);
        for m in ["p90", "p95", "p99"] {
            let c = get(m);
            assert_eq!(c.change, Change::Unchanged, "{c:?}");
            assert_eq!(c.detectable_ms, None);
            assert!(c.needs_samples > 29);
        }
        // The rule is the targets' rule at the interval's one-sided confidence.
        assert_eq!(get("p90").needs_samples, min_samples_to_pass(0.90, 0.995));
    }
}
