//! What the machine did while a run ran: CPU per core and for the latlab process, its resident
//! memory, network bytes and, where an NVIDIA driver is present, each GPU's utilisation,
//! memory, power and temperature. One OS thread samples every `interval` (1 s in a run) and
//! appends one [`TelemetrySample`] line to `telemetry.jsonl`, flushed at once, so a killed
//! run keeps what it sampled.
//!
//! Telemetry must never fail or slow a run: it refreshes only what it reports (CPU usage, its
//! own process, network counters), and a GPU it cannot read is a note, not an error.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use latlab_core::clock::Epoch;
use latlab_report::telemetry::TelemetrySample;
use sysinfo::{Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// The file the sampler writes in the results folder.
pub const FILE: &str = latlab_results::files::TELEMETRY;

/// The shortest interval the sampler accepts. CPU shares are refreshed at most every
/// `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` (200 ms on Linux): a shorter interval (tests only)
/// repeats them.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

pub use latlab_results::manifest::TelemetryFacts;

/// A running sampler; [`Telemetry::stop`] ends it. Dropped without `stop`, its thread ends
/// just the same, at once.
#[derive(Debug)]
pub struct Telemetry {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<TelemetryFacts>,
}

impl Telemetry {
    /// Creates `dir/telemetry.jsonl` and starts sampling every `interval` on its own thread;
    /// `t_ns` of each line is `epoch.elapsed_ns()`, the clock of every span. The first line
    /// comes one interval after this call and covers that interval. Fails only when the file
    /// cannot be created or the thread cannot start.
    pub fn start(dir: &Path, epoch: Epoch, interval: Duration) -> anyhow::Result<Telemetry> {
        let path = dir.join(FILE);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let sampler = Sampler::new().context("starting telemetry")?;
        let (stop, stopped) = mpsc::channel();
        let interval = interval.max(MIN_INTERVAL);
        let thread = std::thread::Builder::new()
            .name("latlab-telemetry".into())
            .spawn(move || sampler.run(file, epoch, interval, &stopped))
            .context("spawning the telemetry thread")?;
        Ok(Telemetry { stop, thread })
    }

    /// Stops sampling (within a few milliseconds, not at the next tick) and returns what was
    /// sampled. A last sample is taken first when half an interval or more has gone by.
    pub fn stop(self) -> TelemetryFacts {
        // An error means the thread has already ended: join says how.
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_else(|_| TelemetryFacts {
            notes: vec![
                "telemetry: the sampling thread panicked; telemetry.jsonl is partial".into(),
            ],
            ..TelemetryFacts::default()
        })
    }
}

/// The counters one sample reads, refreshed in place between samples.
struct Sampler {
    system: System,
    pid: Option<Pid>,
    networks: Option<Networks>,
    gpus: Option<gpu::Gpus>,
    notes: Vec<String>,
    /// When the counters were last refreshed: the start of the next sample's interval.
    last: Instant,
}

impl Sampler {
    /// Opens the counters and takes the baseline the first sample's deltas are measured from.
    fn new() -> anyhow::Result<Sampler> {
        let mut notes = Vec::new();
        let system = System::new().map_err(|e| anyhow::anyhow!("sysinfo: {e}"))?;
        let pid = sysinfo::get_current_pid()
            .map_err(|e| {
                notes.push(format!(
                    "telemetry: own process not found ({e}): process CPU and RSS read 0"
                ))
            })
            .ok();
        let networks = Networks::new()
            .map_err(|e| {
                notes.push(format!(
                    "telemetry: network counters unavailable ({e}): network bytes read 0"
                ))
            })
            .ok();
        let mut sampler = Sampler {
            system,
            pid,
            networks,
            gpus: None,
            notes,
            last: Instant::now(),
        };
        sampler.refresh();
        Ok(sampler)
    }

    /// Samples until `stopped` says so (or its sender is gone); returns the facts.
    fn run(
        mut self,
        mut file: File,
        epoch: Epoch,
        interval: Duration,
        stopped: &mpsc::Receiver<()>,
    ) -> TelemetryFacts {
        // NVML may take a while to load; it does so here, off the runner's path.
        match gpu::Gpus::open() {
            Ok(gpus) => self.gpus = Some(gpus),
            Err(why) => self
                .notes
                .push(format!("GPU telemetry: {why}: GPU series absent")),
        }
        let gpus = self
            .gpus
            .as_ref()
            .map(|g| g.names.clone())
            .unwrap_or_default();
        let mut samples = 0;
        let mut next = self.last + interval;
        loop {
            let last_one =
                match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => false,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        if self.last.elapsed() < interval / 2 {
                            break;
                        }
                        true
                    }
                };
            let sample = self.sample(&epoch);
            let mut line = serde_json::to_string(&sample).unwrap_or_default();
            line.push('\n');
            // One write per line: a killed run loses at most the line being written.
            if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                self.notes.push(format!(
                    "telemetry: writing {FILE} failed after {samples} samples ({e}): sampling stopped"
                ));
                break;
            }
            samples += 1;
            if last_one {
                break;
            }
            next += interval;
            let now = Instant::now();
            if next <= now {
                // Fell behind (a suspended machine, a starved thread): skip the missed ticks.
                let into_tick = (now - next).as_nanos() % interval.as_nanos();
                next = now + interval - Duration::from_nanos(into_tick as u64);
            }
        }
        TelemetryFacts {
            samples,
            gpus,
            notes: self.notes,
        }
    }

    /// Refreshes the counters whose deltas a sample reports.
    fn refresh(&mut self) {
        self.system.refresh_cpu_usage();
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                // Not its threads one by one: /proc/<pid>/stat already sums them.
                ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .without_tasks(),
            );
        }
        if let Some(networks) = &mut self.networks {
            networks.refresh(true);
        }
        self.last = Instant::now();
    }

    /// Refreshes the counters and reads one sample.
    fn sample(&mut self, epoch: &Epoch) -> TelemetrySample {
        let began = self.last;
        self.refresh();
        let (process_cpu_percent, rss_bytes) = self
            .pid
            .and_then(|pid| self.system.process(pid))
            .map_or((0.0, 0), |p| (p.cpu_usage(), p.memory()));
        let (net_rx_bytes, net_tx_bytes) = self.networks.as_ref().map_or((0, 0), |n| {
            n.values().fold((0, 0), |(rx, tx), data| {
                (rx + data.received(), tx + data.transmitted())
            })
        });
        TelemetrySample {
            t_ns: epoch.ns_of(self.last),
            interval_ns: (self.last - began)
                .as_nanos()
                .try_into()
                .unwrap_or(u64::MAX),
            cpu_percent: self.system.cpus().iter().map(|c| c.usage()).collect(),
            process_cpu_percent,
            rss_bytes,
            net_rx_bytes,
            net_tx_bytes,
            gpu: self
                .gpus
                .as_ref()
                .map(gpu::Gpus::sample)
                .unwrap_or_default(),
        }
    }
}

