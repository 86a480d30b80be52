//! The machine during a run: a results folder's `telemetry.jsonl` → the report model's
//! [`TelemetrySeries`] (shares, bytes and Mbit/s per sample, ready to draw).
//!
//! Telemetry is optional: a folder without the file, or with an empty one, has no series and
//! no error. A killed run may leave its last line half-written; that line is skipped.

use std::path::Path;

use latlab_report::model::{GpuPoint, TelemetryPoint, TelemetrySeries};
use latlab_report::telemetry::TelemetrySample;

use crate::AnalysisError;

/// The file a run's sampler writes, in its results folder.
pub const FILE: &str = latlab_results::files::TELEMETRY;

/// At most this many points per series: a longer run's samples are averaged in buckets of
/// consecutive samples, so an hour-long run does not put 3,600 points into every line.
pub const MAX_POINTS: usize = 600;

/// A run's telemetry as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTelemetry {
    /// The samples that parsed, in file order.
    pub samples: Vec<TelemetrySample>,
    /// Lines that did not parse, other than a torn last line (which a killed run leaves).
    pub bad_lines: usize,
}

/// Reads `dir/telemetry.jsonl`; a missing file reads as no samples.
pub fn read(dir: &Path) -> Result<RunTelemetry, AnalysisError> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunTelemetry::default()),
        Err(source) => Err(AnalysisError::Io { path, source }),
    }
}

/// Parses the lines of a `telemetry.jsonl`.
pub fn parse(text: &str) -> RunTelemetry {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = RunTelemetry::default();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<TelemetrySample>(line) {
            Ok(s) => out.samples.push(s),
            // The last line of a killed run may be cut anywhere: not worth a note.
            Err(_) if i + 1 == lines.len() => {}
            Err(_) => out.bad_lines += 1,
        }
    }
    out
}

/// The series the report draws from a run's samples (`None` when there are none).
pub fn series(label: String, samples: &[TelemetrySample]) -> Option<TelemetrySeries> {
    if samples.is_empty() {
        return None;
    }
    let mut samples: Vec<&TelemetrySample> = samples.iter().collect();
    samples.sort_by_key(|s| s.t_ns);
    let cores = samples
        .iter()
        .map(|s| s.cpu_percent.len())
        .max()
        .unwrap_or(0);
    let mut gpus: Vec<(u32, String)> = Vec::new();
    for g in samples.iter().flat_map(|s| &s.gpu) {
        if !gpus.iter().any(|(i, _)| *i == g.index) {
            gpus.push((g.index, g.name.clone()));
        }
    }
    gpus.sort_by_key(|(i, _)| *i);

    let mut points = Vec::with_capacity(samples.len());
    let mut previous_ns = 0;
    for s in &samples {
        // Files written before `interval_ns` existed: the gap to the previous sample.
        let interval_ns = if s.interval_ns > 0 {
            s.interval_ns
        } else {
            s.t_ns.saturating_sub(previous_ns)
        };
        previous_ns = s.t_ns;
        points.push(point(s, interval_ns, &gpus));
    }
    let bucket = points.len().div_ceil(MAX_POINTS);
    if bucket > 1 {
        points = points.chunks(bucket).map(mean_point).collect();
    }
    Some(TelemetrySeries {
        label,
        cores,
        gpus: gpus.into_iter().map(|(_, name)| name).collect(),
        points,
        phases: Vec::new(),
    })
}

/// One sample as rates and shares.
fn point(s: &TelemetrySample, interval_ns: u64, gpus: &[(u32, String)]) -> TelemetryPoint {
    let mbit_s = |bytes: u64| {
        if interval_ns == 0 {
            0.0
        } else {
            bytes as f64 * 8.0 / (interval_ns as f64 / 1e9) / 1e6
        }
    };
    TelemetryPoint {
        t_s: s.t_ns as f64 / 1e9,
        cpu_percent: s.cpu_mean_percent(),
        cpu_core_percent: s.cpu_percent.iter().map(|&c| f64::from(c)).collect(),
        process_cpu_percent: f64::from(s.process_cpu_percent),
        rss_bytes: s.rss_bytes,
        net_rx_mbit_s: mbit_s(s.net_rx_bytes),
        net_tx_mbit_s: mbit_s(s.net_tx_bytes),
        gpu: gpus
            .iter()
            .map(
                |(index, _)| match s.gpu.iter().find(|g| g.index == *index) {
                    Some(g) => GpuPoint {
                        utilization_percent: g.utilization_percent.map(f64::from),
                        memory_used_bytes: g.memory_used_bytes,
                        memory_total_bytes: g.memory_total_bytes,
                        power_watts: g.power_watts,
                        temperature_c: g.temperature_c.map(f64::from),
                    },
                    None => GpuPoint {
                        utilization_percent: None,
                        memory_used_bytes: None,
                        memory_total_bytes: None,
                        power_watts: None,
                        temperature_c: None,
                    },
                },
            )
            .collect(),
    }
}

