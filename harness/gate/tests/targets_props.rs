//! Targets files never panic the gate: the shipped targets, mutated as TOML trees and as
//! bytes, give `Targets` or a `TargetsError`; targets that parse can be judged on any run.
//! `PROPTEST_CASES=100000 cargo test -p latlab-gate --test targets_props` runs more cases
//! (docs/testing.md).

#[path = "../../../core/tests/support/mutate.rs"]
mod mutate;

use std::path::Path;

use latlab_gate::check::judge;
use latlab_gate::targets::Metric;
use latlab_gate::{StageSample, Targets};
use proptest::prelude::*;

use mutate::{
    apply_text, byte_edits, cases, few_byte_edits, mutate_toml_text, toml_value, tree_edits, word,
};

const TARGETS: &[&str] = &[
    include_str!("../../../scenarios/targets/voice-agent.toml"),
    include_str!("../../../scenarios/targets/stage-budgets.toml"),
    include_str!("../../../scenarios/targets/vision.toml"),
    "name = \"agent\"\nconfidence = 0.95\n[[target]]\nscenario = \"smoke\"\nprofile = \"balanced\"\nstage = \"llm\"\nmetric = \"p99.9\"\nlimit = 300\n",
];

const VOCABULARY: &[&str] = &[
    "name",
    "description",
    "confidence",
    "target",
    "scenario",
    "profile",
    "stage",
    "metric",
    "limit",
    "warn",
    "crit",
    "turn",
    "voice_to_voice",
    "v2v",
    "stt",
    "llm",
    "tts",
    "endpoint",
    "p50",
    "p90",
    "p99.9",
    "error_rate",
    "success_rate",
    "frame",
    "fps",
    "deadline_miss_rate",
    "smoke",
    "balanced",
    "*",
];

/// A run with a stage of every size that matters to the bounds: none, one, just enough for
/// a P90 to pass, many; with and without errors.
fn run() -> Vec<StageSample> {
    let mut out = Vec::new();
    for (profile, n, errors) in [
        ("balanced", 0usize, 0u64),
        ("aggressive", 1, 1),
        ("conservative", 64, 0),
        ("fast", 700, 30),
    ] {
        for stage in ["turn", "stt", "llm", "tts", "endpoint"] {
            out.push(StageSample {
                scenario: "smoke".into(),
                profile: profile.into(),
                stage: stage.into(),
                errors,
                skipped: 1,
                sorted_ms: (0..n).map(|i| i as f64 * 3.5).collect(),
                ..StageSample::default()
            });
        }
        // The vision lane's stage, with its frames, misses and FPS windows.
        out.push(StageSample {
            scenario: "smoke".into(),
            profile: profile.into(),
            stage: "frame".into(),
            errors,
            skipped: 1,
            sorted_ms: (0..n).map(|i| i as f64 * 3.5).collect(),
            frames: n as u64 + errors + 1,
            missed: errors + 1,
            fps_windows: {
                let mut w: Vec<f64> = (0..n / 10).map(|i| 5.0 + (i % 7) as f64).collect();
                w.sort_by(f64::total_cmp);
                w
            },
            rates: Vec::new(),
        });
    }
    out
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let Ok(targets) = Targets::parse(Path::new("t.toml"), text) else {
        return Ok(());
    };
    prop_assert!(!targets.targets.is_empty());
    prop_assert!((0.5..1.0).contains(&targets.confidence));
    for t in &targets.targets {
        prop_assert!(t.warn.is_some() || t.crit.is_some());
        if let Metric::Quantile(q) = t.metric {
            prop_assert!(q > 0.0 && q < 1.0);
        }
        let _ = t.metric.label();
    }
    let checks = judge(&targets, &run());
    prop_assert!(checks.len() >= targets.targets.len());
    Ok(())
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn mutated_targets_parse_or_name_their_error(
        seed in 0..TARGETS.len(),
        tree in tree_edits(4, toml_value(VOCABULARY), VOCABULARY),
        bytes in few_byte_edits(2),
    ) {
        let text = mutate_toml_text(TARGETS[seed], &tree);
        prop_assume!(text.is_some());
        check(&apply_text(&text.unwrap_or_default(), &bytes))?;
    }

    #[test]
    fn damaged_targets_text_parses_or_names_its_error(seed in 0..TARGETS.len(), bytes in byte_edits(6)) {
        check(&apply_text(TARGETS[seed], &bytes))?;
    }

    #[test]
    fn any_text_is_targets_or_an_error(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn any_metric_name_is_a_metric_or_none(name in word(VOCABULARY)) {
        if let Some(m) = Metric::parse(&name) {
            let _ = m.label();
            if let Metric::Quantile(q) = m {
                prop_assert!(q > 0.0 && q < 1.0, "{name} gave {q}");
            }
        }
    }
}
