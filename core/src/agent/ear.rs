//! The caller's ear: the agent's audio as a caller would hear it, and every per-turn metric
//! measured there.
//!
//! Each audio message plays when it arrives or when the audio before it has finished,
//! whichever is later (a phone's playout buffer); a `clear` drops whatever has not played yet.
//! Nothing the agent says about its audio (marks, events) is trusted: audibility is probed on
//! the samples, 10 ms at a time, with the same threshold as the pipeline's TTS probe
//! ([`crate::audio::AUDIBLE_THRESHOLD`]).
//!
//! Definitions (also in `docs/metrics.md`, "At the caller's ear"):
//! - an **onset** is an audible block heard after at least [`ONSET_SILENCE_MS`] without one;
//! - a turn's **reply** starts at the first onset at or after the caller's scheduled end of
//!   speech (or, when the agent is already talking then from an onset inside the turn, at that
//!   onset: a negative voice-to-voice); **dead air** is no such onset within the answer timeout;
//! - the reply ends at its last audible sample before [`ONSET_SILENCE_MS`] of silence that
//!   reaches into the caller's next turn, or before that turn starts;
//! - a **gap** is a stretch of at least [`GAP_MS`] inside the reply when the playout ran dry;
//! - an **interruption** is a caller turn that starts while the agent is audible (within
//!   [`ONSET_SILENCE_MS`] before it); its latency runs to the agent's last audible sample before
//!   [`ONSET_SILENCE_MS`] of silence;
//! - a **false cutoff** is an onset inside the caller's turn while the caller is in a pause (no
//!   speech for [`PAUSE_MS`]); agent audio from onsets inside the turn heard while the caller
//!   speaks is **talk-over**.

use crate::audio::AUDIBLE_THRESHOLD;
use crate::timing::{AgentTurn, Interruption};

/// Silence at the ear that separates two stretches of agent speech (ms).
pub const ONSET_SILENCE_MS: u64 = 300;
/// Shortest playout underrun counted as a gap in a reply (ms).
pub const GAP_MS: u64 = 100;
/// Caller silence inside a turn that makes it a pause (ms).
pub const PAUSE_MS: u64 = 200;
/// The ear's block length (ms).
const BLOCK_MS: u64 = 10;
const MS: u64 = 1_000_000;

/// One 10 ms block of heard audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Block {
    /// When it started playing (ns since the epoch).
    pub start_ns: u64,
    /// When it finished.
    pub end_ns: u64,
    /// Its first audible sample's time, if any.
    pub audible_at: Option<u64>,
}

/// Builds the heard timeline as messages arrive.
#[derive(Debug)]
pub struct Ear {
    rate: u32,
    blocks: Vec<Block>,
    /// Playout stretches with nothing to play, between audio (start, end).
    underruns: Vec<(u64, u64)>,
    clears: Vec<u64>,
    play_end: u64,
    started: bool,
    /// The end of the last audible block heard so far (for onsets as audio arrives).
    last_audible_end: Option<u64>,
}

/// Whether an audible block at `at` is an onset, the last audible block having ended at
/// `last_end`: the one rule for onsets as they arrive ([`Ear::audio`]) and afterwards
/// ([`Heard::onsets`]).
fn is_onset(last_end: Option<u64>, at: u64) -> bool {
    last_end.is_none_or(|e| at.saturating_sub(e) >= ONSET_SILENCE_MS * MS)
}

impl Ear {
    /// An ear for audio at `rate` Hz.
    pub fn new(rate: u32) -> Ear {
        Ear {
            rate: rate.max(1),
            blocks: Vec::new(),
            underruns: Vec::new(),
            clears: Vec::new(),
            play_end: 0,
            started: false,
            last_audible_end: None,
        }
    }

