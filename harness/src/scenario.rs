//! Scenarios: TOML files naming a dataset, a backend per stage, the profiles to run, the
//! number of calls, concurrency, seed and limits. Documented in `docs/scenarios.md`.
//!
//! Every error names the scenario file and, where TOML can tell, the line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use latlab_core::backends::Timeouts;
use latlab_core::backends::cartesia::CartesiaConfig;
use latlab_core::backends::deepgram::DeepgramConfig;
use latlab_core::backends::elevenlabs::{ElevenLabsConfig, parse_output_format};
use latlab_core::backends::openai::OpenAiConfig;
use latlab_core::load::{Arrival, Stage};
use latlab_core::profile::Profile;
use latlab_emulator::EmulatorConfig;
use serde::{Deserialize, Serialize};

/// The `base_url` that means "start latlab's emulator and use it".
pub const EMULATOR: &str = "emulator";

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Its text (hashed into the run manifest).
    pub text: String,
    /// Its content.
    pub spec: ScenarioSpec,
    /// The profiles to run, in order, with their names filled in.
    pub profiles: Vec<Profile>,
    /// The dataset folder, resolved against the scenario file.
    pub dataset_dir: PathBuf,
}

/// The scenario file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Name used for the results folder.
    pub name: String,
    /// What the scenario measures.
    #[serde(default)]
    pub description: String,
    /// Dataset folder of recorded calls, relative to the scenario file (the audio lane; a
    /// scenario whose profiles all run `lanes = "video"` may leave it out).
    #[serde(default)]
    pub dataset: PathBuf,
    /// Seed for everything random (the emulator's timings and faults).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Calls per profile; the dataset is replayed in order and cycled. Default: its size.
    #[serde(default)]
    pub calls: Option<usize>,
    /// Calls in flight at once (closed loop).
    #[serde(default = "one")]
    pub concurrency: usize,
    /// Replay speed: 1.0 is real time.
    #[serde(default = "unit")]
    pub speed: f64,
    /// Audio frame length (ms).
    #[serde(default = "default_frame_ms")]
    pub frame_ms: u32,
    /// Spacing between the first calls' starts (ms), so they don't all start in one instant.
    #[serde(default = "default_stagger_ms")]
    pub stagger_ms: u64,
    /// Turns pushed through each profile's backends before its calls start, outside the
    /// clock and the results (local models compile kernels and fill caches on first use).
    #[serde(default)]
    pub warmup_turns: usize,
    /// A TOML file of profiles, relative to the scenario file.
    #[serde(default)]
    pub profiles_file: Option<PathBuf>,
    /// Which profiles to run, in order. Default: all defined.
    #[serde(default)]
    pub run_profiles: Vec<String>,
    /// Profiles defined inline (override those of `profiles_file` with the same name).
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// A backend per stage (default: the three cloud protocols against the emulator; only
    /// the audio lane uses them).
    #[serde(default)]
    pub backends: BackendsSpec,
    /// Timeouts and limits.
    #[serde(default)]
    pub limits: Limits,
    /// How calls start: closed loop (default) or open-loop arrivals, and ramps.
    #[serde(default)]
    pub load: LoadSpec,
    /// Emulator settings, used when a backend's `base_url` is `emulator`.
    #[serde(default)]
    pub emulator: Option<EmulatorConfig>,
    /// The vision lane: a recorded video replayed through a detector (`docs/scenarios.md`,
    /// "Video").
    #[serde(default)]
    pub video: Option<crate::vision::VideoSpec>,
    /// A running voice agent to call as its caller, instead of the pipeline built from
    /// `backends` (`docs/agents.md`).
    #[serde(default)]
    pub agent: Option<crate::agent::AgentSpec>,
    /// Functions the LLM may call and the API that runs them (`docs/scenarios.md`, "Tools").
    #[serde(default)]
    pub tools: Option<crate::tools::ToolsSpec>,
}

