//! criterion benches of latlab's own hot paths — what it does per span, per streamed chunk and
//! per audio frame, beside the systems it measures. Seeded inputs (`gen.rs`); names say what is
//! measured. `cargo bench -p latlab-benches --bench hot_paths`; figures in docs/performance.md.
//! The same functions' instruction counts, gated in CI, are in `iai.rs`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latlab_benches as input;
use latlab_core::audio::{AudioProbe, Container};
use latlab_core::backends::{deepgram, openai};
use latlab_core::clock::Epoch;
use latlab_core::recorder::SpanRecorder;
use latlab_core::schedule::CallSchedule;

/// Spans recorded between two drains in the recorder benches (the sink drains every 10 ms).
const BATCH: usize = 10_000;

/// Recording a span, as the pipeline's thread pays for it: stamp it on the run's clock, fill
/// in the record (the call's labels shared, no string copied) and push it onto the recorder's
/// queue. The queue is drained between batches, outside the timing, as the sink's writer
/// thread does.
fn record_span(c: &mut Criterion) {
    let labels = input::call_labels();
    let epoch = Epoch::now();
    c.bench_function("recorder/stamp_and_record_span", |b| {
        b.iter_custom(|iters| {
            let recorder = SpanRecorder::new(BATCH);
            let (mut spans, mut turns) = (Vec::with_capacity(BATCH), Vec::new());
            let (mut timed, mut left, mut k) = (Duration::ZERO, iters, 0u32);
            while left > 0 {
                let n = left.min(BATCH as u64);
                let start = Instant::now();
                for _ in 0..n {
                    k = k.wrapping_add(1);
                    let span = input::llm_span(&labels, k, epoch.elapsed_ns());
                    black_box(recorder.record_span(span));
                }
                timed += start.elapsed();
                recorder.drain(&mut spans, &mut turns);
                spans.clear();
                left -= n;
            }
            timed
        })
    });
    // The writer thread's work per span, off the pipeline's thread: the record becomes the
    // result row (strings written out) and a JSON line in the log's buffer.
    let span = input::llm_span(&labels, 7, 2_000_000_000);
    let mut line = Vec::with_capacity(1024);
    c.bench_function("sink_writer/span_to_row_and_json_line", |b| {
        b.iter(|| {
            line.clear();
            serde_json::to_writer(&mut line, &black_box(&span).to_span()).expect("serializable");
            line.len()
        })
    });
}

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

criterion_group!(benches, record_span, parse, schedule, wav, audible_onset);
criterion_main!(benches);
