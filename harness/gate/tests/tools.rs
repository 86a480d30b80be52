//! Tool targets judged on the deterministic tool run (`support/tools.rs`): the tool stage's
//! P90 and the cache's hit rate each PASS, FAIL or stay INCONCLUSIVE as the calls say, and a
//! run without tool calls leaves them INCONCLUSIVE with the reason.

#[path = "../../analysis/tests/support/tools.rs"]
mod tools;

use std::path::Path;

use latlab_gate::check::Check;
use latlab_gate::{GateOptions, Targets, Verdict, gate, read_run};

fn targets(text: &str) -> Targets {
    Targets::parse(Path::new("tools-test.toml"), text).unwrap()
}

const TARGETS: &str = r#"
[[target]]
name = "p90 under 50"
stage = "tool"
metric = "p90"
crit = 50

[[target]]
name = "p50 under 50"
stage = "tool"
metric = "p50"
crit = 50

[[target]]
name = "hit rate 50"
stage = "tool"
metric = "hit_rate"
crit = 50

[[target]]
name = "hit rate 70"
stage = "tool"
metric = "hit_rate"
crit = 70

[[target]]
name = "hit rate 90"
stage = "tool"
metric = "hit_rate"
crit = 90
"#;

/// 400 turns a profile: 200 tool calls; `memory` 140 hits and 60 misses (one failed).
const BIG: tools::Shape = tools::Shape {
    turns: 400,
    ..tools::SMALL
};

fn check<'a>(checks: &'a [Check], target: &str, profile: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.target == target && c.profile == profile)
        .unwrap_or_else(|| panic!("no check of {target} on {profile}"))
}

#[test]
fn tool_p90_and_hit_rate_pass_fail_and_stay_inconclusive_as_the_calls_say() {
    let dir = tempfile::tempdir().unwrap();
    tools::tool_run(dir.path(), "tools-gate", BIG);
    let report = gate(dir.path(), &targets(TARGETS), None, &GateOptions::default()).unwrap();
    let c = |t: &str, p: &str| check(&report.checks, t, p);
    let verdict = |t: &str, p: &str| c(t, p).shown().verdict;
    // memory: 140 hits of ≤ 2.9 ms, then 59 ok misses of 100–119 ms: the p90 is a miss.
    assert_eq!(verdict("p90 under 50", "memory"), Verdict::Fail);
    assert_eq!(verdict("p50 under 50", "memory"), Verdict::Pass);
    assert_eq!(c("p90 under 50", "memory").samples, 199);
    // none: every call 100–119 ms.
    assert_eq!(verdict("p50 under 50", "none"), Verdict::Fail);
    // 140 of 200 = 70 %: clearly over 50, clearly under 90, on 70.
    let hr = c("hit rate 70", "memory");
    assert_eq!(
        (hr.samples, hr.unit, hr.metric.as_str()),
        (200, "%", "hit_rate")
    );
    assert!((hr.value.unwrap() - 70.0).abs() < 1e-9);
    assert_eq!(verdict("hit rate 50", "memory"), Verdict::Pass);
    assert_eq!(verdict("hit rate 90", "memory"), Verdict::Fail);
    assert_eq!(hr.shown().verdict, Verdict::Inconclusive);
    assert_eq!(hr.shown().need_more, None, "{}", hr.shown().reason);
    // No cache, no trials.
    let off = c("hit rate 50", "none");
    assert_eq!(off.shown().verdict, Verdict::Inconclusive);
    assert!(
        off.shown().reason.contains("reached a cache"),
        "{}",
        off.shown().reason
    );
}

#[test]
fn a_p90_on_few_calls_is_inconclusive_and_says_how_many_more() {
    let dir = tempfile::tempdir().unwrap();
    tools::tool_run(dir.path(), "tools-small", tools::SMALL);
    let report = gate(dir.path(), &targets(TARGETS), None, &GateOptions::default()).unwrap();
    let p90 = check(&report.checks, "p90 under 50", "memory");
    assert_eq!(p90.samples, 19);
    assert_eq!(p90.shown().verdict, Verdict::Inconclusive);
    assert!(p90.shown().need_more.is_some_and(|n| n > 0), "{p90:?}");
}

#[test]
fn a_run_without_tool_calls_leaves_tool_targets_inconclusive_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    tools::tool_run(
        dir.path(),
        "no-tools",
        tools::Shape {
            tools: false,
            ..BIG
        },
    );
    let (_, stages) = read_run(dir.path()).unwrap();
    let tool = stages
        .iter()
        .find(|s| s.stage == "tool" && s.profile == "memory")
        .expect("the skipped tool spans' stage");
    assert_eq!((tool.sorted_ms.len(), tool.skipped), (0, 400));
    let report = gate(dir.path(), &targets(TARGETS), None, &GateOptions::default()).unwrap();
    let p90 = check(&report.checks, "p90 under 50", "memory");
    assert_eq!(p90.shown().verdict, Verdict::Inconclusive);
    assert!(
        p90.shown().reason.contains("400 tool spans was skipped"),
        "{}",
        p90.shown().reason
    );
    let hr = check(&report.checks, "hit rate 50", "memory");
    assert_eq!(hr.shown().verdict, Verdict::Inconclusive);
}

#[test]
fn hit_rate_belongs_to_the_tool_stage_and_the_shipped_file_reads() {
    let e = Targets::parse(
        Path::new("t.toml"),
        "[[target]]\nstage = \"turn\"\nmetric = \"hit_rate\"\ncrit = 70\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("t.toml:2: key `stage`") && e.contains("tool"),
        "{e}"
    );
    let t = Targets::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/targets/tools.toml"),
    )
    .unwrap();
    let hr = &t.targets[0];
    assert_eq!((hr.stage.as_str(), hr.crit), ("tool", Some(70.0)));
    assert_eq!(hr.metric.label(), "hit_rate");
    assert!(hr.metric.is_floor() && hr.metric.is_rate());
}
