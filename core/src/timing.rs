//! The timing model: a timestamp at every stage boundary of every turn, and a span per stage.
//!
//! Every latency is measured from a *scheduled* time taken from the recording (the end of
//! the user's speech, not the moment the harness got round to noticing it), so a stall in
//! the pipeline or the harness shows up in the numbers instead of being hidden
//! (coordinated omission). `docs/metrics.md` documents each field with a timeline diagram.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A stage of the voice pipeline, plus `Turn` for the whole voice-to-voice span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Endpointing / VAD: deciding that the user has finished speaking.
    Endpoint,
    /// Speech-to-text: the final transcript of the turn.
    Stt,
    /// The language model's streamed reply.
    Llm,
    /// Text-to-speech of the reply.
    Tts,
    /// The whole turn: scheduled end of user speech to first audible agent sample.
    Turn,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 5] = [
        Stage::Endpoint,
        Stage::Stt,
        Stage::Llm,
        Stage::Tts,
        Stage::Turn,
    ];

    /// The stage's position in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stage's name as written in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Endpoint => "endpoint",
            Stage::Stt => "stt",
            Stage::Llm => "llm",
            Stage::Tts => "tts",
            Stage::Turn => "turn",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stage ended for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It produced its output.
    Ok,
    /// It failed; the span carries the typed error.
    Error,
    /// It never ran because an earlier stage of the turn failed.
    Skipped,
}

impl Outcome {
    /// The outcome's name as written in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The kind of a stage failure: what the analysis groups errors by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection could not be opened (refused, reset, DNS, TLS).
    Connect,
    /// The server answered with an HTTP error status.
    Http,
    /// No connection or no response status within its timeout.
    Timeout,
    /// The stream started but went silent for longer than the stall timeout.
    Stall,
    /// The stream was cut before it finished.
    Disconnected,
    /// The server sent something that does not follow the protocol.
    Protocol,
    /// The speech-to-text stream never delivered a final transcript for the turn.
    NoTranscript,
    /// Neither the endpointer nor the STT ever declared the end of the user's speech.
    NoSpeechEnd,
    /// The TTS stream completed without a single audible sample.
    Inaudible,
    /// The stage's task ended abnormally before finishing.
    Cancelled,
    /// A local model failed to run (inference error, bad input to the model).
    Inference,
}

impl ErrorKind {
    /// The kind's name as written in results.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Http => "http",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Stall => "stall",
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::Protocol => "protocol",
            ErrorKind::NoTranscript => "no_transcript",
            ErrorKind::NoSpeechEnd => "no_speech_end",
            ErrorKind::Inaudible => "inaudible",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Inference => "inference",
        }
    }
}

/// A typed stage failure, recorded on the turn's span. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct StageError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// HTTP status, when the server sent one.
    pub status: Option<u16>,
    /// Human-readable detail (no keys, no request bodies).
    pub message: String,
}

impl StageError {
    /// A failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> StageError {
        StageError {
            kind,
            status: None,
            message: message.into(),
        }
    }

    /// An HTTP error status.
    pub fn http(status: u16, message: impl Into<String>) -> StageError {
        StageError {
            kind: ErrorKind::Http,
            status: Some(status),
            message: message.into(),
        }
    }
}

/// Work a stage did for a turn, in the units that make rates comparable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Units {
    /// Milliseconds of audio (user audio for STT, agent audio for TTS).
    pub audio_ms: Option<f64>,
    /// Tokens streamed by the LLM.
    pub tokens: Option<u64>,
    /// Bytes received.
    pub bytes: Option<u64>,
    /// Characters of text (transcript for STT, reply for LLM and TTS).
    pub chars: Option<u64>,
}

