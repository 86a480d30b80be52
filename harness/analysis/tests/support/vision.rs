//! A results folder with video, built deterministically: three profiles × two camera streams ×
//! 120 frames of a 12 fps video (10 s), written as `frames.parquet` (the columns of
//! `latlab_results::columns::FRAMES`, in order) beside a typed manifest with `vision` set.
//! Shared by the analysis and gate tests (`#[path]`), so both judge the same frames.
//!
//! - `nano` (policy `queue`): every frame processed, latency 20 + (k mod 60) ms: p50 49,
//!   p90 73, p95 76, p99 79 ms; no deadline misses; 12 results per stream in every second.
//! - `xl` (policy `latest`): every other frame skipped, the rest 140 + (k/2 mod 20) ms: p50
//!   149, p95 158 ms; every frame misses its deadline; 6 results per stream per second.
//! - `small` (policy `latest`): frame k mod 20 = 19 fails (11 `timeout`, 1 `inference`), the
//!   rest 60 + (k mod 50) ms: p50 79, p90 103, p95 106, p99 108, max 109 ms; 110 of 240 frames
//!   miss the 83.3 ms deadline; FPS windows 10–12 (mean 11.4); no reference annotations.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use latlab_results::columns as c;
use latlab_results::files;
use latlab_results::frame::{
    ClassCounts, DecodeFacts, FrameOutcome, FramePolicy, FrameRecord, ProfileAccuracy, VisionFacts,
};
use latlab_results::manifest::RunManifest;
use latlab_results::span::{ErrorKind, StageError};
use polars::prelude::*;

/// The video's recorded rate.
pub const FPS: f64 = 12.0;
/// One frame interval, ns (also each frame's deadline).
pub const INTERVAL_NS: u64 = 83_333_333;
/// The first capture, ns since the run's epoch.
pub const T0_NS: u64 = 1_000_000_000;
/// Streams per profile.
pub const STREAMS: u32 = 2;
/// Frames per stream.
pub const FRAMES: u32 = 120;
/// The profiles, in run order.
pub const PROFILES: [&str; 3] = ["nano", "xl", "small"];
/// The scenario.
pub const SCENARIO: &str = "street-vision";

fn ms(v: u64) -> u64 {
    v * 1_000_000
}

/// One processed frame: queue wait, preprocessing and postprocessing fixed per profile,
/// inference the rest of `latency_ms`.
fn processed(
    mut r: FrameRecord,
    latency_ms: u64,
    (queue, pre, post): (u64, u64, u64),
) -> FrameRecord {
    let capture = r.capture_ns;
    r.start_ns = Some(capture + ms(queue));
    r.preprocess_end_ns = Some(capture + ms(queue + pre));
    r.inference_end_ns = Some(capture + ms(latency_ms - post));
    r.result_ns = Some(capture + ms(latency_ms));
    r.latency_ns = Some(ms(latency_ms));
    r.missed = ms(latency_ms) > r.deadline_ns;
    r.outcome = FrameOutcome::Ok;
    r.detections = 3;
    r
}

/// Every frame of the fixture.
pub fn records() -> Vec<FrameRecord> {
    let mut out = Vec::new();
    for profile in PROFILES {
        for stream in 0..STREAMS {
            for k in 0..FRAMES {
                let base = FrameRecord {
                    profile: profile.into(),
                    stream,
                    frame: k,
                    source_frame: k,
                    backend: format!("onnx:yolov8{}@640x480", &profile[..1]),
                    capture_ns: T0_NS + u64::from(k) * INTERVAL_NS,
                    deadline_ns: INTERVAL_NS,
                    missed: true,
                    outcome: FrameOutcome::Skipped,
                    ..FrameRecord::default()
                };
                let k64 = u64::from(k);
                out.push(match profile {
                    "nano" => processed(base, 20 + k64 % 60, (2, 3, 1)),
                    "xl" if k % 2 == 1 => base,
                    "xl" => processed(base, 140 + (k64 / 2) % 20, (10, 5, 2)),
                    _ if k % 20 == 19 => {
                        let kind = if stream == 1 && k == 119 {
                            ErrorKind::Inference
                        } else {
                            ErrorKind::Timeout
                        };
                        FrameRecord {
                            start_ns: Some(base.capture_ns + ms(1)),
                            preprocess_end_ns: Some(base.capture_ns + ms(5)),
                            outcome: FrameOutcome::Error,
                            error: Some(StageError {
                                kind,
                                status: None,
                                message: "detector gave up after 500 ms <b>".into(),
                            }),
                            ..base
                        }
                    }
                    _ => processed(base, 60 + k64 % 50, (1, 4, 1)),
                });
            }
        }
    }
    out
}

