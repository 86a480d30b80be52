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
    /// A voice agent answering calls over Twilio Media Streams or binary PCM.
    pub agent: AgentConfig,
    /// A company's tool API (`POST /{name}`), which the LLM's tool calls run against.
    pub tools: ToolsConfig,
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
    /// Per tool call (a dataset turn with a `tool`, asked with `tools`): probability that its
    /// streamed arguments are not valid JSON. Drawn apart from `faults`.
    pub malformed_tool_arguments: f64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            port: 0,
            api_key: None,
            faults: Faults::default(),
            ttft: Timing::lognormal(250.0, 0.3),
            inter_token: Timing::lognormal(20.0, 0.3),
            malformed_tool_arguments: 0.0,
        }
    }
}

/// The emulated tool API: `POST /{name}` with the arguments as a JSON object, answered with
/// the dataset's scripted result or a generated record (see [`crate::tools`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, `Authorization: Bearer <key>` must carry this key.
    pub api_key: Option<String>,
    /// Fault probabilities.
    pub faults: Faults,
    /// From the request (received whole) to the response: the company API is slower than a
    /// cache in front of it, which is what a tool cache is for.
    pub latency: Timing,
    /// When not empty, the only tool names served; others get 404.
    pub names: Vec<String>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            port: 0,
            api_key: None,
            faults: Faults::default(),
            latency: Timing::lognormal(120.0, 0.3),
            names: Vec::new(),
        }
    }
}

/// The emulated ElevenLabs streaming TTS service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, the `xi-api-key` header must carry this key (Cartesia's WebSocket: `X-API-Key`,
    /// `Authorization: Bearer` or `?api_key=`; a missing key is 401, a wrong one 403).
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

/// What the emulated agent does when the caller talks over its reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BargeIn {
    /// Stop sending and tell the caller to drop its buffered audio (`clear`).
    #[default]
    Clear,
    /// Stop sending without `clear`: what the caller has buffered plays out.
    Stop,
    /// Keep talking.
    Ignore,
}

/// Fault probabilities of the emulated agent, each in [0, 1] and drawn independently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentFaults {
    /// Per call: answer the WebSocket upgrade with HTTP 503.
    pub refuse: f64,
    /// Per reply: close the connection partway through the reply's audio.
    pub close: f64,
    /// Per reply: send a text message that is not valid JSON in place of its first media message.
    pub malformed: f64,
    /// Per user turn: never reply to it (the call goes on).
    pub never_answer: f64,
}

impl AgentFaults {
    /// Checks that each probability lies in [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("refuse", self.refuse),
            ("close", self.close),
            ("malformed", self.malformed),
            ("never_answer", self.never_answer),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} = {p} is not a probability in [0, 1]"));
            }
        }
        Ok(())
    }
}

/// The emulated voice agent: it hears the caller with a level-based turn detector and answers
/// each turn with speech-like audio (see [`crate::agent`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Fault probabilities.
    pub faults: AgentFaults,
    /// A 20 ms frame of the caller's audio is speech when its RMS level is above this (dBFS).
    pub speech_dbfs: f64,
    /// Non-speech after a turn that ends it (ms).
    pub endpointing_ms: u32,
    /// Speech a turn needs before a silence can end it (ms).
    pub min_speech_ms: u32,
    /// From the end-of-turn decision to the reply's first chunk.
    pub response: Timing,
    /// Digital silence at the start of each reply (ms).
    pub leading_silence_ms: u32,
    /// Speech per reply, after the leading silence.
    pub reply_ms: Timing,
    /// Audio per sent chunk (ms).
    pub chunk_ms: u32,
    /// Sending speed as a multiple of real time (1.0: one chunk every `chunk_ms`).
    pub pace: f64,
    /// Audio sent at once when a reply starts, before pacing begins (ms).
    pub prebuffer_ms: u32,
    /// Per reply: probability of one stall of `gap_ms` in its middle.
    pub gap_probability: f64,
    /// Length of a stall (ms).
    pub gap_ms: u32,
    /// Caller speech during a reply that counts as barging in (ms).
    pub barge_in_min_ms: u32,
    /// From detecting a barge-in to acting on it.
    pub barge_in_delay: Timing,
    /// What a barge-in does.
    pub barge_in: BargeIn,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            port: 0,
            faults: AgentFaults::default(),
            // Between the smoke dataset's speech and its noise after the 8 kHz μ-law round
            // trip: its loudest noise (20 dB SNR) reaches -35.8 dBFS in a frame.
            speech_dbfs: -35.0,
            endpointing_ms: 500,
            min_speech_ms: 120,
            response: Timing::lognormal(300.0, 0.15),
            leading_silence_ms: 60,
            reply_ms: Timing::lognormal(1500.0, 0.2),
            chunk_ms: 20,
            pace: 1.0,
            prebuffer_ms: 0,
            gap_probability: 0.0,
            gap_ms: 300,
            barge_in_min_ms: 200,
            barge_in_delay: Timing::lognormal(100.0, 0.2),
            barge_in: BargeIn::Clear,
        }
    }
}

