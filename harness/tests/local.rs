//! The local voice pipeline end to end, on the real models (`models/fetch.py`): Silero VAD,
//! whisper.cpp, llama.cpp gemma-3-270m and Piper, driven by the `latlab` binary.
//!
//! The models are large downloads, so without them these tests say so and pass, unless
//! `LATLAB_REQUIRE_MODELS=1` (as `.ci/run` sets, after fetching them) makes that a failure.
#![cfg(all(
    feature = "local-vad",
    feature = "local-stt",
    feature = "local-tts",
    feature = "local-llm"
))]

mod common;

use std::collections::BTreeSet;

use common::{by_turn, latlab, read_json, read_jsonl, root, run_ok};
use latlab_core::timing::{Outcome, Span, Stage, TurnTimeline};

fn models_here() -> bool {
    let check = std::process::Command::new("python3")
        .arg(root().join("models/fetch.py"))
        .args([
            "--check",
            "onnxruntime",
            "silero-vad",
            "whisper-tiny.en",
            "gemma-3-270m",
            "piper-joe",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !check && std::env::var("LATLAB_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("local models missing and LATLAB_REQUIRE_MODELS=1: run python3 models/fetch.py");
    }
    if !check {
        eprintln!("skipped: local models not fetched (python3 models/fetch.py)");
    }
    check
}

#[test]
fn the_local_scenario_times_every_stage_on_real_models() {
    if !models_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("local");
    // Calls 09 and 10: a real recorded voice (whisper tiny.en transcribes it well).
    let scenario = tmp.path().join("local.toml");
    let text = std::fs::read_to_string(root().join("scenarios/local.toml")).unwrap();
    std::fs::write(
        &scenario,
        text.replace("dataset = \"../datasets/smoke\"", "dataset = \"smoke\"")
            .replace(
                "run_profiles = [\"tiny\", \"tiny-eager\", \"base\"]",
                "run_profiles = [\"tiny\"]\ncalls = 2",
            ),
    )
    .unwrap();
    let data = tmp.path().join("smoke");
    std::fs::create_dir(&data).unwrap();
    let manifest = std::fs::read_to_string(root().join("datasets/smoke/manifest.jsonl")).unwrap();
    let lines: Vec<&str> = manifest
        .lines()
        .filter(|l| l.contains("\"call-09\"") || l.contains("\"call-10\""))
        .collect();
    std::fs::write(data.join("manifest.jsonl"), lines.join("\n") + "\n").unwrap();
    for call in ["call-09.wav", "call-10.wav"] {
        std::fs::copy(root().join("datasets/smoke").join(call), data.join(call)).unwrap();
    }

    let out = run_ok(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
        "--no-fetch",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("voice-to-voice"), "{stdout}");
    assert!(stdout.contains("transcript accuracy by voice"), "{stdout}");

    let spans: Vec<Span> = read_jsonl(&out_dir.join("spans.jsonl"));
    let turns: Vec<TurnTimeline> = read_jsonl(&out_dir.join("turns.jsonl"));
    assert_eq!(turns.len(), 6, "two calls of three turns");
    let ok: Vec<&TurnTimeline> = turns.iter().filter(|t| t.outcome == Outcome::Ok).collect();
    assert!(ok.len() >= 5, "{} of 6 turns ok: {turns:#?}", ok.len());
    let grouped = by_turn(&spans);
    for t in &ok {
        let key = (t.profile.clone(), t.call.clone(), t.iteration, t.turn);
        let stages: BTreeSet<Stage> = grouped[&key].iter().map(|s| s.stage).collect();
        assert_eq!(stages, Stage::ALL.into_iter().collect(), "{key:?}");
        assert!(t.voice_to_voice_ns.is_some_and(|v| v > 0), "{t:?}");
    }

    let manifest = read_json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    let loads = manifest["model_loads"].as_array().unwrap();
    let stages: BTreeSet<&str> = loads.iter().map(|l| l["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["llm", "stt", "tts", "vad"].into_iter().collect());
    for l in loads {
        assert!(l["load_ms"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!(l["device"], "cpu");
    }
    let warm = manifest["warmup"].as_array().unwrap();
    assert_eq!(warm.len(), 1);
    assert!(warm[0]["error"].is_null(), "{warm:?}");
    assert!(warm[0]["stt_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(manifest["backends"]["stt"]["kind"], "whisper");
    assert_eq!(manifest["backends"]["vad"]["kind"], "silero");

    // Accuracy beside latency: the recorded voice is transcribed almost word for word.
    let summary = read_json(&out_dir.join("summary.json"));
    let by_voice = summary["accuracy_by_voice"].as_array().unwrap();
    assert_eq!(by_voice.len(), 1, "{by_voice:?}");
    let wer = by_voice[0]["wer"].as_f64().unwrap();
    assert!(wer < 0.35, "WER {wer} on the recorded voice");
}

#[test]
fn a_missing_model_names_the_file_and_the_fetch_command() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(root().join("models/lock.toml"), models.join("lock.toml")).unwrap();
    std::fs::copy(root().join("models/fetch.py"), models.join("fetch.py")).unwrap();
    // Runs hybrid.toml against this models folder without fetching; it must refuse (exit 2).
    let refused = |out: &str| -> String {
        let run = latlab()
            .env("LATLAB_MODELS", &models)
            .args([
                "run",
                root().join("scenarios/hybrid.toml").to_str().unwrap(),
                "--out",
                tmp.path().join(out).to_str().unwrap(),
                "-q",
                "--no-fetch",
            ])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2));
        String::from_utf8_lossy(&run.stderr).into_owned()
    };
    let stderr = refused("out");
    assert!(stderr.contains("silero/silero_vad.onnx"), "{stderr}");
    assert!(stderr.contains("fetch.py silero-vad"), "{stderr}");

    // A corrupt file is refused the same way, with its SHA-256.
    std::fs::create_dir_all(models.join("silero")).unwrap();
    std::fs::write(models.join("silero/silero_vad.onnx"), b"not a model").unwrap();
    let stderr = refused("out2");
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(stderr.contains("silero/silero_vad.onnx"), "{stderr}");
}
