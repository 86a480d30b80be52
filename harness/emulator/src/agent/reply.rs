//! The emulated agent's replies, planned up front: when each chunk leaves, what it carries,
//! and which faults strike it — a pure function of the seed, the call and the turn.

use std::time::Duration;

use rand::RngExt;

use crate::audio::{ms_to_samples, synthesize};
use crate::config::AgentConfig;
use crate::seed::{self, Stream};

use super::SERVICE;

/// Longest reply speech (ms): each reply's audio is made in memory before it is sent.
pub const MAX_REPLY_MS: f64 = 600_000.0;

/// One chunk of a reply and when it leaves, counted from the reply's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// When the chunk is sent, from the reply's start (its first chunk).
    pub at: Duration,
    /// The samples, at the call's wire rate.
    pub samples: Vec<i16>,
}

/// Everything about the reply to one user turn, decided when the turn ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyPlan {
    /// The agent's 0-based count of the user turns it detected in the call.
    pub turn: u64,
    /// From the end-of-turn decision to the first chunk.
    pub response: Duration,
    /// Speech after the leading silence.
    pub speech: Duration,
    /// The audio in chunks, with their send offsets.
    pub chunks: Vec<Chunk>,
    /// The chunk holding the first audible sample (after the leading silence), if any.
    pub first_audible: Option<usize>,
    /// The index of the first chunk sent after a stall of `gap_ms`, if the reply stalls.
    pub gap_before: Option<usize>,
    /// The `never_answer` fault: the turn gets no reply at all.
    pub never_answer: bool,
    /// The `close` fault: close the connection once this many chunks were sent.
    pub close_after: Option<usize>,
    /// The `malformed` fault: the first chunk's message is replaced by invalid text.
    pub malformed: bool,
}

impl ReplyPlan {
    /// The reply's audio length, leading silence included.
    pub fn audio(&self, sample_rate: u32) -> Duration {
        let samples: usize = self.chunks.iter().map(|c| c.samples.len()).sum();
        Duration::from_secs_f64(samples as f64 / f64::from(sample_rate))
    }
}

/// The seed key of turn `turn` of call `call`.
fn turn_key(call: &str, turn: u64) -> Vec<u8> {
    [call.as_bytes(), b"\n", &turn.to_le_bytes()].concat()
}

/// Plans the reply to turn `turn` of call `call` (e.g. `call-01#0`), with audio at
/// `sample_rate` Hz, under `seed`.
pub fn plan_reply(
    seed: u64,
    config: &AgentConfig,
    call: &str,
    turn: u64,
    sample_rate: u32,
) -> ReplyPlan {
    let key = turn_key(call, turn);
    let mut timing = seed::request_rng(seed, SERVICE, &key, Stream::Timing);
    let response = config.response.sample(&mut timing);
    let speech_ms = (config.reply_ms.sample(&mut timing).as_secs_f64() * 1000.0)
        .min(MAX_REPLY_MS)
        .round() as u64;
    let stalls = timing.random::<f64>() < config.gap_probability && config.gap_ms > 0;

    let mut faults = seed::request_rng(seed, SERVICE, &key, Stream::Fault);
    let never_answer = faults.random::<f64>() < config.faults.never_answer;
    let close = faults.random::<f64>() < config.faults.close;
    let malformed = faults.random::<f64>() < config.faults.malformed;

    let mut content = seed::request_rng(seed, SERVICE, &key, Stream::Content);
    let lead = ms_to_samples(sample_rate, u64::from(config.leading_silence_ms));
    let mut audio = synthesize(
        &mut content,
        sample_rate,
        config.leading_silence_ms,
        speech_ms,
    );
    // synthesize adds a tail of silence; the reply is exactly the lead and the speech.
    audio.truncate(lead + ms_to_samples(sample_rate, speech_ms));
    let chunk_len = ms_to_samples(sample_rate, u64::from(config.chunk_ms)).max(1);
    let count = audio.len().div_ceil(chunk_len);
    let gap_before = stalls.then_some(count / 2).filter(|&g| g > 0);
    let chunks = audio
        .chunks(chunk_len)
        .enumerate()
        .map(|(k, samples)| {
            let audio_ms = k as f64 * f64::from(config.chunk_ms);
            let paced_ms = (audio_ms - f64::from(config.prebuffer_ms)).max(0.0) / config.pace;
            let gap_ms = match gap_before {
                Some(g) if k >= g => f64::from(config.gap_ms),
                _ => 0.0,
            };
            Chunk {
                at: Duration::from_secs_f64((paced_ms + gap_ms) / 1000.0),
                samples: samples.to_vec(),
            }
        })
        .collect::<Vec<_>>();
    let first_audible = (lead < audio.len()).then_some(lead / chunk_len);
    ReplyPlan {
        turn,
        response,
        speech: Duration::from_millis(speech_ms),
        close_after: close.then_some((count / 2).max(1)),
        chunks,
        first_audible,
        gap_before,
        never_answer,
        malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::Timing;

    fn config() -> AgentConfig {
        AgentConfig {
            response: Timing::constant(200.0),
            reply_ms: Timing::constant(1000.0),
            ..AgentConfig::default()
        }
    }

    #[test]
    fn chunks_are_paced_and_exact() {
        let plan = plan_reply(1, &config(), "c#0", 0, 8_000);
        assert_eq!(plan.response, Duration::from_millis(200));
        // 60 ms of silence + 1000 ms of speech in 20 ms chunks.
        assert_eq!(plan.chunks.len(), 53);
        assert!(plan.chunks.iter().all(|c| c.samples.len() == 160));
        assert_eq!(plan.chunks[10].at, Duration::from_millis(200));
        assert_eq!(plan.first_audible, Some(3));
        assert!(plan.chunks[2].samples.iter().all(|s| *s == 0));
        assert!(plan.chunks[3].samples[0] != 0);
        assert_eq!(plan.audio(8_000), Duration::from_millis(1060));
        assert!(!plan.never_answer && !plan.malformed && plan.close_after.is_none());
    }

    #[test]
    fn pace_prebuffer_and_gap_shift_the_chunks() {
        let mut c = config();
        c.pace = 2.0;
        c.prebuffer_ms = 100;
        c.gap_probability = 1.0;
        let plan = plan_reply(1, &c, "c#0", 0, 16_000);
        assert!(plan.chunks[..6].iter().all(|ch| ch.at == Duration::ZERO));
        assert_eq!(plan.chunks[7].at, Duration::from_millis(20));
        let g = plan.gap_before.unwrap();
        assert_eq!(g, 26);
        let before = plan.chunks[g - 1].at;
        assert_eq!(plan.chunks[g].at - before, Duration::from_millis(310));
    }

    #[test]
    fn plans_depend_on_call_and_turn_only() {
        let mut c = AgentConfig::default();
        c.faults.close = 0.5;
        let a = plan_reply(3, &c, "call-01#0", 1, 8_000);
        assert_eq!(a, plan_reply(3, &c, "call-01#0", 1, 8_000));
        assert_ne!(
            a.response,
            plan_reply(3, &c, "call-01#1", 1, 8_000).response
        );
        assert_ne!(
            a.response,
            plan_reply(3, &c, "call-01#0", 2, 8_000).response
        );
        // Fault probabilities do not move the timings.
        c.faults.close = 0.0;
        assert_eq!(
            a.response,
            plan_reply(3, &c, "call-01#0", 1, 8_000).response
        );
    }
}
