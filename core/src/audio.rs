//! Audio measurements on streams: where the first audible sample of agent speech is, and
//! how loud a frame of user audio is.
//!
//! "First audible" is the moment a listener could hear the agent: container headers and
//! leading digital silence do not count, however early their bytes arrive.

/// Container of a TTS audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Raw 16-bit little-endian mono PCM.
    RawPcm,
    /// A RIFF/WAVE header followed by 16-bit PCM.
    Wav,
}

/// Amplitude above which a 16-bit sample counts as audible (about −54 dBFS).
pub const AUDIBLE_THRESHOLD: i16 = 64;

/// What the probe found in one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkFindings {
    /// This chunk held the stream's first audible sample.
    pub first_audible: bool,
}

/// Follows a streamed 16-bit PCM body (raw or WAV) chunk by chunk.
#[derive(Debug)]
pub struct AudioProbe {
    container: Container,
    sample_rate: u32,
    channels: u16,
    header: Vec<u8>,
    in_data: bool,
    carry: Option<u8>,
    samples: u64,
    audible: bool,
    audible_from: Option<u64>,
    bytes: u64,
}

/// A stream that claims to be WAV but is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WAV stream: {0}")]
pub struct WavStreamError(pub String);

impl AudioProbe {
    /// A probe for a stream of the given container; `sample_rate` is the rate requested
    /// (a WAV header's own rate replaces it).
    pub fn new(container: Container, sample_rate: u32) -> AudioProbe {
        AudioProbe {
            container,
            sample_rate,
            channels: 1,
            header: Vec::new(),
            in_data: container == Container::RawPcm,
            carry: None,
            samples: 0,
            audible: false,
            audible_from: None,
            bytes: 0,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<ChunkFindings, WavStreamError> {
        self.bytes += chunk.len() as u64;
        let was_audible = self.audible;
        if !self.in_data {
            self.header.extend_from_slice(chunk);
            match parse_wav_header(&self.header)? {
                None => return Ok(ChunkFindings::default()),
                Some(h) => {
                    self.sample_rate = h.sample_rate;
                    self.channels = h.channels.max(1);
                    self.in_data = true;
                    let body = self.header.split_off(h.data_offset);
                    self.header.clear();
                    self.scan(&body);
                    return Ok(ChunkFindings {
                        first_audible: !was_audible && self.audible,
                    });
                }
            }
        }
        // The odd byte waits for its partner, across empty chunks too.
        if let Some(low) = self.carry
            && let Some((&high, rest)) = chunk.split_first()
        {
            self.carry = None;
            self.sample(i16::from_le_bytes([low, high]));
            chunk = rest;
        }
        self.scan(chunk);
        Ok(ChunkFindings {
            first_audible: !was_audible && self.audible,
        })
    }

    fn scan(&mut self, data: &[u8]) {
        let mut pairs = data.chunks_exact(2);
        for pair in &mut pairs {
            self.sample(i16::from_le_bytes([pair[0], pair[1]]));
        }
        if let [last] = pairs.remainder() {
            self.carry = Some(*last);
        }
    }

    fn sample(&mut self, s: i16) {
        self.samples += 1;
        if !self.audible && s.unsigned_abs() > AUDIBLE_THRESHOLD as u16 {
            self.audible = true;
            self.audible_from = Some(self.samples - 1);
        }
    }

    /// Whether an audible sample has been seen.
    pub fn audible(&self) -> bool {
        self.audible
    }

    /// Milliseconds of audio before the first audible sample (leading silence), once known.
    pub fn lead_ms(&self) -> Option<f64> {
        self.audible_from.map(|s| {
            (s / u64::from(self.channels)) as f64 * 1000.0 / f64::from(self.sample_rate.max(1))
        })
    }

    /// Milliseconds of audio received so far.
    pub fn audio_ms(&self) -> f64 {
        let frames = self.samples / u64::from(self.channels);
        frames as f64 * 1000.0 / f64::from(self.sample_rate.max(1))
    }

    /// Bytes received so far, headers included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The stream's container.
    pub fn container(&self) -> Container {
        self.container
    }
}

struct WavHeader {
    sample_rate: u32,
    channels: u16,
    data_offset: usize,
}

/// Parses a RIFF/WAVE header from the start of a stream; `None` until the `data` chunk starts.
fn parse_wav_header(buf: &[u8]) -> Result<Option<WavHeader>, WavStreamError> {
    if buf.len() < 12 {
        return Ok(None);
    }
    if &buf[0..4] != b"RIFF" || &buf[8..12] != b"WAVE" {
        return Err(WavStreamError("missing RIFF/WAVE signature".into()));
    }
    let mut pos = 12;
    let mut fmt = None;
    loop {
        if buf.len() < pos + 8 {
            return Ok(None);
        }
        let id = &buf[pos..pos + 4];
        let size = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
        let body = pos + 8;
        if id == b"data" {
            let (channels, sample_rate, bits) =
                fmt.ok_or_else(|| WavStreamError("data chunk before fmt chunk".into()))?;
            if bits != 16 {
                return Err(WavStreamError(format!("{bits}-bit audio, expected 16-bit")));
            }
            return Ok(Some(WavHeader {
                sample_rate,
                channels,
                data_offset: body,
            }));
        }
        let end = body + size as usize + (size as usize & 1);
        if id == b"fmt " {
            if buf.len() < body + 16 {
                return Ok(None);
            }
            let format = u16::from_le_bytes([buf[body], buf[body + 1]]);
            if format != 1 && format != 0xFFFE {
                return Err(WavStreamError(format!("format tag {format}, expected PCM")));
            }
            let channels = u16::from_le_bytes([buf[body + 2], buf[body + 3]]);
            let rate =
                u32::from_le_bytes([buf[body + 4], buf[body + 5], buf[body + 6], buf[body + 7]]);
            let bits = u16::from_le_bytes([buf[body + 14], buf[body + 15]]);
            fmt = Some((channels, rate, bits));
        }
        if end > 1 << 20 {
            return Err(WavStreamError("header larger than 1 MiB".into()));
        }
        pos = end;
    }
}

/// Root-mean-square level of a frame in dBFS (−120 for digital silence).
pub fn frame_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return -120.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 1e-6 {
        -120.0
    } else {
        20.0 * rms.log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_bytes(rate: u32, samples: &[i16]) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data_len).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * 2).to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&16u16.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            v.extend_from_slice(&s.to_le_bytes());
        }
        v
    }

    #[test]
    fn wav_header_and_leading_silence_are_not_audible() {
        let mut samples = vec![0i16; 1600];
        samples.extend([1000i16; 160]);
        let bytes = wav_bytes(16000, &samples);
        let mut probe = AudioProbe::new(Container::Wav, 8000);
        // Header split across chunks, odd chunk boundaries.
        let mut first_at = None;
        for (i, chunk) in bytes.chunks(7).enumerate() {
            if probe.push(chunk).unwrap().first_audible {
                first_at = Some(i * 7);
            }
        }
        let at = first_at.expect("audible");
        assert!((44 + 1600 * 2 - 7..=44 + 1600 * 2).contains(&at), "at {at}");
        assert!((probe.audio_ms() - 110.0).abs() < 1e-9);
        assert_eq!(probe.lead_ms(), Some(100.0));
        assert_eq!(probe.bytes(), bytes.len() as u64);
    }

    #[test]
    fn raw_pcm_counts_from_first_byte() {
        let mut probe = AudioProbe::new(Container::RawPcm, 16000);
        assert!(!probe.push(&[0, 0, 0]).unwrap().first_audible);
        assert!(probe.push(&[0x10, 0x27]).unwrap().first_audible);
        assert!(!probe.push(&[0x10, 0x27]).unwrap().first_audible);
    }

    #[test]
    fn an_empty_chunk_keeps_the_odd_byte() {
        // Found by core/tests/parse_props (audio_stream): the odd byte of a sample split
        // across chunks was dropped when an empty chunk came between its halves, so every
        // later sample was read from the wrong pair of bytes.
        let mut probe = AudioProbe::new(Container::RawPcm, 16000);
        probe.push(&[0, 0, 0x10]).unwrap();
        probe.push(&[]).unwrap();
        assert!(probe.push(&[0x27, 0, 0]).unwrap().first_audible);
        assert_eq!(probe.audio_ms(), 3.0 / 16.0);
        assert_eq!(probe.lead_ms(), Some(1.0 / 16.0));
    }

    #[test]
    fn garbage_is_not_a_wav() {
        let mut probe = AudioProbe::new(Container::Wav, 16000);
        assert!(probe.push(b"{\"oops\": not audio at all").is_err());
    }

    #[test]
    fn silence_is_minus_120_dbfs() {
        assert_eq!(frame_dbfs(&[0; 320]), -120.0);
        let full = frame_dbfs(&[i16::MAX; 320]);
        assert!(full > -0.01 && full <= 0.0);
    }
}
