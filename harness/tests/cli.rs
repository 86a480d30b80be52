//! The real `latlab` binary against the real emulator on loopback: the smoke suite, the
//! endpointing knob, injected faults, bad input and a killed run.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use latlab_core::timing::{ErrorKind, Outcome, Span, Stage, TurnTimeline};

mod common;
use common::{by_turn, latlab, read_json, read_jsonl, root, run_fails, run_ok, scenario};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn parquet_rows(path: &Path) -> i64 {
    SerializedFileReader::new(File::open(path).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn the_smoke_suite_times_every_stage_of_every_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("smoke");
    let scenario = root().join("scenarios/smoke.toml");
    let out = run_ok(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "voice-to-voice",
        "conservative",
        "balanced",
        "aggressive",
        "p95 ms",
        "results: ",
    ] {
        assert!(
            stdout.contains(needle),
            "summary lacks {needle:?}:\n{stdout}"
        );
    }

    let spans: Vec<Span> = read_jsonl(&out_dir.join("spans.jsonl"));
    let turns: Vec<TurnTimeline> = read_jsonl(&out_dir.join("turns.jsonl"));
    let dataset_turns = 29;
    assert_eq!(turns.len(), 3 * dataset_turns);
    let grouped = by_turn(&spans);
    assert_eq!(grouped.len(), 3 * dataset_turns);
    for (key, spans) in &grouped {
        let stages: BTreeSet<Stage> = spans.iter().map(|s| s.stage).collect();
        assert_eq!(stages, Stage::ALL.into_iter().collect(), "{key:?}");
    }
    assert_eq!(
        parquet_rows(&out_dir.join("spans.parquet")),
        spans.len() as i64
    );
    assert_eq!(
        parquet_rows(&out_dir.join("turns.parquet")),
        turns.len() as i64
    );
    assert!(
        std::fs::read_to_string(out_dir.join("latency.hlog"))
            .unwrap()
            .contains("balanced.turn")
    );

    // Voice-to-voice is the first audible sample minus the scheduled end of user speech.
    let ok: Vec<&TurnTimeline> = turns.iter().filter(|t| t.outcome == Outcome::Ok).collect();
    assert!(
        ok.len() >= turns.len() * 9 / 10,
        "{} of {} turns ok",
        ok.len(),
        turns.len()
    );
    for t in &ok {
        let v2v = t.tts_first_audible_ns.unwrap() as i64 - t.user_end_scheduled_ns as i64;
        assert_eq!(t.voice_to_voice_ns, Some(v2v));
        let span = grouped[&(t.profile.clone(), t.call.clone(), t.iteration, t.turn)]
            .iter()
            .find(|s| s.stage == Stage::Turn)
            .unwrap();
        assert_eq!(span.latency_ns, Some(v2v));
        assert_eq!(span.scheduled_ns, t.user_end_scheduled_ns);
    }

    let manifest: serde_json::Value = read_json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["schema_version"], 1);
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["seed"], 42);
    assert_eq!(manifest["counts"]["turns"], 3 * dataset_turns);
    assert_eq!(manifest["dataset"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(manifest["scenario"]["sha256"].as_str().unwrap().len(), 64);
    assert!(manifest["host"]["cores"].as_u64().unwrap() >= 1);
    assert!(manifest["pacing"]["frames"].as_u64().unwrap() > 10_000);

    // The report and everything beside it.
    for file in [
        "report.html",
        "summary.md",
        "summary.json",
        "cdf.png",
        "waterfall.png",
        "over_time.png",
        "pareto.png",
    ] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    assert!(stdout.contains("report: "));
    let summary = read_json(&out_dir.join("summary.json"));
    let schema = read_json(&root().join("docs/schemas/summary.schema.json"));
    for key in schema["required"].as_array().unwrap() {
        assert!(
            summary.get(key.as_str().unwrap()).is_some(),
            "summary.json lacks {key}"
        );
    }
    let rows = summary["summary"].as_array().unwrap();
    assert_eq!(rows.len(), 15, "3 profiles × 5 stages");
    check_in_browser(&out_dir.join("report.html"));
    execute_notebook(&out_dir);
    assert!(
        rows.iter()
            .all(|r| r["count"].as_u64().unwrap() + r["errors"].as_u64().unwrap() > 0)
    );
    // Every key the checked-in schema requires is there.
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("docs/schemas/run-manifest.schema.json")).unwrap(),
    )
    .unwrap();
    for key in schema["required"].as_array().unwrap() {
        assert!(
            manifest.get(key.as_str().unwrap()).is_some(),
            "manifest lacks {key}"
        );
    }
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        manifest["schema_version"]
    );

    // The measurement of the measurer: latlab's own share of each stage, from the
    // emulator's wire trace, stands on every turn and is a small part of the stage.
    let measurer = manifest["measurer"].as_array().expect("manifest measurer");
    let stages: Vec<&str> = measurer
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["endpoint", "stt", "llm", "tts"]);
    for s in measurer {
        let stage = s["stage"].as_str().unwrap();
        let ns = |k: &str| s["share"][k].as_u64().unwrap();
        assert!(
            ns("count") >= 3 * dataset_turns as u64,
            "{stage}: share over {} turns: {s}",
            ns("count")
        );
        assert!(
            0 < ns("p50_ns") && ns("p50_ns") <= ns("p99_ns") && ns("p99_ns") <= ns("max_ns"),
            "{s}"
        );
        let stage_p50_ms = rows
            .iter()
            .filter(|r| r["stage"] == stage)
            .map(|r| r["p50"]["value"].as_f64().unwrap())
            .fold(f64::INFINITY, f64::min);
        assert!(
            (ns("p50_ns") as f64 / 1e6) < stage_p50_ms,
            "{stage}: latlab's share is not below the stage's latency ({stage_p50_ms} ms): {s}"
        );
    }
    assert!(
        stdout.contains("latlab's own share, p50/p99: endpoint "),
        "{stdout}"
    );
}

