//! Histograms (HdrHistogram) written as standard HdrHistogram interval logs, which
//! HdrHistogram's own log tools read, and merged losslessly.
//!
//! - `latency.hlog`: successful spans' latency, one histogram per `profile.stage` tag per 1 s
//!   window of the run (the window of the moment the measured event happened: scheduled
//!   time + latency).
//! - `scheduling.hlog`: the harness's own scheduling lag over the whole run, tagged `frames`
//!   (audio frames) and `call_starts`.
//!
//! Values are nanoseconds, 3 significant digits, up to one hour. Negative latencies (an
//! endpoint firing before the labelled end of speech) are recorded as 0 in the histogram; the
//! spans keep the signed value. Interval timestamps are seconds since the run's monotonic
//! epoch (shards of one run each have their own epoch, started together; see
//! `docs/distributed.md`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use latlab_core::timing::{Outcome, Span};

/// The latency interval log's file name.
pub const LATENCY_LOG: &str = latlab_results::files::LATENCY_LOG;
/// The scheduling-lag interval log's file name.
pub const SCHEDULING_LOG: &str = latlab_results::files::SCHEDULING_LOG;
/// Length of a latency window.
pub const WINDOW_NS: u64 = 1_000_000_000;

/// A histogram for nanosecond latencies up to an hour at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// One tagged histogram over one interval of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// `profile.stage`, `frames` or `call_starts`.
    pub tag: String,
    /// Start, ns since the run's epoch.
    pub start_ns: u64,
    /// Length, ns.
    pub duration_ns: u64,
    /// The values recorded in it.
    pub histogram: Histogram<u64>,
}

/// Histograms of successful spans' latency per `profile.stage` per 1 s window, in time order.
pub fn latency_intervals(spans: &[Span]) -> Vec<Interval> {
    let mut out: BTreeMap<(u64, String), Histogram<u64>> = BTreeMap::new();
    for s in spans.iter().filter(|s| s.outcome == Outcome::Ok) {
        if let Some(latency) = s.latency_ns {
            let at = s.scheduled_ns.saturating_add_signed(latency);
            out.entry((at / WINDOW_NS, format!("{}.{}", s.profile, s.stage)))
                .or_insert_with(new_histogram)
                .saturating_record(latency.max(0) as u64);
        }
    }
    out.into_iter()
        .map(|((window, tag), histogram)| Interval {
            tag,
            start_ns: window * WINDOW_NS,
            duration_ns: WINDOW_NS,
            histogram,
        })
        .collect()
}

/// Adds intervals with the same tag, start and length together (lossless: every count is
/// kept), in time order then tag order.
pub fn merge(intervals: impl IntoIterator<Item = Interval>) -> anyhow::Result<Vec<Interval>> {
    let mut out: BTreeMap<(u64, String, u64), Histogram<u64>> = BTreeMap::new();
    for i in intervals {
        match out.entry((i.start_ns, i.tag, i.duration_ns)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(i.histogram);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                o.get_mut()
                    .add(&i.histogram)
                    .map_err(|e| anyhow::anyhow!("merging histograms: {e:?}"))?;
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|((start_ns, tag, duration_ns), histogram)| Interval {
            tag,
            start_ns,
            duration_ns,
            histogram,
        })
        .collect())
}

/// Writes intervals as an interval log.
pub fn write_log(path: &Path, comment: &str, intervals: &[Interval]) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .add_comment("values in nanoseconds; interval timestamps are seconds since the run's monotonic epoch")
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut file, &mut serializer)?;
    for i in intervals {
        let tag = Tag::new(&i.tag)
            .ok_or_else(|| anyhow::anyhow!("{:?} is not a valid interval-log tag", i.tag))?;
        writer.write_histogram(
            &i.histogram,
            Duration::from_nanos(i.start_ns),
            Duration::from_nanos(i.duration_ns),
            Some(tag),
        )?;
    }
    drop(writer);
    use std::io::Write;
    file.flush()?;
    Ok(())
}

/// Reads an interval log written by [`write_log`] (or any V2 interval log).
pub fn read_log(path: &Path) -> anyhow::Result<Vec<Interval>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
        let LogEntry::Interval(i) = entry else {
            continue;
        };
        let encoded = base64::engine::general_purpose::STANDARD
            .decode(i.encoded_histogram())
            .with_context(|| {
                format!("{}: an interval's histogram is not base64", path.display())
            })?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut encoded.as_slice())
            .map_err(|e| anyhow::anyhow!("{}: bad histogram: {e:?}", path.display()))?;
        out.push(Interval {
            tag: i.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
            start_ns: i.start_timestamp().as_nanos() as u64,
            duration_ns: i.duration().as_nanos() as u64,
            histogram,
        });
    }
    Ok(out)
}

/// Writes `latency.hlog` for these spans.
pub fn write_latency_log(path: &Path, spans: &[Span]) -> anyhow::Result<()> {
    write_log(
        path,
        "latlab latency histograms: one interval per profile.stage per 1 s window",
        &latency_intervals(spans),
    )
}

/// Writes `scheduling.hlog`: the frame and call-start lag histograms over the whole run.
pub fn write_lag_log(
    path: &Path,
    frames: &Histogram<u64>,
    call_starts: &Histogram<u64>,
) -> anyhow::Result<()> {
    let intervals: Vec<Interval> = [("frames", frames), ("call_starts", call_starts)]
        .into_iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(tag, h)| Interval {
            tag: tag.into(),
            start_ns: 0,
            duration_ns: 0,
            histogram: h.clone(),
        })
        .collect();
    write_log(
        path,
        "latlab scheduling lag (actual - scheduled): audio frames and call starts, whole run",
        &intervals,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn logs_round_trip_and_merge_without_losing_counts() {
        let dir = tempfile::tempdir().unwrap();
        let a = vec![
            Interval {
                tag: "p.turn".into(),
                start_ns: 0,
                duration_ns: WINDOW_NS,
                histogram: histogram(&[1_000, 2_000_000, 3_000_000_000]),
            },
            Interval {
                tag: "p.llm".into(),
                start_ns: WINDOW_NS,
                duration_ns: WINDOW_NS,
                histogram: histogram(&[5_000_000]),
            },
        ];
        let path = dir.path().join("a.hlog");
        write_log(&path, "test", &a).unwrap();
        let read = read_log(&path).unwrap();
        assert_eq!(read, a);
        let merged = merge(read.iter().cloned().chain(a.iter().cloned())).unwrap();
        assert_eq!(merged.len(), 2);
        let total: u64 = merged.iter().map(|i| i.histogram.len()).sum();
        assert_eq!(total, 8);
        let turn = merged.iter().find(|i| i.tag == "p.turn").unwrap();
        assert_eq!(turn.histogram.len(), 6);
        assert_eq!(turn.histogram.max(), a[0].histogram.max());
    }
}
