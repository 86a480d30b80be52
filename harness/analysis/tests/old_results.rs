//! Results folders written before the results contract had its own crate keep loading, with
//! every manifest fact read by name, not defaulted: `tests/data/run-2026-12-smoke` was written
//! by latlab at commit 28ea1de (2 calls × 2 profiles of the smoke suite, `--speed 4`).

use std::path::{Path, PathBuf};

use latlab_results::manifest::RunStatus;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn a_folder_from_before_the_results_crate_opens_with_its_facts() {
    let run = latlab_analysis::Run::open(&data("run-2026-12-smoke")).unwrap();
    assert_eq!(run.facts.status, RunStatus::Complete);
    assert_eq!(run.facts.scenario, "smoke");
    assert_eq!(run.facts.seed, 42);
    assert_eq!(run.facts.speed, 4.0);
    assert_eq!(run.profiles(), ["balanced", "aggressive"]);
    assert!(run.facts.cores > 0 && !run.facts.run_id.is_empty());
    let counts = run.manifest.counts.as_ref().unwrap();
    assert_eq!((counts.calls, counts.turns, counts.spans), (4, 10, 50));
    assert_eq!(run.manifest.measurer.len(), 4);
    let report = latlab_analysis::analyze(&[data("run-2026-12-smoke")]).unwrap();
    assert_eq!(report.measurer.len(), 4, "{:?}", report.measurer);
}

#[test]
fn a_folder_from_before_the_results_crate_analyses_end_to_end() {
    let report = latlab_analysis::analyze(&[data("run-2026-12-smoke")]).unwrap();
    let turns: u64 = report
        .summary
        .iter()
        .filter(|r| r.stage == "turn")
        .map(|r| r.count + r.errors)
        .sum();
    assert_eq!(turns, 10);
}

#[test]
fn the_older_golden_run_still_opens() {
    let run = latlab_analysis::Run::open(&data("golden-run")).unwrap();
    assert!(!run.profiles().is_empty());
}

#[test]
fn a_folder_written_by_a_newer_latlab_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["manifest.json", "spans.parquet"] {
        std::fs::copy(data("run-2026-12-smoke").join(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["schema_version"] = 99.into();
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let err = latlab_analysis::Run::open(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("schema version 99") && err.contains("newer"),
        "{err}"
    );
}
