//! One user turn's state, and how it becomes a [`TurnTimeline`] and one [`SpanRecord`] per
//! stage.

use std::sync::Arc;

use crate::timing::{
    CallLabels, Outcome, SpanRecord, Stage, StageError, TurnTimeline, Units, diff_ns,
};

/// What the listening side (endpointing + STT) learned about a turn.
#[derive(Debug, Clone, Default)]
pub(super) struct Heard {
    pub start_scheduled_ns: u64,
    pub end_scheduled_ns: u64,
    pub audio_ms: f64,
    pub reference: String,
    pub eos_ns: Option<u64>,
    pub first_stt_output_ns: Option<u64>,
    pub final_ns: Option<u64>,
    pub segments: Vec<String>,
    pub finalize_sent: bool,
    pub error: Option<StageError>,
}

impl Heard {
    pub fn transcript(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the answering side (LLM + TTS) did for a turn.
#[derive(Debug, Clone, Default)]
pub(super) struct Answered {
    pub llm_queued_ns: Option<u64>,
    pub llm_queue_wait_ns: Option<u64>,
    pub llm_sent_ns: Option<u64>,
    pub llm_first_token_ns: Option<u64>,
    pub llm_end_ns: Option<u64>,
    pub tokens: u64,
    pub reply: String,
    pub llm_error: Option<StageError>,
    pub first_sentence_ns: Option<u64>,
    pub tts_sent_ns: Option<u64>,
    pub tts_first_byte_ns: Option<u64>,
    pub tts_first_audible_ns: Option<u64>,
    pub tts_done_ns: Option<u64>,
    pub tts_bytes: u64,
    pub tts_chars: u64,
    pub tts_audio_ms: f64,
    pub tts_lead_ms: f64,
    pub tts_error: Option<StageError>,
    /// The tool the LLM called, when it called one.
    pub tool: Option<crate::timing::ToolTurn>,
    /// The tool stage's failure.
    pub tool_error: Option<StageError>,
    /// Bytes of the tool's result.
    pub tool_bytes: u64,
}

/// Identity of a turn in results: its call's labels and its index in the call.
#[derive(Debug, Clone)]
pub(super) struct TurnId {
    pub labels: Arc<CallLabels>,
    pub turn: u32,
}

fn stage_outcome(ran: bool, error: &Option<StageError>) -> Outcome {
    match (ran, error) {
        (_, Some(_)) => Outcome::Error,
        (true, None) => Outcome::Ok,
        (false, None) => Outcome::Skipped,
    }
}

/// Builds the turn's timeline and spans. `next_start_ns` is the scheduled start of the next
/// user turn (for barge-in); `speed` converts agent audio to replay time.
pub(super) fn finish(
    id: &TurnId,
    heard: &Heard,
    answered: &Answered,
    next_start_ns: Option<u64>,
    speed: f64,
) -> (TurnTimeline, [SpanRecord; 6]) {
    let anchor = heard.end_scheduled_ns;
    let eos_error = heard
        .eos_ns
        .is_none()
        .then(|| heard.error.clone())
        .flatten();
    let stt_error = heard
        .final_ns
        .is_none()
        .then(|| heard.error.clone())
        .flatten();
    let v2v = answered.tts_first_audible_ns.map(|t| diff_ns(t, anchor));
    let speaking_end = answered.tts_first_audible_ns.map(|t| {
        // Playback from the first audible sample: the leading silence is not speech.
        let audible_ms = (answered.tts_audio_ms - answered.tts_lead_ms).max(0.0);
        let play_ns = (audible_ms * 1e6 / speed) as u64;
        (t + play_ns).max(answered.tts_done_ns.unwrap_or(0))
    });
    let barge_in_ms = match (speaking_end, next_start_ns) {
        (Some(end), Some(next)) if end > next => Some((end - next) as f64 / 1e6),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    let first_error = [
        &eos_error,
        &stt_error,
        &answered.llm_error,
        &answered.tool_error,
        &answered.tts_error,
    ]
    .into_iter()
    .find_map(|e| e.clone())
    .or_else(|| heard.error.clone());
    let ok = first_error.is_none() && answered.tts_first_audible_ns.is_some();
    let labels = &id.labels;
    let timeline = TurnTimeline {
        run: labels.run.clone(),
        scenario: labels.scenario.clone(),
        profile: labels.profile.clone(),
        call: labels.call.clone(),
        iteration: labels.iteration,
        turn: id.turn,
        user_start_scheduled_ns: heard.start_scheduled_ns,
        user_end_scheduled_ns: anchor,
        speech_end_detected_ns: heard.eos_ns,
        final_transcript_ns: heard.final_ns,
        llm_queued_ns: answered.llm_queued_ns,
        llm_queue_wait_ns: answered.llm_queue_wait_ns,
        llm_request_sent_ns: answered.llm_sent_ns,
        llm_first_token_ns: answered.llm_first_token_ns,
        first_sentence_ns: answered.first_sentence_ns,
        tts_request_sent_ns: answered.tts_sent_ns,
        tts_first_byte_ns: answered.tts_first_byte_ns,
        tts_first_audible_ns: answered.tts_first_audible_ns,
        tts_done_ns: answered.tts_done_ns,
        voice_to_voice_ns: v2v,
        agent_audio_ms: answered.tts_sent_ns.map(|_| answered.tts_audio_ms),
        barge_in_ms,
        reference: Some(heard.reference.clone()),
        transcript: heard.final_ns.map(|_| heard.transcript()),
        reply: answered.llm_sent_ns.map(|_| answered.reply.clone()),
        outcome: if ok { Outcome::Ok } else { Outcome::Error },
        error: first_error.clone(),
        agent: None,
        tool: answered.tool.clone(),
    };

    let span = |stage: Stage| SpanRecord::new(labels, id.turn, stage, anchor);

    let mut endpoint = span(Stage::Endpoint);
    endpoint.start_ns = Some(anchor);
    endpoint.first_output_ns = heard.eos_ns;
    endpoint.end_ns = heard.eos_ns;
    endpoint.latency_ns = heard.eos_ns.map(|t| diff_ns(t, anchor));
    endpoint.outcome = if heard.eos_ns.is_some() {
        Outcome::Ok
    } else {
        Outcome::Error
    };
    endpoint.error = eos_error.clone().or_else(|| {
        heard.eos_ns.is_none().then(|| {
            StageError::new(
                crate::timing::ErrorKind::NoSpeechEnd,
                "no end of speech detected",
            )
        })
    });

    let mut stt = span(Stage::Stt);
    stt.start_ns = Some(heard.start_scheduled_ns);
    stt.first_output_ns = heard.first_stt_output_ns;
    stt.end_ns = heard.final_ns;
    stt.latency_ns = heard.final_ns.map(|t| diff_ns(t, anchor));
    stt.units = Units {
        audio_ms: Some(heard.audio_ms),
        chars: heard
            .final_ns
            .map(|_| heard.transcript().chars().count() as u64),
        ..Units::default()
    };
    stt.outcome = stage_outcome(heard.final_ns.is_some(), &stt_error);
    stt.error = stt_error;
    if stt.outcome == Outcome::Skipped {
        stt.outcome = Outcome::Error;
        stt.error = Some(StageError::new(
            crate::timing::ErrorKind::NoTranscript,
            "no final transcript for this turn",
        ));
    }

    let mut llm = span(Stage::Llm);
    if let Some(final_ns) = heard.final_ns {
        llm.scheduled_ns = final_ns;
    }
    llm.start_ns = answered.llm_sent_ns;
    llm.first_output_ns = answered.llm_first_token_ns;
    llm.end_ns = answered.llm_end_ns;
    llm.latency_ns = answered
        .llm_first_token_ns
        .map(|t| diff_ns(t, llm.scheduled_ns));
    llm.units = Units {
        tokens: answered.llm_sent_ns.map(|_| answered.tokens),
        chars: answered
            .llm_sent_ns
            .map(|_| answered.reply.chars().count() as u64),
        ..Units::default()
    };
    llm.outcome = stage_outcome(answered.llm_sent_ns.is_some(), &answered.llm_error);
    llm.error = answered.llm_error.clone();

    let mut tool = span(Stage::Tool);
    if let Some(t) = &answered.tool {
        tool.scheduled_ns = t.call_ns.unwrap_or(llm.scheduled_ns);
        tool.start_ns = t.sent_ns.or(t.call_ns);
        tool.first_output_ns = t.result_ns;
        tool.end_ns = t.result_ns;
        tool.latency_ns = t.result_ns.map(|r| diff_ns(r, tool.scheduled_ns));
        tool.units = Units {
            bytes: t.result_ns.map(|_| answered.tool_bytes),
            chars: Some(t.arguments.chars().count() as u64),
            ..Units::default()
        };
        tool.cache = t.cache;
    }
    tool.outcome = stage_outcome(answered.tool.is_some(), &answered.tool_error);
    tool.error = answered.tool_error.clone();

    let mut tts = span(Stage::Tts);
    tts.scheduled_ns = answered.first_sentence_ns.unwrap_or(llm.scheduled_ns);
    tts.start_ns = answered.tts_sent_ns;
    tts.first_output_ns = answered.tts_first_audible_ns;
    tts.end_ns = answered.tts_done_ns;
    tts.latency_ns = answered
        .tts_first_audible_ns
        .map(|t| diff_ns(t, tts.scheduled_ns));
    tts.units = Units {
        audio_ms: answered.tts_sent_ns.map(|_| answered.tts_audio_ms),
        bytes: answered.tts_sent_ns.map(|_| answered.tts_bytes),
        chars: answered.tts_sent_ns.map(|_| answered.tts_chars),
        ..Units::default()
    };
    tts.outcome = stage_outcome(answered.tts_sent_ns.is_some(), &answered.tts_error);
    tts.error = answered.tts_error.clone();

    let mut turn = span(Stage::Turn);
    turn.start_ns = Some(anchor);
    turn.first_output_ns = answered.tts_first_audible_ns;
    turn.end_ns = answered.tts_done_ns;
    turn.latency_ns = v2v;
    turn.units = Units {
        audio_ms: answered.tts_sent_ns.map(|_| answered.tts_audio_ms),
        ..Units::default()
    };
    turn.outcome = timeline.outcome;
    turn.error = first_error;

    (timeline, [endpoint, stt, llm, tool, tts, turn])
}