#[test]
fn raising_the_endpointing_knob_by_300_ms_moves_the_endpoint_by_300_ms() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = r#"
[profiles.short]
endpointing_ms = 200
[profiles.long]
endpointing_ms = 500
"#;
    let path = scenario(tmp.path(), profiles, 4, "");
    // Two runs, one per profile: the same seed gives both the same service timings.
    let run = |profile: &str| {
        let out = tmp.path().join(profile);
        run_ok(&[
            "run",
            path.to_str().unwrap(),
            "--profile",
            profile,
            "--out",
            out.to_str().unwrap(),
            "-q",
            "--no-report",
        ]);
        out
    };
    let (short, long) = (run("short"), run("long"));
    let endpoint_ms = |dir: &Path| {
        let spans: Vec<Span> = read_jsonl(&dir.join("spans.jsonl"));
        median(
            spans
                .iter()
                .filter(|s| s.stage == Stage::Endpoint && s.outcome == Outcome::Ok)
                .map(|s| s.latency_ns.unwrap() as f64 / 1e6)
                .collect(),
        )
    };
    let moved = endpoint_ms(&long) - endpoint_ms(&short);
    assert!(
        (250.0..350.0).contains(&moved),
        "endpoint moved by {moved} ms"
    );

    // `latlab compare` reports the difference, and its interval holds the 300 ms.
    let html = tmp.path().join("compare/report.html");
    let out = run_ok(&[
        "compare",
        short.to_str().unwrap(),
        long.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("B − A ms"));
    let summary = read_json(&tmp.path().join("compare/summary.json"));
    let row = summary["comparison"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stage"] == "endpoint" && r["statistic"] == "p50")
        .unwrap()
        .clone();
    let (value, lo, hi) = (
        row["diff"]["value"].as_f64().unwrap(),
        row["diff"]["lo"].as_f64().unwrap(),
        row["diff"]["hi"].as_f64().unwrap(),
    );
    assert!((250.0..350.0).contains(&value), "{row:#}");
    assert!(lo <= 300.0 && 300.0 <= hi, "CI [{lo}, {hi}] misses 300 ms");
    assert!(html.exists());
}

#[test]
fn failing_backends_become_typed_errors_and_no_turn_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = r#"
[emulator.llm.faults]
http_5xx = 0.10
disconnect = 0.05
stall = 0.05

[emulator.tts.faults]
disconnect = 0.05
"#;
    let path = scenario(
        tmp.path(),
        "[profiles.balanced]\nendpointing_ms = 300",
        20,
        emulator,
    );
    let out_dir = tmp.path().join("out");
    run_ok(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
    ]);
    let spans: Vec<Span> = read_jsonl(&out_dir.join("spans.jsonl"));
    let turns: Vec<TurnTimeline> = read_jsonl(&out_dir.join("turns.jsonl"));
    // 20 calls = the 12 smoke calls (33 turns), then calls 01–08 again (23 turns): 56 turns,
    // each with all six spans.
    assert_eq!(turns.len(), 56);
    let grouped = by_turn(&spans);
    assert_eq!(grouped.len(), 56);
    assert!(grouped.values().all(|s| s.len() == 6));

    let errors = |stage: Stage| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.stage == stage && s.outcome == Outcome::Error)
            .collect()
    };
    let llm = errors(Stage::Llm);
    assert!(
        (3..=25).contains(&llm.len()),
        "{} LLM errors of 56",
        llm.len()
    );
    for s in &llm {
        let e = s.error.as_ref().unwrap();
        assert!(
            matches!(
                e.kind,
                ErrorKind::Http | ErrorKind::Disconnected | ErrorKind::Stall
            ),
            "{e:?}"
        );
        if e.kind == ErrorKind::Http {
            assert_eq!(e.status, Some(503));
        }
    }
    for s in errors(Stage::Tts) {
        assert_eq!(s.error.as_ref().unwrap().kind, ErrorKind::Disconnected);
    }
    // A turn fails exactly when one of its stages failed, and says why.
    for t in &turns {
        let key = (t.profile.clone(), t.call.clone(), t.iteration, t.turn);
        let stage_failed = grouped[&key]
            .iter()
            .any(|s| s.stage != Stage::Turn && s.outcome == Outcome::Error);
        assert_eq!(t.outcome == Outcome::Error, stage_failed, "{t:#?}");
        assert_eq!(t.error.is_some(), stage_failed);
    }
    // A failed LLM leaves TTS skipped, not silently missing.
    for s in &llm {
        let tts = grouped[&(s.profile.clone(), s.call.clone(), s.iteration, s.turn)]
            .iter()
            .find(|x| x.stage == Stage::Tts)
            .unwrap();
        assert!(matches!(
            tts.outcome,
            Outcome::Skipped | Outcome::Ok | Outcome::Error
        ));
    }
    let manifest: serde_json::Value = read_json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert!(
        manifest["emulator"]["llm"]["faults"]["http_5xx"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn a_run_in_which_every_turn_failed_says_why_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    // A port that refuses connections: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 2, "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[backends.llm]\nkind = \"openai\"\nbase_url = \"emulator\"",
        &format!("[backends.llm]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\""),
    );
    assert!(text.contains(&port.to_string()));
    std::fs::write(&path, text).unwrap();
    let out_dir = tmp.path().join("out");
    let out = latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--speed",
            "4",
            "-q",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("no turn succeeded"), "{stderr}");
    // Quiet or not, the terminal says which stage failed, how, how often, with an example.
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("llm: connect × "))
        .unwrap_or_else(|| panic!("no LLM error line:\n{stdout}"));
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    // So do the report and its JSON, from the same model.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("Errors by stage") && html.contains(&format!("127.0.0.1:{port}")));
    let summary = read_json(&out_dir.join("summary.json"));
    let errors = summary["errors"].as_array().unwrap();
    let llm = errors.iter().find(|e| e["stage"] == "llm").unwrap();
    assert_eq!(llm["kind"], "connect");
    let spans: Vec<Span> = read_jsonl(&out_dir.join("spans.jsonl"));
    let failed_llm = spans
        .iter()
        .filter(|s| s.stage == Stage::Llm && s.outcome == Outcome::Error)
        .count();
    assert!(failed_llm > 0);
    assert_eq!(llm["count"].as_u64().unwrap() as usize, failed_llm);
    let turns: Vec<TurnTimeline> = read_jsonl(&out_dir.join("turns.jsonl"));
    assert!(turns.iter().all(|t| t.outcome == Outcome::Error));
}

