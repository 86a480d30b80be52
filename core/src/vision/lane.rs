//! One camera stream replayed on the run's clock: frame k is captured at `start_ns + k /
//! fps` on the epoch, and handed to the detector under the stream's [`FramePolicy`]:
//!
//! - `latest`: when the detector is free it takes the newest captured frame; the frames
//!   captured meanwhile are recorded as skipped (and missed).
//! - `queue`: it takes every frame in order; a slow detector's backlog becomes latency.
//!
//! Every frame's latency counts from its capture time, so the time a frame waits — for the
//! detector, or for latlab itself — is never hidden. When the detector is idle the stream
//! sleeps until the next capture on the shared [`Pacer`]; how late that wake-up was is the
//! stream's capture lag, latlab's own error, reported beside the results.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::accuracy::score_frame;
use super::video::RefBox;
use super::{Detector, Frame, FrameOutcome, FramePolicy, FrameRecord};
use crate::clock::{Epoch, Pacer};

/// What one stream replays and how.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// Profile name.
    pub profile: String,
    /// Stream index within the profile.
    pub stream: u32,
    /// The decoded clip (shared by every stream); replay loops over it.
    pub frames: Arc<[Frame]>,
    /// Replay frame rate (recorded rate × speed).
    pub fps: f64,
    /// Frames to replay.
    pub count: u32,
    /// Capture time of frame 0, ns since the epoch.
    pub start_ns: u64,
    /// Deadline of each frame from its capture, ns.
    pub deadline_ns: u64,
    /// What a busy detector does with new frames.
    pub policy: FramePolicy,
    /// Reference boxes by source frame.
    pub annotations: Arc<BTreeMap<u32, Vec<RefBox>>>,
    /// The classes the reference annotates (scored classes).
    pub vocabulary: Arc<BTreeSet<String>>,
}

impl StreamPlan {
    /// Capture time of frame `k`, ns since the epoch.
    pub fn capture_ns(&self, k: u32) -> u64 {
        self.start_ns + (f64::from(k) * 1e9 / self.fps).round() as u64
    }

    /// The newest frame captured at or before `now_ns` (None before frame 0).
    pub fn newest_at(&self, now_ns: u64) -> Option<u32> {
        if now_ns < self.start_ns || self.count == 0 {
            return None;
        }
        let guess = ((now_ns - self.start_ns) as f64 * self.fps / 1e9).floor() as u64;
        let mut k = guess.min(u64::from(self.count - 1)) as u32;
        while k + 1 < self.count && self.capture_ns(k + 1) <= now_ns {
            k += 1;
        }
        while k > 0 && self.capture_ns(k) > now_ns {
            k -= 1;
        }
        Some(k)
    }
}

/// What a stream did, beside its frame records.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Frames captured (recorded, in any outcome).
    pub captured: u32,
    /// Frames the detector returned results for.
    pub processed: u32,
    /// Frames skipped under `latest`.
    pub skipped: u32,
    /// Frames the detector failed on.
    pub errors: u32,
    /// For frames the idle detector waited for: how late latlab woke after the capture
    /// time, ns (latlab's own pacing error).
    pub capture_lag_ns: Vec<u64>,
    /// The run was stopped before the stream ended.
    pub stopped: bool,
}

