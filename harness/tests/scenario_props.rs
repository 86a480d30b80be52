//! Scenario files never panic the loader: the shipped scenarios and profiles, mutated as TOML
//! trees (values of another type, keys removed, renamed or made up) and as bytes, give a
//! `Scenario` or a `ScenarioError`; a scenario that loads gives a load plan the runner can
//! drive. `PROPTEST_CASES=100000 cargo test -p latlab-harness --test scenario_props` runs more
//! cases (docs/testing.md).

#[path = "../../core/tests/support/mutate.rs"]
mod mutate;

use latlab_harness::scenario::{LoadModel, Scenario};
use proptest::prelude::*;

use mutate::{
    apply_text, byte_edits, cases, few_byte_edits, mutate_toml_text, rewrite, toml_value,
    tree_edits,
};

const SCENARIOS: &[&str] = &[
    include_str!("../../scenarios/smoke.toml"),
    include_str!("../../scenarios/gate.toml"),
    include_str!("../../scenarios/ramp.toml"),
    include_str!("../../scenarios/open.toml"),
    include_str!("../../scenarios/local.toml"),
    include_str!("../../scenarios/hybrid.toml"),
    include_str!("../../scenarios/floor.toml"),
];
const PROFILES: &str = include_str!("../../scenarios/profiles.toml");

const VOCABULARY: &[&str] = &[
    // Keys.
    "name",
    "description",
    "dataset",
    "seed",
    "calls",
    "concurrency",
    "speed",
    "frame_ms",
    "stagger_ms",
    "warmup_turns",
    "profiles_file",
    "run_profiles",
    "profiles",
    "backends",
    "stt",
    "llm",
    "tts",
    "vad",
    "kind",
    "base_url",
    "model",
    "language",
    "api_key_env",
    "max_tokens",
    "temperature",
    "voice_id",
    "output_format",
    "device",
    "threads",
    "limits",
    "connect_timeout_ms",
    "stall_timeout_ms",
    "max_duration_s",
    "grace_s",
    "load",
    "arrival",
    "rate_per_s",
    "max_in_flight",
    "duration_s",
    "stages",
    "target",
    "emulator",
    "final_delay",
    "dist",
    "ms",
    "median_ms",
    "sigma",
    "shape",
    "scale_ms",
    "interim_interval_ms",
    "ttft",
    "ttfb",
    "chunk_ms",
    "chunk_gap",
    "leading_silence_ms",
    "ms_per_char",
    "faults",
    "stall",
    "http_5xx",
    "refuse",
    "endpointing",
    "endpointing_ms",
    "utterance_end_ms",
    "tts_start",
    "vad_threshold",
    "local",
    "stt_model",
    "beam_size",
    // Values.
    "deepgram",
    "openai",
    "elevenlabs",
    "whisper",
    "llama",
    "piper",
    "energy",
    "silero",
    "emulator",
    "open",
    "closed",
    "poisson",
    "constant",
    "lognormal",
    "gamma",
    "first_sentence",
    "full_reply",
    "wav_16000",
    "pcm_22050",
    "balanced",
    "aggressive",
    "profiles.toml",
    "cpu",
    "cuda",
];

thread_local! {
    /// One folder per test thread; each case rewrites its files.
    static DIR: tempfile::TempDir = tempfile::tempdir().unwrap();
}

/// Loads `scenario` (and `profiles`, as `profiles.toml` beside it).
fn check(scenario: &str, profiles: &str) -> Result<(), TestCaseError> {
    let path = DIR.with(|dir| {
        rewrite(&dir.path().join("profiles.toml"), profiles);
        let path = dir.path().join("s.toml");
        rewrite(&path, scenario);
        path
    });
    let Ok(s) = Scenario::load(&path) else {
        return Ok(());
    };
    plan_is_drivable(&s)
}

fn plan_is_drivable(s: &Scenario) -> Result<(), TestCaseError> {
    prop_assert!(!s.profiles.is_empty());
    let _ = s.uses_emulator();
    let _ = s.spec.limits.timeouts();
    for (calls, concurrency) in [
        (None, None),
        (Some(1), Some(1)),
        (Some(usize::MAX), Some(usize::MAX)),
    ] {
        let plan = s.load_plan(10, calls, concurrency);
        prop_assert!(plan.max_in_flight >= 1);
        prop_assert!(!plan.stages.is_empty());
        prop_assert!(
            plan.max_calls.is_some() || plan.stages.iter().all(|st| st.duration_s.is_finite())
        );
        let windows = latlab_core::load::windows(&plan.stages);
        prop_assert_eq!(windows.len(), plan.stages.len());
        if plan.model == LoadModel::Closed {
            let _ = latlab_core::load::closed_target_at(&windows, 0);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn mutated_scenarios_load_or_name_their_error(
        seed in 0..SCENARIOS.len(),
        tree in tree_edits(4, toml_value(VOCABULARY), VOCABULARY),
        bytes in few_byte_edits(2),
    ) {
        let text = mutate_toml_text(SCENARIOS[seed], &tree);
        prop_assume!(text.is_some());
        check(&apply_text(&text.unwrap_or_default(), &bytes), PROFILES)?;
    }

    #[test]
    fn mutated_profiles_files_load_or_name_their_error(
        tree in tree_edits(4, toml_value(VOCABULARY), VOCABULARY),
        bytes in few_byte_edits(2),
    ) {
        let profiles = mutate_toml_text(PROFILES, &tree);
        prop_assume!(profiles.is_some());
        check(SCENARIOS[0], &apply_text(&profiles.unwrap_or_default(), &bytes))?;
    }

    #[test]
    fn damaged_scenario_text_loads_or_names_its_error(
        seed in 0..SCENARIOS.len(),
        bytes in byte_edits(6),
    ) {
        check(&apply_text(SCENARIOS[seed], &bytes), PROFILES)?;
    }

    #[test]
    fn any_text_is_a_scenario_or_an_error(text in any::<String>()) {
        check(&text, PROFILES)?;
    }
}
