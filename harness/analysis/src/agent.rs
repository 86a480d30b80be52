//! Agent runs: the `agent_*` columns of `turns.parquet` read into plain rows, and the
//! statistics of the report's Agent section — what a caller heard from a running voice agent:
//! the reply's leading silence and length, playback gaps, interruptions, turn-taking errors
//! (false cutoffs, talk-over, dead air), and the agent's own latency figure beside the
//! caller's voice-to-voice ("unseen": the time no internal metric sees).
//!
//! Definitions are in `docs/metrics.md` ("At the caller's ear"). Everything but
//! [`read_agent_turns`] is a pure function over rows already read. A file written before the
//! agent columns existed has no agent turns (the columns are absent, so null).

use std::path::Path;

use latlab_report::model::{AgentRow, Proportion, SelfReportTurn};
use latlab_results::agent::{AgentTurn, Interruption};
use latlab_results::columns as c;
use polars::prelude::*;

use crate::AnalysisError;
use crate::frames::strings;
use crate::stats::proportion_estimate;
use crate::video::latency_stats;

/// The stage name of interruption latency in comparisons and targets files (ms).
pub const INTERRUPTION_STAGE: &str = "interruption";
/// The stage name of the reply's leading silence in comparisons and targets files (ms).
pub const LEAD_STAGE: &str = "agent_lead";
/// The stage name of the unseen time (voice-to-voice − the agent's own figure, ms).
pub const UNSEEN_STAGE: &str = "unseen";
/// The stage name of the agent's turn-taking rates in comparisons and targets files.
pub const AGENT_STAGE: &str = "agent";
/// The statistic name of the dead-air rate (values in %).
pub const DEAD_AIR_RATE: &str = "dead_air_rate";
/// The statistic name of the false-cutoff rate (values in %).
pub const FALSE_CUTOFF_RATE: &str = "false_cutoff_rate";
/// The statistic name of the talk-over rate (values in %).
pub const TALK_OVER_RATE: &str = "talk_over_rate";
/// The statistic name of the playback-gap rate: replies with a gap over replies (values in %).
pub const GAP_RATE: &str = "gap_rate";

/// One turn of an agent run, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTurnRow {
    /// Run id.
    pub run: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Call id.
    pub call: String,
    /// Replay iteration.
    pub iteration: u32,
    /// Turn index.
    pub turn: u32,
    /// Voice-to-voice at the caller's ear, ms (None without an audible reply).
    pub voice_to_voice_ms: Option<f64>,
    /// What the caller heard.
    pub agent: AgentTurn,
}

impl AgentTurnRow {
    /// The interruption latency, ms, on a turn that talked over the agent.
    pub fn interruption_ms(&self) -> Option<f64> {
        self.agent.interruption_ns.map(|ns| ns as f64 / 1e6)
    }

    /// Voice-to-voice − the agent's own figure, ms, when both are known.
    pub fn unseen_ms(&self) -> Option<f64> {
        let own = self.agent.self_ns? as f64 / 1e6;
        Some(self.voice_to_voice_ms? - own)
    }

    /// Whether the agent's audio was heard while the caller spoke.
    pub fn talked_over(&self) -> bool {
        self.agent.talk_over_ms > 0.0
    }
}

/// A column, or all nulls when an older file lacks it (`columns::ADDED`).
fn maybe<T>(
    df: &DataFrame,
    name: &str,
    read: impl Fn(&Column) -> Result<Vec<Option<T>>, PolarsError>,
) -> Result<Vec<Option<T>>, AnalysisError>
where
    T: Clone,
{
    match df.column(name) {
        Ok(column) => Ok(read(column)?),
        Err(_) => Ok(vec![None; df.height()]),
    }
}

fn i64s(column: &Column) -> Result<Vec<Option<i64>>, PolarsError> {
    Ok(column.cast(&DataType::Int64)?.i64()?.iter().collect())
}

fn f64s(column: &Column) -> Result<Vec<Option<f64>>, PolarsError> {
    Ok(column.cast(&DataType::Float64)?.f64()?.iter().collect())
}

