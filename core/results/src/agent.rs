//! What an agent run records beyond the voice-to-voice latency every run has: the per-turn
//! measurements at the caller's ear ([`AgentTurn`], carried on [`crate::span::TurnTimeline`]
//! and written as the `agent_*` columns of `turns.parquet`), and the run's [`AgentFacts`].
//!
//! An agent run calls a user's running voice agent over a media stream instead of building
//! the pipeline from STT, LLM and TTS clients; `docs/metrics.md` ("At the caller's ear")
//! defines every field with a timeline.

use serde::{Deserialize, Serialize};

/// How the agent's audio stopped after the caller started talking over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interruption {
    /// A `clear` arrived and the caller's playout was dropped.
    Clear,
    /// The agent stopped sending and its buffered audio ran out.
    Silence,
    /// The agent was still talking when the caller's turn ended: it did not yield.
    Ignored,
}

impl Interruption {
    /// Every way, in order.
    pub const ALL: [Interruption; 3] = [
        Interruption::Clear,
        Interruption::Silence,
        Interruption::Ignored,
    ];

    /// The name as written in results.
    pub const fn as_str(self) -> &'static str {
        match self {
            Interruption::Clear => "clear",
            Interruption::Silence => "silence",
            Interruption::Ignored => "ignored",
        }
    }
}

impl std::str::FromStr for Interruption {
    type Err = crate::span::UnknownName;
    fn from_str(s: &str) -> Result<Interruption, Self::Err> {
        Interruption::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| crate::span::UnknownName {
                what: "interruption",
                name: s.to_string(),
                expected: "clear, silence, ignored".into(),
            })
    }
}

/// One turn of a call to a running agent, measured at the caller's ear: the agent's audio as
/// the caller would hear it, each message played out when it arrived or when the audio before
/// it finished, whichever is later, and a `clear` dropping what had not played.
///
/// The turn's reply is the agent audio whose first audible sample is heard after the caller's
/// scheduled end of speech and before the caller's next turn starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentTurn {
    /// When the reply's first sample (audible or not) reached the caller's ear, ns since the
    /// epoch.
    pub first_heard_ns: Option<u64>,
    /// Leading silence: from the reply's first heard sample to its first audible one (ms).
    pub lead_ms: Option<f64>,
    /// The reply's length at the ear: first to last audible sample (ms), cut short by a `clear`.
    pub reply_ms: Option<f64>,
    /// Playback gaps inside the reply: stretches of at least 100 ms where the caller's playout
    /// ran dry (the agent's audio arrived too late to play continuously).
    pub gaps: u32,
    /// Their total length (ms).
    pub gap_ms: f64,
    /// On a turn that started while the agent was talking: from the caller's first scheduled
    /// sample to the agent's audio stopping at the ear (ns; its last audible sample, or the
    /// `clear` that dropped the rest).
    pub interruption_ns: Option<i64>,
    /// How the interrupted audio stopped.
    pub interruption_by: Option<Interruption>,
    /// The agent started speaking during a pause inside this caller turn (it took a pause for
    /// the end of the turn).
    pub false_cutoff: bool,
    /// Agent audio that started during this caller turn and was heard while the caller was
    /// speaking (ms): the agent talking over the caller.
    pub talk_over_ms: f64,
    /// No audible reply within the answer timeout (the turn's error says so too).
    pub dead_air: bool,
    /// The agent's own figure for this turn's latency, from its self-report, when one was
    /// given and the turn could be aligned with it (ns).
    pub self_ns: Option<i64>,
}

/// The run's agent: what was called and how, in the manifest. Never holds a secret: the URL
/// keeps scheme, host, port and path only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentFacts {
    /// The agent's name from the scenario.
    pub name: String,
    /// `twilio` or `pcm`.
    pub protocol: String,
    /// The agent's URL without query or credentials.
    pub url: String,
    /// The wire's sample rate (Hz).
    pub sample_rate: u32,
    /// How long after the caller's end of speech a turn without an audible reply is dead air.
    pub answer_timeout_ms: u64,
    /// When set, each turn after the first was moved to start this long after the agent's
    /// previous reply became audible, so the caller talks over it.
    pub barge_in_after_ms: Option<u64>,
    /// What the agent said of itself, when a self-report was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_report: Option<SelfReportFacts>,
}

/// How the agent's self-report was lined up with latlab's turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfReportFacts {
    /// Where it came from (a file, or `emulator`).
    pub source: String,
    /// What the agent calls itself (`source` field of its lines, e.g. `pipecat`).
    pub reporter: String,
    /// Lines read.
    pub lines: usize,
    /// Turns given the agent's own figure.
    pub aligned_turns: usize,
    /// Calls whose turn count the agent saw differently from the recording (a false cutoff,
    /// a missed turn), left unaligned rather than guessed.
    pub unaligned_calls: usize,
}

/// One line of an agent's self-report (JSON lines): its own latency figure for one user turn
/// as it counted them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReportLine {
    /// The call id the caller sent (`start.callSid`).
    pub call_sid: String,
    /// The agent's own 0-based count of user turns in the call.
    pub turn: u32,
    /// Who reports (`pipecat`, `emulator`).
    #[serde(default)]
    pub source: String,
    /// Its end-of-user-speech → start-of-reply figure (ms).
    pub latency_ms: f64,
    /// Its per-stage figures (ms), by name.
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, f64>,
}
