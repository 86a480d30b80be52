//! Judging targets: PASS when the upper confidence bound is under the limit, FAIL when the
//! lower bound is over it, INCONCLUSIVE otherwise — with about how many more samples would
//! decide it at the rate seen so far.

use serde::Serialize;

use crate::bounds::{Bounds, decisive_over, first, quantile_bounds, rate_bounds, tolerated_over};
use crate::merge::StageSample;
use crate::targets::{Metric, Target, Targets};

/// A three-way verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The whole confidence interval is on the good side of the limit.
    Pass,
    /// The whole confidence interval is on the bad side of the limit.
    Fail,
    /// The interval straddles the limit, or there are too few samples.
    Inconclusive,
}

impl Verdict {
    /// As printed.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// A limit's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Reported, never fails the gate.
    Warn,
    /// Fails the gate.
    Crit,
}

/// The verdict at one level of a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelVerdict {
    /// Which level.
    pub level: Level,
    /// Its limit (ms or %).
    pub limit: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// For INCONCLUSIVE: about how many more samples (at the rate seen so far) would decide
    /// it; `None` when more samples would not (the value sits on the limit) or none were seen.
    pub need_more: Option<u64>,
    /// One line saying why.
    pub reason: String,
}

/// One target judged on one scenario × profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The target's name.
    pub target: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Stage.
    pub stage: String,
    /// `p95`, `error_rate`, ...
    pub metric: String,
    /// `ms` or `%`.
    pub unit: &'static str,
    /// Samples the verdict stands on (latencies, or attempts for rates).
    pub samples: u64,
    /// The point estimate (nearest-rank percentile, or the observed rate).
    pub value: Option<f64>,
    /// One-sided lower confidence bound.
    pub lower: Option<f64>,
    /// One-sided upper confidence bound.
    pub upper: Option<f64>,
    /// The confidence of each bound.
    pub confidence: f64,
    /// Warn, then crit, as configured.
    pub levels: Vec<LevelVerdict>,
}

impl Check {
    /// The crit level's verdict (`None` for warn-only targets).
    pub fn crit(&self) -> Option<&LevelVerdict> {
        self.levels.iter().find(|l| l.level == Level::Crit)
    }

    /// The level that decides the check: crit, or warn for a warn-only target.
    pub fn shown(&self) -> &LevelVerdict {
        self.crit()
            .or_else(|| self.levels.first())
            .expect("a target has crit or warn (checked when the file is read)")
    }

    /// Whether the warn level failed.
    pub fn warned(&self) -> bool {
        self.levels
            .iter()
            .any(|l| l.level == Level::Warn && l.verdict == Verdict::Fail)
    }
}

