//! WAV files as the strategies make them: a RIFF/WAVE header whose every field is usually
//! plausible and sometimes anything (format tag, channels, rate, bits, chunk sizes), optional
//! WAVE_FORMAT_EXTENSIBLE, extra chunks (odd sizes, padding, lying sizes) before `data`.

use proptest::prelude::*;

/// The KSDATAFORMAT_SUBTYPE_PCM GUID's bytes.
const PCM_GUID: [u8; 16] = [
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// The parts of a WAV file, each field free to lie.
#[derive(Debug, Clone)]
pub struct WavParts {
    pub format_tag: u16,
    pub channels: u16,
    pub rate: u32,
    pub byte_rate: u32,
    pub block_align: u16,
    pub bits: u16,
    /// `Some`: a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk with these valid bits, channel mask
    /// and sub-format GUID.
    pub extensible: Option<(u16, u32, [u8; 16])>,
    /// Chunks before `data`: id, body, declared size (`None`: the true size).
    pub extra: Vec<([u8; 4], Vec<u8>, Option<u32>)>,
    /// `fmt` before the extra chunks, or after them.
    pub fmt_first: bool,
    pub data: Vec<u8>,
    /// The data chunk's declared size (`None`: the true size).
    pub data_size: Option<u32>,
    /// The RIFF size (`None`: the true size).
    pub riff_size: Option<u32>,
}

impl WavParts {
    /// A valid mono 16-bit PCM file of these samples.
    pub fn pcm16(rate: u32, samples: &[i16]) -> WavParts {
        WavParts {
            format_tag: 1,
            channels: 1,
            rate,
            byte_rate: rate * 2,
            block_align: 2,
            bits: 16,
            extensible: None,
            extra: Vec::new(),
            fmt_first: true,
            data: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            data_size: None,
            riff_size: None,
        }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&self.format_tag.to_le_bytes());
        fmt.extend_from_slice(&self.channels.to_le_bytes());
        fmt.extend_from_slice(&self.rate.to_le_bytes());
        fmt.extend_from_slice(&self.byte_rate.to_le_bytes());
        fmt.extend_from_slice(&self.block_align.to_le_bytes());
        fmt.extend_from_slice(&self.bits.to_le_bytes());
        if let Some((valid_bits, mask, guid)) = self.extensible {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&valid_bits.to_le_bytes());
            fmt.extend_from_slice(&mask.to_le_bytes());
            fmt.extend_from_slice(&guid);
        }
        let mut chunks = Vec::new();
        let mut chunk = |id: &[u8], body: &[u8], declared: Option<u32>| {
            chunks.extend_from_slice(id);
            chunks.extend_from_slice(&declared.unwrap_or(body.len() as u32).to_le_bytes());
            chunks.extend_from_slice(body);
            if body.len() % 2 == 1 {
                chunks.push(0);
            }
        };
        if self.fmt_first {
            chunk(b"fmt ", &fmt, None);
        }
        for (id, body, declared) in &self.extra {
            chunk(id, body, *declared);
        }
        if !self.fmt_first {
            chunk(b"fmt ", &fmt, None);
        }
        chunk(b"data", &self.data, self.data_size);
        let mut out = Vec::with_capacity(12 + chunks.len());
        out.extend_from_slice(b"RIFF");
        let riff = self.riff_size.unwrap_or(4 + chunks.len() as u32);
        out.extend_from_slice(&riff.to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend_from_slice(&chunks);
        out
    }
}

fn mostly<T: Clone + std::fmt::Debug + 'static>(
    plausible: &'static [T],
    any: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![4 => prop::sample::select(plausible), 1 => any].boxed()
}

/// Samples: silence, then a loud part, then anything; at most a few thousand.
pub fn samples() -> impl Strategy<Value = Vec<i16>> {
    (
        0..2000usize,
        0..200usize,
        prop::collection::vec(any::<i16>(), 0..200),
    )
        .prop_map(|(silence, loud, mut rest)| {
            let mut v = vec![0i16; silence];
            v.extend((0..loud).map(|i| if i % 2 == 0 { 9000 } else { -9000 }));
            v.append(&mut rest);
            v
        })
}

/// A WAV file: valid about half the time, else with some fields lying.
pub fn wav_parts() -> impl Strategy<Value = WavParts> {
    let valid = (
        prop::sample::select(&[8_000u32, 16_000, 22_050, 44_100][..]),
        samples(),
    )
        .prop_map(|(rate, s)| WavParts::pcm16(rate, &s));
    const CHUNK_IDS: &[[u8; 4]] = &[*b"LIST", *b"fact", *b"JUNK", *b"data", *b"fmt ", [0; 4]];
    let chunk_id = prop::sample::select(CHUNK_IDS);
    let extra = prop::collection::vec(
        (
            chunk_id,
            prop::collection::vec(any::<u8>(), 0..40),
            prop::option::weighted(
                0.3,
                mostly(
                    &[0u32, 1, 0xFFFF_FFFF, 0xFFFF_FFF0, 1 << 20, 1 << 31],
                    any::<u32>(),
                ),
            ),
        ),
        0..3,
    );
    let extensible = prop::option::weighted(
        0.2,
        (
            mostly(&[16u16, 0, 8, 32], any::<u16>()),
            any::<u32>(),
            prop_oneof![3 => Just(PCM_GUID), 1 => any::<[u8; 16]>()],
        ),
    );
    let size = prop::option::weighted(
        0.3,
        mostly(
            &[0u32, 1, 2, 3, 0xFFFF_FFFF, 0xFFFF_FFFE, 1 << 31],
            any::<u32>(),
        ),
    );
    let lying = (
        (
            mostly(&[1u16, 3, 0xFFFE, 0, 2], any::<u16>()),
            mostly(&[1u16, 2, 0, 0xFFFF], any::<u16>()),
            mostly(&[8_000u32, 16_000, 44_100, 0, 1, u32::MAX], any::<u32>()),
            any::<u32>(),
            mostly(&[2u16, 0, 1, 4, 0xFFFF], any::<u16>()),
            mostly(&[16u16, 8, 24, 32, 0, 1, 7, 17, 64, 0xFFFF], any::<u16>()),
        ),
        extensible,
        extra,
        any::<bool>(),
        samples(),
        size.clone(),
        size,
    )
        .prop_map(
            |(
                (format_tag, channels, rate, byte_rate, block_align, bits),
                extensible,
                extra,
                fmt_first,
                s,
                data_size,
                riff_size,
            )| WavParts {
                format_tag: if extensible.is_some() {
                    0xFFFE
                } else {
                    format_tag
                },
                channels,
                rate,
                byte_rate,
                block_align,
                bits,
                extensible,
                extra,
                fmt_first,
                data: s.iter().flat_map(|s| s.to_le_bytes()).collect(),
                data_size,
                riff_size,
            },
        );
    prop_oneof![valid, lying]
}
