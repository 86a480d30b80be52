//! LLM tool calls through the real clients: the OpenAI client streams the emulator's tool call,
//! the tool client calls the emulator's company API, and a profile's cache — none, in-process,
//! or a real Redis that latlab starts and always stops — answers repeated calls. Cache hits and
//! misses are counted exactly against the dataset's repeats; faults become typed turn errors.

mod common;

use std::collections::HashSet;

use common::{latlab, read_json, read_jsonl, redis_here, redis_servers_on, root};
use latlab_core::dataset::Dataset;
use latlab_core::timing::{CacheOutcome, ErrorKind, Outcome, Span, Stage, TurnTimeline};

/// `scenarios/tools.toml` with absolute paths, `calls` calls and `rest` appended.
fn scenario(dir: &std::path::Path, calls: usize, profiles: &str, rest: &str) -> std::path::PathBuf {
    let path = dir.join("tools.toml");
    let text = std::fs::read_to_string(root().join("scenarios/tools.toml"))
        .unwrap()
        .replace(
            "\"../datasets/tools\"",
            &format!("\"{}\"", root().join("datasets/tools").display()),
        )
        .replace(
            "\"../datasets/tools/tools.json\"",
            &format!("\"{}\"", root().join("datasets/tools/tools.json").display()),
        )
        .replace("calls = 24", &format!("calls = {calls}"))
        .replace(
            "run_profiles = [\"none\", \"memory\", \"redis\"]",
            &format!("run_profiles = {profiles}"),
        );
    std::fs::write(&path, format!("{text}\n{rest}")).unwrap();
    path
}

fn run(args: &[&str]) -> std::process::Output {
    latlab().args(args).output().expect("latlab runs")
}

/// (tool turns, distinct calls) among the dataset's first `calls` calls.
fn expected_calls(calls: usize) -> (usize, usize) {
    let data = Dataset::load(&root().join("datasets/tools")).unwrap();
    let mut seen = HashSet::new();
    let mut turns = 0;
    for call in data.calls.iter().take(calls) {
        for t in &call.turns {
            if let Some(tool) = &t.tool {
                turns += 1;
                seen.insert((
                    tool.name.clone(),
                    serde_json::Value::Object(tool.arguments.clone()).to_string(),
                ));
            }
        }
    }
    (turns, seen.len())
}

