//! The span recorder: what the pipeline pays, on its own thread, to record a finished turn.
//!
//! Recording must cost next to nothing beside what it measures, so the hot path is a push
//! of each [`SpanRecord`] (the call's labels shared by reference count, timestamps and units
//! by value) onto a bounded lock-free queue allocated when the run starts: no lock, no
//! string, no heap allocation, no system call. A writer thread of the sink drains the queue a
//! few times a second and does the slow work there — strings, JSON lines, flushes, the live
//! view and the histograms.
//!
//! Nothing is lost when the writer falls behind: a push that finds the queue full goes to an
//! overflow list under a lock (the only path that allocates, and counted in
//! [`SpanRecorder::overflowed`]). Turns are recorded whole: once [`SpanRecorder::close`] has
//! returned, no turn is half in and half out.
//!
//! `benches/` measures [`SpanRecorder::record_span`] (criterion and instruction counts), and
//! `core/tests/recorder_alloc.rs` asserts with a counting allocator that it allocates
//! nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::timing::{SpanRecord, TurnTimeline};

/// Spans the default recorder holds before the writer must have drained it (about 3 MB).
pub const DEFAULT_SPAN_CAPACITY: usize = 16_384;

/// A run's span recorder: many pipeline tasks record into it, one writer drains it.
pub struct SpanRecorder {
    spans: ArrayQueue<SpanRecord>,
    turns: ArrayQueue<TurnTimeline>,
    overflow: Mutex<Overflow>,
    overflowed: AtomicU64,
    /// Recordings under way: [`SpanRecorder::close`] waits for them to end.
    active: AtomicUsize,
    closed: AtomicBool,
}

#[derive(Default)]
struct Overflow {
    spans: Vec<SpanRecord>,
    turns: Vec<TurnTimeline>,
}

