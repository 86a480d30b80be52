//! The vision lane: `frames.parquet` read into plain rows, and the statistics of the report's
//! Video section — frames captured, processed, skipped and failed; frame latency from the
//! scheduled capture time; each step's duration; the deadline-miss rate; achieved FPS per
//! 1 s window; detection accuracy per class; the latency–accuracy trade-off.
//!
//! Definitions are in `docs/metrics.md` (Vision). Everything but [`read_frames`] is a pure
//! function over rows already read.

use std::collections::BTreeMap;
use std::path::Path;

use latlab_report::model::{
    ClassAccuracyRow, FpsSeries, FpsStats, FrameErrorRow, FrameRow, LatencyStats, Proportion,
    StepStats, TradeoffRow, VideoRunFacts,
};
use latlab_results::columns as c;
use latlab_results::frame::{FrameOutcome, VisionFacts};
use polars::prelude::*;

use crate::AnalysisError;
use crate::frames::{opt_i64, opt_str, strings};
use crate::stats::{proportion_estimate, quantile, quantile_estimate};

/// One nanosecond-stamped second: the width of an FPS window.
pub const WINDOW_NS: i64 = 1_000_000_000;

/// Slack when counting whole windows in a replay, so a schedule whose frame interval was
/// rounded to whole nanoseconds (30 fps: 33,333,333 ns) still spans its last full second.
const WINDOW_SLACK_NS: i64 = 1_000_000;

/// The class the latency–accuracy trade-off reads its recall from.
pub const TRADEOFF_CLASS: &str = "person";

/// One row of `frames.parquet`, as plain values (durations in ms, stamps in ns).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFrame {
    /// Run id.
    pub run: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// The detector.
    pub backend: String,
    /// Camera stream within the profile.
    pub stream: u32,
    /// Frame index within the stream's replay.
    pub frame: u32,
    /// Scheduled capture time, ns since the run's epoch.
    pub capture_ns: i64,
    /// The result, ns since the run's epoch (None unless processed).
    pub result_ns: Option<i64>,
    /// Capture → result, ms.
    pub latency_ms: Option<f64>,
    /// Capture → picked up, ms.
    pub queue_wait_ms: Option<f64>,
    /// Preprocessing, ms.
    pub preprocess_ms: Option<f64>,
    /// Inference, ms.
    pub inference_ms: Option<f64>,
    /// Postprocessing, ms.
    pub postprocess_ms: Option<f64>,
    /// The deadline from capture, ns.
    pub deadline_ns: i64,
    /// Late beyond the deadline, skipped or failed.
    pub missed: bool,
    /// What became of it.
    pub outcome: FrameOutcome,
    /// The error's kind, when it failed.
    pub error_kind: Option<String>,
    /// The error's message, when it failed.
    pub error_message: Option<String>,
}

/// Reads `frames.parquet` (columns [`c::FRAMES`]).
pub fn read_frames(path: &Path) -> Result<Vec<VideoFrame>, AnalysisError> {
    let file = std::fs::File::open(path).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let df = ParquetReader::new(file).finish()?;
    let run = strings(&df, c::RUN)?;
    let scenario = strings(&df, c::SCENARIO)?;
    let profile = strings(&df, c::PROFILE)?;
    let backend = strings(&df, c::BACKEND)?;
    let outcome = strings(&df, c::OUTCOME)?;
    let stream = opt_i64(&df, c::STREAM)?;
    let frame = opt_i64(&df, c::FRAME)?;
    let capture = opt_i64(&df, c::CAPTURE_NS)?;
    let result = opt_i64(&df, c::RESULT_NS)?;
    let deadline = opt_i64(&df, c::DEADLINE_NS)?;
    let ms = |name: &str| -> Result<Vec<Option<f64>>, AnalysisError> {
        Ok(opt_i64(&df, name)?
            .into_iter()
            .map(|v| v.map(|ns| ns as f64 / 1e6))
            .collect())
    };
    let latency = ms(c::LATENCY_NS)?;
    let queue = ms(c::QUEUE_WAIT_NS)?;
    let pre = ms(c::PREPROCESS_NS)?;
    let inf = ms(c::INFERENCE_NS)?;
    let post = ms(c::POSTPROCESS_NS)?;
    let missed: Vec<Option<bool>> = df
        .column(c::MISSED)?
        .cast(&DataType::Boolean)?
        .bool()?
        .iter()
        .collect();
    let kind = opt_str(&df, c::ERROR_KIND)?;
    let message = opt_str(&df, c::ERROR_MESSAGE)?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let outcome = outcome[i]
            .parse::<FrameOutcome>()
            .map_err(|e| AnalysisError::Invalid {
                path: path.to_path_buf(),
                message: format!("row {i}: {e}"),
            })?;
        out.push(VideoFrame {
            run: run[i].clone(),
            scenario: scenario[i].clone(),
            profile: profile[i].clone(),
            backend: backend[i].clone(),
            stream: stream[i].unwrap_or_default().max(0) as u32,
            frame: frame[i].unwrap_or_default().max(0) as u32,
            capture_ns: capture[i].unwrap_or_default(),
            result_ns: result[i],
            latency_ms: latency[i],
            queue_wait_ms: queue[i],
            preprocess_ms: pre[i],
            inference_ms: inf[i],
            postprocess_ms: post[i],
            deadline_ns: deadline[i].unwrap_or_default(),
            missed: missed[i].unwrap_or(outcome != FrameOutcome::Ok),
            outcome,
            error_kind: kind[i].clone(),
            error_message: message[i].clone(),
        });
    }
    Ok(out)
}

