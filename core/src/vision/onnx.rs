//! Local YOLOv8-layout detectors on ONNX Runtime (the same pinned runtime as Silero and
//! Piper), from the models `models/lock.toml` pins. Preprocessing and NMS run in Rust
//! ([`super::yolo`]); inference runs on a blocking thread so the replay's tasks never wait
//! behind it. One session serves every stream of a profile, one frame at a time, as one
//! model on one machine does.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use ort::session::Session;
use ort::value::TensorRef;

use super::yolo::{self, YoloSpec};
use super::{Detected, Detector, Frame};
use crate::backends::local::onnx::{self as rt, Placement};
use crate::backends::local::{Device, ModelError, Models};
use crate::timing::{ErrorKind, StageError};

/// A detector model latlab knows: which pinned file, its classes in the reference's
/// vocabulary, and its input when the graph fixes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorModel {
    /// Its name in scenarios and `models/lock.toml`.
    pub name: &'static str,
    /// The file inside the models folder.
    pub file: &'static str,
    /// Class names by output index (mapped to the reference vocabulary where one applies).
    pub classes: &'static [&'static str],
    /// (width, height) the graph fixes, when it does.
    pub fixed_input: Option<(u32, u32)>,
    /// What it is, in a sentence.
    pub what: &'static str,
}

/// NudeNet's 18 body-part classes, in output order. None is `person`: this model measures
/// YOLOv8n's latency faithfully but has no person accuracy to report.
const NUDENET_CLASSES: [&str; 18] = [
    "female_genitalia_covered",
    "face_female",
    "buttocks_exposed",
    "female_breast_exposed",
    "female_genitalia_exposed",
    "male_breast_exposed",
    "anus_exposed",
    "feet_exposed",
    "belly_covered",
    "feet_covered",
    "armpits_covered",
    "armpits_exposed",
    "face_male",
    "belly_exposed",
    "male_genitalia_exposed",
    "anus_covered",
    "female_breast_covered",
    "buttocks_covered",
];

/// The detectors `models/lock.toml` pins.
pub const MODELS: [DetectorModel; 2] = [
    DetectorModel {
        name: "yolov8n",
        file: "vision/yolov8n-nudenet.onnx",
        classes: &NUDENET_CLASSES,
        fixed_input: None,
        what: "YOLOv8n (exact architecture, 3.0 M parameters; NudeNet's 18 body-part classes)",
    },
    DetectorModel {
        name: "yolov8s-person",
        file: "vision/yolov8s-person.onnx",
        // "Normal" and "Fall": both are people.
        classes: &["person", "person"],
        fixed_input: Some((640, 640)),
        what: "YOLOv8s person detector (11.2 M parameters, fp16 weights; standing and fallen people)",
    },
];

/// The known detector called `name`.
pub fn model(name: &str) -> Option<&'static DetectorModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// A YOLOv8 detector running in-process on ONNX Runtime.
pub struct OrtDetector {
    inner: Arc<Inner>,
    placement: Placement,
}

struct Inner {
    session: Mutex<Session>,
    input: String,
    spec: YoloSpec,
    describe: String,
    /// Reused input buffer (the session runs one frame at a time anyway).
    buffer: Mutex<Vec<f32>>,
}

impl OrtDetector {
    /// Loads `model` from the models folder with `threads` intra-op threads on `device`
    /// (falling back to the CPU with a note), fed at `spec`'s input size.
    pub fn load(
        models: &Models,
        model: &DetectorModel,
        spec: YoloSpec,
        threads: usize,
        device: Device,
    ) -> Result<OrtDetector, ModelError> {
        if let Some((w, h)) = model.fixed_input
            && (spec.input_w, spec.input_h) != (w, h)
        {
            return Err(ModelError::Lock(format!(
                "detector {} takes {w}x{h} input only; the scenario asks for {}x{}",
                model.name, spec.input_w, spec.input_h
            )));
        }
        if !spec.input_w.is_multiple_of(32)
            || !spec.input_h.is_multiple_of(32)
            || spec.input_w == 0
            || spec.input_h == 0
        {
            return Err(ModelError::Lock(format!(
                "detector input {}x{} is not a multiple of 32 in each side (YOLOv8's stride)",
                spec.input_w, spec.input_h
            )));
        }
        let (session, placement) = rt::session(models, model.name, model.file, threads, device)?;
        let session = Arc::try_unwrap(session)
            .map_err(|_| ModelError::Lock("ONNX session shared unexpectedly".into()))?
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let input = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .unwrap_or_else(|| "images".into());
        let describe = format!(
            "onnx:{}@{}x{} t{}{}",
            model.name,
            spec.input_w,
            spec.input_h,
            threads.max(1),
            if placement.device == Device::Cuda {
                " cuda"
            } else {
                ""
            }
        );
        Ok(OrtDetector {
            inner: Arc::new(Inner {
                session: Mutex::new(session),
                input,
                spec,
                describe,
                buffer: Mutex::new(Vec::new()),
            }),
            placement,
        })
    }

    /// Where it runs, and why not where it was asked to.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Runs one frame on the calling thread (benchmarks call this directly).
    pub fn detect_blocking(&self, frame: &Frame) -> Result<Detected, StageError> {
        self.inner.detect(frame)
    }
}

impl Inner {
    fn detect(&self, frame: &Frame) -> Result<Detected, StageError> {
        let fail = |m: String| StageError::new(ErrorKind::Inference, m);
        let mut buffer = self
            .buffer
            .lock()
            .map_err(|_| fail("detector buffer poisoned".into()))?;
        let lb = yolo::preprocess(frame, self.spec.input_w, self.spec.input_h, &mut buffer);
        let shape = [
            1usize,
            3,
            self.spec.input_h as usize,
            self.spec.input_w as usize,
        ];
        // A view of the buffer, not a copy: the next frame refills the same memory.
        let tensor = TensorRef::from_array_view((shape, buffer.as_slice()))
            .map_err(|e| fail(format!("input tensor: {e}")))?;
        let preprocess_end = Instant::now();
        let mut session = self
            .session
            .lock()
            .map_err(|_| fail("detector session poisoned".into()))?;
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| fail(format!("inference: {e}")))?;
        let inference_end = Instant::now();
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(format!("output: {e}")))?;
        let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        let detections = yolo::decode(data, &dims, &self.spec, &lb)
            .map_err(|e| StageError::new(ErrorKind::Protocol, e.to_string()))?;
        drop(outputs);
        drop(session);
        Ok(Detected {
            detections,
            preprocess_end,
            inference_end,
        })
    }
}

#[async_trait]
impl Detector for OrtDetector {
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    async fn detect(&self, frame: &Frame) -> Result<Detected, StageError> {
        let inner = Arc::clone(&self.inner);
        let frame = frame.clone();
        tokio::task::spawn_blocking(move || inner.detect(&frame))
            .await
            .map_err(|e| StageError::new(ErrorKind::Cancelled, format!("detector task: {e}")))?
    }
}
