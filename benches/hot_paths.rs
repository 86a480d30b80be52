//! criterion benches of latlab's own hot paths — what it does per streamed chunk and per audio
//! frame, beside the systems it measures. Seeded inputs (`gen.rs`); names say what is
//! measured. `cargo bench -p latlab-benches --bench hot_paths`; figures in docs/performance.md.
//! The same functions' instruction counts, gated in CI, are in `iai.rs`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latlab_benches as input;
use latlab_core::audio::{AudioProbe, Container};
use latlab_core::backends::{deepgram, openai};
use latlab_core::schedule::CallSchedule;

/// Parsing one SSE event of an OpenAI token stream, and one Deepgram final result.
fn parse(c: &mut Criterion) {
    let event = input::sse_token_event();
    c.bench_function("openai/parse_sse_token_event", |b| {
        b.iter(|| openai::parse_event(black_box(&event)))
    });
    let message = input::deepgram_final_message();
    c.bench_function("deepgram/parse_final_result_message", |b| {
        b.iter(|| deepgram::parse_message(black_box(&message)))
    });
}

/// The feeder's per-frame work: when frame k is due and which samples it is. It depends on k
/// only (no state shared with other calls), so its cost is the same with 1 or 10,000 calls in
/// flight; the bench checks frame 10 and frame 10,000 of a long call cost the same.
fn schedule(c: &mut Criterion) {
    let samples = vec![0i16; 16_000 * 300];
    let schedule = CallSchedule::new(5_000_000_000, 16_000, 20, 1.0);
    let mut g = c.benchmark_group("schedule/frame_due_and_slice");
    for k in [10usize, 10_000] {
        g.bench_function(format!("frame_{k}"), |b| {
            b.iter(|| {
                let k = black_box(k);
                let due = schedule.frame_due_ns(k, samples.len());
                (due, schedule.frame(&samples, k).len())
            })
        });
    }
    g.finish();
}

/// Reading one second of a 16 kHz WAV (header and samples), as a dataset call is loaded.
fn wav(c: &mut Criterion) {
    let bytes = input::wav_bytes(&input::speech_like_pcm(16_000, 7), 16_000);
    let mut g = c.benchmark_group("wav");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_1s_16khz", |b| {
        b.iter(|| {
            let reader = hound::WavReader::new(std::io::Cursor::new(black_box(&bytes[..])))
                .expect("valid WAV");
            reader
                .into_samples::<i16>()
                .collect::<Result<Vec<_>, _>>()
                .expect("valid samples")
        })
    });
    g.finish();
}

/// Finding the first audible sample of a TTS stream: the probe parses the WAV header as it
/// arrives and scans for the end of leading silence, fed in 100 ms network chunks.
fn audible_onset(c: &mut Criterion) {
    let bytes = input::wav_bytes(&input::speech_like_pcm(16_000, 11), 16_000);
    let mut g = c.benchmark_group("audio");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("probe_1s_wav_stream_in_100ms_chunks", |b| {
        b.iter(|| {
            let mut probe = AudioProbe::new(Container::Wav, 16_000);
            for chunk in black_box(&bytes[..]).chunks(3_200) {
                probe.push(chunk).expect("valid stream");
            }
            (probe.audible(), probe.lead_ms())
        })
    });
    g.finish();
}

criterion_group!(benches, parse, schedule, wav, audible_onset);
criterion_main!(benches);
