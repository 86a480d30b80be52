//! The vision lane: recorded video replayed at its frame rate through an object detector,
//! local (ONNX Runtime) or remote (the KServe v2 / Triton inference protocol over HTTP).
//!
//! Data flows as in the audio lane: a [`video::VideoDataset`] is decoded once, off the
//! clock, into [`Frame`]s; [`lane::run_stream`] captures frame k at the stream's start +
//! k / fps on the run's one epoch and hands frames to a [`Detector`] under a
//! [`FramePolicy`]; every frame becomes one [`FrameRecord`] whose latency counts from its
//! capture time.
//!
//! Detectors share the YOLOv8 pre- and postprocessing in [`yolo`] (letterbox, normalise,
//! box decoding, NMS) and report when preprocessing and inference ended, so each frame's
//! queue wait, preprocessing, inference and postprocessing are separate spans.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

pub use latlab_results::frame::{
    ClassCounts, DecodeFacts, FrameOutcome, FramePolicy, FrameRecord, VisionFacts,
};

use crate::timing::StageError;

pub mod accuracy;
pub mod kserve;
pub mod lane;
#[cfg(feature = "local-vision")]
pub mod onnx;
pub mod video;
pub mod yolo;

/// One decoded frame: packed RGB24, row-major, `width * height * 3` bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Index in the video file.
    pub index: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels, shared by every stream that replays the frame.
    pub rgb: Arc<[u8]>,
}

/// One detected object, in the source frame's pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Class name in the reference's vocabulary (`person`), or the model's own name when
    /// it has no reference equivalent.
    pub class: String,
    /// Confidence, 0–1.
    pub score: f32,
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

/// What a detector returns for one frame: its detections and when each step ended.
/// The pipeline stamps the start and the end; the detector says where preprocessing and
/// inference ended, so the steps are separate spans.
#[derive(Debug, Clone)]
pub struct Detected {
    /// Detections kept after NMS.
    pub detections: Vec<Detection>,
    /// Preprocessing (letterbox, normalise) ended.
    pub preprocess_end: Instant,
    /// Inference ended (remote: the response was received).
    pub inference_end: Instant,
}

/// An object detector: one frame in, detections out.
#[async_trait]
pub trait Detector: Send + Sync {
    /// What serves it, for results (`onnx:yolov8n@640x480 t1`, `kserve:yolov8n`).
    fn describe(&self) -> String;
    /// Detects objects in one frame. Errors are typed, as for the audio stages.
    async fn detect(&self, frame: &Frame) -> Result<Detected, StageError>;
}