fn default_seed() -> u64 {
    1
}
fn one() -> usize {
    1
}
fn unit() -> f64 {
    1.0
}
fn default_frame_ms() -> u32 {
    20
}
fn default_stagger_ms() -> u64 {
    100
}

/// The backend of each stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendsSpec {
    /// Speech-to-text.
    pub stt: SttBackend,
    /// Language model.
    pub llm: LlmBackend,
    /// Text-to-speech.
    pub tts: TtsBackend,
    /// The endpointer of profiles with `endpointing = "vad"` (default: the energy VAD).
    #[serde(default)]
    pub vad: VadBackend,
}

impl Default for BackendsSpec {
    /// The three cloud protocols against latlab's emulator.
    fn default() -> BackendsSpec {
        let emulated = format!(
            "stt = {{ kind = \"deepgram\", base_url = \"{EMULATOR}\" }}\n\
             llm = {{ kind = \"openai\", base_url = \"{EMULATOR}\" }}\n\
             tts = {{ kind = \"elevenlabs\", base_url = \"{EMULATOR}\" }}\n"
        );
        toml::from_str(&emulated).expect("the default backends parse")
    }
}

impl BackendsSpec {
    /// Whether the speech-to-text backend is latlab's emulator.
    pub fn stt_is_emulated(&self) -> bool {
        #[allow(irrefutable_let_patterns)]
        if let SttBackend::Deepgram(c) = &self.stt {
            c.base_url == EMULATOR
        } else {
            false
        }
    }

    /// The base URLs of the cloud backends (local ones have none).
    pub fn cloud_urls(&self) -> impl Iterator<Item = &str> {
        let stt = match &self.stt {
            SttBackend::Deepgram(c) => Some(c.base_url.as_str()),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let llm = match &self.llm {
            LlmBackend::Openai(c) => Some(c.base_url.as_str()),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let tts = match &self.tts {
            TtsBackend::Elevenlabs(c) => Some(c.base_url.as_str()),
            TtsBackend::Cartesia(c) => Some(c.base_url.as_str()),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        [stt, llm, tts].into_iter().flatten()
    }
}

/// Local endpointers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum VadBackend {
    /// latlab's energy VAD with an adaptive noise floor (no model).
    #[default]
    Energy,
    /// Silero VAD v6 on ONNX Runtime (`models/fetch.py silero-vad onnxruntime`).
    Silero {
        /// Where it runs.
        #[serde(default)]
        device: latlab_core::backends::local::Device,
    },
}

/// Speech-to-text backends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SttBackend {
    /// Deepgram live streaming (WebSocket).
    Deepgram(DeepgramConfig),
    /// whisper.cpp in-process (feature `local-stt`), on VAD-segmented audio.
    #[cfg(feature = "local-stt")]
    Whisper(latlab_core::backends::local::whisper::WhisperConfig),
}

/// Language-model backends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LlmBackend {
    /// OpenAI Chat Completions (and compatible servers).
    Openai(OpenAiConfig),
    /// A GGUF model in-process through llama.cpp (feature `local-llm`).
    #[cfg(feature = "local-llm")]
    Llama(latlab_core::backends::local::llama::LlamaConfig),
}

/// Text-to-speech backends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TtsBackend {
    /// ElevenLabs HTTP streaming.
    Elevenlabs(ElevenLabsConfig),
    /// Cartesia over its WebSocket (contexts; token streaming with `tts_input = "tokens"`).
    Cartesia(CartesiaConfig),
    /// Piper on ONNX Runtime, sentence by sentence (feature `local-tts`).
    #[cfg(feature = "local-tts")]
    Piper(latlab_core::backends::local::piper::PiperConfig),
}

pub use latlab_results::load::{LoadModel, LoadPlan};

