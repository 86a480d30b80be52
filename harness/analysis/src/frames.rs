//! The polars part: group spans and turns lazily and hand each group's sorted latencies to the
//! pure statistics. Everything above this module works on plain Rust values.

use latlab_results::columns as c;
use latlab_results::span::{Outcome, Stage};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::AnalysisError;
use rayon::prelude::*;

use crate::grouping::{ChunkedGroups, Coder};

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

fn is(outcome: Outcome) -> Expr {
    col(c::OUTCOME).eq(lit(outcome.as_str()))
}

pub(crate) fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>, AnalysisError> {
    // Writers may store keys dictionary-encoded (categorical to polars): read them as text.
    Ok(df
        .column(name)?
        .cast(&DataType::String)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// Codes one chunk of a text column into `codes` (cleared first); missing values code as the
/// empty string. `coder` lives across chunks, so codes agree between them.
///
/// Arrow keeps each string as a 16-byte view; equal views hold equal strings (inline, or the
/// same bytes of the same buffer, as a Parquet dictionary decodes to), so most rows cost one
/// 128-bit comparison. Views not seen before go through [`Coder`], which compares text.
fn code_strings(column: &StringChunked, coder: &mut Coder, codes: &mut Vec<u32>) {
    const KNOWN_VIEWS: usize = 64;
    codes.clear();
    if column.null_count() > 0 {
        codes.extend(column.iter().map(|v| coder.code(v.unwrap_or_default())));
        return;
    }
    // Views are only comparable within the chunk's buffers.
    let mut known: Vec<(u128, u32)> = Vec::new();
    for array in column.downcast_iter() {
        known.clear();
        // Keys come in runs (a turn's spans share all but the stage): try the last view first.
        let mut last = None;
        for (i, view) in array.views().iter().enumerate() {
            let key = view.as_u128();
            let code = match last {
                Some((k, code)) if k == key => code,
                _ => {
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
                    last = Some((key, code));
                    code
                }
            };
            codes.push(code);
        }
    }
}

/// The key columns of a span group, in [`SpanGroup`]'s order.
const KEYS: [&str; 5] = [c::RUN, c::SCENARIO, c::PROFILE, c::BACKEND, c::STAGE];

/// The most rows read at once: big enough to keep polars' reader busy, small enough that a
/// chunk's columns (16-byte string views) are reused memory rather than fresh pages from the
/// kernel (at 10 M spans, reading everything at once spent half the time in page faults).
const CHUNK_ROWS: usize = 1 << 20;

/// The columns `wanted` of a Parquet file, a row group at a time (row groups longer than
/// [`CHUNK_ROWS`] in slices).
fn chunks(
    path: &Path,
    wanted: &[String],
) -> Box<dyn Iterator<Item = Result<DataFrame, AnalysisError>>> {
    let path = path.to_path_buf();
    let open = move || {
        std::fs::File::open(&path).map_err(|source| AnalysisError::Io {
            path: path.clone(),
            source,
        })
    };
    let metadata = match open().and_then(|f| Ok(ParquetReader::new(f).get_metadata()?.clone())) {
        Ok(m) => m,
        Err(e) => return Box::new(std::iter::once(Err(e))),
    };
    let mut slices = Vec::new();
    let mut offset = 0;
    for group in &metadata.row_groups {
        let rows = group.num_rows();
        for start in (0..rows).step_by(CHUNK_ROWS) {
            slices.push((offset + start, CHUNK_ROWS.min(rows - start)));
        }
        offset += rows;
    }
    let wanted = wanted.to_vec();
    Box::new(slices.into_iter().map(move |slice| {
        let mut reader = ParquetReader::new(open()?)
            .with_columns(Some(wanted.clone()))
            .with_slice(Some(slice));
        reader.set_metadata(metadata.clone());
        Ok(reader.finish()?)
    }))
}

/// Groups spans and sorts each group's successful latencies.
///
/// polars reads only the columns needed, one row group (or [`CHUNK_ROWS`]) at a time, from
/// each file in turn; the grouping itself is [`crate::grouping`], which on latlab's few-valued
/// keys is an order of magnitude faster than a multi-key polars `group_by` (measured in
/// `docs/performance.md`).
pub fn span_groups(files: &[PathBuf]) -> Result<Vec<SpanGroup>, AnalysisError> {
    let mut wanted: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    wanted.push(c::OUTCOME.into());
    wanted.push(c::LATENCY_NS.into());

    // Key columns, then outcome: each with a coder and a code buffer that live across chunks.
    let mut coded: Vec<(Coder, Vec<u32>)> = (0..=KEYS.len()).map(|_| Default::default()).collect();
    let mut groups = ChunkedGroups::default();
    let mut ids = Vec::new();
    let mut buckets: Vec<Vec<i64>> = Vec::new();
    let mut counts: Vec<[u64; 2]> = Vec::new();
    // One thread reads the next chunk (polars decodes on its own pool) while this one groups
    // the last; the channel holds one chunk, so at most three are in memory.
    let (send, receive) = std::sync::mpsc::sync_channel(1);
    let reader = std::thread::spawn({
        let files = files.to_vec();
        move || {
            for chunk in files.iter().flat_map(|f| chunks(f, &wanted)) {
                let failed = chunk.is_err();
                if send.send(chunk).is_err() || failed {
                    break;
                }
            }
        }
    });
    for chunk in receive {
        let mut df = chunk?;
        for name in KEYS.iter().chain([c::OUTCOME].iter()) {
            // Writers may store keys dictionary-encoded (categorical to polars).
            if df.column(name)?.dtype() != &DataType::String {
                let text = df.column(name)?.cast(&DataType::String)?;
                df.with_column(text)?;
            }
        }
        if df.column(c::LATENCY_NS)?.dtype() != &DataType::Int64 {
            let ns = df.column(c::LATENCY_NS)?.cast(&DataType::Int64)?;
            df.with_column(ns)?;
        }
        let columns: Vec<&StringChunked> = KEYS
            .iter()
            .chain([c::OUTCOME].iter())
            .map(|k| Ok(df.column(k)?.str()?))
            .collect::<Result<_, AnalysisError>>()?;
        // Each column coded on its own thread.
        coded
            .par_iter_mut()
            .zip(columns.par_iter())
            .for_each(|((coder, codes), column)| code_strings(column, coder, codes));
        let (keys, outcome) = coded.split_at(KEYS.len());
        let keyed: Vec<(&[u32], usize)> = keys
            .iter()
            .map(|(coder, codes)| (codes.as_slice(), coder.values().len()))
            .collect();
        groups.add(&keyed, &mut ids);
        buckets.resize_with(groups.keys.len(), Vec::new);
        counts.resize(groups.keys.len(), [0; 2]);

        let (outcomes, outcome) = (&outcome[0].0, &outcome[0].1);
        let code_of = |name: &str| {
            outcomes
                .values()
                .iter()
                .position(|o| o == name)
                .map(|c| c as u32)
        };
        let (ok, error, skipped) = (
            code_of(Outcome::Ok.as_str()),
            code_of(Outcome::Error.as_str()),
            code_of(Outcome::Skipped.as_str()),
        );
        let latency = df.column(c::LATENCY_NS)?.i64()?;
        for ((&id, &o), l) in ids.iter().zip(outcome).zip(latency.iter()) {
            let o = Some(o);
            if o == ok {
                if let Some(l) = l {
                    buckets[id as usize].push(l);
                }
            } else if o == error {
                counts[id as usize][0] += 1;
            } else if o == skipped {
                counts[id as usize][1] += 1;
            }
        }
    }
    reader
        .join()
        .expect("the Parquet reader thread does not panic");
    // LSD radix sort per group, in parallel: a few linear passes (it skips bytes all values
    // share).
    buckets.par_iter_mut().for_each(|b| radsort::sort(b));

    let value = |column: usize, key: &[u32]| coded[column].0.values()[key[column] as usize].clone();
    Ok(groups
        .keys
        .iter()
        .zip(buckets)
        .zip(counts)
        .map(|((key, bucket), c)| SpanGroup {
            run: value(0, key),
            scenario: value(1, key),
            profile: value(2, key),
            backend: value(3, key),
            stage: value(4, key),
            ok: bucket.len() as u64,
            errors: c[0],
            skipped: c[1],
            sorted_ms: bucket.into_iter().map(|ns| ns as f64 / 1e6).collect(),
        })
        .collect())
}

/// The turn boundaries, in pipeline order, as named in `turns.parquet`.
pub const BOUNDARIES: [&str; 9] = [
    c::SPEECH_END_DETECTED_NS,
    c::FINAL_TRANSCRIPT_NS,
    c::LLM_REQUEST_SENT_NS,
    c::LLM_FIRST_TOKEN_NS,
    c::FIRST_SENTENCE_NS,
    c::TTS_REQUEST_SENT_NS,
    c::TTS_FIRST_BYTE_NS,
    c::TTS_FIRST_AUDIBLE_NS,
    c::TTS_DONE_NS,
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

pub(crate) fn opt_i64(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, AnalysisError> {
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

pub(crate) fn opt_str(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, AnalysisError> {
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
    let run = strings(&df, c::RUN)?;
    let profile = strings(&df, c::PROFILE)?;
    let call = strings(&df, c::CALL)?;
    let iteration = opt_i64(&df, c::ITERATION)?;
    let turn = opt_i64(&df, c::TURN)?;
    let start = opt_i64(&df, c::USER_START_SCHEDULED_NS)?;
    let anchor = opt_i64(&df, c::USER_END_SCHEDULED_NS)?;
    let bounds: Vec<Vec<Option<i64>>> = BOUNDARIES
        .iter()
        .map(|b| opt_i64(&df, b))
        .collect::<Result<_, _>>()?;
    let v2v = opt_i64(&df, c::VOICE_TO_VOICE_NS)?;
    let audio = opt_f64(&df, c::AGENT_AUDIO_MS)?;
    let outcome = strings(&df, c::OUTCOME)?;
    let kind = opt_str(&df, c::ERROR_KIND)?;
    let message = opt_str(&df, c::ERROR_MESSAGE)?;
    let reference = opt_str(&df, c::REFERENCE)?;
    let transcript = opt_str(&df, c::TRANSCRIPT)?;
    let reply = opt_str(&df, c::REPLY)?;
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

/// Failed spans of one run × stage × error kind: how many, and the first one's message.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorKinds {
    /// Run id.
    pub run: String,
    /// Stage.
    pub stage: String,
    /// Error kind (`unknown` when the span has none).
    pub kind: String,
    /// Failed spans.
    pub count: u64,
    /// The first one's message (empty when it has none).
    pub example: String,
}

/// Counts failed spans per run × stage × error kind, every stage but `turn` (which repeats
/// its first failed stage's error).
pub fn error_kinds(spans: LazyFrame) -> Result<Vec<ErrorKinds>, AnalysisError> {
    let df = spans
        .filter(is(Outcome::Error).and(col(c::STAGE).neq(lit(Stage::Turn.as_str()))))
        .select([
            col(c::RUN).cast(DataType::String),
            col(c::STAGE).cast(DataType::String),
            col(c::ERROR_KIND).cast(DataType::String),
            col(c::ERROR_MESSAGE).cast(DataType::String),
        ])
        .group_by_stable([col(c::RUN), col(c::STAGE), col(c::ERROR_KIND)])
        .agg([
            len().alias("count"),
            col(c::ERROR_MESSAGE).first().alias("example"),
        ])
        .collect()?;
    let run = strings(&df, c::RUN)?;
    let stage = strings(&df, c::STAGE)?;
    let kind = opt_str(&df, c::ERROR_KIND)?;
    let count = opt_i64(&df, "count")?;
    let example = opt_str(&df, "example")?;
    Ok((0..df.height())
        .map(|i| ErrorKinds {
            run: run[i].clone(),
            stage: stage[i].clone(),
            kind: kind[i].clone().unwrap_or_else(|| "unknown".into()),
            count: count[i].unwrap_or_default() as u64,
            example: example[i].clone().unwrap_or_default(),
        })
        .collect())
}

/// Per run × profile: tokens and streaming seconds of successful LLM spans, for tokens/s.
pub fn llm_rates(spans: LazyFrame) -> Result<Vec<(String, String, f64, f64)>, AnalysisError> {
    let df = spans
        .filter(
            col(c::STAGE)
                .eq(lit(Stage::Llm.as_str()))
                .and(is(Outcome::Ok)),
        )
        .group_by([col(c::RUN), col(c::PROFILE)])
        .agg([
            col(c::TOKENS).cast(DataType::Float64).sum().alias("tokens"),
            ((col(c::END_NS) - col(c::FIRST_OUTPUT_NS)).cast(DataType::Float64) / lit(1e9))
                .sum()
                .alias("seconds"),
        ])
        .collect()?;
    let run = strings(&df, c::RUN)?;
    let profile = strings(&df, c::PROFILE)?;
    let tokens = opt_f64(&df, c::TOKENS)?;
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
