//! A tiny dataset in a temp folder and emulator configs with short, constant delays.

use std::path::Path;
use std::sync::Arc;

use latlab_core::dataset::Dataset;
use latlab_emulator::{Emulator, EmulatorConfig, Timing};

pub const RATE: u32 = 16_000;
pub const CALL: &str = "c1";
pub const TURN1: &str = "Hello there, how are you?";
pub const REPLY1: &str = "I am fine, thanks.";
pub const TURN2: &str = "Book a table for two.";
pub const AUDIO_MS: u64 = 4000;

/// Writes a one-call dataset: 4 s of silence at 16 kHz with two turns.
pub fn write_dataset(dir: &Path) -> Arc<Dataset> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(dir.join("c1.wav"), spec).unwrap();
    for _ in 0..(RATE as u64 * AUDIO_MS / 1000) {
        wav.write_sample(0i16).unwrap();
    }
    wav.finalize().unwrap();
    let line = serde_json::json!({
        "id": CALL,
        "audio": "c1.wav",
        "sample_rate": RATE,
        "turns": [
            {"start_ms": 500, "end_ms": 1500, "text": TURN1, "reply": REPLY1},
            {"start_ms": 2200, "end_ms": 3000, "text": TURN2},
        ],
    });
    std::fs::write(dir.join("manifest.jsonl"), format!("{line}\n")).unwrap();
    Arc::new(Dataset::load(dir).unwrap())
}

/// A config whose delays are short constants, so tests are fast and exact.
pub fn fast_config() -> EmulatorConfig {
    let mut config = EmulatorConfig {
        seed: 42,
        ..EmulatorConfig::default()
    };
    config.stt.final_delay = Timing::constant(5.0);
    config.stt.interim_delay = Timing::constant(1.0);
    config.llm.ttft = Timing::constant(20.0);
    config.llm.inter_token = Timing::constant(2.0);
    config.tts.ttfb = Timing::constant(20.0);
    config.tts.chunk_gap = Timing::constant(2.0);
    config
}

/// Starts an emulator with the test dataset; the temp dir lives as long as the returned guard.
pub async fn start(config: EmulatorConfig) -> (Emulator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path());
    let emulator = Emulator::start(config, Some(dataset)).await.unwrap();
    (emulator, dir)
}

/// An HTTP client that never uses a proxy and never retries.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
