//! Assembling the report model from one or several results folders.

use std::collections::BTreeMap;
use std::path::PathBuf;

use latlab_report::model::{
    AccuracyRow, AgentRunFacts, AgentSection, CdfSeries, ErrorRow, Estimate, FpsSeries,
    LoadStageRow, MeasurerRow, ParetoPoint, PlotData, Report, SCHEMA_VERSION, StageHistogram,
    SummaryRow, TelemetryPhase, TelemetrySeries, ThroughputRow, TimeSeries, ToolSection,
    TurnDetail, VideoSection, WaterfallBar,
};
use polars::prelude::*;

use crate::AnalysisError;
use crate::agent::{self, AgentTurnRow, read_agent_turns};
use crate::frames::{
    BOUNDARIES, ErrorKinds, SpanGroup, TurnRow, error_kinds, llm_rates, span_groups, turn_rows,
};
use crate::load::Run;
use crate::stats::{mean_estimate, quantile, quantile_estimate};
use crate::telemetry::{self, RunTelemetry};
use crate::tool::{self, ToolSpanRow, ToolTurnRow, read_tool_spans, read_tool_turns};
use crate::video::{self, VideoFrame, read_frames};
use latlab_results::span::Stage;
use latlab_results::wer::word_errors;

/// Stages in pipeline order (`turn` is voice-to-voice).
pub const STAGES: [&str; 6] = latlab_results::span::STAGE_NAMES;
/// The percentiles every summary row carries.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.50, "p50"), (0.90, "p90"), (0.95, "p95"), (0.99, "p99")];
/// Seed of every bootstrap: fixed, so a report is reproducible.
pub const BOOTSTRAP_SEED: u64 = 0x1a71ab;
/// How many of the slowest turns the report details.
pub const SLOWEST: usize = 20;

/// Everything read from a set of runs, before it is shaped into a report.
pub struct Loaded {
    /// The runs, in the order given.
    pub runs: Vec<Run>,
    /// Span groups.
    pub groups: Vec<SpanGroup>,
    /// Every turn.
    pub turns: Vec<TurnRow>,
    /// LLM tokens and streaming seconds per run × profile.
    pub llm: Vec<(String, String, f64, f64)>,
    /// Failed spans per run × stage × error kind.
    pub errors: Vec<ErrorKinds>,
    /// Each run's `telemetry.jsonl`, in run order (no samples when it has none).
    pub telemetry: Vec<RunTelemetry>,
    /// Every replayed video frame (`frames.parquet`) of the runs that have one.
    pub frames: Vec<VideoFrame>,
    /// Every agent turn (the `agent_*` columns of `turns.parquet`) of the runs that called an
    /// agent.
    pub agent: Vec<AgentTurnRow>,
    /// Every `tool` span that ran (ok or error) of the runs.
    pub tool_spans: Vec<ToolSpanRow>,
    /// Every turn with a tool call (the `tool_*` columns of `turns.parquet`) of the runs.
    pub tool_turns: Vec<ToolTurnRow>,
}

/// Opens the runs in `dirs` and scans all their spans as one table (None when no run has
/// spans: video only).
fn open(dirs: &[PathBuf]) -> Result<(Vec<Run>, Option<LazyFrame>), AnalysisError> {
    if dirs.is_empty() {
        return Err(AnalysisError::Empty("no results folder given".into()));
    }
    let runs: Vec<Run> = dirs
        .iter()
        .map(|d| Run::open(d))
        .collect::<Result<_, _>>()?;
    let scans = runs
        .iter()
        .filter(|r| r.has_spans())
        .map(Run::spans)
        .collect::<Result<Vec<_>, _>>()?;
    let spans = if scans.is_empty() {
        None
    } else {
        Some(concat(scans, UnionArgs::default())?)
    };
    Ok((runs, spans))
}

/// The runs' span files (of the runs that have one).
fn files(runs: &[Run]) -> Vec<PathBuf> {
    runs.iter()
        .filter(|r| r.has_spans())
        .map(Run::spans_file)
        .collect()
}

/// Every frame of the runs that replayed video, in run order.
pub fn read_run_frames(runs: &[Run]) -> Result<Vec<VideoFrame>, AnalysisError> {
    let mut frames = Vec::new();
    for run in runs {
        if let Some(path) = run.frames_file() {
            frames.extend(read_frames(&path)?);
        }
    }
    Ok(frames)
}

/// Every agent turn of the runs, in run order (none from runs without the agent columns).
pub fn read_run_agent_turns(runs: &[Run]) -> Result<Vec<AgentTurnRow>, AnalysisError> {
    let mut turns = Vec::new();
    for run in runs {
        if let Some(path) = run.turns_file() {
            turns.extend(read_agent_turns(&path)?);
        }
    }
    Ok(turns)
}

