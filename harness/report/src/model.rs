//! The one report model every output renders from (terminal table, `summary.md`,
//! `summary.json`, HTML, plots), so they cannot disagree. Built once by `latlab-analysis`.
//!
//! All latencies are milliseconds. Every estimate carries its 95 % bootstrap confidence
//! interval and every row says how many samples it stands on.

use latlab_results::manifest::RunStatus;
use serde::{Deserialize, Serialize};

/// Version of this shape (`docs/schemas/summary.schema.json`).
pub const SCHEMA_VERSION: u32 = 1;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this shape.
    pub schema_version: u32,
    /// `latlab <version>`.
    pub generated_by: String,
    /// The runs the report covers, in the order given.
    pub runs: Vec<RunFacts>,
    /// Latency and error statistics per run × scenario × profile × backend × stage.
    pub summary: Vec<SummaryRow>,
    /// Why spans failed: per run × stage × error kind, with a count and one example.
    #[serde(default)]
    pub errors: Vec<ErrorRow>,
    /// latlab's own share of each stage's latency, and the agent's LLM queueing beside it
    /// (never in it), per run, from the manifest (emulated runs only).
    #[serde(default)]
    pub measurer: Vec<MeasurerRow>,
    /// Rates per run × profile.
    pub throughput: Vec<ThroughputRow>,
    /// Voice-to-voice per load stage, for runs that ramped their load.
    #[serde(default)]
    pub load_stages: Vec<LoadStageRow>,
    /// Transcript accuracy per run × profile.
    pub accuracy: Vec<AccuracyRow>,
    /// Transcript accuracy per run × profile × voice, for datasets that name their voices.
    #[serde(default)]
    pub accuracy_by_voice: Vec<AccuracyRow>,
    /// Series the plots draw.
    pub plots: PlotData,
    /// The slowest turns (voice-to-voice), with their full timeline.
    pub slowest_turns: Vec<TurnDetail>,
    /// A comparison of two runs or two profiles, when asked for.
    pub comparison: Option<Comparison>,
    /// Warnings worth reading before the numbers.
    pub notes: Vec<String>,
}

/// What one run stood on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFacts {
    /// Run id (the results folder's name).
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Dataset name.
    pub dataset: String,
    /// Dataset content hash.
    pub dataset_sha256: String,
    /// Seed.
    pub seed: u64,
    /// Git commit, when known.
    pub git_commit: Option<String>,
    /// Uncommitted changes at run time.
    pub git_dirty: bool,
    /// CPU model.
    pub cpu_model: String,
    /// Logical cores.
    pub cores: usize,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Operating system.
    pub os: String,
    /// Wall-clock start (RFC 3339).
    pub started_at: String,
    /// Where the run stands (`complete`, `interrupted`, `recovered`, `partial`, `running`).
    pub status: RunStatus,
    /// Seconds the run took.
    pub duration_s: Option<f64>,
    /// latlab version that ran it.
    pub latlab_version: String,
    /// Replay speed.
    pub speed: f64,
    /// Calls in flight.
    pub concurrency: usize,
}

/// A point estimate with its 95 % bootstrap confidence interval (ms unless stated).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate from the sample.
    pub value: f64,
    /// Lower bound of the 95 % interval.
    pub lo: f64,
    /// Upper bound of the 95 % interval.
    pub hi: f64,
}

/// Statistics of one stage (or voice-to-voice, stage `turn`) for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Run id.
    pub run: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Backend.
    pub backend: String,
    /// `endpoint`, `stt`, `llm`, `tts` or `turn` (voice-to-voice).
    pub stage: String,
    /// Successful samples the latency statistics stand on.
    pub count: u64,
    /// Failed spans.
    pub errors: u64,
    /// Spans skipped because an earlier stage failed.
    pub skipped: u64,
    /// errors / (count + errors).
    pub error_rate: f64,
    /// Mean latency.
    pub mean: Option<Estimate>,
    /// Median.
    pub p50: Option<Estimate>,
    /// 90th percentile.
    pub p90: Option<Estimate>,
    /// 95th percentile.
    pub p95: Option<Estimate>,
    /// 99th percentile.
    pub p99: Option<Estimate>,
    /// Largest latency.
    pub max: Option<f64>,
}

