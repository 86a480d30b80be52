//! The vision lane's rows: one [`FrameRecord`] per replayed camera frame, written to
//! `frames.jsonl` during the run and `frames.parquet` at its end, and the run-level
//! [`VisionFacts`] kept in the manifest.
//!
//! Every frame's latency is measured from its **capture time** — the stream's start on the
//! run's epoch plus `k / fps` — never from when latlab got to it, so a busy detector's
//! backlog (policy `queue`) or the frames it skipped (policy `latest`) are never hidden.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::span::{ErrorKind, StageError, UnknownName};

fn unknown(what: &'static str, name: &str, expected: &[&str]) -> UnknownName {
    UnknownName {
        what,
        name: name.to_string(),
        expected: expected.join(", "),
    }
}

/// What a detector does with frames that arrive while it is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FramePolicy {
    /// Take the newest frame when free; the frames that arrived meanwhile are skipped and
    /// counted (what a real-time assistant does).
    #[default]
    Latest,
    /// Process every frame in order; the backlog shows as latency.
    Queue,
}

impl FramePolicy {
    /// The policy's name as written in scenarios and results.
    pub fn as_str(self) -> &'static str {
        match self {
            FramePolicy::Latest => "latest",
            FramePolicy::Queue => "queue",
        }
    }
}

impl fmt::Display for FramePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FramePolicy {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "latest" => Ok(FramePolicy::Latest),
            "queue" => Ok(FramePolicy::Queue),
            _ => Err(unknown("frame policy", s, &["latest", "queue"])),
        }
    }
}

/// What became of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameOutcome {
    /// The detector returned its detections.
    Ok,
    /// The detector failed on it; the record carries the typed error.
    Error,
    /// Policy `latest`: a newer frame arrived before the detector was free, so this one
    /// was never processed.
    #[default]
    Skipped,
}

impl FrameOutcome {
    /// The outcome's name as written in results.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameOutcome::Ok => "ok",
            FrameOutcome::Error => "error",
            FrameOutcome::Skipped => "skipped",
        }
    }
}

impl FromStr for FrameOutcome {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ok" => Ok(FrameOutcome::Ok),
            "error" => Ok(FrameOutcome::Error),
            "skipped" => Ok(FrameOutcome::Skipped),
            _ => Err(unknown("frame outcome", s, &["ok", "error", "skipped"])),
        }
    }
}

/// Detections of one frame matched to the reference annotations of one class
/// (IoU ≥ 0.5, greedy by score, each reference box matched at most once).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClassCounts {
    /// The class name (the reference's vocabulary, e.g. `person`).
    pub class: String,
    /// Detections matched to a reference box.
    pub tp: u32,
    /// Detections matched to none.
    pub fp: u32,
    /// Reference boxes no detection matched.
    #[serde(rename = "fn")]
    pub fn_: u32,
}

/// One replayed camera frame: when it was captured (scheduled), when the detector picked
/// it up, each step's end, and what it found. All times are ns since the run's epoch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Profile name.
    pub profile: String,
    /// Camera stream index within the profile (0-based).
    pub stream: u32,
    /// Frame index within the stream's replay (0-based, in capture order).
    pub frame: u32,
    /// Frame index within the video file (differs from `frame` when the replay loops).
    pub source_frame: u32,
    /// The detector that served it (`onnx:yolov8n@640x480`, `kserve:yolov8n`).
    pub backend: String,
    /// Scheduled capture time: stream start + frame / fps. The anchor of every latency.
    pub capture_ns: u64,
    /// The detector picked the frame up (end of its queue wait).
    pub start_ns: Option<u64>,
    /// Preprocessing (resize or letterbox, normalise) done.
    pub preprocess_end_ns: Option<u64>,
    /// Inference done (for a remote detector: the response received).
    pub inference_end_ns: Option<u64>,
    /// Postprocessing (box decoding, NMS) done: the result.
    pub result_ns: Option<u64>,
    /// `result_ns - capture_ns`: camera to result.
    pub latency_ns: Option<u64>,
    /// The frame's deadline, as a duration from capture (default: the frame interval).
    pub deadline_ns: u64,
    /// The result came later than the deadline, or never (skipped or failed).
    pub missed: bool,
    /// What became of it.
    pub outcome: FrameOutcome,
    /// Detections kept after NMS.
    pub detections: u32,
    /// Accuracy against the dataset's reference, per class; empty when the frame has no
    /// reference annotations or was not processed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accuracy: Vec<ClassCounts>,
    /// The typed error, when the outcome is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StageError>,
}

impl VisionFacts {
    /// Fills the frame counts from the records.
    pub fn count(&mut self, frames: &[FrameRecord]) {
        self.captured = frames.len() as u64;
        let n = |o: FrameOutcome| frames.iter().filter(|f| f.outcome == o).count() as u64;
        self.processed = n(FrameOutcome::Ok);
        self.skipped = n(FrameOutcome::Skipped);
        self.failed = n(FrameOutcome::Error);
    }
}

