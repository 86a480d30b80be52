//! Agent runs: the `latlab` binary calls latlab's emulated agent (a real WebSocket server on
//! loopback) as its caller, over Twilio Media Streams and binary PCM, and measures each turn
//! at the caller's ear; faults become typed turn errors and the run completes.

mod common;

use common::{latlab, read_json, read_jsonl, root};
use latlab_core::timing::{ErrorKind, Interruption, Outcome, TurnTimeline};

/// An agent scenario over the smoke dataset: `agent` is the `[agent]` table's body, `rest`
/// anything after it (profiles' overrides, `[emulator.agent]`).
fn scenario(dir: &std::path::Path, calls: usize, agent: &str, rest: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        "name = \"agent-test\"\ndataset = \"{}\"\nseed = 7\ncalls = {calls}\nconcurrency = {calls}\n\
         run_profiles = [\"recorded\", \"barge-in\"]\n[profiles.recorded]\n[profiles.barge-in]\n\
         [agent]\nurl = \"emulator\"\nself_report = \"emulator\"\n{agent}\n{rest}",
        root().join("datasets/smoke").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run(
    path: &std::path::Path,
    out: &std::path::Path,
    envs: &[(&str, &str)],
) -> std::process::Output {
    latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .envs(envs.iter().copied())
        .output()
        .expect("latlab runs")
}

const TIMINGS: &str = "[emulator.agent]\nendpointing_ms = 500\n\
    response = { dist = \"constant\", ms = 300.0 }\nleading_silence_ms = 60\n\
    reply_ms = { dist = \"constant\", ms = 1200.0 }\n";

#[test]
fn an_agent_is_measured_at_the_callers_ear_and_its_own_view_lines_up() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let path = scenario(
        tmp.path(),
        3,
        "",
        &format!(
            "[agent.profile.barge-in]\nbarge_in_after_ms = 600\n{TIMINGS}barge_in = \"clear\"\n"
        ),
    );
    let output = run(&path, &out, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("AGENT (at the caller's ear)"), "{stdout}");

    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    // Calls 1–3 have 2, 3 and 2 turns; both profiles.
    assert_eq!(turns.len(), 14);
    let recorded: Vec<&TurnTimeline> = turns.iter().filter(|t| t.profile == "recorded").collect();
    for t in &recorded {
        assert_eq!(t.outcome, Outcome::Ok, "{t:#?}");
        let a = t.agent.as_ref().unwrap();
        // The emulated agent answers 500 ms of silence + 300 ms after its own end of turn,
        // with 60 ms of leading silence: ~860 ms from the labelled end, give or take where its
        // level detector put the end (the labels are within a few hundred ms of it).
        let v2v = t.voice_to_voice_ns.unwrap() as f64 / 1e6;
        assert!((500.0..1_300.0).contains(&v2v), "{v2v} ms: {t:#?}");
        let lead = a.lead_ms.unwrap();
        assert!((55.0..=80.0).contains(&lead), "{lead}");
        let reply = a.reply_ms.unwrap();
        // 1200 ms of speech; a busy machine can make the emulator send a little late.
        assert!((1_100.0..=1_600.0).contains(&reply), "{reply}");
        assert!(!a.dead_air && !a.false_cutoff && a.gaps <= 1, "{a:?}");
        assert_eq!(a.interruption_ns, None);
        // The emulator reports its endpoint → first chunk time: 300 ms. The caller waited
        // for its 500 ms of endpointing silence, the leading silence and transport besides.
        let own = a.self_ns.expect("aligned with the emulator's self-report") as f64 / 1e6;
        assert!((295.0..450.0).contains(&own), "{own}");
        assert!(v2v - own > 250.0, "unseen {} ms", v2v - own);
        assert_eq!(
            t.tts_first_audible_ns.unwrap() - t.tts_first_byte_ns.unwrap(),
            (lead * 1e6).round() as u64
        );
    }
    // With the caller talking 600 ms into each reply, every later turn interrupts, and the
    // agent yields with a clear ~200 ms (barge-in detection) + ~100 ms later.
    let interrupted: Vec<&TurnTimeline> = turns
        .iter()
        .filter(|t| t.profile == "barge-in" && t.turn > 0)
        .collect();
    assert_eq!(interrupted.len(), 4);
    for t in interrupted {
        let a = t.agent.as_ref().unwrap();
        assert_eq!(a.interruption_by, Some(Interruption::Clear), "{t:#?}");
        let ms = a.interruption_ns.unwrap() as f64 / 1e6;
        assert!((150.0..700.0).contains(&ms), "{ms}");
        // The turn was scheduled off the previous reply: its start is 600 ms after that
        // reply's first audible sample.
        let prev = turns
            .iter()
            .find(|p| p.profile == "barge-in" && p.call == t.call && p.turn == t.turn - 1)
            .unwrap();
        let onset = prev.tts_first_audible_ns.unwrap();
        assert_eq!(t.user_start_scheduled_ns, onset + 600_000_000, "{t:#?}");
    }

    let manifest = read_json(&out.join("manifest.json"));
    let agent = &manifest["agent"];
    assert_eq!(agent["protocol"], "twilio");
    assert_eq!(agent["self_report"]["aligned_turns"], 14);
    assert_eq!(agent["self_report"]["unaligned_calls"], 0);
    assert!(agent["url"].as_str().unwrap().ends_with("/twilio"));
    let summary = read_json(&out.join("summary.json"));
    assert!(
        summary["agent"]["profiles"].as_array().unwrap().len() == 2,
        "{}",
        summary["agent"]
    );
}

