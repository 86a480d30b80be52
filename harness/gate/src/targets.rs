//! Targets files: limits on a stage's percentiles or error rate per scenario and profile (and
//! on the video lane's deadline-miss rate and sustained FPS, and on an agent run's
//! turn-taking rates, and on the tool cache's hit rate; its interruption latency, leading silence and unseen time are stages
//! with percentiles like any other),
//! with optional `warn` and `crit` levels (`docs/ci.md` shows the format).
//!
//! Every error names the file and, where it can, the line and key.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::bounds::DEFAULT_CONFIDENCE;

/// What a target limits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A latency percentile (q in (0, 1)), limited from above, in ms.
    Quantile(f64),
    /// Failed spans over attempted ones, limited from above, in percent.
    ErrorRate,
    /// Successful spans over attempted ones, limited from below, in percent.
    SuccessRate,
    /// Frames that missed their deadline (late, skipped or failed) over frames captured,
    /// limited from above, in percent (stage `frame` only).
    DeadlineMissRate,
    /// Sustained frames per second: the median of the per-stream 1 s window rates, limited
    /// from below (stage `frame` only; `docs/ci.md`).
    Fps,
    /// Agent turns with no audible reply within the answer timeout, over agent turns, limited
    /// from above, in percent (stage `agent` only).
    DeadAirRate,
    /// Agent turns where the agent started speaking in a pause inside the caller's turn, over
    /// agent turns, limited from above, in percent (stage `agent` only).
    FalseCutoffRate,
    /// Agent turns where the agent was heard while the caller spoke, over agent turns, limited
    /// from above, in percent (stage `agent` only).
    TalkOverRate,
    /// Replies with at least one playback gap, over replies heard, limited from above, in
    /// percent (stage `agent` only).
    GapRate,
    /// Tool calls whose result came from the cache, over the calls that reached it (hits +
    /// misses), limited from below, in percent (stage `tool` only).
    HitRate,
}

/// The stage of the vision lane's targets: frame latency, capture → result.
pub const FRAME_STAGE: &str = "frame";

/// The stage of tool calls (and the cache's hit rate).
pub const TOOL_STAGE: &str = latlab_analysis::tool::TOOL_STAGE;

/// The stage of an agent run's turn-taking rates.
pub const AGENT_STAGE: &str = latlab_analysis::agent::AGENT_STAGE;

impl Metric {
    /// Parses `p50`, `p90`, `p99.9`, `error_rate`, `success_rate`, `deadline_miss_rate`, `fps`,
    /// `dead_air_rate`, `false_cutoff_rate`, `talk_over_rate`, `gap_rate`, `hit_rate`.
    pub fn parse(s: &str) -> Option<Metric> {
        use latlab_analysis::agent as a;
        match s {
            "error_rate" => Some(Metric::ErrorRate),
            "success_rate" => Some(Metric::SuccessRate),
            "deadline_miss_rate" => Some(Metric::DeadlineMissRate),
            "fps" => Some(Metric::Fps),
            a::DEAD_AIR_RATE => Some(Metric::DeadAirRate),
            a::FALSE_CUTOFF_RATE => Some(Metric::FalseCutoffRate),
            a::TALK_OVER_RATE => Some(Metric::TalkOverRate),
            a::GAP_RATE => Some(Metric::GapRate),
            latlab_analysis::tool::HIT_RATE => Some(Metric::HitRate),
            _ => {
                let pct: f64 = s.strip_prefix('p')?.parse().ok()?;
                (pct > 0.0 && pct < 100.0).then_some(Metric::Quantile(pct / 100.0))
            }
        }
    }