impl FrameRecord {
    /// Queue wait: capture → picked up.
    pub fn queue_wait_ns(&self) -> Option<u64> {
        self.start_ns.map(|s| s.saturating_sub(self.capture_ns))
    }
    /// Preprocessing duration.
    pub fn preprocess_ns(&self) -> Option<u64> {
        Some(self.preprocess_end_ns?.saturating_sub(self.start_ns?))
    }
    /// Inference duration.
    pub fn inference_ns(&self) -> Option<u64> {
        Some(
            self.inference_end_ns?
                .saturating_sub(self.preprocess_end_ns?),
        )
    }
    /// Postprocessing duration.
    pub fn postprocess_ns(&self) -> Option<u64> {
        Some(self.result_ns?.saturating_sub(self.inference_end_ns?))
    }
    /// The error's kind, when it failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }
}

/// How the video was decoded, measured once per run (decoding happens before the replay
/// starts and is **not** on the clock: a camera hands over decoded frames).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DecodeFacts {
    /// The decoder (`ffmpeg 5.1.9, rawvideo rgb24`).
    pub decoder: String,
    /// Frames decoded.
    pub frames: u64,
    /// Wall time to decode them all, ms.
    pub total_ms: f64,
    /// Decoded frames per second (how far ahead of real time decoding is).
    pub fps: f64,
}

/// A per-class accuracy total of one profile (sum of every frame's [`ClassCounts`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProfileAccuracy {
    /// Profile name.
    pub profile: String,
    /// Counts per class.
    pub classes: Vec<ClassCounts>,
    /// Frames that had reference annotations and were processed.
    pub frames: u64,
}

/// The vision lane of a run, in the manifest (`vision`), absent for audio-only runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VisionFacts {
    /// Video dataset name.
    pub dataset: String,
    /// The video file replayed.
    pub video: String,
    /// Recorded frame rate.
    pub fps: f64,
    /// Frame size as decoded (width, height).
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Camera streams per profile.
    pub streams: u32,
    /// Frames replayed per stream.
    pub frames_per_stream: u32,
    /// How the reference annotations were made (from the dataset's manifest).
    #[serde(default)]
    pub reference: Option<String>,
    /// Decoding, off the clock.
    pub decode: DecodeFacts,
    /// Detector per profile (`profile` → backend description).
    #[serde(default)]
    pub detectors: std::collections::BTreeMap<String, String>,
    /// Policy per profile.
    #[serde(default)]
    pub policies: std::collections::BTreeMap<String, FramePolicy>,
    /// Accuracy per profile and class.
    #[serde(default)]
    pub accuracy: Vec<ProfileAccuracy>,
    /// Frames recorded, every profile and stream together.
    #[serde(default)]
    pub captured: u64,
    /// Frames the detector returned results for.
    #[serde(default)]
    pub processed: u64,
    /// Frames skipped (policy `latest`).
    #[serde(default)]
    pub skipped: u64,
    /// Frames the detector failed on.
    #[serde(default)]
    pub failed: u64,
    /// latlab's own capture lag: for frames an idle detector waited for, how late latlab
    /// woke after the capture time (exact percentiles, every stream of every profile).
    #[serde(default)]
    pub capture_lag: Option<crate::manifest::Lag>,
    /// The same, per profile (profiles differ in streams and detectors).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub capture_lag_by_profile: std::collections::BTreeMap<String, crate::manifest::Lag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [FramePolicy::Latest, FramePolicy::Queue] {
            assert_eq!(p.as_str().parse::<FramePolicy>(), Ok(p));
        }
        for o in [FrameOutcome::Ok, FrameOutcome::Error, FrameOutcome::Skipped] {
            assert_eq!(o.as_str().parse::<FrameOutcome>(), Ok(o));
        }
        assert!("newest".parse::<FramePolicy>().is_err());
    }

    #[test]
    fn durations_follow_the_stamps() {
        let r = FrameRecord {
            capture_ns: 1_000,
            start_ns: Some(1_500),
            preprocess_end_ns: Some(2_000),
            inference_end_ns: Some(5_000),
            result_ns: Some(5_200),
            ..FrameRecord::default()
        };
        assert_eq!(r.queue_wait_ns(), Some(500));
        assert_eq!(r.preprocess_ns(), Some(500));
        assert_eq!(r.inference_ns(), Some(3_000));
        assert_eq!(r.postprocess_ns(), Some(200));
        let json = serde_json::to_string(&r).unwrap();
        let back: FrameRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn class_counts_write_fn() {
        let c = ClassCounts {
            class: "person".into(),
            tp: 3,
            fp: 1,
            fn_: 2,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"fn\":2"), "{json}");
    }
}
