//! Columnar tables written as Parquet with the low-level writer (no Arrow, no polars here:
//! the runner stays light; the analysis crate reads these files).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use latlab_core::timing::{Span, TurnTimeline};
use latlab_core::vision::FrameRecord;
use latlab_results::columns as c;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// One nullable column.
pub enum Column {
    /// 64-bit integers.
    I64(Vec<Option<i64>>),
    /// Doubles.
    F64(Vec<Option<f64>>),
    /// UTF-8 strings.
    Str(Vec<Option<String>>),
    /// Booleans.
    Bool(Vec<Option<bool>>),
}

/// Named columns of equal length.
#[derive(Default)]
pub struct Table {
    columns: Vec<(&'static str, Column)>,
}

impl Table {
    fn add(&mut self, name: &'static str, column: Column) -> &mut Self {
        self.columns.push((name, column));
        self
    }

    fn i64(&mut self, name: &'static str, v: impl Iterator<Item = Option<i64>>) -> &mut Self {
        self.add(name, Column::I64(v.collect()))
    }

    fn f64(&mut self, name: &'static str, v: impl Iterator<Item = Option<f64>>) -> &mut Self {
        self.add(name, Column::F64(v.collect()))
    }

    fn bool(&mut self, name: &'static str, v: impl Iterator<Item = Option<bool>>) -> &mut Self {
        self.add(name, Column::Bool(v.collect()))
    }

    fn str(&mut self, name: &'static str, v: impl Iterator<Item = Option<String>>) -> &mut Self {
        self.add(name, Column::Str(v.collect()))
    }

    /// Writes the table to `path` as one Parquet row group.
    pub fn write(&self, path: &Path, message: &str) -> Result<(), ParquetError> {
        let fields: Vec<String> = self
            .columns
            .iter()
            .map(|(name, c)| match c {
                Column::I64(_) => format!("OPTIONAL INT64 {name};"),
                Column::F64(_) => format!("OPTIONAL DOUBLE {name};"),
                Column::Str(_) => format!("OPTIONAL BYTE_ARRAY {name} (UTF8);"),
                Column::Bool(_) => format!("OPTIONAL BOOLEAN {name};"),
            })
            .collect();
        let schema = Arc::new(parse_message_type(&format!(
            "message {message} {{ {} }}",
            fields.join(" ")
        ))?);
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        );
        let tmp = path.with_extension("parquet.tmp");
        let mut writer = SerializedFileWriter::new(File::create(&tmp)?, schema, props)?;
        let mut group = writer.next_row_group()?;
        for (_, column) in &self.columns {
            let mut col = group.next_column()?.ok_or_else(|| {
                ParquetError::General("schema has fewer columns than the table".into())
            })?;
            match column {
                Column::I64(v) => {
                    let (values, defs) = split(v, |x| *x);
                    col.typed::<Int64Type>()
                        .write_batch(&values, Some(&defs), None)?;
                }
                Column::F64(v) => {
                    let (values, defs) = split(v, |x| *x);
                    col.typed::<DoubleType>()
                        .write_batch(&values, Some(&defs), None)?;
                }
                Column::Bool(v) => {
                    let (values, defs) = split(v, |x| *x);
                    col.typed::<BoolType>()
                        .write_batch(&values, Some(&defs), None)?;
                }
                Column::Str(v) => {
                    let (values, defs) = split(v, |x| ByteArray::from(x.as_str()));
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&defs), None)?;
                }
            }
            col.close()?;
        }
        group.close()?;
        writer.close()?;
        // Rename last, so a reader never sees a half-written file under the final name.
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

fn split<T, V>(column: &[Option<T>], f: impl Fn(&T) -> V) -> (Vec<V>, Vec<i16>) {
    let values = column.iter().flatten().map(&f).collect();
    let defs = column.iter().map(|x| i16::from(x.is_some())).collect();
    (values, defs)
}

