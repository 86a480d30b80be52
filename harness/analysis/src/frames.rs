//! The polars part: group spans and turns lazily and hand each group's sorted latencies to the
//! pure statistics. Everything above this module works on plain Rust values.

use polars::prelude::*;

use crate::AnalysisError;
use rayon::prelude::*;

use crate::grouping::{Coder, fold, sorted_buckets};

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

/// Dense codes for a text column (missing values code as the empty string), and the distinct
/// values by code.
///
/// Arrow keeps each string as a 16-byte view; equal views hold equal strings (inline, or the
/// same bytes of the same buffer, as a Parquet dictionary decodes to), so most rows cost one
/// 128-bit comparison. Views not seen before go through [`Coder`], which compares text.
fn code_strings(column: &StringChunked) -> (Vec<u32>, Vec<String>) {
    const KNOWN_VIEWS: usize = 64;
    let mut coder = Coder::default();
    let mut codes = Vec::with_capacity(column.len());
    if column.null_count() > 0 {
        codes.extend(column.iter().map(|v| coder.code(v.unwrap_or_default())));
        let values = coder.values().iter().map(|v| v.to_string()).collect();
        return (codes, values);
    }
    let mut known: Vec<(u128, u32)> = Vec::new();
    for array in column.downcast_iter() {
        for (i, view) in array.views().iter().enumerate() {
            let key = view.as_u128();
            let code = match known.iter().find(|(k, _)| *k == key) {
                Some(&(_, code)) => code,
                None => {
                    let code = coder.code(array.value(i));
                    if known.len() < KNOWN_VIEWS {
                        known.push((key, code));
                    }
                    code
                }
            };
            codes.push(code);
        }
    }
    let values = coder.values().iter().map(|v| v.to_string()).collect();
    (codes, values)
}

/// The key columns of a span group, in [`SpanGroup`]'s order.
const KEYS: [&str; 5] = ["run", "scenario", "profile", "backend", "stage"];

/// Groups spans and sorts each group's successful latencies.
///
/// polars reads only the columns needed (lazily, projected); the grouping itself is
/// [`crate::grouping`], which on latlab's few-valued keys is an order of magnitude faster than
/// a multi-key polars `group_by` (measured in `docs/performance.md`).
pub fn span_groups(spans: LazyFrame) -> Result<Vec<SpanGroup>, AnalysisError> {
    let mut select: Vec<Expr> = KEYS
        .iter()
        .map(|k| col(*k).cast(DataType::String))
        .collect();
    select.push(col("outcome").cast(DataType::String));
    select.push(col("latency_ns").cast(DataType::Int64));
    let df = spans.select(select).collect()?;
    let text =
        |name: &str| -> Result<&StringChunked, AnalysisError> { Ok(df.column(name)?.str()?) };
    let columns: Vec<&StringChunked> = KEYS
        .iter()
        .chain(["outcome"].iter())
        .map(|k| text(k))
        .collect::<Result<_, _>>()?;
    // Each column coded on its own thread.
    let mut coded: Vec<(Vec<u32>, Vec<String>)> =
        columns.par_iter().map(|c| code_strings(c)).collect();
    let (outcome, outcomes) = coded.pop().expect("the outcome column");
    let keyed: Vec<(&[u32], usize)> = coded
        .iter()
        .map(|(codes, values)| (codes.as_slice(), values.len()))
        .collect();
    let groups = fold(&keyed);
    let n = groups.keys.len();

    let code_of = |name: &str| outcomes.iter().position(|o| o == name).map(|c| c as u32);
    let (ok, error, skipped) = (code_of("ok"), code_of("error"), code_of("skipped"));
    // Errors and skipped spans per group.
    let mut counts = vec![[0u64; 2]; n];
    for (&id, &o) in groups.ids.iter().zip(&outcome) {
        let c = &mut counts[id as usize];
        if Some(o) == error {
            c[0] += 1;
        } else if Some(o) == skipped {
            c[1] += 1;
        }
    }
    let latency = df.column("latency_ns")?.i64()?;
    let picked = outcome
        .iter()
        .zip(latency.iter())
        .map(|(&o, l)| if Some(o) == ok { l } else { None });
    let buckets = sorted_buckets(&groups.ids, n, picked);

    Ok(groups
        .keys
        .iter()
        .zip(buckets)
        .zip(counts)
        .map(|((key, bucket), c)| {
            let value = |column: usize| coded[column].1[key[column] as usize].clone();
            SpanGroup {
                run: value(0),
                scenario: value(1),
                profile: value(2),
                backend: value(3),
                stage: value(4),
                ok: bucket.len() as u64,
                errors: c[0],
                skipped: c[1],
                sorted_ms: bucket.into_iter().map(|ns| ns as f64 / 1e6).collect(),
            }
        })
        .collect())
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
