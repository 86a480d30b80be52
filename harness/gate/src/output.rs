//! The gate's outputs, each rendered from one [`GateReport`]: JSON, JUnit XML (one testcase
//! per target check and per baseline comparison) and Markdown for a GitHub step summary or a
//! pull-request comment.

use latlab_report::markdown::cell;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::check::{Check, Level, Verdict};
use crate::regress::{Change, Comparison};
use crate::{GateReport, InconclusivePolicy, Outcome};

/// Pretty JSON (schema `docs/schemas/gate.schema.json`).
pub fn json(report: &GateReport) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("a gate report serializes");
    s.push('\n');
    s
}

fn value(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.1}"))
}

/// One line describing a check: value, bounds, samples.
fn check_line(c: &Check) -> String {
    if c.lower.is_none() && c.upper.is_none() && c.value.is_some() {
        // A measured fact, not an estimate (the harness's own lag): no bounds to show.
        return format!(
            "{} = {} {} ({} samples)",
            c.metric,
            value(c.value),
            c.unit,
            c.samples
        );
    }
    format!(
        "{} = {} {} (one-sided {:.0} % bounds [{}, {}], {} samples)",
        c.metric,
        value(c.value),
        c.unit,
        c.confidence * 100.0,
        value(c.lower),
        value(c.upper),
        c.samples
    )
}

/// What a comparison could see, for the text line and the Markdown table alike.
fn resolution(c: &Comparison) -> String {
    match c.detectable_ms {
        Some(ms) => format!("detects ≥ +{ms:.1} ms"),
        None => format!("not compared: needs n ≥ {} a side", c.needs_samples),
    }
}

fn comparison_line(c: &Comparison) -> String {
    let d = c.difference_ms;
    format!(
        "{} {:.1} → {:.1} ms: difference {:+.1} ms [{:+.1}, {:+.1}], noise band ±{:.1} ms, {} ({} → {} samples)",
        c.metric,
        c.baseline_ms,
        c.candidate_ms,
        d.value,
        d.lo,
        d.hi,
        c.band_ms,
        resolution(c),
        c.baseline_samples,
        c.candidate_samples
    )
}

/// JUnit XML: suite `targets` (one case per check) and, with a baseline, suite `baseline`.
pub fn junit(report: &GateReport) -> String {
    let mut xml = Report::new(format!("latlab gate {}", report.run_id));
    let mut targets = TestSuite::new(format!("targets: {}", report.targets_name));
    for c in &report.checks {
        let name = format!("{} [{}/{}]", c.target, c.scenario, c.profile);
        let worst = c.shown();
        let fails = match worst.verdict {
            Verdict::Fail => worst.level == Level::Crit,
            Verdict::Inconclusive => {
                worst.level == Level::Crit && report.inconclusive == InconclusivePolicy::Fail
            }
            Verdict::Pass => false,
        };
        let mut status = if fails {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "{} at {} {} {}: {}",
                worst.verdict.as_str(),
                worst.limit,
                c.unit,
                level_name(worst.level),
                worst.reason
            ));
            s.set_type(worst.verdict.as_str());
            s
        } else {
            TestCaseStatus::success()
        };
        status.set_description(check_line(c));
        let mut case = TestCase::new(name, status);
        case.set_classname(format!("latlab.gate.targets.{}", c.stage));
        case.set_system_out(levels_text(c));
        targets.add_test_case(case);
    }
    xml.add_test_suite(targets);
    if report.baseline.is_some() {
        let mut suite = TestSuite::new(format!(
            "baseline: {}",
            report.baseline.as_deref().unwrap_or_default()
        ));
        for c in &report.comparisons {
            let name = format!("{} {} [{}/{}]", c.stage, c.metric, c.scenario, c.profile);
            let status = if c.change == Change::Regressed {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("REGRESSED: {}", comparison_line(c)));
                s.set_type("REGRESSED");
                s
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(name, status);
            case.set_classname(format!("latlab.gate.baseline.{}", c.stage));
            case.set_system_out(format!("{}: {}", c.change.as_str(), comparison_line(c)));
            suite.add_test_case(case);
        }
        xml.add_test_suite(suite);
    }
    xml.to_string().expect("JUnit XML serializes")
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Warn => "(warn)",
        Level::Crit => "(crit)",
    }
}

fn levels_text(c: &Check) -> String {
    let mut s = check_line(c);
    for l in &c.levels {
        s.push_str(&format!(
            "\n{} {} {} {}: {}",
            level_name(l.level),
            l.limit,
            c.unit,
            l.verdict.as_str(),
            l.reason
        ));
    }
    s
}