/// One stage of one turn: the row of `spans.parquet`.
///
/// All `*_ns` fields are nanoseconds since the run's epoch. `latency_ns` is the stage's
/// headline latency as defined in `docs/metrics.md`, always measured from `scheduled_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Run id.
    pub run: String,
    /// Scenario name.
    pub scenario: String,
    /// Profile name.
    pub profile: String,
    /// Call id from the dataset.
    pub call: String,
    /// Which replay of the dataset this call belongs to (calls may repeat).
    pub iteration: u32,
    /// Turn index within the call (0-based).
    pub turn: u32,
    /// Stage.
    pub stage: Stage,
    /// Backend that served the stage (`deepgram`, `openai`, `elevenlabs`, `energy_vad`, `pipeline`).
    pub backend: String,
    /// When the stage's input was due: for endpoint, STT and the turn the recorded end of
    /// user speech; for the LLM the final transcript; for TTS the first sentence ready.
    pub scheduled_ns: u64,
    /// When the stage started work for this turn (request sent, first audio frame sent).
    pub start_ns: Option<u64>,
    /// First output (first interim, first token, first audible sample).
    pub first_output_ns: Option<u64>,
    /// Last output (final transcript, last token, last audio byte).
    pub end_ns: Option<u64>,
    /// The stage's headline latency (signed: an endpoint may fire before the labelled end).
    pub latency_ns: Option<i64>,
    /// Units of work.
    pub units: Units,
    /// How the stage ended.
    pub outcome: Outcome,
    /// The error, when `outcome` is `Error` (none when `Skipped`: the turn span says why).
    pub error: Option<StageError>,
}

/// What every span of one call shares: its identity and the backend serving each stage.
///
/// Made once per call and shared by reference count, so recording a span copies no string
/// (the recorder's hot path allocates nothing; see [`crate::recorder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLabels {
    /// Run id.
    pub run: String,
    /// Scenario name.
    pub scenario: String,
    /// Profile name.
    pub profile: String,
    /// Call id from the dataset.
    pub call: String,
    /// Which replay of the dataset this call belongs to.
    pub iteration: u32,
    /// The backend serving each stage, in [`Stage::ALL`] order (`pipeline` for the turn).
    pub backends: [String; 5],
}

/// One stage of one turn as the pipeline records it: a [`Span`] whose strings are the
/// call's shared [`CallLabels`]. [`SpanRecord::to_span`] makes the row of `spans.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The call's labels.
    pub labels: Arc<CallLabels>,
    /// Turn index within the call (0-based).
    pub turn: u32,
    /// Stage.
    pub stage: Stage,
    /// See [`Span::scheduled_ns`].
    pub scheduled_ns: u64,
    /// See [`Span::start_ns`].
    pub start_ns: Option<u64>,
    /// See [`Span::first_output_ns`].
    pub first_output_ns: Option<u64>,
    /// See [`Span::end_ns`].
    pub end_ns: Option<u64>,
    /// See [`Span::latency_ns`].
    pub latency_ns: Option<i64>,
    /// Units of work.
    pub units: Units,
    /// How the stage ended.
    pub outcome: Outcome,
    /// The error, when `outcome` is `Error`.
    pub error: Option<StageError>,
}

impl SpanRecord {
    /// A skipped span of `stage` for turn `turn`, scheduled at `scheduled_ns`, to be filled in.
    pub fn new(labels: &Arc<CallLabels>, turn: u32, stage: Stage, scheduled_ns: u64) -> Self {
        SpanRecord {
            labels: Arc::clone(labels),
            turn,
            stage,
            scheduled_ns,
            start_ns: None,
            first_output_ns: None,
            end_ns: None,
            latency_ns: None,
            units: Units::default(),
            outcome: Outcome::Skipped,
            error: None,
        }
    }

    /// The backend that served this span's stage.
    pub fn backend(&self) -> &str {
        &self.labels.backends[self.stage.index()]
    }

    /// The result row, with the labels written out.
    pub fn to_span(&self) -> Span {
        let l = &*self.labels;
        Span {
            run: l.run.clone(),
            scenario: l.scenario.clone(),
            profile: l.profile.clone(),
            call: l.call.clone(),
            iteration: l.iteration,
            turn: self.turn,
            stage: self.stage,
            backend: self.backend().to_string(),
            scheduled_ns: self.scheduled_ns,
            start_ns: self.start_ns,
            first_output_ns: self.first_output_ns,
            end_ns: self.end_ns,
            latency_ns: self.latency_ns,
            units: self.units.clone(),
            outcome: self.outcome,
            error: self.error.clone(),
        }
    }
}