/// The `[load]` table: how calls start. Documented in `docs/scenarios.md` ("Load").
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Closed (default) or open loop.
    #[serde(default)]
    pub model: LoadModel,
    /// Open loop: Poisson (default) or constant arrivals.
    #[serde(default)]
    pub arrival: Arrival,
    /// Open loop without stages: calls started per second.
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    /// Open loop: an arrival that finds this many calls in flight is dropped (counted).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Stop starting calls this many seconds (recording time) into each profile; 0 = no bound.
    #[serde(default)]
    pub duration_s: f64,
    /// A ramp: levels (calls in flight, or arrivals per second) held one after another.
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// Default cap on open-loop calls in flight.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// The most calls in flight a closed loop may ask for (`concurrency`, a stage's `target`): the
/// runner opens every slot up front, so a typo such as `concurrency = 1e12` would queue slots
/// until memory runs out.
pub const MAX_CONCURRENCY: usize = 100_000;

/// The most open-loop arrivals the stages (or `duration_s`) may plan when `calls` does not
/// bound them: the plan is made in memory before the first call, and a rate such as `1e300`
/// would never finish planning.
pub const MAX_PLANNED_ARRIVALS: f64 = 1e8;

impl Scenario {
    /// The load the runner drives: `[load]` with the top-level `calls` and `concurrency`
    /// filled in. `calls` and `concurrency` override the scenario's (command-line flags).
    pub fn load_plan(
        &self,
        dataset_calls: usize,
        calls: Option<usize>,
        concurrency: Option<usize>,
    ) -> LoadPlan {
        let spec = &self.spec;
        let load = &spec.load;
        let duration = if load.duration_s > 0.0 {
            load.duration_s
        } else {
            f64::INFINITY
        };
        let bounded = !load.stages.is_empty() || load.duration_s > 0.0;
        let calls = calls.or(spec.calls);
        // Without a time bound the calls bound the run (the dataset's size by default).
        let max_calls = match calls {
            Some(n) => Some(n),
            None if bounded => None,
            None => Some(dataset_calls.max(1)),
        };
        let stages = if load.stages.is_empty() {
            let target = match load.model {
                LoadModel::Closed => concurrency.unwrap_or(spec.concurrency).max(1) as f64,
                LoadModel::Open => load.rate_per_s.unwrap_or(1.0),
            };
            vec![Stage {
                name: String::new(),
                duration_s: duration,
                target,
            }]
        } else {
            load.stages.clone()
        };
        LoadPlan {
            model: load.model,
            arrival: load.arrival,
            stages,
            max_calls,
            max_in_flight: load.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT).max(1),
        }
    }
}

/// Timeouts and limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Opening a connection, ms.
    pub connect_timeout_ms: u64,
    /// Request sent to response status, ms.
    pub response_timeout_ms: u64,
    /// Longest silence inside a stream before it counts as stalled, ms.
    pub stall_timeout_ms: u64,
    /// How long after a turn's scheduled end its final transcript may take, ms.
    pub transcript_timeout_ms: u64,
    /// Stop scheduling new calls after this many seconds (0 = no limit).
    pub max_duration_s: u64,
    /// After Ctrl-C or SIGTERM, how long calls in flight may take to finish, s.
    pub grace_s: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connect_timeout_ms: 5_000,
            response_timeout_ms: 10_000,
            stall_timeout_ms: 3_000,
            transcript_timeout_ms: 5_000,
            max_duration_s: 0,
            grace_s: 10,
        }
    }
}

impl Limits {
    /// The backend timeouts these limits set.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect_ms: self.connect_timeout_ms,
            response_ms: self.response_timeout_ms,
            stall_ms: self.stall_timeout_ms,
        }
    }
}

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or shape error (the message carries line, column and key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message.
        message: String,
    },
    /// A value is invalid.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line the key is on (1-based; 0 when the key is absent).
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A profiles file: `[name]` tables of knobs.
type ProfilesFile = BTreeMap<String, Profile>;

