//! The column names of the results tables (`spans.parquet`, `turns.parquet`). The Parquet
//! sinks write exactly [`SPANS`] and [`TURNS`], in that order; the analysis selects by these
//! constants. Columns added after the first version are listed in [`ADDED`]: a reader treats
//! them as null when an older file lacks them.

/// Run id.
pub const RUN: &str = "run";
/// Scenario name.
pub const SCENARIO: &str = "scenario";
/// Profile name.
pub const PROFILE: &str = "profile";
/// Call id from the dataset.
pub const CALL: &str = "call";
/// Replay iteration of the call.
pub const ITERATION: &str = "iteration";
/// Turn index within the call.
pub const TURN: &str = "turn";
/// Stage name ([`crate::span::Stage::as_str`]).
pub const STAGE: &str = "stage";
/// Backend that served the stage.
pub const BACKEND: &str = "backend";
/// When the stage's input was due (ns since the epoch).
pub const SCHEDULED_NS: &str = "scheduled_ns";
/// When the stage started work.
pub const START_NS: &str = "start_ns";
/// First output.
pub const FIRST_OUTPUT_NS: &str = "first_output_ns";
/// Last output.
pub const END_NS: &str = "end_ns";
/// The stage's headline latency, from `scheduled_ns`.
pub const LATENCY_NS: &str = "latency_ns";
/// Milliseconds of audio.
pub const AUDIO_MS: &str = "audio_ms";
/// LLM tokens.
pub const TOKENS: &str = "tokens";
/// Bytes received.
pub const BYTES: &str = "bytes";
/// Characters of text.
pub const CHARS: &str = "chars";
/// Outcome name ([`crate::span::Outcome::as_str`]).
pub const OUTCOME: &str = "outcome";
/// Error kind name ([`crate::span::ErrorKind::as_str`]), when the outcome is an error.
pub const ERROR_KIND: &str = "error_kind";
/// HTTP status of the error, when the server sent one.
pub const ERROR_STATUS: &str = "error_status";
/// The error's message.
pub const ERROR_MESSAGE: &str = "error_message";

/// Scheduled start of the user's speech.
pub const USER_START_SCHEDULED_NS: &str = "user_start_scheduled_ns";
/// Scheduled end of the user's speech: the anchor of every latency of the turn.
pub const USER_END_SCHEDULED_NS: &str = "user_end_scheduled_ns";
/// End of speech detected.
pub const SPEECH_END_DETECTED_NS: &str = "speech_end_detected_ns";
/// Final transcript received.
pub const FINAL_TRANSCRIPT_NS: &str = "final_transcript_ns";
/// The LLM request was ready (handed to the call's answering side).
pub const LLM_QUEUED_NS: &str = "llm_queued_ns";
/// How long the ready LLM request waited for the call's previous one (a duration, ns).
pub const LLM_QUEUE_WAIT_NS: &str = "llm_queue_wait_ns";
/// LLM request sent.
pub const LLM_REQUEST_SENT_NS: &str = "llm_request_sent_ns";
/// LLM first content token.
pub const LLM_FIRST_TOKEN_NS: &str = "llm_first_token_ns";
/// First sentence ready to speak.
pub const FIRST_SENTENCE_NS: &str = "first_sentence_ns";
/// First TTS request sent.
pub const TTS_REQUEST_SENT_NS: &str = "tts_request_sent_ns";
/// First TTS byte.
pub const TTS_FIRST_BYTE_NS: &str = "tts_first_byte_ns";
/// First audible agent sample.
pub const TTS_FIRST_AUDIBLE_NS: &str = "tts_first_audible_ns";
/// Last TTS byte.
pub const TTS_DONE_NS: &str = "tts_done_ns";
/// Voice-to-voice latency.
pub const VOICE_TO_VOICE_NS: &str = "voice_to_voice_ns";
/// Agent audio received, ms.
pub const AGENT_AUDIO_MS: &str = "agent_audio_ms";
/// How long the agent was still speaking when the next user turn began, ms.
pub const BARGE_IN_MS: &str = "barge_in_ms";
/// What the user said, per the dataset.
pub const REFERENCE: &str = "reference";
/// What the STT heard.
pub const TRANSCRIPT: &str = "transcript";
/// What the agent said.
pub const REPLY: &str = "reply";

