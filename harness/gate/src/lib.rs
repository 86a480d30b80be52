//! latlab-gate: the CI gate. A run's stage samples are judged against targets (PASS / FAIL /
//! INCONCLUSIVE from one-sided order-statistic or binomial bounds) and, when a baseline is
//! given, compared with it (REGRESSED / IMPROVED / UNCHANGED from a bootstrap interval of the
//! difference against a noise band). One [`GateReport`] renders to JSON, JUnit XML and
//! Markdown ([`output`]); the `latlab gate` command turns it into an exit code.
//!
//! The statistics ([`bounds`], [`check`], [`regress`]) are pure; reading results is
//! `latlab_analysis`'s job, and this crate writes only baselines and the outputs it is asked for.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use latlab_results::manifest::{Lag, Pacing, RunManifest, RunStatus};
use serde::Serialize;

pub mod baseline;
pub mod bounds;
pub mod check;
pub mod merge;
pub mod output;
pub mod regress;
pub mod targets;

pub use baseline::Baseline;
pub use check::{Check, Level, LevelVerdict, Verdict};
pub use merge::{StageSample, add_tool_rates, agent_samples, frame_samples, stage_samples};
pub use regress::{Change, Comparison, DEFAULT_BAND, NoiseBand};
pub use targets::Targets;

/// Version of the gate's JSON output (`docs/schemas/gate.schema.json`).
pub const GATE_SCHEMA_VERSION: u32 = 1;

/// What can go wrong before a verdict exists (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The command was used wrongly.
    #[error("{0}")]
    Usage(String),
    /// The data cannot be judged.
    #[error("{0}")]
    Data(String),
    /// A targets file is invalid.
    #[error(transparent)]
    Targets(#[from] targets::TargetsError),
    /// The results could not be read.
    #[error(transparent)]
    Analysis(#[from] latlab_analysis::AnalysisError),
}

/// How INCONCLUSIVE crit verdicts count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InconclusivePolicy {
    /// As failures (the default: a gate must not pass what it could not show).
    Fail,
    /// As passes.
    Pass,
}

/// The gate's overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Exit 0.
    Pass,
    /// Exit 1.
    Fail,
}

/// Counts for the headline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Checks whose crit level passed (or warn-only checks that passed).
    pub passed: usize,
    /// Checks whose crit level failed.
    pub failed: usize,
    /// Checks whose crit level was inconclusive.
    pub inconclusive: usize,
    /// Checks whose warn level failed.
    pub warnings: usize,
    /// Comparisons that regressed.
    pub regressed: usize,
    /// Comparisons that improved.
    pub improved: usize,
    /// Comparisons inside the noise band.
    pub unchanged: usize,
}

/// Everything the gate concluded: every output renders from this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// [`GATE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The results folder judged.
    pub result_dir: String,
    /// Its run id.
    pub run_id: String,
    /// Its scenario.
    pub scenario: String,
    /// Its status (`complete`, `interrupted`, ...).
    pub run_status: RunStatus,
    /// The targets file.
    pub targets_file: String,
    /// The targets' name.
    pub targets_name: String,
    /// The baseline compared with, if any.
    pub baseline: Option<String>,
    /// The noise band used with it.
    pub noise_band: Option<NoiseBand>,
    /// How INCONCLUSIVE counted.
    pub inconclusive: InconclusivePolicy,
    /// Target checks.
    pub checks: Vec<Check>,
    /// Baseline comparisons.
    pub comparisons: Vec<Comparison>,
    /// Headline counts.
    pub tally: Tally,
    /// Pass or fail.
    pub outcome: Outcome,
}

impl GateReport {
    /// The process exit code: 0 pass, 1 fail.
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
        }
    }
}

/// Options of one gate.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// How INCONCLUSIVE counts.
    pub inconclusive: InconclusivePolicy,
    /// Noise band for baseline comparisons.
    pub band: NoiseBand,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            inconclusive: InconclusivePolicy::Fail,
            band: DEFAULT_BAND,
        }
    }
}

/// Reads one results folder into its stage samples: the spans' stages, then the video
/// lane's `frame` stage when the run has `frames.parquet`, then an agent run's caller's-ear
/// stages when its turns carry the agent columns; the `tool` stage carries the cache's hit
/// rate.
pub fn read_run(dir: &Path) -> Result<(latlab_analysis::Run, Vec<StageSample>), GateError> {
    let run = latlab_analysis::Run::open(dir)?;
    let groups = if run.has_spans() {
        latlab_analysis::frames::span_groups(&[run.spans_file()])?
    } else {
        Vec::new()
    };
    let frames = match run.frames_file() {
        Some(path) => latlab_analysis::video::read_frames(&path)?,
        None => Vec::new(),
    };
    if groups.is_empty() && frames.is_empty() {
        return Err(GateError::Data(format!(
            "{}: the run recorded no spans and no frames",
            dir.display()
        )));
    }
    let agent_turns = match run.turns_file() {
        Some(path) => latlab_analysis::agent::read_agent_turns(&path)?,
        None => Vec::new(),
    };
    let tool_spans = if run.has_spans() {
        latlab_analysis::tool::read_tool_spans(&run.spans_file())?
    } else {
        Vec::new()
    };
    let fps = run.manifest.vision.as_ref().map(|v| v.fps);
    let mut stages = stage_samples(&groups);
    add_tool_rates(&mut stages, &tool_spans);
    stages.extend(frame_samples(&frames, |_| fps));
    stages.extend(agent_samples(&agent_turns));
    Ok((run, stages))
}

