//! Speech-like audio for the emulated TTS: exact digital silence, a voiced harmonic tone with
//! syllable-rate loudness, a short tail of silence; and the 44-byte WAV header in front of it.
//!
//! Synthesis is a pure function of its inputs and RNG, so the same request yields the same bytes.

use std::f64::consts::TAU;

use rand::{Rng, RngExt};

/// Silence after the speech (ms).
pub const TRAILING_SILENCE_MS: u32 = 50;

/// Peak amplitude of the speech, about -12 dBFS.
const PEAK: f64 = 8_200.0;

/// Number of harmonics of the sawtooth-like voice.
const HARMONICS: u32 = 5;

/// Loudness modulation rate, about one syllable every 250 ms.
const SYLLABLE_HZ: f64 = 4.0;

/// The samples of one utterance: `leading_silence_ms` of zeros, `speech_ms` of voice, then
/// [`TRAILING_SILENCE_MS`] of zeros. The first voiced sample is never zero, so a client that
/// measures the leading silence finds exactly `leading_silence_ms`.
pub fn synthesize<R: Rng + ?Sized>(
    rng: &mut R,
    sample_rate: u32,
    leading_silence_ms: u32,
    speech_ms: u64,
) -> Vec<i16> {
    let per_ms = f64::from(sample_rate) / 1000.0;
    let lead = ms_to_samples(sample_rate, u64::from(leading_silence_ms));
    let speech = ms_to_samples(sample_rate, speech_ms);
    let tail = ms_to_samples(sample_rate, u64::from(TRAILING_SILENCE_MS));
    let mut out = Vec::with_capacity(lead + speech + tail);
    out.resize(lead, 0);

    let f0 = rng.random_range(140.0..220.0);
    let drift_hz = rng.random_range(0.7..1.6);
    let envelope_phase = rng.random_range(0.0..1.0);
    // A quarter cycle in: the fundamental is at its crest, so the first sample is loud.
    let mut phase = 0.25;
    let harmonic_sum: f64 = (1..=HARMONICS).map(|h| 1.0 / f64::from(h)).sum();
    for i in 0..speech {
        let t = i as f64 / (per_ms * 1000.0);
        let envelope = 0.6 + 0.4 * (TAU * (SYLLABLE_HZ * t + envelope_phase)).cos();
        let voice: f64 = (1..=HARMONICS)
            .map(|h| (TAU * phase * f64::from(h)).sin() / f64::from(h))
            .sum();
        let mut sample = (PEAK / harmonic_sum * envelope * voice).round() as i16;
        if sample == 0 {
            sample = 1;
        }
        out.push(sample);
        let pitch = f0 * (1.0 + 0.06 * (TAU * drift_hz * t).sin());
        phase = (phase + pitch / (per_ms * 1000.0)).fract();
    }
    out.resize(lead + speech + tail, 0);
    out
}

/// Samples in `ms` milliseconds at `sample_rate`, rounded down.
pub fn ms_to_samples(sample_rate: u32, ms: u64) -> usize {
    (u64::from(sample_rate) * ms / 1000) as usize
}

/// Little-endian bytes of 16-bit samples.
pub fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The canonical 44-byte RIFF/WAVE header of mono 16-bit PCM with `data_len` bytes of samples.
pub fn wav_header(sample_rate: u32, data_len: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn layout_is_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = synthesize(&mut rng, 16_000, 120, 600);
        assert_eq!(s.len(), 16 * (120 + 600 + 50));
        assert!(s[..16 * 120].iter().all(|x| *x == 0));
        // Audible at once by latlab-core's threshold (64), so the first audio is not late.
        assert!(s[16 * 120].unsigned_abs() > 64);
        assert!(s[16 * 720..].iter().all(|x| *x == 0));
        let peak = s.iter().map(|x| x.unsigned_abs()).max().unwrap();
        assert!((4_000..=8_300).contains(&peak), "peak {peak}");
    }

    #[test]
    fn synthesis_is_deterministic() {
        let a = synthesize(&mut ChaCha8Rng::seed_from_u64(4), 8_000, 0, 200);
        let b = synthesize(&mut ChaCha8Rng::seed_from_u64(4), 8_000, 0, 200);
        assert_eq!(a, b);
    }

    #[test]
    fn header_matches_hound() {
        let samples = [1i16, -2, 3];
        let mut bytes = wav_header(22_050, 6).to_vec();
        bytes.extend(pcm_bytes(&samples));
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec().sample_rate, 22_050);
        assert_eq!(reader.spec().channels, 1);
        let back: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        assert_eq!(back, samples);
    }
}
