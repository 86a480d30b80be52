//! The Video section on a deterministic fixture (`support/vision.rs`): exact percentiles,
//! counts, FPS windows, deadline misses, accuracy and the Pareto front; comparison and
//! export of frames; and audio-only runs left exactly as they were.

#[path = "support/vision.rs"]
mod vision;

use std::path::{Path, PathBuf};

use latlab_analysis::{Side, analyze, compare};
use latlab_report::model::{Estimate, FrameRow, Report, VideoSection};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn video_report() -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    vision::video_only(dir.path());
    let report = analyze(&[dir.path().to_path_buf()]).unwrap();
    (dir, report)
}

fn value(e: &Option<Estimate>) -> f64 {
    e.expect("an estimate").value
}

fn row<'a>(v: &'a VideoSection, profile: &str) -> &'a FrameRow {
    v.frames
        .iter()
        .find(|r| r.profile == profile && r.stream.is_none())
        .unwrap_or_else(|| panic!("no row for {profile}"))
}

#[test]
fn counts_and_frame_latency_percentiles_are_exact() {
    let (_dir, report) = video_report();
    let v = report.video.as_ref().expect("a video section");
    // One row per profile, then one per stream (two streams each).
    assert_eq!(v.frames.len(), 9);
    let order: Vec<(&str, Option<u32>)> = v
        .frames
        .iter()
        .map(|r| (r.profile.as_str(), r.stream))
        .collect();
    assert_eq!(
        order[..3],
        [("nano", None), ("nano", Some(0)), ("nano", Some(1))]
    );

    let nano = row(v, "nano");
    assert_eq!(
        (nano.captured, nano.processed, nano.skipped, nano.errors),
        (240, 240, 0, 0)
    );
    assert_eq!(nano.policy.as_deref(), Some("queue"));
    let l = &nano.latency;
    assert_eq!(l.count, 240);
    assert_eq!(
        [value(&l.p50), value(&l.p90), value(&l.p95), value(&l.p99)],
        [49.0, 73.0, 76.0, 79.0]
    );
    assert_eq!(l.max, Some(79.0));
    let p95 = l.p95.unwrap();
    assert!(
        p95.lo <= 76.0 && 76.0 <= p95.hi && p95.hi <= 79.0,
        "{p95:?}"
    );
    // Steps: fixed queue wait, preprocessing and postprocessing; inference the rest.
    assert_eq!(
        (value(&nano.queue_wait.p50), value(&nano.queue_wait.p95)),
        (2.0, 2.0)
    );
    assert_eq!(value(&nano.preprocess.p50), 3.0);
    assert_eq!(
        (value(&nano.inference.p50), value(&nano.inference.p95)),
        (43.0, 70.0)
    );
    assert_eq!(
        (nano.postprocess.count, value(&nano.postprocess.p95)),
        (240, 1.0)
    );

    let xl = row(v, "xl");
    assert_eq!(
        (xl.captured, xl.processed, xl.skipped, xl.errors),
        (240, 120, 120, 0)
    );
    assert_eq!(xl.latency.count, 120);
    assert_eq!(
        [
            value(&xl.latency.p50),
            value(&xl.latency.p90),
            value(&xl.latency.p95),
            value(&xl.latency.p99)
        ],
        [149.0, 157.0, 158.0, 159.0]
    );

    let small = row(v, "small");
    assert_eq!(
        (small.captured, small.processed, small.skipped, small.errors),
        (240, 228, 0, 12)
    );
    assert_eq!(
        [
            value(&small.latency.p50),
            value(&small.latency.p90),
            value(&small.latency.p95),
            value(&small.latency.p99)
        ],
        [79.0, 103.0, 106.0, 108.0]
    );
    assert_eq!(small.latency.max, Some(109.0));
    assert_eq!(
        (value(&small.inference.p50), value(&small.inference.p95)),
        (73.0, 100.0)
    );
    // Errors by kind, most frequent first, with an example each.
    let kinds: Vec<(&str, &str, u64)> = v
        .errors
        .iter()
        .map(|e| (e.profile.as_str(), e.kind.as_str(), e.count))
        .collect();
    assert_eq!(kinds, [("small", "timeout", 11), ("small", "inference", 1)]);
    assert!(v.errors[0].example.contains("gave up"));
}

