//! A results folder of an agent run, built deterministically: `spans.parquet` and
//! `turns.parquet` with the contract's columns in order (the agent columns included) beside a
//! typed manifest with `agent` set. Shared by the analysis and gate tests (`#[path]`).
//!
//! Each profile's turn `i` (call `c{i / 4}`, turn `i mod 4`):
//! - dead air when `i mod dead_every = dead_every − 1` (error `no_answer`, no reply), else a
//!   reply: voice-to-voice 500 + 10 i ms, leading silence 10 (i mod 10) ms, length 2000 + i ms;
//! - one 150 ms playback gap when `i mod 8 = 0`;
//! - on turn 1 of each call an interruption of 200 + 10 (call mod 10) + `slower_ms` ms, stopped
//!   by `clear` (even call), `silence` (odd call) or `ignored` (call 9 of each ten);
//! - a false cutoff with 300 ms of talk-over when `i mod 10 = 3`, and 120 ms of talk-over
//!   without one on turn 5;
//! - the agent's own figure on the answered turns among the first 20: voice-to-voice −
//!   (100 + i) ms, so the unseen time is 100 + i ms.
//!
//! With 40 turns and `dead_every` 20 (profile `v1`): 38 replies; leading silence p50 40, p90
//! 80, p95 90 ms; 5 of 38 replies with a gap (750 ms); 10 interruptions, p50 240, p90 280,
//! p95 290 ms (5 clear, 4 silence, 1 ignored); 4 of 40 false cutoffs, 5 of 40 talk-over
//! turns (1,320 ms), 2 of 40 dead air; unseen on 19 turns, p50 109, p90 117 ms.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use latlab_results::agent::{AgentFacts, Interruption, SelfReportFacts};
use latlab_results::columns as c;
use latlab_results::files;
use latlab_results::manifest::RunManifest;
use polars::prelude::*;

/// The agent's name: markup, which every renderer must escape.
pub const AGENT: &str = "<script>alert('agent')</script> bot";
/// The scenario.
pub const SCENARIO: &str = "agent-call";
/// The first turn's scheduled start, ns since the run's epoch.
const T0_NS: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

/// One profile of the fixture.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Its name.
    pub name: &'static str,
    /// Turns (4 per call).
    pub turns: u32,
    /// Every `dead_every`-th turn is dead air.
    pub dead_every: u32,
    /// Added to every interruption latency, ms.
    pub slower_ms: i64,
}

/// `v1`: 40 turns, 2 dead air; `v2`: 40 turns, 4 dead air, interruptions 300 ms slower.
pub const PROFILES: [Profile; 2] = [
    Profile {
        name: "v1",
        turns: 40,
        dead_every: 20,
        slower_ms: 0,
    },
    Profile {
        name: "v2",
        turns: 40,
        dead_every: 10,
        slower_ms: 300,
    },
];

/// One turn, as the fixture defines it.
#[derive(Debug, Clone)]
struct Turn {
    profile: &'static str,
    i: u32,
    dead: bool,
    interruption_ms: Option<i64>,
    interruption_by: Option<Interruption>,
    self_ms: Option<i64>,
}

impl Turn {
    fn call(&self) -> String {
        format!("c{}", self.i / 4)
    }
    fn start_ns(&self) -> i64 {
        T0_NS + i64::from(self.i) * 10_000 * MS
    }
    fn end_ns(&self) -> i64 {
        self.start_ns() + 2_000 * MS
    }
    fn v2v_ms(&self) -> Option<i64> {
        (!self.dead).then(|| 500 + 10 * i64::from(self.i))
    }
    fn talk_over_ms(&self) -> f64 {
        match self.i {
            i if i % 10 == 3 => 300.0,
            5 => 120.0,
            _ => 0.0,
        }
    }
}