/// Every tool span that ran and every tool turn of the runs, in run order (none from files
/// older than the tool columns).
pub fn read_run_tools(runs: &[Run]) -> Result<(Vec<ToolSpanRow>, Vec<ToolTurnRow>), AnalysisError> {
    let (mut spans, mut turns) = (Vec::new(), Vec::new());
    for run in runs {
        if run.has_spans() {
            spans.extend(read_tool_spans(&run.spans_file())?);
        }
        if let Some(path) = run.turns_file() {
            turns.extend(read_tool_turns(&path)?);
        }
    }
    Ok((spans, turns))
}

/// Reads the runs in `dirs`.
pub fn load(dirs: &[PathBuf]) -> Result<Loaded, AnalysisError> {
    let (runs, spans) = open(dirs)?;
    let groups = span_groups(&files(&runs))?;
    let (errors, llm) = match spans {
        Some(spans) => (error_kinds(spans.clone())?, llm_rates(spans)?),
        None => (Vec::new(), Vec::new()),
    };
    let mut turns = Vec::new();
    for run in &runs {
        if let Some(t) = run.turns()? {
            turns.extend(turn_rows(t)?);
        }
    }
    let telemetry = runs
        .iter()
        .map(|r| telemetry::read(&r.dir))
        .collect::<Result<_, _>>()?;
    let frames = read_run_frames(&runs)?;
    let agent = read_run_agent_turns(&runs)?;
    let (tool_spans, tool_turns) = read_run_tools(&runs)?;
    Ok(Loaded {
        runs,
        groups,
        turns,
        llm,
        errors,
        telemetry,
        frames,
        agent,
        tool_spans,
        tool_turns,
    })
}

/// The summary alone (no turns, plots or accuracy): what `latlab show` prints.
pub fn summarize(dirs: &[PathBuf]) -> Result<Report, AnalysisError> {
    let (runs, _) = open(dirs)?;
    let loaded = Loaded {
        groups: span_groups(&files(&runs))?,
        runs,
        turns: Vec::new(),
        llm: Vec::new(),
        errors: Vec::new(),
        telemetry: Vec::new(),
        frames: Vec::new(),
        agent: Vec::new(),
        tool_spans: Vec::new(),
        tool_turns: Vec::new(),
    };
    let series = loaded.series();
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        generated_by: concat!("latlab ", env!("CARGO_PKG_VERSION")).to_string(),
        runs: loaded.runs.iter().map(|r| r.facts.clone()).collect(),
        summary: summary_rows(&loaded, &series),
        errors: Vec::new(),
        measurer: Vec::new(),
        throughput: Vec::new(),
        load_stages: Vec::new(),
        accuracy: Vec::new(),
        accuracy_by_voice: Vec::new(),
        plots: PlotData::default(),
        slowest_turns: Vec::new(),
        comparison: None,
        notes: Vec::new(),
        video: None,
        agent: None,
        tools: None,
    })
}

/// Analyses one or several results folders into a report.
pub fn analyze(dirs: &[PathBuf]) -> Result<Report, AnalysisError> {
    let loaded = load(dirs)?;
    Ok(build(&loaded))
}

impl Loaded {
    /// (run, profile) pairs in run order, then each run's profile order.
    pub fn series(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for run in &self.runs {
            let id = &run.facts.run_id;
            let mut profiles: Vec<String> = run.profiles();
            for g in self.groups.iter().filter(|g| &g.run == id) {
                if !profiles.contains(&g.profile) {
                    profiles.push(g.profile.clone());
                }
            }
            for f in self.frames.iter().filter(|f| &f.run == id) {
                if !profiles.contains(&f.profile) {
                    profiles.push(f.profile.clone());
                }
            }
            out.extend(profiles.into_iter().map(|p| (id.clone(), p)));
        }
        out
    }

    /// The legend label of a series.
    pub fn label(&self, run: &str, profile: &str) -> String {
        if self.runs.len() > 1 {
            format!("{run} · {profile}")
        } else {
            profile.to_string()
        }
    }