impl Scenario {
    /// Loads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = read(path)?;
        let spec: ScenarioSpec = parse(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |key: &str, message: String| ScenarioError::Invalid {
            path: path.to_path_buf(),
            line: line_of(&text, key),
            key: key.to_string(),
            message,
        };

        let mut defined = ProfilesFile::new();
        if let Some(file) = &spec.profiles_file {
            let file = base.join(file);
            let profiles_text = read(&file)?;
            defined = parse(&file, &profiles_text)?;
        }
        defined.extend(spec.profiles.clone());
        if defined.is_empty() {
            defined.insert("balanced".into(), Profile::balanced());
        }
        let names: Vec<String> = if spec.run_profiles.is_empty() {
            defined.keys().cloned().collect()
        } else {
            spec.run_profiles.clone()
        };
        let mut profiles = Vec::new();
        for name in names {
            let mut profile = defined.get(&name).cloned().ok_or_else(|| {
                invalid(
                    "run_profiles",
                    format!(
                        "no profile named {name:?} (defined: {})",
                        defined.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(invalid(
                    "run_profiles",
                    format!("profile name {name:?} may use only A-Z a-z 0-9 _ -"),
                ));
            }
            if profile.endpointing_ms > 10_000 {
                return Err(invalid(
                    "endpointing_ms",
                    format!("profile {name}: {} ms is over 10 s", profile.endpointing_ms),
                ));
            }
            if let Some(t) = profile.vad_threshold
                && !(t > 0.0 && t < 1.0)
            {
                return Err(invalid(
                    "vad_threshold",
                    format!("profile {name}: {t} is not a probability in (0, 1)"),
                ));
            }
            profile.name = name;
            profiles.push(profile);
        }

        if spec.name.is_empty()
            || !spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "name",
                "must be non-empty and use only A-Z a-z 0-9 _ -".into(),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&spec.concurrency) {
            return Err(invalid(
                "concurrency",
                format!("must be in 1..={MAX_CONCURRENCY}"),
            ));
        }
        let load = &spec.load;
        if !(load.duration_s.is_finite() && load.duration_s >= 0.0) {
            return Err(invalid(
                "load.duration_s",
                format!("{} s is not a duration", load.duration_s),
            ));
        }
        for (i, stage) in load.stages.iter().enumerate() {
            if !(stage.duration_s.is_finite() && stage.duration_s > 0.0) {
                return Err(invalid(
                    "load.stages",
                    format!(
                        "stage {}: duration_s must be a positive number of seconds",
                        i + 1
                    ),
                ));
            }
            if !(stage.target.is_finite() && stage.target >= 0.0) {
                return Err(invalid(
                    "load.stages",
                    format!("stage {}: target must be a number ≥ 0", i + 1),
                ));
            }
        }
        match load.model {
            LoadModel::Open => {
                match (load.rate_per_s, load.stages.is_empty()) {
                    (Some(_), false) => {
                        return Err(invalid(
                            "load.rate_per_s",
                            "give either rate_per_s or stages, not both".into(),
                        ));
                    }
                    (None, true) => {
                        return Err(invalid(
                            "load.model",
                            "an open-loop load needs rate_per_s (calls per second) or stages"
                                .into(),
                        ));
                    }
                    (Some(r), true) if !(r.is_finite() && r > 0.0) => {
                        return Err(invalid(
                            "load.rate_per_s",
                            format!("{r} is not a positive rate"),
                        ));
                    }
                    _ => {}
                }
                if load.max_in_flight == Some(0) {
                    return Err(invalid("load.max_in_flight", "must be at least 1".into()));
                }
                let planned = match load.rate_per_s {
                    Some(rate) => rate * load.duration_s,
                    None => load.stages.iter().map(|st| st.target * st.duration_s).sum(),
                };
                if spec.calls.is_none() && planned > MAX_PLANNED_ARRIVALS {
                    let key = if load.rate_per_s.is_some() {
                        "load.rate_per_s"
                    } else {
                        "load.stages"
                    };
                    return Err(invalid(
                        key,
                        format!(
                            "plans about {planned:.3e} arrivals per profile, more than latlab plans ahead ({MAX_PLANNED_ARRIVALS:.0e}): lower the rates or durations, or set `calls`"
                        ),
                    ));
                }
            }
            LoadModel::Closed => {
                if let Some(i) = load
                    .stages
                    .iter()
                    .position(|st| st.target > MAX_CONCURRENCY as f64)
                {
                    return Err(invalid(
                        "load.stages",
                        format!(
                            "stage {}: a closed loop's target is calls in flight, at most {MAX_CONCURRENCY}",
                            i + 1
                        ),
                    ));
                }
                if load.rate_per_s.is_some() || load.max_in_flight.is_some() {
                    let key = if load.rate_per_s.is_some() {
                        "load.rate_per_s"
                    } else {
                        "load.max_in_flight"
                    };
                    return Err(invalid(
                        key,
                        "only for model = \"open\" (a closed loop has `concurrency`)".into(),
                    ));
                }
            }
        }
        if spec.calls == Some(0) {
            return Err(invalid("calls", "must be at least 1".into()));
        }
        if !(spec.speed.is_finite() && spec.speed > 0.0 && spec.speed <= 100.0) {
            return Err(invalid(
                "speed",
                format!("{} is not in (0, 100]", spec.speed),
            ));
        }
        if !(5..=1000).contains(&spec.frame_ms) {
            return Err(invalid(
                "frame_ms",
                format!("{} ms is not in [5, 1000]", spec.frame_ms),
            ));
        }
        if let TtsBackend::Elevenlabs(tts) = &spec.backends.tts {
            parse_output_format(&tts.output_format).map_err(|m| invalid("output_format", m))?;
        }
        if let TtsBackend::Cartesia(tts) = &spec.backends.tts {
            tts.validate().map_err(|(key, m)| invalid(key, m))?;
        }
        if let Some(emulator) = &spec.emulator {
            emulator
                .validate()
                .map_err(|e| invalid("emulator", e.to_string()))?;
        }
        if let Some(video) = &spec.video {
            video.validate(&profiles).map_err(|(key, message)| {
                let line = line_of(&text, &format!("video.{key}"));
                ScenarioError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    key: format!("video.{key}"),
                    message,
                }
            })?;
        }
        if let Some(tools) = &spec.tools {
            tools.validate().map_err(|(key, message)| {
                let line = line_of(&text, &format!("tools.{key}"));
                ScenarioError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    key: format!("tools.{key}"),
                    message,
                }
            })?;
        }
        if spec.tools.is_none()
            && let Some(p) = profiles.iter().find(|p| !p.tool_cache.is_none())
        {
            return Err(invalid(
                "tool_cache",
                format!(
                    "profile {}: a tool cache without [tools] (no function to call)",
                    p.name
                ),
            ));
        }
        if let Some(agent) = &spec.agent {
            agent.validate(&profiles).map_err(|(key, message)| {
                let line = line_of(&text, &format!("agent.{key}"));
                ScenarioError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    key: format!("agent.{key}"),
                    message,
                }
            })?;
            if spec.dataset.as_os_str().is_empty() {
                return Err(invalid(
                    "dataset",
                    "an [agent] is called with recorded callers: set `dataset`".into(),
                ));
            }
        }
        // No recorded calls but a camera: every profile that did not choose runs the video lane.
        if spec.dataset.as_os_str().is_empty() && spec.video.is_some() {
            for p in profiles.iter_mut().filter(|p| p.lanes.is_all()) {
                p.lanes = latlab_core::profile::Lanes::Video;
            }
        }
        if spec.dataset.as_os_str().is_empty() && profiles.iter().any(|p| p.lanes.audio()) {
            return Err(invalid(
                "dataset",
                "no dataset of recorded calls: set `dataset`, or give every profile lanes = \"video\""
                    .into(),
            ));
        }
        if spec.video.is_none() && profiles.iter().all(|p| !p.lanes.audio()) {
            return Err(invalid(
                "lanes",
                "every profile runs only the video lane, but the scenario has no [video]".into(),
            ));
        }
        let dataset_dir = base.join(&spec.dataset);
        Ok(Scenario {
            path: path.to_path_buf(),
            text,
            profiles,
            dataset_dir,
            spec,
        })
    }

    /// Whether any profile runs the audio lane (recorded calls).
    pub fn runs_audio(&self) -> bool {
        self.profiles.iter().any(|p| p.lanes.audio())
    }

    /// Whether any backend points at the emulator.
    pub fn uses_emulator(&self) -> bool {
        let audio = match &self.spec.agent {
            Some(agent) => agent.uses_emulator(),
            None => {
                self.spec.backends.cloud_urls().any(|u| u == EMULATOR)
                    || self
                        .spec
                        .tools
                        .as_ref()
                        .is_some_and(|t| t.url == crate::tools::EMULATOR)
            }
        };
        (self.runs_audio() && audio) || self.spec.video.as_ref().is_some_and(|v| v.uses_emulator())
    }
}

