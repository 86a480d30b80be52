//! The vision lane of a scenario (`[video]`): which video is replayed, by how many camera
//! streams, through which detector, under which policy — and the runner's part of it: the
//! video decoded before the clock starts, one detector per distinct setting loaded before it
//! too, the streams of a profile driven beside its calls, and every frame logged to
//! `frames.jsonl` as it finishes and tabled in `frames.parquet` at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use latlab_core::backends::Timeouts;
use latlab_core::backends::local::Device;
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::profile::Profile;
use latlab_core::vision::lane::{StreamPlan, StreamStats, run_stream};
use latlab_core::vision::video::{self, VideoDataset};
use latlab_core::vision::yolo::YoloSpec;
use latlab_core::vision::{Detector, Frame, FramePolicy, FrameRecord, VisionFacts, accuracy};
use latlab_results::files;
use latlab_results::frame::{DecodeFacts, ProfileAccuracy};
use latlab_results::manifest::{Lag, ModelLoad};
use serde::{Deserialize, Serialize};

use crate::scenario::EMULATOR;

/// The `[video]` table of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSpec {
    /// Video dataset folder, relative to the scenario file.
    pub dataset: PathBuf,
    /// The video's id in the dataset's manifest.
    pub video: String,
    /// Camera streams per profile (each replays the video, staggered by a fraction of a
    /// frame interval).
    #[serde(default = "one")]
    pub streams: u32,
    /// Frames per stream (the video loops when this is longer). Default: the video's length.
    #[serde(default)]
    pub frames: Option<u32>,
    /// `latest` (default) or `queue`.
    #[serde(default)]
    pub policy: FramePolicy,
    /// Each frame's deadline from its capture, ms. Default: the frame interval.
    #[serde(default)]
    pub deadline_ms: Option<f64>,
    /// The detector.
    pub detector: DetectorSpec,
}

fn one() -> u32 {
    1
}

/// Where detection runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorSpec {
    /// A YOLOv8-layout model in-process on ONNX Runtime (feature `local-vision`).
    Onnx {
        /// A detector `models/lock.toml` pins (`yolov8n`, `yolov8s-person`).
        model: String,
        /// Model input `[width, height]`, multiples of 32.
        input: [u32; 2],
        /// Intra-op threads.
        #[serde(default = "one_usize")]
        threads: usize,
        /// Where it runs.
        #[serde(default)]
        device: Device,
        /// Minimum score (default 0.25).
        #[serde(default)]
        conf: Option<f32>,
        /// NMS IoU (default 0.45).
        #[serde(default)]
        iou: Option<f32>,
    },
    /// A model behind the KServe v2 / Triton HTTP inference protocol.
    Kserve {
        /// `"emulator"` or the server's base URL (`http://triton:8000`).
        base_url: String,
        /// The model's name on the server.
        model: String,
        /// Model input `[width, height]`, multiples of 32.
        input: [u32; 2],
        /// Class names by output index. Default: those of the local model of the same name,
        /// else COCO's 80.
        #[serde(default)]
        classes: Option<Vec<String>>,
        /// Use the binary tensor extension (default) rather than JSON arrays.
        #[serde(default = "yes")]
        binary: bool,
        /// Minimum score (default 0.25).
        #[serde(default)]
        conf: Option<f32>,
        /// NMS IoU (default 0.45).
        #[serde(default)]
        iou: Option<f32>,
    },
}

fn one_usize() -> usize {
    1
}
fn yes() -> bool {
    true
}