    /// Sorted voice-to-voice latencies (ms) of a series.
    pub fn voice_to_voice(&self, run: &str, profile: &str) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .groups
            .iter()
            .filter(|g| g.run == run && g.profile == profile && g.stage == Stage::Turn.as_str())
            .flat_map(|g| g.sorted_ms.iter().copied())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// Shapes loaded runs into the report model.
pub fn build(loaded: &Loaded) -> Report {
    let all_series = loaded.series();
    // The video section covers every series with frames; the audio parts skip series that
    // only replayed video (no spans), which would show as rows of zero turns.
    let video = video_section(loaded, &all_series);
    let agent = agent_section(loaded, &all_series);
    let tools = tool_section(loaded, &all_series);
    let series: Vec<(String, String)> = all_series
        .iter()
        .filter(|(run, profile)| {
            let spans = || {
                loaded
                    .groups
                    .iter()
                    .any(|g| &g.run == run && &g.profile == profile)
            };
            let frames = || {
                loaded
                    .frames
                    .iter()
                    .any(|f| &f.run == run && &f.profile == profile)
            };
            spans() || !frames()
        })
        .cloned()
        .collect();
    let accuracy = accuracy(loaded, &series);
    let accuracy_by_voice = accuracy_by_voice(loaded, &series);
    let summary = summary_rows(loaded, &series);
    let cdf = cdf(loaded, &series);
    let mut notes = Vec::new();
    for run in &loaded.runs {
        if run.facts.status != latlab_results::manifest::RunStatus::Complete {
            notes.push(format!(
                "run {} is {}: its results are partial",
                run.facts.run_id, run.facts.status
            ));
        }
        notes.extend(
            run.manifest
                .notes
                .iter()
                .map(|n| format!("run {}: {n}", run.facts.run_id)),
        );
    }
    for (run, t) in loaded.runs.iter().zip(&loaded.telemetry) {
        if t.bad_lines > 0 {
            notes.push(format!(
                "run {}: {} unreadable line(s) of {} skipped",
                run.facts.run_id,
                t.bad_lines,
                telemetry::FILE
            ));
        }
    }
    Report {
        schema_version: SCHEMA_VERSION,
        generated_by: concat!("latlab ", env!("CARGO_PKG_VERSION")).to_string(),
        runs: loaded.runs.iter().map(|r| r.facts.clone()).collect(),
        summary,
        errors: error_rows(loaded),
        measurer: measurer_rows(loaded),
        throughput: throughput(loaded, &series),
        load_stages: load_stages(loaded, &series),
        plots: PlotData {
            pareto: pareto(loaded, &series, &accuracy, &cdf),
            cdf,
            waterfall: waterfall(loaded, &series),
            over_time: over_time(loaded, &series),
            histograms: histograms(loaded, &series),
            telemetry: telemetry_series(loaded, &series),
            frame_cdf: frame_cdf(loaded, &all_series),
            fps_over_time: fps_over_time(loaded, &all_series),
        },
        accuracy,
        accuracy_by_voice,
        slowest_turns: slowest(loaded),
        comparison: None,
        notes,
        video,
        agent,
        tools,
    }
}

/// The run whose id is `run`.
fn run_of<'a>(loaded: &'a Loaded, run: &str) -> Option<&'a Run> {
    loaded.runs.iter().find(|r| r.facts.run_id == run)
}

/// The recorded frame rate of a run's video, from its manifest.
fn source_fps(loaded: &Loaded, run: &str) -> Option<f64> {
    run_of(loaded, run)?.manifest.vision.as_ref().map(|v| v.fps)
}

/// The Video section: None when no run has frames, so audio-only reports are unchanged.
pub fn video_section(loaded: &Loaded, series: &[(String, String)]) -> Option<VideoSection> {
    if loaded.frames.is_empty() {
        return None;
    }
    let mut section = VideoSection::default();
    for run in &loaded.runs {
        if let Some(v) = &run.manifest.vision {
            section.runs.push(video::run_facts(&run.facts.run_id, v));
        }
    }
    for (run, profile) in series {
        let frames = video::frames_of(&loaded.frames, run, profile);
        if frames.is_empty() {
            continue;
        }
        let vision = run_of(loaded, run).and_then(|r| r.manifest.vision.as_ref());
        let policy = vision
            .and_then(|v| v.policies.get(profile))
            .map(|p| p.as_str().to_string());
        let fps = source_fps(loaded, run);
        section.frames.extend(video::frame_row(
            &frames,
            None,
            policy.clone(),
            fps,
            BOOTSTRAP_SEED,
        ));
        let mut streams: Vec<u32> = frames.iter().map(|f| f.stream).collect();
        streams.sort_unstable();
        streams.dedup();
        if streams.len() > 1 {
            for s in streams {
                let of_stream: Vec<&VideoFrame> =
                    frames.iter().copied().filter(|f| f.stream == s).collect();
                section.frames.extend(video::frame_row(
                    &of_stream,
                    Some(s),
                    policy.clone(),
                    fps,
                    BOOTSTRAP_SEED,
                ));
            }
        }
        section.errors.extend(video::error_rows(&frames));
        section
            .accuracy
            .extend(video::accuracy_rows(vision, run, profile));
    }
    section.tradeoff = video::tradeoff(&section.frames, &section.accuracy);
    Some(section)
}

