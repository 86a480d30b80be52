//! The agent targets (`scenarios/targets/agent.toml`) judged on the deterministic agent run
//! (`support/agent.rs`): interruption p95 and the dead-air rate each PASS, FAIL or stay
//! INCONCLUSIVE as the turns say, and a run without agent turns leaves them INCONCLUSIVE with
//! the reason.

#[path = "../../analysis/tests/support/agent.rs"]
mod agent;

use std::path::Path;

use agent::Profile;
use latlab_gate::{GateOptions, Outcome, Targets, Verdict, gate, read_run};

fn targets() -> Targets {
    Targets::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/targets/agent.toml"))
        .unwrap()
}

/// `big`: 600 turns, 150 interruptions of 200–290 ms (a P95 needs 130 to pass at 99 %), 1
/// dead air; `v1`: 40 turns, 10
/// interruptions of 200–290 ms, 2 dead air; `slow`: 40 turns, 10 interruptions of 600–690 ms,
/// 10 dead air.
const PROFILES: [Profile; 3] = [
    Profile {
        name: "big",
        turns: 600,
        dead_every: 600,
        slower_ms: 0,
    },
    Profile {
        name: "v1",
        turns: 40,
        dead_every: 20,
        slower_ms: 0,
    },
    Profile {
        name: "slow",
        turns: 40,
        dead_every: 4,
        slower_ms: 400,
    },
];

#[test]
fn agent_targets_pass_fail_and_stay_inconclusive_as_the_turns_say() {
    let dir = tempfile::tempdir().unwrap();
    agent::agent_run(dir.path(), "agent-gate", &PROFILES);
    let report = gate(dir.path(), &targets(), None, &GateOptions::default()).unwrap();
    assert_eq!(report.outcome, Outcome::Fail);
    let of = |target: &str, profile: &str| {
        report
            .checks
            .iter()
            .find(|c| c.target == target && c.profile == profile)
            .unwrap_or_else(|| panic!("no check of {target} on {profile}"))
    };
    let verdict = |target: &str, profile: &str| of(target, profile).shown().verdict;
    // 150 interruptions ≤ 290 ms; 10 (too few for a p95 at 99 %); 10 of 600–690 ms.
    assert_eq!(verdict("interruption p95", "big"), Verdict::Pass);
    assert_eq!(verdict("interruption p95", "v1"), Verdict::Inconclusive);
    assert_eq!(verdict("interruption p95", "slow"), Verdict::Fail);
    let p95 = of("interruption p95", "big");
    assert_eq!((p95.samples, p95.value, p95.unit), (150, Some(290.0), "ms"));
    assert!(
        of("interruption p95", "v1")
            .shown()
            .need_more
            .is_some_and(|m| m > 0)
    );
    // 1 of 600, 2 of 40 (5 %: its bounds hold 2 %), 10 of 40 against 2 %.
    assert_eq!(verdict("dead air", "big"), Verdict::Pass);
    assert_eq!(verdict("dead air", "v1"), Verdict::Inconclusive);
    assert_eq!(verdict("dead air", "slow"), Verdict::Fail);
    let dead = of("dead air", "big");
    assert_eq!((dead.samples, dead.unit), (600, "%"));
    assert!((dead.value.unwrap() - 100.0 / 600.0).abs() < 1e-9);
    // A false cutoff on every tenth turn: 10 % of 600 against 5 %.
    assert_eq!(verdict("false cutoffs", "big"), Verdict::Fail);
    // Warn-only targets are judged too: 1 of 8 replies has a gap (12.5 % > 5 %).
    assert_eq!(verdict("playback gaps", "big"), Verdict::Fail);
    assert!(of("playback gaps", "big").crit().is_none());

    // The agent stages are read with the spans' stages.
    let (_, stages) = read_run(dir.path()).unwrap();
    for stage in ["turn", "agent", "interruption", "agent_lead", "unseen"] {
        assert!(
            stages
                .iter()
                .any(|s| s.profile == "big" && s.stage == stage),
            "no {stage} sample"
        );
    }
}

#[test]
fn a_run_without_agent_turns_leaves_the_agent_targets_inconclusive() {
    let smoke =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../analysis/tests/data/run-2026-12-smoke");
    let report = gate(&smoke, &targets(), None, &GateOptions::default()).unwrap();
    for c in report
        .checks
        .iter()
        .filter(|c| c.target == "interruption p95" || c.target == "dead air")
    {
        let l = c.shown();
        assert_eq!(l.verdict, Verdict::Inconclusive, "{c:?}");
        assert!(
            l.reason.contains("no interruption samples") || l.reason.contains("no agent samples"),
            "{}",
            l.reason
        );
    }
}