/// The frames of one run × profile (all streams), in file order.
pub fn frames_of<'a>(frames: &'a [VideoFrame], run: &str, profile: &str) -> Vec<&'a VideoFrame> {
    frames
        .iter()
        .filter(|f| f.run == run && f.profile == profile)
        .collect()
}

/// Sorted (ascending) values of one field over the processed (`ok`) frames.
pub fn sorted_ms(frames: &[&VideoFrame], field: impl Fn(&VideoFrame) -> Option<f64>) -> Vec<f64> {
    let mut v: Vec<f64> = frames
        .iter()
        .filter(|f| f.outcome == FrameOutcome::Ok)
        .filter_map(|f| field(f))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Frame latencies (capture → result, ms) of the processed frames, ascending.
pub fn latencies_ms(frames: &[&VideoFrame]) -> Vec<f64> {
    sorted_ms(frames, |f| f.latency_ms)
}

/// Achieved FPS of one stream in one 1 s window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpsWindow {
    /// The stream.
    pub stream: u32,
    /// The window's index: it starts `index` seconds after the series' first capture.
    pub index: u32,
    /// Results of the stream whose result time falls in the window, per second.
    pub fps: f64,
}

/// The frame interval of a replay: `1 / source_fps` when known, else the mean spacing of the
/// first stream's captures; None for a single frame.
fn frame_interval_ns(frames: &[&VideoFrame], source_fps: Option<f64>) -> Option<i64> {
    if let Some(fps) = source_fps.filter(|f| f.is_finite() && *f > 0.0) {
        return Some((1e9 / fps).round() as i64);
    }
    let first = frames.iter().map(|f| f.stream).min()?;
    let captures: Vec<i64> = frames
        .iter()
        .filter(|f| f.stream == first)
        .map(|f| f.capture_ns)
        .collect();
    let (lo, hi) = (*captures.iter().min()?, *captures.iter().max()?);
    (captures.len() > 1).then(|| (hi - lo) / (captures.len() as i64 - 1))
}

/// Achieved FPS per stream per 1 s window of result time (`docs/metrics.md`, Vision).
///
/// Windows start at the series' first capture `t0` and are `[t0 + k s, t0 + (k + 1) s)`.
/// Only whole windows inside the replay's schedule count: `k < ⌊(last capture + frame
/// interval − t0) / 1 s⌋` (a trailing partial second would read as a low rate, and results
/// draining after the schedule ended are not a rate the detector sustains). Each stream
/// present has a sample in every window, zero when none of its results fell in it. Ordered
/// by window, then stream.
pub fn fps_windows(frames: &[&VideoFrame], source_fps: Option<f64>) -> Vec<FpsWindow> {
    let Some(t0) = frames.iter().map(|f| f.capture_ns).min() else {
        return Vec::new();
    };
    let last = frames.iter().map(|f| f.capture_ns).max().unwrap_or(t0);
    let interval = frame_interval_ns(frames, source_fps).unwrap_or(0);
    let windows = ((last + interval - t0 + WINDOW_SLACK_NS) / WINDOW_NS).max(0) as usize;
    let mut streams: Vec<u32> = frames.iter().map(|f| f.stream).collect();
    streams.sort_unstable();
    streams.dedup();
    let mut counts: BTreeMap<(usize, u32), u64> = BTreeMap::new();
    for f in frames.iter().filter(|f| f.outcome == FrameOutcome::Ok) {
        let Some(r) = f.result_ns else { continue };
        if r < t0 {
            continue;
        }
        let k = ((r - t0) / WINDOW_NS) as usize;
        if k < windows {
            *counts.entry((k, f.stream)).or_default() += 1;
        }
    }
    let mut out = Vec::with_capacity(windows * streams.len());
    for k in 0..windows {
        for &stream in &streams {
            out.push(FpsWindow {
                stream,
                index: k as u32,
                fps: counts.get(&(k, stream)).copied().unwrap_or(0) as f64,
            });
        }
    }
    out
}

