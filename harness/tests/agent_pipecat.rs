//! A real voice agent nobody here wrote: the Pipecat bot of `benches/agents/pipecat` (Silero
//! VAD, faster-whisper, Piper, latlab's emulator as its LLM) called over Twilio Media Streams.
//!
//! Runs when the bot's venv and models are present (`.ci/run` installs them:
//! `benches/agents/pipecat/setup.sh`, `python3 models/fetch.py`); elsewhere it says why and
//! passes without calling anything.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{latlab, read_json, read_jsonl, root};
use latlab_core::timing::{Outcome, TurnTimeline};

/// Kills a child process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (at most `within`) for a stdout line containing `marker`; returns
/// the process and that line.
fn start(mut cmd: Command, marker: &str, within: Duration) -> (Running, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&marker) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(within)
        .expect("the process got ready in time");
    (Running(child), line)
}

fn pipecat_here() -> bool {
    let venv = root().join("benches/agents/pipecat/.venv/bin/python");
    let whisper = root().join("models/whisper/faster-tiny.en/model.bin");
    let voice = root().join("models/piper/en_US-joe-medium.onnx");
    let missing: Vec<String> = [&venv, &whisper, &voice]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "skipping the Pipecat agent test: missing {} (run benches/agents/pipecat/setup.sh and python3 models/fetch.py)",
            missing.join(", ")
        );
    }
    missing.is_empty()
}

#[test]
fn a_real_pipecat_bot_is_measured_at_the_callers_ear_beside_its_own_figures() {
    if !pipecat_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // latlab's emulator serves the bot's LLM (OpenAI protocol) on a free port.
    let config = tmp.path().join("emulator.toml");
    std::fs::write(
        &config,
        format!(
            "dataset = \"{}\"\nseed = 1\n",
            root().join("datasets/smoke").display()
        ),
    )
    .unwrap();
    let mut emulate = latlab();
    emulate.args(["emulate", "--config", config.to_str().unwrap()]);
    let (_emulator, line) = start(emulate, "llm: ", Duration::from_secs(30));
    let llm = line
        .trim_start_matches("llm: ")
        .trim_end_matches("/chat/completions")
        .to_string();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let self_report = tmp.path().join("self-report.jsonl");
    let mut bot = Command::new(root().join("benches/agents/pipecat/run.sh"));
    bot.args([
        "--port",
        &port.to_string(),
        "--llm-url",
        &llm,
        "--self-report",
        self_report.to_str().unwrap(),
    ]);
    let started = Instant::now();
    let (_bot, _) = start(bot, "READY", Duration::from_secs(180));
    eprintln!("the Pipecat bot was ready in {:?}", started.elapsed());

    let scenario = tmp.path().join("pipecat.toml");
    let text = std::fs::read_to_string(root().join("scenarios/agent-pipecat.toml"))
        .unwrap()
        .replace(
            "\"../datasets/smoke\"",
            &format!("\"{}\"", root().join("datasets/smoke").display()),
        )
        .replace("calls = 12", "calls = 2")
        .replace(
            "ws://127.0.0.1:8765/ws",
            &format!("ws://127.0.0.1:{port}/ws"),
        )
        .replace(
            "\"../results/pipecat-self-report.jsonl\"",
            &format!("\"{}\"", self_report.display()),
        );
    std::fs::write(&scenario, text).unwrap();
    let out = tmp.path().join("run");
    let run = latlab()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Calls 1 and 2 of the smoke dataset: 2 + 3 turns, all recorded whatever happened.
    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    assert_eq!(turns.len(), 5);
    let answered: Vec<&TurnTimeline> = turns.iter().filter(|t| t.outcome == Outcome::Ok).collect();
    assert!(answered.len() >= 3, "{turns:#?}");
    for t in &answered {
        let v2v = t.voice_to_voice_ns.unwrap() as f64 / 1e6;
        // Silero's stop delay, Whisper on the CPU, the LLM, Piper: well over 200 ms.
        assert!((200.0..9_000.0).contains(&v2v), "{v2v} ms: {t:#?}");
        let a = t.agent.as_ref().unwrap();
        assert!(a.reply_ms.unwrap() > 300.0, "{a:?}");
    }
    // Where Pipecat's own figure lines up, the caller heard the bot later than Pipecat says:
    // its clock starts after its VAD's stop delay and stops when audio leaves, not when it
    // is heard.
    let own: Vec<(f64, f64)> = answered
        .iter()
        .filter_map(|t| {
            Some((
                t.voice_to_voice_ns? as f64 / 1e6,
                t.agent.as_ref()?.self_ns? as f64 / 1e6,
            ))
        })
        .collect();
    let manifest = read_json(&out.join("manifest.json"));
    let report = &manifest["agent"]["self_report"];
    assert_eq!(report["reporter"], "pipecat", "{report}");
    eprintln!("caller v2v vs Pipecat's own (ms): {own:?}");
    // Pipecat starts its clock at its own estimate of the caller's end (its VAD's decision less
    // its stop delay), which can fall a little before or after the dataset's label: a turn may
    // come out a few ms either way, the turns together clearly later.
    for (v2v, pipecat) in &own {
        assert!(
            v2v > &(pipecat - 50.0),
            "caller {v2v} ms is well under Pipecat's {pipecat} ms"
        );
    }
    if !own.is_empty() {
        let mean = own.iter().map(|(v, p)| v - p).sum::<f64>() / own.len() as f64;
        assert!(mean > 0.0, "mean unseen {mean} ms: {own:?}");
    }
    assert!(stdout.contains("AGENT (at the caller's ear)"), "{stdout}");
}
