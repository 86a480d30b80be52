//! `latlab export` against a real results folder: the export lands beside the run's files,
//! never on them, so the run stays recoverable.

mod common;
use common::{latlab, run_ok, scenario};

#[test]
fn an_export_leaves_the_runs_own_files_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 1, "");
    let dir = tmp.path().join("out");
    let d = dir.to_str().unwrap();
    run_ok(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        d,
        "-q",
        "--no-report",
    ]);
    let span_log = std::fs::read(dir.join("spans.jsonl")).unwrap();

    for (format, file) in [("json", "spans.jsonl"), ("csv", "spans.csv")] {
        let out = run_ok(&["export", d, "--format", format]);
        let written = dir.join("export").join(file);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&written.display().to_string()),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(std::fs::metadata(&written).unwrap().len() > 0);
    }
    assert_eq!(std::fs::read(dir.join("spans.jsonl")).unwrap(), span_log);
    run_ok(&["recover", d]);

    // Asked to write onto the run's own files, export refuses and touches nothing.
    for target in ["spans.jsonl", "turns.jsonl", "manifest.json", "mine.csv"] {
        let out = latlab()
            .args(["export", d, "--format", "json", "-o"])
            .arg(dir.join(target))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{target}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refusing to write"), "{err}");
    }
    assert!(!dir.join("mine.csv").exists());
    assert_eq!(std::fs::read(dir.join("spans.jsonl")).unwrap(), span_log);
    // Anywhere outside a results folder is fine.
    let elsewhere = tmp.path().join("spans.jsonl");
    run_ok(&[
        "export",
        d,
        "--format",
        "json",
        "-o",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(elsewhere.exists());
    run_ok(&["recover", d]);
}
