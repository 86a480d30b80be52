//! The measurement of the measurer against the real binary and the in-process emulator:
//! latlab's own share of a stage holds latlab's time only — not the emulator's leading
//! silence and chunk gaps (TTS), not a request's wait behind the call's previous one (LLM).

mod common;
use common::{read_json, read_jsonl, run_ok, scenario};

/// Runs a scenario over the first `calls` smoke calls at `speed` and returns its manifest,
/// turns and stdout.
fn run(
    emulator: &str,
    calls: usize,
    speed: &str,
) -> (serde_json::Value, Vec<serde_json::Value>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(
        tmp.path(),
        "[profiles.p]\nendpointing_ms = 300",
        calls,
        emulator,
    );
    let dir = tmp.path().join("out");
    let out = run_ok(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--speed",
        speed,
        "-q",
        "--no-report",
    ]);
    (
        read_json(&dir.join("manifest.json")),
        read_jsonl(&dir.join("turns.jsonl")),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A stage's share from the manifest's `measurer`: (p50, p99, count) in ms, ms, turns.
fn share(manifest: &serde_json::Value, stage: &str) -> (f64, f64, u64) {
    let s = manifest["measurer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} share: {manifest:#}"));
    let ns = |k: &str| s["share"][k].as_u64().unwrap();
    (
        ns("p50_ns") as f64 / 1e6,
        ns("p99_ns") as f64 / 1e6,
        ns("count"),
    )
}

#[test]
fn the_tts_share_leaves_out_the_emulators_leading_silence_and_chunk_gaps() {
    // 120 ms of leading silence in 100 ms chunks 60 ms apart: the first audible sample is
    // in the second chunk, 60 ms after the first.
    let emulator = r#"
[emulator.tts]
ttfb = { dist = "constant", ms = 30.0 }
chunk_ms = 100
chunk_gap = { dist = "constant", ms = 60.0 }
leading_silence_ms = 120
"#;
    let (manifest, turns, _) = run(emulator, 3, "2");
    let (p50, p99, n) = share(&manifest, "tts");
    assert!(
        n as usize >= turns.len() * 9 / 10,
        "{n} of {} turns",
        turns.len()
    );
    assert!(
        p50 < 15.0,
        "latlab's TTS share p50 {p50:.1} ms (p99 {p99:.1}) is the 60 ms chunk gap, not latlab"
    );
}

#[test]
fn a_request_queued_behind_the_calls_previous_one_is_the_systems_time() {
    // A slow LLM (replies of 10–20 tokens, 250 ms apart) and turns 1–1.5 s apart at speed 4:
    // each turn's request is ready while the previous reply is still streaming.
    let emulator = r#"
[emulator.llm]
ttft = { dist = "constant", ms = 50.0 }
inter_token = { dist = "constant", ms = 250.0 }
"#;
    let (manifest, turns, stdout) = run(emulator, 3, "4");
    let (p50, p99, n) = share(&manifest, "llm");
    let wait = &manifest["llm_queue_wait"];
    assert!(
        p99 < 50.0,
        "latlab's LLM share p50 {p50:.1} ms, p99 {p99:.1} ms (n {n}) holds the agent's queue wait: {wait}"
    );
    let waited = wait["waited"]["count"].as_u64().unwrap();
    let wait_p50 = wait["waited"]["p50_ns"].as_u64().unwrap() as f64 / 1e6;
    assert!(waited >= 3, "{wait}");
    assert!(wait_p50 > 200.0, "{wait}");
    assert!(
        p99 < wait_p50 / 4.0,
        "share p99 {p99} ms vs queue wait p50 {wait_p50} ms"
    );
    // Each timeline says when its request was ready, how long it queued, and when it went.
    let sent: Vec<&serde_json::Value> = turns
        .iter()
        .filter(|t| !t["llm_request_sent_ns"].is_null())
        .collect();
    assert_eq!(wait["requests"].as_u64().unwrap() as usize, sent.len());
    for t in sent {
        let ns = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k}: {t:#}"));
        let (fin, queued, wait, sent) = (
            ns("final_transcript_ns"),
            ns("llm_queued_ns"),
            ns("llm_queue_wait_ns"),
            ns("llm_request_sent_ns"),
        );
        assert!(fin <= queued && queued + wait <= sent, "{t:#}");
    }
    assert!(stdout.contains("LLM queue wait"), "{stdout}");
}
