//! The run manifest (`manifest.json`): what was run, on what, from which code and data, so a
//! result can be trusted and reproduced. It carries a schema version
//! (`docs/schemas/run-manifest.schema.json`) and never a secret.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use latlab_core::dataset::Dataset;

/// Version of the manifest's shape.
pub const SCHEMA_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// The run manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunManifest {
    /// Version of this shape.
    pub schema_version: u32,
    /// latlab's version.
    pub latlab_version: String,
    /// Run id (also the results folder's name).
    pub run_id: String,
    /// `running` while the run goes on, then `complete`, `interrupted` or `recovered`.
    pub status: String,
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
    /// Profiles run, with their knobs.
    pub profiles: Vec<latlab_core::profile::Profile>,
    /// Backends, without keys: kind, base URL, model.
    pub backends: serde_json::Value,
    /// Local models loaded before the run began, and how long each took.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_loads: Vec<crate::backends::ModelLoad>,
    /// Each call's voice (the dataset manifest's `meta.voice`), for accuracy per voice.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub call_voices: std::collections::BTreeMap<String, String>,
    /// Warm-up turns run before each profile's calls (`warmup_turns`), not in the results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup: Vec<crate::backends::WarmUp>,
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
    pub telemetry: Option<serde_json::Value>,
    /// What the emulator saw and injected, when one ran.
    pub emulator: Option<serde_json::Value>,
    /// latlab's own share of each stage's latency, measured against the in-process
    /// emulator's wire trace (`latlab_harness::measurer`); empty without the emulator.
    #[serde(default)]
    pub measurer: Vec<crate::measurer::StageShare>,
    /// How long LLM requests waited behind the same call's previous request (the agent
    /// answers one turn at a time): the system's time, kept out of `measurer`; from the
    /// turns' `llm_queue_wait_ns`, absent when no request was sent (and in older results).
    #[serde(default)]
    pub llm_queue_wait: Option<crate::measurer::QueueWait>,
    /// Notes (warnings the run raised).
    pub notes: Vec<String>,
}

/// Where a run's code came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitInfo {
    /// Commit hash.
    pub commit: String,
    /// Whether the tree had uncommitted changes.
    pub dirty: bool,
}

/// A file or folder and its content hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Name (scenario name or dataset folder).
    pub name: String,
    /// Path as given.
    pub path: String,
    /// SHA-256 of the content (for a dataset: the manifest and every WAV, in order).
    pub sha256: String,
}

/// The machine a run ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadFacts {
    /// The resolved plan (model, arrival, stages, bounds).
    #[serde(flatten)]
    pub plan: crate::scenario::LoadPlan,
    /// The shard this run was (`i/N`), when the run was split.
    pub shard: Option<String>,
    /// When each profile's load began (the stages' time 0), ns since the run's epoch.
    #[serde(default)]
    pub profile_start_ns: std::collections::BTreeMap<String, u64>,
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

impl Pacing {
    /// The statistics of a frame-lag histogram.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Pacing {
        let lag = Lag::of(h);
        Pacing {
            frames: lag.count,
            p50_ns: lag.p50_ns,
            p99_ns: lag.p99_ns,
            max_ns: lag.max_ns,
        }
    }
}

impl Lag {
    /// The statistics of a lag histogram.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Lag {
        Lag {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }
}

/// Frame pacing statistics (ns).
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// SHA-256 of a byte string, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over a dataset's manifest and its WAV files, in manifest order.
pub fn dataset_sha256(dataset: &Dataset) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(std::fs::read(&dataset.manifest_path)?);
    for call in &dataset.calls {
        h.update(
            std::fs::read(&call.audio_path)
                .with_context(|| format!("hashing {}", call.audio_path.display()))?,
        );
    }
    Ok(hex(&h.finalize()))
}

/// The git commit of the tree holding `dir`, if it is in one.
pub fn git_info(dir: &Path) -> Option<GitInfo> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(GitInfo { commit, dirty })
}

/// Facts about this machine.
pub fn host() -> Host {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .ok();
    Host {
        cpu_model: sys
            .as_ref()
            .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
            .unwrap_or_default(),
        cores: sys.as_ref().map_or(0, |s| s.cpus().len()),
        memory_bytes: sys.as_ref().map_or(0, |s| s.total_memory()),
        os: System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.to_string()),
        kernel: System::kernel_version().unwrap_or_else(|_| String::new()),
    }
}

impl RunManifest {
    /// Writes the manifest into `dir` atomically (write, then rename).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        Ok(())
    }

    /// Reads the manifest in `dir`.
    pub fn read(dir: &Path) -> anyhow::Result<RunManifest> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }
}
