//! Baselines: a run's latency samples per scenario × profile × stage, saved small enough to
//! commit (`results/baselines/NAME/baseline.json`) and compared against later runs.
//!
//! A group with more than [`MAX_POINTS`] samples keeps that many evenly spaced order
//! statistics and its true count, so its percentiles and their bootstrap keep the precision of
//! the original sample size (see [`Sample`]).

use std::path::{Path, PathBuf};

use latlab_analysis::Run;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::GateError;
use crate::merge::StageSample;

/// Version of `baseline.json`.
pub const BASELINE_SCHEMA_VERSION: u32 = 1;
/// Most latencies kept per group.
pub const MAX_POINTS: usize = 2000;
/// The file inside a baseline's folder.
pub const FILE: &str = "baseline.json";

/// An ascending sample of `n` latencies, possibly thinned to evenly spaced order statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// How many latencies the original sample held.
    pub n: u64,
    /// Ascending latencies in ms: all of them, or `m` order statistics at ranks
    /// `ceil((j + 0.5) / m · n)`.
    pub sorted_ms: Vec<f64>,
}

impl Sample {
    /// Keeps a whole ascending sample, or `max_points` order statistics of it.
    pub fn from_sorted(sorted: &[f64], max_points: usize) -> Sample {
        let n = sorted.len();
        let sorted_ms = if n <= max_points {
            sorted.to_vec()
        } else {
            (0..max_points)
                .map(|j| {
                    let rank = (((j as f64 + 0.5) / max_points as f64) * n as f64).ceil() as usize;
                    sorted[rank.clamp(1, n) - 1]
                })
                .collect()
        };
        Sample {
            n: n as u64,
            sorted_ms,
        }
    }

    /// The value at cumulative fraction `u` in [0, 1] (nearest rank on the kept points).
    fn at(&self, u: f64) -> f64 {
        let m = self.sorted_ms.len();
        let i = ((u * m as f64).ceil() as usize).clamp(1, m) - 1;
        self.sorted_ms[i]
    }

    /// The nearest-rank q-quantile; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.sorted_ms.is_empty() {
            return None;
        }
        let n = self.n as f64;
        Some(self.at(latlab_analysis::stats::rank(self.n as usize, q) as f64 / n))
    }

    /// Bootstrap replicates of the q-quantile: the k-th smallest of n draws with replacement
    /// sits at fraction `V ~ Beta(k, n − k + 1)` of the distribution (as in
    /// `latlab_analysis::stats`), read off the kept points.
    pub fn quantile_replicates(&self, q: f64, replicates: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
        if self.sorted_ms.is_empty() {
            return Vec::new();
        }
        let n = self.n as usize;
        let k = latlab_analysis::stats::rank(n, q) as f64;
        match Beta::new(k, n as f64 - k + 1.0) {
            Ok(beta) => (0..replicates).map(|_| self.at(beta.sample(rng))).collect(),
            Err(_) => vec![self.at(k / n as f64); replicates],
        }
    }
}

/// Where the baseline came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The run's id.
    pub run_id: String,
    /// Its scenario.
    pub scenario: String,
    /// Its dataset.
    pub dataset: String,
    /// Its commit, when known.
    pub git_commit: Option<String>,
    /// When it started.
    pub started_at: String,
    /// Its seed.
    pub seed: u64,
}

/// One scenario × profile × stage of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineGroup {
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Stage.
    pub stage: String,
    /// Failed spans.
    pub errors: u64,
    /// Successful latencies.
    pub latency: Sample,
}

/// A saved baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// [`BASELINE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Its name.
    pub name: String,
    /// The run it was saved from.
    pub source: Source,
    /// Its groups.
    pub groups: Vec<BaselineGroup>,
}

/// Checks a baseline name: it becomes a folder name.
pub fn check_name(name: &str) -> Result<(), GateError> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(GateError::Usage(format!(
            "baseline name {name:?} may use only A-Z a-z 0-9 _ - . (and not start with .)"
        )));
    }
    Ok(())
}