/// Reply's first sample at the caller's ear (agent runs).
pub const AGENT_FIRST_HEARD_NS: &str = "agent_first_heard_ns";
/// Reply's leading silence at the ear, ms.
pub const AGENT_LEAD_MS: &str = "agent_lead_ms";
/// Reply's length at the ear, first to last audible sample, ms.
pub const AGENT_REPLY_MS: &str = "agent_reply_ms";
/// Playback gaps (playout ran dry ≥ 100 ms) inside the reply.
pub const AGENT_GAPS: &str = "agent_gaps";
/// Their total, ms.
pub const AGENT_GAP_MS: &str = "agent_gap_ms";
/// Caller's first sample → agent's audio stopped, on a turn that talked over the agent (ns).
pub const INTERRUPTION_NS: &str = "interruption_ns";
/// How the interrupted audio stopped ([`crate::agent::Interruption::as_str`]).
pub const INTERRUPTION_BY: &str = "interruption_by";
/// The agent started speaking in a pause inside the caller's turn.
pub const FALSE_CUTOFF: &str = "false_cutoff";
/// Agent audio heard while the caller spoke, from a reply started during the turn, ms.
pub const TALK_OVER_MS: &str = "talk_over_ms";
/// No audible reply within the answer timeout.
pub const DEAD_AIR: &str = "dead_air";
/// The agent's own latency figure for the turn (ns), from its self-report.
pub const AGENT_SELF_NS: &str = "agent_self_ns";

/// On a `tool` span: `hit`, `miss` or `off` ([`crate::tool::CacheOutcome::as_str`]).
pub const CACHE: &str = "cache";
/// The function the LLM called on the turn.
pub const TOOL_NAME: &str = "tool_name";
/// Its arguments (JSON text).
pub const TOOL_ARGUMENTS: &str = "tool_arguments";
/// The tool call complete in the LLM's stream: the tool stage's anchor.
pub const TOOL_CALL_NS: &str = "tool_call_ns";
/// The request went to the tool's API.
pub const TOOL_SENT_NS: &str = "tool_sent_ns";
/// The tool's result was in hand.
pub const TOOL_RESULT_NS: &str = "tool_result_ns";
/// Where the result came from.
pub const TOOL_CACHE: &str = "tool_cache";
/// The second LLM request (with the tool's result) was sent.
pub const LLM2_REQUEST_SENT_NS: &str = "llm2_request_sent_ns";
/// Its first content token.
pub const LLM2_FIRST_TOKEN_NS: &str = "llm2_first_token_ns";
/// The call was the one the dataset expected.
pub const TOOL_MATCHED: &str = "tool_matched";

/// The columns of `spans.parquet`, in file order.
pub const SPANS: [&str; 22] = [
    RUN,
    SCENARIO,
    PROFILE,
    CALL,
    ITERATION,
    TURN,
    STAGE,
    BACKEND,
    SCHEDULED_NS,
    START_NS,
    FIRST_OUTPUT_NS,
    END_NS,
    LATENCY_NS,
    AUDIO_MS,
    TOKENS,
    BYTES,
    CHARS,
    OUTCOME,
    ERROR_KIND,
    ERROR_STATUS,
    ERROR_MESSAGE,
    CACHE,
];

/// The columns of `turns.parquet`, in file order.
pub const TURNS: [&str; 49] = [
    RUN,
    SCENARIO,
    PROFILE,
    CALL,
    ITERATION,
    TURN,
    USER_START_SCHEDULED_NS,
    USER_END_SCHEDULED_NS,
    SPEECH_END_DETECTED_NS,
    FINAL_TRANSCRIPT_NS,
    LLM_QUEUED_NS,
    LLM_QUEUE_WAIT_NS,
    LLM_REQUEST_SENT_NS,
    LLM_FIRST_TOKEN_NS,
    FIRST_SENTENCE_NS,
    TTS_REQUEST_SENT_NS,
    TTS_FIRST_BYTE_NS,
    TTS_FIRST_AUDIBLE_NS,
    TTS_DONE_NS,
    VOICE_TO_VOICE_NS,
    AGENT_AUDIO_MS,
    BARGE_IN_MS,
    REFERENCE,
    TRANSCRIPT,
    REPLY,
    OUTCOME,
    ERROR_KIND,
    ERROR_STATUS,
    ERROR_MESSAGE,
    AGENT_FIRST_HEARD_NS,
    AGENT_LEAD_MS,
    AGENT_REPLY_MS,
    AGENT_GAPS,
    AGENT_GAP_MS,
    INTERRUPTION_NS,
    INTERRUPTION_BY,
    FALSE_CUTOFF,
    TALK_OVER_MS,
    DEAD_AIR,
    AGENT_SELF_NS,
    TOOL_NAME,
    TOOL_ARGUMENTS,
    TOOL_CALL_NS,
    TOOL_SENT_NS,
    TOOL_RESULT_NS,
    TOOL_CACHE,
    LLM2_REQUEST_SENT_NS,
    LLM2_FIRST_TOKEN_NS,
    TOOL_MATCHED,
];