/// NVIDIA GPUs through NVML (`libnvidia-ml`, loaded at run time: no CUDA needed to build).
#[cfg(feature = "gpu-telemetry")]
mod gpu {
    use latlab_report::telemetry::GpuSample;
    use nvml_wrapper::Nvml;
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    use nvml_wrapper::error::NvmlError;

    /// The NVML handle and the devices it saw when opened.
    pub(super) struct Gpus {
        nvml: Nvml,
        /// Device names by NVML index.
        pub(super) names: Vec<String>,
    }

    impl Gpus {
        /// Loads NVML; why not, in words, when there is no driver or no device.
        pub(super) fn open() -> Result<Gpus, String> {
            let nvml = Nvml::init().map_err(|e| match e {
                NvmlError::LibloadingError(_) | NvmlError::LibraryNotFound => {
                    "no NVIDIA driver found (libnvidia-ml)".to_string()
                }
                NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".to_string(),
                e => format!("NVML did not start ({e})"),
            })?;
            let count = nvml
                .device_count()
                .map_err(|e| format!("NVML cannot count devices ({e})"))?;
            if count == 0 {
                return Err("the NVIDIA driver reports no GPU".into());
            }
            let names = (0..count)
                .map(|i| {
                    nvml.device_by_index(i)
                        .and_then(|d| d.name())
                        .unwrap_or_else(|e| format!("GPU {i} ({e})"))
                })
                .collect();
            Ok(Gpus { nvml, names })
        }

