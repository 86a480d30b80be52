//! The vision lane against a remote detector: the `latlab` binary drives camera streams
//! through the real KServe v2 client to latlab's emulator on loopback (no model needed), with
//! faults injected: every failed frame is a typed error in its record and the run goes on.

mod common;

use common::{ffmpeg_here, read_json, read_jsonl, root, run_ok};
use latlab_core::timing::ErrorKind;
use latlab_core::vision::{FrameOutcome, FrameRecord};

/// `scenarios/video-kserve.toml` copied into `dir` with its dataset path made absolute,
/// `frames` frames per stream, and its emulator's `classes = 1` line replaced by `detector`.
fn kserve_scenario(dir: &std::path::Path, frames: u32, detector: &str) -> std::path::PathBuf {
    let path = dir.join("kserve.toml");
    let text = std::fs::read_to_string(root().join("scenarios/video-kserve.toml"))
        .unwrap()
        .replace(
            "\"../datasets/video-smoke\"",
            &format!("\"{}\"", root().join("datasets/video-smoke").display()),
        )
        .replace("frames = 100", &format!("frames = {frames}"))
        .replace("classes = 1\n", detector);
    std::fs::write(&path, &text).unwrap();
    path
}

#[test]
fn camera_streams_through_the_emulated_kserve_server_record_every_frame_and_fault() {
    if !ffmpeg_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // 20 % of inference requests answer HTTP 503.
    let path = kserve_scenario(tmp.path(), 30, "classes = 1\nfaults = { http_5xx = 0.2 }\n");
    let run = run_ok(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("camera frames:"), "{stdout}");

    let records: Vec<FrameRecord> = read_jsonl(&out.join("frames.jsonl"));
    // One stream of 30 frames, then four streams of 30.
    let of = |p: &str| records.iter().filter(|r| r.profile == p).count();
    assert_eq!(of("binary"), 30);
    assert_eq!(of("binary-4-streams"), 120);
    let failed: Vec<&FrameRecord> = records
        .iter()
        .filter(|r| r.outcome == FrameOutcome::Error)
        .collect();
    assert!(!failed.is_empty(), "a 20 % fault rate over 150 frames");
    for f in &failed {
        let e = f.error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Http, "{e:?}");
        assert_eq!(e.status, Some(503), "{e:?}");
        assert!(f.missed && f.latency_ns.is_none());
    }
    let ok = records
        .iter()
        .filter(|r| r.outcome == FrameOutcome::Ok)
        .count();
    // Under `latest` a busy client skips frames; every frame is one of the three outcomes.
    let skipped = records
        .iter()
        .filter(|r| r.outcome == FrameOutcome::Skipped)
        .count();
    assert!(ok >= 10, "{ok} frames succeeded");
    assert_eq!(ok + skipped + failed.len(), 150);
    for r in records.iter().filter(|r| r.outcome == FrameOutcome::Ok) {
        assert!(
            r.backend.starts_with("kserve:yolov8n@640x480"),
            "{}",
            r.backend
        );
        // The emulator's inference takes ~25 ms: the inference span holds it.
        assert!(r.inference_ns().unwrap() >= 10_000_000, "{r:?}");
    }

    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert!(
        manifest["emulator"]["detector"].is_object(),
        "{}",
        manifest["emulator"]
    );
    let v = &manifest["vision"];
    assert_eq!(v["captured"], 150);
    assert_eq!(
        v["failed"].as_u64().unwrap() as usize,
        failed.len(),
        "the manifest counts what the records say"
    );
    // The analysis reads the frames: the report has a video section.
    let summary = read_json(&out.join("summary.json"));
    assert!(summary["video"].is_object(), "{summary}");
}

/// Ctrl-C in the middle of a camera replay: exit 130, every frame captured before it is in
/// `frames.jsonl` and `frames.parquet`, the manifest says what stopped, and the folder reads.
#[cfg(unix)]
#[test]
fn ctrl_c_mid_stream_keeps_every_captured_frame_readable() {
    if !ffmpeg_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let path = kserve_scenario(tmp.path(), 400, "classes = 1\n");
    let child = common::latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = out.join("frames.jsonl");
    common::interrupt_after_lines(&child, &log, 10);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130), "{done:?}");

    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["status"], "interrupted");
    assert!(
        manifest["notes"]
            .to_string()
            .contains("stopped at the interrupt"),
        "{}",
        manifest["notes"]
    );
    let records: Vec<FrameRecord> = read_jsonl(&log);
    assert!(
        records.len() >= 10 && records.len() < 400,
        "{}",
        records.len()
    );
    assert_eq!(
        manifest["vision"]["captured"].as_u64().unwrap() as usize,
        records.len()
    );
    assert!(out.join("frames.parquet").is_file());
    let shown = run_ok(&["show", out.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("Frames and frame latency"),
        "{shown:?}"
    );
}
