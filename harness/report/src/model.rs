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
    /// The vision lane (`frames.parquet`): absent when no run replayed video, so an
    /// audio-only report is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoSection>,
    /// Agent runs (a running voice agent called over a media stream): what the caller heard.
    /// Absent when no run called an agent, so other reports are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSection>,
    /// Tool calls and their cache (the `tool` stage): absent when no run called a tool, so
    /// other reports are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolSection>,
}

impl Report {
    /// Whether the renderers show the audio tables (latency per stage, throughput): always,
    /// except for a video-only run, whose report starts at its Video section.
    pub fn shows_audio_tables(&self) -> bool {
        !self.summary.is_empty() || self.video.is_none()
    }

    /// Whether a run called a running agent (it is in the Agent section).
    pub fn is_agent_run(&self, run: &str) -> bool {
        self.agent
            .as_ref()
            .is_some_and(|a| a.runs.iter().any(|r| r.run == run))
    }

    /// Whether the renderers show a row of the latency table: every row, except the
    /// endpoint, STT, LLM and TTS rows of an agent run — the agent is opaque from outside, so
    /// those stages have no samples; its voice-to-voice (`turn`) row stays.
    pub fn shows_summary_row(&self, row: &SummaryRow) -> bool {
        row.stage == "turn" || !self.is_agent_run(&row.run)
    }
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
    /// `endpoint`, `stt`, `llm`, `tool`, `tts` or `turn` (voice-to-voice). A `tool` row is
    /// left out where every tool span was skipped (no tool calls).
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
    /// Frame latency (camera → result) CDF per series, for runs with video.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_cdf: Vec<CdfSeries>,
    /// Achieved frames per second per 1 s window, per series, for runs with video.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fps_over_time: Vec<FpsSeries>,
}

/// Achieved FPS of one series over the run: per 1 s window of result time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FpsSeries {
    /// Legend label (`profile` or `run · profile`).
    pub label: String,
    /// (window start s since the series' first capture, mean FPS over its streams, streams).
    pub points: Vec<(f64, f64, u64)>,
    /// The video's recorded frame rate (what every stream would reach keeping up), if known.
    pub source_fps: Option<f64>,
}

/// The vision lane of the runs: recorded video replayed at its frame rate through a
/// detector, every latency from the frame's scheduled capture time (`docs/metrics.md`, Vision).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoSection {
    /// What each run replayed, from its manifest.
    pub runs: Vec<VideoRunFacts>,
    /// Per run × profile (`stream` None), then per stream when a profile has several.
    pub frames: Vec<FrameRow>,
    /// Failed frames per run × profile × error kind, with a count and one example.
    pub errors: Vec<FrameErrorRow>,
    /// Detection accuracy per run × profile × class, from the manifest's totals.
    pub accuracy: Vec<ClassAccuracyRow>,
    /// Frame p95 latency against recall of `person`, per run × profile, Pareto front marked.
    pub tradeoff: Vec<TradeoffRow>,
}

/// The video one run replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRunFacts {
    /// Run id.
    pub run: String,
    /// Video dataset.
    pub dataset: String,
    /// The video file.
    pub video: String,
    /// Recorded frame rate.
    pub fps: f64,
    /// Frame width as decoded.
    pub width: u32,
    /// Frame height as decoded.
    pub height: u32,
    /// Camera streams per profile.
    pub streams: u32,
    /// Frames replayed per stream.
    pub frames_per_stream: u32,
    /// How the reference annotations were made, if the dataset says.
    pub reference: Option<String>,
    /// The decoder (decoding is off the clock).
    pub decoder: String,
    /// Decoded frames per second.
    pub decode_fps: f64,
}

