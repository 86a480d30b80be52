//! Instruction counts of latlab's hot paths under callgrind: the functions `hot_paths.rs` times,
//! counted instead, so a change in latlab's own overhead shows without a noisy timer. Inputs
//! come from `gen.rs` through each bench's arguments and setup, which callgrind does not count;
//! every bench hands its input back so that freeing it is not counted either. (The bench
//! functions' comments are `//`: `#[library_benchmark]` rejects doc attributes.)
//!
//! `cargo bench -p latlab-benches --bench iai` (needs valgrind and `iai-callgrind-runner`
//! 0.16.1); `tests/iai_gate.rs` compares the counts with `iai_baseline.toml` in CI.

use std::hint::black_box;

use iai_callgrind::{library_benchmark, library_benchmark_group, main};
use latlab_benches as input;
use latlab_core::audio::{AudioProbe, Container};
use latlab_core::backends::{deepgram, openai};
use latlab_core::clock::Epoch;
use latlab_core::recorder::SpanRecorder;
use latlab_core::schedule::CallSchedule;
use latlab_core::timing::CallLabels;

/// An empty recorder with room for `capacity` spans, a call's labels and the run's clock.
fn recorder_with_room(capacity: usize) -> (SpanRecorder, std::sync::Arc<CallLabels>, Epoch) {
    (
        SpanRecorder::new(capacity),
        input::call_labels(),
        Epoch::now(),
    )
}

// Recording a span, as the pipeline's thread pays for it: stamp it on the run's clock, fill in
// the record (the call's labels shared by reference count) and push it onto the queue.
#[library_benchmark]
#[bench::llm_span(args = (1_024), setup = recorder_with_room)]
fn stamp_and_record_span(
    (recorder, labels, epoch): (SpanRecorder, std::sync::Arc<CallLabels>, Epoch),
) -> (SpanRecorder, std::sync::Arc<CallLabels>) {
    let span = input::llm_span(&labels, 7, epoch.elapsed_ns());
    black_box(recorder.record_span(span));
    (recorder, labels)
}

library_benchmark_group!(name = recorder; benchmarks = stamp_and_record_span);

// Parsing one SSE event of an OpenAI token stream (one `chat.completion.chunk`).
#[library_benchmark]
#[bench::sse_token_event(input::sse_token_event())]
fn openai_parse_event(event: String) -> (impl Sized, String) {
    (openai::parse_event(black_box(&event)), event)
}

// Parsing one Deepgram live `Results` message with three words.
#[library_benchmark]
#[bench::final_result_message(input::deepgram_final_message())]
fn deepgram_parse_message(message: String) -> (impl Sized, String) {
    (deepgram::parse_message(black_box(&message)), message)
}

library_benchmark_group!(name = parse; benchmarks = openai_parse_event, deepgram_parse_message);

/// A five-minute 16 kHz call in 20 ms frames, and which frame to look up.
fn call_at_frame(k: usize) -> (CallSchedule, Vec<i16>, usize) {
    let schedule = CallSchedule::new(5_000_000_000, 16_000, 20, 1.0);
    (schedule, vec![0i16; 16_000 * 300], k)
}

// The feeder's per-frame work: when frame k is due and which samples it is. It depends on k
// only, so frame 10 and frame 10,000 must cost the same number of instructions.
#[library_benchmark]
#[bench::frame_10(args = (10), setup = call_at_frame)]
#[bench::frame_10000(args = (10_000), setup = call_at_frame)]
fn frame_due_and_slice(
    (schedule, samples, k): (CallSchedule, Vec<i16>, usize),
) -> ((u64, usize), Vec<i16>) {
    let k = black_box(k);
    let due = schedule.frame_due_ns(k, samples.len());
    ((due, schedule.frame(&samples, k).len()), samples)
}

library_benchmark_group!(name = schedule; benchmarks = frame_due_and_slice);

/// A WAV file of one second of speech-like 16 kHz PCM (seeded).
fn wav_file_16khz(seed: u64) -> Vec<u8> {
    input::wav_bytes(&input::speech_like_pcm(16_000, seed), 16_000)
}

// Reading one second of a 16 kHz WAV with hound (header and 16,000 samples), as a dataset
// call is loaded.
#[library_benchmark]
#[bench::one_second_16khz(args = (7), setup = wav_file_16khz)]
fn hound_decode_i16(bytes: Vec<u8>) -> (Vec<i16>, Vec<u8>) {
    let reader =
        hound::WavReader::new(std::io::Cursor::new(black_box(&bytes[..]))).expect("valid WAV");
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .expect("valid samples");
    (samples, bytes)
}

library_benchmark_group!(name = wav; benchmarks = hound_decode_i16);

// Finding the first audible sample of a TTS stream: the probe parses the WAV header as it
// arrives and scans for the end of leading silence, fed in 100 ms network chunks (3,200 bytes).
#[library_benchmark]
#[bench::one_second_16khz(args = (11), setup = wav_file_16khz)]
fn probe_wav_stream_in_100ms_chunks(bytes: Vec<u8>) -> ((bool, Option<f64>), Vec<u8>) {
    let mut probe = AudioProbe::new(Container::Wav, 16_000);
    for chunk in black_box(&bytes[..]).chunks(3_200) {
        probe.push(chunk).expect("valid stream");
    }
    ((probe.audible(), probe.lead_ms()), bytes)
}

library_benchmark_group!(name = audio; benchmarks = probe_wav_stream_in_100ms_chunks);

main!(
    library_benchmark_groups = recorder,
    parse,
    schedule,
    wav,
    audio
);