/// Only a build without `local-stt` runs this (`cargo test -p latlab-harness
/// --no-default-features --test cli`); the unit test `scenario::tests::
/// a_backend_kind_this_build_left_out_names_its_feature` covers the logic in every build.
#[cfg(not(feature = "local-stt"))]
#[test]
fn a_local_backend_this_build_left_out_names_its_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "", 1, "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[backends.stt]\nkind = \"deepgram\"\nbase_url = \"emulator\"",
        "[backends.stt]\nkind = \"whisper\"\nmodel = \"tiny.en\"",
    );
    std::fs::write(&path, text).unwrap();
    let err = run_fails(&["run", path.to_str().unwrap()]);
    assert!(
        err.contains("scenario.toml")
            && err.contains("unknown variant `whisper`")
            && err.contains("--features local-stt"),
        "{err}"
    );
}

#[test]
fn a_bad_scenario_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = \"soon\"", 1, "");
    let err = run_fails(&["run", path.to_str().unwrap()]);
    assert!(
        err.contains("scenario.toml") && err.contains("endpointing_ms") && err.contains("line 2"),
        "{err}"
    );

    assert!(run_fails(&["run", "/nonexistent/s.toml"]).contains("/nonexistent/s.toml"));
}

#[test]
fn a_bad_dataset_names_the_manifest_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(
        root().join("datasets/smoke/call-01.wav"),
        data.join("a.wav"),
    )
    .unwrap();
    std::fs::write(
        data.join("manifest.jsonl"),
        r#"{"id":"a","audio":"a.wav","sample_rate":8000,"turns":[{"start_ms":0,"end_ms":10,"text":"x"}]}"#,
    )
    .unwrap();
    let path = scenario(tmp.path(), "", 1, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        &root().join("datasets/smoke").display().to_string(),
        &data.display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    let err = run_fails(&["run", path.to_str().unwrap()]);
    assert!(
        err.contains("manifest.jsonl:1") && err.contains("sample rate is 16000 Hz"),
        "{err}"
    );
}