fn turns(p: &Profile) -> Vec<Turn> {
    (0..p.turns)
        .map(|i| {
            let dead = i % p.dead_every == p.dead_every - 1;
            let call = i / 4;
            let interrupted = i % 4 == 1;
            let self_ms = (!dead && i < 20).then(|| 500 + 10 * i64::from(i) - (100 + i64::from(i)));
            Turn {
                profile: p.name,
                i,
                dead,
                interruption_ms: interrupted.then(|| 200 + 10 * i64::from(call % 10) + p.slower_ms),
                interruption_by: interrupted.then_some(match call % 10 {
                    9 => Interruption::Ignored,
                    c if c % 2 == 0 => Interruption::Clear,
                    _ => Interruption::Silence,
                }),
                self_ms,
            }
        })
        .collect()
}

fn str_col(name: &str, v: Vec<Option<String>>) -> Column {
    Column::new(name.into(), v)
}
fn i64_col(name: &str, v: Vec<Option<i64>>) -> Column {
    Column::new(name.into(), v)
}
fn f64_col(name: &str, v: Vec<Option<f64>>) -> Column {
    Column::new(name.into(), v)
}
fn bool_col(name: &str, v: Vec<Option<bool>>) -> Column {
    Column::new(name.into(), v)
}

fn write(dir: &Path, file: &str, columns: Vec<Column>, expected: &[&str]) {
    let n = columns.first().map_or(0, |c| c.len());
    let mut df = DataFrame::new(n, columns).unwrap();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected, "the fixture writes the contract's columns");
    let out = std::fs::File::create(dir.join(file)).unwrap();
    ParquetWriter::new(out).finish(&mut df).unwrap();
}

/// Writes `spans.parquet`: per turn, endpoint, STT, LLM, tool and TTS skipped (the agent is
/// opaque) and the `turn` span with voice-to-voice, or failed with `no_answer`.
fn write_spans(dir: &Path, run: &str, all: &[Turn]) {
    let stages = latlab_results::span::STAGE_NAMES;
    let rows: Vec<(&Turn, &str)> = all
        .iter()
        .flat_map(|t| stages.iter().map(move |s| (t, *s)))
        .collect();
    let text = |f: &dyn Fn(&Turn, &str) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|(t, s)| f(t, s)).collect()
    };
    let int = |f: &dyn Fn(&Turn, &str) -> Option<i64>| -> Vec<Option<i64>> {
        rows.iter().map(|(t, s)| f(t, s)).collect()
    };
    let is_turn = |s: &str| s == "turn";
    let columns = vec![
        str_col(c::RUN, text(&|_, _| Some(run.into()))),
        str_col(c::SCENARIO, text(&|_, _| Some(SCENARIO.into()))),
        str_col(c::PROFILE, text(&|t, _| Some(t.profile.into()))),
        str_col(c::CALL, text(&|t, _| Some(t.call()))),
        i64_col(c::ITERATION, int(&|_, _| Some(0))),
        i64_col(c::TURN, int(&|t, _| Some(i64::from(t.i % 4)))),
        str_col(c::STAGE, text(&|_, s| Some(s.into()))),
        str_col(c::BACKEND, text(&|_, _| Some(AGENT.into()))),
        i64_col(c::SCHEDULED_NS, int(&|t, _| Some(t.end_ns()))),
        i64_col(c::START_NS, int(&|t, s| is_turn(s).then(|| t.end_ns()))),
        i64_col(
            c::FIRST_OUTPUT_NS,
            int(&|t, s| {
                is_turn(s)
                    .then(|| t.v2v_ms().map(|v| t.end_ns() + v * MS))
                    .flatten()
            }),
        ),
        i64_col(
            c::END_NS,
            int(&|t, s| {
                is_turn(s)
                    .then(|| t.v2v_ms().map(|v| t.end_ns() + v * MS))
                    .flatten()
            }),
        ),
        i64_col(
            c::LATENCY_NS,
            int(&|t, s| is_turn(s).then(|| t.v2v_ms().map(|v| v * MS)).flatten()),
        ),
        f64_col(c::AUDIO_MS, rows.iter().map(|_| None).collect()),
        i64_col(c::TOKENS, int(&|_, _| None)),
        i64_col(c::BYTES, int(&|_, _| None)),
        i64_col(c::CHARS, int(&|_, _| None)),
        str_col(
            c::OUTCOME,
            text(&|t, s| {
                Some(
                    match (is_turn(s), t.dead) {
                        (false, _) => "skipped",
                        (true, false) => "ok",
                        (true, true) => "error",
                    }
                    .into(),
                )
            }),
        ),
        str_col(
            c::ERROR_KIND,
            text(&|t, s| (is_turn(s) && t.dead).then(|| "no_answer".into())),
        ),
        i64_col(c::ERROR_STATUS, int(&|_, _| None)),
        str_col(
            c::ERROR_MESSAGE,
            text(&|t, s| (is_turn(s) && t.dead).then(|| "no audible reply within 5000 ms".into())),
        ),
        str_col(c::CACHE, text(&|_, _| None)),
    ];
    write(dir, files::SPANS_PARQUET, columns, &c::SPANS);
}

