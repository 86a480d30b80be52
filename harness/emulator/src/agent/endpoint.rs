//! The emulated agent's ears: a level-based turn detector over 20 ms frames of the caller's
//! audio. A frame is speech when its RMS level is above a threshold; a turn ends after
//! `endpointing_ms` of non-speech that follows at least `min_speech_ms` of speech.
//!
//! It is driven only by received samples, never by the clock, so the same audio always gives
//! the same decisions.

/// Frame length of the detector (ms).
pub const FRAME_MS: u32 = 20;

/// What one 20 ms frame did to the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The frame's level was above the threshold.
    pub speech: bool,
    /// Speech heard so far in the caller's current (not yet ended) turn (ms).
    pub turn_speech_ms: u32,
    /// This frame completed the end-of-turn silence: the caller's turn is over.
    pub end_of_turn: bool,
}

/// The turn detector of one call.
#[derive(Debug, Clone)]
pub struct Endpointer {
    /// Mean square level (of samples normalised to ±1) above which a frame is speech.
    threshold_power: f64,
    frame_len: usize,
    endpointing_ms: u32,
    min_speech_ms: u32,
    pending: Vec<i16>,
    speech_ms: u32,
    silence_ms: u32,
}

/// The RMS level of `samples` in dBFS (full scale = 32768); -inf for digital silence.
pub fn level_dbfs(samples: &[i16]) -> f64 {
    10.0 * mean_power(samples).log10()
}

fn mean_power(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| {
            let x = f64::from(s) / 32_768.0;
            x * x
        })
        .sum();
    sum / samples.len() as f64
}

impl Endpointer {
    /// A detector for audio at `sample_rate` Hz.
    pub fn new(
        sample_rate: u32,
        speech_dbfs: f64,
        endpointing_ms: u32,
        min_speech_ms: u32,
    ) -> Self {
        Endpointer {
            threshold_power: 10f64.powf(speech_dbfs / 10.0),
            frame_len: (sample_rate * FRAME_MS / 1000).max(1) as usize,
            endpointing_ms,
            min_speech_ms,
            pending: Vec::new(),
            speech_ms: 0,
            silence_ms: 0,
        }
    }

    /// Feeds received samples; `on_frame` sees each completed 20 ms frame in order.
    pub fn push(&mut self, samples: &[i16], mut on_frame: impl FnMut(Frame)) {
        self.pending.extend_from_slice(samples);
        let mut used = 0;
        while self.pending.len() - used >= self.frame_len {
            let frame = &self.pending[used..used + self.frame_len];
            let speech = mean_power(frame) > self.threshold_power;
            used += self.frame_len;
            on_frame(self.step(speech));
        }
        self.pending.drain(..used);
    }

    fn step(&mut self, speech: bool) -> Frame {
        let mut end_of_turn = false;
        if speech {
            self.speech_ms += FRAME_MS;
            self.silence_ms = 0;
        } else {
            self.silence_ms += FRAME_MS;
            if self.silence_ms >= self.endpointing_ms {
                // Enough speech: the turn is over. Too little: it was a noise blip, forget it.
                end_of_turn = self.speech_ms >= self.min_speech_ms.max(FRAME_MS);
                self.speech_ms = 0;
            }
        }
        Frame {
            speech,
            turn_speech_ms: self.speech_ms,
            end_of_turn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32, amplitude: f64) -> Vec<i16> {
        (0..8 * ms)
            .map(|i| (amplitude * (f64::from(i) * 0.3).sin()) as i16)
            .collect()
    }

    fn ends(e: &mut Endpointer, samples: &[i16]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut n = 0;
        e.push(samples, |f| {
            n += 1;
            if f.end_of_turn {
                out.push(n);
            }
        });
        out
    }

    #[test]
    fn a_turn_ends_after_the_endpointing_silence() {
        let mut e = Endpointer::new(8_000, -35.0, 500, 120);
        let mut audio = tone(300, 8_000.0);
        audio.extend(vec![0i16; 8 * 1000]);
        // 15 speech frames, then the 25th silent frame ends the turn.
        assert_eq!(ends(&mut e, &audio), [15 + 25]);
    }

    #[test]
    fn a_short_blip_is_not_a_turn_and_quiet_noise_is_not_speech() {
        let mut e = Endpointer::new(8_000, -35.0, 500, 120);
        let mut audio = tone(100, 8_000.0);
        audio.extend(vec![0i16; 8 * 1000]);
        audio.extend(tone(2000, 300.0)); // about -43 dBFS
        audio.extend(vec![0i16; 8 * 1000]);
        assert!(ends(&mut e, &audio).is_empty());
    }

    #[test]
    fn frames_may_straddle_messages() {
        let mut e = Endpointer::new(16_000, -35.0, 100, 20);
        let audio: Vec<i16> = (0..16 * 60)
            .map(|i| if i < 16 * 20 { 9_000 } else { 0 })
            .collect();
        let mut frames = 0;
        for piece in audio.chunks(7) {
            e.push(piece, |_| frames += 1);
        }
        assert_eq!(frames, 3);
        assert!((level_dbfs(&[16_384; 10]) + 6.02).abs() < 0.01);
        assert_eq!(level_dbfs(&[0; 10]), f64::NEG_INFINITY);
    }
}
