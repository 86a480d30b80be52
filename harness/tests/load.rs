//! Load models, scheduling lag, shards and merging, through the real `latlab` binary against
//! the emulator.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{read_json, run_ok, scenario};
use latlab_core::timing::TurnTimeline;
use latlab_harness::sinks::hdr;

fn turns(dir: &Path) -> Vec<TurnTimeline> {
    std::fs::read_to_string(dir.join("turns.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `latlab run SCENARIO --out OUT` at 10x, quiet, without a report, then `extra`.
fn fast_run(scenario: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = common::latlab();
    command
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--speed", "10", "-q", "--no-report"])
        .args(extra);
    command
}

/// Runs `fast_run` expecting success; returns its output.
fn fast_run_ok(scenario: &Path, out: &Path) -> std::process::Output {
    let output = fast_run(scenario, out, &[]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Total count per tag of a results folder's latency.hlog (all windows together).
fn histogram_counts(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for i in hdr::read_log(&dir.join("latency.hlog")).unwrap() {
        *out.entry(i.tag).or_insert(0) += i.histogram.len();
    }
    out
}

#[test]
fn three_shards_merged_equal_the_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 7, "");
    let dir = |name: &str| tmp.path().join(name);
    // The whole run and its three shards, one after another.
    let children: Vec<_> = ["whole", "s0", "s1", "s2"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let shard = format!("{}/3", i.saturating_sub(1));
            let extra: &[&str] = if i > 0 { &["--shard", &shard] } else { &[] };
            fast_run(&path, &dir(name), extra).output().unwrap()
        })
        .collect();
    for out in &children {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let merged = dir("merged");
    let out = run_ok(&[
        "merge",
        dir("s0").to_str().unwrap(),
        dir("s1").to_str().unwrap(),
        dir("s2").to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--no-report",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged 3 shards"));

    // Shards split the calls 3/2/2 and each ran its share of the 7 in flight.
    let shard_calls: Vec<u64> = ["s0", "s1", "s2"]
        .iter()
        .map(|s| {
            read_json(&dir(s).join("manifest.json"))["counts"]["calls"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(shard_calls, vec![3, 2, 2]);
    let m = read_json(&dir("s1").join("manifest.json"));
    assert_eq!(m["load"]["shard"], "1/3");

    let key = |t: &TurnTimeline| (t.profile.clone(), t.call.clone(), t.iteration, t.turn);
    let whole: BTreeSet<_> = turns(&dir("whole")).iter().map(key).collect();
    let merged_turns = turns(&merged);
    let merged_set: BTreeSet<_> = merged_turns.iter().map(key).collect();
    assert_eq!(merged_set.len(), merged_turns.len(), "no turn twice");
    assert_eq!(merged_set, whole);
    assert!(whole.len() >= 7 * 2, "{} turns", whole.len());
    let run_ids: BTreeSet<_> = merged_turns.iter().map(|t| t.run.as_str()).collect();
    assert_eq!(run_ids, BTreeSet::from(["merged"]));

    let whole_counts = histogram_counts(&dir("whole"));
    assert!(whole_counts.contains_key("p.turn"), "{whole_counts:?}");
    assert_eq!(histogram_counts(&merged), whole_counts);

    let m = read_json(&merged.join("manifest.json"));
    assert_eq!(m["status"], "complete");
    assert_eq!(m["counts"]["calls"], 7);
    assert_eq!(m["counts"]["turns"], whole.len());
    assert!(m["load"]["shard"].is_null());
    assert!(m["pacing"]["frames"].as_u64().unwrap() > 0);
    // The merged folder analyses like one run.
    let out = run_ok(&["show", merged.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("voice-to-voice"));

    // Two shards of three merge as a partial run, and say which is missing.
    let partial = dir("partial");
    run_ok(&[
        "merge",
        dir("s0").to_str().unwrap(),
        dir("s2").to_str().unwrap(),
        "--out",
        partial.to_str().unwrap(),
        "--no-report",
    ]);
    let m = read_json(&partial.join("manifest.json"));
    assert_eq!(m["status"], "partial");
    assert!(
        m["notes"].to_string().contains("shards 1/3 are missing"),
        "{}",
        m["notes"]
    );
    // A whole run is not a shard.
    let err = common::run_fails(&[
        "merge",
        dir("whole").to_str().unwrap(),
        "--out",
        dir("bad").to_str().unwrap(),
    ]);
    assert!(err.contains("not a shard"), "{err}");
}

#[test]
fn an_open_loop_counts_arrivals_it_could_not_start_and_their_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let load = r#"
[load]
model = "open"
arrival = "constant"
rate_per_s = 20.0
max_in_flight = 2
"#;
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 8, load);
    let out_dir = tmp.path().join("out");
    let out = fast_run_ok(&path, &out_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 8 arrivals 5 ms apart (20 per second at 10x), each call lasting over a second: the
    // first two start, the other six find two in flight and are dropped, not delayed.
    let m = read_json(&out_dir.join("manifest.json"));
    assert_eq!(m["load"]["model"], "open");
    assert_eq!(m["counts"]["calls"], 2, "{}", m["counts"]);
    assert_eq!(m["counts"]["dropped_calls"], 6);
    assert_eq!(m["counts"]["max_in_flight"], 2);
    assert_eq!(m["call_starts"]["count"], 8);
    assert!(stdout.contains("6 arrivals dropped"), "{stdout}");
    assert!(m["notes"].to_string().contains("6 arrivals were dropped"));
    let calls: BTreeSet<_> = turns(&out_dir).iter().map(|t| t.call.clone()).collect();
    assert_eq!(calls.len(), 2);
    // The lag of every call start is in scheduling.hlog, beside the frames'.
    let lags = hdr::read_log(&out_dir.join("scheduling.hlog")).unwrap();
    let count = |tag: &str| {
        lags.iter()
            .find(|i| i.tag == tag)
            .map(|i| i.histogram.len())
    };
    assert_eq!(count("call_starts"), Some(8));
    assert_eq!(count("frames"), m["pacing"]["frames"].as_u64());
}

#[test]
fn a_closed_loop_ramp_raises_the_calls_in_flight_stage_by_stage() {
    let tmp = tempfile::tempdir().unwrap();
    // 1 call in flight for 20 s of recording time (longer than a smoke call), then 3 until
    // the calls run out.
    let load = r#"
[load]
stages = [
  { name = "light", duration_s = 20.0, target = 1 },
  { name = "heavy", duration_s = 600.0, target = 3 },
]
"#;
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 5, load);
    let out_dir = tmp.path().join("out");
    fast_run_ok(&path, &out_dir);
    let m = read_json(&out_dir.join("manifest.json"));
    assert_eq!(m["counts"]["calls"], 5);
    assert_eq!(m["counts"]["max_in_flight"], 3);
    assert_eq!(m["load"]["stages"][1]["name"], "heavy");
    // In the light stage (2 s at 10x) calls ran one at a time: the second started when the
    // first ended, more than a second (a smoke call at 10x) after it.
    let t = turns(&out_dir);
    let first_start = |call: &str| {
        t.iter()
            .filter(|t| t.call == call)
            .map(|t| t.user_start_scheduled_ns)
            .min()
            .unwrap()
    };
    let calls: Vec<String> = {
        let mut c: Vec<_> = t
            .iter()
            .map(|t| t.call.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        c.sort_by_key(|c| first_start(c));
        c
    };
    assert!(first_start(&calls[1]) - first_start(&calls[0]) >= 1_000_000_000);

    // The report splits voice-to-voice by load stage; every turn lands in one.
    let out = run_ok(&["report", out_dir.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("voice-to-voice by load stage"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let summary = read_json(&out_dir.join("summary.json"));
    let rows = summary["load_stages"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["load_stage"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["light", "heavy"]);
    assert_eq!(rows[1]["target"], 3.0);
    assert_eq!(rows[1]["unit"], "calls in flight");
    let counted: u64 = rows
        .iter()
        .map(|r| {
            r["voice_to_voice"]["count"].as_u64().unwrap()
                + r["voice_to_voice"]["errors"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(counted as usize, t.len());
    assert!(rows[0]["voice_to_voice"]["count"].as_u64().unwrap() > 0);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_scheduling_cuts_off_after_the_grace_period_and_keeps_a_partial_report() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 10, "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "stall_timeout_ms = 800",
        "stall_timeout_ms = 800\ngrace_s = 1",
    );
    std::fs::write(&path, text).unwrap();
    let out_dir = tmp.path().join("out");
    let child = common::latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "-q",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first turns, then SIGINT: the 10 calls (each ~13 s) are mid-way.
    let log = out_dir.join("spans.jsonl");
    let signalled = common::interrupt_after_lines(&child, &log, 10);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    // One second of grace, not the ~10 s the calls had left.
    assert!(
        signalled.elapsed().as_secs_f64() < 8.0,
        "{:?}",
        signalled.elapsed()
    );
    let m = read_json(&out_dir.join("manifest.json"));
    assert_eq!(m["status"], "interrupted");
    assert!(m["notes"].to_string().contains("cut off"), "{}", m["notes"]);
    let logged = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(m["counts"]["spans"].as_u64().unwrap() as usize, logged);
    assert!(logged < 29 * 5, "{logged} spans: not every turn ran");
    // The results are readable and the report says they are partial.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("<strong>Partial results</strong>: run out was interrupted"),
        "the report says its results are partial"
    );
    let out = run_ok(&["show", out_dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("status interrupted"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_whole_suite_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let first = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 4, "");
    let text = std::fs::read_to_string(&first).unwrap().replace(
        "stall_timeout_ms = 800",
        "stall_timeout_ms = 800\ngrace_s = 1",
    );
    std::fs::write(&first, &text).unwrap();
    let second = tmp.path().join("second.toml");
    std::fs::write(&second, text.replace("name = \"t\"", "name = \"second\"")).unwrap();
    let root = tmp.path().join("results");
    let child = common::latlab()
        .args([
            "run",
            first.to_str().unwrap(),
            second.to_str().unwrap(),
            "--results-root",
            root.to_str().unwrap(),
            "--no-report",
            "-q",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // SIGINT once the first scenario has logged a few turns.
    let logged = || -> usize {
        std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join("spans.jsonl")).ok())
            .map(|s| s.lines().count())
            .sum()
    };
    let started = std::time::Instant::now();
    while logged() < 10 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("1 of 2"),
        "{stderr}"
    );
    // The first scenario's results are kept and say so; the second never started.
    let folders: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].starts_with("t-"), "{folders:?}");
    let m = read_json(&root.join(&folders[0]).join("manifest.json"));
    assert_eq!(m["status"], "interrupted");
}

#[test]
fn a_running_soak_serves_prometheus_metrics() {
    use std::io::{BufRead, BufReader, Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "[profiles.p]\nendpointing_ms = 300", 4, "");
    let out_dir = tmp.path().join("out");
    let mut child = common::latlab()
        .args([
            "run",
            path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--no-report",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("metrics: ") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no metrics address printed"
        );
    }
    let addr = line
        .trim()
        .trim_start_matches("metrics: http://")
        .trim_end_matches("/metrics")
        .to_string();
    let scrape = || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let started = std::time::Instant::now();
    let body = loop {
        let body = scrape();
        if body.contains("latlab_turns_total{") || started.elapsed().as_secs() > 60 {
            break body;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(body.contains("application/openmetrics-text"), "{body}");
    assert!(body.contains("latlab_calls_in_flight"), "{body}");
    assert!(body.contains("latlab_calls_started_total 4"), "{body}");
    assert!(
        body.contains("latlab_turns_total{profile=\"p\",outcome=\"ok\"}"),
        "{body}"
    );
    assert!(
        body.contains("latlab_stage_latency_seconds_bucket{le=") || body.contains("stage=\"turn\""),
        "{body}"
    );
    assert!(child.wait().unwrap().success());
}
