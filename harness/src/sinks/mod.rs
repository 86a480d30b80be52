//! Result sinks: where spans go as turns complete, and the files a run leaves behind.
//!
//! The pipeline records each finished turn into a [`SpanRecorder`] (a lock-free push, no
//! allocation: see `latlab_core::recorder`). The sink's writer thread drains it every
//! [`FLUSH_EVERY`], appends every span to `spans.jsonl` and every turn to `turns.jsonl`, and
//! flushes both to the OS, so a killed run keeps everything but the turns in flight and the
//! last few milliseconds of finished ones; `latlab recover` turns those logs into the same
//! Parquet and histogram files a finished run writes.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use latlab_core::recorder::SpanRecorder;
use latlab_core::timing::{Span, SpanRecord, SpanSink, TurnTimeline};

pub mod hdr;
pub mod parquet;

/// Append-only log of spans, one JSON object per line.
pub const SPANS_LOG: &str = latlab_results::files::SPANS_LOG;
/// Append-only log of turn timelines.
pub const TURNS_LOG: &str = latlab_results::files::TURNS_LOG;
/// Spans as Parquet.
pub const SPANS_PARQUET: &str = latlab_results::files::SPANS_PARQUET;
/// Turn timelines as Parquet.
pub const TURNS_PARQUET: &str = latlab_results::files::TURNS_PARQUET;
/// How often the writer thread drains the recorder and flushes the logs.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Something that wants to hear about each completed turn and span (the progress line, the
/// metrics endpoint). Called on the sink's writer thread, never on the pipeline's.
pub trait TurnObserver: Send + Sync {
    /// A turn completed.
    fn turn_done(&self, timeline: &TurnTimeline);

    /// A span was recorded.
    fn span_done(&self, _span: &Span) {}
}

/// The run's sink: records each turn without blocking the pipeline, logs it durably from a
/// writer thread and keeps it for the end-of-run files.
pub struct RunSink {
    recorder: Arc<SpanRecorder>,
    lags: Mutex<Lags>,
    writer: Mutex<Option<Writer>>,
}

struct Lags {
    pacing: Histogram<u64>,
    call_starts: Histogram<u64>,
    endpoint: Histogram<u64>,
}

struct Writer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Logs>,
}

impl Writer {
    /// Tells the writer thread to drain once more and end, and waits for its logs.
    fn stop(self) -> std::thread::Result<Logs> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.thread().unpark();
        self.thread.join()
    }
}

/// The writer thread's state: the logs and everything written to them.
struct Logs {
    spans_log: BufWriter<File>,
    turns_log: BufWriter<File>,
    spans: Vec<Span>,
    turns: Vec<TurnTimeline>,
    write_error: Option<String>,
    observer: Option<Box<dyn TurnObserver>>,
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
    /// VAD decisions: when the endpointer declared the end of speech − when the frame that
    /// completed it was due, ns.
    pub endpoint_lags: Histogram<u64>,
    /// Spans and timelines that found the recorder's queue full (none are lost; a count
    /// above zero means the writer fell behind).
    pub overflowed: u64,
}

impl RunSink {
    /// Creates the logs in `dir` and starts the writer thread.
    pub fn create(dir: &Path, observer: Option<Box<dyn TurnObserver>>) -> anyhow::Result<RunSink> {
        let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = dir.join(name);
            Ok(BufWriter::new(
                File::create(&path).with_context(|| format!("creating {}", path.display()))?,
            ))
        };
        let logs = Logs {
            spans_log: open(SPANS_LOG)?,
            turns_log: open(TURNS_LOG)?,
            spans: Vec::new(),
            turns: Vec::new(),
            write_error: None,
            observer,
        };
        let recorder = Arc::new(SpanRecorder::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (recorder, stop) = (Arc::clone(&recorder), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("latlab-sink".into())
                .spawn(move || write_logs(&recorder, &stop, logs))
                .context("starting the sink's writer thread")?
        };
        Ok(RunSink {
            recorder,
            lags: Mutex::new(Lags {
                pacing: hdr::new_histogram(),
                call_starts: hdr::new_histogram(),
                endpoint: hdr::new_histogram(),
            }),
            writer: Mutex::new(Some(Writer { stop, thread })),
        })
    }

