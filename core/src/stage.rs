//! The streaming stages of a voice agent, each behind a small trait.
//!
//! Backends only move bytes and report what arrived; they never read the clock. The
//! pipeline timestamps every event as it sees it, so every backend is timed the same way.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::audio::Container;
use crate::timing::StageError;

/// What a speech-to-text stream needs to know about the call it transcribes.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The dataset's call id (sent as the request's tag).
    pub call_id: String,
    /// Sample rate of the audio that will be sent.
    pub sample_rate: u32,
    /// The session (`<call>#<iteration>`), sent as [`crate::backends::SESSION_HEADER`].
    pub session: String,
}

/// Options of one speech-to-text stream, set by the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct SttOptions {
    /// Ask for interim (partial) results.
    pub interim_results: bool,
    /// Server-side endpointing silence in ms; `None` disables it.
    pub endpointing_ms: Option<u32>,
    /// Ask for an `UtteranceEnd` message after this much silence.
    pub utterance_end_ms: Option<u32>,
}

/// Something the speech-to-text stream reported.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// A transcript of a span of the audio.
    Transcript {
        /// The text.
        text: String,
        /// Final for this span of audio (it will not be revised).
        is_final: bool,
        /// The service's endpointing decided the speaker finished.
        speech_final: bool,
        /// Sent in answer to a finalize request.
        from_finalize: bool,
        /// Start of the covered audio (ms from the start of the stream).
        audio_start_ms: f64,
        /// End of the covered audio (ms from the start of the stream).
        audio_end_ms: f64,
    },
    /// The service saw enough silence after the last word to end the utterance.
    UtteranceEnd {
        /// End of the last word (ms from the start of the stream).
        last_word_end_ms: f64,
    },
    /// The service detected the start of speech.
    SpeechStarted {
        /// Where (ms from the start of the stream).
        at_ms: f64,
    },
    /// Stream metadata; carries nothing the pipeline times.
    Metadata,
}

/// The sending half of a speech-to-text stream.
#[async_trait]
pub trait SttSender: Send {
    /// Sends one frame of 16-bit mono PCM.
    async fn send_audio(&mut self, pcm: &[i16]) -> Result<(), StageError>;
    /// Asks the service to finalize what it has heard so far.
    async fn finalize(&mut self) -> Result<(), StageError>;
    /// Keeps an idle stream open.
    async fn keep_alive(&mut self) -> Result<(), StageError>;
    /// Tells the service no more audio will come.
    async fn close(&mut self) -> Result<(), StageError>;
}

/// The receiving half of a speech-to-text stream.
#[async_trait]
pub trait SttReceiver: Send {
    /// The next event; `None` when the service closed the stream normally.
    async fn next_event(&mut self) -> Option<Result<SttEvent, StageError>>;
}

/// A streaming speech-to-text service: one stream per call.
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// The backend's name in results.
    fn name(&self) -> &str;
    /// Opens a stream for one call.
    async fn open(
        &self,
        call: &CallInfo,
        options: &SttOptions,
    ) -> Result<(Box<dyn SttSender>, Box<dyn SttReceiver>), StageError>;
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// One request to the language model.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    /// The conversation so far, ending with the user's turn.
    pub messages: Vec<ChatMessage>,
    /// Stream the reply token by token.
    pub stream: bool,
    /// Reuse a pooled connection (else open a new one).
    pub reuse_connection: bool,
    /// The session (`<call>#<iteration>`).
    pub session: String,
    /// Functions the model may call (OpenAI's `tools` array), when the run has tools.
    pub tools: Option<serde_json::Value>,
    /// The second round of a tool turn: the model's call and the tool's result, appended to
    /// `messages` as the assistant's `tool_calls` message and a `tool` message.
    pub tool_exchange: Option<ToolExchange>,
}

/// A function call the model made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    /// The call's id (`call_…`), which the tool's result refers to.
    pub id: String,
    /// The function.
    pub name: String,
    /// Its arguments as streamed (JSON text, not checked).
    pub arguments: String,
}

/// A tool call and its result, for the second LLM round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolExchange {
    /// What the model called.
    pub call: ToolCall,
    /// What the tool returned (JSON text).
    pub result: String,
}

