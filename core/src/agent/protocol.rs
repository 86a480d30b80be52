//! The messages of the two media-stream protocols an agent is called over.
//!
//! **Twilio Media Streams** (`protocol = "twilio"`): JSON text messages tagged by `event`. The
//! caller (Twilio's side, latlab here) sends `connected`, then `start` (stream and call ids and
//! the media format), then a `media` event every 20 ms with base64 8 kHz μ-law, and `stop` at
//! the end; the agent sends `media` (its speech), `mark` (a label it wants echoed when its audio
//! before it has played) and `clear` (drop the audio not yet played, on barge-in). Field names
//! follow Twilio's documentation (camelCase, numbers as strings).
//!
//! **Binary PCM** (`protocol = "pcm"`): binary messages of 16-bit little-endian mono PCM at the
//! configured rate in both directions; a text message `{"event":"clear"}` (or Vonage's
//! `{"action":"clear"}`) from the agent drops the audio not yet played.

use serde::{Deserialize, Serialize};

/// The media format Twilio announces in `start`.
pub const TWILIO_ENCODING: &str = "audio/x-mulaw";
/// Twilio's sample rate.
pub const TWILIO_RATE: u32 = 8_000;

/// One Twilio Media Streams message, either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum TwilioMessage {
    /// The first message of a stream.
    Connected {
        /// Always `Call`.
        protocol: String,
        /// Protocol version.
        version: String,
    },
    /// The stream's metadata.
    Start {
        /// Message counter (a decimal string).
        #[serde(rename = "sequenceNumber", default)]
        sequence_number: Option<String>,
        /// The metadata.
        start: StartMeta,
        /// The stream id.
        #[serde(rename = "streamSid")]
        stream_sid: String,
    },
    /// Audio.
    Media {
        /// Message counter (caller → agent only).
        #[serde(
            rename = "sequenceNumber",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        sequence_number: Option<String>,
        /// The stream id.
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        /// The audio.
        media: Media,
    },
    /// A label: sent by the agent after audio, echoed by the caller once that audio has played.
    Mark {
        /// Message counter (caller → agent only).
        #[serde(
            rename = "sequenceNumber",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        sequence_number: Option<String>,
        /// The stream id.
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        /// The label.
        mark: MarkName,
    },
    /// Agent → caller: drop every buffered sample not yet played.
    Clear {
        /// The stream id.
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
    },
    /// Caller → agent: the call ended.
    Stop {
        /// Message counter.
        #[serde(
            rename = "sequenceNumber",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        sequence_number: Option<String>,
        /// The stream id.
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
        /// Account and call ids.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop: Option<serde_json::Value>,
    },
}

/// `start.start`: what the stream carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartMeta {
    /// Account id (latlab sends a fixed placeholder; no credential).
    #[serde(default)]
    pub account_sid: String,
    /// The stream id.
    pub stream_sid: String,
    /// The call id: latlab's call id and replay iteration, e.g. `call-01#0`.
    pub call_sid: String,
    /// Tracks carried (`inbound`).
    #[serde(default)]
    pub tracks: Vec<String>,
    /// The audio format.
    pub media_format: MediaFormat,
    /// Free-form parameters (latlab sends `latlab_call` and `latlab_iteration`).
    #[serde(default)]
    pub custom_parameters: serde_json::Map<String, serde_json::Value>,
}

/// `start.mediaFormat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw`.
    pub encoding: String,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    pub channels: u32,
}

/// `media.media`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    /// `inbound` (caller → agent); absent from the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    /// Chunk counter (a decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<String>,
    /// Milliseconds since the stream started (a decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Base64 μ-law bytes.
    pub payload: String,
}

/// `mark.mark`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkName {
    /// The label.
    pub name: String,
}

/// A text message of the binary PCM protocol that clears the caller's playout buffer.
pub fn is_pcm_clear(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
        v.get("event").and_then(|e| e.as_str()) == Some("clear")
            || v.get("action").and_then(|e| e.as_str()) == Some("clear")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_twilio_documentation_examples() {
        let start = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"a":"b"}},"streamSid":"MZ1"}"#;
        let m: TwilioMessage = serde_json::from_str(start).unwrap();
        let TwilioMessage::Start { start, .. } = m else {
            panic!("{m:?}")
        };
        assert_eq!(start.call_sid, "CA1");
        assert_eq!(start.media_format.sample_rate, 8000);
        let media = r#"{"event":"media","streamSid":"MZ1","media":{"payload":"/w=="}}"#;
        assert!(matches!(
            serde_json::from_str::<TwilioMessage>(media).unwrap(),
            TwilioMessage::Media { .. }
        ));
        let clear = r#"{"event":"clear","streamSid":"MZ1"}"#;
        assert!(matches!(
            serde_json::from_str::<TwilioMessage>(clear).unwrap(),
            TwilioMessage::Clear { .. }
        ));
        let out = serde_json::to_string(&TwilioMessage::Connected {
            protocol: "Call".into(),
            version: "1.0.0".into(),
        })
        .unwrap();
        assert_eq!(
            out,
            r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#
        );
        assert!(is_pcm_clear(r#"{"event":"clear"}"#));
        assert!(is_pcm_clear(r#"{"action":"clear"}"#));
        assert!(!is_pcm_clear("clear"));
    }
}