impl AgentConfig {
    fn validate(&self) -> Result<(), EmulatorError> {
        faults_with("agent.faults", self.faults.validate())?;
        timing("agent.response", &self.response)?;
        timing("agent.reply_ms", &self.reply_ms)?;
        timing("agent.barge_in_delay", &self.barge_in_delay)?;
        let level = self.speech_dbfs;
        if !(level.is_finite() && (-120.0..=0.0).contains(&level)) {
            return Err(EmulatorError::Config {
                key: "agent.speech_dbfs".into(),
                message: format!("{level} is not in [-120, 0]"),
            });
        }
        positive("agent.endpointing_ms", u64::from(self.endpointing_ms))?;
        at_most(
            "agent.endpointing_ms",
            u64::from(self.endpointing_ms),
            60_000,
        )?;
        at_most("agent.min_speech_ms", u64::from(self.min_speech_ms), 60_000)?;
        // Every reply's audio is made in memory: these bound how much.
        at_most(
            "agent.leading_silence_ms",
            u64::from(self.leading_silence_ms),
            60_000,
        )?;
        positive("agent.chunk_ms", u64::from(self.chunk_ms))?;
        at_most("agent.chunk_ms", u64::from(self.chunk_ms), 10_000)?;
        let pace = self.pace;
        if !(pace.is_finite() && (0.01..=1000.0).contains(&pace)) {
            return Err(EmulatorError::Config {
                key: "agent.pace".into(),
                message: format!("{pace} is not in [0.01, 1000]"),
            });
        }
        at_most("agent.prebuffer_ms", u64::from(self.prebuffer_ms), 600_000)?;
        let p = self.gap_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(EmulatorError::Config {
                key: "agent.gap_probability".into(),
                message: format!("{p} is not a probability in [0, 1]"),
            });
        }
        at_most("agent.gap_ms", u64::from(self.gap_ms), 600_000)?;
        at_most(
            "agent.barge_in_min_ms",
            u64::from(self.barge_in_min_ms),
            60_000,
        )?;
        Ok(())
    }
}

fn faults_with(key: &str, checked: Result<(), String>) -> Result<(), EmulatorError> {
    checked.map_err(|message| EmulatorError::Config {
        key: key.to_string(),
        message,
    })
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
        let p = self.llm.malformed_tool_arguments;
        if !(0.0..=1.0).contains(&p) {
            return Err(EmulatorError::Config {
                key: "llm.malformed_tool_arguments".into(),
                message: format!("{p} is not a probability in [0, 1]"),
            });
        }
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
        self.agent.validate()?;
        faults("tools.faults", &self.tools.faults)?;
        timing("tools.latency", &self.tools.latency)?;
        if let Some(bad) = self.tools.names.iter().find(|n| !valid_tool_name(n)) {
            return Err(EmulatorError::Config {
                key: "tools.names".into(),
                message: format!("{bad:?} is not a tool name ([A-Za-z0-9_-], 1 to 64 characters)"),
            });
        }
        Ok(())
    }
}

/// OpenAI's rule for function names, which are also the tool API's paths.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
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
    #[serde(default)]
    agent: AgentConfig,
    #[serde(default)]
    tools: ToolsConfig,
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
        agent: file.agent,
        tools: file.tools,
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
        assert_eq!(config.agent, AgentConfig::default());
        assert_eq!(config.tools, ToolsConfig::default());
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
        let mut config = EmulatorConfig::default();
        config.agent.faults.never_answer = 1.5;
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("agent.faults") && err.contains("never_answer"),
            "{err}"
        );
        let mut config = EmulatorConfig::default();
        config.agent.pace = 0.0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("agent.pace"), "{err}");
        let mut config = EmulatorConfig::default();
        config.agent.chunk_ms = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("agent.chunk_ms"), "{err}");
    }

    #[test]
    fn tools_section_parses_and_validates() {
        let config: EmulatorConfig = toml::from_str(
            "[llm]\nmalformed_tool_arguments = 0.25\n[tools]\nnames = [\"get_order_status\"]\nlatency = { dist = \"constant\", ms = 3.0 }\n[tools.faults]\nstall = 0.5\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.llm.malformed_tool_arguments, 0.25);
        assert_eq!(config.tools.latency, Timing::constant(3.0));
        assert_eq!(config.tools.faults.stall, 0.5);
        assert_eq!(config.tools.names, ["get_order_status"]);
        assert_eq!(
            EmulatorConfig::default().tools.latency,
            Timing::lognormal(120.0, 0.3)
        );
        let mut bad = EmulatorConfig::default();
        bad.llm.malformed_tool_arguments = 1.5;
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("llm.malformed_tool_arguments"), "{err}");
        let mut bad = EmulatorConfig::default();
        bad.tools.faults.http_5xx = 2.0;
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("tools.faults"), "{err}");
        let mut bad = EmulatorConfig::default();
        bad.tools.names = vec!["orders/status".into()];
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("tools.names"), "{err}");
        assert!(toml::from_str::<EmulatorConfig>("[tools]\nlatencyy = 3\n").is_err());
    }

    #[test]
    fn agent_section_parses() {
        let config: EmulatorConfig = toml::from_str(
            "[agent]\nbarge_in = \"stop\"\nresponse = { dist = \"constant\", ms = 5.0 }\n[agent.faults]\nclose = 0.5\n",
        )
        .unwrap();
        assert_eq!(config.agent.barge_in, BargeIn::Stop);
        assert_eq!(config.agent.response, Timing::constant(5.0));
        assert_eq!(config.agent.faults.close, 0.5);
        assert!(toml::from_str::<EmulatorConfig>("[agent]\nbarge_in = \"shout\"\n").is_err());
    }
}