/// The headline counts as one sentence (without the final period).
fn tally(report: &GateReport) -> String {
    let t = &report.tally;
    let mut s = format!(
        "{} passed, {} failed, {} inconclusive (counted as {}), {} warnings",
        t.passed,
        t.failed,
        t.inconclusive,
        match report.inconclusive {
            InconclusivePolicy::Fail => "failures",
            InconclusivePolicy::Pass => "passes",
        },
        t.warnings
    );
    if report.baseline.is_some() {
        s.push_str(&format!(
            "; {} regressed, {} improved, {} unchanged",
            t.regressed, t.improved, t.unchanged
        ));
    }
    s
}

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::Inconclusive => "❔ INCONCLUSIVE",
    }
}

/// Markdown for a GitHub step summary or pull-request comment.
pub fn markdown(report: &GateReport) -> String {
    let mut s = String::new();
    let verdict = match report.outcome {
        Outcome::Pass => "✅ latency gate passed",
        Outcome::Fail => "❌ latency gate failed",
    };
    s.push_str(&format!("## {verdict}\n\n"));
    s.push_str(&format!(
        "Run `{}` (scenario {}, status {}) against targets **{}**{}. ",
        cell(&report.run_id),
        cell(&report.scenario),
        cell(report.run_status.as_str()),
        cell(&report.targets_name),
        report
            .baseline
            .as_ref()
            .map_or(String::new(), |b| format!(" and baseline **{}**", cell(b)))
    ));
    s.push_str(&tally(report));
    s.push_str(".\n\n");
    s.push_str("### Targets\n\n");
    s.push_str("| target | scenario / profile | value | bounds | samples | warn | crit | note |\n");
    s.push_str("| --- | --- | ---: | --- | ---: | --- | --- | --- |\n");
    for c in &report.checks {
        let level = |l: Level| {
            c.levels
                .iter()
                .find(|v| v.level == l)
                .map_or("—".to_string(), |v| {
                    format!("{} {} {}", icon(v.verdict), v.limit, c.unit)
                })
        };
        let note = c
            .levels
            .iter()
            .filter(|l| l.verdict == Verdict::Inconclusive)
            .map(|l| l.reason.clone())
            .next()
            .unwrap_or_default();
        s.push_str(&format!(
            "| {} | {} / {} | {} {} | [{}, {}] | {} | {} | {} | {} |\n",
            cell(&c.target),
            cell(&c.scenario),
            cell(&c.profile),
            value(c.value),
            c.unit,
            value(c.lower),
            value(c.upper),
            c.samples,
            level(Level::Warn),
            level(Level::Crit),
            cell(&note)
        ));
    }
    if let Some(b) = &report.baseline {
        let band = report.noise_band.expect("a band with a baseline");
        s.push_str(&format!(
            "\n### Against baseline {}\n\nNoise band ±max({:.0} % of the baseline, {} ms); intervals at {:.0} %.\n\n",
            cell(b),
            band.relative * 100.0,
            band.absolute_ms,
            report.checks.first().map_or(99.0, |c| c.confidence * 100.0)
        ));
        s.push_str("| stage | metric | scenario / profile | baseline | candidate | difference [interval] | band | resolution | change |\n");
        s.push_str("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | --- |\n");
        for c in &report.comparisons {
            let d = c.difference_ms;
            s.push_str(&format!(
                "| {} | {} | {} / {} | {:.1} ms | {:.1} ms | {:+.1} ms [{:+.1}, {:+.1}] | ±{:.1} ms | {} | {} |\n",
                cell(&c.stage),
                c.metric,
                cell(&c.scenario),
                cell(&c.profile),
                c.baseline_ms,
                c.candidate_ms,
                d.value,
                d.lo,
                d.hi,
                c.band_ms,
                resolution(c),
                match c.change {
                    Change::Regressed => "❌ REGRESSED",
                    Change::Improved => "✅ IMPROVED",
                    Change::Unchanged => "UNCHANGED",
                }
            ));
        }
    }
    s
}

/// Plain text for the terminal: one line per check and comparison, then the outcome.
pub fn text(report: &GateReport) -> String {
    let mut s = String::new();
    for c in &report.checks {
        let shown = c.shown();
        let warn = if c.warned() {
            " (warn level crossed)"
        } else {
            ""
        };
        // A warn-only check that crossed its level is a warning, not a failure.
        let label = if c.crit().is_none() && shown.verdict == Verdict::Fail {
            "WARN"
        } else {
            shown.verdict.as_str()
        };
        s.push_str(&format!(
            "{:<12} {} [{}/{}]: {}{warn}\n             {}\n",
            label,
            c.target,
            c.scenario,
            c.profile,
            check_line(c),
            shown.reason
        ));
    }
    for c in &report.comparisons {
        s.push_str(&format!(
            "{:<12} {} [{}/{}] {}\n",
            c.change.as_str(),
            c.stage,
            c.scenario,
            c.profile,
            comparison_line(c)
        ));
    }
    s.push_str(&format!(
        "gate {}: {}",
        match report.outcome {
            Outcome::Pass => "PASSED",
            Outcome::Fail => "FAILED",
        },
        tally(report)
    ));
    s.push('\n');
    s
}