/// Judges a run: targets, then the baseline if one is given.
pub fn gate(
    dir: &Path,
    targets: &Targets,
    baseline: Option<&Baseline>,
    options: &GateOptions,
) -> Result<GateReport, GateError> {
    let (run, stages) = read_run(dir)?;
    let lag = harness_lag_checks(&run.manifest);
    Ok(evaluate(
        dir, &run.facts, &stages, &lag, targets, baseline, options,
    ))
}

/// The harness's own scheduling lag limit: past it, latencies partly describe the load
/// generator (`docs/scenarios.md`, Load).
pub const LAG_LIMIT_MS: f64 = 1.0;

/// Checks of the run's own scheduling lag (audio frames, call starts) from its manifest, at
/// warn level: PASS when the p99 is within [`LAG_LIMIT_MS`], a warning past it — the harness
/// fell behind its schedule, so its latencies (and any regression against a baseline) partly
/// describe the load generator. Warn, not crit: a stall of a few ms cannot explain a target
/// missed by hundreds, and the targets' own verdicts still stand. None when the manifest does
/// not record the lag.
pub fn harness_lag_checks(m: &RunManifest) -> Vec<Check> {
    let scenario = &m.scenario.name;
    let mut out = Vec::new();
    for (lag, what) in [
        (
            m.pacing.as_ref().map(Pacing::as_lag),
            "audio frame send lag",
        ),
        (m.call_starts.clone(), "call start lag"),
    ] {
        let Some(Lag {
            count: n, p99_ns, ..
        }) = lag
        else {
            continue;
        };
        if n == 0 {
            continue;
        }
        let p99_ms = p99_ns as f64 / 1e6;
        let within = p99_ms <= LAG_LIMIT_MS;
        out.push(Check {
            target: format!("harness {what}"),
            scenario: scenario.to_string(),
            profile: "(run)".into(),
            stage: "harness".into(),
            metric: "p99".into(),
            unit: "ms",
            samples: n,
            value: Some(p99_ms),
            lower: None,
            upper: None,
            confidence: 1.0,
            levels: vec![LevelVerdict {
                level: Level::Warn,
                limit: LAG_LIMIT_MS,
                verdict: if within {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                need_more: None,
                reason: if within {
                    format!("the harness kept its schedule: p99 {what} {p99_ms:.3} ms ≤ {LAG_LIMIT_MS} ms")
                } else {
                    format!(
                        "the harness fell behind its schedule (p99 {what} {p99_ms:.3} ms > {LAG_LIMIT_MS} ms): latencies partly describe the load generator; rerun on a quieter machine or with fewer calls in flight"
                    )
                },
            }],
        });
    }
    out
}

/// The gate over samples already read.
pub fn evaluate(
    dir: &Path,
    facts: &latlab_report::model::RunFacts,
    stages: &[StageSample],
    harness: &[Check],
    targets: &Targets,
    baseline: Option<&Baseline>,
    options: &GateOptions,
) -> GateReport {
    let mut checks = check::judge(targets, stages);
    checks.extend(harness.iter().cloned());
    let comparisons = baseline.map_or_else(Vec::new, |b| {
        regress::compare(stages, b, options.band, targets.confidence)
    });
    let mut tally = Tally::default();
    for c in &checks {
        match c.crit().map(|l| l.verdict) {
            Some(Verdict::Fail) => tally.failed += 1,
            Some(Verdict::Inconclusive) => tally.inconclusive += 1,
            _ => tally.passed += 1,
        }
        if c.warned() {
            tally.warnings += 1;
        }
    }
    for c in &comparisons {
        match c.change {
            Change::Regressed => tally.regressed += 1,
            Change::Improved => tally.improved += 1,
            Change::Unchanged => tally.unchanged += 1,
        }
    }
    let failing = tally.failed > 0
        || tally.regressed > 0
        || (options.inconclusive == InconclusivePolicy::Fail && tally.inconclusive > 0);
    GateReport {
        schema_version: GATE_SCHEMA_VERSION,
        result_dir: dir.display().to_string(),
        run_id: facts.run_id.clone(),
        scenario: facts.scenario.clone(),
        run_status: facts.status,
        targets_file: targets.path.display().to_string(),
        targets_name: targets.name.clone(),
        baseline: baseline.map(|b| b.name.clone()),
        noise_band: baseline.map(|_| options.band),
        inconclusive: options.inconclusive,
        checks,
        comparisons,
        tally,
        outcome: if failing {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
    }
}