#[test]
fn deadline_misses_and_fps_windows() {
    let (_dir, report) = video_report();
    let v = report.video.as_ref().unwrap();
    let miss = |p: &str| {
        let d = &row(v, p).deadline_miss;
        (d.k, d.n, d.rate.unwrap())
    };
    let (k, n, rate) = miss("nano");
    assert_eq!((k, n, rate.value, rate.lo), (0, 240, 0.0, 0.0));
    // Clopper–Pearson: none of 240 → upper 1 − 0.025^(1/240).
    assert!((rate.hi - (1.0 - 0.025f64.powf(1.0 / 240.0))).abs() < 1e-6);
    let (k, n, rate) = miss("xl");
    assert_eq!((k, n, rate.value, rate.hi), (240, 240, 1.0, 1.0));
    let (k, n, rate) = miss("small");
    assert_eq!((k, n), (110, 240));
    assert!((rate.value - 110.0 / 240.0).abs() < 1e-12);
    assert!(rate.lo < rate.value && rate.value < rate.hi);

    // 10 whole seconds × 2 streams = 20 windows per profile.
    let fps = |p: &str| row(v, p).fps.clone();
    let f = fps("nano");
    assert_eq!(
        (f.windows, f.mean, f.p10, f.min),
        (20, Some(12.0), Some(12.0), Some(12.0))
    );
    let f = fps("xl");
    assert_eq!(
        (f.windows, f.mean, f.p10, f.min),
        (20, Some(6.0), Some(6.0), Some(6.0))
    );
    let f = fps("small");
    assert_eq!((f.windows, f.p10, f.min), (20, Some(10.0), Some(10.0)));
    assert!((f.mean.unwrap() - 11.4).abs() < 1e-12, "{f:?}");
    // A stream's own row has its own 10 windows.
    let s1 = v
        .frames
        .iter()
        .find(|r| r.profile == "small" && r.stream == Some(1))
        .unwrap();
    assert_eq!(s1.fps.windows, 10);
    assert_eq!(s1.captured, 120);

    // The plots' series: per window, the mean over the streams.
    let series = &report.plots.fps_over_time;
    assert_eq!(series.len(), 3);
    assert_eq!(series[0].points.len(), 10);
    assert!(
        series[0]
            .points
            .iter()
            .all(|&(_, fps, n)| fps == 12.0 && n == 2)
    );
    assert_eq!(series[0].source_fps, Some(12.0));
    let cdf = &report.plots.frame_cdf;
    assert_eq!(
        cdf.iter()
            .map(|c| (c.label.as_str(), c.count))
            .collect::<Vec<_>>(),
        [("nano", 240), ("xl", 120), ("small", 228)]
    );
    assert_eq!(cdf[0].p95, 76.0);
}

#[test]
fn accuracy_per_class_and_the_pareto_front() {
    let (_dir, report) = video_report();
    let v = report.video.as_ref().unwrap();
    let acc: Vec<_> = v
        .accuracy
        .iter()
        .map(|a| {
            (
                a.profile.as_str(),
                a.class.as_deref(),
                a.precision,
                a.recall,
            )
        })
        .collect();
    assert_eq!(
        acc,
        [
            ("nano", Some("person"), Some(60.0 / 70.0), Some(0.6)),
            ("nano", Some("car"), Some(0.8), Some(0.8)),
            ("xl", Some("person"), Some(90.0 / 95.0), Some(0.9)),
            // No detections of the class: precision n/a; all 8 reference boxes missed.
            ("xl", Some("car"), None, Some(0.0)),
            // No reference annotations at all.
            ("small", None, None, None),
        ]
    );
    assert_eq!(
        (v.accuracy[0].tp, v.accuracy[0].fp, v.accuracy[0].fn_),
        (60, 10, 40)
    );
    let front: Vec<_> = v
        .tradeoff
        .iter()
        .map(|t| (t.profile.as_str(), value(&t.p95), t.person_recall, t.pareto))
        .collect();
    assert_eq!(
        front,
        [
            ("nano", 76.0, Some(0.6), true),
            ("xl", 158.0, Some(0.9), true),
            ("small", 106.0, None, false),
        ]
    );
    assert_eq!(v.tradeoff[1].person_boxes, 100);
    assert_eq!(v.runs.len(), 1);
    assert_eq!((v.runs[0].fps, v.runs[0].streams), (12.0, 2));
}

