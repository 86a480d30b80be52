//! Every file a results folder holds, by name. Writers create them under these names and
//! readers open them by these names; nothing else spells them.

/// The run manifest ([`crate::manifest::RunManifest`]).
pub const MANIFEST: &str = "manifest.json";
/// One [`crate::span::Span`] per line, appended and flushed as turns finish: what a killed
/// run leaves and what `latlab recover` rebuilds from.
pub const SPANS_LOG: &str = "spans.jsonl";
/// One [`crate::span::TurnTimeline`] per line, like [`SPANS_LOG`].
pub const TURNS_LOG: &str = "turns.jsonl";
/// The spans table (columns: [`crate::columns::SPANS`]).
pub const SPANS_PARQUET: &str = "spans.parquet";
/// The turns table (columns: [`crate::columns::TURNS`]).
pub const TURNS_PARQUET: &str = "turns.parquet";
/// One [`crate::frame::FrameRecord`] per line, appended as frames finish (the vision lane).
pub const FRAMES_LOG: &str = "frames.jsonl";
/// The frames table (columns: [`crate::columns::FRAMES`]).
pub const FRAMES_PARQUET: &str = "frames.parquet";
/// HdrHistogram interval log of each profile × stage latency, one histogram per window.
pub const LATENCY_LOG: &str = "latency.hlog";
/// HdrHistogram interval log of the harness's own scheduling lag.
pub const SCHEDULING_LOG: &str = "scheduling.hlog";
/// One [`crate::telemetry::TelemetrySample`] per line.
pub const TELEMETRY: &str = "telemetry.jsonl";
/// Local models' own cost records (per inference, generation or chunk).
pub const LOCAL_STATS: &str = "local_stats.json";
/// The self-contained HTML report of one run.
pub const REPORT_HTML: &str = "report.html";
/// The HTML report covering every run of a suite (in the suite's first folder).
pub const SUITE_HTML: &str = "suite.html";
/// The report model as JSON (`docs/schemas/summary.schema.json`).
pub const SUMMARY_JSON: &str = "summary.json";
/// The report as Markdown.
pub const SUMMARY_MD: &str = "summary.md";
/// Where `latlab export` writes, inside a results folder: a folder of its own, so an export
/// can never overwrite a file the run wrote.
pub const EXPORT_DIR: &str = "export";

/// The files a run itself writes: the record of the run, which nothing else may overwrite.
pub const RUN_RECORD: [&str; 11] = [
    MANIFEST,
    FRAMES_LOG,
    FRAMES_PARQUET,
    SPANS_LOG,
    TURNS_LOG,
    SPANS_PARQUET,
    TURNS_PARQUET,
    LATENCY_LOG,
    SCHEDULING_LOG,
    TELEMETRY,
    LOCAL_STATS,
];
