//! Helpers shared by the tests that drive the real `latlab` binary.
#![allow(dead_code)] // each test crate uses some of them

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `latlab` binary under test.
pub fn latlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latlab"))
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs latlab expecting success; returns its output.
pub fn run_ok(args: &[&str]) -> Output {
    let out = latlab().args(args).output().expect("latlab runs");
    assert!(
        out.status.success(),
        "latlab {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs latlab expecting a usage or data error (exit 2); returns what it printed on stderr.
pub fn run_fails(args: &[&str]) -> String {
    let out = latlab().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "latlab {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `latlab gate` and returns (exit code, stdout, stderr).
pub fn gate(args: &[&str]) -> (i32, String, String) {
    let out = latlab().arg("gate").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Writes a scenario over the smoke dataset with the given profiles and emulator extras.
pub fn scenario(dir: &Path, profiles: &str, calls: usize, emulator: &str) -> PathBuf {
    let dataset = root().join("datasets/smoke");
    let text = format!(
        r#"
name = "t"
dataset = "{}"
seed = 5
calls = {calls}
concurrency = {calls}
stagger_ms = 20

[backends.stt]
kind = "deepgram"
base_url = "emulator"

[backends.llm]
kind = "openai"
base_url = "emulator"

[backends.tts]
kind = "elevenlabs"
base_url = "emulator"
output_format = "wav_16000"

[limits]
stall_timeout_ms = 800

{profiles}

{emulator}
"#,
        dataset.display()
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every line of a JSON-lines file.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Spans grouped by (profile, call, iteration, turn).
pub fn by_turn(
    spans: &[latlab_core::timing::Span],
) -> std::collections::BTreeMap<(String, String, u32, u32), Vec<&latlab_core::timing::Span>> {
    let mut m: std::collections::BTreeMap<_, Vec<&latlab_core::timing::Span>> =
        std::collections::BTreeMap::new();
    for s in spans {
        m.entry((s.profile.clone(), s.call.clone(), s.iteration, s.turn))
            .or_default()
            .push(s);
    }
    m
}

/// Whether `ffmpeg` and `ffprobe` (the video lane's decoder) are installed. `.ci/run` installs
/// them and sets `LATLAB_REQUIRE_TOOLS=1`, which makes their absence a failure; elsewhere the
/// video tests say so and pass.
pub fn ffmpeg_here() -> bool {
    let here = ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !here {
        assert!(
            std::env::var("LATLAB_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "ffmpeg/ffprobe are not installed (see .ci/run)"
        );
        eprintln!("skipping: ffmpeg/ffprobe are not installed (.ci/run installs them)");
    }
    here
}

/// Sends SIGINT to `child` once `log` holds at least `lines` lines (or after 60 s), and
/// returns when it was sent: how the interrupt tests stop a run mid-way (Unix `kill`).
pub fn interrupt_after_lines(
    child: &std::process::Child,
    log: &Path,
    lines: usize,
) -> std::time::Instant {
    let started = std::time::Instant::now();
    while std::fs::read_to_string(log).map_or(0, |s| s.lines().count()) < lines
        && started.elapsed().as_secs() < 60
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let signalled = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    signalled
}

/// Whether Debian's `redis-server` is installed (the tool cache's `redis` profiles start it).
/// `.ci/run` installs it and sets `LATLAB_REQUIRE_TOOLS=1`, which makes its absence a failure.
pub fn redis_here() -> bool {
    let here = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        assert!(
            std::env::var("LATLAB_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "redis-server is not installed (see .ci/run)"
        );
        eprintln!("skipping: redis-server is not installed (.ci/run installs it)");
    }
    here
}

/// Process ids of `redis-server`s listening on `port` (from /proc: their command line names it).
pub fn redis_servers_on(port: u16) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("redis-server") && text.contains(&format!(":{port}")) {
            out.push(pid);
        }
    }
    out
}
