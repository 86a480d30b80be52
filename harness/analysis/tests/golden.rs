//! The summary of a fixed results folder is pinned: any change to grouping, quantiles or
//! bootstrap shows up as a diff against `tests/data/golden-summary.json`.
//! Regenerate deliberately with `UPDATE_GOLDEN=1 cargo test -p latlab-analysis --test golden`.

use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// JSON equality with a relative tolerance on numbers (float text round trips are not exact).
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn the_summary_of_a_fixed_run_matches_its_golden_file() {
    let report = latlab_analysis::summarize(&[data().join("golden-run")]).unwrap();
    let actual = serde_json::to_value(&report.summary).unwrap();
    let golden = data().join("golden-summary.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(
            &golden,
            serde_json::to_string_pretty(&actual).unwrap() + "\n",
        )
        .unwrap();
    }
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden).unwrap()).unwrap();
    assert!(
        close(&actual, &expected),
        "summary drifted from {}:\n{actual:#}",
        golden.display()
    );
    // Spot-check the shape: 2 profiles × 5 stages, every row on 7 samples, CIs around values.
    let rows = report.summary;
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0].profile, "balanced");
    assert_eq!(rows[4].stage, "turn");
    for r in &rows {
        assert_eq!(r.count + r.errors + r.skipped, 7, "{r:?}");
        let p50 = r.p50.unwrap();
        assert!(p50.lo <= p50.value && p50.value <= p50.hi);
    }
}

#[test]
fn the_full_report_covers_every_part() {
    let report = latlab_analysis::analyze(&[data().join("golden-run")]).unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.throughput.len(), 2);
    assert_eq!(report.accuracy.len(), 2);
    // The emulator returns the dataset's words: balanced endpointing hears all of them; the
    // aggressive VAD may cut a turn short, which shows as deletions.
    assert_eq!(report.accuracy[0].profile, "balanced");
    assert_eq!(report.accuracy[0].wer, 0.0);
    assert!(report.accuracy.iter().all(|a| a.words > 0 && a.wer < 0.5));
    assert_eq!(report.plots.cdf.len(), 2);
    assert_eq!(report.plots.waterfall.len(), 2);
    assert_eq!(report.plots.histograms.len(), 5);
    assert_eq!(report.plots.pareto.len(), 2);
    assert!(!report.plots.over_time[0].in_flight.is_empty());
    // The marked percentiles carry their intervals, around the value.
    for (p90, p95, ci90, ci95) in report
        .plots
        .cdf
        .iter()
        .map(|c| (c.p90, c.p95, c.p90_ci, c.p95_ci))
        .chain(
            report
                .plots
                .pareto
                .iter()
                .map(|p| (p.p90, p.p95, p.p90_ci, p.p95_ci)),
        )
    {
        for (v, ci) in [(p90, ci90), (p95, ci95)] {
            let [lo, hi] = ci.expect("an interval");
            assert!(lo <= v && v <= hi, "{lo} {v} {hi}");
        }
    }
    assert!(report.plots.pareto.iter().all(|p| p.count > 0));
    // Every successful sample is in a bin or counted above the last edge, never lost.
    for h in &report.plots.histograms {
        assert_eq!(h.above.len(), h.series.len());
        let drawn: u64 = h.series.iter().flat_map(|(_, c)| c.iter()).sum();
        let above: u64 = h.above.iter().sum();
        let ok: u64 = report
            .summary
            .iter()
            .filter(|r| r.stage == h.stage)
            .map(|r| r.count)
            .sum();
        assert_eq!(drawn + above, ok, "{}", h.stage);
    }
    assert_eq!(report.slowest_turns.len(), 14);
    let v: Vec<f64> = report
        .slowest_turns
        .iter()
        .map(|t| t.voice_to_voice)
        .collect();
    assert!(v.windows(2).all(|w| w[0] >= w[1]), "slowest first");
}

#[test]
fn export_writes_every_span() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("spans.csv");
    let rows = latlab_analysis::export::export(
        &data().join("golden-run"),
        latlab_analysis::export::Format::Csv,
        &csv,
    )
    .unwrap();
    assert_eq!(rows, 70);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 71);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("run,scenario,profile,call")
    );
    let json = dir.path().join("spans.jsonl");
    latlab_analysis::export::export(
        &data().join("golden-run"),
        latlab_analysis::export::Format::Json,
        &json,
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(first["latency_ns"].is_i64() || first["latency_ns"].is_null());
}
