//! Result sinks: where spans go as turns complete, and the files a run leaves behind.
//!
//! Every turn is appended to `spans.jsonl` and `turns.jsonl` and flushed to the OS the moment
//! it completes, so a killed run keeps everything but the turns in flight; `latlab recover`
//! turns those logs into the same Parquet and histogram files a finished run writes.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use hdrhistogram::Histogram;
use latlab_core::timing::{Span, SpanSink, TurnTimeline};

pub mod hdr;
pub mod parquet;

/// Append-only log of spans, one JSON object per line.
pub const SPANS_LOG: &str = "spans.jsonl";
/// Append-only log of turn timelines.
pub const TURNS_LOG: &str = "turns.jsonl";
/// Spans as Parquet.
pub const SPANS_PARQUET: &str = "spans.parquet";
/// Turn timelines as Parquet.
pub const TURNS_PARQUET: &str = "turns.parquet";

/// Something that wants to hear about each completed turn (the progress bar).
pub trait TurnObserver: Send + Sync {
    /// A turn completed, with its spans.
    fn turn_done(&self, timeline: &TurnTimeline, spans: &[Span]);
}

/// The run's sink: logs each turn durably and keeps it for the end-of-run files.
pub struct RunSink {
    inner: Mutex<Inner>,
    observer: Option<Box<dyn TurnObserver>>,
}

struct Inner {
    spans_log: BufWriter<File>,
    turns_log: BufWriter<File>,
    spans: Vec<Span>,
    turns: Vec<TurnTimeline>,
    pacing: Histogram<u64>,
    call_starts: Histogram<u64>,
    write_error: Option<String>,
    /// Set by `finish`: turns that complete later (of calls cut off after an interruption)
    /// are not recorded, so the logs and the tables hold the same turns.
    closed: bool,
}

/// What a run's sink recorded.
pub struct Recorded {
    /// Every span.
    pub spans: Vec<Span>,
    /// Every turn timeline.
    pub turns: Vec<TurnTimeline>,
    /// Audio frames: actual − scheduled send time, ns.
    pub pacing: Histogram<u64>,
    /// Call starts: actual − scheduled start, ns.
    pub call_starts: Histogram<u64>,
}

impl RunSink {
    /// Creates the logs in `dir`.
    pub fn create(dir: &Path, observer: Option<Box<dyn TurnObserver>>) -> anyhow::Result<RunSink> {
        let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = dir.join(name);
            Ok(BufWriter::new(
                File::create(&path).with_context(|| format!("creating {}", path.display()))?,
            ))
        };
        Ok(RunSink {
            inner: Mutex::new(Inner {
                spans_log: open(SPANS_LOG)?,
                turns_log: open(TURNS_LOG)?,
                spans: Vec::new(),
                turns: Vec::new(),
                pacing: hdr::new_histogram(),
                call_starts: hdr::new_histogram(),
                write_error: None,
                closed: false,
            }),
            observer,
        })
    }

    /// Records how late a call started against its schedule.
    pub fn record_call_start(&self, lag_ns: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.call_starts.saturating_record(lag_ns.max(1));
    }

    /// Takes what was recorded: spans, turns and the scheduling-lag histograms.
    pub fn finish(&self) -> anyhow::Result<Recorded> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.closed = true;
        inner.spans_log.flush()?;
        inner.turns_log.flush()?;
        if let Some(e) = inner.write_error.take() {
            anyhow::bail!("writing the span log failed during the run: {e}");
        }
        Ok(Recorded {
            spans: std::mem::take(&mut inner.spans),
            turns: std::mem::take(&mut inner.turns),
            pacing: inner.pacing.clone(),
            call_starts: inner.call_starts.clone(),
        })
    }
}

fn append<T: serde::Serialize>(log: &mut BufWriter<File>, item: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *log, item)?;
    log.write_all(b"\n")
}

impl SpanSink for RunSink {
    fn record_turn(&self, timeline: TurnTimeline, spans: Vec<Span>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.closed {
            return;
        }
        if let Some(observer) = &self.observer {
            observer.turn_done(&timeline, &spans);
        }
        let inner = &mut *inner;
        let written = spans
            .iter()
            .try_for_each(|s| append(&mut inner.spans_log, s))
            .and_then(|_| append(&mut inner.turns_log, &timeline))
            .and_then(|_| inner.spans_log.flush())
            .and_then(|_| inner.turns_log.flush());
        if let Err(e) = written {
            inner.write_error.get_or_insert(e.to_string());
        }
        inner.spans.extend(spans);
        inner.turns.push(timeline);
    }

    fn record_pacing(&self, lag_ns: u64) {
        self.record_pacing_batch(&[lag_ns]);
    }

    fn record_pacing_batch(&self, lags_ns: &[u64]) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for &lag in lags_ns {
            inner.pacing.saturating_record(lag.max(1));
        }
    }
}

/// Writes the end-of-run files from spans and turns.
pub fn write_tables(dir: &Path, spans: &[Span], turns: &[TurnTimeline]) -> anyhow::Result<()> {
    parquet::spans_table(spans)
        .write(&dir.join(SPANS_PARQUET), "span")
        .context("writing spans.parquet")?;
    parquet::turns_table(turns)
        .write(&dir.join(TURNS_PARQUET), "turn")
        .context("writing turns.parquet")?;
    hdr::write_latency_log(&dir.join(hdr::LATENCY_LOG), spans).context("writing latency.hlog")?;
    Ok(())
}

/// Reads a JSON-lines log, skipping a torn last line (a kill mid-write) and saying so.
pub fn read_log<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<(Vec<T>, usize)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut items = Vec::new();
    let mut torn = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(item) => items.push(item),
            Err(e) if e.is_eof() => torn += 1,
            Err(e) => anyhow::bail!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    Ok((items, torn))
}