/// The Agent section: None when no run called an agent (its manifest says so, or its turns
/// carry the agent columns), so other reports are unchanged.
pub fn agent_section(loaded: &Loaded, series: &[(String, String)]) -> Option<AgentSection> {
    let mut section = AgentSection::default();
    for run in &loaded.runs {
        let id = &run.facts.run_id;
        if run.is_agent_run() || loaded.agent.iter().any(|t| &t.run == id) {
            section.runs.push(AgentRunFacts {
                run: id.clone(),
                agent: run.manifest.agent.clone(),
            });
        }
    }
    if section.runs.is_empty() {
        return None;
    }
    for (run, profile) in series {
        let turns = agent::turns_of(&loaded.agent, run, Some(profile));
        let name = agent_name(loaded, run, profile);
        section
            .profiles
            .extend(agent::agent_row(&turns, &name, BOOTSTRAP_SEED));
        section.self_report.extend(agent::self_report_turns(&turns));
    }
    Some(section)
}

/// The "Tools and cache" section: None when no series made a tool call, so other reports are
/// unchanged.
pub fn tool_section(loaded: &Loaded, series: &[(String, String)]) -> Option<ToolSection> {
    let profiles: Vec<_> = series
        .iter()
        .filter_map(|(run, profile)| {
            tool::tool_row(
                run,
                profile,
                &tool::spans_of(&loaded.tool_spans, run, Some(profile)),
                &tool::turns_of(&loaded.tool_turns, run, Some(profile)),
                BOOTSTRAP_SEED,
            )
        })
        .collect();
    (!profiles.is_empty()).then_some(ToolSection { profiles })
}

/// The agent's name: the manifest's, else the backend of the series' voice-to-voice spans.
fn agent_name(loaded: &Loaded, run: &str, profile: &str) -> String {
    run_of(loaded, run)
        .and_then(|r| r.manifest.agent.as_ref())
        .map(|a| a.name.clone())
        .or_else(|| {
            loaded
                .groups
                .iter()
                .find(|g| g.run == run && g.profile == profile && g.stage == Stage::Turn.as_str())
                .map(|g| g.backend.clone())
        })
        .unwrap_or_else(|| "agent".into())
}

/// Frame latency CDF per series that replayed video.
fn frame_cdf(loaded: &Loaded, series: &[(String, String)]) -> Vec<CdfSeries> {
    series
        .iter()
        .filter_map(|(run, profile)| {
            let v = video::latencies_ms(&video::frames_of(&loaded.frames, run, profile));
            cdf_series_of(loaded.label(run, profile), &v, "frame_latency")
        })
        .collect()
}

/// Achieved FPS per 1 s window per series that replayed video.
fn fps_over_time(loaded: &Loaded, series: &[(String, String)]) -> Vec<FpsSeries> {
    series
        .iter()
        .filter_map(|(run, profile)| {
            let frames = video::frames_of(&loaded.frames, run, profile);
            let fps = source_fps(loaded, run);
            let windows = video::fps_windows(&frames, fps);
            (!windows.is_empty())
                .then(|| video::fps_series(loaded.label(run, profile), &windows, fps))
        })
        .collect()
}

/// latlab's own share per stage and the agent's LLM queue wait, per run, from each manifest.
pub fn measurer_rows(loaded: &Loaded) -> Vec<MeasurerRow> {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut rows = Vec::new();
    for run in &loaded.runs {
        let m = &run.manifest;
        for share in &m.measurer {
            rows.push(MeasurerRow {
                run: run.facts.run_id.clone(),
                figure: "latlab's own share".into(),
                stage: share.stage.as_str().into(),
                measured: share.measured.clone(),
                n: share.share.count,
                p50_ms: ms(share.share.p50_ns),
                p99_ms: ms(share.share.p99_ns),
                max_ms: ms(share.share.max_ns),
            });
        }
        if let Some(q) = m.llm_queue_wait.as_ref().filter(|q| q.waited.count > 0) {
            rows.push(MeasurerRow {
                run: run.facts.run_id.clone(),
                figure: "agent queueing (not latlab's)".into(),
                stage: Stage::Llm.as_str().into(),
                measured: format!(
                    "LLM requests that waited behind the call's previous one ({} of {})",
                    q.waited.count, q.requests
                ),
                n: q.waited.count,
                p50_ms: ms(q.waited.p50_ns),
                p99_ms: ms(q.waited.p99_ns),
                max_ms: ms(q.waited.max_ns),
            });
        }
    }
    rows
}

