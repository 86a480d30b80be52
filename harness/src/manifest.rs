//! The run manifest (`manifest.json`): what was run, on what, from which code and data, so a
//! result can be trusted and reproduced. It carries a schema version
//! (`docs/schemas/run-manifest.schema.json`) and never a secret. Its shape is
//! `latlab_results::manifest`'s; this module gathers the facts that fill it (hashes, git,
//! host) and turns histograms into its lag figures.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use latlab_core::dataset::Dataset;

pub use latlab_results::files::MANIFEST;
pub use latlab_results::manifest::{
    Counts, Fingerprint, GitInfo, Host, Lag, LoadFacts, ModelLoad, Pacing, QueueWait, RunManifest,
    RunStatus, SCHEMA_VERSION, StageShare, TelemetryFacts, WarmUp,
};

/// The statistics of a lag histogram.
pub fn lag_of(h: &hdrhistogram::Histogram<u64>) -> Lag {
    Lag {
        count: h.len(),
        p50_ns: h.value_at_quantile(0.5),
        p99_ns: h.value_at_quantile(0.99),
        max_ns: h.max(),
    }
}

/// The statistics of a frame-lag histogram.
pub fn pacing_of(h: &hdrhistogram::Histogram<u64>) -> Pacing {
    Pacing::from(lag_of(h))
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