/// Mean, p10 and minimum over FPS windows.
pub fn fps_stats(windows: &[FpsWindow]) -> FpsStats {
    let mut v: Vec<f64> = windows.iter().map(|w| w.fps).collect();
    v.sort_by(f64::total_cmp);
    FpsStats {
        windows: v.len() as u64,
        mean: crate::stats::mean(&v),
        p10: quantile(&v, 0.10),
        min: v.first().copied(),
    }
}

/// The series' achieved FPS over time: per window, the mean over its streams.
pub fn fps_series(label: String, windows: &[FpsWindow], source_fps: Option<f64>) -> FpsSeries {
    let mut per: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
    for w in windows {
        let e = per.entry(w.index).or_default();
        e.0 += w.fps;
        e.1 += 1;
    }
    FpsSeries {
        label,
        points: per
            .into_iter()
            .map(|(k, (sum, n))| (f64::from(k), sum / n as f64, n))
            .collect(),
        source_fps,
    }
}

/// Median and p95 of one step, with intervals seeded by `what`.
fn step(sorted: &[f64], seed: u64, what: &str) -> StepStats {
    StepStats {
        count: sorted.len() as u64,
        p50: quantile_estimate(sorted, 0.50, seed, &format!("{what}/p50")),
        p95: quantile_estimate(sorted, 0.95, seed, &format!("{what}/p95")),
    }
}

/// Frame latency percentiles with their intervals, seeded by `what`.
pub fn latency_stats(sorted: &[f64], seed: u64, what: &str) -> LatencyStats {
    let q = |q: f64, name: &str| quantile_estimate(sorted, q, seed, &format!("{what}/{name}"));
    LatencyStats {
        count: sorted.len() as u64,
        p50: q(0.50, "p50"),
        p90: q(0.90, "p90"),
        p95: q(0.95, "p95"),
        p99: q(0.99, "p99"),
        max: sorted.last().copied(),
    }
}

/// The statistics of one set of frames (a profile, or one of its streams).
pub fn frame_row(
    frames: &[&VideoFrame],
    stream: Option<u32>,
    policy: Option<String>,
    source_fps: Option<f64>,
    seed: u64,
) -> Option<FrameRow> {
    let first = frames.first()?;
    let count = |o: FrameOutcome| frames.iter().filter(|f| f.outcome == o).count() as u64;
    let mut backends: Vec<&str> = Vec::new();
    for f in frames {
        if !backends.contains(&f.backend.as_str()) {
            backends.push(&f.backend);
        }
    }
    let what = |step: &str| {
        let s = stream.map_or("all".to_string(), |s| s.to_string());
        format!("video/{}/{}/{s}/{step}", first.run, first.profile)
    };
    let missed = frames.iter().filter(|f| f.missed).count() as u64;
    let captured = frames.len() as u64;
    let windows = fps_windows(frames, source_fps);
    Some(FrameRow {
        run: first.run.clone(),
        scenario: first.scenario.clone(),
        profile: first.profile.clone(),
        stream,
        backend: backends.join(", "),
        policy,
        captured,
        processed: count(FrameOutcome::Ok),
        skipped: count(FrameOutcome::Skipped),
        errors: count(FrameOutcome::Error),
        latency: latency_stats(&latencies_ms(frames), seed, &what("latency")),
        queue_wait: step(
            &sorted_ms(frames, |f| f.queue_wait_ms),
            seed,
            &what("queue"),
        ),
        preprocess: step(&sorted_ms(frames, |f| f.preprocess_ms), seed, &what("pre")),
        inference: step(
            &sorted_ms(frames, |f| f.inference_ms),
            seed,
            &what("inference"),
        ),
        postprocess: step(
            &sorted_ms(frames, |f| f.postprocess_ms),
            seed,
            &what("post"),
        ),
        deadline_miss: Proportion {
            k: missed,
            n: captured,
            rate: proportion_estimate(missed, captured),
        },
        fps: fps_stats(&windows),
    })
}