/// Why spans failed, per run (in the order given), stage (in pipeline order) and error kind
/// (most frequent first).
pub fn error_rows(loaded: &Loaded) -> Vec<ErrorRow> {
    let run_index = |run: &str| loaded.runs.iter().position(|r| r.facts.run_id == run);
    let stage_index = |stage: &str| STAGES.iter().position(|s| *s == stage);
    let mut rows: Vec<&ErrorKinds> = loaded.errors.iter().collect();
    rows.sort_by(|a, b| {
        (
            run_index(&a.run),
            stage_index(&a.stage),
            std::cmp::Reverse(a.count),
            &a.kind,
        )
            .cmp(&(
                run_index(&b.run),
                stage_index(&b.stage),
                std::cmp::Reverse(b.count),
                &b.kind,
            ))
    });
    rows.into_iter()
        .map(|e| ErrorRow {
            run: e.run.clone(),
            stage: e.stage.clone(),
            kind: e.kind.clone(),
            count: e.count,
            example: e.example.clone(),
        })
        .collect()
}

/// Voice-to-voice per load stage of the runs that ramped: each ok turn counts in the stage
/// that held when its user stopped speaking (its anchor, on the run's epoch).
pub fn load_stages(loaded: &Loaded, series: &[(String, String)]) -> Vec<LoadStageRow> {
    let mut out = Vec::new();
    for (run_id, profile) in series {
        let Some(run) = loaded.runs.iter().find(|r| &r.facts.run_id == run_id) else {
            continue;
        };
        let Some(ramp) = &run.ramp else { continue };
        let mut per_stage: Vec<Vec<f64>> = vec![Vec::new(); ramp.stages.len()];
        let mut failed = vec![0u64; ramp.stages.len()];
        for t in turns_of(loaded, run_id, profile) {
            let Some(i) = ramp.stage_at(profile, t.anchor_ns, run.facts.speed) else {
                continue;
            };
            match (t.outcome.as_str(), t.voice_to_voice_ms) {
                ("ok", Some(v)) => per_stage[i].push(v),
                ("ok", None) => {}
                _ => failed[i] += 1,
            }
        }
        let unit = if ramp.model == latlab_results::load::LoadModel::Open {
            "calls/s"
        } else {
            "calls in flight"
        };
        for (i, (window, mut v)) in ramp.stages.iter().zip(per_stage).enumerate() {
            let errors = failed[i];
            v.sort_by(f64::total_cmp);
            let stage_name = if window.name.is_empty() {
                format!("stage {}", i + 1)
            } else {
                window.name.clone()
            };
            let group = SpanGroup {
                run: run_id.clone(),
                scenario: run.facts.scenario.clone(),
                profile: profile.clone(),
                backend: format!("load {stage_name}"),
                stage: Stage::Turn.as_str().into(),
                ok: v.len() as u64,
                errors,
                skipped: 0,
                sorted_ms: v,
            };
            out.push(LoadStageRow {
                load_stage: stage_name,
                target: window.target,
                unit: unit.into(),
                voice_to_voice: summary_row(&group),
            });
        }
    }
    out
}

/// Summary rows of every group, in series then stage order.
pub fn summary_rows(loaded: &Loaded, series: &[(String, String)]) -> Vec<SummaryRow> {
    use rayon::prelude::*;
    let mut groups = Vec::new();
    for (run, profile) in series {
        for stage in STAGES {
            groups.extend(loaded.groups.iter().filter(|g| {
                &g.run == run && &g.profile == profile && g.stage == stage && shown(g)
            }));
        }
    }
    // Each row's bootstrap is seeded by its own name, so threads do not change the numbers.
    groups.par_iter().map(|g| summary_row(g)).collect()
}

/// Whether a span group has a row in the latency table: every group but a `tool` group whose
/// spans were all skipped (turns without a tool call, e.g. every turn of a run without tools).
pub fn shown(g: &SpanGroup) -> bool {
    g.stage != Stage::Tool.as_str() || g.ok + g.errors > 0
}

/// Statistics of one span group.
pub fn summary_row(g: &SpanGroup) -> SummaryRow {
    let what = |stat: &str| format!("{}/{}/{}/{}/{stat}", g.run, g.profile, g.backend, g.stage);
    let q = |i: usize| {
        quantile_estimate(
            &g.sorted_ms,
            QUANTILES[i].0,
            BOOTSTRAP_SEED,
            &what(QUANTILES[i].1),
        )
    };
    let attempted = g.ok + g.errors;
    SummaryRow {
        run: g.run.clone(),
        scenario: g.scenario.clone(),
        profile: g.profile.clone(),
        backend: g.backend.clone(),
        stage: g.stage.clone(),
        count: g.sorted_ms.len() as u64,
        errors: g.errors,
        skipped: g.skipped,
        error_rate: if attempted == 0 {
            0.0
        } else {
            g.errors as f64 / attempted as f64
        },
        mean: mean_estimate(&g.sorted_ms, BOOTSTRAP_SEED, &what("mean")),
        p50: q(0),
        p90: q(1),
        p95: q(2),
        p99: q(3),
        max: g.sorted_ms.last().copied(),
    }
}

