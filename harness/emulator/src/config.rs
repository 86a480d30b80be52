//! The emulator's configuration: seed, per-service timing distributions, faults and ports,
//! as read from TOML. Everything is validated once, before any listener is bound.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::EmulatorError;
use crate::faults::Faults;
use crate::timing::Timing;

/// The whole emulator: one seed and one block per service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmulatorConfig {
    /// The seed every random decision is derived from.
    pub seed: u64,
    /// Deepgram-style live speech-to-text.
    pub stt: SttConfig,
    /// OpenAI-style chat completions.
    pub llm: LlmConfig,
    /// ElevenLabs-style text-to-speech.
    pub tts: TtsConfig,
    /// A KServe v2 / Triton object detector (YOLOv8 layout).
    pub detector: DetectorConfig,
}

/// The emulated Deepgram live STT service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, `Authorization: Token <key>` must carry this key.
    pub api_key: Option<String>,
    /// Fault probabilities.
    pub faults: Faults,
    /// Delay from the audio that triggers a final result (endpoint, flush, `Finalize`) to sending it.
    pub final_delay: Timing,
    /// Delay from the audio that triggers an interim result to sending it.
    pub interim_delay: Timing,
    /// Audio between two interim results of a turn (ms).
    pub interim_interval_ms: u64,
}

impl Default for SttConfig {
    fn default() -> Self {
        SttConfig {
            port: 0,
            api_key: None,
            faults: Faults::default(),
            final_delay: Timing::lognormal(60.0, 0.25),
            interim_delay: Timing::constant(30.0),
            interim_interval_ms: 300,
        }
    }
}

/// The emulated OpenAI Chat Completions service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, `Authorization: Bearer <key>` must carry this key.
    pub api_key: Option<String>,
    /// Fault probabilities.
    pub faults: Faults,
    /// Time from the request to the first token.
    pub ttft: Timing,
    /// Gap between two tokens.
    pub inter_token: Timing,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            port: 0,
            api_key: None,
            faults: Faults::default(),
            ttft: Timing::lognormal(250.0, 0.3),
            inter_token: Timing::lognormal(20.0, 0.3),
        }
    }
}

/// The emulated ElevenLabs streaming TTS service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, the `xi-api-key` header must carry this key.
    pub api_key: Option<String>,
    /// Fault probabilities.
    pub faults: Faults,
    /// Time from the request to the first audio bytes.
    pub ttfb: Timing,
    /// Audio per streamed chunk (ms).
    pub chunk_ms: u32,
    /// Gap between two chunks.
    pub chunk_gap: Timing,
    /// Digital silence before the speech (ms).
    pub leading_silence_ms: u32,
    /// Speech length per character of text (ms).
    pub ms_per_char: u32,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            port: 0,
            api_key: None,
            faults: Faults::default(),
            ttfb: Timing::lognormal(150.0, 0.3),
            chunk_ms: 100,
            chunk_gap: Timing::constant(15.0),
            leading_silence_ms: 120,
            ms_per_char: 60,
        }
    }
}

/// The emulated KServe v2 / Triton object detector: any model name is served as a YOLOv8
/// network taking `[1, 3, H, W]` FP32 and answering `[1, 4 + classes, anchors]` FP32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Fault probabilities.
    pub faults: Faults,
    /// Time from the request (received whole) to the response.
    pub infer: Timing,
    /// Extra time per megapixel of model input (H × W / 10⁶), ms: larger inputs take longer.
    pub ms_per_mpixel: f64,
    /// Classes of the emulated model: the output has `4 + classes` channels.
    pub classes: u32,
    /// Each response carries between 1 and this many random boxes (0: none).
    pub max_boxes: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            port: 0,
            faults: Faults::default(),
            infer: Timing::lognormal(25.0, 0.2),
            ms_per_mpixel: 0.0,
            classes: 80,
            max_boxes: 3,
        }
    }
}

fn timing(key: &str, t: &Timing) -> Result<(), EmulatorError> {
    t.validate().map_err(|message| EmulatorError::Config {
        key: key.to_string(),
        message,
    })
}

fn faults(key: &str, f: &Faults) -> Result<(), EmulatorError> {
    f.validate().map_err(|message| EmulatorError::Config {
        key: key.to_string(),
        message,
    })
}

fn positive(key: &str, v: u64) -> Result<(), EmulatorError> {
    if v == 0 {
        return Err(EmulatorError::Config {
            key: key.to_string(),
            message: "must be > 0".into(),
        });
    }
    Ok(())
}

fn at_most(key: &str, v: u64, max: u64) -> Result<(), EmulatorError> {
    if v > max {
        return Err(EmulatorError::Config {
            key: key.to_string(),
            message: format!("{v} is over {max}"),
        });
    }
    Ok(())
}