#[test]
fn tool_turns_are_timed_and_every_cache_hit_is_counted() {
    let redis = redis_here();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let profiles = if redis {
        "[\"none\", \"memory\", \"redis\"]"
    } else {
        "[\"none\", \"memory\"]"
    };
    let path = scenario(tmp.path(), 6, profiles, "");
    let output = run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--speed",
        "4",
        "-q",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (tool_turns, distinct) = expected_calls(6);
    assert!(tool_turns > distinct, "the first 6 calls repeat a call");
    let spans: Vec<Span> = read_jsonl(&out.join("spans.jsonl"));
    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    for profile in ["none", "memory", "redis"]
        .iter()
        .filter(|p| redis || **p != "redis")
    {
        let tools: Vec<&Span> = spans
            .iter()
            .filter(|s| {
                s.profile == *profile && s.stage == Stage::Tool && s.outcome != Outcome::Skipped
            })
            .collect();
        assert_eq!(tools.len(), tool_turns, "{profile}");
        assert!(
            tools.iter().all(|s| s.outcome == Outcome::Ok),
            "{profile}: {tools:#?}"
        );
        let count = |c| tools.iter().filter(|s| s.cache == Some(c)).count();
        if *profile == "none" {
            assert_eq!(count(CacheOutcome::Off), tool_turns);
        } else {
            // One call at a time, a TTL longer than the run: the first of each distinct call
            // misses, every repeat hits.
            assert_eq!(count(CacheOutcome::Miss), distinct, "{profile}");
            assert_eq!(count(CacheOutcome::Hit), tool_turns - distinct, "{profile}");
            for s in &tools {
                let ms = s.latency_ns.unwrap() as f64 / 1e6;
                match s.cache {
                    // The emulated company API takes ~120 ms; a cache answers in well under 20.
                    Some(CacheOutcome::Hit) => assert!(ms < 20.0, "{profile} hit {ms} ms"),
                    _ => assert!(ms > 30.0, "{profile} miss {ms} ms"),
                }
            }
        }
        for t in turns.iter().filter(|t| t.profile == *profile) {
            assert_eq!(t.outcome, Outcome::Ok, "{t:#?}");
            if let Some(tool) = &t.tool {
                assert_eq!(tool.matched, Some(true), "{tool:?}");
                // Round 1 ends in the call, the result comes back, round 2 speaks it, and the
                // caller hears it after all of that.
                let (call, result) = (tool.call_ns.unwrap(), tool.result_ns.unwrap());
                let (sent2, first2) = (
                    tool.llm2_request_sent_ns.unwrap(),
                    tool.llm2_first_token_ns.unwrap(),
                );
                assert!(t.llm_request_sent_ns.unwrap() < call && call <= result);
                assert!(result <= sent2 && sent2 < first2);
                assert_eq!(t.llm_first_token_ns, Some(first2));
                assert!(t.tts_first_audible_ns.unwrap() > first2);
            }
        }
    }
    let manifest = read_json(&out.join("manifest.json"));
    if redis {
        // The Redis latlab started for the run is gone.
        let url = manifest["backends"]["tool_cache"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(redis_servers_on(port), Vec::<u32>::new(), "{url}");
    }
    assert!(stdout.contains("tool"), "{stdout}");
}

#[test]
fn tool_faults_are_typed_turn_errors_and_every_turn_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let path = scenario(
        tmp.path(),
        12,
        "[\"none\"]",
        "[limits]\nstall_timeout_ms = 800\nresponse_timeout_ms = 3000\n",
    );
    // Faults on the company API, and LLM tool calls whose arguments are not JSON.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "latency = { dist = \"lognormal\", median_ms = 120.0, sigma = 0.3 }",
            "latency = { dist = \"lognormal\", median_ms = 120.0, sigma = 0.3 }\nfaults = { http_5xx = 0.15, stall = 0.1, disconnect = 0.1, malformed = 0.1 }",
        )
        .replace(
            "[emulator.llm]\n",
            "[emulator.llm]\nmalformed_tool_arguments = 0.3\n",
        );
    std::fs::write(&path, text).unwrap();
    let output = run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--speed",
        "4",
        "--concurrency",
        "6",
        "-q",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let turns: Vec<TurnTimeline> = read_jsonl(&out.join("turns.jsonl"));
    let data = Dataset::load(&root().join("datasets/tools")).unwrap();
    assert_eq!(turns.len(), data.turn_count());
    let spans: Vec<Span> = read_jsonl(&out.join("spans.jsonl"));
    let failed: Vec<&Span> = spans
        .iter()
        .filter(|s| s.stage == Stage::Tool && s.outcome == Outcome::Error)
        .collect();
    let kinds: HashSet<ErrorKind> = failed
        .iter()
        .map(|s| s.error.as_ref().unwrap().kind)
        .collect();
    for kind in [ErrorKind::Http, ErrorKind::Protocol, ErrorKind::Stall] {
        assert!(kinds.contains(&kind), "{kind:?} not among {kinds:?}");
    }
    for s in &failed {
        let e = s.error.as_ref().unwrap();
        if e.kind == ErrorKind::Http {
            assert_eq!(e.status, Some(503));
        }
        // The failed tool is the turn's error, and nothing was spoken.
        let t = turns
            .iter()
            .find(|t| t.call == s.call && t.turn == s.turn)
            .unwrap();
        assert_eq!(t.outcome, Outcome::Error);
        assert_eq!(t.error.as_ref(), Some(e));
        assert!(
            t.tts_first_audible_ns.is_none()
                && t.tool.as_ref().unwrap().llm2_request_sent_ns.is_none()
        );
    }
    assert!(
        failed.iter().any(|s| s
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("malformed tool arguments")),
        "the LLM's malformed arguments are caught before any request"
    );
}

#[test]
fn the_redis_latlab_starts_is_stopped_after_a_failed_run_and_after_ctrl_c() {
    if !redis_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A run that fails after Redis started: its metrics address is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tmp.path().join("failed");
    let path = scenario(tmp.path(), 2, "[\"redis\"]", "");
    let failed = run(&[
        "run",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--metrics-addr",
        &addr,
        "-q",
    ]);
    assert!(!failed.status.success());
    let manifest = read_json(&out.join("manifest.json"));
    let url = manifest["backends"]["tool_cache"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        redis_servers_on(port),
        Vec::<u32>::new(),
        "after a failed run: {url}"
    );

    // Ctrl-C in the middle of a run.
    let out = tmp.path().join("interrupted");
    let path = scenario(tmp.path(), 12, "[\"redis\"]", "");
    let child = latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::interrupt_after_lines(&child, &out.join("turns.jsonl"), 2);
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130));
    let manifest = read_json(&out.join("manifest.json"));
    let url = manifest["backends"]["tool_cache"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        redis_servers_on(port),
        Vec::<u32>::new(),
        "after Ctrl-C: {url}"
    );
}