/// When a turn's last stamped boundary happened, ns since the epoch.
fn turn_end_ns(t: &TurnRow) -> i64 {
    let last = t
        .boundaries_ms
        .iter()
        .flatten()
        .fold(0.0f64, |a, b| a.max(*b));
    t.anchor_ns + (last * 1e6) as i64
}

fn turns_of<'a>(
    loaded: &'a Loaded,
    run: &'a str,
    profile: &'a str,
) -> impl Iterator<Item = &'a TurnRow> + 'a {
    loaded
        .turns
        .iter()
        .filter(move |t| t.run == run && t.profile == profile)
}

fn accuracy(loaded: &Loaded, series: &[(String, String)]) -> Vec<AccuracyRow> {
    series
        .iter()
        .map(|(run, profile)| accuracy_row(run, profile, None, turns_of(loaded, run, profile)))
        .collect()
}

/// Accuracy per voice of every series, for runs whose manifest names each call's voice.
fn accuracy_by_voice(loaded: &Loaded, series: &[(String, String)]) -> Vec<AccuracyRow> {
    let mut rows = Vec::new();
    for (run, profile) in series {
        let Some(voices) = loaded
            .runs
            .iter()
            .find(|r| &r.facts.run_id == run)
            .map(|r| &r.manifest.call_voices)
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let mut by_voice: std::collections::BTreeMap<&str, Vec<&TurnRow>> = Default::default();
        for t in turns_of(loaded, run, profile) {
            if let Some(voice) = voices.get(&t.call) {
                by_voice.entry(voice).or_default().push(t);
            }
        }
        for (voice, turns) in by_voice {
            rows.push(accuracy_row(run, profile, Some(voice), turns.into_iter()));
        }
    }
    rows
}

fn accuracy_row<'a>(
    run: &str,
    profile: &str,
    voice: Option<&str>,
    turns: impl Iterator<Item = &'a TurnRow>,
) -> AccuracyRow {
    let (mut n, mut words, mut errors) = (0, 0, 0);
    for t in turns {
        if let (Some(reference), Some(heard)) = (&t.reference, &t.transcript) {
            let (e, w) = word_errors(reference, heard);
            n += 1;
            words += w;
            errors += e;
        }
    }
    AccuracyRow {
        run: run.to_string(),
        profile: profile.to_string(),
        voice: voice.map(str::to_string),
        turns: n,
        words,
        word_errors: errors,
        wer: if words == 0 {
            0.0
        } else {
            errors as f64 / words as f64
        },
    }
}

fn throughput(loaded: &Loaded, series: &[(String, String)]) -> Vec<ThroughputRow> {
    series
        .iter()
        .map(|(run, profile)| {
            let turns: Vec<&TurnRow> = turns_of(loaded, run, profile).collect();
            let start = turns.iter().map(|t| t.user_start_ns).min().unwrap_or(0);
            let end = turns
                .iter()
                .copied()
                .map(turn_end_ns)
                .max()
                .unwrap_or(start);
            let duration_s = (end - start).max(0) as f64 / 1e9;
            let ratio = |num: f64, den: f64| (den > 0.0).then_some(num / den);
            let (mut stt_busy, mut speech) = (0.0, 0.0);
            let (mut tts_busy, mut audio) = (0.0, 0.0);
            for t in &turns {
                let speech_ms = (t.anchor_ns - t.user_start_ns) as f64 / 1e6;
                if let Some(final_ms) = t.boundaries_ms[1] {
                    stt_busy += final_ms + speech_ms;
                    speech += speech_ms;
                }
                if let (Some(sent), Some(done), Some(a)) =
                    (t.boundaries_ms[5], t.boundaries_ms[8], t.agent_audio_ms)
                {
                    tts_busy += done - sent;
                    audio += a;
                }
            }
            let llm = loaded
                .llm
                .iter()
                .find(|(r, p, _, _)| r == run && p == profile);
            ThroughputRow {
                run: run.clone(),
                profile: profile.clone(),
                turns: turns.len() as u64,
                duration_s,
                turns_per_s: if duration_s > 0.0 {
                    turns.len() as f64 / duration_s
                } else {
                    0.0
                },
                stt_rtf: ratio(stt_busy, speech),
                tts_rtf: ratio(tts_busy, audio),
                llm_tokens_per_s: llm.and_then(|(_, _, tokens, secs)| ratio(*tokens, *secs)),
            }
        })
        .collect()
}

/// At most this many points per CDF curve.
const CDF_POINTS: usize = 400;

fn cdf(loaded: &Loaded, series: &[(String, String)]) -> Vec<CdfSeries> {
    series
        .iter()
        .filter_map(|(run, profile)| {
            let v = loaded.voice_to_voice(run, profile);
            cdf_series(loaded.label(run, profile), &v)
        })
        .collect()
}

