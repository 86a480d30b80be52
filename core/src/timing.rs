//! The timing model: a timestamp at every stage boundary of every turn, and a span per stage.
//!
//! Every latency is measured from a *scheduled* time taken from the recording (the end of
//! the user's speech, not the moment the harness got round to noticing it), so a stall in
//! the pipeline or the harness shows up in the numbers instead of being hidden
//! (coordinated omission). `docs/metrics.md` documents each field with a timeline diagram.

use std::sync::Arc;

pub use latlab_results::agent::{AgentTurn, Interruption};
pub use latlab_results::span::{ErrorKind, Outcome, Span, Stage, StageError, TurnTimeline, Units};
pub use latlab_results::tool::{CacheOutcome, ToolTurn};

/// What every span of one call shares: its identity and the backend serving each stage.
///
/// Made once per call and shared by reference count, so recording a span copies no string
/// (the recorder's hot path allocates nothing; see [`crate::recorder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLabels {
    /// Run id.
    pub run: String,
    /// Scenario name.
    pub scenario: String,
    /// Profile name.
    pub profile: String,
    /// Call id from the dataset.
    pub call: String,
    /// Which replay of the dataset this call belongs to.
    pub iteration: u32,
    /// The backend serving each stage, in [`Stage::ALL`] order (`pipeline` for the turn).
    pub backends: [String; 6],
}

/// One stage of one turn as the pipeline records it: a [`Span`] whose strings are the
/// call's shared [`CallLabels`]. [`SpanRecord::to_span`] makes the row of `spans.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// The call's labels.
    pub labels: Arc<CallLabels>,
    /// Turn index within the call (0-based).
    pub turn: u32,
    /// Stage.
    pub stage: Stage,
    /// See [`Span::scheduled_ns`].
    pub scheduled_ns: u64,
    /// See [`Span::start_ns`].
    pub start_ns: Option<u64>,
    /// See [`Span::first_output_ns`].
    pub first_output_ns: Option<u64>,
    /// See [`Span::end_ns`].
    pub end_ns: Option<u64>,
    /// See [`Span::latency_ns`].
    pub latency_ns: Option<i64>,
    /// Units of work.
    pub units: Units,
    /// How the stage ended.
    pub outcome: Outcome,
    /// The error, when `outcome` is `Error`.
    pub error: Option<StageError>,
    /// On a tool span: where the result came from.
    pub cache: Option<CacheOutcome>,
}

impl SpanRecord {
    /// A skipped span of `stage` for turn `turn`, scheduled at `scheduled_ns`, to be filled in.
    pub fn new(labels: &Arc<CallLabels>, turn: u32, stage: Stage, scheduled_ns: u64) -> Self {
        SpanRecord {
            labels: Arc::clone(labels),
            turn,
            stage,
            scheduled_ns,
            start_ns: None,
            first_output_ns: None,
            end_ns: None,
            latency_ns: None,
            units: Units::default(),
            outcome: Outcome::Skipped,
            error: None,
            cache: None,
        }
    }

    /// The backend that served this span's stage.
    pub fn backend(&self) -> &str {
        &self.labels.backends[self.stage.index()]
    }

    /// The result row, with the labels written out.
    pub fn to_span(&self) -> Span {
        let l = &*self.labels;
        Span {
            run: l.run.clone(),
            scenario: l.scenario.clone(),
            profile: l.profile.clone(),
            call: l.call.clone(),
            iteration: l.iteration,
            turn: self.turn,
            stage: self.stage,
            backend: self.backend().to_string(),
            scheduled_ns: self.scheduled_ns,
            start_ns: self.start_ns,
            first_output_ns: self.first_output_ns,
            end_ns: self.end_ns,
            latency_ns: self.latency_ns,
            units: self.units.clone(),
            outcome: self.outcome,
            error: self.error.clone(),
            cache: self.cache,
        }
    }
}

/// Receives spans and turn timelines as turns complete. Implemented by the harness's sinks
/// (on a [`crate::recorder::SpanRecorder`], which allocates nothing on this path).
pub trait SpanSink: Send + Sync {
    /// One turn is complete (successfully or not): its timeline and one span per stage, in
    /// [`Stage::ALL`] order.
    fn record_turn(&self, timeline: TurnTimeline, spans: [SpanRecord; 6]);

    /// Frame pacing: how late one audio frame left relative to its schedule.
    fn record_pacing(&self, _lag_ns: u64) {}

    /// The endpointer declared the end of speech `lag_ns` after the frame that completed it
    /// was due: latlab's own share of a VAD-endpointed turn's endpoint latency.
    fn record_endpoint_lag(&self, _lag_ns: u64) {}

    /// Frame pacing of several frames at once (the feeder hands over a call's lags in
    /// batches, so frames do not contend for a sink's lock).
    fn record_pacing_batch(&self, lags_ns: &[u64]) {
        for &lag in lags_ns {
            self.record_pacing(lag);
        }
    }
}

/// Signed difference `a − b` of two epoch timestamps.
pub fn diff_ns(a: u64, b: u64) -> i64 {
    (i128::from(a) - i128::from(b)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}
