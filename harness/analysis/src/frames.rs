//! The polars part: group spans and turns lazily and hand each group's sorted latencies to the
//! pure statistics. Everything above this module works on plain Rust values.

use polars::prelude::*;

use crate::AnalysisError;

/// One group of spans: run × scenario × profile × backend × stage.
#[derive(Debug, Clone)]
pub struct SpanGroup {
    /// Run id.
    pub run: String,
    /// Scenario.
    pub scenario: String,
    /// Profile.
    pub profile: String,
    /// Backend.
    pub backend: String,
    /// Stage.
    pub stage: String,
    /// Successful spans with a latency.
    pub ok: u64,
    /// Failed spans.
    pub errors: u64,
    /// Skipped spans.
    pub skipped: u64,
    /// Successful latencies in ms, ascending.
    pub sorted_ms: Vec<f64>,
}

fn is(outcome: &str) -> Expr {
    col("outcome").eq(lit(outcome))
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>, AnalysisError> {
    // Writers may store keys dictionary-encoded (categorical to polars): read them as text.
    Ok(df
        .column(name)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

fn counts(df: &DataFrame, name: &str) -> Result<Vec<u64>, AnalysisError> {
    Ok(df
        .column(name)?
        .cast(&DataType::UInt64)?
        .u64()?
        .iter()
        .map(|v| v.unwrap_or_default())
        .collect())
}

/// Groups spans and sorts each group's successful latencies.
pub fn span_groups(spans: LazyFrame) -> Result<Vec<SpanGroup>, AnalysisError> {
    let keys = [
        col("run"),
        col("scenario"),
        col("profile"),
        col("backend"),
        col("stage"),
    ];
    let ok_latency = is("ok").and(col("latency_ns").is_not_null());
    let df = spans
        .group_by(keys)
        .agg([
            ok_latency.clone().sum().alias("n_ok"),
            is("error").sum().alias("n_error"),
            is("skipped").sum().alias("n_skipped"),
            (col("latency_ns").cast(DataType::Float64) / lit(1e6))
                .filter(ok_latency)
                .sort(SortOptions::default())
                .alias("latency_ms"),
        ])
        .collect()?;
    let run = strings(&df, "run")?;
    let scenario = strings(&df, "scenario")?;
    let profile = strings(&df, "profile")?;
    let backend = strings(&df, "backend")?;
    let stage = strings(&df, "stage")?;
    let ok = counts(&df, "n_ok")?;
    let errors = counts(&df, "n_error")?;
    let skipped = counts(&df, "n_skipped")?;
    let lists = df.column("latency_ms")?.list()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let sorted_ms: Vec<f64> = match lists.get_as_series(i) {
            Some(s) => s.f64()?.into_no_null_iter().collect(),
            None => Vec::new(),
        };
        out.push(SpanGroup {
            run: run[i].clone(),
            scenario: scenario[i].clone(),
            profile: profile[i].clone(),
            backend: backend[i].clone(),
            stage: stage[i].clone(),
            ok: ok[i],
            errors: errors[i],
            skipped: skipped[i],
            sorted_ms,
        });
    }
    Ok(out)
}

/// The turn boundaries, in pipeline order, as named in `turns.parquet`.
pub const BOUNDARIES: [&str; 9] = [
    "speech_end_detected_ns",
    "final_transcript_ns",
    "llm_request_sent_ns",
    "llm_first_token_ns",
    "first_sentence_ns",
    "tts_request_sent_ns",
    "tts_first_byte_ns",
    "tts_first_audible_ns",
    "tts_done_ns",
];

/// One turn, as plain values (ms relative to the scheduled end of user speech).
#[derive(Debug, Clone)]
pub struct TurnRow {
    /// Run id.
    pub run: String,
    /// Profile.
    pub profile: String,
    /// Call id.
    pub call: String,
    /// Replay iteration.
    pub iteration: u32,
    /// Turn index.
    pub turn: u32,
    /// Scheduled start of user speech, ns since the epoch.
    pub user_start_ns: i64,
    /// Scheduled end of user speech (the anchor), ns since the epoch.
    pub anchor_ns: i64,
    /// Each of [`BOUNDARIES`], ms after the anchor.
    pub boundaries_ms: [Option<f64>; 9],
    /// Voice-to-voice ms.
    pub voice_to_voice_ms: Option<f64>,
    /// Agent audio ms.
    pub agent_audio_ms: Option<f64>,
    /// `ok` or `error`.
    pub outcome: String,
    /// Error kind and message.
    pub error: Option<String>,
    /// Dataset text.
    pub reference: Option<String>,
    /// STT text.
    pub transcript: Option<String>,
    /// Agent text.
    pub reply: Option<String>,
}

fn opt_i64(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, AnalysisError> {
    Ok(df
        .column(name)?
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .collect())
}

fn opt_f64(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, AnalysisError> {
    Ok(df
        .column(name)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .collect())
}

fn opt_str(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, AnalysisError> {
    match df.column(name) {
        Ok(c) => Ok(c
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()),
        Err(_) => Ok(vec![None; df.height()]),
    }
}

/// Reads every turn (turn tables are small: one row per user turn).
pub fn turn_rows(turns: LazyFrame) -> Result<Vec<TurnRow>, AnalysisError> {
    let df = turns.collect()?;
    let run = strings(&df, "run")?;
    let profile = strings(&df, "profile")?;
    let call = strings(&df, "call")?;
    let iteration = opt_i64(&df, "iteration")?;
    let turn = opt_i64(&df, "turn")?;
    let start = opt_i64(&df, "user_start_scheduled_ns")?;
    let anchor = opt_i64(&df, "user_end_scheduled_ns")?;
    let bounds: Vec<Vec<Option<i64>>> = BOUNDARIES
        .iter()
        .map(|b| opt_i64(&df, b))
        .collect::<Result<_, _>>()?;
    let v2v = opt_i64(&df, "voice_to_voice_ns")?;
    let audio = opt_f64(&df, "agent_audio_ms")?;
    let outcome = strings(&df, "outcome")?;
    let kind = opt_str(&df, "error_kind")?;
    let message = opt_str(&df, "error_message")?;
    let reference = opt_str(&df, "reference")?;
    let transcript = opt_str(&df, "transcript")?;
    let reply = opt_str(&df, "reply")?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let a = anchor[i].unwrap_or_default();
        let mut boundaries_ms = [None; 9];
        for (b, column) in boundaries_ms.iter_mut().zip(&bounds) {
            *b = column[i].map(|t| (t - a) as f64 / 1e6);
        }
        out.push(TurnRow {
            run: run[i].clone(),
            profile: profile[i].clone(),
            call: call[i].clone(),
            iteration: iteration[i].unwrap_or_default() as u32,
            turn: turn[i].unwrap_or_default() as u32,
            user_start_ns: start[i].unwrap_or_default(),
            anchor_ns: a,
            boundaries_ms,
            voice_to_voice_ms: v2v[i].map(|v| v as f64 / 1e6),
            agent_audio_ms: audio[i],
            outcome: outcome[i].clone(),
            error: kind[i].as_ref().map(|k| match &message[i] {
                Some(m) => format!("{k}: {m}"),
                None => k.clone(),
            }),
            reference: reference[i].clone(),
            transcript: transcript[i].clone(),
            reply: reply[i].clone(),
        });
    }
    Ok(out)
}

/// Per run × profile: tokens and streaming seconds of successful LLM spans, for tokens/s.
pub fn llm_rates(spans: LazyFrame) -> Result<Vec<(String, String, f64, f64)>, AnalysisError> {
    let df = spans
        .filter(col("stage").eq(lit("llm")).and(is("ok")))
        .group_by([col("run"), col("profile")])
        .agg([
            col("tokens").cast(DataType::Float64).sum().alias("tokens"),
            ((col("end_ns") - col("first_output_ns")).cast(DataType::Float64) / lit(1e9))
                .sum()
                .alias("seconds"),
        ])
        .collect()?;
    let run = strings(&df, "run")?;
    let profile = strings(&df, "profile")?;
    let tokens = opt_f64(&df, "tokens")?;
    let seconds = opt_f64(&df, "seconds")?;
    Ok((0..df.height())
        .map(|i| {
            (
                run[i].clone(),
                profile[i].clone(),
                tokens[i].unwrap_or_default(),
                seconds[i].unwrap_or_default(),
            )
        })
        .collect())
}