/// A voice-to-voice CDF curve of an ascending sample (every point, or an even quantile grid
/// when large).
pub fn cdf_series(label: String, sorted: &[f64]) -> Option<CdfSeries> {
    cdf_series_of(label, sorted, "voice_to_voice")
}

/// A CDF curve of an ascending sample of the latency `metric` (names the marked percentiles'
/// bootstrap seeds).
pub fn cdf_series_of(label: String, sorted: &[f64], metric: &str) -> Option<CdfSeries> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let points = if n <= CDF_POINTS {
        sorted
            .iter()
            .enumerate()
            .map(|(i, &x)| (x, (i + 1) as f64 / n as f64))
            .collect()
    } else {
        (1..=CDF_POINTS)
            .map(|k| {
                let q = k as f64 / CDF_POINTS as f64;
                (quantile(sorted, q).unwrap_or_default(), q)
            })
            .collect()
    };
    let (p90, p90_ci) = marked_quantile(sorted, 0.90, &label, metric)?;
    let (p95, p95_ci) = marked_quantile(sorted, 0.95, &label, metric)?;
    Some(CdfSeries {
        label,
        points,
        p90,
        p95,
        p90_ci,
        p95_ci,
        count: n as u64,
    })
}

/// A voice-to-voice percentile a plot marks, with its 95 % bootstrap interval (seeded by the
/// series' label, so a plot is reproducible).
fn marked_quantile(
    sorted: &[f64],
    q: f64,
    label: &str,
    metric: &str,
) -> Option<(f64, Option<[f64; 2]>)> {
    let what = format!("plot/{label}/{metric}/{q}");
    let e = quantile_estimate(sorted, q, BOOTSTRAP_SEED, &what)?;
    Some((e.value, Some([e.lo, e.hi])))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

fn waterfall(loaded: &Loaded, series: &[(String, String)]) -> Vec<WaterfallBar> {
    series
        .iter()
        .filter_map(|(run, profile)| {
            let ok: Vec<&TurnRow> = turns_of(loaded, run, profile)
                .filter(|t| t.outcome == "ok")
                .collect();
            if ok.is_empty() {
                return None;
            }
            let boundaries = BOUNDARIES
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let m = median(ok.iter().filter_map(|t| t.boundaries_ms[i]).collect())?;
                    Some((name.trim_end_matches("_ns").to_string(), m))
                })
                .collect();
            Some(WaterfallBar {
                label: loaded.label(run, profile),
                boundaries,
                count: ok.len() as u64,
            })
        })
        .collect()
}

fn over_time(loaded: &Loaded, series: &[(String, String)]) -> Vec<TimeSeries> {
    series
        .iter()
        .filter_map(|(run, profile)| {
            let turns: Vec<&TurnRow> = turns_of(loaded, run, profile).collect();
            let t0 = turns.iter().map(|t| t.user_start_ns).min()?;
            let mut windows: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for t in &turns {
                if let Some(v) = t.voice_to_voice_ms {
                    windows
                        .entry(((t.anchor_ns - t0).max(0) / 1_000_000_000) as u64)
                        .or_default()
                        .push(v);
                }
            }
            let p95 = windows
                .into_iter()
                .filter_map(|(s, mut v)| {
                    v.sort_by(f64::total_cmp);
                    Some((s as f64, quantile(&v, 0.95)?, v.len() as u64))
                })
                .collect();
            // A call is in flight from its first turn's start to its last boundary.
            let mut calls: BTreeMap<(&str, u32), (i64, i64)> = BTreeMap::new();
            for t in &turns {
                let end = turn_end_ns(t);
                let e = calls
                    .entry((t.call.as_str(), t.iteration))
                    .or_insert((t.user_start_ns, end));
                e.0 = e.0.min(t.user_start_ns);
                e.1 = e.1.max(end);
            }
            let horizon = calls.values().map(|c| c.1).max().unwrap_or(t0);
            let in_flight = (0..=((horizon - t0).max(0) / 1_000_000_000))
                .map(|s| {
                    let at = t0 + s * 1_000_000_000;
                    (
                        s as f64,
                        calls.values().filter(|(a, b)| *a <= at && at < *b).count() as u64,
                    )
                })
                .collect();
            Some(TimeSeries {
                label: loaded.label(run, profile),
                p95,
                in_flight,
            })
        })
        .collect()
}

