//! One row of each results table: a [`Span`] per stage of a turn (`spans.jsonl`,
//! `spans.parquet`) and a [`TurnTimeline`] per turn (`turns.jsonl`, `turns.parquet`), with the
//! names they use for stages, outcomes and error kinds.
//!
//! Every `*_ns` field is nanoseconds since the run's one monotonic epoch; every latency is
//! measured from a scheduled (recorded) time, never from when latlab got round to it
//! (`docs/metrics.md`). The pipeline in `latlab-core` fills these; nothing here reads a clock.

use std::fmt;

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
    /// A tool the LLM called (function calling): the call complete in the stream → its result
    /// in hand (from the cache or the tool's API). Skipped on turns without a tool call.
    Tool,
    /// Text-to-speech of the reply.
    Tts,
    /// The whole turn: scheduled end of user speech to first audible agent sample.
    Turn,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Endpoint,
        Stage::Stt,
        Stage::Llm,
        Stage::Tool,
        Stage::Tts,
        Stage::Turn,
    ];

    /// The stage's position in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stage's name as written in results.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Endpoint => "endpoint",
            Stage::Stt => "stt",
            Stage::Llm => "llm",
            Stage::Tool => "tool",
            Stage::Tts => "tts",
            Stage::Turn => "turn",
        }
    }
}

/// The stages' names as written in results, in [`Stage::ALL`] order.
pub const STAGE_NAMES: [&str; 6] = [
    Stage::Endpoint.as_str(),
    Stage::Stt.as_str(),
    Stage::Llm.as_str(),
    Stage::Tool.as_str(),
    Stage::Tts.as_str(),
    Stage::Turn.as_str(),
];

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stage ended for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It produced its output.
    Ok,
    /// It failed; the span carries the typed error.
    Error,
    /// It never ran because an earlier stage of the turn failed.
    #[default]
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
    /// A called agent never answered the turn audibly within the answer timeout (dead air).
    NoAnswer,
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
            ErrorKind::NoAnswer => "no_answer",
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
    /// On a `tool` span: whether its result came from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::tool::CacheOutcome>,
}

/// Every stage boundary of one turn, in nanoseconds since the epoch: the row of `turns.parquet`.
///
/// The default is a turn of nothing: no label, no stage reached, outcome `skipped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Measurements at the caller's ear, on a run that called a running agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::agent::AgentTurn>,
    /// The tool the LLM called on this turn, and the second LLM round that spoke its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<crate::tool::ToolTurn>,
}

/// A name that is not one of a closed set of names (a stage, an outcome, an error kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// What was being named.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names accepted, comma-separated.
    pub expected: String,
}

fn parse_name<T: Copy>(
    what: &'static str,
    name: &str,
    all: &[T],
    as_str: fn(T) -> &'static str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|&v| as_str(v) == name)
        .ok_or_else(|| UnknownName {
            what,
            name: name.to_string(),
            expected: all
                .iter()
                .map(|&v| as_str(v))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl std::str::FromStr for Stage {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Stage, UnknownName> {
        parse_name("stage", s, &Stage::ALL, Stage::as_str)
    }
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Error, Outcome::Skipped];
}

impl std::str::FromStr for Outcome {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Outcome, UnknownName> {
        parse_name("outcome", s, &Outcome::ALL, Outcome::as_str)
    }
}

impl ErrorKind {
    /// Every error kind.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Connect,
        ErrorKind::Http,
        ErrorKind::Timeout,
        ErrorKind::Stall,
        ErrorKind::Disconnected,
        ErrorKind::Protocol,
        ErrorKind::NoTranscript,
        ErrorKind::NoSpeechEnd,
        ErrorKind::Inaudible,
        ErrorKind::Cancelled,
        ErrorKind::Inference,
        ErrorKind::NoAnswer,
    ];
}

impl std::str::FromStr for ErrorKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<ErrorKind, UnknownName> {
        parse_name("error kind", s, &ErrorKind::ALL, ErrorKind::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_serde_form() {
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
        for k in ErrorKind::ALL {
            assert_eq!(k.as_str().parse::<ErrorKind>(), Ok(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        let e = "vad".parse::<Stage>().unwrap_err();
        assert!(
            e.to_string()
                .contains("endpoint, stt, llm, tool, tts, turn"),
            "{e}"
        );
    }
}