/// Replays one stream to its end (or until `stop`), emitting one record per frame in
/// capture order.
pub async fn run_stream(
    plan: &StreamPlan,
    detector: &dyn Detector,
    epoch: &Epoch,
    pacer: &Pacer,
    stop: &AtomicBool,
    mut emit: impl FnMut(FrameRecord),
) -> StreamStats {
    let backend = detector.describe();
    let mut stats = StreamStats::default();
    let len = plan.frames.len().max(1) as u32;
    let record = |k: u32, outcome: FrameOutcome| FrameRecord {
        profile: plan.profile.clone(),
        stream: plan.stream,
        frame: k,
        source_frame: k % len,
        backend: backend.clone(),
        capture_ns: plan.capture_ns(k),
        deadline_ns: plan.deadline_ns,
        missed: true,
        outcome,
        ..FrameRecord::default()
    };
    let mut next = 0u32;
    while next < plan.count && !plan.frames.is_empty() {
        if stop.load(Ordering::SeqCst) {
            stats.stopped = true;
            break;
        }
        let due = plan.capture_ns(next);
        let now = epoch.elapsed_ns();
        let (take, idle) = if due > now {
            pacer.sleep_until(epoch.instant_at(due)).await;
            (next, true)
        } else {
            match plan.policy {
                FramePolicy::Queue => (next, false),
                FramePolicy::Latest => (plan.newest_at(now).unwrap_or(next).max(next), false),
            }
        };
        for k in next..take {
            stats.captured += 1;
            stats.skipped += 1;
            emit(record(k, FrameOutcome::Skipped));
        }
        let frame = &plan.frames[(take % len) as usize];
        let start_ns = epoch.elapsed_ns();
        let capture_ns = plan.capture_ns(take);
        if idle {
            stats
                .capture_lag_ns
                .push(start_ns.saturating_sub(capture_ns));
        }
        let result = detector.detect(frame).await;
        let end_ns = epoch.elapsed_ns();
        stats.captured += 1;
        let mut r = record(take, FrameOutcome::Ok);
        r.start_ns = Some(start_ns);
        match result {
            Ok(d) => {
                stats.processed += 1;
                let latency = end_ns.saturating_sub(capture_ns);
                r.preprocess_end_ns = Some(epoch.ns_of(d.preprocess_end).clamp(start_ns, end_ns));
                r.inference_end_ns = Some(epoch.ns_of(d.inference_end).clamp(start_ns, end_ns));
                r.result_ns = Some(end_ns);
                r.latency_ns = Some(latency);
                r.missed = latency > plan.deadline_ns;
                r.detections = d.detections.len() as u32;
                if let Some(reference) = plan.annotations.get(&(take % len)) {
                    r.accuracy = score_frame(&d.detections, reference, &plan.vocabulary);
                }
            }
            Err(e) => {
                stats.errors += 1;
                r.outcome = FrameOutcome::Error;
                r.error = Some(e);
            }
        }
        emit(r);
        next = take + 1;
    }
    stats
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use async_trait::async_trait;

    use super::*;
    use crate::timing::{ErrorKind, StageError};
    use crate::vision::{Detected, Detection};

    /// A detector that takes a fixed time per frame and fails on frame indices it is told
    /// to (a unit-test double for the policy logic only; the real backends have their own
    /// tests against real models and the emulator).
    struct Fixed {
        busy: Duration,
        fail_on: Vec<u32>,
        seen: Mutex<Vec<u32>>,
    }

    #[async_trait]
    impl Detector for Fixed {
        fn describe(&self) -> String {
            "fixed".into()
        }
        async fn detect(&self, frame: &Frame) -> Result<Detected, StageError> {
            self.seen.lock().unwrap().push(frame.index);
            tokio::time::sleep(self.busy).await;
            if self.fail_on.contains(&frame.index) {
                return Err(StageError::new(ErrorKind::Inference, "boom"));
            }
            let now = Instant::now();
            Ok(Detected {
                detections: vec![Detection {
                    class: "person".into(),
                    score: 0.9,
                    x1: 0.0,
                    y1: 0.0,
                    x2: 10.0,
                    y2: 10.0,
                }],
                preprocess_end: now,
                inference_end: now,
            })
        }
    }

    fn plan(count: u32, fps: f64, policy: FramePolicy, epoch: &Epoch) -> StreamPlan {
        let frames: Vec<Frame> = (0..10)
            .map(|i| Frame {
                index: i,
                width: 2,
                height: 2,
                rgb: Arc::from(vec![0u8; 12]),
            })
            .collect();
        let mut annotations = BTreeMap::new();
        annotations.insert(
            0,
            vec![RefBox {
                class: "person".into(),
                x1: 0.0,
                y1: 0.0,
                x2: 10.0,
                y2: 10.0,
            }],
        );
        StreamPlan {
            profile: "p".into(),
            stream: 0,
            frames: Arc::from(frames),
            fps,
            count,
            start_ns: epoch.elapsed_ns() + 5_000_000,
            deadline_ns: (1e9 / fps) as u64,
            policy,
            annotations: Arc::new(annotations),
            vocabulary: Arc::new(["person".to_string()].into()),
        }
    }

    async fn replay(p: &StreamPlan, d: &Fixed, epoch: &Epoch) -> (Vec<FrameRecord>, StreamStats) {
        let mut out = Vec::new();
        let stop = AtomicBool::new(false);
        let stats = run_stream(p, d, epoch, &Pacer::start(), &stop, |r| out.push(r)).await;
        (out, stats)
    }

    #[test]
    fn newest_frame_at_a_time() {
        let epoch = Epoch::now();
        let mut p = plan(10, 10.0, FramePolicy::Latest, &epoch);
        p.start_ns = 1_000;
        assert_eq!(p.newest_at(999), None);
        assert_eq!(p.newest_at(1_000), Some(0));
        assert_eq!(p.newest_at(1_000 + 100_000_000 - 1), Some(0));
        assert_eq!(p.newest_at(1_000 + 100_000_000), Some(1));
        assert_eq!(p.newest_at(u64::MAX / 2), Some(9));
        assert_eq!(p.capture_ns(3), 1_000 + 300_000_000);
    }

    #[tokio::test]
    async fn latest_skips_what_a_slow_detector_missed_and_queue_does_not() {
        let epoch = Epoch::now();
        // 50 fps (20 ms apart), detector busy 45 ms: under `latest` about every other or
        // third frame is skipped; under `queue` none is, and latency grows.
        let slow = || Fixed {
            busy: Duration::from_millis(45),
            fail_on: vec![],
            seen: Mutex::new(vec![]),
        };
        let p = plan(10, 50.0, FramePolicy::Latest, &epoch);
        let (latest, stats) = replay(&p, &slow(), &epoch).await;
        assert_eq!(latest.len(), 10, "one record per frame");
        assert_eq!(
            latest.iter().map(|r| r.frame).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert!(stats.skipped >= 4, "{stats:?}");
        assert_eq!(stats.skipped + stats.processed, 10);
        for r in &latest {
            match r.outcome {
                FrameOutcome::Skipped => assert!(r.missed && r.latency_ns.is_none()),
                FrameOutcome::Ok => {
                    let l = r.latency_ns.unwrap();
                    assert_eq!(l, r.result_ns.unwrap() - r.capture_ns);
                    assert!(l >= 45_000_000, "{l}");
                }
                FrameOutcome::Error => unreachable!(),
            }
        }
        // Frame 0 has a reference box that the detection matches exactly.
        assert_eq!(latest[0].accuracy[0].tp, 1);

        let p = plan(6, 50.0, FramePolicy::Queue, &epoch);
        let (queued, stats) = replay(&p, &slow(), &epoch).await;
        assert_eq!(stats.skipped, 0);
        assert_eq!(stats.processed, 6);
        let lat: Vec<u64> = queued.iter().map(|r| r.latency_ns.unwrap()).collect();
        // The backlog grows by about 25 ms a frame: the last waited far longer than the first.
        assert!(lat[5] > lat[0] + 80_000_000, "{lat:?}");
        assert!(queued[5].queue_wait_ns().unwrap() > 80_000_000);
    }

    #[tokio::test]
    async fn a_failing_frame_is_a_typed_error_and_the_stream_goes_on() {
        let epoch = Epoch::now();
        let d = Fixed {
            busy: Duration::from_millis(1),
            fail_on: vec![2],
            seen: Mutex::new(vec![]),
        };
        let p = plan(5, 100.0, FramePolicy::Queue, &epoch);
        let (records, stats) = replay(&p, &d, &epoch).await;
        assert_eq!(stats.errors, 1);
        assert_eq!(stats.processed, 4);
        assert_eq!(records[2].outcome, FrameOutcome::Error);
        assert_eq!(records[2].error_kind(), Some(ErrorKind::Inference));
        assert!(records[2].missed);
        // An idle detector waits for each capture: the capture lag is latlab's wake-up error.
        assert!(!stats.capture_lag_ns.is_empty());
    }
}
