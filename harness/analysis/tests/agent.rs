//! The Agent section on a deterministic agent run (`support/agent.rs`): exact percentiles,
//! counts, rates with their intervals and the unseen time; the stage tables hidden and
//! voice-to-voice kept; escaping of the agent's name; comparison of two builds; and an older
//! `turns.parquet` without the agent columns still analysed.

#[path = "support/agent.rs"]
mod agent;

use std::path::{Path, PathBuf};

use latlab_analysis::agent::read_agent_turns;
use latlab_analysis::{Side, analyze, compare};
use latlab_report::model::{AgentRow, Estimate, Report};

fn agent_report() -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    agent::agent_run(dir.path(), "agent-1", &agent::PROFILES);
    let report = analyze(&[dir.path().to_path_buf()]).unwrap();
    (dir, report)
}

fn value(e: &Option<Estimate>) -> f64 {
    e.expect("an estimate").value
}

fn row<'a>(r: &'a Report, profile: &str) -> &'a AgentRow {
    r.agent
        .as_ref()
        .expect("an agent section")
        .profiles
        .iter()
        .find(|a| a.profile == profile)
        .unwrap_or_else(|| panic!("no row for {profile}"))
}

#[test]
fn the_callers_ear_statistics_are_exact() {
    let (_dir, report) = agent_report();
    let a = report.agent.as_ref().unwrap();
    assert_eq!(a.runs.len(), 1);
    assert_eq!(a.runs[0].agent.as_ref().unwrap().name, agent::AGENT);
    let v1 = row(&report, "v1");
    assert_eq!(v1.agent, agent::AGENT);
    assert_eq!((v1.turns, v1.replies), (40, 38));
    // Leading silence: 10 (i mod 10) ms over the 38 replies.
    assert_eq!(v1.lead.count, 38);
    assert_eq!(
        (
            value(&v1.lead.p50),
            value(&v1.lead.p90),
            value(&v1.lead.p95)
        ),
        (40.0, 80.0, 90.0)
    );
    assert_eq!(v1.reply.count, 38);
    // Gaps: 5 of 38 replies, 750 ms.
    assert_eq!((v1.gapped.k, v1.gapped.n, v1.gaps), (5, 38, 5));
    assert_eq!(v1.gap_ms, 750.0);
    let g = v1.gapped.rate.unwrap();
    assert!((g.value - 5.0 / 38.0).abs() < 1e-12 && g.lo < g.value && g.hi > g.value);
    // Interruptions: 200..290 ms, one per call.
    assert_eq!((v1.interruptions, v1.interruption.count), (10, 10));
    assert_eq!(
        (
            value(&v1.interruption.p50),
            value(&v1.interruption.p90),
            value(&v1.interruption.p95)
        ),
        (240.0, 280.0, 290.0)
    );
    let p95 = v1.interruption.p95.unwrap();
    assert!(p95.lo <= 290.0 && p95.hi >= 290.0);
    assert_eq!(
        v1.interruption_by,
        vec![
            ("clear".to_string(), 5),
            ("silence".to_string(), 4),
            ("ignored".to_string(), 1)
        ]
    );
    // Turn-taking errors, over the 40 turns.
    assert_eq!((v1.false_cutoff.k, v1.false_cutoff.n), (4, 40));
    assert_eq!((v1.talk_over.k, v1.talk_over.n), (5, 40));
    assert_eq!(v1.talk_over_ms, 1320.0);
    assert_eq!((v1.dead_air.k, v1.dead_air.n), (2, 40));
    // Clopper–Pearson: 2 of 40 is 5.0 % [0.61, 16.9].
    let d = v1.dead_air.rate.unwrap();
    assert_eq!(d.value, 0.05);
    assert!(
        (d.lo - 0.0061).abs() < 5e-4 && (d.hi - 0.1692).abs() < 5e-4,
        "{d:?}"
    );
    // The agent's own view: unseen = 100 + i ms on the 19 answered turns among the first 20.
    assert_eq!(v1.unseen.count, 19);
    assert_eq!(
        (value(&v1.unseen.p50), value(&v1.unseen.p90)),
        (109.0, 117.0)
    );
    let list: Vec<_> = a.self_report.iter().filter(|t| t.profile == "v1").collect();
    assert_eq!(list.len(), 19);
    let t3 = list.iter().find(|t| t.call == "c0" && t.turn == 3).unwrap();
    assert_eq!(
        (t3.voice_to_voice_ms, t3.agent_ms, t3.unseen_ms),
        (530.0, 427.0, 103.0)
    );

    let v2 = row(&report, "v2");
    assert_eq!((v2.dead_air.k, v2.dead_air.n), (4, 40));
    assert_eq!(v2.lead.count, 36);
    assert_eq!((value(&v2.lead.p50), value(&v2.lead.p95)), (40.0, 80.0));
    assert_eq!(
        (value(&v2.interruption.p50), value(&v2.interruption.p95)),
        (540.0, 590.0)
    );
    assert_eq!(v2.unseen.count, 18);
}

