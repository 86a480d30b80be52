//! The run manifest (`manifest.json`): what was run, on what, from which code and data, so a
//! result can be trusted and reproduced. It carries a schema version
//! (`docs/schemas/run-manifest.schema.json`) and never a secret.
//!
//! The runner, the sinks, `merge` and `recover` write it with [`RunManifest::write`]; the
//! analysis, the gate and `latlab show` read it with [`RunManifest::read`], which checks the
//! schema version. Nobody reads a field of it by its string name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ResultsError;
use crate::files;
use crate::load::LoadPlan;
use crate::profile::Profile;
use crate::span::Stage;

/// Version of the manifest's shape. Readers accept every version up to this one; fields
/// added since version 1 have defaults, so old results folders keep loading.
pub const SCHEMA_VERSION: u32 = 1;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The run is going on, or was killed and not yet recovered.
    Running,
    /// Every planned call ran.
    Complete,
    /// Stopped early (Ctrl-C or a signal): calls not yet started were not run.
    Interrupted,
    /// Rebuilt by `latlab recover` from a killed run's logs: turns in flight were lost.
    Recovered,
    /// Merged from shards with some missing or not complete.
    Partial,
}

impl RunStatus {
    /// The status as written in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Recovered => "recovered",
            RunStatus::Partial => "partial",
        }
    }

    /// What the status says about the results when they are not the whole run (`None` for a
    /// complete run).
    pub fn caveat(self) -> Option<&'static str> {
        match self {
            RunStatus::Complete => None,
            RunStatus::Interrupted => Some("interrupted: calls not yet started were not run"),
            RunStatus::Recovered => {
                Some("recovered from a killed run's logs: turns in flight were lost")
            }
            RunStatus::Partial => Some("merged with shards missing or incomplete"),
            RunStatus::Running => Some("still running, or killed and not yet recovered"),
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The run manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// Version of this shape ([`SCHEMA_VERSION`] when written by this build).
    pub schema_version: u32,
    /// latlab's version.
    pub latlab_version: String,
    /// Run id (also the results folder's name).
    pub run_id: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// Wall-clock start, for humans only (RFC 3339, UTC).
    pub started_at: String,
    /// Wall-clock seconds the run took (monotonic), when finished.
    pub duration_s: Option<f64>,
    /// Git commit of the working tree the run came from.
    pub git: Option<GitInfo>,
    /// The scenario.
    pub scenario: Fingerprint,
    /// The dataset.
    pub dataset: Fingerprint,
    /// Seed.
    pub seed: u64,
    /// Replay speed.
    pub speed: f64,
    /// Calls per profile.
    pub calls_per_profile: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Profiles run, with their knobs, in the order the run ran them.
    pub profiles: Vec<Profile>,
    /// Backends, without keys: per stage its kind, base URL and model, or a local model's
    /// configuration. Descriptive: shown to people, never interpreted by a reader.
    pub backends: serde_json::Value,
    /// Local models loaded before the run began, and how long each took.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_loads: Vec<ModelLoad>,
    /// Each call's voice (the dataset manifest's `meta.voice`), for accuracy per voice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub call_voices: BTreeMap<String, String>,
    /// Warm-up turns run before each profile's calls (`warmup_turns`), not in the results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup: Vec<WarmUp>,
    /// Host facts.
    pub host: Host,
    /// Counts, when finished.
    pub counts: Option<Counts>,
    /// Pacing lag of audio frames (actual − scheduled send), when finished.
    pub pacing: Option<Pacing>,
    /// How calls started: the load model, its stages and the shard, if any.
    #[serde(default)]
    pub load: Option<LoadFacts>,
    /// Lag of call starts (actual − scheduled start), when finished.
    #[serde(default)]
    pub call_starts: Option<Lag>,
    /// Telemetry sampled during the run (samples, GPUs seen), when finished.
    #[serde(default)]
    pub telemetry: Option<TelemetryFacts>,
    /// What the emulator saw and injected, when one ran. Descriptive, like `backends`.
    pub emulator: Option<serde_json::Value>,
    /// latlab's own share of each stage's latency, measured against the in-process
    /// emulator's wire trace; empty without the emulator.
    #[serde(default)]
    pub measurer: Vec<StageShare>,
    /// How long LLM requests waited behind the same call's previous request (the agent
    /// answers one turn at a time): the system's time, kept out of `measurer`; from the
    /// turns' `llm_queue_wait_ns`, absent when no request was sent (and in older results).
    #[serde(default)]
    pub llm_queue_wait: Option<QueueWait>,
    /// The vision lane (video replay through a detector), when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<crate::frame::VisionFacts>,
    /// The running agent that was called, when the scenario called one instead of building
    /// the pipeline from STT, LLM and TTS clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::agent::AgentFacts>,
    /// Notes (warnings the run raised).
    pub notes: Vec<String>,
}

/// Where a run's code came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Commit hash.
    pub commit: String,
    /// Whether the tree had uncommitted changes.
    pub dirty: bool,
}

/// A file or folder and its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Name (scenario name or dataset folder).
    pub name: String,
    /// Path as given.
    pub path: String,
    /// SHA-256 of the content (for a dataset: the manifest and every WAV, in order).
    pub sha256: String,
}

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// CPU model.
    pub cpu_model: String,
    /// Logical cores.
    pub cores: usize,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Operating system and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
}

/// What a run recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Calls run.
    pub calls: usize,
    /// Turns recorded.
    pub turns: usize,
    /// Turns that failed.
    pub failed_turns: usize,
    /// Spans recorded.
    pub spans: usize,
    /// Open loop: arrivals dropped because the in-flight cap was reached (not delayed).
    #[serde(default)]
    pub dropped_calls: usize,
    /// The most calls that were in flight at once.
    #[serde(default)]
    pub max_in_flight: usize,
}

