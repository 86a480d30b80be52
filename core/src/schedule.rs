//! Replay schedules: when each audio frame of a recorded call is due, and when each turn's
//! speech starts and ends, on the run's epoch.
//!
//! The recording's timeline is fixed: a slow pipeline never shifts it. A frame is due when
//! its last sample would have been captured by a microphone (its end), divided by `speed`.

/// The replay plan of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSchedule {
    /// When the recording starts, in ns since the epoch.
    pub start_ns: u64,
    /// Sample rate of the recording.
    pub sample_rate: u32,
    /// Samples per frame.
    pub frame_samples: usize,
    /// Replay speed (1.0 = real time).
    pub speed: f64,
}

impl CallSchedule {
    /// A schedule starting at `start_ns` with frames of `frame_ms`.
    pub fn new(start_ns: u64, sample_rate: u32, frame_ms: u32, speed: f64) -> CallSchedule {
        let frame_samples = (sample_rate as usize * frame_ms as usize / 1000).max(1);
        CallSchedule {
            start_ns,
            sample_rate,
            frame_samples,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// The epoch time of a position in the recording (ms from its start).
    pub fn at_ms(&self, ms: f64) -> u64 {
        self.start_ns + (ms * 1e6 / self.speed).round() as u64
    }

    /// How many frames a recording of `samples` samples has (the last may be short).
    pub fn frame_count(&self, samples: usize) -> usize {
        samples.div_ceil(self.frame_samples)
    }

    /// The samples of frame `k`.
    pub fn frame<'a>(&self, samples: &'a [i16], k: usize) -> &'a [i16] {
        let from = (k * self.frame_samples).min(samples.len());
        let to = ((k + 1) * self.frame_samples).min(samples.len());
        &samples[from..to]
    }

    /// When frame `k` (of a recording of `samples` samples) is due: the end of its audio.
    pub fn frame_due_ns(&self, k: usize, samples: usize) -> u64 {
        let end_sample = ((k + 1) * self.frame_samples).min(samples);
        self.at_ms(end_sample as f64 * 1000.0 / f64::from(self.sample_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_due_at_their_end_scaled_by_speed() {
        let s = CallSchedule::new(1_000, 16_000, 20, 2.0);
        assert_eq!(s.frame_samples, 320);
        assert_eq!(s.frame_due_ns(0, 16_000), 1_000 + 10_000_000);
        assert_eq!(s.frame_count(16_000), 50);
        assert_eq!(s.frame_count(16_001), 51);
        assert_eq!(s.frame_due_ns(50, 16_001), 1_000 + 500_031_250);
        assert_eq!(s.frame(&[0; 16_001], 50).len(), 1);
        assert_eq!(s.at_ms(1000.0), 1_000 + 500_000_000);
    }
}