impl Baseline {
    /// Makes a baseline from a run and its merged stage samples.
    pub fn new(name: &str, run: &Run, stages: &[StageSample]) -> Result<Baseline, GateError> {
        check_name(name)?;
        let f = &run.facts;
        Ok(Baseline {
            schema_version: BASELINE_SCHEMA_VERSION,
            name: name.to_string(),
            source: Source {
                run_id: f.run_id.clone(),
                scenario: f.scenario.clone(),
                dataset: f.dataset.clone(),
                git_commit: f.git_commit.clone(),
                started_at: f.started_at.clone(),
                seed: f.seed,
            },
            groups: stages
                .iter()
                .map(|s| BaselineGroup {
                    scenario: s.scenario.clone(),
                    profile: s.profile.clone(),
                    stage: s.stage.clone(),
                    errors: s.errors,
                    latency: Sample::from_sorted(&s.sorted_ms, MAX_POINTS),
                })
                .collect(),
        })
    }

    /// Writes `root/NAME/baseline.json` (creating folders) and returns its path.
    pub fn save(&self, root: &Path) -> Result<PathBuf, GateError> {
        let dir = root.join(&self.name);
        std::fs::create_dir_all(&dir).map_err(|source| GateError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(FILE);
        let mut text = serde_json::to_string_pretty(self).expect("a baseline serializes");
        text.push('\n');
        std::fs::write(&path, text).map_err(|source| GateError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Reads a baseline: `name_or_path` is a name under `root`, or a path to a baseline folder
    /// or file.
    pub fn load(root: &Path, name_or_path: &str) -> Result<Baseline, GateError> {
        let given = Path::new(name_or_path);
        let path = if given.is_file() {
            given.to_path_buf()
        } else if given.join(FILE).is_file() {
            given.join(FILE)
        } else {
            check_name(name_or_path)?;
            root.join(name_or_path).join(FILE)
        };
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                GateError::Data(format!(
                    "no baseline {name_or_path:?}: {} does not exist (save one with `latlab baseline save {name_or_path} RESULT_DIR`)",
                    path.display()
                ))
            } else {
                GateError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let baseline: Baseline = serde_json::from_slice(&bytes).map_err(|e| {
            GateError::Data(format!("{}: not a latlab baseline: {e}", path.display()))
        })?;
        if baseline.schema_version != BASELINE_SCHEMA_VERSION {
            return Err(GateError::Data(format!(
                "{}: baseline schema version {} (this latlab reads {BASELINE_SCHEMA_VERSION}); save it again",
                path.display(),
                baseline.schema_version
            )));
        }
        Ok(baseline)
    }

    /// The group for a scenario × profile × stage.
    pub fn group(&self, scenario: &str, profile: &str, stage: &str) -> Option<&BaselineGroup> {
        self.groups
            .iter()
            .find(|g| g.scenario == scenario && g.profile == profile && g.stage == stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn thinned_samples_keep_percentiles_and_count() {
        let sorted: Vec<f64> = (1..=100_000).map(|i| f64::from(i) / 10.0).collect();
        let s = Sample::from_sorted(&sorted, MAX_POINTS);
        assert_eq!(s.n, 100_000);
        assert_eq!(s.sorted_ms.len(), MAX_POINTS);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let exact = latlab_analysis::stats::quantile(&sorted, q).unwrap();
            let kept = s.quantile(q).unwrap();
            assert!(
                (kept - exact).abs() <= 10_000.0 / MAX_POINTS as f64,
                "{q}: {kept} vs {exact}"
            );
        }
        // The bootstrap spread reflects n = 100,000, not 2,000 points.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let reps = s.quantile_replicates(0.9, 500, &mut rng);
        let (lo, hi) = reps
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!(hi - lo < 150.0, "{lo}..{hi}");
        let whole = Sample::from_sorted(&sorted[..10], MAX_POINTS);
        assert_eq!(whole.sorted_ms, sorted[..10]);
        assert_eq!(whole.quantile(0.9), Some(0.9));
    }

    #[test]
    fn names_are_folder_safe() {
        assert!(check_name("main-2026.11").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