    /// Records how late a call started against its schedule.
    pub fn record_call_start(&self, lag_ns: u64) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        lags.call_starts.saturating_record(lag_ns.max(1));
    }

    /// Stops recording (turns that complete later, of calls cut off after an interruption,
    /// are not recorded, so the logs and the tables hold the same turns), writes out what
    /// the writer had not yet, and takes everything recorded. A second call finds nothing.
    pub fn finish(&self) -> anyhow::Result<Recorded> {
        self.recorder.close();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (spans, turns) = match writer {
            Some(writer) => {
                let mut logs = writer
                    .stop()
                    .map_err(|_| anyhow::anyhow!("the sink's writer thread panicked"))?;
                logs.spans_log.flush()?;
                logs.turns_log.flush()?;
                if let Some(e) = logs.write_error.take() {
                    anyhow::bail!("writing the span log failed during the run: {e}");
                }
                (logs.spans, logs.turns)
            }
            None => (Vec::new(), Vec::new()),
        };
        let lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Recorded {
            spans,
            turns,
            pacing: lags.pacing.clone(),
            call_starts: lags.call_starts.clone(),
            endpoint_lags: lags.endpoint.clone(),
            overflowed: self.recorder.overflowed(),
        })
    }
}

impl Drop for RunSink {
    /// A sink dropped without [`RunSink::finish`] (a run that failed) still writes out what
    /// it recorded and stops its thread.
    fn drop(&mut self) {
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.stop();
        }
    }
}

/// The writer thread: drains the recorder every [`FLUSH_EVERY`] (at once when told to
/// stop), writes and flushes the logs, tells the observer.
fn write_logs(recorder: &SpanRecorder, stop: &AtomicBool, mut logs: Logs) -> Logs {
    let (mut records, mut timelines) = (Vec::<SpanRecord>::new(), Vec::<TurnTimeline>::new());
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if recorder.drain(&mut records, &mut timelines) > 0 {
            logs.write(records.drain(..), timelines.drain(..));
        }
        if stopping {
            return logs;
        }
        std::thread::park_timeout(FLUSH_EVERY);
    }
}

impl Logs {
    fn write(
        &mut self,
        records: impl Iterator<Item = SpanRecord>,
        timelines: impl Iterator<Item = TurnTimeline>,
    ) {
        let mut written = Ok(());
        for record in records {
            let span = record.to_span();
            written = written.and_then(|_| append(&mut self.spans_log, &span));
            if let Some(observer) = &self.observer {
                observer.span_done(&span);
            }
            self.spans.push(span);
        }
        for timeline in timelines {
            written = written.and_then(|_| append(&mut self.turns_log, &timeline));
            if let Some(observer) = &self.observer {
                observer.turn_done(&timeline);
            }
            self.turns.push(timeline);
        }
        let written = written
            .and_then(|_| self.spans_log.flush())
            .and_then(|_| self.turns_log.flush());
        if let Err(e) = written {
            self.write_error.get_or_insert(e.to_string());
        }
    }
}

fn append<T: serde::Serialize>(log: &mut BufWriter<File>, item: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *log, item)?;
    log.write_all(b"\n")
}

impl SpanSink for RunSink {
    fn record_turn(&self, timeline: TurnTimeline, spans: [SpanRecord; 6]) {
        self.recorder.record_turn(timeline, spans);
    }

    fn record_pacing(&self, lag_ns: u64) {
        self.record_pacing_batch(&[lag_ns]);
    }

    fn record_endpoint_lag(&self, lag_ns: u64) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        lags.endpoint.saturating_record(lag_ns.max(1));
    }

    fn record_pacing_batch(&self, lags_ns: &[u64]) {
        let mut lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        for &lag in lags_ns {
            lags.pacing.saturating_record(lag.max(1));
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

/// Rewrites the turn log with `turns` (after the run added what only its end knows, such as
/// the agent's own figures), through a temporary file so a kill leaves the old log whole.
pub fn rewrite_turns_log(dir: &Path, turns: &[TurnTimeline]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let path = dir.join(TURNS_LOG);
    let tmp = dir.join(format!("{TURNS_LOG}.tmp"));
    let mut out = std::io::BufWriter::new(
        File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    for t in turns {
        serde_json::to_writer(&mut out, t)?;
        out.write_all(b"\n")?;
    }
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
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