/// A recording under way; ends the recording when dropped.
struct Active<'a>(&'a AtomicUsize);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SpanRecorder {
    /// A recorder with room for `span_capacity` spans (and a fifth as many turn timelines)
    /// between two drains, allocated now.
    pub fn new(span_capacity: usize) -> SpanRecorder {
        let span_capacity = span_capacity.max(5);
        SpanRecorder {
            spans: ArrayQueue::new(span_capacity),
            turns: ArrayQueue::new(span_capacity.div_ceil(5)),
            overflow: Mutex::new(Overflow::default()),
            overflowed: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn enter(&self) -> Option<Active<'_>> {
        // SeqCst on both sides pairs with `close`: either `close` sees this recording as
        // active and waits for it, or this recording sees the recorder closed.
        self.active.fetch_add(1, Ordering::SeqCst);
        let active = Active(&self.active);
        (!self.closed.load(Ordering::SeqCst)).then_some(active)
    }

    fn push_span(&self, span: SpanRecord) {
        if let Err(span) = self.spans.push(span) {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
            overflow.spans.push(span);
        }
    }

    fn push_turn(&self, timeline: TurnTimeline) {
        if let Err(timeline) = self.turns.push(timeline) {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
            overflow.turns.push(timeline);
        }
    }

    /// Records one span: the hot path. Returns false (and records nothing) once the recorder
    /// is closed.
    pub fn record_span(&self, span: SpanRecord) -> bool {
        let Some(_active) = self.enter() else {
            return false;
        };
        self.push_span(span);
        true
    }

    /// Records a finished turn: its spans, then its timeline, as one recording (a turn is
    /// never half recorded when the recorder closes). Returns false once it is closed.
    pub fn record_turn(
        &self,
        timeline: TurnTimeline,
        spans: impl IntoIterator<Item = SpanRecord>,
    ) -> bool {
        let Some(_active) = self.enter() else {
            return false;
        };
        for span in spans {
            self.push_span(span);
        }
        self.push_turn(timeline);
        true
    }

    /// Moves everything recorded so far into `spans` and `turns`; returns how many items.
    ///
    /// Timelines are taken before spans, so a turn's spans are never behind its timeline.
    pub fn drain(&self, spans: &mut Vec<SpanRecord>, turns: &mut Vec<TurnTimeline>) -> usize {
        let before = spans.len() + turns.len();
        while let Some(t) = self.turns.pop() {
            turns.push(t);
        }
        while let Some(s) = self.spans.pop() {
            spans.push(s);
        }
        if self.overflowed.load(Ordering::Relaxed) > 0 {
            let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
            turns.append(&mut overflow.turns);
            spans.append(&mut overflow.spans);
        }
        spans.len() + turns.len() - before
    }

    /// Stops recording: later recordings are refused, and this returns once every recording
    /// under way has finished, so one last [`SpanRecorder::drain`] takes everything.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    /// Whether [`SpanRecorder::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Spans and timelines that found the queue full and took the (allocating) overflow path.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Spans the queue holds without overflowing.
    pub fn capacity(&self) -> usize {
        self.spans.capacity()
    }
}

impl Default for SpanRecorder {
    fn default() -> Self {
        SpanRecorder::new(DEFAULT_SPAN_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::timing::{CallLabels, Outcome, Stage};

    pub(crate) fn labels() -> Arc<CallLabels> {
        Arc::new(CallLabels {
            run: "r".into(),
            scenario: "s".into(),
            profile: "p".into(),
            call: "c".into(),
            iteration: 0,
            backends: ["vad", "stt", "llm", "tool", "tts", "pipeline"].map(String::from),
        })
    }

    fn timeline(turn: u32) -> TurnTimeline {
        TurnTimeline {
            run: "r".into(),
            scenario: "s".into(),
            profile: "p".into(),
            call: "c".into(),
            iteration: 0,
            turn,
            user_start_scheduled_ns: 0,
            user_end_scheduled_ns: 1,
            outcome: Outcome::Error,
            ..TurnTimeline::default()
        }
    }

    fn spans(labels: &Arc<CallLabels>, turn: u32) -> [SpanRecord; 6] {
        Stage::ALL.map(|stage| SpanRecord::new(labels, turn, stage, u64::from(turn)))
    }

    #[test]
    fn a_full_queue_overflows_without_losing_a_span() {
        let recorder = SpanRecorder::new(10);
        let labels = labels();
        for turn in 0..7 {
            assert!(recorder.record_turn(timeline(turn), spans(&labels, turn)));
        }
        // 42 spans into room for 10, 7 timelines into room for 2.
        assert_eq!(recorder.overflowed(), 32 + 5);
        let (mut s, mut t) = (Vec::new(), Vec::new());
        assert_eq!(recorder.drain(&mut s, &mut t), 49);
        assert_eq!(s.len(), 42);
        let mut turns: Vec<u32> = t.iter().map(|t| t.turn).collect();
        turns.sort_unstable();
        assert_eq!(turns, (0..7).collect::<Vec<_>>());
        for turn in 0..7 {
            let stages: Vec<Stage> = s
                .iter()
                .filter(|r| r.turn == turn)
                .map(|r| r.stage)
                .collect();
            assert_eq!(stages.len(), 6, "turn {turn}: {stages:?}");
        }
        assert_eq!(recorder.drain(&mut s, &mut t), 0);
    }

    #[test]
    fn a_closed_recorder_refuses_whole_turns() {
        let recorder = SpanRecorder::new(100);
        let labels = labels();
        assert!(recorder.record_turn(timeline(0), spans(&labels, 0)));
        recorder.close();
        assert!(!recorder.record_turn(timeline(1), spans(&labels, 1)));
        assert!(!recorder.record_span(SpanRecord::new(&labels, 2, Stage::Llm, 0)));
        let (mut s, mut t) = (Vec::new(), Vec::new());
        recorder.drain(&mut s, &mut t);
        assert_eq!((s.len(), t.len()), (6, 1));
    }

    #[test]
    fn turns_recorded_from_many_threads_all_arrive_whole() {
        let recorder = Arc::new(SpanRecorder::new(64));
        let labels = labels();
        let drained = std::thread::scope(|scope| {
            for thread in 0..4u32 {
                let (recorder, labels) = (Arc::clone(&recorder), Arc::clone(&labels));
                scope.spawn(move || {
                    for k in 0..500 {
                        let turn = thread * 1000 + k;
                        recorder.record_turn(timeline(turn), spans(&labels, turn));
                    }
                });
            }
            let (mut s, mut t) = (Vec::new(), Vec::new());
            while t.len() < 2000 {
                recorder.drain(&mut s, &mut t);
                std::thread::yield_now();
            }
            recorder.close();
            recorder.drain(&mut s, &mut t);
            (s, t)
        });
        let (s, t) = drained;
        assert_eq!((s.len(), t.len()), (12_000, 2000));
    }

    #[test]
    fn a_record_becomes_the_span_row_with_its_labels() {
        let labels = labels();
        let mut r = SpanRecord::new(&labels, 3, Stage::Tts, 100);
        r.latency_ns = Some(42);
        r.outcome = Outcome::Ok;
        let span = r.to_span();
        assert_eq!(
            (span.run.as_str(), span.call.as_str(), span.backend.as_str()),
            ("r", "c", "tts")
        );
        assert_eq!(
            (span.turn, span.stage, span.latency_ns),
            (3, Stage::Tts, Some(42))
        );
        for stage in Stage::ALL {
            assert_eq!(Stage::ALL[stage.index()], stage);
        }
    }
}
