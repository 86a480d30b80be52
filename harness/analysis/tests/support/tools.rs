//! A results folder of a run with tool calls, built deterministically: `spans.parquet` (six
//! spans a turn, the `cache` column included) and `turns.parquet` (the `tool_*`/`llm2_*`
//! columns included) with the contract's columns in order, beside a manifest borrowed from the
//! smoke run. Shared by the analysis and gate tests (`#[path]`).
//!
//! Each profile's turn `i` (call `c{i / 4}`, turn `i mod 4`) calls the tool [`TOOL`] when `i`
//! is even; tool turn `j = i / 2`, `r = j mod 20`:
//! - profile `memory`: a cache miss when `j mod 10 ∈ {0, 3, 6}` (tool latency 100 + r ms), else
//!   a hit (1 + r / 10 ms); tool turn 10 is a miss whose API call timed out (error `timeout`);
//! - profile `none`: the cache is off, every call ok in 100 + r ms;
//! - the LLM's first round takes 200 + r ms (request sent → tool call complete), the second
//!   150 + r ms (request with the result sent → first token).
//!
//! Turns without a tool call have a skipped `tool` span with backend `none`.
//!
//! With 40 turns (`PROFILES`): `memory` has 20 tool turns, 14 hits and 6 misses (hit rate
//! 70 %), hit latency p50 1.9 / p90 2.8 / p95 2.9 ms over 14, miss p50 106 / p90 116 ms over
//! 5 ok; saving 106 − 1.9 = 104.1 ms; LLM round 1 p50 209 ms over 20, round 2 p50 159 ms over
//! 19 (not on the failed call). `none`: 20 calls off, p50 109 / p90 117 ms.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use latlab_results::columns as c;
use latlab_results::files;
use latlab_results::manifest::RunManifest;
use polars::prelude::*;

/// The tool's name: markup, which every renderer must escape.
pub const TOOL: &str = "<script>alert('tool')</script>_weather";
/// The tool's API (the backend of the tool spans that ran).
pub const API: &str = "company_api";
/// The scenario.
pub const SCENARIO: &str = "tools";
const T0_NS: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

/// The two profiles: a memory cache, and no cache.
pub const PROFILES: [&str; 2] = ["memory", "none"];

/// How the fixture is written.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Turns per profile.
    pub turns: u32,
    /// Whether the LLM calls the tool (else every tool span is skipped).
    pub tools: bool,
    /// Written as before the tool contract: five spans a turn, no `cache` column, no tool
    /// columns in `turns.parquet`.
    pub old: bool,
}

