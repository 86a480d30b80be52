//! latlab's own per-frame overhead on the vision lane, against a bare loop over the same
//! ONNX Runtime session, model and frames.
//!
//! - **bare**: `OrtDetector::detect_blocking` in a plain loop — letterbox + normalise,
//!   `session.run`, YOLOv8 decode + NMS: what any application must do per frame.
//! - **latlab**: the same detector driven by `vision::lane::run_stream` under `queue` with
//!   every frame already captured, so the detector is never idle: the blocking-thread hop,
//!   the epoch stamps, the record, the accuracy scoring and the emit are all inside the
//!   cycle. A frame's cost is the time between consecutive frames' pick-ups.
//!
//! Blocks of 20 frames alternate between the two (bare, latlab, bare, …) so both see the same
//! machine state; the p50 ratio is the overhead. Needs the models (`python3 models/fetch.py
//! yolov8n onnxruntime`) and ffmpeg.
//!
//!   cargo bench --workspace --bench vision_overhead -- [--frames N] [--input WxH] [--threads T]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use latlab_core::backends::local::{Device, Models};
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::vision::lane::{StreamPlan, run_stream};
use latlab_core::vision::onnx::{self, OrtDetector};
use latlab_core::vision::video::{self, VideoDataset};
use latlab_core::vision::yolo::YoloSpec;
use latlab_core::vision::{FramePolicy, FrameRecord};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

fn main() {
    let frames_wanted: usize = arg("--frames").and_then(|v| v.parse().ok()).unwrap_or(200);
    let threads: usize = arg("--threads").and_then(|v| v.parse().ok()).unwrap_or(1);
    let (w, h) = arg("--input")
        .and_then(|v| {
            let (a, b) = v.split_once('x')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((640u32, 480u32));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dataset = VideoDataset::load(&root.join("datasets/video-smoke")).expect("video dataset");
    let clip = dataset.video("vtest").expect("vtest");
    let (frames, decode) = video::decode(clip).expect("decoding");
    eprintln!(
        "decoded {} frames in {:.0} ms ({:.0} fps) with {}",
        decode.frames, decode.total_ms, decode.fps, decode.decoder
    );
    let model = onnx::model("yolov8n").expect("yolov8n");
    let spec = YoloSpec {
        input_w: w,
        input_h: h,
        classes: model.classes.iter().map(|s| s.to_string()).collect(),
        conf: 0.25,
        iou: 0.45,
        max_det: 300,
    };
    let detector = Arc::new(
        OrtDetector::load(&Models::locate(), model, spec, threads, Device::Cpu)
            .expect("loading yolov8n (python3 models/fetch.py yolov8n onnxruntime)"),
    );
    for f in frames.iter().take(5) {
        detector.detect_blocking(f).expect("warm-up");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let epoch = Epoch::now();
    let pacer = Pacer::start();
    let stop = AtomicBool::new(false);
    let annotations = Arc::clone(&clip.annotations);
    let vocabulary: Arc<BTreeSet<String>> = Arc::new(
        annotations
            .values()
            .flatten()
            .map(|b| b.class.clone())
            .collect(),
    );
    let (mut bare, mut lab) = (Vec::new(), Vec::new());
    let block = 20usize;
    let mut next = 0usize;
    while bare.len() < frames_wanted {
        // Bare loop.
        let mut t = Instant::now();
        for k in 0..block {
            let f = &frames[(next + k) % frames.len()];
            detector.detect_blocking(f).expect("detect");
            let now = Instant::now();
            bare.push(now.duration_since(t).as_secs_f64() * 1e3);
            t = now;
        }
        // Through latlab's lane (block + 1 frames: the first pick-up has no predecessor).
        let plan = StreamPlan {
            profile: "bench".into(),
            stream: 0,
            frames: Arc::clone(&frames),
            fps: 1e6,
            count: block as u32 + 1,
            start_ns: epoch.elapsed_ns(),
            deadline_ns: 100_000_000,
            policy: FramePolicy::Queue,
            annotations: Arc::new(
                annotations
                    .iter()
                    .map(|(k, v)| (*k, v.clone()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            vocabulary: Arc::clone(&vocabulary),
        };
        let mut records: Vec<FrameRecord> = Vec::new();
        let d = Arc::clone(&detector);
        runtime.block_on(async {
            run_stream(&plan, d.as_ref(), &epoch, &pacer, &stop, |r| {
                records.push(r)
            })
            .await
        });
        for w in records.windows(2) {
            lab.push((w[1].start_ns.unwrap() - w[0].start_ns.unwrap()) as f64 / 1e6);
        }
        next += block;
    }
    let (b50, b95) = (pct(&mut bare, 0.5), pct(&mut bare, 0.95));
    let (l50, l95) = (pct(&mut lab, 0.5), pct(&mut lab, 0.95));
    println!(
        "yolov8n {w}x{h}, {threads} thread(s), {} frames each, blocks of {block} alternating",
        bare.len()
    );
    println!("| loop | n | p50 ms | p95 ms |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| bare ort session | {} | {b50:.2} | {b95:.2} |",
        bare.len()
    );
    println!(
        "| latlab lane (queue) | {} | {l50:.2} | {l95:.2} |",
        lab.len()
    );
    println!(
        "overhead at p50: {:+.2} % ({:+.3} ms); at p95: {:+.2} %",
        (l50 / b50 - 1.0) * 100.0,
        l50 - b50,
        (l95 / b95 - 1.0) * 100.0
    );
}
