//! The "Tools and cache" section on a deterministic run with tool calls (`support/tools.rs`):
//! exact hit rate and its interval, latency by cache outcome, the saving, errors, the LLM's
//! two rounds; the tool row of the latency table only where tools ran; a run without tools
//! and an older run without the tool columns; escaping of the tool's name; comparing caches.

#[path = "support/tools.rs"]
mod tools;

use latlab_analysis::stats::proportion_estimate;
use latlab_analysis::{Side, analyze, compare};
use latlab_report::model::{Estimate, LatencyStats, Report, ToolRow};

fn report_of(shape: tools::Shape) -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    tools::tool_run(dir.path(), "tools-1", shape);
    let report = analyze(&[dir.path().to_path_buf()]).unwrap();
    (dir, report)
}

fn value(e: &Option<Estimate>) -> f64 {
    e.expect("an estimate").value
}

fn row<'a>(r: &'a Report, profile: &str) -> &'a ToolRow {
    r.tools
        .as_ref()
        .expect("a tools section")
        .profiles
        .iter()
        .find(|t| t.profile == profile)
        .unwrap_or_else(|| panic!("no row for {profile}"))
}

fn by<'a>(r: &'a ToolRow, cache: &str) -> &'a LatencyStats {
    &r.by_cache
        .iter()
        .find(|b| b.cache == cache)
        .unwrap_or_else(|| panic!("no {cache} latency"))
        .latency
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn hit_rate_latency_by_outcome_and_saving_are_exact() {
    let (_dir, report) = report_of(tools::SMALL);
    let m = row(&report, "memory");
    assert_eq!(m.tools, vec![(tools::TOOL.to_string(), 20)]);
    assert_eq!((m.turns, m.calls, m.errors), (20, 20, 1));
    let cache: Vec<(&str, u64)> = m.cache.iter().map(|(c, k)| (c.as_str(), *k)).collect();
    assert_eq!(cache, [("hit", 14), ("miss", 6), ("off", 0)]);
    // Hit rate 14 / 20 with its exact interval: [0.4572, 0.8811].
    assert_eq!((m.hit_rate.k, m.hit_rate.n), (14, 20));
    let h = m.hit_rate.rate.unwrap();
    assert_eq!(h, proportion_estimate(14, 20).unwrap());
    assert!(close(h.value, 0.7));
    assert!(
        (h.lo - 0.4572).abs() < 1e-3 && (h.hi - 0.8811).abs() < 1e-3,
        "{h:?}"
    );
    // Hits 1 + r/10 ms, misses 100 + r ms (the failed call has none).
    let hit = by(m, "hit");
    assert_eq!(hit.count, 14);
    assert!(close(value(&hit.p50), 1.9) && close(value(&hit.p90), 2.8));
    assert!(close(value(&hit.p95), 2.9));
    let miss = by(m, "miss");
    assert_eq!(miss.count, 5);
    assert_eq!((value(&miss.p50), value(&miss.p90)), (106.0, 116.0));
    assert!(m.by_cache.iter().all(|b| b.cache != "off"));
    assert_eq!(m.latency.count, 19);
    for l in [hit, miss, &m.latency] {
        for e in [l.p50, l.p90, l.p95].into_iter().flatten() {
            assert!(e.lo <= e.value && e.value <= e.hi, "{e:?}");
        }
    }
    // The saving: median miss − median hit, each group resampled.
    let s = m.saving.unwrap();
    assert!(close(s.value, 106.0 - 1.9), "{s:?}");
    assert!(s.lo <= s.value && s.value <= s.hi);
    assert!(s.lo >= 100.0 - 2.9 && s.hi <= 116.0 - 1.1, "{s:?}");
    let share = m.saving_share.unwrap();
    assert!(close(share.value, (106.0 - 1.9) / 106.0));
    assert_eq!(m.error_kinds, vec![("timeout".to_string(), 1)]);
    // LLM rounds: 200 + r over 20 tool turns, 150 + r over the 19 that got a result.
    assert_eq!(m.llm_round1.count, 20);
    assert_eq!(
        (value(&m.llm_round1.p50), value(&m.llm_round1.p90)),
        (209.0, 217.0)
    );
    assert_eq!(m.llm_round2.count, 19);
    assert_eq!(value(&m.llm_round2.p50), 159.0);

    let n = row(&report, "none");
    assert_eq!((n.calls, n.errors), (20, 0));
    assert_eq!((n.hit_rate.k, n.hit_rate.n, n.hit_rate.rate), (0, 0, None));
    let off = by(n, "off");
    assert_eq!(off.count, 20);
    assert_eq!((value(&off.p50), value(&off.p90)), (109.0, 117.0));
    assert_eq!((n.saving, n.saving_share), (None, None));
}