        /// Every device's readings now; a reading a device does not support is `None`.
        pub(super) fn sample(&self) -> Vec<GpuSample> {
            self.names
                .iter()
                .zip(0u32..)
                .map(|(name, index)| {
                    let device = self.nvml.device_by_index(index).ok();
                    let memory = device.as_ref().and_then(|d| d.memory_info().ok());
                    GpuSample {
                        index,
                        name: name.clone(),
                        utilization_percent: device
                            .as_ref()
                            .and_then(|d| d.utilization_rates().ok())
                            .map(|u| u.gpu),
                        memory_used_bytes: memory.as_ref().map(|m| m.used),
                        memory_total_bytes: memory.as_ref().map(|m| m.total),
                        power_watts: device
                            .as_ref()
                            .and_then(|d| d.power_usage().ok())
                            .map(|mw| f64::from(mw) / 1000.0),
                        temperature_c: device
                            .as_ref()
                            .and_then(|d| d.temperature(TemperatureSensor::Gpu).ok()),
                    }
                })
                .collect()
        }
    }
}

/// Built without the `gpu-telemetry` feature: no GPU, said once.
#[cfg(not(feature = "gpu-telemetry"))]
mod gpu {
    use latlab_report::telemetry::GpuSample;

    /// Never opened.
    pub(super) struct Gpus {
        pub(super) names: Vec<String>,
    }

    impl Gpus {
        pub(super) fn open() -> Result<Gpus, String> {
            Err("not built in (cargo feature `gpu-telemetry` is off)".into())
        }

        pub(super) fn sample(&self) -> Vec<GpuSample> {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(dir: &Path) -> Vec<TelemetrySample> {
        std::fs::read_to_string(dir.join(FILE))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn samples_every_interval_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = Epoch::now();
        let t = Telemetry::start(dir.path(), epoch, Duration::from_millis(50)).unwrap();
        // Something for the process and network counters to see: a busy core and 1 MB over
        // loopback.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || {
            std::io::copy(&mut server, &mut std::io::sink()).unwrap();
        });
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        client.write_all(&vec![7u8; 1_000_000]).unwrap();
        drop(client);
        reader.join().unwrap();
        while spin.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let facts = t.stop();
        let samples = lines(dir.path());
        assert!(samples.len() >= 3, "{} samples", samples.len());
        assert_eq!(facts.samples, samples.len());
        let mut system = System::new().unwrap();
        system.refresh_cpu_usage();
        let cores = system.cpus().len();
        for pair in samples.windows(2) {
            assert!(pair[0].t_ns < pair[1].t_ns, "{pair:?}");
        }
        for s in &samples {
            assert_eq!(s.cpu_percent.len(), cores, "{s:?}");
            assert!(
                s.cpu_percent.iter().all(|c| (0.0..=100.5).contains(c)),
                "{s:?}"
            );
            assert!(s.rss_bytes > 0, "{s:?}");
            assert!(s.interval_ns > 0 && s.t_ns <= epoch.elapsed_ns(), "{s:?}");
            assert!(s.gpu.is_empty() == facts.gpus.is_empty(), "{s:?} {facts:?}");
        }
        assert!(
            samples.iter().any(|s| s.process_cpu_percent > 0.0),
            "{samples:?}"
        );
        let received: u64 = samples.iter().map(|s| s.net_rx_bytes).sum();
        assert!(received >= 1_000_000, "{received} bytes received");
        if facts.gpus.is_empty() {
            assert!(
                facts.notes.iter().any(|n| n.starts_with("GPU telemetry:")),
                "{facts:?}"
            );
        }
    }

    #[test]
    fn stop_does_not_wait_for_the_next_tick() {
        let dir = tempfile::tempdir().unwrap();
        let t = Telemetry::start(dir.path(), Epoch::now(), Duration::from_secs(1)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let asked = Instant::now();
        let facts = t.stop();
        assert!(
            asked.elapsed() < Duration::from_millis(300),
            "{:?}",
            asked.elapsed()
        );
        // Less than half an interval since the start: no partial sample.
        assert_eq!(facts.samples, 0);
        assert!(lines(dir.path()).is_empty());
    }

    #[test]
    fn a_dropped_sampler_ends_without_stop() {
        let dir = tempfile::tempdir().unwrap();
        let t = Telemetry::start(dir.path(), Epoch::now(), Duration::from_secs(3600)).unwrap();
        let Telemetry { stop, thread } = t;
        drop(stop);
        let facts = thread.join().unwrap();
        assert_eq!(facts.samples, 0);
    }

    #[test]
    fn a_gpu_sample_is_absent_without_a_gpu() {
        // Where the test machine has no NVIDIA GPU (the usual case) there is a note instead.
        let Ok(gpus) = gpu::Gpus::open() else { return };
        let samples: Vec<latlab_report::telemetry::GpuSample> = gpus.sample();
        assert_eq!(samples.len(), gpus.names.len());
    }
}
