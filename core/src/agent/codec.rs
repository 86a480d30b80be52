//! The audio formats of telephony media streams: G.711 μ-law (8 kHz, what Twilio Media
//! Streams carry) and sample-rate conversion between a recording's rate and the wire's.

/// Bias added before μ-law compression (ITU-T G.711).
const BIAS: i32 = 0x84;
/// Largest magnitude μ-law encodes.
const CLIP: i32 = 32_635;

/// Encodes one 16-bit linear sample as G.711 μ-law.
pub fn mulaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let magnitude = s.unsigned_abs().min(CLIP as u32) as i32 + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let highest = 31 - (magnitude as u32).leading_zeros() as i32;
    let exponent = (highest - 7).clamp(0, 7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one G.711 μ-law byte to a 16-bit linear sample.
pub fn mulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes linear samples as μ-law bytes.
pub fn mulaw_encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| mulaw_encode(s)).collect()
}

/// Decodes μ-law bytes to linear samples.
pub fn mulaw_decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| mulaw_decode(b)).collect()
}

/// Converts `samples` from `from` Hz to `to` Hz.
///
/// Downsampling first averages over each output sample's span (a box low-pass, enough to keep
/// speech above 4 kHz from folding back at telephone rates), then interpolates linearly;
/// upsampling interpolates linearly. The output has `len × to / from` samples, rounded.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() || from == 0 || to == 0 {
        return samples.to_vec();
    }
    let ratio = f64::from(from) / f64::from(to);
    let out_len = ((samples.len() as f64) / ratio).round() as usize;
    let filtered: Vec<f64> = if ratio > 1.0 {
        let width = ratio.ceil() as usize;
        let mut acc = 0.0;
        let mut out = Vec::with_capacity(samples.len());
        for (i, &s) in samples.iter().enumerate() {
            acc += f64::from(s);
            if i >= width {
                acc -= f64::from(samples[i - width]);
            }
            out.push(acc / (i + 1).min(width) as f64);
        }
        // Centre the moving average on its span.
        let shift = (width - 1) / 2;
        (0..out.len())
            .map(|i| out[(i + shift).min(out.len() - 1)])
            .collect()
    } else {
        samples.iter().map(|&s| f64::from(s)).collect()
    };
    (0..out_len)
        .map(|k| {
            let x = k as f64 * ratio;
            let i = x.floor() as usize;
            let frac = x - i as f64;
            let a = filtered[i.min(filtered.len() - 1)];
            let b = filtered[(i + 1).min(filtered.len() - 1)];
            (a + (b - a) * frac).round().clamp(-32_768.0, 32_767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_matches_g711_reference_points() {
        // Reference values from ITU-T G.711 tables (as in Sun's g711.c).
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_encode(-1), 0x7F);
        assert_eq!(mulaw_encode(32_767), 0x80);
        assert_eq!(mulaw_encode(-32_768), 0x00);
        assert_eq!(mulaw_decode(0xFF), 0);
        assert_eq!(mulaw_decode(0x80), 32_124);
        assert_eq!(mulaw_decode(0x00), -32_124);
    }

    #[test]
    fn mulaw_round_trip_keeps_every_sample_within_its_segment_step() {
        for s in (-32_768i32..=32_767).step_by(7) {
            let s = s as i16;
            let back = mulaw_decode(mulaw_encode(s));
            let step = (i32::from(s).abs() / 16).max(8) + 8;
            assert!(
                (i32::from(back) - i32::from(s).clamp(-32_124, 32_124)).abs() <= step,
                "{s} -> {back}"
            );
        }
        for b in 0..=255u8 {
            // Decoding then encoding is exact except for the two zeros.
            let again = mulaw_encode(mulaw_decode(b));
            assert!(
                again == b || mulaw_decode(again) == mulaw_decode(b),
                "{b:#x}"
            );
        }
    }

    #[test]
    fn resampling_keeps_length_and_a_low_tone() {
        let tone: Vec<i16> = (0..16_000)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 300.0 / 16_000.0).sin() * 10_000.0) as i16
            })
            .collect();
        let down = resample(&tone, 16_000, 8_000);
        assert_eq!(down.len(), 8_000);
        let peak = down.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((9_000..=10_000).contains(&peak), "{peak}");
        let up = resample(&down, 8_000, 16_000);
        assert_eq!(up.len(), 16_000);
        assert_eq!(resample(&tone, 16_000, 16_000), tone);
    }
}
