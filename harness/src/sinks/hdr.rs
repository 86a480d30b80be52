//! Latency histograms (HdrHistogram), one per profile × stage, written as a standard
//! HdrHistogram interval log (`latency.hlog`) that HdrHistogram's own log tools read.
//!
//! Values are nanoseconds, 3 significant digits, up to one hour. Negative latencies (an
//! endpoint firing before the labelled end of speech) are recorded as 0 in the histogram; the
//! spans keep the signed value.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use latlab_core::timing::{Outcome, Span};

/// The interval log's file name.
pub const LATENCY_LOG: &str = "latency.hlog";

/// A histogram for nanosecond latencies up to an hour at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Histograms of successful spans' latency, keyed by `profile.stage`.
pub fn latency_histograms(spans: &[Span]) -> BTreeMap<String, Histogram<u64>> {
    let mut out: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for s in spans.iter().filter(|s| s.outcome == Outcome::Ok) {
        if let Some(latency) = s.latency_ns {
            out.entry(format!("{}.{}", s.profile, s.stage))
                .or_insert_with(new_histogram)
                .saturating_record(latency.max(0) as u64);
        }
    }
    out
}

/// Writes one interval per `profile.stage`, covering the run, tagged with that key.
pub fn write_latency_log(path: &Path, spans: &[Span]) -> anyhow::Result<()> {
    let histograms = latency_histograms(spans);
    let start = spans.iter().map(|s| s.scheduled_ns).min().unwrap_or(0);
    let end = spans
        .iter()
        .filter_map(|s| s.end_ns.or(s.first_output_ns))
        .max()
        .unwrap_or(start)
        .max(start);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(
            "latlab latency histograms: values in nanoseconds, one interval per profile.stage",
        )
        .add_comment("interval timestamps are seconds since the run's monotonic epoch")
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut file, &mut serializer)?;
    for (key, h) in &histograms {
        let tag = Tag::new(key)
            .ok_or_else(|| anyhow::anyhow!("{key:?} is not a valid interval-log tag"))?;
        writer.write_histogram(
            h,
            Duration::from_nanos(start),
            Duration::from_nanos(end - start),
            Some(tag),
        )?;
    }
    drop(writer);
    use std::io::Write;
    file.flush()?;
    Ok(())
}