#[test]
fn every_fault_of_the_agent_is_a_typed_turn_error_and_the_run_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let path = scenario(
        tmp.path(),
        12,
        "answer_timeout_ms = 3000",
        &format!(
            "{TIMINGS}faults = {{ refuse = 0.15, close = 0.15, malformed = 0.15, never_answer = 0.15 }}\n"
        ),
    );
    let output = run(&path, &out, &[]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    // Every turn of every call of both profiles is recorded, whatever happened to it.
    let expected: usize = [2, 3, 2, 3, 4, 2, 4, 3, 3, 3, 2, 2].iter().sum::<usize>() * 2;
    assert_eq!(turns.len(), expected);
    let kinds: std::collections::HashSet<ErrorKind> = turns
        .iter()
        .filter_map(|t| t.error.as_ref().map(|e| e.kind))
        .collect();
    for kind in [
        ErrorKind::Http,
        ErrorKind::Disconnected,
        ErrorKind::Protocol,
        ErrorKind::NoAnswer,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} not among {kinds:?}");
    }
    for t in &turns {
        match t.error.as_ref().map(|e| e.kind) {
            None => assert!(t.voice_to_voice_ns.is_some() && t.outcome == Outcome::Ok),
            Some(ErrorKind::Http) => {
                assert_eq!(t.error.as_ref().unwrap().status, Some(503));
                assert_eq!(t.voice_to_voice_ns, None);
            }
            Some(ErrorKind::NoAnswer) => assert!(t.agent.as_ref().unwrap().dead_air, "{t:#?}"),
            Some(ErrorKind::Disconnected | ErrorKind::Protocol) => {}
            Some(other) => panic!("unexpected {other:?}: {t:#?}"),
        }
    }
    assert!(turns.iter().filter(|t| t.outcome == Outcome::Ok).count() >= expected / 3);
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
}

#[test]
fn the_pcm_protocol_carries_16_khz_and_keys_never_reach_the_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let path = scenario(
        tmp.path(),
        2,
        "protocol = \"pcm\"\nsample_rate = 16000\napi_key_env = \"LATLAB_TEST_AGENT_KEY\"",
        TIMINGS,
    );
    let secret = "sk-agent-test-7f3a9c";
    let output = run(&path, &out, &[("LATLAB_TEST_AGENT_KEY", secret)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    assert_eq!(turns.len(), 10);
    assert!(turns.iter().all(|t| t.outcome == Outcome::Ok), "{turns:#?}");
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["agent"]["sample_rate"], 16000);
    assert!(manifest["agent"]["url"].as_str().unwrap().contains("/pcm"));
    assert!(!manifest["agent"]["url"].as_str().unwrap().contains('?'));
    for entry in walk(&out) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the key",
            entry.display()
        );
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
}

#[test]
fn an_agent_that_is_not_listening_fails_every_turn_with_connect_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = tmp.path().join("down.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"down\"\ndataset = \"{}\"\ncalls = 2\n[agent]\nurl = \"ws://127.0.0.1:{port}/ws\"\n",
            root().join("datasets/smoke").display()
        ),
    )
    .unwrap();
    let output = run(&path, &out, &[]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    assert_eq!(turns.len(), 5);
    assert!(
        turns
            .iter()
            .all(|t| t.error.as_ref().unwrap().kind == ErrorKind::Connect)
    );
}

#[test]
fn a_bad_agent_section_names_the_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"bad\"\ndataset = \"{}\"\n\n[agent]\nurl = \"http://agent.example/ws?token=SECRET\"\n",
            root().join("datasets/smoke").display()
        ),
    )
    .unwrap();
    let err = common::run_fails(&["run", path.to_str().unwrap()]);
    assert!(
        err.contains("bad.toml") && err.contains("agent.url"),
        "{err}"
    );
    assert!(err.contains("bad.toml:5:"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
