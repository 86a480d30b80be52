//! Local backends: models that run in this process, behind the same stage traits as the
//! cloud backends, so a local pipeline is timed exactly like a cloud one.
//!
//! Every model file comes from `models/` (fetched by `models/fetch.py`, pinned in
//! `models/lock.toml`) and is checked against its pinned SHA-256 before it is loaded, so a
//! missing or corrupt file is a clear [`ModelError`] naming the file and the fetch command,
//! never a crash inside a C++ library. Each backend sits behind its own cargo feature.

pub mod models;

#[cfg(any(feature = "local-vad", feature = "local-tts", feature = "local-vision"))]
pub mod onnx;

#[cfg(feature = "local-vad")]
pub mod silero;

#[cfg(feature = "local-stt")]
pub mod whisper;

#[cfg(feature = "local-tts")]
pub mod piper;

#[cfg(feature = "local-llm")]
pub mod llama;

pub use models::{ModelError, Models};

pub use latlab_results::manifest::Device;

/// Threads a local model uses when the scenario does not say: all cores but one, at least one
/// (the pacer and the other stages need a core).
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1).max(1))
        .unwrap_or(1)
}