fn bools(column: &Column) -> Result<Vec<Option<bool>>, PolarsError> {
    Ok(column.cast(&DataType::Boolean)?.bool()?.iter().collect())
}

fn texts(column: &Column) -> Result<Vec<Option<String>>, PolarsError> {
    Ok(column
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// Reads the agent turns of a `turns.parquet`: the rows whose agent columns are set (none on
/// a run that built its own pipeline, or in a file older than the columns).
pub fn read_agent_turns(path: &Path) -> Result<Vec<AgentTurnRow>, AnalysisError> {
    let file = std::fs::File::open(path).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let df = ParquetReader::new(file).finish()?;
    if !c::AGENT_TURNS.iter().any(|name| df.column(name).is_ok()) {
        return Ok(Vec::new());
    }
    let run = strings(&df, c::RUN)?;
    let scenario = strings(&df, c::SCENARIO)?;
    let profile = strings(&df, c::PROFILE)?;
    let call = strings(&df, c::CALL)?;
    let iteration = maybe(&df, c::ITERATION, i64s)?;
    let turn = maybe(&df, c::TURN, i64s)?;
    let v2v = maybe(&df, c::VOICE_TO_VOICE_NS, i64s)?;
    let first_heard = maybe(&df, c::AGENT_FIRST_HEARD_NS, i64s)?;
    let lead = maybe(&df, c::AGENT_LEAD_MS, f64s)?;
    let reply = maybe(&df, c::AGENT_REPLY_MS, f64s)?;
    let gaps = maybe(&df, c::AGENT_GAPS, i64s)?;
    let gap_ms = maybe(&df, c::AGENT_GAP_MS, f64s)?;
    let interruption = maybe(&df, c::INTERRUPTION_NS, i64s)?;
    let by = maybe(&df, c::INTERRUPTION_BY, texts)?;
    let false_cutoff = maybe(&df, c::FALSE_CUTOFF, bools)?;
    let talk_over = maybe(&df, c::TALK_OVER_MS, f64s)?;
    let dead_air = maybe(&df, c::DEAD_AIR, bools)?;
    let own = maybe(&df, c::AGENT_SELF_NS, i64s)?;
    let mut out = Vec::new();
    for i in 0..df.height() {
        // The writer sets gaps, gap ms, false cutoff, talk-over and dead air on every agent
        // turn: a row with none of them is not one.
        let is_agent = gaps[i].is_some()
            || gap_ms[i].is_some()
            || false_cutoff[i].is_some()
            || talk_over[i].is_some()
            || dead_air[i].is_some();
        if !is_agent {
            continue;
        }
        let interruption_by = match &by[i] {
            Some(name) => {
                Some(
                    name.parse::<Interruption>()
                        .map_err(|e| AnalysisError::Invalid {
                            path: path.to_path_buf(),
                            message: format!("row {i}: {e}"),
                        })?,
                )
            }
            None => None,
        };
        out.push(AgentTurnRow {
            run: run[i].clone(),
            scenario: scenario[i].clone(),
            profile: profile[i].clone(),
            call: call[i].clone(),
            iteration: iteration[i].unwrap_or_default().max(0) as u32,
            turn: turn[i].unwrap_or_default().max(0) as u32,
            voice_to_voice_ms: v2v[i].map(|ns| ns as f64 / 1e6),
            agent: AgentTurn {
                first_heard_ns: first_heard[i].and_then(|ns| u64::try_from(ns).ok()),
                lead_ms: lead[i],
                reply_ms: reply[i],
                gaps: gaps[i].unwrap_or_default().clamp(0, i64::from(u32::MAX)) as u32,
                gap_ms: gap_ms[i].unwrap_or_default(),
                interruption_ns: interruption[i],
                interruption_by,
                false_cutoff: false_cutoff[i].unwrap_or_default(),
                talk_over_ms: talk_over[i].unwrap_or_default(),
                dead_air: dead_air[i].unwrap_or_default(),
                self_ns: own[i],
            },
        });
    }
    Ok(out)
}

/// The agent turns of one run × profile (`profile` None: every profile of the run).
pub fn turns_of<'a>(
    rows: &'a [AgentTurnRow],
    run: &str,
    profile: Option<&str>,
) -> Vec<&'a AgentTurnRow> {
    rows.iter()
        .filter(|t| t.run == run && profile.is_none_or(|p| t.profile == p))
        .collect()
}

