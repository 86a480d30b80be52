//! The vision targets (`scenarios/targets/vision.toml`) judged on the deterministic video
//! fixture: frame p95, sustained FPS and the deadline-miss rate each PASS, FAIL or stay
//! INCONCLUSIVE as the fixture's numbers say, and a run without video leaves them all
//! INCONCLUSIVE with the reason.

#[path = "../../analysis/tests/support/vision.rs"]
mod vision;

use std::path::{Path, PathBuf};

use latlab_gate::{GateOptions, Outcome, Targets, Verdict, gate, read_run};

fn targets() -> Targets {
    Targets::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/targets/vision.toml"),
    )
    .unwrap()
}

fn verdicts(dir: &Path) -> Vec<(String, String, Verdict)> {
    let report = gate(dir, &targets(), None, &GateOptions::default()).unwrap();
    assert_eq!(report.outcome, Outcome::Fail);
    report
        .checks
        .iter()
        .map(|c| (c.target.clone(), c.profile.clone(), c.shown().verdict))
        .collect()
}

#[test]
fn vision_targets_pass_fail_and_stay_inconclusive_as_the_frames_say() {
    let dir = tempfile::tempdir().unwrap();
    vision::video_only(dir.path());
    let v = verdicts(dir.path());
    let of = |target: &str, profile: &str| {
        v.iter()
            .find(|(t, p, _)| t == target && p == profile)
            .unwrap_or_else(|| panic!("no check of {target} on {profile}: {v:?}"))
            .2
    };
    // p95 76 ms (≤ 105), 158 ms, and 106 ms whose 99 % bounds [104, 108] straddle 105.
    assert_eq!(of("frame latency p95", "nano"), Verdict::Pass);
    assert_eq!(of("frame latency p95", "xl"), Verdict::Fail);
    assert_eq!(of("frame latency p95", "small"), Verdict::Inconclusive);
    // Median window 12, 6 and 11 fps (bounds [11, 12]) against the 10.6 floor.
    assert_eq!(of("sustained fps", "nano"), Verdict::Pass);
    assert_eq!(of("sustained fps", "xl"), Verdict::Fail);
    assert_eq!(of("sustained fps", "small"), Verdict::Pass);
    // 0, 240 and 110 of 240 frames missed against 10 %.
    assert_eq!(of("deadline-miss rate", "nano"), Verdict::Pass);
    assert_eq!(of("deadline-miss rate", "xl"), Verdict::Fail);
    assert_eq!(of("deadline-miss rate", "small"), Verdict::Fail);

    let report = gate(dir.path(), &targets(), None, &GateOptions::default()).unwrap();
    let fps = report
        .checks
        .iter()
        .find(|c| c.target == "sustained fps" && c.profile == "small")
        .unwrap();
    assert_eq!((fps.samples, fps.value, fps.unit), (20, Some(11.0), "fps"));
    assert_eq!((fps.lower, fps.upper), (Some(11.0), Some(12.0)));
    let p95 = report
        .checks
        .iter()
        .find(|c| c.target == "frame latency p95" && c.profile == "small")
        .unwrap();
    assert_eq!((p95.samples, p95.value), (228, Some(106.0)));
    assert_eq!((p95.lower, p95.upper), (Some(104.0), Some(108.0)));
    let miss = report
        .checks
        .iter()
        .find(|c| c.target == "deadline-miss rate" && c.profile == "xl")
        .unwrap();
    assert_eq!((miss.samples, miss.value), (240, Some(100.0)));
}

#[test]
fn a_run_without_video_leaves_the_vision_targets_inconclusive() {
    let audio: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../analysis/tests/data/golden-run");
    let report = gate(&audio, &targets(), None, &GateOptions::default()).unwrap();
    assert!(!report.checks.is_empty());
    for c in report.checks.iter().filter(|c| c.stage == "frame") {
        let shown = c.shown();
        assert_eq!(shown.verdict, Verdict::Inconclusive, "{c:?}");
        assert_eq!(shown.reason, "no frame samples in this run");
    }
    assert_eq!(
        report.tally.inconclusive,
        report.checks.iter().filter(|c| c.stage == "frame").count()
    );
}

#[test]
fn baselines_and_samples_carry_the_frame_stage() {
    let dir = tempfile::tempdir().unwrap();
    vision::multimodal(dir.path());
    let (_, stages) = read_run(dir.path()).unwrap();
    let frame: Vec<(&str, usize, u64, u64, usize)> = stages
        .iter()
        .filter(|s| s.stage == "frame")
        .map(|s| {
            (
                s.profile.as_str(),
                s.sorted_ms.len(),
                s.frames,
                s.missed,
                s.fps_windows.len(),
            )
        })
        .collect();
    assert_eq!(
        frame,
        [
            ("nano", 240, 240, 0, 20),
            ("xl", 120, 240, 240, 20),
            ("small", 228, 240, 110, 20)
        ]
    );
    // The audio stages are still there.
    assert!(stages.iter().any(|s| s.stage == "turn"));
}