/// Frame statistics of one run × profile (or one of its streams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRow {
    /// Run id.
    pub run: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// The stream, or None for all the profile's streams together.
    pub stream: Option<u32>,
    /// The detector(s) that served the frames.
    pub backend: String,
    /// `latest` or `queue`, when the manifest says.
    pub policy: Option<String>,
    /// Frames captured (scheduled): every row of the table.
    pub captured: u64,
    /// Frames the detector returned a result for (outcome `ok`).
    pub processed: u64,
    /// Frames skipped by policy `latest`.
    pub skipped: u64,
    /// Frames the detector failed on.
    pub errors: u64,
    /// Frame latency (capture → result) of processed frames, ms.
    pub latency: LatencyStats,
    /// Capture → picked up by the detector, ms.
    pub queue_wait: StepStats,
    /// Preprocessing, ms.
    pub preprocess: StepStats,
    /// Inference, ms.
    pub inference: StepStats,
    /// Postprocessing, ms.
    pub postprocess: StepStats,
    /// Frames that missed their deadline (late, skipped or failed) over frames captured.
    pub deadline_miss: Proportion,
    /// Achieved FPS per stream per 1 s window.
    pub fps: FpsStats,
}

/// Percentiles of a latency with their 95 % bootstrap intervals, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: Option<Estimate>,
    /// 90th percentile.
    pub p90: Option<Estimate>,
    /// 95th percentile.
    pub p95: Option<Estimate>,
    /// 99th percentile.
    pub p99: Option<Estimate>,
    /// Largest.
    pub max: Option<f64>,
}

/// Median and 95th percentile of one step of a frame, ms, with 95 % bootstrap intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: Option<Estimate>,
    /// 95th percentile.
    pub p95: Option<Estimate>,
}

/// A proportion `k / n` with its exact (Clopper–Pearson) 95 % interval, as a fraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    /// Events.
    pub k: u64,
    /// Trials.
    pub n: u64,
    /// k / n with its interval; None when n = 0.
    pub rate: Option<Estimate>,
}

/// Achieved frames per second: results of one stream in one 1 s window, over all windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FpsStats {
    /// Stream × window samples.
    pub windows: u64,
    /// Mean over windows.
    pub mean: Option<f64>,
    /// 10th percentile (nearest rank) over windows.
    pub p10: Option<f64>,
    /// The lowest window.
    pub min: Option<f64>,
}

/// Failed frames of one run × profile that share an error kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameErrorRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// The error kind (`unknown` when a frame has none).
    pub kind: String,
    /// Frames.
    pub count: u64,
    /// One of their messages (escape when rendering).
    pub example: String,
}

/// Detection accuracy of one class (IoU ≥ 0.5 matches), summed over a profile's frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracyRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// The class; None when the profile had no reference annotations (accuracy n/a).
    pub class: Option<String>,
    /// Frames with reference annotations that were processed.
    pub frames: u64,
    /// Detections matched to a reference box.
    pub tp: u64,
    /// Detections matched to none.
    pub fp: u64,
    /// Reference boxes no detection matched.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// tp / (tp + fp); None when there were no detections.
    pub precision: Option<f64>,
    /// tp / (tp + fn); None when there were no reference boxes.
    pub recall: Option<f64>,
}

/// One profile on the latency–accuracy trade-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeoffRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// p95 frame latency, ms, with its interval.
    pub p95: Option<Estimate>,
    /// Frame latencies it stands on.
    pub count: u64,
    /// Recall of `person`; None without reference boxes of that class.
    pub person_recall: Option<f64>,
    /// Reference `person` boxes it stands on (tp + fn).
    pub person_boxes: u64,
    /// No other profile is at least as good on both p95 and person recall and better on one.
    pub pareto: bool,
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

/// Agent runs: a user's running voice agent called over a telephony media stream, measured at
/// the caller's ear (`docs/metrics.md`, "At the caller's ear"). Voice-to-voice is in the
/// summary (stage `turn`); this is the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentSection {
    /// Each run that called an agent, with what was called when its manifest says.
    pub runs: Vec<AgentRunFacts>,
    /// Per run × profile: the caller's-ear statistics.
    pub profiles: Vec<AgentRow>,
    /// Turns with the agent's own latency figure: the caller's voice-to-voice beside it.
    pub self_report: Vec<SelfReportTurn>,
}

/// One run that called an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRunFacts {
    /// Run id.
    pub run: String,
    /// The agent as the manifest records it; None for a run whose turns carry the agent
    /// columns but whose manifest does not say what was called.
    pub agent: Option<latlab_results::agent::AgentFacts>,
}

