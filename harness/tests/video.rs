//! The vision lane end to end through the `latlab` binary: the bundled video decoded by
//! ffmpeg, replayed on the run's clock through real YOLOv8 models on ONNX Runtime, each frame
//! logged and tabled, accuracy scored against the reference boxes, and bad input refused
//! before anything runs.
//!
//! The detectors are downloads (`models/fetch.py yolov8n yolov8s-person onnxruntime`):
//! without them these tests say so and pass, unless `LATLAB_REQUIRE_MODELS=1`.
#![cfg(feature = "local-vision")]

mod common;

use std::path::Path;

use common::{ffmpeg_here, read_json, read_jsonl, root, run_fails, run_ok};
use latlab_core::vision::{FrameOutcome, FrameRecord};

fn models_here() -> bool {
    let check = std::process::Command::new("python3")
        .arg(root().join("models/fetch.py"))
        .args(["--check", "onnxruntime", "yolov8n", "yolov8s-person"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !check && std::env::var("LATLAB_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("detector models missing and LATLAB_REQUIRE_MODELS=1: run python3 models/fetch.py");
    }
    if !check {
        eprintln!("skipped: detector models not fetched (python3 models/fetch.py)");
    }
    check
}

fn video_dataset() -> String {
    root()
        .join("datasets/video-smoke")
        .to_string_lossy()
        .into_owned()
}

/// A video-only scenario over the bundled vtest clip.
fn scenario(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("video.toml");
    std::fs::write(
        &path,
        format!("name = \"video-test\"\nseed = 7\n{body}\n",).replace("DATASET", &video_dataset()),
    )
    .unwrap();
    path
}

fn frames_of(records: &[FrameRecord], profile: &str) -> Vec<FrameRecord> {
    records
        .iter()
        .filter(|r| r.profile == profile)
        .cloned()
        .collect()
}

#[test]
fn frames_replay_on_the_clock_under_both_policies_with_accuracy() {
    if !ffmpeg_here() || !models_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // 100 fps (vtest at speed 10): YOLOv8s takes far longer than 10 ms a frame on a CPU, so
    // `latest` must skip and `queue` must fall behind.
    let path = scenario(
        tmp.path(),
        r#"speed = 10.0
run_profiles = ["latest", "queue"]

[video]
dataset = "DATASET"
video = "vtest"
frames = 24

[video.detector]
kind = "onnx"
model = "yolov8s-person"
input = [640, 640]
threads = 2
conf = 0.5

[profiles.latest]
video = { policy = "latest" }

[profiles.queue]
video = { policy = "queue" }
"#,
    );
    let run = run_ok(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--no-fetch",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let records: Vec<FrameRecord> = read_jsonl(&out.join("frames.jsonl"));
    assert!(out.join("frames.parquet").is_file());

    // One record per captured frame and profile, in capture order, each from its capture time.
    for profile in ["latest", "queue"] {
        let frames = frames_of(&records, profile);
        assert_eq!(frames.len(), 24, "{profile}: {stdout}");
        let idx: Vec<u32> = frames.iter().map(|r| r.frame).collect();
        assert_eq!(idx, (0..24).collect::<Vec<_>>(), "{profile}");
        for w in frames.windows(2) {
            assert_eq!(w[1].capture_ns - w[0].capture_ns, 10_000_000, "10 ms apart");
        }
        for r in frames.iter().filter(|r| r.outcome == FrameOutcome::Ok) {
            let (start, pre, inf, end) = (
                r.start_ns.unwrap(),
                r.preprocess_end_ns.unwrap(),
                r.inference_end_ns.unwrap(),
                r.result_ns.unwrap(),
            );
            assert!(
                r.capture_ns <= start && start <= pre && pre <= inf && inf <= end,
                "{r:?}"
            );
            assert_eq!(r.latency_ns, Some(end - r.capture_ns));
            assert!(r.missed, "YOLOv8s cannot answer within 10 ms: {r:?}");
            assert!(
                r.backend.starts_with("onnx:yolov8s-person@640x640"),
                "{}",
                r.backend
            );
        }
    }
    let latest = frames_of(&records, "latest");
    let queue = frames_of(&records, "queue");
    let skipped = latest
        .iter()
        .filter(|r| r.outcome == FrameOutcome::Skipped)
        .count();
    assert!(skipped >= 12, "latest skipped only {skipped} of 24");
    assert!(queue.iter().all(|r| r.outcome == FrameOutcome::Ok));
    // Under `queue` the backlog grows: the last frame waited longer than the first.
    assert!(
        queue[23].queue_wait_ns().unwrap() > queue[0].queue_wait_ns().unwrap() + 50_000_000,
        "{:?} vs {:?}",
        queue[23],
        queue[0]
    );

    // Accuracy: the reference was made offline by this model at the same threshold (0.5) in
    // Python (datasets/annotate_video.py), so the Rust letterbox, decoding and NMS must find
    // the same people again, give or take a box whose score sits on the threshold.
    let manifest = read_json(&out.join("manifest.json"));
    let acc = manifest["vision"]["accuracy"].as_array().unwrap();
    let queue_acc = acc.iter().find(|a| a["profile"] == "queue").unwrap();
    let person = &queue_acc["classes"][0];
    assert_eq!(person["class"], "person");
    let (tp, fp, fn_) = (
        person["tp"].as_f64().unwrap(),
        person["fp"].as_f64().unwrap(),
        person["fn"].as_f64().unwrap(),
    );
    assert!(tp >= 30.0, "{person}");
    assert!(tp / (tp + fn_) >= 0.9, "recall: {person}");
    assert!(tp / (tp + fp) >= 0.9, "precision: {person}");
    assert_eq!(manifest["vision"]["video"], "vtest-20s.mp4");
    assert_eq!(manifest["vision"]["decode"]["frames"], 200);
    assert_eq!(manifest["vision"]["policies"]["latest"], "latest");
    // A video-only run: the manifest's dataset is the video dataset, and the report starts at
    // its Video section (no empty audio tables).
    assert_eq!(manifest["dataset"]["name"], "video-smoke");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Video"), "{md}");
    assert!(!md.contains("\n## Latency ("), "{md}");
    assert!(!md.contains("\n## Throughput"), "{md}");
    let loads = manifest["model_loads"].as_array().unwrap();
    assert!(loads.iter().any(|l| l["stage"] == "detector"), "{loads:?}");
}

#[test]
fn bad_video_input_is_refused_naming_the_file_and_field() {
    if !ffmpeg_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A manifest whose frame rate contradicts the file: ffprobe's answer names the field.
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(
        root().join("datasets/video-smoke/vtest-20s.mp4"),
        data.join("v.mp4"),
    )
    .unwrap();
    std::fs::write(
        data.join("manifest.json"),
        r#"{"name": "bad", "videos": [{"id": "v", "file": "v.mp4", "fps": 25.0, "frames": 200, "width": 768, "height": 576}]}"#,
    )
    .unwrap();
    let body = format!(
        "[video]\ndataset = \"{}\"\nvideo = \"v\"\n\n[video.detector]\nkind = \"onnx\"\nmodel = \"yolov8n\"\ninput = [320, 320]\n",
        data.display()
    );
    let path = scenario(tmp.path(), &body);
    let err = run_fails(&["run", path.to_str().unwrap(), "-q", "--no-fetch"]);
    assert!(err.contains("videos[0].fps"), "{err}");
    assert!(err.contains("manifest.json"), "{err}");

    // A video id the dataset does not have.
    let path = scenario(
        tmp.path(),
        &body.replace("video = \"v\"", "video = \"nope\""),
    );
    let err = run_fails(&["run", path.to_str().unwrap(), "-q", "--no-fetch"]);
    assert!(err.contains("no video \"nope\""), "{err}");

    // An input size YOLOv8 cannot take: the scenario names the line and key.
    let path = scenario(tmp.path(), &body.replace("[320, 320]", "[330, 320]"));
    let err = run_fails(&["run", path.to_str().unwrap(), "-q", "--no-fetch"]);
    assert!(err.contains("video.detector.input"), "{err}");
    assert!(err.contains("video.toml:"), "{err}");
}