fn read(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|source| ScenarioError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ScenarioError> {
    parse_in_build(path, text, built_with)
}

/// [`parse`] as a build with the cargo features `built` says it has would.
fn parse_in_build<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    built: impl Fn(&str) -> bool,
) -> Result<T, ScenarioError> {
    toml::from_str(text).map_err(|e| {
        let message = e.to_string().trim_end().to_string();
        ScenarioError::Parse {
            path: path.to_path_buf(),
            message: explain_unbuilt(&message, built).unwrap_or(message),
        }
    })
}

/// The backend kinds that live behind a cargo feature, with that feature.
pub const FEATURE_KINDS: [(&str, &str); 4] = [
    ("silero", "local-vad"),
    ("whisper", "local-stt"),
    ("llama", "local-llm"),
    ("piper", "local-tts"),
];

/// The cargo feature a backend kind needs (`None`: every build has it).
pub fn feature_of(kind: &str) -> Option<&'static str> {
    FEATURE_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, feature)| *feature)
}

/// Whether this build of latlab has a cargo feature.
fn built_with(feature: &str) -> bool {
    const BUILT: [(&str, bool); 4] = [
        ("local-vad", cfg!(feature = "local-vad")),
        ("local-stt", cfg!(feature = "local-stt")),
        ("local-llm", cfg!(feature = "local-llm")),
        ("local-tts", cfg!(feature = "local-tts")),
    ];
    BUILT
        .iter()
        .find(|(f, _)| *f == feature)
        .is_none_or(|(_, built)| *built)
}