/// Writes `turns.parquet` with the agent columns.
fn write_turns(dir: &Path, run: &str, all: &[Turn]) {
    let text = |f: &dyn Fn(&Turn) -> Option<String>| -> Vec<Option<String>> {
        all.iter().map(f).collect()
    };
    let int =
        |f: &dyn Fn(&Turn) -> Option<i64>| -> Vec<Option<i64>> { all.iter().map(f).collect() };
    let float =
        |f: &dyn Fn(&Turn) -> Option<f64>| -> Vec<Option<f64>> { all.iter().map(f).collect() };
    let audible = |t: &Turn| t.v2v_ms().map(|v| t.end_ns() + v * MS);
    let lead = |t: &Turn| (!t.dead).then(|| 10.0 * f64::from(t.i % 10));
    let columns = vec![
        str_col(c::RUN, text(&|_| Some(run.into()))),
        str_col(c::SCENARIO, text(&|_| Some(SCENARIO.into()))),
        str_col(c::PROFILE, text(&|t| Some(t.profile.into()))),
        str_col(c::CALL, text(&|t| Some(t.call()))),
        i64_col(c::ITERATION, int(&|_| Some(0))),
        i64_col(c::TURN, int(&|t| Some(i64::from(t.i % 4)))),
        i64_col(c::USER_START_SCHEDULED_NS, int(&|t| Some(t.start_ns()))),
        i64_col(c::USER_END_SCHEDULED_NS, int(&|t| Some(t.end_ns()))),
        i64_col(c::SPEECH_END_DETECTED_NS, int(&|_| None)),
        i64_col(c::FINAL_TRANSCRIPT_NS, int(&|_| None)),
        i64_col(c::LLM_QUEUED_NS, int(&|_| None)),
        i64_col(c::LLM_QUEUE_WAIT_NS, int(&|_| None)),
        i64_col(c::LLM_REQUEST_SENT_NS, int(&|_| None)),
        i64_col(c::LLM_FIRST_TOKEN_NS, int(&|_| None)),
        i64_col(c::FIRST_SENTENCE_NS, int(&|_| None)),
        i64_col(c::TTS_REQUEST_SENT_NS, int(&|_| None)),
        i64_col(
            c::TTS_FIRST_BYTE_NS,
            int(&|t| audible(t).map(|a| a - 20 * MS)),
        ),
        i64_col(c::TTS_FIRST_AUDIBLE_NS, int(&audible)),
        i64_col(
            c::TTS_DONE_NS,
            int(&|t| audible(t).map(|a| a + (2000 + i64::from(t.i)) * MS)),
        ),
        i64_col(c::VOICE_TO_VOICE_NS, int(&|t| t.v2v_ms().map(|v| v * MS))),
        f64_col(
            c::AGENT_AUDIO_MS,
            float(&|t| (!t.dead).then(|| 2000.0 + f64::from(t.i))),
        ),
        f64_col(c::BARGE_IN_MS, float(&|_| None)),
        str_col(c::REFERENCE, text(&|_| None)),
        str_col(c::TRANSCRIPT, text(&|_| None)),
        str_col(c::REPLY, text(&|_| None)),
        str_col(
            c::OUTCOME,
            text(&|t| Some(if t.dead { "error" } else { "ok" }.into())),
        ),
        str_col(c::ERROR_KIND, text(&|t| t.dead.then(|| "no_answer".into()))),
        i64_col(c::ERROR_STATUS, int(&|_| None)),
        str_col(
            c::ERROR_MESSAGE,
            text(&|t| t.dead.then(|| "no audible reply within 5000 ms".into())),
        ),
        i64_col(
            c::AGENT_FIRST_HEARD_NS,
            int(&|t| audible(t).map(|a| a - (10 * i64::from(t.i % 10)) * MS)),
        ),
        f64_col(c::AGENT_LEAD_MS, float(&lead)),
        f64_col(
            c::AGENT_REPLY_MS,
            float(&|t| (!t.dead).then(|| 2000.0 + f64::from(t.i))),
        ),
        i64_col(c::AGENT_GAPS, int(&|t| Some(i64::from(t.i % 8 == 0)))),
        f64_col(
            c::AGENT_GAP_MS,
            float(&|t| Some(if t.i % 8 == 0 { 150.0 } else { 0.0 })),
        ),
        i64_col(
            c::INTERRUPTION_NS,
            int(&|t| t.interruption_ms.map(|v| v * MS)),
        ),
        str_col(
            c::INTERRUPTION_BY,
            text(&|t| t.interruption_by.map(|b| b.as_str().into())),
        ),
        bool_col(
            c::FALSE_CUTOFF,
            all.iter().map(|t| Some(t.i % 10 == 3)).collect(),
        ),
        f64_col(c::TALK_OVER_MS, float(&|t| Some(t.talk_over_ms()))),
        bool_col(c::DEAD_AIR, all.iter().map(|t| Some(t.dead)).collect()),
        i64_col(c::AGENT_SELF_NS, int(&|t| t.self_ms.map(|v| v * MS))),
        // No tool calls: the tool columns are null.
        str_col(c::TOOL_NAME, text(&|_| None)),
        str_col(c::TOOL_ARGUMENTS, text(&|_| None)),
        i64_col(c::TOOL_CALL_NS, int(&|_| None)),
        i64_col(c::TOOL_SENT_NS, int(&|_| None)),
        i64_col(c::TOOL_RESULT_NS, int(&|_| None)),
        str_col(c::TOOL_CACHE, text(&|_| None)),
        i64_col(c::LLM2_REQUEST_SENT_NS, int(&|_| None)),
        i64_col(c::LLM2_FIRST_TOKEN_NS, int(&|_| None)),
        bool_col(c::TOOL_MATCHED, all.iter().map(|_| None).collect()),
    ];
    write(dir, files::TURNS_PARQUET, columns, &c::TURNS);
}

