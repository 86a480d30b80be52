//! `latlab gate` and `latlab baseline save`: the CLI side of `latlab_gate`.

use std::path::Path;

use anyhow::Context;
use latlab_gate::{Baseline, GateOptions, InconclusivePolicy, NoiseBand, Targets, output};

use crate::cli::{GateArgs, InconclusiveAs};

/// The gate judged the run a failure (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("the latency gate failed")]
pub struct Failed;

/// Runs the gate, writes the outputs asked for and prints the verdicts; `Err(Failed)` when
/// the gate fails, any other error for usage or data problems.
pub fn gate(args: &GateArgs) -> anyhow::Result<()> {
    let targets = Targets::load(&args.targets)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(|b| Baseline::load(&args.baselines_root, b))
        .transpose()?;
    let band = NoiseBand {
        relative: args
            .band_relative
            .unwrap_or(latlab_gate::DEFAULT_BAND.relative),
        absolute_ms: args
            .band_ms
            .unwrap_or(latlab_gate::DEFAULT_BAND.absolute_ms),
    };
    if !(band.relative >= 0.0 && band.absolute_ms >= 0.0) {
        anyhow::bail!("the noise band must not be negative");
    }
    let options = GateOptions {
        inconclusive: match args.inconclusive {
            InconclusiveAs::Fail => InconclusivePolicy::Fail,
            InconclusiveAs::Pass => InconclusivePolicy::Pass,
        },
        band,
    };
    let report = latlab_gate::gate(&args.dir, &targets, baseline.as_ref(), &options)?;
    let write = |path: &Option<std::path::PathBuf>, text: String| -> anyhow::Result<()> {
        if let Some(path) = path {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    };
    write(&args.junit, output::junit(&report))?;
    write(&args.markdown, output::markdown(&report))?;
    write(&args.json, output::json(&report))?;
    let text = output::text(&report);
    if args.quiet {
        println!("{}", text.lines().last().unwrap_or_default());
    } else {
        print!("{text}");
    }
    if report.exit_code() == 0 {
        Ok(())
    } else {
        Err(Failed.into())
    }
}

/// Saves a results folder as a named baseline.
pub fn save_baseline(name: &str, dir: &Path, root: &Path) -> anyhow::Result<()> {
    let (run, stages) = latlab_gate::read_run(dir)?;
    let baseline = Baseline::new(name, &run, &stages)?;
    let path = baseline.save(root)?;
    let samples: u64 = baseline.groups.iter().map(|g| g.latency.n).sum();
    println!(
        "baseline {name}: {} stage groups, {samples} latencies from run {} → {}",
        baseline.groups.len(),
        run.facts.run_id,
        path.display()
    );
    Ok(())
}