/// The tool columns of `turns.parquet` (null on a turn without a tool call).
pub const TOOL_TURNS: [&str; 9] = [
    TOOL_NAME,
    TOOL_ARGUMENTS,
    TOOL_CALL_NS,
    TOOL_SENT_NS,
    TOOL_RESULT_NS,
    TOOL_CACHE,
    LLM2_REQUEST_SENT_NS,
    LLM2_FIRST_TOKEN_NS,
    TOOL_MATCHED,
];

/// The agent columns of `turns.parquet` (null on a run that built its own pipeline).
pub const AGENT_TURNS: [&str; 11] = [
    AGENT_FIRST_HEARD_NS,
    AGENT_LEAD_MS,
    AGENT_REPLY_MS,
    AGENT_GAPS,
    AGENT_GAP_MS,
    INTERRUPTION_NS,
    INTERRUPTION_BY,
    FALSE_CUTOFF,
    TALK_OVER_MS,
    DEAD_AIR,
    AGENT_SELF_NS,
];

/// Camera stream index (frames table).
pub const STREAM: &str = "stream";
/// Frame index within the stream's replay.
pub const FRAME: &str = "frame";
/// Frame index within the video file.
pub const SOURCE_FRAME: &str = "source_frame";
/// Scheduled capture time of a frame: the anchor of its latency.
pub const CAPTURE_NS: &str = "capture_ns";
/// Preprocessing done.
pub const PREPROCESS_END_NS: &str = "preprocess_end_ns";
/// Inference done.
pub const INFERENCE_END_NS: &str = "inference_end_ns";
/// Postprocessing done: the frame's result.
pub const RESULT_NS: &str = "result_ns";
/// Capture → picked up by the detector (a duration).
pub const QUEUE_WAIT_NS: &str = "queue_wait_ns";
/// Preprocessing duration.
pub const PREPROCESS_NS: &str = "preprocess_ns";
/// Inference duration.
pub const INFERENCE_NS: &str = "inference_ns";
/// Postprocessing duration.
pub const POSTPROCESS_NS: &str = "postprocess_ns";
/// The frame's deadline from capture (a duration).
pub const DEADLINE_NS: &str = "deadline_ns";
/// The frame missed its deadline (late, skipped or failed).
pub const MISSED: &str = "missed";
/// Detections kept after NMS.
pub const DETECTIONS: &str = "detections";
/// Detections matched to a reference box (all classes).
pub const TP: &str = "tp";
/// Detections matched to none (all classes).
pub const FP: &str = "fp";
/// Reference boxes missed (all classes).
pub const FN: &str = "fn";

/// The frames table, in order (one row per [`crate::frame::FrameRecord`]).
pub const FRAMES: [&str; 26] = [
    RUN,
    SCENARIO,
    PROFILE,
    STREAM,
    FRAME,
    SOURCE_FRAME,
    BACKEND,
    CAPTURE_NS,
    START_NS,
    PREPROCESS_END_NS,
    INFERENCE_END_NS,
    RESULT_NS,
    LATENCY_NS,
    QUEUE_WAIT_NS,
    PREPROCESS_NS,
    INFERENCE_NS,
    POSTPROCESS_NS,
    DEADLINE_NS,
    MISSED,
    OUTCOME,
    DETECTIONS,
    TP,
    FP,
    FN,
    ERROR_KIND,
    ERROR_MESSAGE,
];

/// Columns added after the first version of the tables: absent from older files, where
/// readers take them as null.
pub const ADDED: [&str; 23] = [
    LLM_QUEUED_NS,
    LLM_QUEUE_WAIT_NS,
    AGENT_FIRST_HEARD_NS,
    AGENT_LEAD_MS,
    AGENT_REPLY_MS,
    AGENT_GAPS,
    AGENT_GAP_MS,
    INTERRUPTION_NS,
    INTERRUPTION_BY,
    FALSE_CUTOFF,
    TALK_OVER_MS,
    DEAD_AIR,
    AGENT_SELF_NS,
    CACHE,
    TOOL_NAME,
    TOOL_ARGUMENTS,
    TOOL_CALL_NS,
    TOOL_SENT_NS,
    TOOL_RESULT_NS,
    TOOL_CACHE,
    LLM2_REQUEST_SENT_NS,
    LLM2_FIRST_TOKEN_NS,
    TOOL_MATCHED,
];