#[test]
fn a_killed_run_leaves_spans_that_recover_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 10, "");
    let out_dir = tmp.path().join("out");
    let mut child = latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "-q",
        ])
        .spawn()
        .unwrap();
    // Wait until a few turns are logged, then SIGKILL mid-run.
    let log = out_dir.join("spans.jsonl");
    let started = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if lines >= 20 || started.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let logged: Vec<Span> = read_jsonl(&log);
    assert!(
        logged.len() >= 20 && logged.len() < 29 * 5,
        "{} spans logged",
        logged.len()
    );
    assert!(!out_dir.join("spans.parquet").exists());
    let manifest: serde_json::Value = read_json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["status"], "running");

    run_ok(&["recover", out_dir.to_str().unwrap()]);
    assert_eq!(
        parquet_rows(&out_dir.join("spans.parquet")),
        logged.len() as i64
    );
    let manifest: serde_json::Value = read_json(&out_dir.join("manifest.json"));
    assert_eq!(manifest["status"], "recovered");
    let out = run_ok(&["show", out_dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("voice-to-voice"));
}

#[test]
fn api_keys_from_the_environment_reach_the_server_and_nothing_else() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let key = "sk-latlab-test-7f3a9c1e5b";
    let config = tmp.path().join("emulator.toml");
    std::fs::write(
        &config,
        format!(
            "dataset = \"{}\"\nseed = 3\n[stt]\napi_key = \"{key}\"\n[llm]\napi_key = \"{key}\"\n[tts]\napi_key = \"{key}\"\n",
            root().join("datasets/smoke").display()
        ),
    )
    .unwrap();
    let mut emulator = latlab()
        .args(["emulate", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(emulator.stdout.take().unwrap()).lines();
    let mut url = |prefix: &str, suffix: &str| -> String {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(prefix)
            .unwrap()
            .strip_suffix(suffix)
            .unwrap()
            .to_string()
    };
    let stt = url("stt: ", "/v1/listen");
    let llm = url("llm: ", "/chat/completions");
    let tts = url("tts: ", "/v1/text-to-speech/{voice_id}/stream");

    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 2, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replacen(
            "base_url = \"emulator\"",
            &format!("base_url = \"{stt}\"\napi_key_env = \"LATLAB_TEST_KEY\""),
            1,
        )
        .replacen(
            "base_url = \"emulator\"",
            &format!("base_url = \"{llm}\"\napi_key_env = \"LATLAB_TEST_KEY\""),
            1,
        )
        .replacen(
            "base_url = \"emulator\"",
            &format!("base_url = \"{tts}\"\napi_key_env = \"LATLAB_TEST_KEY\""),
            1,
        );
    std::fs::write(&path, text).unwrap();
    let out_dir = tmp.path().join("out");
    let out = latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "-q",
        ])
        .env("LATLAB_TEST_KEY", key)
        .output()
        .unwrap();
    emulator.kill().unwrap();
    emulator.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The key worked: turns succeeded against servers that demand it.
    let turns: Vec<TurnTimeline> = read_jsonl(&out_dir.join("turns.jsonl"));
    assert!(turns.iter().filter(|t| t.outcome == Outcome::Ok).count() >= 5);
    // And it appears in no output and no result file.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(key));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(key));
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "{} contains the API key",
            path.display()
        );
    }
}