/// One field over turns, ascending (turns without it left out).
pub fn sorted(turns: &[&AgentTurnRow], field: impl Fn(&AgentTurnRow) -> Option<f64>) -> Vec<f64> {
    let mut v: Vec<f64> = turns.iter().filter_map(|t| field(t)).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Interruption latencies, ms, ascending.
pub fn interruption_ms(turns: &[&AgentTurnRow]) -> Vec<f64> {
    sorted(turns, AgentTurnRow::interruption_ms)
}

/// Reply leading silences, ms, ascending.
pub fn lead_ms(turns: &[&AgentTurnRow]) -> Vec<f64> {
    sorted(turns, |t| t.agent.lead_ms)
}

/// Unseen times (voice-to-voice − the agent's own figure), ms, ascending.
pub fn unseen_ms(turns: &[&AgentTurnRow]) -> Vec<f64> {
    sorted(turns, AgentTurnRow::unseen_ms)
}

/// Events and trials of a turn-taking rate ([`DEAD_AIR_RATE`], [`FALSE_CUTOFF_RATE`],
/// [`TALK_OVER_RATE`]: over turns; [`GAP_RATE`]: replies with a gap over replies heard); None
/// for another name.
pub fn rate_counts(turns: &[&AgentTurnRow], statistic: &str) -> Option<(u64, u64)> {
    let count = |f: &dyn Fn(&AgentTurnRow) -> bool| turns.iter().filter(|t| f(t)).count() as u64;
    let n = turns.len() as u64;
    match statistic {
        DEAD_AIR_RATE => Some((count(&|t| t.agent.dead_air), n)),
        FALSE_CUTOFF_RATE => Some((count(&|t| t.agent.false_cutoff), n)),
        TALK_OVER_RATE => Some((count(&|t| t.talked_over()), n)),
        GAP_RATE => Some((
            count(&|t| t.agent.reply_ms.is_some() && t.agent.gaps > 0),
            count(&|t| t.agent.reply_ms.is_some()),
        )),
        _ => None,
    }
}

/// The rate statistics, in report order.
pub const RATES: [&str; 4] = [DEAD_AIR_RATE, FALSE_CUTOFF_RATE, TALK_OVER_RATE, GAP_RATE];

fn proportion(k: u64, n: u64) -> Proportion {
    Proportion {
        k,
        n,
        rate: proportion_estimate(k, n),
    }
}

/// The Agent section's row of one run × profile; None without agent turns.
pub fn agent_row(turns: &[&AgentTurnRow], agent: &str, seed: u64) -> Option<AgentRow> {
    let first = turns.first()?;
    let what = |metric: &str| format!("agent/{}/{}/{metric}", first.run, first.profile);
    let replies = turns.iter().filter(|t| t.agent.reply_ms.is_some()).count() as u64;
    let (gapped, with_reply) = rate_counts(turns, GAP_RATE).unwrap_or_default();
    let count = |f: &dyn Fn(&AgentTurnRow) -> bool| turns.iter().filter(|t| f(t)).count() as u64;
    let n = turns.len() as u64;
    let interrupted: Vec<&&AgentTurnRow> = turns
        .iter()
        .filter(|t| t.agent.interruption_ns.is_some() || t.agent.interruption_by.is_some())
        .collect();
    Some(AgentRow {
        run: first.run.clone(),
        profile: first.profile.clone(),
        agent: agent.to_string(),
        turns: n,
        replies,
        lead: latency_stats(&lead_ms(turns), seed, &what("lead")),
        reply: latency_stats(&sorted(turns, |t| t.agent.reply_ms), seed, &what("reply")),
        gapped: proportion(gapped, with_reply),
        gaps: turns.iter().map(|t| u64::from(t.agent.gaps)).sum(),
        gap_ms: turns.iter().map(|t| t.agent.gap_ms).sum(),
        interruptions: interrupted.len() as u64,
        interruption: latency_stats(&interruption_ms(turns), seed, &what("interruption")),
        interruption_by: Interruption::ALL
            .iter()
            .map(|way| {
                let k = interrupted
                    .iter()
                    .filter(|t| t.agent.interruption_by == Some(*way))
                    .count() as u64;
                (way.as_str().to_string(), k)
            })
            .collect(),
        false_cutoff: proportion(count(&|t| t.agent.false_cutoff), n),
        talk_over: proportion(count(&|t| t.talked_over()), n),
        talk_over_ms: turns.iter().map(|t| t.agent.talk_over_ms).sum(),
        dead_air: proportion(count(&|t| t.agent.dead_air), n),
        unseen: latency_stats(&unseen_ms(turns), seed, &what("unseen")),
    })
}

/// The turns with the agent's own figure and the caller's voice-to-voice, in file order.
pub fn self_report_turns(turns: &[&AgentTurnRow]) -> Vec<SelfReportTurn> {
    turns
        .iter()
        .filter_map(|t| {
            let v2v = t.voice_to_voice_ms?;
            let own = t.agent.self_ns? as f64 / 1e6;
            Some(SelfReportTurn {
                run: t.run.clone(),
                profile: t.profile.clone(),
                call: t.call.clone(),
                iteration: t.iteration,
                turn: t.turn,
                voice_to_voice_ms: v2v,
                agent_ms: own,
                unseen_ms: v2v - own,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(i: u32, agent: AgentTurn, v2v: Option<f64>) -> AgentTurnRow {
        AgentTurnRow {
            run: "r".into(),
            scenario: "s".into(),
            profile: "p".into(),
            call: format!("c{}", i / 4),
            iteration: 0,
            turn: i % 4,
            voice_to_voice_ms: v2v,
            agent,
        }
    }

    #[test]
    fn rates_count_their_own_trials() {
        let reply = |gaps| AgentTurn {
            reply_ms: Some(1000.0),
            gaps,
            ..AgentTurn::default()
        };
        let rows = [
            turn(0, reply(1), Some(500.0)),
            turn(1, reply(0), Some(600.0)),
            turn(
                2,
                AgentTurn {
                    dead_air: true,
                    ..AgentTurn::default()
                },
                None,
            ),
            turn(
                3,
                AgentTurn {
                    talk_over_ms: 40.0,
                    false_cutoff: true,
                    ..reply(0)
                },
                Some(700.0),
            ),
        ];
        let refs: Vec<&AgentTurnRow> = rows.iter().collect();
        assert_eq!(rate_counts(&refs, DEAD_AIR_RATE), Some((1, 4)));
        assert_eq!(rate_counts(&refs, FALSE_CUTOFF_RATE), Some((1, 4)));
        assert_eq!(rate_counts(&refs, TALK_OVER_RATE), Some((1, 4)));
        // A gap can only be in a reply: the dead-air turn is not a trial.
        assert_eq!(rate_counts(&refs, GAP_RATE), Some((1, 3)));
        assert_eq!(rate_counts(&refs, "p95"), None);
        let row = agent_row(&refs, "bot", 1).unwrap();
        assert_eq!((row.turns, row.replies, row.interruptions), (4, 3, 0));
        assert_eq!(row.dead_air.rate.unwrap().value, 0.25);
        assert_eq!(row.unseen.count, 0);
    }

    #[test]
    fn unseen_is_voice_to_voice_minus_the_agents_own_figure() {
        let own = |ms: i64| AgentTurn {
            self_ns: Some(ms * 1_000_000),
            ..AgentTurn::default()
        };
        let rows = [
            turn(0, own(300), Some(800.0)),
            turn(1, own(300), None),
            turn(2, AgentTurn::default(), Some(900.0)),
        ];
        let refs: Vec<&AgentTurnRow> = rows.iter().collect();
        assert_eq!(unseen_ms(&refs), vec![500.0]);
        let list = self_report_turns(&refs);
        assert_eq!(list.len(), 1);
        assert_eq!(
            (
                list[0].voice_to_voice_ms,
                list[0].agent_ms,
                list[0].unseen_ms
            ),
            (800.0, 300.0, 500.0)
        );
    }
}