/// The older audio run every fixture borrows its manifest from.
pub fn audio_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analysis/tests/data/run-2026-12-smoke")
}

/// The manifest's agent facts.
pub fn facts() -> AgentFacts {
    AgentFacts {
        name: AGENT.into(),
        protocol: "twilio".into(),
        url: "wss://agent.example/<media>".into(),
        sample_rate: 8000,
        answer_timeout_ms: 5000,
        barge_in_after_ms: Some(800),
        self_report: Some(SelfReportFacts {
            source: "emulator".into(),
            reporter: "pipecat".into(),
            lines: 40,
            aligned_turns: 37,
            unaligned_calls: 0,
        }),
    }
}

/// An agent run with `profiles` in `dir`, run id `run`.
pub fn agent_run(dir: &Path, run: &str, profiles: &[Profile]) -> PathBuf {
    let mut m = RunManifest::read(&audio_run()).unwrap();
    m.run_id = run.into();
    m.scenario.name = SCENARIO.into();
    let template = m.profiles[0].clone();
    m.profiles = profiles
        .iter()
        .map(|p| {
            let mut profile = template.clone();
            profile.name = p.name.to_string();
            profile
        })
        .collect();
    m.agent = Some(facts());
    m.write(dir).unwrap();
    let all: Vec<Turn> = profiles.iter().flat_map(turns).collect();
    write_spans(dir, run, &all);
    write_turns(dir, run, &all);
    dir.to_path_buf()
}
