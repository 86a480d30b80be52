//! Reading results folders: the run manifest's facts and lazy scans of the span and turn
//! tables, tagged with a series label so several runs can be analysed together.

use std::path::{Path, PathBuf};

use latlab_report::model::RunFacts;
use latlab_results::files;
use latlab_results::load::{LoadModel, StageWindow, window_at, windows};
use latlab_results::manifest::RunManifest;
use polars::prelude::*;

use crate::AnalysisError;

/// One results folder, opened.
#[derive(Debug, Clone)]
pub struct Run {
    /// The folder.
    pub dir: PathBuf,
    /// Facts from its `manifest.json`.
    pub facts: RunFacts,
    /// The run's load stages, when it ran a ramp of more than one.
    pub ramp: Option<Ramp>,
    /// The whole manifest, typed: its notes, each call's voice (`call_voices`) and the rest
    /// are read from here.
    pub manifest: RunManifest,
}

/// A run's staged load, as its manifest records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    /// Closed (targets are calls in flight) or open (calls per second).
    pub model: LoadModel,
    /// The stages placed one after another from the load's start (recording time).
    pub stages: Vec<StageWindow>,
    /// When each profile's load began, ns since the run's epoch.
    pub starts_ns: std::collections::BTreeMap<String, u64>,
}

impl Ramp {
    /// The stage (index) holding an epoch time of a profile, at `speed`.
    pub fn stage_at(&self, profile: &str, epoch_ns: i64, speed: f64) -> Option<usize> {
        let start = *self.starts_ns.get(profile)? as i64;
        // Recording time since the load began (wall time × speed); before it: the first.
        let t_ns = ((epoch_ns - start).max(0) as f64 * speed) as u64;
        // After the last stage: calls started in it, finishing.
        window_at(&self.stages, t_ns).or_else(|| self.stages.len().checked_sub(1))
    }
}

impl Run {
    /// Opens a results folder (it must hold `manifest.json` and `spans.parquet`, or, for a
    /// video-only run, `frames.parquet`).
    pub fn open(dir: &Path) -> Result<Run, AnalysisError> {
        let m = RunManifest::read(dir)?;
        let spans = dir.join(files::SPANS_PARQUET);
        if !spans.exists() && !dir.join(files::FRAMES_PARQUET).exists() {
            return Err(AnalysisError::Missing {
                path: spans,
                hint: "if the run was killed, `latlab recover` rebuilds it from spans.jsonl",
            });
        }
        let facts = RunFacts {
            run_id: m.run_id.clone(),
            scenario: m.scenario.name.clone(),
            dataset: m.dataset.name.clone(),
            dataset_sha256: m.dataset.sha256.clone(),
            seed: m.seed,
            git_commit: m.git.as_ref().map(|g| g.commit.clone()),
            git_dirty: m.git.as_ref().is_some_and(|g| g.dirty),
            cpu_model: m.host.cpu_model.clone(),
            cores: m.host.cores,
            memory_bytes: m.host.memory_bytes,
            os: m.host.os.clone(),
            started_at: m.started_at.clone(),
            status: m.status,
            duration_s: m.duration_s,
            latlab_version: m.latlab_version.clone(),
            speed: m.speed,
            concurrency: m.concurrency,
        };
        let ramp = m
            .load
            .as_ref()
            .filter(|l| l.plan.stages.len() > 1)
            .map(|l| Ramp {
                model: l.plan.model,
                stages: windows(&l.plan.stages),
                starts_ns: l.profile_start_ns.clone(),
            });
        Ok(Run {
            dir: dir.to_path_buf(),
            facts,
            ramp,
            manifest: m,
        })
    }

    /// Profiles in the order the run ran them.
    pub fn profiles(&self) -> Vec<String> {
        self.manifest.profile_names()
    }

    /// The spans table.
    pub fn spans(&self) -> Result<LazyFrame, AnalysisError> {
        scan(&self.spans_file())
    }

    /// The spans table's file.
    pub fn spans_file(&self) -> PathBuf {
        self.dir.join(files::SPANS_PARQUET)
    }

    /// Whether the run has a spans table (a video-only run has none).
    pub fn has_spans(&self) -> bool {
        self.spans_file().exists()
    }

    /// The frames table's file, when the run replayed video (`frames.parquet`).
    pub fn frames_file(&self) -> Option<PathBuf> {
        Some(self.dir.join(files::FRAMES_PARQUET)).filter(|p| p.exists())
    }

    /// The turns table's file, when the run has one (`turns.parquet`).
    pub fn turns_file(&self) -> Option<PathBuf> {
        Some(self.dir.join(files::TURNS_PARQUET)).filter(|p| p.exists())
    }

    /// Whether the run called a running agent (its manifest says so).
    pub fn is_agent_run(&self) -> bool {
        self.manifest.agent.is_some()
    }

    /// The turns table (absent in very old results: an empty frame then).
    pub fn turns(&self) -> Result<Option<LazyFrame>, AnalysisError> {
        let path = self.dir.join(files::TURNS_PARQUET);
        if path.exists() {
            scan(&path).map(Some)
        } else {
            Ok(None)
        }
    }
}

fn scan(path: &Path) -> Result<LazyFrame, AnalysisError> {
    let p = PlRefPath::try_from_path(path)?;
    Ok(LazyFrame::scan_parquet(p, ScanArgsParquet::default())?)
}
