//! A run's `telemetry.jsonl` reaches the report model: a torn last line (a killed run) is
//! skipped quietly, a bad line elsewhere is noted, and a run without the file has no series.

use std::path::{Path, PathBuf};

use latlab_analysis::telemetry;

fn golden_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-run")
}

/// A copy of the golden run in a temporary folder, with `telemetry` as its telemetry.jsonl.
fn run_with(telemetry: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["manifest.json", "spans.parquet", "turns.parquet"] {
        std::fs::copy(golden_run().join(file), dir.path().join(file)).unwrap();
    }
    if let Some(text) = telemetry {
        std::fs::write(dir.path().join(telemetry::FILE), text).unwrap();
    }
    dir
}

const LINES: &str = r#"{"t_ns":1000000000,"interval_ns":1000000000,"cpu_percent":[10.0,30.0],"process_cpu_percent":40.0,"rss_bytes":104857600,"net_rx_bytes":125000,"net_tx_bytes":250000,"gpu":[]}
{"t_ns":2000000000,"interval_ns":1000000000,"cpu_percent":[50.0,70.0],"process_cpu_percent":120.0,"rss_bytes":209715200,"net_rx_bytes":250000,"net_tx_bytes":0,"gpu":[{"index":0,"name":"NVIDIA H100","utilization_percent":80,"memory_used_bytes":1073741824,"memory_total_bytes":85899345920,"power_watts":310.5,"temperature_c":61}]}
{"t_ns":3000000000,"interval_ns":1000000000,"cpu_percent":[20.0,20.0],"process_cpu_percent":10.0,"rss_bytes":209715200,"net_rx_bytes":0,"net_tx_bytes":0,"gpu":[]}
{"t_ns":4000000000,"interval_ns":10000"#;

#[test]
fn a_torn_last_line_is_skipped_and_the_rest_reaches_the_report() {
    let dir = run_with(Some(LINES));
    let read = telemetry::read(dir.path()).unwrap();
    assert_eq!((read.samples.len(), read.bad_lines), (3, 0));

    let report = latlab_analysis::analyze(&[dir.path().to_path_buf()]).unwrap();
    assert!(
        !report.notes.iter().any(|n| n.contains("telemetry")),
        "{:?}",
        report.notes
    );
    let [series] = report.plots.telemetry.as_slice() else {
        panic!("{:?}", report.plots.telemetry);
    };
    assert_eq!(series.label, report.runs[0].run_id);
    assert_eq!(series.cores, 2);
    assert_eq!(series.gpus, ["NVIDIA H100"]);
    let t: Vec<f64> = series.points.iter().map(|p| p.t_s).collect();
    assert_eq!(t, [1.0, 2.0, 3.0]);
    let p = &series.points[1];
    assert_eq!(p.cpu_percent, 60.0);
    assert_eq!(p.cpu_core_percent, [50.0, 70.0]);
    assert_eq!(p.process_cpu_percent, 120.0);
    assert_eq!(p.rss_bytes, 200 << 20);
    assert!((p.net_rx_mbit_s - 2.0).abs() < 1e-12, "{}", p.net_rx_mbit_s);
    assert_eq!(p.gpu[0].utilization_percent, Some(80.0));
    assert_eq!(p.gpu[0].power_watts, Some(310.5));
    // A sample without the GPU keeps its place, with nothing read.
    assert_eq!(series.points[0].gpu[0].utilization_percent, None);
    // Each profile's turns, on the run's clock, for the plot to shade.
    let phases: Vec<&str> = series.phases.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(phases, ["balanced", "aggressive"]);
    assert!(
        series
            .phases
            .iter()
            .all(|p| 0.0 <= p.start_s && p.start_s < p.end_s)
    );

    // The model round-trips through summary.json.
    let json = latlab_report::json(&report);
    let back: latlab_report::model::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.plots.telemetry, report.plots.telemetry);
}

#[test]
fn a_bad_line_before_the_last_is_noted() {
    let text = LINES.replacen("{\"t_ns\":2000000000", "{\"t_ns\":oops", 1);
    let dir = run_with(Some(&text));
    let report = latlab_analysis::analyze(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(report.plots.telemetry[0].points.len(), 2);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("1 unreadable line(s) of telemetry.jsonl")),
        "{:?}",
        report.notes
    );
}

#[test]
fn no_file_or_an_empty_one_is_no_series_and_no_error() {
    for telemetry in [None, Some(""), Some("\n")] {
        let dir = run_with(telemetry);
        let report = latlab_analysis::analyze(&[dir.path().to_path_buf()]).unwrap();
        assert!(report.plots.telemetry.is_empty(), "{telemetry:?}");
        assert!(report.notes.iter().all(|n| !n.contains("telemetry")));
    }
}

#[test]
fn a_summary_json_without_telemetry_still_loads() {
    let report = latlab_analysis::analyze(&[golden_run()]).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&latlab_report::json(&report)).unwrap();
    json["plots"].as_object_mut().unwrap().remove("telemetry");
    let back: latlab_report::model::Report = serde_json::from_value(json).unwrap();
    assert!(back.plots.telemetry.is_empty());
}
