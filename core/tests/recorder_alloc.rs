//! Recording a span allocates nothing: a counting allocator watches the recorder's hot path
//! (stamp a timestamp, build the span record, push it) and a whole turn's recording.
//!
//! Allocations are counted per thread, so the test harness's other threads do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use latlab_core::clock::Epoch;
use latlab_core::recorder::SpanRecorder;
use latlab_core::timing::{CallLabels, Outcome, SpanRecord, Stage, TurnTimeline, Units};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed straight to the system allocator; counting touches only a
// const-initialised thread-local cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations_in<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

fn labels() -> Arc<CallLabels> {
    Arc::new(CallLabels {
        run: "run-1".into(),
        scenario: "smoke".into(),
        profile: "balanced".into(),
        call: "call-01".into(),
        iteration: 0,
        backends: [
            "energy_vad",
            "deepgram",
            "openai",
            "none",
            "elevenlabs",
            "pipeline",
        ]
        .map(String::from),
    })
}

fn timeline(turn: u32) -> TurnTimeline {
    TurnTimeline {
        run: "run-1".into(),
        scenario: "smoke".into(),
        profile: "balanced".into(),
        call: "call-01".into(),
        iteration: 0,
        turn,
        user_start_scheduled_ns: 1_000_000,
        user_end_scheduled_ns: 2_000_000_000,
        speech_end_detected_ns: Some(2_400_000_000),
        final_transcript_ns: Some(2_460_000_000),
        llm_queued_ns: Some(2_460_050_000),
        llm_queue_wait_ns: Some(0),
        llm_request_sent_ns: Some(2_460_100_000),
        llm_first_token_ns: Some(2_710_000_000),
        first_sentence_ns: Some(2_800_000_000),
        tts_request_sent_ns: Some(2_800_100_000),
        tts_first_byte_ns: Some(2_950_000_000),
        tts_first_audible_ns: Some(2_960_000_000),
        tts_done_ns: Some(3_500_000_000),
        voice_to_voice_ns: Some(960_000_000),
        agent_audio_ms: Some(1500.0),
        reference: Some("what time is it".into()),
        transcript: Some("what time is it".into()),
        reply: Some("It is noon.".into()),
        outcome: Outcome::Ok,
        ..TurnTimeline::default()
    }
}

/// One stage's span as the pipeline fills it in, stamped now.
fn span(labels: &Arc<CallLabels>, epoch: &Epoch, turn: u32, stage: Stage) -> SpanRecord {
    let mut s = SpanRecord::new(labels, turn, stage, 2_000_000_000);
    let now = epoch.elapsed_ns();
    s.start_ns = Some(2_000_000_000);
    s.first_output_ns = Some(now);
    s.end_ns = Some(now);
    s.latency_ns = Some(now as i64 - 2_000_000_000);
    s.units = Units {
        audio_ms: Some(1200.0),
        chars: Some(15),
        ..Units::default()
    };
    s.outcome = Outcome::Ok;
    s
}

#[test]
fn recording_spans_and_turns_allocates_nothing() {
    let recorder = SpanRecorder::new(20_000);
    let labels = labels();
    let epoch = Epoch::now();

    let (spans_allocs, recorded) = allocations_in(|| {
        (0..10_000u32)
            .filter(|&k| recorder.record_span(span(&labels, &epoch, k, Stage::ALL[k as usize % 5])))
            .count()
    });
    assert_eq!(recorded, 10_000);
    assert_eq!(
        spans_allocs, 0,
        "recording 10,000 spans allocated {spans_allocs} times"
    );

    // A whole turn: the timeline's text was allocated by the pipeline as the turn ran;
    // handing it and its five spans to the recorder allocates nothing more.
    let timelines: Vec<TurnTimeline> = (0..1_000).map(timeline).collect();
    let (turn_allocs, recorded) = allocations_in(|| {
        timelines
            .into_iter()
            .map(|t| {
                let turn = t.turn;
                recorder.record_turn(
                    t,
                    Stage::ALL.map(|stage| span(&labels, &epoch, turn, stage)),
                )
            })
            .filter(|&recorded| recorded)
            .count()
    });
    assert_eq!(recorded, 1_000);
    assert_eq!(
        turn_allocs, 0,
        "recording 1,000 turns allocated {turn_allocs} times"
    );
    assert_eq!(recorder.overflowed(), 0);

    let (mut spans, mut turns) = (Vec::new(), Vec::new());
    recorder.drain(&mut spans, &mut turns);
    assert_eq!((spans.len(), turns.len()), (16_000, 1_000));
}

#[test]
fn the_counter_sees_allocations_and_the_overflow_path_allocates() {
    // The counter works: a vector allocates.
    let (n, v) = allocations_in(|| Vec::<u64>::with_capacity(8));
    assert_eq!(n, 1);
    drop(v);
    // A full queue takes the overflow path, which allocates (and is counted by the recorder).
    let recorder = SpanRecorder::new(5);
    let (labels, epoch) = (labels(), Epoch::now());
    for k in 0..5 {
        recorder.record_span(span(&labels, &epoch, k, Stage::Stt));
    }
    let (n, _) = allocations_in(|| recorder.record_span(span(&labels, &epoch, 5, Stage::Stt)));
    assert!(n >= 1, "the overflow path allocated {n} times");
    assert_eq!(recorder.overflowed(), 1);
}