impl VideoSpec {
    /// Checks what can be checked without the dataset; the message names the key.
    pub fn validate(&self, profiles: &[Profile]) -> Result<(), (String, String)> {
        if self.streams == 0 || self.streams > 256 {
            return Err(("streams".into(), "must be in 1..=256".into()));
        }
        if self.frames == Some(0) {
            return Err(("frames".into(), "must be at least 1".into()));
        }
        if let Some(d) = self.deadline_ms
            && !(d.is_finite() && d > 0.0)
        {
            return Err(("deadline_ms".into(), format!("{d} ms is not a deadline")));
        }
        let check_input = |[w, h]: [u32; 2]| -> Result<(), String> {
            if w == 0
                || h == 0
                || !w.is_multiple_of(32)
                || !h.is_multiple_of(32)
                || w > 4096
                || h > 4096
            {
                return Err(format!(
                    "[{w}, {h}] is not a YOLOv8 input: each side a multiple of 32, at most 4096"
                ));
            }
            Ok(())
        };
        let (input, conf) = match &self.detector {
            DetectorSpec::Onnx {
                input, conf, model, ..
            } => {
                #[cfg(feature = "local-vision")]
                if latlab_core::vision::onnx::model(model).is_none() {
                    return Err((
                        "detector.model".into(),
                        format!(
                            "no detector {model:?} (known: {})",
                            latlab_core::vision::onnx::MODELS
                                .iter()
                                .map(|m| m.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                #[cfg(not(feature = "local-vision"))]
                {
                    let _ = model;
                    return Err((
                        "detector.kind".into(),
                        "kind = \"onnx\" needs latlab built with the `local-vision` feature".into(),
                    ));
                }
                #[allow(unreachable_code)]
                (*input, *conf)
            }
            DetectorSpec::Kserve { input, conf, .. } => (*input, *conf),
        };
        check_input(input).map_err(|m| ("detector.input".to_string(), m))?;
        if let Some(c) = conf
            && !(0.0..=1.0).contains(&c)
        {
            return Err((
                "detector.conf".into(),
                format!("{c} is not a score in [0, 1]"),
            ));
        }
        for p in profiles {
            if let Some(i) = p.video.input {
                check_input(i)
                    .map_err(|m| ("input".to_string(), format!("profile {}: {m}", p.name)))?;
            }
            if p.video.streams == Some(0) {
                return Err((
                    "streams".into(),
                    format!("profile {}: must be at least 1", p.name),
                ));
            }
        }
        Ok(())
    }

    /// Whether its detector is the emulator's.
    pub fn uses_emulator(&self) -> bool {
        matches!(&self.detector, DetectorSpec::Kserve { base_url, .. } if base_url == EMULATOR)
    }

    /// The local detector models it and its profiles load (for fetching).
    pub fn local_models(&self, profiles: &[Profile]) -> Vec<String> {
        match &self.detector {
            DetectorSpec::Onnx { model, .. } => {
                let mut names = vec![model.clone()];
                names.extend(profiles.iter().filter_map(|p| p.video.model.clone()));
                names.sort();
                names.dedup();
                names.push("onnxruntime".into());
                names
            }
            DetectorSpec::Kserve { .. } => Vec::new(),
        }
    }
}

/// A profile's resolved vision settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileVision {
    /// The detector setting (scenario's, with the profile's knobs applied).
    pub detector: DetectorSpec,
    /// Streams.
    pub streams: u32,
    /// Policy.
    pub policy: FramePolicy,
    /// Deadline, ms (None: the frame interval).
    pub deadline_ms: Option<f64>,
}

/// The scenario's `[video]` with a profile's knobs over it.
pub fn for_profile(spec: &VideoSpec, profile: &Profile) -> ProfileVision {
    let k = &profile.video;
    let mut detector = spec.detector.clone();
    match &mut detector {
        DetectorSpec::Onnx {
            model,
            input,
            threads,
            conf,
            ..
        } => {
            if let Some(m) = &k.model {
                *model = m.clone();
            }
            if let Some(i) = k.input {
                *input = i;
            }
            if let Some(t) = k.threads {
                *threads = t;
            }
            if k.conf.is_some() {
                *conf = k.conf;
            }
        }
        DetectorSpec::Kserve {
            model, input, conf, ..
        } => {
            if let Some(m) = &k.model {
                *model = m.clone();
            }
            if let Some(i) = k.input {
                *input = i;
            }
            if k.conf.is_some() {
                *conf = k.conf;
            }
        }
    }
    ProfileVision {
        detector,
        streams: k.streams.unwrap_or(spec.streams),
        policy: k.policy.unwrap_or(spec.policy),
        deadline_ms: k.deadline_ms.or(spec.deadline_ms),
    }
}

/// COCO's 80 class names, in the order COCO-trained YOLO models output them.
pub const COCO80: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

fn yolo_spec(
    input: [u32; 2],
    classes: Vec<String>,
    conf: Option<f32>,
    iou: Option<f32>,
) -> YoloSpec {
    YoloSpec {
        input_w: input[0],
        input_h: input[1],
        classes,
        conf: conf.unwrap_or(0.25),
        iou: iou.unwrap_or(0.45),
        max_det: 300,
    }
}

/// Builds (or reuses) the detector of a setting. `detector_url` is the emulator's KServe
/// base URL when one runs.
pub async fn build_detector(
    spec: &DetectorSpec,
    detector_url: Option<&str>,
    timeouts: &Timeouts,
    loads: &mut Vec<ModelLoad>,
) -> anyhow::Result<Arc<dyn Detector>> {
    match spec {
        #[cfg(feature = "local-vision")]
        DetectorSpec::Onnx {
            model,
            input,
            threads,
            device,
            conf,
            iou,
        } => {
            use latlab_core::backends::local::Models;
            use latlab_core::vision::onnx::{self, OrtDetector};
            let known =
                onnx::model(model).with_context(|| format!("no detector model {model:?}"))?;
            let classes = known.classes.iter().map(|s| s.to_string()).collect();
            let began = Instant::now();
            let d = OrtDetector::load(
                &Models::locate(),
                known,
                yolo_spec(*input, classes, *conf, *iou),
                *threads,
                *device,
            )?;
            loads.push(ModelLoad {
                stage: "detector".into(),
                model: format!("onnx:{model}"),
                device: d.placement().device,
                load_ms: began.elapsed().as_secs_f64() * 1e3,
                note: d.placement().note.clone(),
            });
            Ok(Arc::new(d))
        }
        #[cfg(not(feature = "local-vision"))]
        DetectorSpec::Onnx { .. } => {
            let _ = loads;
            anyhow::bail!("kind = \"onnx\" needs latlab built with the `local-vision` feature")
        }
        DetectorSpec::Kserve {
            base_url,
            model,
            input,
            classes,
            binary,
            conf,
            iou,
        } => {
            let url = if base_url == EMULATOR {
                detector_url
                    .context("the scenario's detector names the emulator, which is not running")?
                    .to_string()
            } else {
                base_url.clone()
            };
            let classes = classes.clone().unwrap_or_else(|| default_classes(model));
            let d = latlab_core::vision::kserve::KServeDetector::connect(
                &url,
                model,
                yolo_spec(*input, classes, *conf, *iou),
                *binary,
                timeouts,
            )
            .await
            .map_err(|e| anyhow::anyhow!("KServe detector {model} at {url}: {e}"))?;
            Ok(Arc::new(d))
        }
    }
}

fn default_classes(model: &str) -> Vec<String> {
    #[cfg(feature = "local-vision")]
    if let Some(m) = latlab_core::vision::onnx::model(model) {
        return m.classes.iter().map(|s| s.to_string()).collect();
    }
    let _ = model;
    COCO80.iter().map(|s| s.to_string()).collect()
}

/// The lane's video, decoded before the clock starts, and its reference.
pub struct Prepared {
    /// The decoded frames.
    pub frames: Arc<[Frame]>,
    /// Recorded fps.
    pub fps: f64,
    /// Frames per stream.
    pub frames_per_stream: u32,
    /// Reference boxes by frame.
    pub annotations: Arc<BTreeMap<u32, Vec<video::RefBox>>>,
    /// The reference's classes.
    pub vocabulary: Arc<BTreeSet<String>>,
    /// The facts the manifest keeps.
    pub facts: VisionFacts,
}

/// Loads, checks (manifest, `ffprobe`) and decodes the scenario's video from its dataset
/// folder `dir` (the `[video] dataset`, resolved against the scenario's folder).
pub fn prepare(spec: &VideoSpec, dir: &Path) -> anyhow::Result<Prepared> {
    let dataset = VideoDataset::load(dir)?;
    let v = dataset.video(&spec.video).with_context(|| {
        format!(
            "{}: no video {:?} (it has: {})",
            dir.join(video::MANIFEST).display(),
            spec.video,
            dataset
                .videos
                .iter()
                .map(|v| v.entry.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    video::probe(v, &dir.join(video::MANIFEST))?;
    let (frames, decode): (Arc<[Frame]>, DecodeFacts) = video::decode(v)?;
    let vocabulary: BTreeSet<String> = v
        .annotations
        .values()
        .flatten()
        .map(|b| b.class.clone())
        .collect();
    let frames_per_stream = spec.frames.unwrap_or(v.entry.frames);
    Ok(Prepared {
        frames,
        fps: v.entry.fps,
        frames_per_stream,
        annotations: Arc::clone(&v.annotations),
        vocabulary: Arc::new(vocabulary),
        facts: VisionFacts {
            dataset: dataset.manifest.name.clone(),
            video: v.entry.file.clone(),
            fps: v.entry.fps,
            width: v.entry.width,
            height: v.entry.height,
            streams: spec.streams,
            frames_per_stream,
            reference: dataset.manifest.reference.clone(),
            decode,
            ..VisionFacts::default()
        },
    })
}

/// Where frames go as they finish: `frames.jsonl`, flushed per frame (a killed run keeps
/// them), and memory, for the table at the end.
pub struct FrameSink {
    log: Mutex<BufWriter<File>>,
    kept: Mutex<Vec<FrameRecord>>,
}

impl FrameSink {
    /// Creates `dir/frames.jsonl`.
    pub fn create(dir: &Path) -> anyhow::Result<FrameSink> {
        let path = dir.join(files::FRAMES_LOG);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(FrameSink {
            log: Mutex::new(BufWriter::new(file)),
            kept: Mutex::new(Vec::new()),
        })
    }

    /// Records one frame.
    pub fn push(&self, r: FrameRecord) {
        if let Ok(mut log) = self.log.lock()
            && let Ok(line) = serde_json::to_string(&r)
        {
            let _ = writeln!(log, "{line}");
            let _ = log.flush();
        }
        if let Ok(mut kept) = self.kept.lock() {
            kept.push(r);
        }
    }

    /// Everything recorded, in (profile, stream, frame) order of arrival.
    pub fn take(&self) -> Vec<FrameRecord> {
        self.kept
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default()
    }
}

/// What one profile's streams did.
#[derive(Debug, Default)]
pub struct LaneStats {
    /// The profile.
    pub profile: String,
    /// Per stream.
    pub streams: Vec<StreamStats>,
}

/// Drives one profile's camera streams to their end, all starting at `start_ns` (stream s
/// offset by s / streams of a frame interval), on the run's epoch and pacer.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    prepared: &Prepared,
    profile: &str,
    pv: &ProfileVision,
    detector: Arc<dyn Detector>,
    speed: f64,
    start_ns: u64,
    epoch: Epoch,
    pacer: Pacer,
    stop: Arc<AtomicBool>,
    sink: Arc<FrameSink>,
) -> LaneStats {
    let fps = prepared.fps * speed;
    let interval_ns = 1e9 / fps;
    let deadline_ns = pv.deadline_ms.map_or(interval_ns, |ms| ms * 1e6).round() as u64;
    let mut tasks = Vec::new();
    for s in 0..pv.streams {
        let plan = StreamPlan {
            profile: profile.to_string(),
            stream: s,
            frames: Arc::clone(&prepared.frames),
            fps,
            count: prepared.frames_per_stream,
            start_ns: start_ns + (interval_ns * f64::from(s) / f64::from(pv.streams)) as u64,
            deadline_ns,
            policy: pv.policy,
            annotations: Arc::clone(&prepared.annotations),
            vocabulary: Arc::clone(&prepared.vocabulary),
        };
        let (detector, pacer, stop, sink) = (
            Arc::clone(&detector),
            pacer.clone(),
            Arc::clone(&stop),
            Arc::clone(&sink),
        );
        tasks.push(tokio::spawn(async move {
            run_stream(&plan, detector.as_ref(), &epoch, &pacer, &stop, |r| {
                sink.push(r)
            })
            .await
        }));
    }
    let mut stats = LaneStats {
        profile: profile.to_string(),
        ..LaneStats::default()
    };
    for t in tasks {
        if let Ok(s) = t.await {
            stats.streams.push(s);
        }
    }
    stats
}

/// Per-profile accuracy totals of the frames recorded.
pub fn accuracy_of(frames: &[FrameRecord], profiles: &[String]) -> Vec<ProfileAccuracy> {
    profiles
        .iter()
        .map(|p| {
            let mut classes = Vec::new();
            let mut n = 0u64;
            for f in frames
                .iter()
                .filter(|f| &f.profile == p && !f.accuracy.is_empty())
            {
                n += 1;
                accuracy::accumulate(&mut classes, &f.accuracy);
            }
            ProfileAccuracy {
                profile: p.clone(),
                classes,
                frames: n,
            }
        })
        .filter(|a| a.frames > 0)
        .collect()
}

/// Sorts the frames and writes `frames.parquet`.
pub fn write_table(
    dir: &Path,
    run: &str,
    scenario: &str,
    frames: &mut [FrameRecord],
) -> anyhow::Result<()> {
    frames.sort_by(|a, b| {
        (a.profile.as_str(), a.stream, a.frame).cmp(&(b.profile.as_str(), b.stream, b.frame))
    });
    crate::sinks::parquet::frames_table(run, scenario, frames)
        .write(&dir.join(files::FRAMES_PARQUET), "frame")
        .context("writing frames.parquet")
}

/// The capture lags' median, 99th percentile and maximum, ns, from an HdrHistogram as the
/// audio frames' pacing lag is ([`crate::manifest::lag_of`]); None when no frame waited.
pub fn capture_lag(stats: &[&LaneStats]) -> Option<Lag> {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).ok()?;
    for lag in stats
        .iter()
        .flat_map(|s| s.streams.iter().flat_map(|st| st.capture_lag_ns.iter()))
    {
        h.saturating_record(*lag);
    }
    (!h.is_empty()).then(|| crate::manifest::lag_of(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_knobs_override_the_scenario() {
        let spec: VideoSpec = toml::from_str(
            r#"
            dataset = "d"
            video = "v"
            [detector]
            kind = "onnx"
            model = "yolov8n"
            input = [640, 480]
            "#,
        )
        .unwrap();
        let mut p = Profile::balanced();
        p.video.model = Some("yolov8s-person".into());
        p.video.input = Some([640, 640]);
        p.video.policy = Some(FramePolicy::Queue);
        p.video.threads = Some(2);
        let pv = for_profile(&spec, &p);
        assert_eq!(pv.policy, FramePolicy::Queue);
        match pv.detector {
            DetectorSpec::Onnx {
                model,
                input,
                threads,
                ..
            } => {
                assert_eq!(model, "yolov8s-person");
                assert_eq!(input, [640, 640]);
                assert_eq!(threads, 2);
            }
            DetectorSpec::Kserve { .. } => unreachable!(),
        }
        let mut bad = Profile::balanced();
        bad.video.input = Some([641, 480]);
        let err = spec.validate(&[bad]).unwrap_err();
        assert_eq!(err.0, "input");
    }

    #[test]
    fn capture_lag_takes_the_percentiles_of_every_stream() {
        let s = LaneStats {
            profile: "p".into(),
            streams: vec![StreamStats {
                capture_lag_ns: (1..=100).collect(),
                ..StreamStats::default()
            }],
        };
        let lag = capture_lag(&[&s]).unwrap();
        assert_eq!(
            (lag.count, lag.p50_ns, lag.p99_ns, lag.max_ns),
            (100, 50, 99, 100)
        );
    }
}
