//! ElevenLabs audio streams: the `output_format` parser, then the body as it arrives —
//! raw PCM or WAV, cut into chunks anywhere — through `audio::AudioProbe`, which finds the
//! first audible sample. Any body gives findings or a `WavStreamError`, and how the body is
//! chunked changes nothing: not the result, not which chunk holds the first audible sample.

use latlab_core::audio::{AudioProbe, Container};
use latlab_core::backends::elevenlabs::parse_output_format;
use proptest::prelude::*;

use crate::mutate::{apply_bytes, byte_edits, cases, split_at_cuts, word};
use crate::wav::wav_parts;

const FORMATS: &[&str] = &[
    "pcm_16000",
    "pcm_22050",
    "pcm_44100",
    "wav_16000",
    "wav_8000",
    "mp3_44100_128",
    "ulaw_8000",
    "pcm",
    "wav_",
    "_16000",
];

/// What a probe found over a whole body.
#[derive(Debug, PartialEq)]
struct Findings {
    /// Bytes up to and including the one that completed the first audible sample.
    first_audible_by: Option<u64>,
    /// The probe's figures, or where the stream failed (`Err`: bytes fed so far).
    figures: Result<(Option<u64>, u64, u64), u64>,
}

/// Feeds `chunks` to a fresh probe. `first_audible_by` is only known to the chunk, so with
/// chunks it is the end of the chunk that reported it.
fn feed(container: Container, rate: u32, chunks: &[Vec<u8>]) -> (Findings, Vec<u64>) {
    let mut probe = AudioProbe::new(container, rate);
    let mut fed = 0u64;
    let mut ends = Vec::new();
    let mut first = None;
    for chunk in chunks {
        let before = fed;
        fed += chunk.len() as u64;
        ends.push(fed);
        match probe.push(chunk) {
            Ok(f) => {
                if f.first_audible {
                    assert!(first.is_none(), "first audible reported twice");
                    first = Some((before, fed));
                }
            }
            Err(_) => {
                return (
                    Findings {
                        first_audible_by: first.map(|(_, end)| end),
                        figures: Err(fed),
                    },
                    ends,
                );
            }
        }
    }
    let lead = probe.lead_ms();
    let audio = probe.audio_ms();
    assert!(audio.is_finite() && audio >= 0.0, "audio_ms {audio}");
    assert!(
        lead.is_none_or(|l| l.is_finite() && l >= 0.0 && l <= audio),
        "lead_ms {lead:?}"
    );
    assert_eq!(lead.is_some(), probe.audible());
    assert_eq!(probe.bytes(), fed);
    // Compare milliseconds as micro-units: the same samples give the same float.
    let figures = (
        lead.map(|l| (l * 1000.0).round() as u64),
        (audio * 1000.0).round() as u64,
        fed,
    );
    (
        Findings {
            first_audible_by: first.map(|(_, end)| end),
            figures: Ok(figures),
        },
        ends,
    )
}

/// Checks that `chunks` find what byte-by-byte feeding finds.
fn same_as_bytewise(
    container: Container,
    rate: u32,
    body: &[u8],
    cuts: &[usize],
) -> Result<(), TestCaseError> {
    let bytewise: Vec<Vec<u8>> = body.iter().map(|b| vec![*b]).collect();
    let (exact, _) = feed(container, rate, &bytewise);
    let chunks = split_at_cuts(body, cuts);
    let (chunked, ends) = feed(container, rate, &chunks);
    // A stream fails once its header is known to be bad: in the chunk that completes it.
    match (&exact.figures, &chunked.figures) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(at), Err(end)) => {
            prop_assert_eq!(ends.iter().find(|e| *e >= at), Some(end));
        }
        (a, b) => prop_assert!(false, "byte by byte {a:?}, in chunks {b:?}"),
    }
    // The chunk that reports the first audible sample is the one holding its last byte.
    match (exact.first_audible_by, chunked.first_audible_by) {
        (None, None) => {}
        (Some(byte), Some(end)) => {
            let holder = ends.iter().find(|e| **e >= byte).copied();
            prop_assert_eq!(holder, Some(end));
        }
        (a, b) => prop_assert!(false, "first audible by byte {a:?}, in chunks {b:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn output_format_is_a_format_or_an_error(format in word(FORMATS)) {
        if let Ok((container, rate)) = parse_output_format(&format) {
            let codec = if container == Container::Wav { "wav" } else { "pcm" };
            prop_assert!(format.starts_with(codec));
            // A rate of 0 is accepted here; the probe must survive it.
            let mut probe = AudioProbe::new(container, rate);
            let _ = probe.push(&[0, 0x40, 0x10]);
            prop_assert!(probe.audio_ms().is_finite());
        }
    }

    #[test]
    fn wav_stream_chunking_changes_nothing(
        parts in wav_parts(),
        edits in byte_edits(2),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        rate in prop::sample::select(&[16_000u32, 0, 1, u32::MAX][..]),
    ) {
        let body = apply_bytes(parts.bytes(), &edits);
        same_as_bytewise(Container::Wav, rate, &body, &cuts)?;
    }

    #[test]
    fn raw_pcm_chunking_changes_nothing(
        body in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        rate in prop::sample::select(&[16_000u32, 0, 1, u32::MAX][..]),
    ) {
        same_as_bytewise(Container::RawPcm, rate, &body, &cuts)?;
    }

    #[test]
    fn any_bytes_as_wav_are_findings_or_an_error(
        body in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut body = body;
        // Half the time past the signature, so the chunk walk is reached.
        if body.len() >= 12 && body[0] % 2 == 0 {
            body[..4].copy_from_slice(b"RIFF");
            body[8..12].copy_from_slice(b"WAVE");
        }
        same_as_bytewise(Container::Wav, 16_000, &body, &cuts)?;
    }
}
