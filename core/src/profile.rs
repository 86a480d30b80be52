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
    /// Silence (ms) required before the end of speech is declared.
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
    /// Use the TTS streaming endpoint (else the whole-body endpoint).
    #[serde(default = "yes")]
    pub tts_streaming: bool,
    /// Reuse HTTP connections across requests (else a fresh connection per request).
    #[serde(default = "yes")]
    pub connection_reuse: bool,
    /// Stream the LLM's reply (else wait for the whole completion).
    #[serde(default = "yes")]
    pub llm_streaming: bool,
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
            tts_streaming: true,
            connection_reuse: true,
            llm_streaming: true,
        }
    }
}