/// A TOML error about an `unknown variant` that is a backend kind this build left out
/// (`built` says which features it has), with the feature to build with added; `None` for
/// any other error, a typo included.
fn explain_unbuilt(message: &str, built: impl Fn(&str) -> bool) -> Option<String> {
    let kind = message
        .split("unknown variant `")
        .nth(1)?
        .split('`')
        .next()?;
    let feature = feature_of(kind).filter(|f| !built(f))?;
    Some(format!("{message}\n{}", not_built(kind, feature)))
}

/// The error for a backend this build of latlab does not have.
pub(crate) fn not_built(kind: &str, feature: &str) -> String {
    format!(
        "this latlab was built without the `{feature}` feature, which the `{kind}` backend needs \
         (cargo build --release --features {feature})"
    )
}

/// The 1-based line where `key` is first assigned (0 when it is not in the file). A dotted
/// `table.key` is looked for inside `[table]` first.
fn line_of(text: &str, key: &str) -> usize {
    if let Some((table, field)) = key.rsplit_once('.') {
        let header = format!("[{table}]");
        let lines: Vec<&str> = text.lines().collect();
        if let Some(start) = lines.iter().position(|l| l.trim() == header) {
            let found = lines[start + 1..]
                .iter()
                .take_while(|l| !l.trim_start().starts_with('['))
                .position(|l| {
                    l.trim_start()
                        .strip_prefix(field)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                });
            return found.map_or(start + 1, |i| start + i + 2);
        }
        return line_of(text, field);
    }
    line_of_key(text, key)
}

fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
                || l.starts_with(&format!("[{key}"))
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const MINIMAL: &str = r#"
name = "t"
dataset = "data"
concurrency = 2

