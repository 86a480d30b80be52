//! A local energy-based endpointer: speech is a frame well above the tracked noise floor,
//! and the end of speech is declared after `hangover_ms` of frames that are not.
//!
//! It is deliberately simple and fully deterministic, so the endpointing knob's effect on
//! latency is exactly the hangover it adds.

use crate::audio::frame_dbfs;
use crate::profile::Profile;
use crate::stage::{Endpointer, EndpointerFactory, VadEvent};

/// Energy VAD with an adaptive noise floor and a hangover.
#[derive(Debug, Clone)]
pub struct EnergyVad {
    frame_ms: f64,
    hangover_ms: f64,
    min_speech_ms: f64,
    margin_db: f64,
    floor_db: Option<f64>,
    frames: u32,
    in_speech: bool,
    speech_ms: f64,
    silence_ms: f64,
}

impl EnergyVad {
    /// A VAD for frames of `frame_ms`, declaring the end after `hangover_ms` of silence.
    pub fn new(frame_ms: f64, hangover_ms: f64) -> EnergyVad {
        EnergyVad {
            frame_ms,
            hangover_ms,
            min_speech_ms: 60.0,
            margin_db: 12.0,
            floor_db: None,
            frames: 0,
            in_speech: false,
            speech_ms: 0.0,
            silence_ms: 0.0,
        }
    }

    fn is_speech(&mut self, level: f64) -> bool {
        self.frames += 1;
        // The first 200 ms only learn the noise floor (recordings start before the speaker).
        let floor = match self.floor_db {
            Some(f) if self.frames > WARMUP_FRAMES => f,
            Some(f) => {
                self.floor_db = Some(f.min(level));
                return false;
            }
            None => {
                self.floor_db = Some(level);
                return false;
            }
        };
        let speech = level > (floor + self.margin_db).max(-60.0);
        // Fast down, slow up: the floor follows quiet frames, and creeps up during speech
        // only slowly, to recover if it started too low.
        let next = if speech {
            floor + 0.01
        } else if level < floor {
            floor + 0.5 * (level - floor)
        } else {
            floor + 0.05 * (level - floor)
        };
        self.floor_db = Some(next);
        speech
    }
}

/// Makes an [`EnergyVad`] per call with the profile's `endpointing_ms` as hangover (the
/// default endpointer; it has no threshold knob).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnergyVadFactory;

impl EndpointerFactory for EnergyVadFactory {
    fn name(&self) -> &str {
        "energy_vad"
    }

    fn endpointer(&self, frame_ms: u32, profile: &Profile) -> Box<dyn Endpointer> {
        Box::new(EnergyVad::new(
            f64::from(frame_ms),
            f64::from(profile.endpointing_ms),
        ))
    }
}

/// Frames spent learning the noise floor before any decision.
const WARMUP_FRAMES: u32 = 10;

impl Endpointer for EnergyVad {
    fn name(&self) -> &str {
        "energy_vad"
    }

    fn push(&mut self, frame: &[i16]) -> Option<VadEvent> {
        let level = frame_dbfs(frame);
        let speech = self.is_speech(level);
        if speech {
            self.speech_ms += self.frame_ms;
            self.silence_ms = 0.0;
            if !self.in_speech && self.speech_ms >= self.min_speech_ms {
                self.in_speech = true;
                return Some(VadEvent::SpeechStart);
            }
        } else {
            self.silence_ms += self.frame_ms;
            if !self.in_speech {
                self.speech_ms = 0.0;
            } else if self.silence_ms >= self.hangover_ms {
                self.in_speech = false;
                self.speech_ms = 0.0;
                return Some(VadEvent::SpeechEnd);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_is_declared_after_the_hangover() {
        let mut vad = EnergyVad::new(20.0, 300.0);
        let quiet = vec![20i16; 320];
        let loud: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 8000 } else { -8000 })
            .collect();
        let mut events = Vec::new();
        let frames = std::iter::repeat_n(&quiet, 25)
            .chain(std::iter::repeat_n(&loud, 40))
            .chain(std::iter::repeat_n(&quiet, 40));
        for (i, f) in frames.enumerate() {
            if let Some(e) = vad.push(f) {
                events.push((i, e));
            }
        }
        // Speech starts on its 3rd frame (60 ms); ends on the 15th quiet frame (300 ms).
        assert_eq!(
            events,
            vec![(27, VadEvent::SpeechStart), (79, VadEvent::SpeechEnd)]
        );
    }

    #[test]
    fn a_noisy_start_is_learned_not_mistaken_for_speech() {
        let mut vad = EnergyVad::new(20.0, 200.0);
        let noise: Vec<i16> = (0..320).map(|i| [300, -250, 280, -310][i % 4]).collect();
        let loud: Vec<i16> = noise.iter().map(|s| s * 20).collect();
        let frames = std::iter::repeat_n(&noise, 30)
            .chain(std::iter::repeat_n(&loud, 20))
            .chain(std::iter::repeat_n(&noise, 20));
        let events: Vec<_> = frames
            .enumerate()
            .filter_map(|(i, f)| vad.push(f).map(|e| (i, e)))
            .collect();
        assert_eq!(
            events,
            vec![(32, VadEvent::SpeechStart), (59, VadEvent::SpeechEnd)]
        );
    }
}
