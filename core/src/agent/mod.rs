//! Calling a running voice agent as its caller, over a telephony-style media stream.
//!
//! latlab dials the agent (a WebSocket server), streams the recorded caller's audio on the
//! recording's schedule with the run's pacer, keeps listening between turns, and records
//! everything the agent sends with its arrival time. What the caller hears is reconstructed
//! from those arrivals ([`ear`]) and every per-turn metric is measured there, at the caller's
//! ear: the agent's own metrics miss transport, buffering, playout and leading silence.

use crate::backends::ApiKey;

mod call;
pub mod codec;
pub mod ear;
pub mod protocol;

pub use call::{call_sid, run_agent_call};

/// The media-stream protocol an agent is called over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Twilio Media Streams: JSON events, base64 8 kHz μ-law ([`protocol::TwilioMessage`]).
    Twilio,
    /// Binary 16-bit little-endian PCM at a configured rate; `{"event":"clear"}` text.
    Pcm,
}

impl Protocol {
    /// The protocol's name as written in results and scenarios.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Twilio => "twilio",
            Protocol::Pcm => "pcm",
        }
    }
}

/// The agent a scenario calls.
#[derive(Debug, Clone)]
pub struct AgentTarget {
    /// Its name in results (every span's backend).
    pub name: String,
    /// The WebSocket URL to dial (`ws://` or `wss://`).
    pub url: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The PCM protocol's sample rate (Twilio is always 8 kHz).
    pub pcm_rate: u32,
    /// Sent as `Authorization: Bearer …` when set; never recorded.
    pub api_key: Option<ApiKey>,
    /// How long dialing may take.
    pub connect_timeout_ms: u64,
    /// How long after the caller's end of speech a turn without an audible reply is dead air.
    pub answer_timeout_ms: u64,
    /// When set, each turn after the first starts this long after the previous reply became
    /// audible at the caller's ear, so that the caller talks over the agent.
    pub barge_in_after_ms: Option<u64>,
}

impl AgentTarget {
    /// The wire's sample rate.
    pub fn sample_rate(&self) -> u32 {
        match self.protocol {
            Protocol::Twilio => protocol::TWILIO_RATE,
            Protocol::Pcm => self.pcm_rate,
        }
    }

    /// The URL as results may show it: scheme, host, port and path, no query or credentials.
    pub fn public_url(&self) -> String {
        crate::backends::public_url(&self.url)
    }
}
