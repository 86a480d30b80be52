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
        (Metric::Fps, Some(s)) => (
            s.fps_windows.len() as u64,
            latlab_analysis::stats::quantile(&s.fps_windows, FPS_QUANTILE),
            fps_bounds(&s.fps_windows, confidence),
        ),
        // Every other metric is a rate.
        (_, Some(s)) => {
            let (k, n) = rate_counts(t.metric, s);
            let (k, n) = (k as f64, n as f64);
            let b = rate_bounds(k, n, confidence);
            let pct = |v: Option<f64>| v.map(|v| v * 100.0);
            (
                n as u64,
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
        Metric::Fps => !s.fps_windows.is_empty(),
        _ => rate_counts(t.metric, s).1 > 0,
    }) else {
        let need_more = match t.metric {
            Metric::Quantile(q) => Some(crate::bounds::min_samples_to_pass(q, confidence)),
            Metric::Fps => Some(crate::bounds::min_samples_to_pass(FPS_QUANTILE, confidence)),
            _ => None,
        };
        let reason = match (t.metric, sample) {
            (_, Some(s)) if s.sorted_ms.is_empty() && s.errors == 0 && s.skipped > 0 => format!(
                "every one of this run's {} {} spans was skipped: none ran (a run without {} calls?)",
                s.skipped, t.stage, t.stage
            ),
            (Metric::HitRate, Some(_)) => format!(
                "no {} call reached a cache in this run (the profile's tool_cache is \"none\"?)",
                t.stage
            ),
            (Metric::Fps, Some(_)) => format!(
                "no whole 1 s FPS windows in this run's {} samples (the replay is shorter than a second)",
                t.stage
            ),
            _ => format!("no {} samples in this run", t.stage),
        };
        return LevelVerdict {
            level,
            limit,
            verdict: Verdict::Inconclusive,
            need_more,
            reason,
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

/// The quantile of the FPS windows a `fps` target bounds: the median window.
pub const FPS_QUANTILE: f64 = 0.5;

/// Events and trials of a rate metric: (errors, attempts), (successes, attempts), (missed,
/// captured frames), (cache hits, calls that reached the cache), or an agent rate's (events,
/// turns or replies).
fn rate_counts(metric: Metric, s: &StageSample) -> (u64, u64) {
    match metric {
        Metric::SuccessRate => (s.attempts() - s.errors, s.attempts()),
        Metric::DeadlineMissRate => (s.missed, s.frames),
        Metric::HitRate => s.rate(latlab_analysis::tool::HIT_RATE),
        m => match m.agent_statistic() {
            Some(statistic) => s.rate(statistic),
            None => (s.errors, s.attempts()),
        },
    }
}

/// Order-statistic bounds on the median FPS window, a floor: the mirror image of a latency
/// percentile's ceiling (the bounds of the negated windows, negated back), so PASS needs as
/// many windows as a median latency target and obeys the same `t ≥ 1` rule.
pub fn fps_bounds(sorted_fps: &[f64], confidence: f64) -> Bounds {
    let mirrored: Vec<f64> = sorted_fps.iter().rev().map(|v| -v).collect();
    let b = quantile_bounds(&mirrored, FPS_QUANTILE, confidence);
    Bounds {
        lower: b.upper.map(|v| -v),
        upper: b.lower.map(|v| -v),
    }
}

/// About how many more samples, drawn like those seen so far, would turn an INCONCLUSIVE into
/// a PASS or FAIL.
fn need_more(metric: Metric, s: &StageSample, limit: f64, confidence: f64) -> Option<u64> {
    match metric {
        Metric::Quantile(q) => quantile_need_more(&s.sorted_ms, q, limit, confidence),
        Metric::Fps => {
            let mirrored: Vec<f64> = s.fps_windows.iter().rev().map(|v| -v).collect();
            quantile_need_more(&mirrored, FPS_QUANTILE, -limit, confidence)
        }
        _ => {
            let (k, n) = rate_counts(metric, s);
            let rate = k as f64 / n as f64;
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

/// [`need_more`] for a ceiling on the q-quantile of an ascending sample.
fn quantile_need_more(sorted: &[f64], q: f64, limit: f64, confidence: f64) -> Option<u64> {
    let n = sorted.len() as u64;
    let at_or_over = sorted.iter().filter(|v| **v >= limit).count() as f64 / n as f64;
    let over = sorted.iter().filter(|v| **v > limit).count() as f64 / n as f64;
    let m = if at_or_over < 1.0 - q {
        first(n + 1, |m| {
            tolerated_over(m, q, confidence)
                .is_some_and(|t| t as f64 >= (at_or_over * m as f64).ceil())
        })
    } else if over > 1.0 - q {
        first(n + 1, |m| {
            decisive_over(m, q, confidence).is_some_and(|d| d as f64 <= (over * m as f64).floor())
        })
    } else {
        None
    }?;
    Some(m - n)
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
            ..StageSample::default()
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

    fn video(fps_windows: Vec<f64>, missed: u64, frames: u64) -> StageSample {
        let mut fps_windows = fps_windows;
        fps_windows.sort_by(f64::total_cmp);
        StageSample {
            stage: "frame".into(),
            frames,
            missed,
            fps_windows,
            ..sample(vec![50.0; 10], 0)
        }
    }

    fn frame_target(metric: Metric, crit: f64) -> Target {
        Target {
            stage: "frame".into(),
            ..target(metric, crit)
        }
    }

    #[test]
    fn deadline_misses_are_a_rate_of_frames_captured() {
        let t = frame_target(Metric::DeadlineMissRate, 10.0);
        let few = video(vec![10.0; 20], 5, 600);
        let check = judge_one(&t, 0.99, "s", "p", Some(&few));
        assert_eq!((check.samples, check.unit), (600, "%"));
        assert!((check.value.unwrap() - 100.0 * 5.0 / 600.0).abs() < 1e-12);
        assert_eq!(crit(&t, &few).verdict, Verdict::Pass);
        assert_eq!(crit(&t, &video(vec![], 120, 600)).verdict, Verdict::Fail);
        // 1 of 20 (5 %): the interval still holds 10 %.
        let v = crit(&t, &video(vec![], 1, 20));
        assert_eq!(v.verdict, Verdict::Inconclusive);
        assert!(v.need_more.is_some_and(|m| m > 0), "{v:?}");
    }

    #[test]
    fn sustained_fps_is_a_floor_on_the_median_window() {
        let steady = video(vec![10.0; 20], 0, 200);
        let check = judge_one(
            &frame_target(Metric::Fps, 9.0),
            0.99,
            "s",
            "p",
            Some(&steady),
        );
        assert_eq!(
            (check.samples, check.value, check.unit),
            (20, Some(10.0), "fps")
        );
        assert_eq!(check.crit().unwrap().verdict, Verdict::Pass);
        assert_eq!(
            crit(&frame_target(Metric::Fps, 10.6), &steady).verdict,
            Verdict::Fail
        );
        let mixed: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 10.0 } else { 11.0 })
            .collect();
        let v = crit(&frame_target(Metric::Fps, 10.6), &video(mixed, 0, 200));
        assert_eq!(v.verdict, Verdict::Inconclusive, "{v:?}");
        // The bounds are the median's order statistics: with 20 windows at 99 %, the 5th
        // lowest and the 5th highest.
        let ramp: Vec<f64> = (1..=20).map(f64::from).collect();
        let b = fps_bounds(&ramp, 0.99);
        assert_eq!((b.lower, b.upper), (Some(5.0), Some(16.0)));
        // Ten windows are too few to pass at 99 %, however fast; eleven are enough.
        let short = crit(
            &frame_target(Metric::Fps, 1.0),
            &video(vec![30.0; 10], 0, 100),
        );
        assert_eq!(short.verdict, Verdict::Inconclusive);
        assert_eq!(short.need_more, Some(1));
        assert_eq!(
            crit(
                &frame_target(Metric::Fps, 1.0),
                &video(vec![30.0; 11], 0, 110)
            )
            .verdict,
            Verdict::Pass
        );
        // A run with no frame stage at all stays INCONCLUSIVE and says why.
        let none = judge_one(&frame_target(Metric::Fps, 10.6), 0.99, "s", "p", None);
        assert_eq!(none.crit().unwrap().verdict, Verdict::Inconclusive);
        assert!(none.crit().unwrap().reason.contains("no frame samples"));
    }
}
