//! The fast version of the gate's calibration (`benches/calibrate_gate.sh` is the full one):
//! A/A runs of the smoke scenario against the seeded emulator, each gated against one baseline
//! with the default noise band. The goal is a false-positive rate ≤ 1 %; with a handful of
//! pairs this test can only catch a rate *clearly* above it, so it fails when the count of
//! false-positive pairs would be very unlikely (p < 0.001) at a rate of 1 %.

mod common;

use std::path::Path;
use std::thread;

use common::{gate, read_json, root, run_ok};

/// Candidate runs gated against the one baseline.
const CANDIDATES: u64 = 5;

fn smoke_run(out: &Path, seed: u64) {
    let scenario = root().join("scenarios/smoke.toml");
    let seed = seed.to_string();
    run_ok(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        &seed,
        "--speed",
        "10",
        "--quiet",
        "--no-report",
    ]);
}

/// P(X ≥ k) for X ~ Binomial(n, p).
fn tail(n: u64, k: u64, p: f64) -> f64 {
    let choose = |n: u64, k: u64| (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
    (k..=n)
        .map(|j| choose(n, j) * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32))
        .sum()
}

#[test]
fn binomial_tail_is_right() {
    assert!((tail(5, 0, 0.01) - 1.0).abs() < 1e-12);
    assert!((tail(5, 1, 0.01) - (1.0 - 0.99f64.powi(5))).abs() < 1e-12);
    assert!((tail(5, 5, 0.5) - 1.0 / 32.0).abs() < 1e-12);
}

#[test]
fn a_a_runs_of_the_smoke_scenario_rarely_regress() {
    let dir = tempfile::tempdir().unwrap();
    // Three runs side by side (each mostly waits on the emulator's timings); more at once on a
    // 2-core machine and the harness falls behind its own schedule, which is load-generator
    // noise, not the system's.
    let mut runs = Vec::new();
    for wave in (0..=CANDIDATES).collect::<Vec<_>>().chunks(3) {
        let started: Vec<_> = wave
            .iter()
            .map(|&i| {
                let out = dir.path().join(format!("run-{i}"));
                thread::spawn(move || {
                    smoke_run(&out, 7_000 + i);
                    out
                })
            })
            .collect();
        runs.extend(started.into_iter().map(|r| r.join().unwrap()));
    }
    let baselines = dir.path().join("baselines");
    run_ok(&[
        "baseline",
        "save",
        "base",
        runs[0].to_str().unwrap(),
        "--root",
        baselines.to_str().unwrap(),
    ]);
    let targets = dir.path().join("targets.toml");
    std::fs::write(
        &targets,
        "[[target]]\nstage = \"turn\"\nmetric = \"error_rate\"\ncrit = 100\n",
    )
    .unwrap();

    let mut false_positive_pairs = 0;
    let mut comparisons = 0;
    let mut regressed = Vec::new();
    for run in &runs[1..] {
        let json = run.with_extension("gate.json");
        let (code, _, stderr) = gate(&[
            run.to_str().unwrap(),
            "--targets",
            targets.to_str().unwrap(),
            "--baseline",
            "base",
            "--baselines-root",
            baselines.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "-q",
        ]);
        assert!(matches!(code, 0 | 1), "{stderr}");
        let report = read_json(&json);
        let cmps = report["comparisons"].as_array().unwrap();
        assert!(!cmps.is_empty(), "the baseline comparisons ran");
        comparisons += cmps.len();
        let hits: Vec<String> = cmps
            .iter()
            .filter(|c| c["change"] == "REGRESSED")
            .map(|c| format!("{}/{}/{}", c["profile"], c["stage"], c["metric"]))
            .collect();
        if !hits.is_empty() {
            false_positive_pairs += 1;
            regressed.extend(hits);
        }
    }
    let p = tail(CANDIDATES, false_positive_pairs, 0.01);
    eprintln!(
        "A/A: {false_positive_pairs} of {CANDIDATES} pairs had a REGRESSED comparison \
         ({} of {comparisons} comparisons: {regressed:?}); P(≥ that many | 1 %) = {p:.2e}",
        regressed.len()
    );
    assert!(
        p >= 1e-3,
        "{false_positive_pairs} of {CANDIDATES} A/A pairs regressed ({regressed:?}): the \
         false-positive rate is clearly above 1 %"
    );
}