/// 40 turns a profile, with tools, in today's format.
pub const SMALL: Shape = Shape {
    turns: 40,
    tools: true,
    old: false,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cache {
    Hit,
    Miss,
    Off,
}

#[derive(Debug, Clone)]
struct Turn {
    profile: &'static str,
    i: u32,
    tool: Option<(Cache, bool)>,
}

impl Turn {
    fn j(&self) -> i64 {
        i64::from(self.i / 2)
    }
    fn r(&self) -> i64 {
        self.j() % 20
    }
    fn call(&self) -> String {
        format!("c{}", self.i / 4)
    }
    fn start_ns(&self) -> i64 {
        T0_NS + i64::from(self.i) * 10_000 * MS
    }
    fn end_ns(&self) -> i64 {
        self.start_ns() + 2_000 * MS
    }
    fn failed(&self) -> bool {
        matches!(self.tool, Some((_, false)))
    }
    fn final_ns(&self) -> i64 {
        self.end_ns() + 100 * MS
    }
    fn llm_sent_ns(&self) -> i64 {
        self.final_ns() + 10 * MS
    }
    fn tool_call_ns(&self) -> Option<i64> {
        self.tool
            .map(|_| self.llm_sent_ns() + (200 + self.r()) * MS)
    }
    /// Tool latency, ns (on a successful call).
    fn tool_ns(&self) -> Option<i64> {
        match self.tool? {
            (_, false) => None,
            (Cache::Hit, _) => Some((10 + self.r()) * 100_000),
            _ => Some((100 + self.r()) * MS),
        }
    }
    fn result_ns(&self) -> Option<i64> {
        Some(self.tool_call_ns()? + self.tool_ns()?)
    }
    fn llm2_sent_ns(&self) -> Option<i64> {
        self.result_ns().map(|t| t + MS)
    }
    fn llm2_first_ns(&self) -> Option<i64> {
        self.llm2_sent_ns().map(|t| t + (150 + self.r()) * MS)
    }
    fn llm_first_ns(&self) -> Option<i64> {
        match self.tool {
            None => Some(self.llm_sent_ns() + 250 * MS),
            Some(_) => self.llm2_first_ns(),
        }
    }
    fn audible_ns(&self) -> Option<i64> {
        self.llm_first_ns().map(|t| t + 130 * MS)
    }
}

fn turns(profile: &'static str, shape: Shape) -> Vec<Turn> {
    (0..shape.turns)
        .map(|i| {
            let j = i / 2;
            let tool = (shape.tools && i % 2 == 0).then(|| {
                let cache = match profile {
                    "memory" if [0, 3, 6].contains(&(j % 10)) => Cache::Miss,
                    "memory" => Cache::Hit,
                    _ => Cache::Off,
                };
                (cache, !(profile == "memory" && j == 10))
            });
            Turn { profile, i, tool }
        })
        .collect()
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

/// One span as the fixture defines it.
struct Span {
    stage: &'static str,
    backend: &'static str,
    scheduled: i64,
    start: Option<i64>,
    end: Option<i64>,
    outcome: &'static str,
    error: Option<&'static str>,
    cache: Option<&'static str>,
}

impl Span {
    fn latency(&self) -> Option<i64> {
        (self.outcome == "ok").then(|| self.end.map(|e| e - self.scheduled))?
    }
}

fn spans_of(t: &Turn, old: bool) -> Vec<Span> {
    let ok = |stage, backend, scheduled: i64, end: Option<i64>| Span {
        stage,
        backend,
        scheduled,
        start: Some(scheduled),
        end,
        outcome: if end.is_some() { "ok" } else { "skipped" },
        error: None,
        cache: None,
    };
    let mut out = vec![
        ok(
            "endpoint",
            "energy_vad",
            t.end_ns(),
            Some(t.end_ns() + 50 * MS),
        ),
        ok("stt", "deepgram", t.end_ns(), Some(t.final_ns())),
        ok("llm", "openai", t.final_ns(), t.llm_first_ns()),
    ];
    if !old {
        out.push(match t.tool {
            None => Span {
                stage: "tool",
                backend: "none",
                scheduled: t.llm_sent_ns(),
                start: None,
                end: None,
                outcome: "skipped",
                error: None,
                cache: None,
            },
            Some((cache, ok)) => Span {
                stage: "tool",
                backend: API,
                scheduled: t.tool_call_ns().unwrap_or_default(),
                start: t.tool_call_ns().filter(|_| cache != Cache::Hit),
                end: t.result_ns(),
                outcome: if ok { "ok" } else { "error" },
                error: (!ok).then_some("timeout"),
                cache: Some(match cache {
                    Cache::Hit => "hit",
                    Cache::Miss => "miss",
                    Cache::Off => "off",
                }),
            },
        });
    }
    let sentence = t.llm_first_ns().map(|f| f + 50 * MS);
    out.push(ok(
        "tts",
        "elevenlabs",
        sentence.unwrap_or_default(),
        t.audible_ns(),
    ));
    out.push(Span {
        outcome: if t.failed() { "error" } else { "ok" },
        error: t.failed().then_some("timeout"),
        ..ok("turn", "pipeline", t.end_ns(), t.audible_ns())
    });
    out
}

fn write_spans(dir: &Path, run: &str, all: &[Turn], old: bool) {
    let rows: Vec<(&Turn, Span)> = all
        .iter()
        .flat_map(|t| spans_of(t, old).into_iter().map(move |s| (t, s)))
        .collect();
    let text = |f: &dyn Fn(&Turn, &Span) -> Option<String>| -> Column {
        Column::new(
            "".into(),
            rows.iter().map(|(t, s)| f(t, s)).collect::<Vec<_>>(),
        )
    };
    let int = |f: &dyn Fn(&Turn, &Span) -> Option<i64>| -> Column {
        Column::new(
            "".into(),
            rows.iter().map(|(t, s)| f(t, s)).collect::<Vec<_>>(),
        )
    };
    let named = |name: &str, col: Column| col.with_name(name.into());
    let mut columns = vec![
        named(c::RUN, text(&|_, _| Some(run.into()))),
        named(c::SCENARIO, text(&|_, _| Some(SCENARIO.into()))),
        named(c::PROFILE, text(&|t, _| Some(t.profile.into()))),
        named(c::CALL, text(&|t, _| Some(t.call()))),
        named(c::ITERATION, int(&|_, _| Some(0))),
        named(c::TURN, int(&|t, _| Some(i64::from(t.i % 4)))),
        named(c::STAGE, text(&|_, s| Some(s.stage.into()))),
        named(c::BACKEND, text(&|_, s| Some(s.backend.into()))),
        named(c::SCHEDULED_NS, int(&|_, s| Some(s.scheduled))),
        named(c::START_NS, int(&|_, s| s.start)),
        named(c::FIRST_OUTPUT_NS, int(&|_, s| s.end)),
        named(c::END_NS, int(&|_, s| s.end)),
        named(c::LATENCY_NS, int(&|_, s| s.latency())),
        Column::new(c::AUDIO_MS.into(), vec![None::<f64>; rows.len()]),
        named(c::TOKENS, int(&|_, _| None)),
        named(c::BYTES, int(&|_, _| None)),
        named(c::CHARS, int(&|_, _| None)),
        named(c::OUTCOME, text(&|_, s| Some(s.outcome.into()))),
        named(c::ERROR_KIND, text(&|_, s| s.error.map(Into::into))),
        named(c::ERROR_STATUS, int(&|_, _| None)),
        named(
            c::ERROR_MESSAGE,
            text(&|_, s| {
                s.error
                    .map(|_| "the tool's API did not answer in 2000 ms".into())
            }),
        ),
    ];
    let mut expected: Vec<&str> = c::SPANS.to_vec();
    if old {
        expected.retain(|name| *name != c::CACHE);
    } else {
        columns.push(named(c::CACHE, text(&|_, s| s.cache.map(Into::into))));
    }
    write(dir, files::SPANS_PARQUET, columns, &expected);
}

fn write_turns(dir: &Path, run: &str, all: &[Turn], old: bool) {
    let text = |name: &str, f: &dyn Fn(&Turn) -> Option<String>| -> Column {
        Column::new(name.into(), all.iter().map(f).collect::<Vec<_>>())
    };
    let int = |name: &str, f: &dyn Fn(&Turn) -> Option<i64>| -> Column {
        Column::new(name.into(), all.iter().map(f).collect::<Vec<_>>())
    };
    let float = |name: &str| Column::new(name.into(), vec![None::<f64>; all.len()]);
    let flag = |name: &str, f: &dyn Fn(&Turn) -> Option<bool>| -> Column {
        Column::new(name.into(), all.iter().map(f).collect::<Vec<_>>())
    };
    let error = |t: &Turn| t.failed().then(|| "timeout".to_string());
    let mut columns = vec![
        text(c::RUN, &|_| Some(run.into())),
        text(c::SCENARIO, &|_| Some(SCENARIO.into())),
        text(c::PROFILE, &|t| Some(t.profile.into())),
        text(c::CALL, &|t| Some(t.call())),
        int(c::ITERATION, &|_| Some(0)),
        int(c::TURN, &|t| Some(i64::from(t.i % 4))),
        int(c::USER_START_SCHEDULED_NS, &|t| Some(t.start_ns())),
        int(c::USER_END_SCHEDULED_NS, &|t| Some(t.end_ns())),
        int(c::SPEECH_END_DETECTED_NS, &|t| Some(t.end_ns() + 50 * MS)),
        int(c::FINAL_TRANSCRIPT_NS, &|t| Some(t.final_ns())),
        int(c::LLM_QUEUED_NS, &|t| Some(t.final_ns())),
        int(c::LLM_QUEUE_WAIT_NS, &|_| Some(0)),
        int(c::LLM_REQUEST_SENT_NS, &|t| Some(t.llm_sent_ns())),
        int(c::LLM_FIRST_TOKEN_NS, &|t| t.llm_first_ns()),
        int(c::FIRST_SENTENCE_NS, &|t| {
            t.llm_first_ns().map(|f| f + 50 * MS)
        }),
        int(c::TTS_REQUEST_SENT_NS, &|t| {
            t.llm_first_ns().map(|f| f + 51 * MS)
        }),
        int(c::TTS_FIRST_BYTE_NS, &|t| {
            t.audible_ns().map(|a| a - 5 * MS)
        }),
        int(c::TTS_FIRST_AUDIBLE_NS, &|t| t.audible_ns()),
        int(c::TTS_DONE_NS, &|t| t.audible_ns().map(|a| a + 900 * MS)),
        int(c::VOICE_TO_VOICE_NS, &|t| {
            t.audible_ns().map(|a| a - t.end_ns())
        }),
        float(c::AGENT_AUDIO_MS),
        float(c::BARGE_IN_MS),
        text(c::REFERENCE, &|_| {
            Some("what's the weather in Paris".into())
        }),
        text(c::TRANSCRIPT, &|_| {
            Some("what's the weather in Paris".into())
        }),
        text(c::REPLY, &|t| t.audible_ns().map(|_| "It is sunny.".into())),
        text(c::OUTCOME, &|t| {
            Some(if t.failed() { "error" } else { "ok" }.into())
        }),
        text(c::ERROR_KIND, &error),
        int(c::ERROR_STATUS, &|_| None),
        text(c::ERROR_MESSAGE, &error),
        int(c::AGENT_FIRST_HEARD_NS, &|_| None),
        float(c::AGENT_LEAD_MS),
        float(c::AGENT_REPLY_MS),
        int(c::AGENT_GAPS, &|_| None),
        float(c::AGENT_GAP_MS),
        int(c::INTERRUPTION_NS, &|_| None),
        text(c::INTERRUPTION_BY, &|_| None),
        flag(c::FALSE_CUTOFF, &|_| None),
        float(c::TALK_OVER_MS),
        flag(c::DEAD_AIR, &|_| None),
        int(c::AGENT_SELF_NS, &|_| None),
    ];
    let mut expected: Vec<&str> = c::TURNS.to_vec();
    if old {
        expected.retain(|name| !c::TOOL_TURNS.contains(name));
    } else {
        columns.extend([
            text(c::TOOL_NAME, &|t| t.tool.map(|_| TOOL.into())),
            text(c::TOOL_ARGUMENTS, &|t| {
                t.tool.map(|_| "{\"city\":\"Paris\"}".into())
            }),
            int(c::TOOL_CALL_NS, &|t| t.tool_call_ns()),
            int(c::TOOL_SENT_NS, &|t| match t.tool {
                Some((Cache::Hit, _)) | None => None,
                Some(_) => t.tool_call_ns(),
            }),
            int(c::TOOL_RESULT_NS, &|t| t.result_ns()),
            text(c::TOOL_CACHE, &|t| {
                t.tool.map(|(cache, _)| {
                    match cache {
                        Cache::Hit => "hit",
                        Cache::Miss => "miss",
                        Cache::Off => "off",
                    }
                    .into()
                })
            }),
            int(c::LLM2_REQUEST_SENT_NS, &|t| t.llm2_sent_ns()),
            int(c::LLM2_FIRST_TOKEN_NS, &|t| t.llm2_first_ns()),
            flag(c::TOOL_MATCHED, &|t| t.tool.map(|_| true)),
        ]);
    }
    write(dir, files::TURNS_PARQUET, columns, &expected);
}

/// The smoke run every fixture borrows its manifest from.
pub fn audio_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analysis/tests/data/run-2026-12-smoke")
}

/// A run with the profiles [`PROFILES`] in `dir`, run id `run`, written as `shape` says.
pub fn tool_run(dir: &Path, run: &str, shape: Shape) -> PathBuf {
    let mut m = RunManifest::read(&audio_run()).unwrap();
    m.run_id = run.into();
    m.scenario.name = SCENARIO.into();
    let template = m.profiles[0].clone();
    m.profiles = PROFILES
        .iter()
        .map(|p| {
            let mut profile = template.clone();
            profile.name = p.to_string();
            profile
        })
        .collect();
    m.write(dir).unwrap();
    let all: Vec<Turn> = PROFILES.iter().flat_map(|p| turns(p, shape)).collect();
    write_spans(dir, run, &all, shape.old);
    write_turns(dir, run, &all, shape.old);
    dir.to_path_buf()
}