[backends.stt]
kind = "deepgram"
base_url = "emulator"

[backends.llm]
kind = "openai"
base_url = "emulator"

[backends.tts]
kind = "elevenlabs"
base_url = "emulator"
output_format = "wav_16000"

[profiles.fast]
endpointing_ms = 200
"#;

    #[test]
    fn loads_a_minimal_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scenario::load(&write(dir.path(), "s.toml", MINIMAL)).unwrap();
        assert_eq!(s.profiles.len(), 1);
        assert_eq!(s.profiles[0].name, "fast");
        assert_eq!(s.profiles[0].endpointing_ms, 200);
        assert!(s.uses_emulator());
        assert_eq!(s.dataset_dir, dir.path().join("data"));
    }

    #[test]
    fn syntax_error_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let bad = MINIMAL.replace("concurrency = 2", "concurrency = \"two\"");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml") && e.contains("line 4") && e.contains("concurrency"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let bad = MINIMAL.replace("concurrency = 2", "concurrency = 2\nconcurency = 3");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml") && e.contains("line 5") && e.contains("concurency"),
            "{e}"
        );
    }

    #[test]
    fn invalid_value_names_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let bad = MINIMAL.replace("concurrency = 2", "concurrency = 0");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:4: key `concurrency`: must be in 1..=100000"),
            "{e}"
        );
        // Found by reading while fuzzing the loader: the runner opened this many slots up
        // front (an unbounded queue), so it ran out of memory instead of failing here.
        let bad = MINIMAL.replace("concurrency = 2", "concurrency = 1000000000000");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:4: key `concurrency`: must be in 1..=100000"),
            "{e}"
        );
        let bad = MINIMAL.replace("name = \"t\"", "name = \"t\"\nrun_profiles = [\"slow\"]");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.toml:3: key `run_profiles`: no profile named \"slow\""),
            "{e}"
        );
        let bad = MINIMAL.replace("wav_16000", "mp3_44100_128");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `output_format`"), "{e}");
    }

    #[test]
    fn a_bad_cartesia_config_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cartesia = "kind = \"cartesia\"\nbase_url = \"emulator\"\nsample_rate = 16000";
        let good = MINIMAL.replace(
            "kind = \"elevenlabs\"\nbase_url = \"emulator\"\noutput_format = \"wav_16000\"",
            cartesia,
        );
        let s = Scenario::load(&write(dir.path(), "s.toml", &good)).unwrap();
        assert!(matches!(s.spec.backends.tts, TtsBackend::Cartesia(_)));
        assert!(s.uses_emulator());
        let bad = good.replace("sample_rate = 16000", "sample_rate = 12345");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `sample_rate`"), "{e}");
        let bad = good.replace("sample_rate = 16000", "voice = \"x\"");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("voice"), "{e}");
        let tokens = good.replace(
            "endpointing_ms = 200",
            "endpointing_ms = 200\ntts_input = \"tokens\"",
        );
        let s = Scenario::load(&write(dir.path(), "s.toml", &tokens)).unwrap();
        assert_eq!(
            s.profiles[0].tts_input,
            latlab_core::profile::TtsInput::Tokens
        );
        let bad = tokens.replace("\"tokens\"", "\"words\"");
        let e = Scenario::load(&write(dir.path(), "s.toml", &bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tts_input"), "{e}");
    }

    #[test]
    fn shipped_scenarios_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let s = Scenario::load(&root.join("smoke.toml")).unwrap();
        let names: Vec<_> = s.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["conservative", "balanced", "aggressive"]);
        for name in ["gate.toml", "ramp.toml", "open.toml"] {
            Scenario::load(&root.join(name)).unwrap();
        }
        let cartesia = Scenario::load(&root.join("tts-compare.toml")).unwrap();
        assert!(matches!(
            cartesia.spec.backends.tts,
            TtsBackend::Cartesia(_)
        ));
        let inputs: Vec<_> = cartesia.profiles.iter().map(|p| p.tts_input).collect();
        use latlab_core::profile::TtsInput;
        assert_eq!(inputs, [TtsInput::Sentences, TtsInput::Tokens]);
        Scenario::load(&root.join("tts-compare-elevenlabs.toml")).unwrap();
        let open = Scenario::load(&root.join("open.toml")).unwrap();
        let plan = open.load_plan(10, None, None);
        assert_eq!(plan.model, LoadModel::Open);
        assert_eq!(plan.max_calls, None, "the stages bound an open loop");
        assert_eq!(plan.stages.len(), 3);
        let smoke = s.load_plan(10, None, Some(4));
        assert_eq!((smoke.max_calls, smoke.stages[0].target), (Some(10), 4.0));
    }

    #[test]
    fn a_backend_kind_this_build_left_out_names_its_feature() {
        // The scenario's backend enums as a build without `local-stt` has them: no `whisper`.
        #[derive(Debug, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Stt {
            Deepgram {},
        }
        #[derive(Debug, Deserialize)]
        struct Backends {
            #[allow(dead_code)]
            stt: Stt,
        }
        #[derive(Debug, Deserialize)]
        struct Spec {
            #[allow(dead_code)]
            backends: Backends,
        }
        let text = "name = \"t\"\n\n[backends.stt]\nkind = \"whisper\"\nmodel = \"tiny.en\"\n";
        let path = Path::new("scenarios/local.toml");
        let e = parse_in_build::<Spec>(path, text, |_| false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scenarios/local.toml")
                && e.contains("line 4, column 8")
                && e.contains("unknown variant `whisper`")
                && e.contains("--features local-stt"),
            "{e}"
        );
        // A build that has the feature never sees this error; a typo gets no feature.
        let built = parse_in_build::<Spec>(path, text, |_| true)
            .unwrap_err()
            .to_string();
        assert!(!built.contains("--features"), "{built}");
        let typo = parse_in_build::<Spec>(path, &text.replace("whisper", "whispr"), |_| false)
            .unwrap_err()
            .to_string();
        assert!(!typo.contains("--features"), "{typo}");
        for (kind, feature) in FEATURE_KINDS {
            assert_eq!(feature_of(kind), Some(feature));
        }
        assert_eq!(feature_of("deepgram"), None);
    }

    #[test]
    fn a_bad_load_names_its_key_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            (
                "[load]\nmodel = \"open\"\n",
                ":23: key `load.model`: an open-loop load needs rate_per_s",
            ),
            (
                "[load]\nrate_per_s = 2.0\n",
                ":23: key `load.rate_per_s`: only for model = \"open\"",
            ),
            (
                "[load]\nmodel = \"open\"\nrate_per_s = 1.0\nstages = [{ duration_s = 1, target = 1 }]\n",
                "give either rate_per_s or stages",
            ),
            (
                "[load]\nstages = [{ duration_s = 0, target = 1 }]\n",
                "stage 1: duration_s must be a positive",
            ),
            (
                "[load]\nstages = [{ duration_s = 1, target = 1e12 }]\n",
                "stage 1: a closed loop's target is calls in flight, at most 100000",
            ),
            (
                "[load]\nmodel = \"open\"\nstages = [{ duration_s = 30, target = 1e300 }]\n",
                "key `load.stages`: plans about 3.000e301 arrivals",
            ),
            (
                "[load]\nmodel = \"open\"\nrate_per_s = 1e4\nduration_s = 1e5\n",
                "key `load.rate_per_s`: plans about 1.000e9 arrivals",
            ),
            ("[load]\nmodel = \"closd\"\n", "unknown variant `closd`"),
            ("[load]\nburst = 3\n", "unknown field `burst`"),
        ];
        for (load, want) in cases {
            let path = write(tmp.path(), "s.toml", &format!("{MINIMAL}\n{load}"));
            let e = Scenario::load(&path).unwrap_err().to_string();
            assert!(e.contains("s.toml") && e.contains(want), "{load}: {e}");
        }
    }
}