/// The load a run drove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadFacts {
    /// The resolved plan (model, arrival, stages, bounds).
    #[serde(flatten)]
    pub plan: LoadPlan,
    /// The shard this run was (`i/N`), when the run was split.
    pub shard: Option<String>,
    /// When each profile's load began (the stages' time 0), ns since the run's epoch.
    #[serde(default)]
    pub profile_start_ns: BTreeMap<String, u64>,
}

/// Scheduling-lag statistics (ns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lag {
    /// Events measured.
    pub count: u64,
    /// Median lag.
    pub p50_ns: u64,
    /// 99th percentile lag.
    pub p99_ns: u64,
    /// Largest lag.
    pub max_ns: u64,
}

/// Frame pacing statistics (ns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pacing {
    /// Frames sent.
    pub frames: u64,
    /// Median lag.
    pub p50_ns: u64,
    /// 99th percentile lag.
    pub p99_ns: u64,
    /// Largest lag.
    pub max_ns: u64,
}

impl From<Lag> for Pacing {
    fn from(lag: Lag) -> Pacing {
        Pacing {
            frames: lag.count,
            p50_ns: lag.p50_ns,
            p99_ns: lag.p99_ns,
            max_ns: lag.max_ns,
        }
    }
}

impl Pacing {
    /// The same figures as a [`Lag`] (its `count` is the frames).
    pub fn as_lag(&self) -> Lag {
        Lag {
            count: self.frames,
            p50_ns: self.p50_ns,
            p99_ns: self.p99_ns,
            max_ns: self.max_ns,
        }
    }
}

/// latlab's own share of one stage's latency, measured against the emulator's wire trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageShare {
    /// The stage.
    pub stage: Stage,
    /// What was measured.
    pub measured: String,
    /// The share's statistics over the turns (or VAD decisions) it stands on.
    pub share: Lag,
}

/// Where a local model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// An NVIDIA GPU through CUDA; falls back to the CPU, with a note, when there is none
    /// or latlab was built without the CUDA feature.
    Cuda,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// How long LLM requests waited behind the same call's previous request: the system's time
/// (the agent answers one turn at a time), reported beside latlab's share and never in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueWait {
    /// LLM requests sent (turns whose timeline has `llm_queue_wait_ns`).
    pub requests: u64,
    /// The wait of the requests that waited (`count` of them; those that did not are left
    /// out, so the percentiles describe a wait when there is one).
    pub waited: Lag,
}

/// One model load: which, where, how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLoad {
    /// The stage it serves (`vad`, `stt`, `llm`, `tts`).
    pub stage: String,
    /// The backend and model, e.g. `whisper tiny.en`.
    pub model: String,
    /// Where it runs (after any fallback).
    pub device: Device,
    /// Wall time of the load (checking the file's SHA-256 included), ms.
    pub load_ms: f64,
    /// Why it does not run where it was asked to, when it doesn't.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How long one warm-up turn took in each stage, ms (`None`: the stage failed; its error
/// is in `error`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmUp {
    /// The profile it warmed.
    pub profile: String,
    /// Speech-to-text: the turn's audio sent at once, then finalized, until the final
    /// transcript.
    pub stt_ms: Option<f64>,
    /// Language model: the whole reply.
    pub llm_ms: Option<f64>,
    /// Text-to-speech: the whole audio.
    pub tts_ms: Option<f64>,
    /// The first failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the telemetry sampler did (`telemetry.jsonl` holds the samples).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryFacts {
    /// Lines written to `telemetry.jsonl`.
    pub samples: usize,
    /// Names of the NVIDIA GPUs sampled, by NVML index (empty without a GPU).
    #[serde(default)]
    pub gpus: Vec<String>,
    /// What was not sampled and why (no NVIDIA driver, a write that failed).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl RunManifest {
    /// The names of the profiles, in the order the run ran them.
    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.iter().map(|p| p.name.clone()).collect()
    }

    /// Writes the manifest into `dir` atomically (write, then rename), so a reader never sees
    /// half a manifest.
    pub fn write(&self, dir: &Path) -> Result<(), ResultsError> {
        let path = dir.join(files::MANIFEST);
        let tmp = dir.join(format!("{}.tmp", files::MANIFEST));
        let json = serde_json::to_vec_pretty(self).map_err(|e| ResultsError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, json).map_err(|source| ResultsError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| ResultsError::Io { path, source })
    }

    /// Reads the manifest in the results folder `dir`.
    ///
    /// Fails with [`ResultsError::TooNew`] when a newer latlab wrote it, and with
    /// [`ResultsError::Parse`] (naming the line and column, and the field where serde says)
    /// when it is not a manifest.
    pub fn read(dir: &Path) -> Result<RunManifest, ResultsError> {
        let path = dir.join(files::MANIFEST);
        let bytes = std::fs::read(&path).map_err(|source| ResultsError::Io {
            path: path.clone(),
            source,
        })?;
        RunManifest::from_slice(&bytes, &path)
    }

    /// Parses a manifest's bytes; `path` names it in errors.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<RunManifest, ResultsError> {
        let parse_error = |e: serde_json::Error| ResultsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        // The version first, so a newer shape gets "too new", not a confusing field error.
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<u32>,
        }
        let version: Version = serde_json::from_slice(bytes).map_err(parse_error)?;
        let Some(found) = version.schema_version else {
            return Err(ResultsError::Parse {
                path: path.to_path_buf(),
                message: "no `schema_version`: not a latlab run manifest".into(),
            });
        };
        if found > SCHEMA_VERSION {
            return Err(ResultsError::TooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        serde_json::from_slice(bytes).map_err(parse_error)
    }
}