/// Failed frames of one series by error kind (most frequent first), with one example each.
pub fn error_rows(frames: &[&VideoFrame]) -> Vec<FrameErrorRow> {
    let mut kinds: Vec<FrameErrorRow> = Vec::new();
    for f in frames.iter().filter(|f| f.outcome == FrameOutcome::Error) {
        let kind = f.error_kind.clone().unwrap_or_else(|| "unknown".into());
        match kinds.iter_mut().find(|k| k.kind == kind) {
            Some(k) => k.count += 1,
            None => kinds.push(FrameErrorRow {
                run: f.run.clone(),
                profile: f.profile.clone(),
                kind,
                count: 1,
                example: f.error_message.clone().unwrap_or_default(),
            }),
        }
    }
    kinds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    kinds
}

/// `num / den`, None when `den` is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Accuracy per class of one run × profile from the manifest's totals; one row with no class
/// when the profile had no reference annotations.
pub fn accuracy_rows(
    vision: Option<&VisionFacts>,
    run: &str,
    profile: &str,
) -> Vec<ClassAccuracyRow> {
    let totals = vision.and_then(|v| v.accuracy.iter().find(|a| a.profile == profile));
    let row = |class: Option<String>, frames: u64, tp: u64, fp: u64, fn_: u64| ClassAccuracyRow {
        run: run.to_string(),
        profile: profile.to_string(),
        class,
        frames,
        tp,
        fp,
        fn_,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
    };
    match totals {
        Some(t) if t.frames > 0 && !t.classes.is_empty() => t
            .classes
            .iter()
            .map(|k| {
                row(
                    Some(k.class.clone()),
                    t.frames,
                    u64::from(k.tp),
                    u64::from(k.fp),
                    u64::from(k.fn_),
                )
            })
            .collect(),
        _ => vec![row(None, 0, 0, 0, 0)],
    }
}

/// The latency–accuracy trade-off of every series: p95 frame latency against recall of
/// [`TRADEOFF_CLASS`], marking the Pareto front — a profile is on it when no other is at
/// least as good on both (p95 no higher, recall no lower) and better on one. Profiles
/// without a p95 or a recall are not compared (never on the front).
pub fn tradeoff(rows: &[FrameRow], accuracy: &[ClassAccuracyRow]) -> Vec<TradeoffRow> {
    let mut out: Vec<TradeoffRow> = rows
        .iter()
        .filter(|r| r.stream.is_none())
        .map(|r| {
            let person = accuracy.iter().find(|a| {
                a.run == r.run
                    && a.profile == r.profile
                    && a.class.as_deref() == Some(TRADEOFF_CLASS)
            });
            TradeoffRow {
                run: r.run.clone(),
                profile: r.profile.clone(),
                p95: r.latency.p95,
                count: r.latency.count,
                person_recall: person.and_then(|p| p.recall),
                person_boxes: person.map_or(0, |p| p.tp + p.fn_),
                pareto: false,
            }
        })
        .collect();
    let point = |t: &TradeoffRow| Some((t.p95?.value, t.person_recall?));
    let points: Vec<Option<(f64, f64)>> = out.iter().map(point).collect();
    for (i, t) in out.iter_mut().enumerate() {
        let Some((p95, recall)) = points[i] else {
            continue;
        };
        t.pareto = !points.iter().enumerate().any(|(j, other)| {
            let Some((p, r)) = *other else { return false };
            j != i && p <= p95 && r >= recall && (p < p95 || r > recall)
        });
    }
    out
}