/// The failed spans of one stage that share an error kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// Run id.
    pub run: String,
    /// `endpoint`, `stt`, `llm` or `tts` (the turn repeats its first stage's error).
    pub stage: String,
    /// The error kind, e.g. `connect`, `http`, `stall` (`unknown` when a span has none).
    pub kind: String,
    /// Failed spans of this stage and kind.
    pub count: u64,
    /// One of their messages (a server's or the OS's words: escape when rendering).
    pub example: String,
}

/// One figure about the measurement itself: latlab's own share of a stage's latency, or time
/// the agent spent queueing that is the system's and not latlab's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurerRow {
    /// Run id.
    pub run: String,
    /// `latlab's own share` or `agent queueing`.
    pub figure: String,
    /// The stage it belongs to.
    pub stage: String,
    /// What was measured, in words.
    pub measured: String,
    /// Samples it stands on.
    pub n: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// Voice-to-voice of the turns that ended while one load stage held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadStageRow {
    /// The stage's name (or its number when unnamed).
    pub load_stage: String,
    /// Its level.
    pub target: f64,
    /// `calls in flight` (closed loop) or `calls/s` (open loop).
    pub unit: String,
    /// The statistics (stage `turn`), with their sample count.
    pub voice_to_voice: SummaryRow,
}

/// Rates of one run × profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// Turns recorded.
    pub turns: u64,
    /// Seconds from the first scheduled turn start to the last turn's end.
    pub duration_s: f64,
    /// Turns per second.
    pub turns_per_s: f64,
    /// STT real-time factor: (final transcript − user speech start) / user speech length.
    pub stt_rtf: Option<f64>,
    /// TTS real-time factor: (TTS done − request sent) / agent audio length.
    pub tts_rtf: Option<f64>,
    /// LLM tokens per second of streaming (first to last token).
    pub llm_tokens_per_s: Option<f64>,
}

/// Word error rate of final transcripts against the dataset text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// The voice (rows of `accuracy_by_voice` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// Turns with a final transcript.
    pub turns: u64,
    /// Reference words.
    pub words: u64,
    /// Substitutions + deletions + insertions.
    pub word_errors: u64,
    /// word_errors / words.
    pub wer: f64,
}

/// Everything the plots draw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlotData {
    /// Voice-to-voice latency CDF per series (run/profile).
    pub cdf: Vec<CdfSeries>,
    /// Median stage boundaries per series, relative to the end of user speech.
    pub waterfall: Vec<WaterfallBar>,
    /// p95 voice-to-voice per 1 s window, and calls in flight, per series.
    pub over_time: Vec<TimeSeries>,
    /// Latency histograms per stage (all series together, one colour each).
    pub histograms: Vec<StageHistogram>,
    /// p90/p95 voice-to-voice against WER, per series.
    pub pareto: Vec<ParetoPoint>,
    /// The machine during each run (`telemetry.jsonl`), one per run that has it.
    #[serde(default)]
    pub telemetry: Vec<TelemetrySeries>,
}

/// One CDF curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdfSeries {
    /// Legend label (`profile` or `run · profile`).
    pub label: String,
    /// (latency ms, cumulative fraction in [0, 1]), increasing.
    pub points: Vec<(f64, f64)>,
    /// p90 latency.
    pub p90: f64,
    /// p95 latency.
    pub p95: f64,
    /// 95 % bootstrap interval of the p90, `[lo, hi]` ms.
    #[serde(default)]
    pub p90_ci: Option<[f64; 2]>,
    /// 95 % bootstrap interval of the p95, `[lo, hi]` ms.
    #[serde(default)]
    pub p95_ci: Option<[f64; 2]>,
    /// Samples.
    pub count: u64,
}

/// One waterfall bar: medians of the turn's boundaries, ms after the end of user speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaterfallBar {
    /// Legend label.
    pub label: String,
    /// (boundary name, median ms relative to the scheduled end of user speech), in order.
    pub boundaries: Vec<(String, f64)>,
    /// Turns the medians stand on.
    pub count: u64,
}

/// Latency and load over the run's time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// Legend label.
    pub label: String,
    /// (window start s since the series' first turn, p95 voice-to-voice ms, turns in window).
    pub p95: Vec<(f64, f64, u64)>,
    /// (s since the series' first turn, calls in flight).
    pub in_flight: Vec<(f64, u64)>,
}

/// The machine during one run, from its `telemetry.jsonl` (sampled about once a second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySeries {
    /// The run id.
    pub label: String,
    /// Logical cores sampled.
    pub cores: usize,
    /// GPU names by NVML index; empty when the run had no NVIDIA GPU (or no driver).
    pub gpus: Vec<String>,
    /// Samples in time order; a long run's are averaged in buckets of consecutive samples.
    pub points: Vec<TelemetryPoint>,
    /// When each of the run's series (profiles) had turns, so the plot can mark who ran when.
    #[serde(default)]
    pub phases: Vec<TelemetryPhase>,
}