#[test]
fn voice_to_voice_stays_and_the_opaque_stages_are_hidden() {
    let (_dir, report) = agent_report();
    let turn = report
        .summary
        .iter()
        .find(|r| r.profile == "v1" && r.stage == "turn")
        .unwrap();
    // 500 + 10 i ms over the 38 answered turns; the two dead-air turns failed.
    assert_eq!((turn.count, turn.errors), (38, 2));
    assert_eq!(value(&turn.p50), 680.0);
    // The opaque stages are in the model (every span was skipped) but no renderer shows them.
    let stt = report
        .summary
        .iter()
        .find(|r| r.profile == "v1" && r.stage == "stt")
        .unwrap();
    assert_eq!((stt.count, stt.skipped), (0, 40));
    assert!(!report.shows_summary_row(stt) && report.shows_summary_row(turn));
    let md = latlab_report::markdown::render(&report);
    assert!(md.contains("| v1 | voice-to-voice |"), "{md}");
    assert!(!md.contains("| v1 | stt |"), "{md}");
    assert!(md.contains("## Agent"));
    assert!(md.contains("2 of 40: 5.0 %"), "{md}");
    let text = latlab_report::terminal::render(&report);
    assert!(text.contains("AGENT (at the caller's ear)"));
    assert!(
        !text
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("stt")),
        "{text}"
    );
    // summary.json carries the section.
    let json: serde_json::Value = serde_json::from_str(&latlab_report::json(&report)).unwrap();
    assert_eq!(json["agent"]["profiles"][0]["dead_air"]["k"], 2);
    assert_eq!(json["agent"]["profiles"][0]["interruption"]["count"], 10);
}

#[test]
fn html_escapes_the_agents_name() {
    let (_dir, report) = agent_report();
    let html = latlab_report::html::render(&report, &[]);
    assert!(!html.contains("<script"), "an unescaped script tag");
    assert!(html.contains("&lt;script&gt;alert(&#39;agent&#39;)&lt;/script&gt; bot"));
    assert!(html.contains("<h2 id=\"agent\">Agent</h2>"));
    assert!(html.contains("wss://agent.example/&lt;media&gt;"));
    let md = latlab_report::markdown::render(&report);
    assert!(!md.contains("<script"));
}

#[test]
fn two_builds_of_the_agent_compare() {
    let dir = tempfile::tempdir().unwrap();
    agent::agent_run(dir.path(), "agent-1", &agent::PROFILES);
    let side = |p: &str| Side::parse(&format!("{}:{p}", dir.path().display()));
    let report = compare(&side("v1"), &side("v2")).unwrap();
    let rows = &report.comparison.as_ref().unwrap().rows;
    let find = |stage: &str, statistic: &str| {
        rows.iter()
            .find(|r| r.stage == stage && r.statistic == statistic)
            .unwrap_or_else(|| panic!("no {stage} {statistic} in {rows:?}"))
    };
    for statistic in ["p50", "p95"] {
        let r = find("interruption", statistic);
        assert_eq!((r.count_a, r.count_b), (10, 10));
        assert_eq!(r.diff.value, 300.0);
        assert!(r.diff.lo <= 300.0 && r.diff.hi >= 300.0);
    }
    let dead = find("agent", "dead_air_rate");
    assert_eq!(
        (dead.a.value, dead.b.value, dead.diff.value),
        (5.0, 10.0, 5.0)
    );
    assert!(dead.diff.lo < 5.0 && dead.diff.hi > 5.0);
    let cut = find("agent", "false_cutoff_rate");
    assert_eq!(cut.diff.value, 0.0);
    let unseen = find("unseen", "p50");
    assert_eq!((unseen.count_a, unseen.count_b), (19, 18));
    assert_eq!((unseen.a.value, unseen.b.value), (109.0, 108.0));
    find("agent", "gap_rate");
    find("agent", "talk_over_rate");
    find("agent_lead", "p95");
    // Voice-to-voice compares as before.
    find("turn", "p95");
    // The section keeps the two sides only.
    assert_eq!(report.agent.as_ref().unwrap().profiles.len(), 2);
    let text = latlab_report::terminal::render(&report);
    assert!(text.contains("dead_air_rate"), "{text}");
}

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/run-2026-12-smoke")
}

#[test]
fn an_older_turns_table_without_agent_columns_still_analyses() {
    assert!(
        read_agent_turns(&smoke().join("turns.parquet"))
            .unwrap()
            .is_empty()
    );
    let report = analyze(&[smoke()]).unwrap();
    assert!(report.agent.is_none());
    assert!(report.summary.iter().all(|r| report.shows_summary_row(r)));
    let json = latlab_report::json(&report);
    assert!(!json.contains("\"agent\""));
}