/// Judges every target against the stage samples of a run. A target without a scenario or
/// profile is judged on each one present, separately.
pub fn judge(targets: &Targets, stages: &[StageSample]) -> Vec<Check> {
    let mut checks = Vec::new();
    for t in &targets.targets {
        // The scenario × profile pairs this target covers, in run order.
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for s in stages {
            let pair = (s.scenario.as_str(), s.profile.as_str());
            let wanted = t.scenario.as_deref().is_none_or(|x| x == pair.0)
                && t.profile.as_deref().is_none_or(|x| x == pair.1);
            if wanted && !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        if pairs.is_empty() {
            let scenario = t.scenario.clone().unwrap_or_else(|| "*".into());
            let profile = t.profile.clone().unwrap_or_else(|| "*".into());
            checks.push(judge_one(t, targets.confidence, &scenario, &profile, None));
            continue;
        }
        for (scenario, profile) in pairs {
            let sample = stages
                .iter()
                .find(|s| s.scenario == scenario && s.profile == profile && s.stage == t.stage);
            checks.push(judge_one(t, targets.confidence, scenario, profile, sample));
        }
    }
    checks
}

/// Judges one target on one sample (`None`: the run has no such stage).
pub fn judge_one(
    t: &Target,
    confidence: f64,
    scenario: &str,
    profile: &str,
    sample: Option<&StageSample>,
) -> Check {
    let (samples, value, bounds) = match (t.metric, sample) {
        (Metric::Quantile(q), Some(s)) => (
            s.sorted_ms.len() as u64,
            latlab_analysis::stats::quantile(&s.sorted_ms, q),
            quantile_bounds(&s.sorted_ms, q, confidence),
        ),
        (Metric::ErrorRate | Metric::SuccessRate, Some(s)) => {
            let n = s.attempts() as f64;
            let k = match t.metric {
                Metric::ErrorRate => s.errors as f64,
                _ => n - s.errors as f64,
            };
            let b = rate_bounds(k, n, confidence);
            let pct = |v: Option<f64>| v.map(|v| v * 100.0);
            (
                s.attempts(),
                (n > 0.0).then(|| 100.0 * k / n),
                Bounds {
                    lower: pct(b.lower),
                    upper: pct(b.upper),
                },
            )
        }
        (_, None) => (
            0,
            None,
            Bounds {
                lower: None,
                upper: None,
            },
        ),
    };
    let mut levels = Vec::new();
    for (level, limit) in [(Level::Warn, t.warn), (Level::Crit, t.crit)] {
        let Some(limit) = limit else { continue };
        levels.push(level_verdict(t, confidence, sample, bounds, level, limit));
    }
    Check {
        target: t.name.clone(),
        scenario: scenario.to_string(),
        profile: profile.to_string(),
        stage: t.stage.clone(),
        metric: t.metric.label(),
        unit: t.metric.unit(),
        samples,
        value,
        lower: bounds.lower,
        upper: bounds.upper,
        confidence,
        levels,
    }
}

fn level_verdict(
    t: &Target,
    confidence: f64,
    sample: Option<&StageSample>,
    bounds: Bounds,
    level: Level,
    limit: f64,
) -> LevelVerdict {
    let unit = t.metric.unit();
    let conf = confidence * 100.0;
    let Some(s) = sample.filter(|s| match t.metric {
        Metric::Quantile(_) => !s.sorted_ms.is_empty(),
        _ => s.attempts() > 0,
    }) else {
        let need_more = match t.metric {
            Metric::Quantile(q) => Some(crate::bounds::min_samples_to_pass(q, confidence)),
            _ => None,
        };
        return LevelVerdict {
            level,
            limit,
            verdict: Verdict::Inconclusive,
            need_more,
            reason: format!("no {} samples in this run", t.stage),
        };
    };
    // "Good" is under a ceiling or over a floor.
    let (good, bad) = if t.metric.is_floor() {
        (
            bounds.lower.is_some_and(|l| l > limit),
            bounds.upper.is_some_and(|u| u < limit),
        )
    } else {
        (
            bounds.upper.is_some_and(|u| u < limit),
            bounds.lower.is_some_and(|l| l > limit),
        )
    };
    let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
    let interval = format!(
        "{conf:.0} % bounds [{}, {}] {unit}",
        fmt(bounds.lower),
        fmt(bounds.upper)
    );
    let (verdict, need_more, reason) = if good {
        (
            Verdict::Pass,
            None,
            format!("{interval}: all on the good side of {limit} {unit}"),
        )
    } else if bad {
        (
            Verdict::Fail,
            None,
            format!("{interval}: all on the bad side of {limit} {unit}"),
        )
    } else {
        let need = need_more(t.metric, s, limit, confidence);
        let reason = match need {
            Some(more) => format!(
                "{interval} straddle {limit} {unit}; about {more} more samples at this rate would decide it"
            ),
            None => format!(
                "{interval} straddle {limit} {unit}; the value sits on the limit, more samples at this rate would not decide it"
            ),
        };
        (Verdict::Inconclusive, need, reason)
    };
    LevelVerdict {
        level,
        limit,
        verdict,
        need_more,
        reason,
    }
}

/// About how many more samples, drawn like those seen so far, would turn an INCONCLUSIVE into
/// a PASS or FAIL.
fn need_more(metric: Metric, s: &StageSample, limit: f64, confidence: f64) -> Option<u64> {
    match metric {
        Metric::Quantile(q) => {
            let n = s.sorted_ms.len() as u64;
            let at_or_over = s.sorted_ms.iter().filter(|v| **v >= limit).count() as f64 / n as f64;
            let over = s.sorted_ms.iter().filter(|v| **v > limit).count() as f64 / n as f64;
            let m = if at_or_over < 1.0 - q {
                first(n + 1, |m| {
                    tolerated_over(m, q, confidence)
                        .is_some_and(|t| t as f64 >= (at_or_over * m as f64).ceil())
                })
            } else if over > 1.0 - q {
                first(n + 1, |m| {
                    decisive_over(m, q, confidence)
                        .is_some_and(|d| d as f64 <= (over * m as f64).floor())
                })
            } else {
                None
            }?;
            Some(m - n)
        }
        Metric::ErrorRate | Metric::SuccessRate => {
            let n = s.attempts();
            let errors = s.errors as f64 / n as f64;
            let rate = if metric == Metric::ErrorRate {
                errors
            } else {
                1.0 - errors
            };
            let limit = limit / 100.0;
            let floor = metric.is_floor();
            if rate == limit {
                return None;
            }
            // Heading for PASS or FAIL; decided once the interval around the same rate
            // leaves the limit on that side.
            let heading_good = if floor { rate > limit } else { rate < limit };
            let m = first(n + 1, |m| {
                let b = rate_bounds(rate * m as f64, m as f64, confidence);
                let (lo, hi) = (b.lower.unwrap_or(0.0), b.upper.unwrap_or(1.0));
                let (good, bad) = if floor {
                    (lo > limit, hi < limit)
                } else {
                    (hi < limit, lo > limit)
                };
                if heading_good { good } else { bad }
            })?;
            Some(m - n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: Vec<f64>, errors: u64) -> StageSample {
        let mut sorted_ms = values;
        sorted_ms.sort_by(f64::total_cmp);
        StageSample {
            scenario: "s".into(),
            profile: "p".into(),
            stage: "turn".into(),
            errors,
            skipped: 0,
            sorted_ms,
        }
    }

    fn target(metric: Metric, crit: f64) -> Target {
        Target {
            name: "t".into(),
            scenario: None,
            profile: None,
            stage: "turn".into(),
            metric,
            warn: None,
            crit: Some(crit),
        }
    }

    fn crit(t: &Target, s: &StageSample) -> LevelVerdict {
        judge_one(t, 0.99, "s", "p", Some(s))
            .crit()
            .unwrap()
            .clone()
    }

    // 400 latencies spread evenly over 100..=500 ms: P90 = 460 ms.
    fn spread() -> StageSample {
        sample((0..400).map(|i| 100.0 + f64::from(i)).collect(), 0)
    }

    #[test]
    fn clearly_under_passes_and_clearly_over_fails() {
        let p90 = Metric::Quantile(0.9);
        assert_eq!(crit(&target(p90, 600.0), &spread()).verdict, Verdict::Pass);
        assert_eq!(crit(&target(p90, 300.0), &spread()).verdict, Verdict::Fail);
    }

    #[test]
    fn straddling_is_inconclusive_and_says_how_many_more() {
        let v = crit(&target(Metric::Quantile(0.9), 470.0), &spread());
        assert_eq!(v.verdict, Verdict::Inconclusive, "{v:?}");
        let more = v.need_more.expect("a count");
        // 7.5 % of samples reach 470 ms against the 10 % allowed: some hundreds more decide it.
        assert!((100..20_000).contains(&more), "{more}");
        assert!(
            v.reason.contains(&format!("about {more} more")),
            "{}",
            v.reason
        );
        // The same spread with that many more samples does pass.
        let n = 400 + more as usize;
        let bigger = sample(
            (0..n)
                .map(|i| 100.0 + 400.0 * i as f64 / n as f64)
                .collect(),
            0,
        );
        assert_eq!(
            crit(&target(Metric::Quantile(0.9), 470.0), &bigger).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn never_passes_on_fewer_samples_than_the_bound_allows() {
        let t = target(Metric::Quantile(0.9), 1000.0);
        let v = crit(&t, &sample(vec![1.0; 63], 0));
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert_eq!(v.need_more, Some(1));
        assert_eq!(crit(&t, &sample(vec![1.0; 64], 0)).verdict, Verdict::Pass);
    }

    #[test]
    fn no_samples_is_inconclusive() {
        let v = judge_one(&target(Metric::Quantile(0.9), 100.0), 0.99, "s", "p", None);
        assert_eq!(v.samples, 0);
        assert_eq!(v.crit().unwrap().verdict, Verdict::Inconclusive);
        assert_eq!(v.crit().unwrap().need_more, Some(64));
    }

    #[test]
    fn rates_judge_errors_and_successes() {
        let ok = |n: usize| (0..n).map(|i| i as f64).collect::<Vec<_>>();
        // 2 errors in 1000: error rate clearly under 10 %, success clearly over 95 %.
        let good = sample(ok(998), 2);
        assert_eq!(
            crit(&target(Metric::ErrorRate, 10.0), &good).verdict,
            Verdict::Pass
        );
        assert_eq!(
            crit(&target(Metric::SuccessRate, 95.0), &good).verdict,
            Verdict::Pass
        );
        // 300 errors in 1000: clearly over 25 %, success clearly under 95 %.
        let bad = sample(ok(700), 300);
        assert_eq!(
            crit(&target(Metric::ErrorRate, 25.0), &bad).verdict,
            Verdict::Fail
        );
        assert_eq!(
            crit(&target(Metric::SuccessRate, 95.0), &bad).verdict,
            Verdict::Fail
        );
        // 1 error in 20: the interval holds 10 %.
        let few = sample(ok(19), 1);
        let v = crit(&target(Metric::ErrorRate, 10.0), &few);
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert!(v.need_more.is_some_and(|m| m > 0), "{v:?}");
        let v = crit(&target(Metric::SuccessRate, 90.0), &few);
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert!(v.need_more.is_some(), "{v:?}");
    }
}