/// What a run replayed, from its manifest.
pub fn run_facts(run: &str, v: &VisionFacts) -> VideoRunFacts {
    VideoRunFacts {
        run: run.to_string(),
        dataset: v.dataset.clone(),
        video: v.video.clone(),
        fps: v.fps,
        width: v.width,
        height: v.height,
        streams: v.streams,
        frames_per_stream: v.frames_per_stream,
        reference: v.reference.clone(),
        decoder: v.decode.decoder.clone(),
        decode_fps: v.decode.fps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u32, k: i64, result_ms: Option<i64>, outcome: FrameOutcome) -> VideoFrame {
        let capture_ns = k * 100_000_000;
        VideoFrame {
            run: "r".into(),
            scenario: "s".into(),
            profile: "p".into(),
            backend: "b".into(),
            stream,
            frame: k as u32,
            capture_ns,
            result_ns: result_ms.map(|ms| capture_ns + ms * 1_000_000),
            latency_ms: result_ms.map(|ms| ms as f64),
            queue_wait_ms: None,
            preprocess_ms: None,
            inference_ms: None,
            postprocess_ms: None,
            deadline_ns: 100_000_000,
            missed: outcome != FrameOutcome::Ok || result_ms.is_some_and(|ms| ms > 100),
            outcome,
            error_kind: None,
            error_message: None,
        }
    }

    #[test]
    fn fps_windows_count_results_per_stream_in_whole_seconds() {
        // 10 fps for 3 s on two streams; stream 1 skips every other frame of its second second.
        let mut frames = Vec::new();
        for k in 0..30 {
            frames.push(frame(0, k, Some(50), FrameOutcome::Ok));
            let skipped = (10..20).contains(&k) && k % 2 == 1;
            frames.push(if skipped {
                frame(1, k, None, FrameOutcome::Skipped)
            } else {
                frame(1, k, Some(50), FrameOutcome::Ok)
            });
        }
        let refs: Vec<&VideoFrame> = frames.iter().collect();
        let w = fps_windows(&refs, Some(10.0));
        let fps: Vec<(u32, u32, f64)> = w.iter().map(|w| (w.index, w.stream, w.fps)).collect();
        assert_eq!(
            fps,
            vec![
                (0, 0, 10.0),
                (0, 1, 10.0),
                (1, 0, 10.0),
                (1, 1, 5.0),
                (2, 0, 10.0),
                (2, 1, 10.0)
            ]
        );
        let s = fps_stats(&w);
        assert_eq!((s.windows, s.min, s.p10), (6, Some(5.0), Some(5.0)));
        assert!((s.mean.unwrap() - 55.0 / 6.0).abs() < 1e-12);
        // Without the manifest's rate the interval comes from the captures.
        assert_eq!(fps_windows(&refs, None), w);
        let series = fps_series("p".into(), &w, Some(10.0));
        assert_eq!(
            series.points,
            vec![(0.0, 10.0, 2), (1.0, 7.5, 2), (2.0, 10.0, 2)]
        );
    }

    #[test]
    fn a_partial_last_second_is_not_a_window() {
        let frames: Vec<VideoFrame> = (0..25)
            .map(|k| frame(0, k, Some(20), FrameOutcome::Ok))
            .collect();
        let refs: Vec<&VideoFrame> = frames.iter().collect();
        assert_eq!(fps_windows(&refs, Some(10.0)).len(), 2);
    }

    #[test]
    fn the_pareto_front_keeps_the_undominated() {
        let row = |profile: &str, p95: f64| FrameRow {
            run: "r".into(),
            scenario: "s".into(),
            profile: profile.into(),
            stream: None,
            backend: "b".into(),
            policy: None,
            captured: 1,
            processed: 1,
            skipped: 0,
            errors: 0,
            latency: LatencyStats {
                count: 1,
                p50: None,
                p90: None,
                p95: Some(crate::report::exact(p95)),
                p99: None,
                max: None,
            },
            queue_wait: step(&[], 0, "q"),
            preprocess: step(&[], 0, "q"),
            inference: step(&[], 0, "q"),
            postprocess: step(&[], 0, "q"),
            deadline_miss: Proportion {
                k: 0,
                n: 1,
                rate: None,
            },
            fps: fps_stats(&[]),
        };
        let acc = |profile: &str, tp: u64, fn_: u64| ClassAccuracyRow {
            run: "r".into(),
            profile: profile.into(),
            class: Some(TRADEOFF_CLASS.into()),
            frames: 10,
            tp,
            fp: 0,
            fn_,
            precision: ratio(tp, tp),
            recall: ratio(tp, tp + fn_),
        };
        let rows = [
            row("fast", 50.0),
            row("big", 120.0),
            row("slow", 130.0),
            row("none", 10.0),
        ];
        let accuracy = [acc("fast", 6, 4), acc("big", 9, 1), acc("slow", 8, 2)];
        let t = tradeoff(&rows, &accuracy);
        let front: Vec<(&str, bool)> = t.iter().map(|t| (t.profile.as_str(), t.pareto)).collect();
        assert_eq!(
            front,
            vec![
                ("fast", true),
                ("big", true),
                ("slow", false),
                ("none", false)
            ]
        );
        assert_eq!(t[1].person_boxes, 10);
        assert_eq!(t[3].person_recall, None);
    }
}
