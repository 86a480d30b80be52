//! One line of a run's `telemetry.jsonl`: what the machine was doing at one moment of the
//! run. The harness's sampler writes it and `latlab-analysis` reads it. Nothing here samples
//! or reads a file.

use serde::{Deserialize, Serialize};

/// The machine over one sampling interval (`docs/metrics.md`, "Telemetry").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySample {
    /// When the sample was taken: ns since the run's epoch (the clock of every span).
    pub t_ns: u64,
    /// ns the rates and deltas below cover: since the previous sample, or since the sampler
    /// started for the first one (0 in files written before it was recorded).
    #[serde(default)]
    pub interval_ns: u64,
    /// Busy share of each logical core over the interval, 0–100, in core order.
    pub cpu_percent: Vec<f32>,
    /// CPU used by the latlab process over the interval; 100 = one core fully busy.
    pub process_cpu_percent: f32,
    /// Resident memory of the latlab process, bytes.
    pub rss_bytes: u64,
    /// Bytes received over the interval, summed over every interface (loopback included:
    /// the emulator talks to the pipeline over it).
    pub net_rx_bytes: u64,
    /// Bytes sent over the interval, summed over every interface.
    pub net_tx_bytes: u64,
    /// One entry per NVIDIA GPU; empty when there is none or no driver.
    #[serde(default)]
    pub gpu: Vec<GpuSample>,
}

/// One NVIDIA GPU at sampling time, through NVML. A reading the device does not support is
/// `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML device index.
    pub index: u32,
    /// Device name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// Share of the last sample period in which a kernel ran, 0–100.
    pub utilization_percent: Option<u32>,
    /// Device memory in use, bytes.
    pub memory_used_bytes: Option<u64>,
    /// Device memory in all, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Board power draw, watts.
    pub power_watts: Option<f64>,
    /// GPU die temperature, °C.
    pub temperature_c: Option<u32>,
}

impl TelemetrySample {
    /// Mean busy share over all cores, 0–100 (0 when no core was read).
    pub fn cpu_mean_percent(&self) -> f64 {
        if self.cpu_percent.is_empty() {
            return 0.0;
        }
        self.cpu_percent.iter().map(|&c| f64::from(c)).sum::<f64>() / self.cpu_percent.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_old_lines_load() {
        let s = TelemetrySample {
            t_ns: 1_000_000_000,
            interval_ns: 1_000_000_000,
            cpu_percent: vec![10.0, 30.0],
            process_cpu_percent: 55.5,
            rss_bytes: 1 << 20,
            net_rx_bytes: 100,
            net_tx_bytes: 200,
            gpu: vec![],
        };
        let line = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<TelemetrySample>(&line).unwrap(), s);
        assert_eq!(s.cpu_mean_percent(), 20.0);
        let old = r#"{"t_ns":5,"cpu_percent":[],"process_cpu_percent":0,"rss_bytes":1,"net_rx_bytes":0,"net_tx_bytes":0}"#;
        let old: TelemetrySample = serde_json::from_str(old).unwrap();
        assert_eq!((old.interval_ns, old.gpu.len()), (0, 0));
        assert_eq!(old.cpu_mean_percent(), 0.0);
    }
}