#[test]
fn the_tool_stage_has_a_latency_row_where_tools_ran() {
    let (_dir, report) = report_of(tools::SMALL);
    let rows: Vec<_> = report
        .summary
        .iter()
        .filter(|r| r.stage == "tool")
        .collect();
    // One row a profile: the API's; the skipped spans of turns without a call have none.
    assert_eq!(rows.len(), 2, "{rows:?}");
    let m = rows.iter().find(|r| r.profile == "memory").unwrap();
    assert_eq!((m.backend.as_str(), m.count, m.errors), (tools::API, 19, 1));
    let stages: Vec<&str> = report
        .summary
        .iter()
        .filter(|r| r.profile == "memory")
        .map(|r| r.stage.as_str())
        .collect();
    assert_eq!(stages, ["endpoint", "stt", "llm", "tool", "tts", "turn"]);
    assert!(report.plots.histograms.iter().any(|h| h.stage == "tool"));
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.stage == "tool" && e.kind == "timeout" && e.count == 1)
    );
    let md = latlab_report::markdown::render(&report);
    assert!(md.contains("## Tools and cache"));
    assert!(md.contains("14 of 20: 70.0 %"), "{md}");
    let text = latlab_report::terminal::render(&report);
    assert!(text.contains("TOOLS AND CACHE"));
    let json: serde_json::Value = serde_json::from_str(&latlab_report::json(&report)).unwrap();
    assert_eq!(json["tools"]["profiles"][0]["hit_rate"]["k"], 14);
}

#[test]
fn a_run_without_tools_has_no_tool_row_and_no_section() {
    let (_dir, report) = report_of(tools::Shape {
        tools: false,
        ..tools::SMALL
    });
    assert!(report.summary.iter().all(|r| r.stage != "tool"));
    assert_eq!(report.summary.len(), 10, "2 profiles × 5 stages that ran");
    assert!(report.tools.is_none());
    assert!(report.plots.histograms.iter().all(|h| h.stage != "tool"));
    let json: serde_json::Value = serde_json::from_str(&latlab_report::json(&report)).unwrap();
    assert!(json.get("tools").is_none());
    assert!(!latlab_report::markdown::render(&report).contains("Tools and cache"));
    assert!(!latlab_report::html::render(&report, &[]).contains("Tools and cache"));
}

#[test]
fn an_older_run_without_the_tool_columns_still_analyses() {
    let (_dir, report) = report_of(tools::Shape {
        tools: false,
        old: true,
        ..tools::SMALL
    });
    assert!(report.tools.is_none());
    assert_eq!(report.summary.len(), 10);
    assert!(report.summary.iter().all(|r| r.stage != "tool"));
}

#[test]
fn html_escapes_the_tools_name() {
    let (_dir, report) = report_of(tools::SMALL);
    let html = latlab_report::html::render(&report, &[]);
    assert!(!html.contains("<script"), "an unescaped script tag");
    assert!(html.contains("&lt;script&gt;alert(&#39;tool&#39;)&lt;/script&gt;_weather × 20"));
    assert!(html.contains("<h2 id=\"tools\">Tools and cache</h2>"));
    let md = latlab_report::markdown::render(&report);
    assert!(!md.contains("<script"));
}

#[test]
fn caches_compare_by_tool_latency_and_hit_rate() {
    let dir = tempfile::tempdir().unwrap();
    tools::tool_run(dir.path(), "tools-1", tools::SMALL);
    let side = |p: &str| Side {
        dir: dir.path().to_path_buf(),
        profile: Some(p.into()),
    };
    let report = compare(&side("none"), &side("memory")).unwrap();
    let c = report.comparison.as_ref().unwrap();
    let tool = |statistic: &str| {
        c.rows
            .iter()
            .find(|r| r.stage == "tool" && r.statistic == statistic)
    };
    // B = memory against A = none: the p50 falls from 109 ms to a hit's.
    let p50 = tool("p50").expect("a tool p50 row");
    assert_eq!((p50.count_a, p50.count_b), (20, 19));
    assert_eq!(p50.a.value, 109.0);
    assert!(p50.diff.value < -100.0 && p50.diff.hi < 0.0, "{p50:?}");
    assert!(tool("p90").is_some());
    // No cache on side A: no hit rate to compare.
    assert!(tool("hit_rate").is_none());
    assert_eq!(report.tools.as_ref().unwrap().profiles.len(), 2);

    // Two runs with caches: the hit rate compares, in %.
    let other = tempfile::tempdir().unwrap();
    tools::tool_run(other.path(), "tools-2", tools::SMALL);
    let report = compare(
        &Side {
            dir: dir.path().to_path_buf(),
            profile: Some("memory".into()),
        },
        &Side {
            dir: other.path().to_path_buf(),
            profile: Some("memory".into()),
        },
    )
    .unwrap();
    let c = report.comparison.as_ref().unwrap();
    let hr = c
        .rows
        .iter()
        .find(|r| r.stage == "tool" && r.statistic == "hit_rate")
        .expect("a hit-rate row");
    assert_eq!((hr.count_a, hr.count_b), (20, 20));
    assert!(close(hr.a.value, 70.0) && close(hr.diff.value, 0.0));
    assert!(hr.diff.lo < 0.0 && hr.diff.hi > 0.0);
}