/// What the caller heard from the agent in one run × profile. Rates are over the turns named
/// in each [`Proportion`]; every latency says how many samples it stands on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// The agent's name (the spans' backend).
    pub agent: String,
    /// Turns with the caller's-ear measurements.
    pub turns: u64,
    /// Turns with an audible reply.
    pub replies: u64,
    /// Reply leading silence: first heard sample → first audible one, ms.
    pub lead: LatencyStats,
    /// Reply length at the ear, first to last audible sample, ms.
    pub reply: LatencyStats,
    /// Replies with at least one playback gap (playout ran dry ≥ 100 ms), over replies.
    pub gapped: Proportion,
    /// Playback gaps in all.
    pub gaps: u64,
    /// Their total length, ms.
    pub gap_ms: f64,
    /// Turns that talked over the agent and saw its audio stop (or not).
    pub interruptions: u64,
    /// Caller's first sample → agent's audio stopped at the ear, ms, on those turns.
    pub interruption: LatencyStats,
    /// Interrupted turns by how the audio stopped (`clear`, `silence`, `ignored`), in that
    /// order, each with its count.
    pub interruption_by: Vec<(String, u64)>,
    /// The agent started speaking in a pause inside the caller's turn, over turns.
    pub false_cutoff: Proportion,
    /// Turns where the agent's audio was heard while the caller spoke, over turns.
    pub talk_over: Proportion,
    /// Their total talk-over, ms.
    pub talk_over_ms: f64,
    /// No audible reply within the answer timeout, over turns.
    pub dead_air: Proportion,
    /// Caller's voice-to-voice − the agent's own figure ("unseen": time no internal metric
    /// sees), ms, on the turns with both.
    pub unseen: LatencyStats,
}

/// One turn with the agent's own latency figure beside the caller's voice-to-voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfReportTurn {
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
    /// Voice-to-voice at the caller's ear, ms.
    pub voice_to_voice_ms: f64,
    /// The agent's own figure, ms.
    pub agent_ms: f64,
    /// voice_to_voice_ms − agent_ms.
    pub unseen_ms: f64,
}

/// Tool calls (OpenAI function calling) and the cache in front of the tool's API, per run ×
/// profile (`docs/analysis.md`, "Tools and cache"). The tool's latency is also in the summary
/// (stage `tool`); this is the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolSection {
    /// Per run × profile that called a tool.
    pub profiles: Vec<ToolRow>,
}

/// The tool calls of one run × profile. Every latency says how many samples it stands on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// The functions the LLM called, with how many turns called each, most called first (the
    /// LLM's words: escape when rendering).
    pub tools: Vec<(String, u64)>,
    /// Turns with a tool call (`turns.parquet`).
    pub turns: u64,
    /// Tool spans that ran (ok or error).
    pub calls: u64,
    /// Tool spans that failed.
    pub errors: u64,
    /// Calls by where the result came from: `hit`, `miss`, `off`, in that order.
    pub cache: Vec<(String, u64)>,
    /// Hits over hits + misses (the calls that reached the cache), exact 95 % interval.
    pub hit_rate: Proportion,
    /// Tool latency (call complete in the LLM's stream → result in hand) of every successful
    /// call, ms.
    pub latency: LatencyStats,
    /// The same per cache outcome present (`hit`, `miss`, `off`).
    pub by_cache: Vec<ToolLatency>,
    /// Median miss − median hit, ms, with a bootstrap interval resampling each group; None
    /// without both.
    pub saving: Option<Estimate>,
    /// That as a share of the median miss (a fraction), with its bootstrap interval.
    pub saving_share: Option<Estimate>,
    /// Failed calls by error kind, most frequent first.
    pub error_kinds: Vec<(String, u64)>,
    /// The LLM's first round: request sent → tool call complete in its stream, ms.
    pub llm_round1: LatencyStats,
    /// The LLM's second round (with the tool's result): request sent → first token, ms.
    pub llm_round2: LatencyStats,
}

/// Tool latency of the calls with one cache outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolLatency {
    /// `hit`, `miss` or `off`.
    pub cache: String,
    /// Call → result in hand, ms.
    pub latency: LatencyStats,
}