impl EmulatorConfig {
    /// Checks every probability and distribution; the error names the offending key.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        faults("stt.faults", &self.stt.faults)?;
        timing("stt.final_delay", &self.stt.final_delay)?;
        timing("stt.interim_delay", &self.stt.interim_delay)?;
        positive("stt.interim_interval_ms", self.stt.interim_interval_ms)?;
        faults("llm.faults", &self.llm.faults)?;
        timing("llm.ttft", &self.llm.ttft)?;
        timing("llm.inter_token", &self.llm.inter_token)?;
        faults("tts.faults", &self.tts.faults)?;
        timing("tts.ttfb", &self.tts.ttfb)?;
        timing("tts.chunk_gap", &self.tts.chunk_gap)?;
        positive("tts.chunk_ms", u64::from(self.tts.chunk_ms))?;
        positive("tts.ms_per_char", u64::from(self.tts.ms_per_char))?;
        // Every request's audio is made in memory: these bound how much.
        at_most("tts.ms_per_char", u64::from(self.tts.ms_per_char), 10_000)?;
        at_most(
            "tts.leading_silence_ms",
            u64::from(self.tts.leading_silence_ms),
            60_000,
        )?;
        faults("detector.faults", &self.detector.faults)?;
        timing("detector.infer", &self.detector.infer)?;
        let per_mpixel = self.detector.ms_per_mpixel;
        if !(per_mpixel.is_finite() && (0.0..=60_000.0).contains(&per_mpixel)) {
            return Err(EmulatorError::Config {
                key: "detector.ms_per_mpixel".into(),
                message: format!("{per_mpixel} is not in [0, 60000]"),
            });
        }
        // The output tensor is made in memory per request: these bound its size.
        positive("detector.classes", u64::from(self.detector.classes))?;
        at_most("detector.classes", u64::from(self.detector.classes), 1_000)?;
        at_most(
            "detector.max_boxes",
            u64::from(self.detector.max_boxes),
            1_000,
        )?;
        Ok(())
    }
}

/// A standalone emulator config file: the config plus where the dataset lives.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    dataset: Option<PathBuf>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    stt: SttConfig,
    #[serde(default)]
    llm: LlmConfig,
    #[serde(default)]
    tts: TtsConfig,
    #[serde(default)]
    detector: DetectorConfig,
}

/// Reads and validates a standalone TOML config. The optional top-level `dataset = "dir"` is
/// returned resolved against the config file's folder. Errors name the file (and line and
/// column for syntax and shape errors).
pub fn load_config(path: &Path) -> Result<(EmulatorConfig, Option<PathBuf>), EmulatorError> {
    let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| EmulatorError::ConfigFile {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let config = EmulatorConfig {
        seed: file.seed,
        stt: file.stt,
        llm: file.llm,
        tts: file.tts,
        detector: file.detector,
    };
    config.validate().map_err(|e| EmulatorError::ConfigFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let dataset = file.dataset.map(|d| base.join(d));
    Ok((config, dataset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let config = EmulatorConfig::default();
        config.validate().unwrap();
        let text = toml::to_string(&config).unwrap();
        let back: EmulatorConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn file_resolves_dataset_and_reports_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emu.toml");
        std::fs::write(
            &path,
            "dataset = \"data/smoke\"\nseed = 9\n[llm]\nttft = { dist = \"constant\", ms = 5.0 }\n",
        )
        .unwrap();
        let (config, dataset) = load_config(&path).unwrap();
        assert_eq!(config.seed, 9);
        assert_eq!(config.llm.ttft, Timing::constant(5.0));
        assert_eq!(dataset.unwrap(), dir.path().join("data/smoke"));

        std::fs::write(&path, "seed = 1\n[tts]\nchunk_msx = 3\n").unwrap();
        let err = load_config(&path).unwrap_err().to_string();
        assert!(err.contains("emu.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("chunk_msx"), "{err}");

        std::fs::write(&path, "[stt.faults]\nstall = 0.7\ndisconnect = 0.6\n").unwrap();
        let err = load_config(&path).unwrap_err().to_string();
        assert!(err.contains("stt.faults"), "{err}");
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("emulator.example.toml");
        let (config, dataset) = load_config(&path).unwrap();
        assert_eq!(config.llm.ttft, Timing::lognormal(250.0, 0.3));
        assert_eq!(config.detector, DetectorConfig::default());
        assert!(dataset.unwrap().ends_with("datasets/smoke"));
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = EmulatorConfig::default();
        config.tts.ttfb = Timing::lognormal(10.0, -1.0);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tts.ttfb"), "{err}");
        // Every TTS request's audio is made in memory: a minute of leading silence at most
        // (u32::MAX ms was 49 days of samples per request).
        let mut config = EmulatorConfig::default();
        config.tts.leading_silence_ms = u32::MAX;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tts.leading_silence_ms"), "{err}");
        let mut config = EmulatorConfig::default();
        config.detector.classes = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("detector.classes"), "{err}");
        config.detector.classes = 80;
        config.detector.ms_per_mpixel = f64::NAN;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("detector.ms_per_mpixel"), "{err}");
    }
}