    /// The name as written in targets files and reports.
    pub fn label(&self) -> String {
        match self {
            // Rounded so p99.9 does not print as p99.89999999999999.
            Metric::Quantile(q) => format!("p{}", (q * 100_000.0).round() / 1000.0),
            Metric::ErrorRate => "error_rate".into(),
            Metric::SuccessRate => "success_rate".into(),
            Metric::DeadlineMissRate => "deadline_miss_rate".into(),
            Metric::Fps => "fps".into(),
            Metric::HitRate => latlab_analysis::tool::HIT_RATE.into(),
            Metric::DeadAirRate
            | Metric::FalseCutoffRate
            | Metric::TalkOverRate
            | Metric::GapRate => self.agent_statistic().unwrap_or_default().into(),
        }
    }

    /// The statistic's name in the analysis (`latlab_analysis::agent::RATES`), for the agent
    /// run's rates.
    pub fn agent_statistic(&self) -> Option<&'static str> {
        use latlab_analysis::agent as a;
        match self {
            Metric::DeadAirRate => Some(a::DEAD_AIR_RATE),
            Metric::FalseCutoffRate => Some(a::FALSE_CUTOFF_RATE),
            Metric::TalkOverRate => Some(a::TALK_OVER_RATE),
            Metric::GapRate => Some(a::GAP_RATE),
            _ => None,
        }
    }

    /// The unit of its limits.
    pub fn unit(&self) -> &'static str {
        match self {
            Metric::Quantile(_) => "ms",
            Metric::Fps => "fps",
            _ => "%",
        }
    }

    /// Whether the limit is a floor (the value must stay above it) rather than a ceiling.
    pub fn is_floor(&self) -> bool {
        matches!(self, Metric::SuccessRate | Metric::Fps | Metric::HitRate)
    }

    /// Whether the metric is a proportion judged with binomial bounds.
    pub fn is_rate(&self) -> bool {
        matches!(
            self,
            Metric::ErrorRate | Metric::SuccessRate | Metric::DeadlineMissRate | Metric::HitRate
        ) || self.agent_statistic().is_some()
    }

    /// Whether the metric exists only for the vision lane's `frame` stage.
    pub fn frames_only(&self) -> bool {
        matches!(self, Metric::DeadlineMissRate | Metric::Fps)
    }
}

/// One target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Target {
    /// A name for reports (given, or made from stage and metric).
    pub name: String,
    /// Only this scenario (`None`: any).
    pub scenario: Option<String>,
    /// Only this profile (`None`: every profile, each judged on its own).
    pub profile: Option<String>,
    /// The stage (`turn` is voice-to-voice).
    pub stage: String,
    /// What is limited.
    pub metric: Metric,
    /// The warning level: crossing it is reported, not failed.
    pub warn: Option<f64>,
    /// The critical level: crossing it fails the gate.
    pub crit: Option<f64>,
}

/// A whole targets file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Targets {
    /// The file it came from.
    pub path: PathBuf,
    /// Its name (given, or the file stem).
    pub name: String,
    /// Confidence of every bound, e.g. 0.99.
    pub confidence: f64,
    /// The targets, in file order.
    pub targets: Vec<Target>,
}

/// What can be wrong with a targets file.
#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    /// The file cannot be read.
    #[error("cannot read targets file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or shape (toml's message carries line, column and key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message.
        message: String,
    },
    /// A value is invalid.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    name: Option<String>,
    #[allow(dead_code)] // documentation for people reading the file
    description: Option<String>,
    confidence: Option<Spanned<f64>>,
    #[serde(default)]
    target: Vec<Spanned<TargetSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    name: Option<String>,
    scenario: Option<String>,
    profile: Option<String>,
    stage: Spanned<String>,
    metric: Spanned<String>,
    limit: Option<Spanned<f64>>,
    warn: Option<Spanned<f64>>,
    crit: Option<Spanned<f64>>,
}

/// Stage names latlab records; others are accepted (a stage a future pipeline records) and
/// simply have no samples until then.
pub const KNOWN_STAGES: [&str; 6] = latlab_results::span::STAGE_NAMES;