/// Each run's machine telemetry, with the span of each of its series' turns marked.
fn telemetry_series(loaded: &Loaded, series: &[(String, String)]) -> Vec<TelemetrySeries> {
    loaded
        .runs
        .iter()
        .zip(&loaded.telemetry)
        .filter_map(|(run, t)| {
            let id = &run.facts.run_id;
            let mut out = telemetry::series(id.clone(), &t.samples)?;
            out.phases = series
                .iter()
                .filter(|(r, _)| r == id)
                .filter_map(|(r, profile)| {
                    let turns = || turns_of(loaded, r, profile);
                    let start = turns().map(|t| t.user_start_ns).min()?;
                    let end = turns().map(turn_end_ns).max()?;
                    Some(TelemetryPhase {
                        label: loaded.label(r, profile),
                        start_s: start as f64 / 1e9,
                        end_s: end as f64 / 1e9,
                    })
                })
                .collect();
            Some(out)
        })
        .collect()
}

/// Bins per histogram.
const BINS: usize = 30;

fn histograms(loaded: &Loaded, series: &[(String, String)]) -> Vec<StageHistogram> {
    STAGES
        .iter()
        .filter_map(|stage| {
            let samples: Vec<(String, Vec<f64>)> = series
                .iter()
                .map(|(run, profile)| {
                    let v: Vec<f64> = loaded
                        .groups
                        .iter()
                        .filter(|g| &g.run == run && &g.profile == profile && g.stage == *stage)
                        .flat_map(|g| g.sorted_ms.iter().copied())
                        .collect();
                    (loaded.label(run, profile), v)
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            if samples.is_empty() {
                return None;
            }
            // Bins span the smallest value to the largest p99, so one outlier does not squash
            // the shape; values past the last edge are counted apart, and the plot says so.
            let lo = samples
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .fold(f64::INFINITY, f64::min)
                .min(0.0);
            let hi = samples
                .iter()
                .filter_map(|(_, v)| {
                    let mut s = v.clone();
                    s.sort_by(f64::total_cmp);
                    quantile(&s, 0.99)
                })
                .fold(lo + 1.0, f64::max);
            let width = (hi - lo) / BINS as f64;
            let edges = (0..=BINS).map(|i| lo + width * i as f64).collect();
            let mut above = Vec::with_capacity(samples.len());
            let series = samples
                .into_iter()
                .map(|(label, v)| {
                    let mut counts = vec![0u64; BINS];
                    let mut past = 0;
                    for x in v {
                        if x > hi {
                            past += 1;
                            continue;
                        }
                        let bin = (((x - lo) / width).floor().max(0.0) as usize).min(BINS - 1);
                        counts[bin] += 1;
                    }
                    above.push(past);
                    (label, counts)
                })
                .collect();
            Some(StageHistogram {
                stage: (*stage).to_string(),
                edges,
                series,
                above,
            })
        })
        .collect()
}

/// Each series' marked p90/p95 (taken from its CDF curve, so both plots show the same
/// intervals and the sample is gathered and bootstrapped once) against its WER.
fn pareto(
    loaded: &Loaded,
    series: &[(String, String)],
    accuracy: &[AccuracyRow],
    cdf: &[CdfSeries],
) -> Vec<ParetoPoint> {
    series
        .iter()
        .filter_map(|(run, profile)| {
            let wer = accuracy
                .iter()
                .find(|a| &a.run == run && &a.profile == profile)?;
            (wer.words > 0).then_some(())?;
            let label = loaded.label(run, profile);
            let curve = cdf.iter().find(|c| c.label == label)?;
            Some(ParetoPoint {
                label,
                p90: curve.p90,
                p95: curve.p95,
                p90_ci: curve.p90_ci,
                p95_ci: curve.p95_ci,
                count: curve.count,
                wer: wer.wer,
            })
        })
        .collect()
}

fn slowest(loaded: &Loaded) -> Vec<TurnDetail> {
    let mut turns: Vec<&TurnRow> = loaded
        .turns
        .iter()
        .filter(|t| t.voice_to_voice_ms.is_some())
        .collect();
    turns.sort_by(|a, b| {
        b.voice_to_voice_ms
            .partial_cmp(&a.voice_to_voice_ms)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    turns
        .into_iter()
        .take(SLOWEST)
        .map(|t| TurnDetail {
            run: t.run.clone(),
            profile: t.profile.clone(),
            call: t.call.clone(),
            iteration: t.iteration,
            turn: t.turn,
            voice_to_voice: t.voice_to_voice_ms.unwrap_or_default(),
            boundaries: BOUNDARIES
                .iter()
                .zip(t.boundaries_ms)
                .map(|(name, v)| (name.trim_end_matches("_ns").to_string(), v))
                .collect(),
            transcript: t.transcript.clone(),
            reply: t.reply.clone(),
            error: t.error.clone(),
        })
        .collect()
}

/// An estimate with no interval, for values that have none.
pub fn exact(value: f64) -> Estimate {
    Estimate {
        value,
        lo: value,
        hi: value,
    }
}