/// Writes `frames.parquet` of `records` for `run` into `dir`.
pub fn write_frames(dir: &Path, run: &str, records: &[FrameRecord]) {
    let n = records.len();
    let text = |name: &str, f: &dyn Fn(&FrameRecord) -> String| {
        Column::new(name.into(), records.iter().map(f).collect::<Vec<String>>())
    };
    let opt_text = |name: &str, f: &dyn Fn(&FrameRecord) -> Option<String>| {
        Column::new(
            name.into(),
            records.iter().map(f).collect::<Vec<Option<String>>>(),
        )
    };
    let int = |name: &str, f: &dyn Fn(&FrameRecord) -> i64| {
        Column::new(name.into(), records.iter().map(f).collect::<Vec<i64>>())
    };
    let opt_int = |name: &str, f: &dyn Fn(&FrameRecord) -> Option<u64>| {
        Column::new(
            name.into(),
            records
                .iter()
                .map(|r| f(r).map(|v| v as i64))
                .collect::<Vec<Option<i64>>>(),
        )
    };
    let columns = vec![
        text(c::RUN, &|_| run.to_string()),
        text(c::SCENARIO, &|_| SCENARIO.to_string()),
        text(c::PROFILE, &|r| r.profile.clone()),
        int(c::STREAM, &|r| i64::from(r.stream)),
        int(c::FRAME, &|r| i64::from(r.frame)),
        int(c::SOURCE_FRAME, &|r| i64::from(r.source_frame)),
        text(c::BACKEND, &|r| r.backend.clone()),
        int(c::CAPTURE_NS, &|r| r.capture_ns as i64),
        opt_int(c::START_NS, &|r| r.start_ns),
        opt_int(c::PREPROCESS_END_NS, &|r| r.preprocess_end_ns),
        opt_int(c::INFERENCE_END_NS, &|r| r.inference_end_ns),
        opt_int(c::RESULT_NS, &|r| r.result_ns),
        opt_int(c::LATENCY_NS, &|r| r.latency_ns),
        opt_int(c::QUEUE_WAIT_NS, &|r| r.queue_wait_ns()),
        opt_int(c::PREPROCESS_NS, &|r| r.preprocess_ns()),
        opt_int(c::INFERENCE_NS, &|r| r.inference_ns()),
        opt_int(c::POSTPROCESS_NS, &|r| r.postprocess_ns()),
        int(c::DEADLINE_NS, &|r| r.deadline_ns as i64),
        Column::new(
            c::MISSED.into(),
            records.iter().map(|r| r.missed).collect::<Vec<bool>>(),
        ),
        text(c::OUTCOME, &|r| r.outcome.as_str().to_string()),
        int(c::DETECTIONS, &|r| i64::from(r.detections)),
        opt_int(c::TP, &|_| None),
        opt_int(c::FP, &|_| None),
        opt_int(c::FN, &|_| None),
        opt_text(c::ERROR_KIND, &|r| {
            r.error_kind().map(|k| k.as_str().to_string())
        }),
        opt_text(c::ERROR_MESSAGE, &|r| {
            r.error.as_ref().map(|e| e.message.clone())
        }),
    ];
    let mut df = DataFrame::new(n, columns).unwrap();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        names,
        c::FRAMES,
        "the fixture writes the contract's columns"
    );
    let file = std::fs::File::create(dir.join(files::FRAMES_PARQUET)).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
}

/// The manifest's vision facts: accuracy for `nano` and `xl`, none for `small`.
pub fn vision() -> VisionFacts {
    let counts = |class: &str, tp, fp, fn_| ClassCounts {
        class: class.into(),
        tp,
        fp,
        fn_,
    };
    VisionFacts {
        dataset: "street-12fps".into(),
        video: "street.mp4".into(),
        fps: FPS,
        width: 640,
        height: 480,
        streams: STREAMS,
        frames_per_stream: FRAMES,
        reference: Some("hand-labelled <boxes>".into()),
        decode: DecodeFacts {
            decoder: "ffmpeg 5.1.9, rawvideo rgb24".into(),
            frames: u64::from(FRAMES),
            total_ms: 240.0,
            fps: 500.0,
        },
        policies: [
            ("nano", FramePolicy::Queue),
            ("xl", FramePolicy::Latest),
            ("small", FramePolicy::Latest),
        ]
        .into_iter()
        .map(|(p, policy)| (p.to_string(), policy))
        .collect(),
        accuracy: vec![
            ProfileAccuracy {
                profile: "nano".into(),
                classes: vec![counts("person", 60, 10, 40), counts("car", 20, 5, 5)],
                frames: 200,
            },
            ProfileAccuracy {
                profile: "xl".into(),
                classes: vec![counts("person", 90, 5, 10), counts("car", 0, 0, 8)],
                frames: 100,
            },
        ],
        // Fields the runner adds to the contract later keep their defaults here.
        ..VisionFacts::default()
    }
}

/// The older audio run every fixture borrows its manifest (and, when multimodal, its spans
/// and turns) from.
pub fn audio_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analysis/tests/data/run-2026-12-smoke")
}

/// A video-only results folder in `dir` (run id `vision-1`, the three video profiles).
pub fn video_only(dir: &Path) -> PathBuf {
    let mut m = RunManifest::read(&audio_run()).unwrap();
    m.run_id = "vision-1".into();
    m.scenario.name = SCENARIO.into();
    let template = m.profiles[0].clone();
    m.profiles = PROFILES
        .iter()
        .map(|p| {
            let mut profile = template.clone();
            profile.name = p.to_string();
            profile
        })
        .collect();
    m.vision = Some(vision());
    m.write(dir).unwrap();
    write_frames(dir, &m.run_id, &records());
    dir.to_path_buf()
}

/// A multimodal results folder in `dir`: the audio run's spans and turns, plus the frames.
pub fn multimodal(dir: &Path) -> PathBuf {
    let mut m = RunManifest::read(&audio_run()).unwrap();
    m.vision = Some(vision());
    m.write(dir).unwrap();
    for f in [files::SPANS_PARQUET, files::TURNS_PARQUET] {
        std::fs::copy(audio_run().join(f), dir.join(f)).unwrap();
    }
    write_frames(dir, &m.run_id, &records());
    dir.to_path_buf()
}
