//! Reading results folders: the run manifest's facts and lazy scans of the span and turn
//! tables, tagged with a series label so several runs can be analysed together.

use std::path::{Path, PathBuf};

use latlab_report::model::RunFacts;
use polars::prelude::*;

use crate::AnalysisError;

/// One results folder, opened.
#[derive(Debug, Clone)]
pub struct Run {
    /// The folder.
    pub dir: PathBuf,
    /// Facts from its `manifest.json`.
    pub facts: RunFacts,
    /// Profiles in the order the run ran them.
    pub profiles: Vec<String>,
    /// Notes the run raised (pacing warnings, interruptions).
    pub notes: Vec<String>,
    /// The run's load stages, when it ran a ramp of more than one.
    pub ramp: Option<Ramp>,
    /// Each call's voice, when the dataset says (manifest `call_voices`).
    pub voices: std::collections::BTreeMap<String, String>,
}

/// A run's staged load, as its manifest records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    /// `closed` (targets are calls in flight) or `open` (calls per second).
    pub model: String,
    /// The stages placed one after another from the load's start (recording time).
    pub stages: Vec<latlab_core::load::StageWindow>,
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
        latlab_core::load::window_at(&self.stages, t_ns)
            .or_else(|| self.stages.len().checked_sub(1))
    }
}

impl Run {
    /// Opens a results folder (it must hold `manifest.json` and `spans.parquet`).
    pub fn open(dir: &Path) -> Result<Run, AnalysisError> {
        let path = dir.join("manifest.json");
        let bytes = std::fs::read(&path).map_err(|source| AnalysisError::Io {
            path: path.clone(),
            source,
        })?;
        let m: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| AnalysisError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let spans = dir.join("spans.parquet");
        if !spans.exists() {
            return Err(AnalysisError::Missing {
                path: spans,
                hint: "if the run was killed, `latlab recover` rebuilds it from spans.jsonl",
            });
        }
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let facts = RunFacts {
            run_id: s(&m["run_id"]),
            scenario: s(&m["scenario"]["name"]),
            dataset: s(&m["dataset"]["name"]),
            dataset_sha256: s(&m["dataset"]["sha256"]),
            seed: m["seed"].as_u64().unwrap_or_default(),
            git_commit: m["git"]["commit"].as_str().map(str::to_string),
            git_dirty: m["git"]["dirty"].as_bool().unwrap_or(false),
            cpu_model: s(&m["host"]["cpu_model"]),
            cores: m["host"]["cores"].as_u64().unwrap_or_default() as usize,
            memory_bytes: m["host"]["memory_bytes"].as_u64().unwrap_or_default(),
            os: s(&m["host"]["os"]),
            started_at: s(&m["started_at"]),
            status: s(&m["status"]),
            duration_s: m["duration_s"].as_f64(),
            latlab_version: s(&m["latlab_version"]),
            speed: m["speed"].as_f64().unwrap_or(1.0),
            concurrency: m["concurrency"].as_u64().unwrap_or(1) as usize,
        };
        let list =
            |v: &serde_json::Value, f: fn(&serde_json::Value) -> Option<String>| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().filter_map(f).collect())
                    .unwrap_or_default()
            };
        let load = &m["load"];
        let stages: Vec<latlab_core::load::Stage> = load["stages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|st| latlab_core::load::Stage {
                        name: s(&st["name"]),
                        duration_s: st["duration_s"].as_f64().unwrap_or(f64::INFINITY),
                        target: st["target"].as_f64().unwrap_or(0.0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let voices = m["call_voices"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let ramp = (stages.len() > 1).then(|| Ramp {
            model: s(&load["model"]),
            stages: latlab_core::load::windows(&stages),
            starts_ns: load["profile_start_ns"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        });
        Ok(Run {
            dir: dir.to_path_buf(),
            facts,
            profiles: list(&m["profiles"], |p| p["name"].as_str().map(str::to_string)),
            notes: list(&m["notes"], |n| n.as_str().map(str::to_string)),
            ramp,
            voices,
        })
    }

    /// The spans table.
    pub fn spans(&self) -> Result<LazyFrame, AnalysisError> {
        scan(&self.spans_file())
    }

    /// The spans table's file.
    pub fn spans_file(&self) -> PathBuf {
        self.dir.join("spans.parquet")
    }

    /// The turns table (absent in very old results: an empty frame then).
    pub fn turns(&self) -> Result<Option<LazyFrame>, AnalysisError> {
        let path = self.dir.join("turns.parquet");
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