/// Mean of the values present (`None` when none is).
fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0usize), |(sum, n), v| (sum + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The mean of consecutive points (one bucket of a long run).
fn mean_point(bucket: &[TelemetryPoint]) -> TelemetryPoint {
    let mean = |f: &dyn Fn(&TelemetryPoint) -> f64| {
        bucket.iter().map(f).sum::<f64>() / bucket.len() as f64
    };
    let cores = bucket
        .iter()
        .map(|p| p.cpu_core_percent.len())
        .max()
        .unwrap_or(0);
    let gpus = bucket.iter().map(|p| p.gpu.len()).max().unwrap_or(0);
    let gpu_mean = |g: usize, f: &dyn Fn(&GpuPoint) -> Option<f64>| {
        mean_of(bucket.iter().map(|p| p.gpu.get(g).and_then(f)))
    };
    TelemetryPoint {
        t_s: mean(&|p| p.t_s),
        cpu_percent: mean(&|p| p.cpu_percent),
        cpu_core_percent: (0..cores)
            .map(|c| mean_of(bucket.iter().map(|p| p.cpu_core_percent.get(c).copied())))
            .map(Option::unwrap_or_default)
            .collect(),
        process_cpu_percent: mean(&|p| p.process_cpu_percent),
        rss_bytes: mean(&|p| p.rss_bytes as f64).round() as u64,
        net_rx_mbit_s: mean(&|p| p.net_rx_mbit_s),
        net_tx_mbit_s: mean(&|p| p.net_tx_mbit_s),
        gpu: (0..gpus)
            .map(|g| GpuPoint {
                utilization_percent: gpu_mean(g, &|p| p.utilization_percent),
                memory_used_bytes: gpu_mean(g, &|p| p.memory_used_bytes.map(|b| b as f64))
                    .map(|b| b.round() as u64),
                memory_total_bytes: bucket
                    .iter()
                    .filter_map(|p| p.gpu.get(g)?.memory_total_bytes)
                    .max(),
                power_watts: gpu_mean(g, &|p| p.power_watts),
                temperature_c: gpu_mean(g, &|p| p.temperature_c),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: u64) -> TelemetrySample {
        TelemetrySample {
            t_ns: t_s * 1_000_000_000,
            interval_ns: 1_000_000_000,
            cpu_percent: vec![20.0, 40.0],
            process_cpu_percent: 50.0,
            rss_bytes: 100 << 20,
            net_rx_bytes: 125_000,
            net_tx_bytes: 250_000,
            gpu: vec![],
        }
    }

    #[test]
    fn bytes_per_interval_become_mbit_per_s() {
        let s = series("r".into(), &[sample(1), sample(2)]).unwrap();
        assert_eq!(s.cores, 2);
        assert!(s.gpus.is_empty());
        let p = &s.points[1];
        assert_eq!((p.t_s, p.cpu_percent), (2.0, 30.0));
        assert!((p.net_rx_mbit_s - 1.0).abs() < 1e-12);
        assert!((p.net_tx_mbit_s - 2.0).abs() < 1e-12);
    }

    #[test]
    fn long_runs_are_averaged_down_to_the_point_limit() {
        let samples: Vec<_> = (1..=(MAX_POINTS as u64 * 2 + 1)).map(sample).collect();
        let s = series("r".into(), &samples).unwrap();
        assert!(s.points.len() <= MAX_POINTS, "{}", s.points.len());
        assert_eq!(s.points[0].t_s, 2.0);
        assert_eq!(s.points[0].cpu_core_percent, vec![20.0, 40.0]);
        assert_eq!(s.points[0].rss_bytes, 100 << 20);
    }

    #[test]
    fn no_samples_no_series() {
        assert!(series("r".into(), &[]).is_none());
        assert_eq!(parse(""), RunTelemetry::default());
    }
}
