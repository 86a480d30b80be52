//! The pipeline: one call session per recorded call, feeding its audio on the recording's
//! schedule through endpointing and STT, and answering each finished user turn with the
//! LLM and TTS, timestamping every stage boundary.
//!
//! A failing, stalling or disconnecting backend becomes that turn's typed error and the call
//! goes on; every turn of every call ends up in the sink, whatever happened to it.

use std::sync::Arc;

use crate::backends::Timeouts;
use crate::clock::Pacer;
use crate::dataset::Call;
use crate::profile::Profile;
use crate::schedule::CallSchedule;
use crate::stage::{EndpointerFactory, LanguageModel, SpeechToText, TextToSpeech};

mod agent;
mod call;
mod feeder;
mod turn;

pub use call::{CallReport, run_call};

/// The backends a pipeline talks to, shared by all calls of a run.
#[derive(Clone)]
pub struct Backends {
    /// Speech-to-text.
    pub stt: Arc<dyn SpeechToText>,
    /// Language model.
    pub llm: Arc<dyn LanguageModel>,
    /// Text-to-speech.
    pub tts: Arc<dyn TextToSpeech>,
    /// The local endpointer of profiles with `endpointing = "vad"`.
    pub vad: Arc<dyn EndpointerFactory>,
    /// Tools the LLM may call, when the scenario has `[tools]`.
    pub tools: Option<Arc<crate::tools::Tools>>,
    /// The profile's tool-result cache (`tool_cache`), when it has one.
    pub tool_cache: Option<Arc<dyn crate::tools::ToolCacheStore>>,
    /// The cache's key namespace (the run and profile, so profiles never share results).
    pub cache_namespace: String,
    /// The system prompt that starts each conversation.
    pub system_prompt: String,
}

/// Everything one call session needs to know.
#[derive(Clone)]
pub struct CallPlan {
    /// Run id.
    pub run: String,
    /// Scenario name.
    pub scenario: String,
    /// The profile's knobs.
    pub profile: Arc<Profile>,
    /// The recorded call.
    pub call: Arc<Call>,
    /// Its samples.
    pub samples: Arc<Vec<i16>>,
    /// Which replay of the dataset this is.
    pub iteration: u32,
    /// When its frames are due.
    pub schedule: CallSchedule,
    /// Frame length in ms.
    pub frame_ms: u32,
    /// How long after a turn's scheduled end the pipeline waits for its final transcript
    /// before recording `no_transcript`.
    pub transcript_timeout_ms: u64,
    /// Backend timeouts (used for the STT stream's keep-alive and close).
    pub timeouts: Timeouts,
    /// The run's precise frame timer.
    pub pacer: Pacer,
}