/// The span of one series' turns on the run's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryPhase {
    /// The series' legend label (as in the other plots).
    pub label: String,
    /// Scheduled start of its first turn, s since the run's epoch.
    pub start_s: f64,
    /// End of its last turn's last boundary, s since the run's epoch.
    pub end_s: f64,
}

/// The machine over one sampling interval (or the mean of a bucket of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryPoint {
    /// Seconds since the run's epoch (just before its first call started).
    pub t_s: f64,
    /// Mean busy share of all cores, 0–100.
    pub cpu_percent: f64,
    /// Busy share of each core, 0–100, in core order.
    pub cpu_core_percent: Vec<f64>,
    /// CPU used by the latlab process; 100 = one core fully busy.
    pub process_cpu_percent: f64,
    /// Resident memory of the latlab process, bytes.
    pub rss_bytes: u64,
    /// Received over all interfaces (loopback included), Mbit/s.
    pub net_rx_mbit_s: f64,
    /// Sent over all interfaces (loopback included), Mbit/s.
    pub net_tx_mbit_s: f64,
    /// One entry per GPU, in the order of [`TelemetrySeries::gpus`].
    pub gpu: Vec<GpuPoint>,
}

/// One GPU at one point; `None` where the device does not report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuPoint {
    /// Kernel-busy share, 0–100.
    pub utilization_percent: Option<f64>,
    /// Device memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Device memory in all, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Board power draw, watts.
    pub power_watts: Option<f64>,
    /// Die temperature, °C.
    pub temperature_c: Option<f64>,
}

/// One stage's latency histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageHistogram {
    /// Stage name.
    pub stage: String,
    /// Bin edges in ms (n + 1 edges).
    pub edges: Vec<f64>,
    /// Per series: (label, counts per bin).
    pub series: Vec<(String, Vec<u64>)>,
    /// Per series, in the same order: samples above the last edge (not in any bin).
    #[serde(default)]
    pub above: Vec<u64>,
}

/// One point of the latency/accuracy trade-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParetoPoint {
    /// Legend label.
    pub label: String,
    /// p90 voice-to-voice ms.
    pub p90: f64,
    /// p95 voice-to-voice ms.
    pub p95: f64,
    /// 95 % bootstrap interval of the p90, `[lo, hi]` ms.
    #[serde(default)]
    pub p90_ci: Option<[f64; 2]>,
    /// 95 % bootstrap interval of the p95, `[lo, hi]` ms.
    #[serde(default)]
    pub p95_ci: Option<[f64; 2]>,
    /// Turns the percentiles stand on.
    #[serde(default)]
    pub count: u64,
    /// Word error rate in [0, 1].
    pub wer: f64,
}

/// One turn's full timeline, ms relative to the scheduled end of user speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnDetail {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// Call id.
    pub call: String,
    /// Replay iteration.
    pub iteration: u32,
    /// Turn index.
    pub turn: u32,
    /// Voice-to-voice ms.
    pub voice_to_voice: f64,
    /// (boundary name, ms relative to the anchor or None when it never happened), in order.
    pub boundaries: Vec<(String, Option<f64>)>,
    /// What the user said (dataset-controlled text: escape when rendering).
    pub transcript: Option<String>,
    /// What the agent said.
    pub reply: Option<String>,
    /// The turn's error, if any.
    pub error: Option<String>,
}

/// Two runs, or two profiles of one run, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Label of the baseline side.
    pub a: String,
    /// Label of the candidate side.
    pub b: String,
    /// One row per stage × statistic.
    pub rows: Vec<ComparisonRow>,
}

/// One statistic compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// Stage (`turn` = voice-to-voice).
    pub stage: String,
    /// `p50`, `p90`, `p95`, `p99` or `mean`.
    pub statistic: String,
    /// Samples on side A.
    pub count_a: u64,
    /// Samples on side B.
    pub count_b: u64,
    /// Side A's estimate.
    pub a: Estimate,
    /// Side B's estimate.
    pub b: Estimate,
    /// B − A in ms, with the bootstrap CI of the difference.
    pub diff: Estimate,
    /// (B − A) / A, with its bootstrap CI.
    pub relative: Estimate,
}