fn ns(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// The spans table (`spans.parquet`): one row per stage per turn.
pub fn spans_table(spans: &[Span]) -> Table {
    let mut t = Table::default();
    t.str(c::RUN, spans.iter().map(|s| Some(s.run.clone())))
        .str(c::SCENARIO, spans.iter().map(|s| Some(s.scenario.clone())))
        .str(c::PROFILE, spans.iter().map(|s| Some(s.profile.clone())))
        .str(c::CALL, spans.iter().map(|s| Some(s.call.clone())))
        .i64(
            c::ITERATION,
            spans.iter().map(|s| Some(i64::from(s.iteration))),
        )
        .i64(c::TURN, spans.iter().map(|s| Some(i64::from(s.turn))))
        .str(
            c::STAGE,
            spans.iter().map(|s| Some(s.stage.as_str().to_string())),
        )
        .str(c::BACKEND, spans.iter().map(|s| Some(s.backend.clone())))
        .i64(c::SCHEDULED_NS, spans.iter().map(|s| ns(s.scheduled_ns)))
        .i64(c::START_NS, spans.iter().map(|s| s.start_ns.and_then(ns)))
        .i64(
            c::FIRST_OUTPUT_NS,
            spans.iter().map(|s| s.first_output_ns.and_then(ns)),
        )
        .i64(c::END_NS, spans.iter().map(|s| s.end_ns.and_then(ns)))
        .i64(c::LATENCY_NS, spans.iter().map(|s| s.latency_ns))
        .f64(c::AUDIO_MS, spans.iter().map(|s| s.units.audio_ms))
        .i64(c::TOKENS, spans.iter().map(|s| s.units.tokens.and_then(ns)))
        .i64(c::BYTES, spans.iter().map(|s| s.units.bytes.and_then(ns)))
        .i64(c::CHARS, spans.iter().map(|s| s.units.chars.and_then(ns)))
        .str(
            c::OUTCOME,
            spans.iter().map(|s| Some(s.outcome.as_str().to_string())),
        )
        .str(
            c::ERROR_KIND,
            spans
                .iter()
                .map(|s| s.error.as_ref().map(|e| e.kind.as_str().to_string())),
        )
        .i64(
            c::ERROR_STATUS,
            spans
                .iter()
                .map(|s| s.error.as_ref().and_then(|e| e.status).map(i64::from)),
        )
        .str(
            c::ERROR_MESSAGE,
            spans
                .iter()
                .map(|s| s.error.as_ref().map(|e| e.message.clone())),
        )
        .str(
            c::CACHE,
            spans
                .iter()
                .map(|s| s.cache.map(|c| c.as_str().to_string())),
        );
    t
}

/// The turns table (`turns.parquet`): every stage boundary of every turn.
pub fn turns_table(turns: &[TurnTimeline]) -> Table {
    let mut t = Table::default();
    let opt = |f: fn(&TurnTimeline) -> Option<u64>| turns.iter().map(move |x| f(x).and_then(ns));
    t.str(c::RUN, turns.iter().map(|x| Some(x.run.clone())))
        .str(c::SCENARIO, turns.iter().map(|x| Some(x.scenario.clone())))
        .str(c::PROFILE, turns.iter().map(|x| Some(x.profile.clone())))
        .str(c::CALL, turns.iter().map(|x| Some(x.call.clone())))
        .i64(
            c::ITERATION,
            turns.iter().map(|x| Some(i64::from(x.iteration))),
        )
        .i64(c::TURN, turns.iter().map(|x| Some(i64::from(x.turn))))
        .i64(
            c::USER_START_SCHEDULED_NS,
            turns.iter().map(|x| ns(x.user_start_scheduled_ns)),
        )
        .i64(
            c::USER_END_SCHEDULED_NS,
            turns.iter().map(|x| ns(x.user_end_scheduled_ns)),
        )
        .i64(c::SPEECH_END_DETECTED_NS, opt(|x| x.speech_end_detected_ns))
        .i64(c::FINAL_TRANSCRIPT_NS, opt(|x| x.final_transcript_ns))
        .i64(c::LLM_QUEUED_NS, opt(|x| x.llm_queued_ns))
        .i64(c::LLM_QUEUE_WAIT_NS, opt(|x| x.llm_queue_wait_ns))
        .i64(c::LLM_REQUEST_SENT_NS, opt(|x| x.llm_request_sent_ns))
        .i64(c::LLM_FIRST_TOKEN_NS, opt(|x| x.llm_first_token_ns))
        .i64(c::FIRST_SENTENCE_NS, opt(|x| x.first_sentence_ns))
        .i64(c::TTS_REQUEST_SENT_NS, opt(|x| x.tts_request_sent_ns))
        .i64(c::TTS_FIRST_BYTE_NS, opt(|x| x.tts_first_byte_ns))
        .i64(c::TTS_FIRST_AUDIBLE_NS, opt(|x| x.tts_first_audible_ns))
        .i64(c::TTS_DONE_NS, opt(|x| x.tts_done_ns))
        .i64(
            c::VOICE_TO_VOICE_NS,
            turns.iter().map(|x| x.voice_to_voice_ns),
        )
        .f64(c::AGENT_AUDIO_MS, turns.iter().map(|x| x.agent_audio_ms))
        .f64(c::BARGE_IN_MS, turns.iter().map(|x| x.barge_in_ms))
        .str(c::REFERENCE, turns.iter().map(|x| x.reference.clone()))
        .str(c::TRANSCRIPT, turns.iter().map(|x| x.transcript.clone()))
        .str(c::REPLY, turns.iter().map(|x| x.reply.clone()))
        .str(
            c::OUTCOME,
            turns.iter().map(|x| Some(x.outcome.as_str().to_string())),
        )
        .str(
            c::ERROR_KIND,
            turns
                .iter()
                .map(|x| x.error.as_ref().map(|e| e.kind.as_str().to_string())),
        )
        .i64(
            c::ERROR_STATUS,
            turns
                .iter()
                .map(|x| x.error.as_ref().and_then(|e| e.status).map(i64::from)),
        )
        .str(
            c::ERROR_MESSAGE,
            turns
                .iter()
                .map(|x| x.error.as_ref().map(|e| e.message.clone())),
        );
    agent_columns(&mut t, turns);
    tool_columns(&mut t, turns);
    t
}

/// The `tool_*` and `llm2_*` columns of the turns table: null on a turn without a tool call.
fn tool_columns(t: &mut Table, turns: &[TurnTimeline]) {
    use latlab_core::timing::ToolTurn;
    let at = |f: fn(&ToolTurn) -> Option<u64>| {
        turns
            .iter()
            .map(move |x| x.tool.as_ref().and_then(f).and_then(ns))
    };
    t.str(
        c::TOOL_NAME,
        turns
            .iter()
            .map(|x| x.tool.as_ref().map(|u| u.name.clone())),
    )
    .str(
        c::TOOL_ARGUMENTS,
        turns
            .iter()
            .map(|x| x.tool.as_ref().map(|u| u.arguments.clone())),
    )
    .i64(c::TOOL_CALL_NS, at(|u| u.call_ns))
    .i64(c::TOOL_SENT_NS, at(|u| u.sent_ns))
    .i64(c::TOOL_RESULT_NS, at(|u| u.result_ns))
    .str(
        c::TOOL_CACHE,
        turns.iter().map(|x| {
            x.tool
                .as_ref()
                .and_then(|u| u.cache)
                .map(|c| c.as_str().to_string())
        }),
    )
    .i64(c::LLM2_REQUEST_SENT_NS, at(|u| u.llm2_request_sent_ns))
    .i64(c::LLM2_FIRST_TOKEN_NS, at(|u| u.llm2_first_token_ns))
    .bool(
        c::TOOL_MATCHED,
        turns
            .iter()
            .map(|x| x.tool.as_ref().and_then(|u| u.matched)),
    );
}

/// The `agent_*` columns of the turns table: null on a run that built its own pipeline.
fn agent_columns(t: &mut Table, turns: &[TurnTimeline]) {
    use latlab_core::timing::AgentTurn;
    let of =
        |f: fn(&AgentTurn) -> Option<f64>| turns.iter().map(move |x| x.agent.as_ref().and_then(f));
    t.i64(
        c::AGENT_FIRST_HEARD_NS,
        turns
            .iter()
            .map(|x| x.agent.as_ref().and_then(|a| a.first_heard_ns).and_then(ns)),
    )
    .f64(c::AGENT_LEAD_MS, of(|a| a.lead_ms))
    .f64(c::AGENT_REPLY_MS, of(|a| a.reply_ms))
    .i64(
        c::AGENT_GAPS,
        turns
            .iter()
            .map(|x| x.agent.as_ref().map(|a| i64::from(a.gaps))),
    )
    .f64(c::AGENT_GAP_MS, of(|a| Some(a.gap_ms)))
    .i64(
        c::INTERRUPTION_NS,
        turns
            .iter()
            .map(|x| x.agent.as_ref().and_then(|a| a.interruption_ns)),
    )
    .str(
        c::INTERRUPTION_BY,
        turns.iter().map(|x| {
            x.agent
                .as_ref()
                .and_then(|a| a.interruption_by)
                .map(|b| b.as_str().to_string())
        }),
    )
    .bool(
        c::FALSE_CUTOFF,
        turns
            .iter()
            .map(|x| x.agent.as_ref().map(|a| a.false_cutoff)),
    )
    .f64(c::TALK_OVER_MS, of(|a| Some(a.talk_over_ms)))
    .bool(
        c::DEAD_AIR,
        turns.iter().map(|x| x.agent.as_ref().map(|a| a.dead_air)),
    )
    .i64(
        c::AGENT_SELF_NS,
        turns
            .iter()
            .map(|x| x.agent.as_ref().and_then(|a| a.self_ns)),
    );
}

/// The frames table (`frames.parquet`): one row per replayed camera frame, columns
/// [`c::FRAMES`] in order. `tp`/`fp`/`fn` sum the frame's classes (null without a reference).
pub fn frames_table(run: &str, scenario: &str, frames: &[FrameRecord]) -> Table {
    let mut t = Table::default();
    let n = |v: Option<u64>| v.and_then(ns);
    let sum = |f: &FrameRecord, pick: fn(&latlab_core::vision::ClassCounts) -> u32| {
        (!f.accuracy.is_empty()).then(|| f.accuracy.iter().map(|c| i64::from(pick(c))).sum())
    };
    t.str(c::RUN, frames.iter().map(|_| Some(run.to_string())))
        .str(
            c::SCENARIO,
            frames.iter().map(|_| Some(scenario.to_string())),
        )
        .str(c::PROFILE, frames.iter().map(|f| Some(f.profile.clone())))
        .i64(c::STREAM, frames.iter().map(|f| Some(i64::from(f.stream))))
        .i64(c::FRAME, frames.iter().map(|f| Some(i64::from(f.frame))))
        .i64(
            c::SOURCE_FRAME,
            frames.iter().map(|f| Some(i64::from(f.source_frame))),
        )
        .str(c::BACKEND, frames.iter().map(|f| Some(f.backend.clone())))
        .i64(c::CAPTURE_NS, frames.iter().map(|f| ns(f.capture_ns)))
        .i64(c::START_NS, frames.iter().map(|f| n(f.start_ns)))
        .i64(
            c::PREPROCESS_END_NS,
            frames.iter().map(|f| n(f.preprocess_end_ns)),
        )
        .i64(
            c::INFERENCE_END_NS,
            frames.iter().map(|f| n(f.inference_end_ns)),
        )
        .i64(c::RESULT_NS, frames.iter().map(|f| n(f.result_ns)))
        .i64(c::LATENCY_NS, frames.iter().map(|f| n(f.latency_ns)))
        .i64(
            c::QUEUE_WAIT_NS,
            frames.iter().map(|f| n(f.queue_wait_ns())),
        )
        .i64(
            c::PREPROCESS_NS,
            frames.iter().map(|f| n(f.preprocess_ns())),
        )
        .i64(c::INFERENCE_NS, frames.iter().map(|f| n(f.inference_ns())))
        .i64(
            c::POSTPROCESS_NS,
            frames.iter().map(|f| n(f.postprocess_ns())),
        )
        .i64(c::DEADLINE_NS, frames.iter().map(|f| ns(f.deadline_ns)))
        .bool(c::MISSED, frames.iter().map(|f| Some(f.missed)))
        .str(
            c::OUTCOME,
            frames.iter().map(|f| Some(f.outcome.as_str().to_string())),
        )
        .i64(
            c::DETECTIONS,
            frames.iter().map(|f| Some(i64::from(f.detections))),
        )
        .i64(c::TP, frames.iter().map(|f| sum(f, |c| c.tp)))
        .i64(c::FP, frames.iter().map(|f| sum(f, |c| c.fp)))
        .i64(c::FN, frames.iter().map(|f| sum(f, |c| c.fn_)))
        .str(
            c::ERROR_KIND,
            frames
                .iter()
                .map(|f| f.error.as_ref().map(|e| e.kind.as_str().to_string())),
        )
        .str(
            c::ERROR_MESSAGE,
            frames
                .iter()
                .map(|f| f.error.as_ref().map(|e| e.message.clone())),
        );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &Table) -> Vec<&'static str> {
        t.columns.iter().map(|(name, _)| *name).collect()
    }

    #[test]
    fn the_tables_have_exactly_the_contracts_columns_in_order() {
        assert_eq!(names(&spans_table(&[])), latlab_results::columns::SPANS);
        assert_eq!(names(&turns_table(&[])), latlab_results::columns::TURNS);
        assert_eq!(
            names(&frames_table("r", "s", &[])),
            latlab_results::columns::FRAMES
        );
    }
}