impl Targets {
    /// Reads and validates a targets file.
    pub fn load(path: &Path) -> Result<Targets, TargetsError> {
        let text = std::fs::read_to_string(path).map_err(|source| TargetsError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Targets::parse(path, &text)
    }

    /// Parses the text of a targets file (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Targets, TargetsError> {
        let spec: FileSpec = toml::from_str(text).map_err(|e| TargetsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid =
            |span: std::ops::Range<usize>, key: &str, message: String| TargetsError::Invalid {
                path: path.to_path_buf(),
                line: text[..span.start.min(text.len())].matches('\n').count() + 1,
                key: key.to_string(),
                message,
            };
        let confidence = match &spec.confidence {
            Some(c) if !(0.5..1.0).contains(c.get_ref()) => {
                return Err(invalid(
                    c.span(),
                    "confidence",
                    format!("{} is not in [0.5, 1), e.g. 0.99", c.get_ref()),
                ));
            }
            Some(c) => *c.get_ref(),
            None => DEFAULT_CONFIDENCE,
        };
        if spec.target.is_empty() {
            return Err(invalid(0..0, "target", "no [[target]] tables".into()));
        }
        let mut targets = Vec::new();
        for t in &spec.target {
            let span = t.span();
            let t = t.get_ref();
            let stage = match t.stage.get_ref().as_str() {
                "voice_to_voice" | "v2v" => latlab_results::span::Stage::Turn.as_str().to_string(),
                s if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
                {
                    s.to_string()
                }
                s => {
                    return Err(invalid(
                        t.stage.span(),
                        "stage",
                        format!(
                            "{s:?} is not a stage name (latlab records {}, {FRAME_STAGE} for video, and {AGENT_STAGE}, interruption, agent_lead and unseen for agent runs; `voice_to_voice` means turn)",
                            KNOWN_STAGES.join(", ")
                        ),
                    ));
                }
            };
            let metric = Metric::parse(t.metric.get_ref()).ok_or_else(|| {
                invalid(
                    t.metric.span(),
                    "metric",
                    format!(
                        "{:?} is not a metric: p50, p90, p95, p99 (any pNN), error_rate, success_rate, deadline_miss_rate, fps, dead_air_rate, false_cutoff_rate, talk_over_rate, gap_rate or hit_rate",
                        t.metric.get_ref()
                    ),
                )
            })?;
            if metric.agent_statistic().is_some() && stage != AGENT_STAGE {
                return Err(invalid(
                    t.stage.span(),
                    "stage",
                    format!(
                        "metric {} belongs to agent runs: give stage = \"{AGENT_STAGE}\", not {stage:?}",
                        metric.label()
                    ),
                ));
            }
            if metric == Metric::HitRate && stage != TOOL_STAGE {
                return Err(invalid(
                    t.stage.span(),
                    "stage",
                    format!(
                        "metric {} belongs to tool calls: give stage = \"{TOOL_STAGE}\", not {stage:?}",
                        metric.label()
                    ),
                ));
            }
            if metric.frames_only() && stage != FRAME_STAGE {
                return Err(invalid(
                    t.stage.span(),
                    "stage",
                    format!(
                        "metric {} belongs to the video lane: give stage = \"{FRAME_STAGE}\", not {stage:?}",
                        metric.label()
                    ),
                ));
            }
            let crit = match (&t.limit, &t.crit) {
                (Some(l), Some(_)) => {
                    return Err(invalid(
                        l.span(),
                        "limit",
                        "give `limit` or `crit`, not both (they mean the same)".into(),
                    ));
                }
                (l, c) => l.as_ref().or(c.as_ref()),
            };
            if crit.is_none() && t.warn.is_none() {
                return Err(invalid(
                    span,
                    "crit",
                    "a target needs `crit` (or `limit`) and/or `warn`".into(),
                ));
            }
            for (key, level) in [("warn", t.warn.as_ref()), ("crit", crit)] {
                let Some(level) = level else { continue };
                let v = *level.get_ref();
                let ok = match metric {
                    Metric::Quantile(_) | Metric::Fps => v.is_finite() && v > 0.0,
                    _ => (0.0..=100.0).contains(&v),
                };
                if !ok {
                    return Err(invalid(
                        level.span(),
                        key,
                        match metric {
                            Metric::Quantile(_) => format!("{v} is not a latency in ms (> 0)"),
                            Metric::Fps => format!("{v} is not a frame rate (> 0)"),
                            _ => format!("{v} is not a percentage (0 to 100)"),
                        },
                    ));
                }
            }
            if let (Some(w), Some(c)) = (&t.warn, crit) {
                let (w, c) = (*w.get_ref(), *c.get_ref());
                let ordered = if metric.is_floor() { w >= c } else { w <= c };
                if !ordered {
                    return Err(invalid(
                        t.warn.as_ref().map_or(span.clone(), Spanned::span),
                        "warn",
                        format!(
                            "warn {w} must be {} than crit {c}",
                            if metric.is_floor() { "higher" } else { "lower" }
                        ),
                    ));
                }
            }
            targets.push(Target {
                name: t
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{stage} {}", metric.label())),
                scenario: t.scenario.clone().filter(|s| s != "*"),
                profile: t.profile.clone().filter(|s| s != "*"),
                stage,
                metric,
                warn: t.warn.as_ref().map(|w| *w.get_ref()),
                crit: crit.map(|c| *c.get_ref()),
            });
        }
        Ok(Targets {
            path: path.to_path_buf(),
            name: spec.name.unwrap_or_else(|| {
                path.file_stem()
                    .map_or("targets".into(), |s| s.to_string_lossy().into_owned())
            }),
            confidence,
            targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Targets, String> {
        Targets::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_levels_and_defaults() {
        let t = parse(
            "name = \"agent\"\n[[target]]\nstage = \"voice_to_voice\"\nmetric = \"p95\"\nwarn = 1500\ncrit = 3000\n\n[[target]]\nprofile = \"balanced\"\nstage = \"llm\"\nmetric = \"p90\"\nlimit = 300\n",
        )
        .unwrap();
        assert_eq!(t.name, "agent");
        assert_eq!(t.confidence, DEFAULT_CONFIDENCE);
        assert_eq!(t.targets[0].stage, "turn");
        assert_eq!(t.targets[0].metric, Metric::Quantile(0.95));
        assert_eq!(
            (t.targets[0].warn, t.targets[0].crit),
            (Some(1500.0), Some(3000.0))
        );
        assert_eq!(t.targets[1].crit, Some(300.0));
        assert_eq!(t.targets[1].profile.as_deref(), Some("balanced"));
        assert_eq!(t.targets[1].name, "llm p90");
        assert_eq!(Metric::parse("p99.9").unwrap().label(), "p99.9");
    }

    #[test]
    fn vision_metrics_read_and_belong_to_frames() {
        let t = parse(
            "[[target]]\nstage = \"frame\"\nmetric = \"fps\"\nwarn = 12\ncrit = 10.6\n\n[[target]]\nstage = \"frame\"\nmetric = \"deadline_miss_rate\"\ncrit = 10\n\n[[target]]\nstage = \"frame\"\nmetric = \"p95\"\ncrit = 105\n",
        )
        .unwrap();
        assert_eq!(t.targets[0].metric, Metric::Fps);
        assert!(Metric::Fps.is_floor() && !Metric::DeadlineMissRate.is_floor());
        assert_eq!(
            (t.targets[0].warn, t.targets[0].crit),
            (Some(12.0), Some(10.6))
        );
        assert_eq!(t.targets[1].metric, Metric::DeadlineMissRate);
        assert_eq!(t.targets[1].name, "frame deadline_miss_rate");
        assert_eq!(t.targets[2].metric, Metric::Quantile(0.95));
        assert_eq!(Metric::Fps.unit(), "fps");
        // A floor's warn sits above its crit.
        let e = parse("[[target]]\nstage = \"frame\"\nmetric = \"fps\"\nwarn = 9\ncrit = 10\n")
            .unwrap_err();
        assert!(e.contains(":4: key `warn`") && e.contains("higher"), "{e}");
        let e = parse("[[target]]\nstage = \"turn\"\nmetric = \"fps\"\ncrit = 10\n").unwrap_err();
        assert!(
            e.starts_with("t.toml:2: key `stage`") && e.contains("frame"),
            "{e}"
        );
        let e = parse("[[target]]\nstage = \"frame\"\nmetric = \"fps\"\ncrit = 0\n").unwrap_err();
        assert!(e.contains("frame rate"), "{e}");
    }

    #[test]
    fn agent_metrics_read_and_belong_to_the_agent_stage() {
        let t = parse(
            "[[target]]\nstage = \"interruption\"\nmetric = \"p95\"\ncrit = 500\n\n[[target]]\nstage = \"agent\"\nmetric = \"dead_air_rate\"\ncrit = 2\n\n[[target]]\nstage = \"agent\"\nmetric = \"gap_rate\"\nwarn = 5\n",
        )
        .unwrap();
        assert_eq!(t.targets[0].stage, "interruption");
        assert_eq!(t.targets[0].metric, Metric::Quantile(0.95));
        assert_eq!(t.targets[1].metric, Metric::DeadAirRate);
        assert_eq!(t.targets[1].name, "agent dead_air_rate");
        assert_eq!(t.targets[2].metric, Metric::GapRate);
        for m in [
            "dead_air_rate",
            "false_cutoff_rate",
            "talk_over_rate",
            "gap_rate",
        ] {
            let metric = Metric::parse(m).unwrap();
            assert_eq!(metric.label(), m);
            assert!(metric.is_rate() && !metric.is_floor());
            assert_eq!(metric.unit(), "%");
        }
        let e = parse("[[target]]\nstage = \"turn\"\nmetric = \"false_cutoff_rate\"\ncrit = 5\n")
            .unwrap_err();
        assert!(
            e.starts_with("t.toml:2: key `stage`") && e.contains("agent"),
            "{e}"
        );
        let e = parse("[[target]]\nstage = \"agent\"\nmetric = \"dead_air_rate\"\ncrit = 200\n")
            .unwrap_err();
        assert!(e.contains("percentage"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[[target]]\nstage = \"turn\"\nmetric = \"p95\"\ncrit = 100\n\n[[target]]\nstage = \"stt\"\nmetric = \"p101\"\ncrit = 1\n")
            .unwrap_err();
        assert!(e.starts_with("t.toml:8: key `metric`"), "{e}");
        let e = parse("[[target]]\nstage = \"turn\"\nmetric = \"p95\"\nwarn = 900\ncrit = 500\n")
            .unwrap_err();
        assert!(e.starts_with("t.toml:4: key `warn`"), "{e}");
        let e = parse("[[target]]\nstage = \"turn\"\nmetric = \"error_rate\"\ncrit = 250\n")
            .unwrap_err();
        assert!(
            e.contains(":4: key `crit`") && e.contains("percentage"),
            "{e}"
        );
        let e = parse("[[target]]\nstage = \"turn\"\nmetrik = \"p95\"\n").unwrap_err();
        assert!(e.contains("t.toml") && e.contains("metrik"), "{e}");
        let e =
            parse("confidence = 1.5\n[[target]]\nstage = \"turn\"\nmetric = \"p95\"\ncrit = 1\n")
                .unwrap_err();
        assert!(e.starts_with("t.toml:1: key `confidence`"), "{e}");
    }

    #[test]
    fn shipped_targets_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/targets");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Targets::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 2, "expected the shipped targets in {}", dir.display());
    }
}