/// A reply arriving token by token.
#[async_trait]
pub trait TokenStream: Send {
    /// The next piece of content; `None` when the reply is complete.
    async fn next_token(&mut self) -> Option<Result<String, StageError>>;
    /// Completion tokens as counted by the server, when it said.
    fn usage_tokens(&self) -> Option<u64>;
    /// The function calls the reply made, complete once `next_token` has returned `None`
    /// (a model without function calling makes none).
    fn tool_calls(&mut self) -> Vec<ToolCall> {
        Vec::new()
    }
}

/// A chat language model.
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// The backend's name in results.
    fn name(&self) -> &str;
    /// Sends the request; returns once the response has started (status received).
    async fn start(&self, request: &LlmRequest) -> Result<Box<dyn TokenStream>, StageError>;
}

/// One request to text-to-speech.
#[derive(Debug, Clone)]
pub struct TtsRequest {
    /// What to say.
    pub text: String,
    /// Use the streaming endpoint.
    pub streaming: bool,
    /// Reuse a pooled connection (else open a new one).
    pub reuse_connection: bool,
    /// The session (`<call>#<iteration>`).
    pub session: String,
}

/// Synthesized audio arriving chunk by chunk.
#[async_trait]
pub trait AudioStream: Send {
    /// The container of the body.
    fn container(&self) -> Container;
    /// The sample rate requested.
    fn sample_rate(&self) -> u32;
    /// The next chunk of the body; `None` when complete.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, StageError>>;
}

/// A text-to-speech service.
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// The backend's name in results.
    fn name(&self) -> &str;
    /// Sends the request; returns once the response has started (status received).
    async fn start(&self, request: &TtsRequest) -> Result<Box<dyn AudioStream>, StageError>;
    /// The backend's way of taking text piece by piece into one utterance (profile knob
    /// `tts_input = "tokens"`); `None` (the default) when it takes whole texts only, and the
    /// pipeline then speaks sentence by sentence.
    fn incremental(&self) -> Option<&dyn IncrementalSpeech> {
        None
    }
}

/// Text-to-speech that takes an utterance's text as it is written (Cartesia's continuations):
/// one context, many pieces of text in, one stream of audio out.
#[async_trait]
pub trait IncrementalSpeech: Send + Sync {
    /// Opens a context; `request.text` is ignored (the text comes through the [`TextSink`]).
    /// Returns once the context can take text.
    async fn open_context(&self, request: &TtsRequest) -> Result<SpeechContext, StageError>;
}

/// An open incremental context: text goes in through `text`, audio comes back on `audio`.
pub struct SpeechContext {
    /// Where the text goes.
    pub text: Box<dyn TextSink>,
    /// The audio of all the text pushed, ending after [`TextSink::finish`].
    pub audio: Box<dyn AudioStream>,
}

/// The text side of an incremental context.
#[async_trait]
pub trait TextSink: Send {
    /// Sends the next piece of text (a token or more; spaces as the LLM wrote them).
    async fn push(&mut self, text: &str) -> Result<(), StageError>;
    /// Says no more text will come, so the service speaks what it still holds and ends.
    async fn finish(&mut self) -> Result<(), StageError>;
}

/// What a local endpointer decided about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began.
    SpeechStart,
    /// Speech ended (after the hangover).
    SpeechEnd,
}

/// A local, frame-by-frame voice activity detector used for endpointing.
pub trait Endpointer: Send {
    /// The backend's name in results.
    fn name(&self) -> &str;
    /// Looks at the next frame; reports a start or end of speech when one is decided.
    fn push(&mut self, frame: &[i16]) -> Option<VadEvent>;
}

/// Makes each call's [`Endpointer`]; one per run, shared by every call (it may hold a model).
pub trait EndpointerFactory: Send + Sync {
    /// The endpointer's name in results.
    fn name(&self) -> &str;
    /// A fresh endpointer for one call, for frames of `frame_ms`, with the profile's
    /// `endpointing_ms` of silence and its `vad_threshold`.
    fn endpointer(&self, frame_ms: u32, profile: &crate::profile::Profile) -> Box<dyn Endpointer>;
}