/// Browsers and notebooks are installed by `.ci/run`, which sets `LATLAB_REQUIRE_TOOLS=1`;
/// on a developer machine without them these checks say so and pass.
fn tool(candidates: &[&str]) -> Option<PathBuf> {
    let found = candidates.iter().find_map(|c| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(c))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("LATLAB_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "none of {candidates:?} is installed (see .ci/run)"
        );
        eprintln!("skipping: none of {candidates:?} is installed (.ci/run installs them)");
    }
    found
}

/// Opens the report in headless Chromium: no console message, no request to any host, and a
/// screenshot to look at.
fn check_in_browser(report: &Path) {
    let Some(chromium) = tool(&["chromium", "chromium-browser", "google-chrome"]) else {
        return;
    };
    let dir = report.parent().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let netlog = dir.join("browser-netlog.json");
    // Kept after the test, for a human to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--disable-quic",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!(
            "file://{}",
            report.canonicalize().unwrap().display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot is empty"
    );
    // Requests the page started (the browser's own update checks have no origin).
    let log = read_json(&netlog);
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    let external: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == start_job && e["params"]["initiator"] != "not an origin")
        .filter_map(|e| e["params"]["url"].as_str())
        .filter(|u| !u.starts_with("file:") && !u.starts_with("data:"))
        .map(str::to_string)
        .collect();
    assert!(
        external.is_empty(),
        "the report made requests: {external:?}"
    );
}

/// Executes the analysis notebook on a results folder.
fn execute_notebook(results: &Path) {
    let Some(jupyter) = tool(&["jupyter"]) else {
        return;
    };
    let out = Command::new(jupyter)
        .args(["nbconvert", "--to", "notebook", "--execute", "--output-dir"])
        .arg(results)
        .arg(root().join("notebooks/explore_results.ipynb"))
        .env("LATLAB_RESULTS", results)
        .env("MPLBACKEND", "Agg")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the notebook failed on {}:\n{}",
        results.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
