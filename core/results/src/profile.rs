//! Profiles: named sets of pipeline knobs whose effect is real in the pipeline code.
//!
//! Each knob changes what the pipeline sends or when it acts; none is a label only.
//! See `scenarios/profiles.toml` for the shipped `conservative`, `balanced` and `aggressive`.

use serde::{Deserialize, Serialize};

/// Who decides that the user has stopped speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpointing {
    /// The STT service's endpointing (`endpointing=<ms>`, `speech_final`).
    Stt,
    /// A local energy VAD with `endpointing_ms` of hangover; it then asks the STT to
    /// finalize (`{"type":"Finalize"}`).
    Vad,
}

/// When the reply starts being spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtsStart {
    /// Send each sentence to TTS as soon as the LLM completes it.
    FirstSentence,
    /// Wait for the whole reply, then send it in one request.
    FullReply,
}

/// How the reply's text reaches text-to-speech.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtsInput {
    /// One request per piece of text that `tts_start` says (a sentence, or the whole reply).
    #[default]
    Sentences,
    /// One incremental context per reply, fed every LLM token as it arrives (Cartesia's
    /// continuations). A backend that takes whole texts only speaks sentence by sentence
    /// instead, and the run's manifest says so.
    Tokens,
}

impl TtsInput {
    /// True for the default.
    pub fn is_sentences(&self) -> bool {
        *self == TtsInput::Sentences
    }
}

/// The knobs of one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (filled from its table key).
    #[serde(default)]
    pub name: String,
    /// Who detects the end of speech.
    #[serde(default = "default_endpointing")]
    pub endpointing: Endpointing,
    /// Silence (ms) required before the end of speech is declared (default 500; a
    /// video-only profile need not set it).
    #[serde(default = "default_endpointing_ms")]
    pub endpointing_ms: u32,
    /// Ask the STT for `UtteranceEnd` after this much silence (ms), as a backstop.
    #[serde(default)]
    pub utterance_end_ms: Option<u32>,
    /// Ask the STT for interim results.
    #[serde(default = "yes")]
    pub interim_results: bool,
    /// Start TTS on the first sentence or on the whole reply.
    #[serde(default = "default_tts_start")]
    pub tts_start: TtsStart,
    /// Send TTS whole sentences (default) or stream every LLM token into one context.
    #[serde(default, skip_serializing_if = "TtsInput::is_sentences")]
    pub tts_input: TtsInput,
    /// Use the TTS streaming endpoint (else the whole-body endpoint).
    #[serde(default = "yes")]
    pub tts_streaming: bool,
    /// Reuse HTTP connections across requests (else a fresh connection per request).
    #[serde(default = "yes")]
    pub connection_reuse: bool,
    /// Stream the LLM's reply (else wait for the whole completion).
    #[serde(default = "yes")]
    pub llm_streaming: bool,
    /// Speech probability at which a model VAD (Silero) declares speech (default 0.5);
    /// the energy VAD has no such knob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vad_threshold: Option<f32>,
    /// Local models' knobs for this profile (model size, threads, beam size), applied over
    /// the scenario's local backends; cloud backends ignore them.
    #[serde(default, skip_serializing_if = "LocalKnobs::is_empty")]
    pub local: LocalKnobs,
    /// The vision lane's knobs for this profile (detector, input size, threads, policy,
    /// streams), applied over the scenario's `[video]` section.
    #[serde(default, skip_serializing_if = "VideoKnobs::is_empty")]
    pub video: VideoKnobs,
    /// Which of the scenario's lanes this profile runs (default: all it has), so one
    /// scenario can measure each lane alone and both together.
    #[serde(default, skip_serializing_if = "Lanes::is_all")]
    pub lanes: Lanes,
    /// Where tool results are cached (`none`, `memory`, `redis`), keyed by the tool's name and
    /// arguments (`docs/scenarios.md`, "Tools").
    #[serde(default, skip_serializing_if = "ToolCache::is_none")]
    pub tool_cache: ToolCache,
    /// How long a cached tool result stays fresh (s).
    #[serde(default = "default_tool_cache_ttl_s")]
    pub tool_cache_ttl_s: u64,
}

/// Where a profile caches tool results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCache {
    /// No cache: every call goes to the tool's API.
    #[default]
    None,
    /// A map in latlab's process, one per profile.
    Memory,
    /// A real Redis (`[tools] redis_url`, or a `redis-server` latlab starts for the run).
    Redis,
}

impl ToolCache {
    /// Whether there is no cache.
    pub fn is_none(&self) -> bool {
        *self == ToolCache::None
    }

    /// The name as written in scenarios and results.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCache::None => "none",
            ToolCache::Memory => "memory",
            ToolCache::Redis => "redis",
        }
    }
}

fn default_tool_cache_ttl_s() -> u64 {
    300
}

/// Which lanes a profile runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lanes {
    /// Every lane the scenario has (calls and camera streams together).
    #[default]
    All,
    /// The calls only.
    Audio,
    /// The camera streams only.
    Video,
}

impl Lanes {
    /// True for the default.
    pub fn is_all(&self) -> bool {
        *self == Lanes::All
    }
    /// Whether the audio lane runs.
    pub fn audio(self) -> bool {
        self != Lanes::Video
    }
    /// Whether the video lane runs.
    pub fn video(self) -> bool {
        self != Lanes::Audio
    }
}

/// Per-profile settings of the vision lane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoKnobs {
    /// Detector model (`yolov8n`, `yolov8s-person`), or the remote model's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model input as `[width, height]` (multiples of 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<[u32; 2]>,
    /// ONNX Runtime intra-op threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// `latest` or `queue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::frame::FramePolicy>,
    /// Camera streams in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    /// Per-frame deadline from capture, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<f64>,
    /// Minimum detection score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<f32>,
}

impl VideoKnobs {
    /// True when the profile sets none.
    pub fn is_empty(&self) -> bool {
        *self == VideoKnobs::default()
    }
}

/// Per-profile settings of local models, so profiles can compare model sizes, thread counts
/// and decoding settings on one scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalKnobs {
    /// Whisper model (`tiny.en`, `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stt_model: Option<String>,
    /// Whisper threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stt_threads: Option<usize>,
    /// Whisper beam size (1 = greedy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beam_size: Option<u32>,
    /// LLM threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_threads: Option<usize>,
    /// TTS threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts_threads: Option<usize>,
}

impl LocalKnobs {
    /// True when the profile sets none.
    pub fn is_empty(&self) -> bool {
        *self == LocalKnobs::default()
    }
}

fn default_endpointing_ms() -> u32 {
    500
}
fn default_endpointing() -> Endpointing {
    Endpointing::Stt
}
fn default_tts_start() -> TtsStart {
    TtsStart::FirstSentence
}
fn yes() -> bool {
    true
}

impl Profile {
    /// A middle-of-the-road profile, used when a scenario names none.
    pub fn balanced() -> Profile {
        Profile {
            name: "balanced".into(),
            endpointing: Endpointing::Stt,
            endpointing_ms: 500,
            utterance_end_ms: Some(1000),
            interim_results: true,
            tts_start: TtsStart::FirstSentence,
            tts_input: TtsInput::Sentences,
            tts_streaming: true,
            connection_reuse: true,
            llm_streaming: true,
            vad_threshold: None,
            local: LocalKnobs::default(),
            video: VideoKnobs::default(),
            lanes: Lanes::All,
            tool_cache: ToolCache::None,
            tool_cache_ttl_s: default_tool_cache_ttl_s(),
        }
    }
}