/// Every stage boundary of one turn, in nanoseconds since the epoch: the row of `turns.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnTimeline {
    /// Run id.
    pub run: String,
    /// Scenario name.
    pub scenario: String,
    /// Profile name.
    pub profile: String,
    /// Call id.
    pub call: String,
    /// Replay iteration.
    pub iteration: u32,
    /// Turn index within the call.
    pub turn: u32,
    /// Scheduled start of the user's speech (from the recording).
    pub user_start_scheduled_ns: u64,
    /// Scheduled end of the user's speech: the anchor of every latency of the turn.
    pub user_end_scheduled_ns: u64,
    /// End of speech detected (VAD or the STT's endpointing).
    pub speech_end_detected_ns: Option<u64>,
    /// Final transcript received.
    pub final_transcript_ns: Option<u64>,
    /// The LLM request was ready: the transcript final and handed to the call's answering
    /// side, which sends one LLM request at a time (each needs the previous reply).
    #[serde(default)]
    pub llm_queued_ns: Option<u64>,
    /// How long the ready request waited for the same call's previous LLM request to finish
    /// (0 when the answering side was free): the agent's queueing, the system's time and not
    /// latlab's. The rest of `llm_request_sent_ns − llm_queued_ns` is latlab's hand-over.
    #[serde(default)]
    pub llm_queue_wait_ns: Option<u64>,
    /// LLM request sent (after any queue wait).
    pub llm_request_sent_ns: Option<u64>,
    /// LLM first content token received.
    pub llm_first_token_ns: Option<u64>,
    /// First complete sentence ready to be spoken (or the whole reply, per profile).
    pub first_sentence_ns: Option<u64>,
    /// First TTS request sent.
    pub tts_request_sent_ns: Option<u64>,
    /// First byte of TTS audio (including container headers).
    pub tts_first_byte_ns: Option<u64>,
    /// First audible agent sample: after headers and leading silence.
    pub tts_first_audible_ns: Option<u64>,
    /// Last TTS byte received.
    pub tts_done_ns: Option<u64>,
    /// Voice-to-voice latency: first audible sample − scheduled end of user speech.
    pub voice_to_voice_ns: Option<i64>,
    /// Agent audio received (ms of audio).
    pub agent_audio_ms: Option<f64>,
    /// How long the agent was still speaking when the next recorded user turn began.
    pub barge_in_ms: Option<f64>,
    /// What the user said, according to the dataset (the reference for word error rate).
    #[serde(default)]
    pub reference: Option<String>,
    /// What the STT heard.
    pub transcript: Option<String>,
    /// What the agent said.
    pub reply: Option<String>,
    /// Turn outcome: ok only when every stage was ok.
    pub outcome: Outcome,
    /// The first error of the turn.
    pub error: Option<StageError>,
}

/// Receives spans and turn timelines as turns complete. Implemented by the harness's sinks
/// (on a [`crate::recorder::SpanRecorder`], which allocates nothing on this path).
pub trait SpanSink: Send + Sync {
    /// One turn is complete (successfully or not): its timeline and one span per stage, in
    /// [`Stage::ALL`] order.
    fn record_turn(&self, timeline: TurnTimeline, spans: [SpanRecord; 5]);

    /// Frame pacing: how late one audio frame left relative to its schedule.
    fn record_pacing(&self, _lag_ns: u64) {}

    /// The endpointer declared the end of speech `lag_ns` after the frame that completed it
    /// was due: latlab's own share of a VAD-endpointed turn's endpoint latency.
    fn record_endpoint_lag(&self, _lag_ns: u64) {}

    /// Frame pacing of several frames at once (the feeder hands over a call's lags in
    /// batches, so frames do not contend for a sink's lock).
    fn record_pacing_batch(&self, lags_ns: &[u64]) {
        for &lag in lags_ns {
            self.record_pacing(lag);
        }
    }
}

/// Signed difference `a − b` of two epoch timestamps.
pub fn diff_ns(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}