    /// Audio that arrived at `at_ns`; returns when an onset it holds will be heard (its first
    /// audible sample after [`ONSET_SILENCE_MS`] without one), if it holds one.
    pub fn audio(&mut self, at_ns: u64, samples: &[i16]) -> Option<u64> {
        if samples.is_empty() {
            return None;
        }
        let start = if self.started {
            if at_ns > self.play_end {
                self.underruns.push((self.play_end, at_ns));
            }
            at_ns.max(self.play_end)
        } else {
            self.started = true;
            at_ns
        };
        let per_block = (u64::from(self.rate) * BLOCK_MS / 1000).max(1) as usize;
        let ns_per_sample = 1e9 / f64::from(self.rate);
        let mut onset = None;
        for (b, block) in samples.chunks(per_block).enumerate() {
            let offset = b * per_block;
            let t0 = start + (offset as f64 * ns_per_sample) as u64;
            let t1 = start + ((offset + block.len()) as f64 * ns_per_sample) as u64;
            let audible_at = block
                .iter()
                .position(|s| s.unsigned_abs() > AUDIBLE_THRESHOLD as u16)
                .map(|i| t0 + (i as f64 * ns_per_sample) as u64);
            if let Some(at) = audible_at {
                if onset.is_none() && is_onset(self.last_audible_end, at) {
                    onset = Some(at);
                }
                self.last_audible_end = Some(t1);
            }
            self.blocks.push(Block {
                start_ns: t0,
                end_ns: t1,
                audible_at,
            });
        }
        self.play_end = start + (samples.len() as f64 * ns_per_sample) as u64;
        onset
    }

    /// A `clear` arrived at `at_ns`: what had not played by then is dropped.
    pub fn clear(&mut self, at_ns: u64) {
        self.clears.push(at_ns);
        while let Some(last) = self.blocks.last_mut() {
            if last.start_ns >= at_ns {
                self.blocks.pop();
            } else {
                if last.end_ns > at_ns {
                    last.end_ns = at_ns;
                    if last.audible_at.is_some_and(|a| a >= at_ns) {
                        last.audible_at = None;
                    }
                }
                break;
            }
        }
        self.play_end = self.play_end.min(at_ns);
        self.last_audible_end = self
            .blocks
            .iter()
            .rev()
            .find(|b| b.audible_at.is_some())
            .map(|b| b.end_ns);
    }

    /// When the audio received so far will have played out.
    pub fn play_end(&self) -> u64 {
        self.play_end
    }

    /// The finished timeline.
    pub fn finish(self) -> Heard {
        Heard {
            blocks: self.blocks,
            underruns: self.underruns,
            clears: self.clears,
        }
    }
}

/// Everything the caller heard in one call.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    /// Heard blocks in playout order.
    pub blocks: Vec<Block>,
    /// Playout underruns (start, end).
    pub underruns: Vec<(u64, u64)>,
    /// When each `clear` arrived.
    pub clears: Vec<u64>,
}

/// One caller turn as it was actually scheduled on the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerTurn {
    /// Scheduled start of the caller's speech.
    pub start_ns: u64,
    /// Scheduled end: the anchor of the turn's latencies.
    pub end_ns: u64,
}

/// The caller's own speech, per frame, to tell a pause inside a turn from speech.
#[derive(Debug, Clone, Default)]
pub struct CallerSpeech {
    /// (start, end, speech) per sent frame, in order.
    pub frames: Vec<(u64, u64, bool)>,
}

impl CallerSpeech {
    /// Whether the caller was silent for the [`PAUSE_MS`] before `t`.
    fn in_pause(&self, t: u64) -> bool {
        let from = t.saturating_sub(PAUSE_MS * MS);
        !self
            .frames
            .iter()
            .any(|&(s, e, speech)| speech && e > from && s < t)
    }

    /// Nanoseconds of caller speech inside [a, b).
    fn speech_within(&self, a: u64, b: u64) -> u64 {
        self.frames
            .iter()
            .filter(|f| f.2)
            .map(|&(s, e, _)| e.min(b).saturating_sub(s.max(a)))
            .sum()
    }
}