#[test]
fn every_output_shows_the_video_section_escaped() {
    let (_dir, report) = video_report();
    // A video-only run has no audio rows of zero turns.
    assert!(
        report.summary.is_empty() && report.throughput.is_empty() && report.accuracy.is_empty()
    );
    let md = latlab_report::markdown::render(&report);
    assert!(md.contains("## Video"), "{md}");
    assert!(md.contains("| vision-1 | nano | all |"), "{md}");
    assert!(md.contains("hand-labelled &lt;boxes&gt;"));
    let html = latlab_report::html::render(&report, &[]);
    assert!(html.contains("<h2 id=\"video\">Video</h2>"));
    assert!(html.contains("hand-labelled &lt;boxes&gt;"));
    assert!(html.contains("500 ms &lt;b&gt;"));
    assert!(!html.contains("<boxes>") && !html.contains("ms <b>"));
    let text = latlab_report::terminal::render(&report);
    assert!(
        text.contains("VIDEO") && text.contains("n/a (no reference)"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["video"]["frames"][0]["latency"]["count"], 240);
    assert_eq!(json["video"]["accuracy"][0]["fn"], 40);
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back.video, report.video);
}

#[test]
fn audio_only_runs_have_no_video_section() {
    let report = analyze(&[data("golden-run")]).unwrap();
    assert!(report.video.is_none());
    assert!(report.plots.frame_cdf.is_empty() && report.plots.fps_over_time.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("video").is_none());
    assert!(json["plots"].get("frame_cdf").is_none());
    assert!(!latlab_report::markdown::render(&report).contains("Video"));
    assert!(!latlab_report::html::render(&report, &[]).contains("id=\"video\""));
}

#[test]
fn a_multimodal_run_has_both_sections() {
    let dir = tempfile::tempdir().unwrap();
    vision::multimodal(dir.path());
    let report = analyze(&[dir.path().to_path_buf()]).unwrap();
    let turns: u64 = report
        .summary
        .iter()
        .filter(|r| r.stage == "turn")
        .map(|r| r.count + r.errors)
        .sum();
    assert_eq!(turns, 10);
    let v = report.video.unwrap();
    assert_eq!(row(&v, "xl").latency.count, 120);
}

#[test]
fn compare_sets_frame_latency_and_deadline_misses_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    vision::video_only(dir.path());
    let side = |p: &str| Side {
        dir: dir.path().to_path_buf(),
        profile: Some(p.into()),
    };
    let report = compare(&side("nano"), &side("xl")).unwrap();
    let rows = &report.comparison.as_ref().unwrap().rows;
    let frame: Vec<_> = rows
        .iter()
        .filter(|r| r.stage == "frame")
        .map(|r| {
            (
                r.statistic.as_str(),
                r.count_a,
                r.count_b,
                r.a.value,
                r.b.value,
                r.diff.value,
            )
        })
        .collect();
    assert_eq!(
        frame,
        [
            ("p50", 240, 120, 49.0, 149.0, 100.0),
            ("p95", 240, 120, 76.0, 158.0, 82.0),
            ("deadline_miss_rate", 240, 240, 0.0, 100.0, 100.0),
        ]
    );
    for r in rows.iter().filter(|r| r.stage == "frame") {
        assert!(
            r.diff.lo <= r.diff.value && r.diff.value <= r.diff.hi,
            "{r:?}"
        );
        assert!(r.diff.lo > 0.0, "a clear difference excludes 0: {r:?}");
    }
    let cdf: Vec<&str> = report
        .plots
        .frame_cdf
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    assert_eq!(cdf, ["A: vision-1 · nano", "B: vision-1 · xl"]);
    let v = report.video.unwrap();
    assert!(v.frames.iter().all(|r| r.profile != "small"));
}

#[test]
fn frames_export_beside_spans() {
    use latlab_analysis::export::{Format, default_frames_out, export, export_frames};
    let dir = tempfile::tempdir().unwrap();
    vision::multimodal(dir.path());
    let out = default_frames_out(dir.path(), Format::Csv);
    assert_eq!(
        export_frames(dir.path(), Format::Csv, &out).unwrap(),
        Some(720)
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        latlab_results::columns::FRAMES.join(",")
    );
    assert_eq!(csv.lines().count(), 721);
    let spans = latlab_analysis::export::default_out(dir.path(), Format::Csv);
    assert_eq!(export(dir.path(), Format::Csv, &spans).unwrap(), 50);
    let json = default_frames_out(dir.path(), Format::Json);
    assert_eq!(
        export_frames(dir.path(), Format::Json, &json).unwrap(),
        Some(720)
    );
    // An audio-only run has no frames to export; a video-only run no spans.
    let audio = tempfile::tempdir().unwrap();
    let out = audio.path().join("frames.csv");
    assert_eq!(
        export_frames(&data("golden-run"), Format::Csv, &out).unwrap(),
        None
    );
    assert!(!out.exists());
    let video = tempfile::tempdir().unwrap();
    vision::video_only(video.path());
    let err = export(video.path(), Format::Csv, &audio.path().join("spans.csv")).unwrap_err();
    assert!(err.to_string().contains("video only"), "{err}");
}