/// Which frames of a call's caller audio are speech: level above the call's noise floor (its
/// 10th-percentile frame level) by 10 dB, and above −55 dBFS.
pub fn speech_flags(levels_dbfs: &[f64]) -> Vec<bool> {
    if levels_dbfs.is_empty() {
        return Vec::new();
    }
    let mut sorted = levels_dbfs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let floor = sorted[sorted.len() / 10];
    let threshold = (floor + 10.0).max(-55.0);
    levels_dbfs.iter().map(|&l| l > threshold).collect()
}

/// A turn measured at the ear: the contract's [`AgentTurn`] plus the timeline fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// First agent audio of the reply that played (leading silence included).
    pub first_heard_ns: Option<u64>,
    /// First audible sample of the reply.
    pub first_audible_ns: Option<u64>,
    /// Last audible sample of the reply.
    pub last_audible_ns: Option<u64>,
    /// Voice-to-voice: first audible − scheduled end of the caller's speech.
    pub voice_to_voice_ns: Option<i64>,
    /// How long the agent was still audible after the next caller turn began (ms).
    pub barge_in_ms: Option<f64>,
    /// The ear's measurements.
    pub agent: AgentTurn,
}

impl Heard {
    fn audible(&self) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        self.blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.audible_at.map(|a| (i, a, b.end_ns)))
    }

    /// Onsets: (block index, first audible time), in order.
    pub fn onsets(&self) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        let mut last_end: Option<u64> = None;
        for (i, at, end) in self.audible() {
            if is_onset(last_end, at) {
                out.push((i, at));
            }
            last_end = Some(end);
        }
        out
    }

    /// The last audible sample of the stretch of speech that contains block `from` (the end
    /// of the last audible block before [`ONSET_SILENCE_MS`] of silence), no later than `limit`.
    fn stretch_end(&self, from: usize, limit: u64) -> u64 {
        let mut end = self.blocks[from].end_ns;
        for b in &self.blocks[from..] {
            if b.start_ns >= limit {
                break;
            }
            if let Some(a) = b.audible_at {
                if a.saturating_sub(end) >= ONSET_SILENCE_MS * MS && a > end {
                    break;
                }
                end = b.end_ns.min(limit);
            }
        }
        end
    }

    /// Whether the agent was audible within [`ONSET_SILENCE_MS`] before `t` (or at it), and
    /// the block where that audio is.
    fn talking_at(&self, t: u64) -> Option<usize> {
        let from = t.saturating_sub(ONSET_SILENCE_MS * MS);
        self.audible()
            .filter(|&(_, a, end)| end > from && a <= t)
            .map(|(i, _, _)| i)
            .last()
    }

    /// Measures every turn. `turns` are the caller's turns in order; `answer_timeout_ns` is
    /// how long after a turn's end no reply is dead air; `heard_until` is when listening
    /// stopped (a turn whose answer window had not closed by then is not dead air).
    pub fn measure(
        &self,
        turns: &[CallerTurn],
        caller: &CallerSpeech,
        answer_timeout_ns: u64,
        heard_until: u64,
    ) -> Vec<Measured> {
        let onsets = self.onsets();
        let mut out = Vec::with_capacity(turns.len());
        for (i, turn) in turns.iter().enumerate() {
            let next_start = turns.get(i + 1).map_or(u64::MAX, |t| t.start_ns);
            let mut m = Measured::default();
            // Interruption: the caller starts while the agent is talking.
            if let Some(block) = self.talking_at(turn.start_ns)
                && onsets
                    .iter()
                    .rev()
                    .find(|&&(b, _)| b <= block)
                    .is_some_and(|&(_, at)| at < turn.start_ns)
                && self.stretch_end(block, u64::MAX) > turn.start_ns
            {
                let stop = self.stretch_end(block, u64::MAX);
                let cleared = self
                    .clears
                    .iter()
                    .any(|&c| c >= turn.start_ns && c <= stop + ONSET_SILENCE_MS * MS);
                m.agent.interruption_ns = Some(crate::timing::diff_ns(stop, turn.start_ns));
                m.agent.interruption_by = Some(if stop >= turn.end_ns {
                    Interruption::Ignored
                } else if cleared {
                    Interruption::Clear
                } else {
                    Interruption::Silence
                });
            }
            // Onsets inside the caller's turn: false cutoff or talk-over.
            let inside: Vec<(usize, u64)> = onsets
                .iter()
                .copied()
                .filter(|&(_, at)| at >= turn.start_ns && at < turn.end_ns)
                .collect();
            if let Some(&(_, at)) = inside.first() {
                m.agent.false_cutoff = caller.in_pause(at);
            }
            let mut talk_over = 0;
            for &(b, _) in &inside {
                let stop = self.stretch_end(b, turn.end_ns);
                for blk in &self.blocks[b..] {
                    if blk.start_ns >= stop {
                        break;
                    }
                    if blk.audible_at.is_some() {
                        talk_over += caller.speech_within(blk.start_ns, blk.end_ns.min(stop));
                    }
                }
            }
            m.agent.talk_over_ms = talk_over as f64 / 1e6;
            // The reply.
            let still = inside
                .last()
                .filter(|&&(b, _)| self.stretch_end(b, u64::MAX) > turn.end_ns);
            let answer_by = turn.end_ns.saturating_add(answer_timeout_ns);
            let reply = still.copied().or_else(|| {
                onsets
                    .iter()
                    .copied()
                    .find(|&(_, at)| at >= turn.end_ns && (at < next_start || at < answer_by))
            });
            match reply {
                Some((b, at)) if at <= answer_by => {
                    // A reply that runs into the next turn lasts while its speech goes on;
                    // later stretches that start before the next turn belong to it too.
                    let mut end = self.stretch_end(b, u64::MAX);
                    for &(b2, _) in onsets.iter().filter(|&&(_, a)| a > at && a < next_start) {
                        end = end.max(self.stretch_end(b2, u64::MAX));
                    }
                    // The reply's first heard sample: the start of the playout run it is in
                    // (an agent sends nothing between replies; a run ends at a dry spell of
                    // GAP_MS, not at a message a little late), but not before the agent's
                    // previous audible sample nor before the caller's turn began.
                    let run_start = self
                        .underruns
                        .iter()
                        .filter(|&&(s, e)| e <= at && e - s >= GAP_MS * MS)
                        .map(|&(_, e)| e)
                        .next_back()
                        .unwrap_or_else(|| self.blocks.first().map_or(at, |b| b.start_ns));
                    let previous = self.blocks[..b]
                        .iter()
                        .rev()
                        .find(|blk| blk.audible_at.is_some())
                        .map_or(0, |blk| blk.end_ns);
                    let heard = run_start.max(previous).max(turn.start_ns).min(at);
                    m.first_heard_ns = Some(heard);
                    m.first_audible_ns = Some(at);
                    m.last_audible_ns = Some(end);
                    m.voice_to_voice_ns = Some(crate::timing::diff_ns(at, turn.end_ns));
                    m.agent.first_heard_ns = Some(heard);
                    m.agent.lead_ms = Some((at - heard) as f64 / 1e6);
                    m.agent.reply_ms = Some(end.saturating_sub(at) as f64 / 1e6);
                    let gaps: Vec<u64> = self
                        .underruns
                        .iter()
                        .filter(|&&(s, e)| s >= at && e <= end)
                        .map(|&(s, e)| e - s)
                        .filter(|&d| d >= GAP_MS * MS)
                        .collect();
                    m.agent.gaps = gaps.len() as u32;
                    m.agent.gap_ms = gaps.iter().sum::<u64>() as f64 / 1e6;
                    if next_start != u64::MAX && end > next_start {
                        m.barge_in_ms = Some((end - next_start) as f64 / 1e6);
                    }
                }
                _ => {
                    m.agent.dead_air = heard_until >= answer_by;
                }
            }
            out.push(m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8_000;

    fn tone(ms: u64) -> Vec<i16> {
        (0..(RATE as u64 * ms / 1000))
            .map(|i| if i % 2 == 0 { 4_000 } else { -4_000 })
            .collect()
    }
    fn silence(ms: u64) -> Vec<i16> {
        vec![0; (RATE as u64 * ms / 1000) as usize]
    }
    fn ms(v: u64) -> u64 {
        v * MS
    }
    fn speaking(turns: &[CallerTurn]) -> CallerSpeech {
        let mut frames = Vec::new();
        let mut t = 0;
        while t < ms(60_000) {
            let speech = turns.iter().any(|u| t >= u.start_ns && t < u.end_ns);
            frames.push((t, t + ms(20), speech));
            t += ms(20);
        }
        CallerSpeech { frames }
    }

    #[test]
    fn a_reply_is_measured_from_the_callers_end_to_its_first_audible_sample() {
        let turns = [CallerTurn {
            start_ns: ms(1_000),
            end_ns: ms(3_000),
        }];
        let mut ear = Ear::new(RATE);
        // 80 ms of leading silence arrives at 3.5 s, then 1 s of speech sent in 20 ms messages
        // at real time, with one late message (a 150 ms underrun).
        ear.audio(ms(3_500), &silence(80));
        let mut t = ms(3_500);
        for k in 0..50 {
            let late = if k == 25 { ms(150) } else { 0 };
            t += late;
            ear.audio(t.max(ear.play_end()), &tone(20));
            t = ear.play_end();
        }
        let heard = ear.finish();
        let m = heard.measure(&turns, &speaking(&turns), ms(5_000), ms(10_000));
        let m = &m[0];
        assert_eq!(m.voice_to_voice_ns, Some(ms(580) as i64));
        assert_eq!(m.agent.lead_ms, Some(80.0));
        assert_eq!(m.agent.gaps, 1);
        assert!((m.agent.gap_ms - 150.0).abs() < 0.01, "{m:?}");
        let reply = m.agent.reply_ms.unwrap();
        assert!((reply - 1_150.0).abs() < 0.5, "{reply}");
        assert!(!m.agent.dead_air && !m.agent.false_cutoff);
        assert_eq!(m.agent.interruption_ns, None);
    }

    #[test]
    fn playout_buffers_audio_sent_faster_than_real_time() {
        let turns = [CallerTurn {
            start_ns: ms(0),
            end_ns: ms(1_000),
        }];
        let mut ear = Ear::new(RATE);
        // Two seconds of speech arrive at once: the caller hears it over two seconds.
        ear.audio(ms(1_200), &tone(2_000));
        let m = &ear
            .finish()
            .measure(&turns, &speaking(&turns), ms(5_000), ms(9_000))[0];
        assert_eq!(m.voice_to_voice_ns, Some(ms(200) as i64));
        assert!((m.agent.reply_ms.unwrap() - 2_000.0).abs() < 0.5);
        assert_eq!(m.agent.gaps, 0);
    }

    #[test]
    fn a_caller_who_talks_over_the_agent_measures_how_fast_it_stops() {
        let turns = [
            CallerTurn {
                start_ns: ms(0),
                end_ns: ms(1_000),
            },
            CallerTurn {
                start_ns: ms(2_000),
                end_ns: ms(4_000),
            },
        ];
        // Reply 1 arrives at 1.3 s, 3 s of it at once; a clear arrives at 2.25 s.
        let mut ear = Ear::new(RATE);
        ear.audio(ms(1_300), &tone(3_000));
        ear.clear(ms(2_250));
        ear.audio(ms(4_500), &tone(500));
        let heard = ear.finish();
        let m = heard.measure(&turns, &speaking(&turns), ms(5_000), ms(9_000));
        assert_eq!(m[0].voice_to_voice_ns, Some(ms(300) as i64));
        assert_eq!(m[0].barge_in_ms, Some(250.0));
        assert_eq!(m[1].agent.interruption_ns, Some(ms(250) as i64));
        assert_eq!(m[1].agent.interruption_by, Some(Interruption::Clear));
        assert_eq!(m[1].voice_to_voice_ns, Some(ms(500) as i64));
        assert_eq!(m[1].agent.talk_over_ms, 0.0);

        // An agent that ignores the caller talks to the end of the turn.
        let mut ear = Ear::new(RATE);
        ear.audio(ms(1_300), &tone(4_000));
        let m = ear
            .finish()
            .measure(&turns, &speaking(&turns), ms(5_000), ms(9_000));
        assert_eq!(m[1].agent.interruption_by, Some(Interruption::Ignored));
        assert_eq!(m[1].agent.interruption_ns, Some(ms(3_300) as i64));
    }

    #[test]
    fn speaking_in_a_pause_is_a_false_cutoff_and_over_speech_is_talk_over() {
        let turns = [CallerTurn {
            start_ns: ms(0),
            end_ns: ms(3_000),
        }];
        // The caller pauses from 1.0 to 1.6 s inside the turn.
        let mut caller = speaking(&turns);
        for f in &mut caller.frames {
            if f.0 >= ms(1_000) && f.1 <= ms(1_600) {
                f.2 = false;
            }
        }
        let mut ear = Ear::new(RATE);
        ear.audio(ms(1_400), &tone(400));
        let m = &ear.finish().measure(&turns, &caller, ms(5_000), ms(9_000))[0];
        assert!(m.agent.false_cutoff);
        assert!((m.agent.talk_over_ms - 200.0).abs() < 0.5, "{m:?}");
        // It stopped before the caller's end and never answered again: dead air.
        assert!(m.agent.dead_air);
        assert_eq!(m.voice_to_voice_ns, None);
    }

    #[test]
    fn no_reply_within_the_timeout_is_dead_air_only_once_the_window_closed() {
        let turns = [CallerTurn {
            start_ns: ms(0),
            end_ns: ms(1_000),
        }];
        let heard = Ear::new(RATE).finish();
        let caller = speaking(&turns);
        assert!(
            heard.measure(&turns, &caller, ms(2_000), ms(3_000))[0]
                .agent
                .dead_air
        );
        assert!(
            !heard.measure(&turns, &caller, ms(2_000), ms(2_500))[0]
                .agent
                .dead_air
        );
    }

    #[test]
    fn audio_that_ended_just_before_the_caller_spoke_is_no_interruption() {
        let turns = [
            CallerTurn {
                start_ns: ms(0),
                end_ns: ms(1_000),
            },
            CallerTurn {
                start_ns: ms(2_500),
                end_ns: ms(3_000),
            },
        ];
        let mut ear = Ear::new(RATE);
        // The reply ends at 2.4 s, 100 ms before the caller's next turn.
        ear.audio(ms(1_400), &tone(1_000));
        let m = ear
            .finish()
            .measure(&turns, &speaking(&turns), ms(5_000), ms(4_000));
        assert_eq!(m[1].agent.interruption_ns, None);
        assert_eq!(m[0].barge_in_ms, None);
    }

    #[test]
    fn leading_silence_counts_from_the_replys_first_sample_even_before_the_labelled_end() {
        // The agent's endpointer fired 100 ms before the dataset's end label: its reply's
        // silence started playing before the caller's labelled end.
        let turns = [CallerTurn {
            start_ns: ms(0),
            end_ns: ms(1_000),
        }];
        let mut ear = Ear::new(RATE);
        ear.audio(ms(960), &silence(60));
        ear.audio(ms(1_020), &tone(500));
        let m = &ear
            .finish()
            .measure(&turns, &speaking(&turns), ms(5_000), ms(4_000))[0];
        assert_eq!(m.agent.lead_ms, Some(60.0));
        assert_eq!(m.voice_to_voice_ns, Some(ms(20) as i64));
    }

    #[test]
    fn speech_flags_follow_the_noise_floor() {
        let mut levels = vec![-60.0; 50];
        levels.extend([-20.0; 30]);
        levels.push(-45.0);
        let flags = speech_flags(&levels);
        assert_eq!(flags.iter().filter(|&&f| f).count(), 31);
    }
}
