//! The scenario runner: loads the dataset, starts the emulator when a backend asks for it,
//! builds the backends, replays the calls of each profile in a closed loop of `concurrency`
//! calls in flight, and writes the results folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use latlab_core::backends::Timeouts;
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::dataset::{Call, Dataset};
use latlab_core::load::{self, Shard, StageWindow};
use latlab_core::pipeline::{Backends, CallPlan, run_call};
use latlab_core::schedule::CallSchedule;
use latlab_core::timing::{Outcome, Span, TurnTimeline};
use latlab_emulator::Emulator;
use tokio::sync::mpsc;

use crate::backends::BackendSet;
use crate::live::{self, Counters, Live, Metrics};
use crate::manifest::{self, Counts, Fingerprint, LoadFacts, RunManifest, RunStatus};
use crate::scenario::{LoadModel, Scenario};
use crate::sinks::{self, RunSink, hdr};
use crate::telemetry::Telemetry;

/// Command-line overrides of a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write results here instead of `<results_root>/<scenario>-<timestamp>`.
    pub out: Option<PathBuf>,
    /// Parent folder of results folders.
    pub results_root: PathBuf,
    /// Calls per profile.
    pub calls: Option<usize>,
    /// Calls in flight.
    pub concurrency: Option<usize>,
    /// Replay speed.
    pub speed: Option<f64>,
    /// Seed.
    pub seed: Option<u64>,
    /// Run only these profiles.
    pub profiles: Vec<String>,
    /// No progress bar.
    pub quiet: bool,
    /// Run only this shard's calls.
    pub shard: Option<Shard>,
    /// Serve Prometheus metrics here while running.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Local models' own cost records (per inference, generation, VAD chunk) with exact
/// percentiles, written when the run used any local model.
pub const LOCAL_STATS: &str = latlab_results::files::LOCAL_STATS;

/// What a finished run produced.
pub struct RunResult {
    /// The results folder.
    pub dir: PathBuf,
    /// The manifest as written.
    pub manifest: RunManifest,
}

/// Runs a scenario to completion (or until Ctrl-C) and writes its results folder.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<RunResult> {
    let spec = &scenario.spec;
    let dataset = Dataset::load(&scenario.dataset_dir)?;
    let seed = opts.seed.unwrap_or(spec.seed);
    let speed = opts.speed.unwrap_or(spec.speed);
    if !(speed.is_finite() && speed > 0.0 && speed <= 100.0) {
        bail!("--speed {speed} is not in (0, 100]");
    }
    let shard = opts.shard.unwrap_or(Shard::WHOLE);
    let plan = scenario.load_plan(dataset.calls.len(), opts.calls, opts.concurrency);
    let windows = load::windows(&plan.stages);
    // Open loop: one arrival plan, the same for every profile (paired) and every shard.
    let arrivals = match plan.model {
        LoadModel::Open => load::arrivals(plan.arrival, &windows, plan.max_calls, seed),
        LoadModel::Closed => Vec::new(),
    };
    let concurrency = match plan.model {
        LoadModel::Closed => plan.stages.first().map_or(1, |s| s.target.round() as usize),
        LoadModel::Open => plan.max_in_flight,
    };
    // Calls per profile of the whole run (every shard together); 0 when only time bounds it.
    let calls_per_profile = match plan.model {
        LoadModel::Closed => plan.max_calls.unwrap_or(0),
        LoadModel::Open => arrivals.len(),
    };
    // This shard's share, for the progress bar (0: unknown).
    let shard_calls = (0..calls_per_profile)
        .filter(|&k| shard.includes(k))
        .count();
    let mut profiles = scenario.profiles.clone();
    if !opts.profiles.is_empty() {
        if let Some(missing) = opts
            .profiles
            .iter()
            .find(|n| !profiles.iter().any(|p| &p.name == *n))
        {
            bail!(
                "--profile {missing:?}: {} runs only {}",
                scenario.path.display(),
                profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        profiles.retain(|p| opts.profiles.contains(&p.name));
    }

    let emulator = if scenario.uses_emulator() {
        let mut config = spec.emulator.clone().unwrap_or_default();
        config.seed = seed;
        Some(
            Emulator::start(config, Some(Arc::new(dataset.clone())))
                .await
                .context("starting the emulator")?,
        )
    } else {
        None
    };
    let timeouts = spec.limits.timeouts();
    let mut backend_set = BackendSet::new(scenario, emulator.as_ref(), timeouts)?;
    // Local models load now, before the clock starts: their load time is a fact of the run
    // (manifest `model_loads`), never part of a turn.
    let mut profile_backends = Vec::with_capacity(profiles.len());
    for profile in &profiles {
        profile_backends.push(backend_set.for_profile(scenario, profile)?);
    }

    let dir = results_dir(opts, &spec.name)?;
    let run_id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.name.clone());
    let mut manifest = RunManifest {
        schema_version: manifest::SCHEMA_VERSION,
        latlab_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run_id.clone(),
        status: RunStatus::Running,
        started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        duration_s: None,
        git: manifest::git_info(scenario.path.parent().unwrap_or(Path::new("."))),
        scenario: Fingerprint {
            name: spec.name.clone(),
            path: scenario.path.display().to_string(),
            sha256: manifest::sha256_hex(scenario.text.as_bytes()),
        },
        dataset: Fingerprint {
            name: dataset
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: scenario.dataset_dir.display().to_string(),
            sha256: manifest::dataset_sha256(&dataset)?,
        },
        seed,
        speed,
        calls_per_profile,
        concurrency,
        profiles: profiles.clone(),
        backends: backend_set.fact.clone(),
        model_loads: backend_set.loads.clone(),
        warmup: Vec::new(),
        // The emulator answers with the reference itself: accuracy per voice would say nothing.
        call_voices: if scenario.spec.backends.stt_is_emulated() {
            Default::default()
        } else {
            dataset
                .calls
                .iter()
                .filter_map(|c| Some((c.id.clone(), c.meta.get("voice")?.as_str()?.to_string())))
                .collect()
        },
        host: manifest::host(),
        counts: None,
        pacing: None,
        load: Some(LoadFacts {
            plan: plan.clone(),
            shard: (shard != Shard::WHOLE).then(|| shard.to_string()),
            profile_start_ns: Default::default(),
        }),
        call_starts: None,
        telemetry: None,
        emulator: None,
        measurer: Vec::new(),
        llm_queue_wait: None,
        notes: Vec::new(),
    };
    manifest.write(&dir)?;

    let total_calls = shard_calls * profiles.len();
    let progress = if opts.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total_calls as u64)
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} calls · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let counters = Arc::new(Counters::default());
    let metrics = opts
        .metrics_addr
        .map(|_| Arc::new(Metrics::new(Arc::clone(&counters))));
    let endpoint = match (opts.metrics_addr, &metrics) {
        (Some(addr), Some(m)) => {
            let (bound, task) = live::serve(addr, Arc::clone(m)).await?;
            if !opts.quiet {
                eprintln!("metrics: http://{bound}/metrics");
            }
            Some(task)
        }
        _ => None,
    };
    let observer = Live::new(progress.clone(), Arc::clone(&counters), metrics);
    let sink = Arc::new(RunSink::create(&dir, Some(Box::new(observer)))?);

    let mut samples = Vec::with_capacity(dataset.calls.len());
    for call in &dataset.calls {
        samples.push(Arc::new(call.load_samples()?));
    }
    let calls: Arc<Vec<_>> = Arc::new(dataset.calls.iter().cloned().map(Arc::new).collect());
    let samples = Arc::new(samples);

    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let epoch = Epoch::now();
    // When Ctrl-C (or SIGTERM, as Kubernetes stops a pod) came, in ns since the epoch.
    let stop_at = Arc::new(AtomicU64::new(u64::MAX));
    {
        let (stop, stop_at) = (Arc::clone(&stop), Arc::clone(&stop_at));
        tokio::spawn(async move {
            if interrupted().await {
                stop_at.store(epoch.elapsed_ns(), Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let pacer = Pacer::start();
    let deadline =
        (spec.limits.max_duration_s > 0).then(|| spec.limits.max_duration_s * 1_000_000_000);
    let telemetry = match Telemetry::start(&dir, epoch, std::time::Duration::from_secs(1)) {
        Ok(t) => Some(t),
        Err(e) => {
            manifest.notes.push(format!("telemetry off: {e:#}"));
            None
        }
    };
    let driver = Driver {
        epoch,
        pacer: pacer.clone(),
        speed,
        shard,
        stop: Arc::clone(&stop),
        stop_at: Arc::clone(&stop_at),
        grace_ns: spec.limits.grace_s.saturating_mul(1_000_000_000),
        deadline,
        sink: Arc::clone(&sink),
        progress: progress.clone(),
        counters: Arc::clone(&counters),
    };
    let mut calls_run = 0;
    let mut dropped = 0;
    let mut cut_off = 0;
    for (profile, backends) in profiles.iter().zip(profile_backends) {
        if spec.warmup_turns > 0
            && let (Some(call), Some(audio)) = (calls.first(), samples.first())
        {
            let warm =
                crate::backends::warm_up(&backends, profile, call, audio, spec.warmup_turns).await;
            for w in &warm {
                if let Some(e) = &w.error {
                    manifest
                        .notes
                        .push(format!("warm-up of profile {} failed: {e}", profile.name));
                }
            }
            manifest.warmup.extend(warm);
        }
        let launcher = Launcher {
            run: run_id.clone(),
            scenario: spec.name.clone(),
            profile: Arc::new(profile.clone()),
            calls: calls.clone(),
            samples: samples.clone(),
            frame_ms: spec.frame_ms,
            transcript_timeout_ms: spec.limits.transcript_timeout_ms,
            timeouts,
            backends,
        };
        let done = match plan.model {
            LoadModel::Closed => {
                driver
                    .closed(&launcher, &windows, plan.max_calls, spec.stagger_ms)
                    .await?
            }
            LoadModel::Open => {
                driver
                    .open(&launcher, &arrivals, shard.share(plan.max_in_flight))
                    .await?
            }
        };
        calls_run += done.started;
        dropped += done.dropped;
        cut_off += done.cut_off;
        if let Some(load) = &mut manifest.load {
            load.profile_start_ns
                .insert(profile.name.clone(), done.load_start);
        }
        if driver.stopped() {
            break;
        }
    }
    progress.finish_and_clear();
    if let Some(endpoint) = endpoint {
        endpoint.abort();
    }
    let interrupted = stop.load(Ordering::SeqCst);

    let telemetry = telemetry.map(Telemetry::stop);
    let recorded = sink.finish()?;
    let (mut spans, mut turns, pacing) = (recorded.spans, recorded.turns, recorded.pacing);
    sort_results(&mut spans, &mut turns);
    sinks::write_tables(&dir, &spans, &turns)?;
    let local = backend_set.local_stats();
    if local.as_object().is_some_and(|o| !o.is_empty()) {
        let path = dir.join(LOCAL_STATS);
        std::fs::write(&path, serde_json::to_vec_pretty(&local)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    hdr::write_lag_log(
        &dir.join(hdr::SCHEDULING_LOG),
        &pacing,
        &recorded.call_starts,
    )
    .context("writing scheduling.hlog")?;

    if let Some(emulator) = emulator {
        manifest.emulator = serde_json::to_value(emulator.stats()).ok();
        let (events, untraced) = emulator.take_trace();
        emulator.shutdown().await;
        let stt_endpointed: Vec<&str> = profiles
            .iter()
            .filter(|p| p.endpointing == latlab_core::profile::Endpointing::Stt)
            .map(|p| p.name.as_str())
            .collect();
        manifest.measurer = crate::measurer::measure(
            &epoch,
            &turns,
            &stt_endpointed,
            &events,
            &recorded.endpoint_lags,
        );
        if untraced > 0 {
            manifest.notes.push(format!(
                "the emulator's wire trace was full: latlab's own share (manifest `measurer`) stands on the first {} wire events; {untraced} more were not traced",
                latlab_emulator::trace::TRACE_CAPACITY
            ));
        }
    }
    let pacing = manifest::pacing_of(&pacing);
    if pacing.p99_ns > 1_000_000 {
        manifest.notes.push(format!(
            "WARNING: p99 frame pacing lag was {:.2} ms (> 1 ms): the harness fell behind its schedule, so latencies partly describe the load generator",
            pacing.p99_ns as f64 / 1e6
        ));
    }
    let call_starts = manifest::lag_of(&recorded.call_starts);
    if call_starts.p99_ns > 1_000_000 {
        manifest.notes.push(format!(
            "WARNING: p99 call-start lag was {:.2} ms (> 1 ms): calls started late against the load plan, so latencies partly describe the load generator",
            call_starts.p99_ns as f64 / 1e6
        ));
    }
    if recorded.overflowed > 0 {
        manifest.notes.push(format!(
            "the span recorder's queue was full {} times: the sink's writer fell behind, so those recordings took the slower, allocating path (nothing was lost)",
            recorded.overflowed
        ));
    }
    if dropped > 0 {
        manifest.notes.push(format!(
            "{dropped} arrivals were dropped: they found {} calls in flight (max_in_flight) and were not started",
            shard.share(plan.max_in_flight)
        ));
    }
    if interrupted {
        manifest.notes.push(format!(
            "interrupted (Ctrl-C or SIGTERM): calls not yet started were not run; calls in flight had {} s to finish{}",
            spec.limits.grace_s,
            if cut_off > 0 {
                format!(", and {cut_off} that had not were cut off (their unfinished turns are not recorded)")
            } else {
                String::new()
            }
        ));
    }
    manifest.status = if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Complete
    };
    manifest.duration_s = Some(began.elapsed().as_secs_f64());
    manifest.counts = Some(Counts {
        calls: calls_run,
        turns: turns.len(),
        failed_turns: turns.iter().filter(|t| t.outcome != Outcome::Ok).count(),
        spans: spans.len(),
        dropped_calls: dropped,
        max_in_flight: counters.max_in_flight.load(Ordering::SeqCst),
    });
    manifest.pacing = Some(pacing);
    manifest.call_starts = Some(call_starts);
    manifest.llm_queue_wait = crate::measurer::llm_queue_wait(&turns);
    if let Some(telemetry) = telemetry {
        manifest.notes.extend(telemetry.notes.iter().cloned());
        manifest.telemetry = Some(telemetry);
    }
    manifest.write(&dir)?;
    Ok(RunResult { dir, manifest })
}

/// The `n`-th call's offset within an audio frame: a golden-ratio sequence, which spreads any
/// number of calls evenly over the frame's length.
fn phase_ns(n: u64, frame_ms: u32) -> u64 {
    ((n as f64 * 0.618_033_988_75).fract() * f64::from(frame_ms) * 1e6) as u64
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                c = tokio::signal::ctrl_c() => c.is_ok(),
                t = term.recv() => t.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}

/// How long before its first frame a call opens its STT stream.
const CONNECT_LEAD_NS: u64 = 100_000_000;

/// Everything a call of one profile needs, to start call `k` of the load plan.
struct Launcher {
    run: String,
    scenario: String,
    profile: Arc<latlab_core::profile::Profile>,
    calls: Arc<Vec<Arc<Call>>>,
    samples: Arc<Vec<Arc<Vec<i16>>>>,
    frame_ms: u32,
    transcript_timeout_ms: u64,
    timeouts: Timeouts,
    backends: Backends,
}

/// Calls started and arrivals dropped by one profile's load.
struct Driven {
    started: usize,
    dropped: usize,
    cut_off: usize,
    /// When the profile's load began (its plan's time 0), ns since the epoch.
    load_start: u64,
}

/// Drives a profile's load: when each call starts, on the run's epoch.
struct Driver {
    epoch: Epoch,
    pacer: Pacer,
    speed: f64,
    shard: Shard,
    stop: Arc<AtomicBool>,
    stop_at: Arc<AtomicU64>,
    grace_ns: u64,
    deadline: Option<u64>,
    sink: Arc<RunSink>,
    progress: ProgressBar,
    counters: Arc<Counters>,
}

type Calls = tokio::task::JoinSet<latlab_core::pipeline::CallReport>;

impl Driver {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
            || self.deadline.is_some_and(|d| self.epoch.elapsed_ns() >= d)
    }

    /// Waits for the calls in flight; after an interruption, for at most the grace period,
    /// then cuts off the rest (their unfinished turns are not recorded). Returns how many
    /// were cut off.
    async fn drain(&self, tasks: &mut Calls) -> anyhow::Result<usize> {
        loop {
            let stop_at = self.stop_at.load(Ordering::SeqCst);
            let until = if stop_at == u64::MAX {
                // Not interrupted: look again in a while, in case that changes.
                self.epoch.elapsed_ns() + 100_000_000
            } else {
                stop_at.saturating_add(self.grace_ns)
            };
            tokio::select! {
                done = tasks.join_next() => match done {
                    None => return Ok(0),
                    Some(done) => { done.context("a call task panicked")?; }
                },
                _ = self.epoch.sleep_until(until) => {
                    if stop_at != u64::MAX && self.epoch.elapsed_ns() >= until {
                        let cut = tasks.len();
                        tasks.abort_all();
                        while tasks.join_next().await.is_some() {}
                        self.counters.in_flight.store(0, Ordering::SeqCst);
                        return Ok(cut);
                    }
                }
            }
        }
    }

    /// Epoch time of a load-plan time (recording ns from the load's start).
    fn at(&self, load_start: u64, plan_ns: u64) -> u64 {
        if plan_ns == u64::MAX {
            return u64::MAX;
        }
        load_start.saturating_add((plan_ns as f64 / self.speed).round() as u64)
    }

    /// Starts call `k` whose recording begins at `recording_ns`; `freed` hears when it ends.
    fn launch(
        &self,
        tasks: &mut Calls,
        l: &Launcher,
        k: usize,
        recording_ns: u64,
        freed: Option<mpsc::UnboundedSender<u64>>,
    ) {
        let index = k % l.calls.len();
        let call = Arc::clone(&l.calls[index]);
        let plan = CallPlan {
            run: l.run.clone(),
            scenario: l.scenario.clone(),
            profile: Arc::clone(&l.profile),
            schedule: CallSchedule::new(recording_ns, call.sample_rate, l.frame_ms, self.speed),
            call,
            samples: Arc::clone(&l.samples[index]),
            iteration: (k / l.calls.len()) as u32,
            frame_ms: l.frame_ms,
            transcript_timeout_ms: l.transcript_timeout_ms,
            timeouts: l.timeouts,
            pacer: self.pacer.clone(),
        };
        let backends = l.backends.clone();
        let sink = Arc::clone(&self.sink) as Arc<dyn latlab_core::timing::SpanSink>;
        let bar = self.progress.clone();
        let epoch = self.epoch;
        let counters = Arc::clone(&self.counters);
        counters.started.fetch_add(1, Ordering::Relaxed);
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tasks.spawn(async move {
            let report = run_call(epoch, plan, backends, sink).await;
            counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            bar.inc(1);
            if let Some(freed) = freed {
                let _ = freed.send(epoch.elapsed_ns());
            }
            report
        });
        while tasks.try_join_next().is_some() {}
    }

    /// Closed loop: the stages' number of calls in flight (this shard's share); a slot
    /// starts its next call when its call ends. A call's scheduled start is the moment its
    /// slot freed (or, for slots opened together, their staggered starts).
    async fn closed(
        &self,
        l: &Launcher,
        windows: &[StageWindow],
        max_calls: Option<usize>,
        stagger_ms: u64,
    ) -> anyhow::Result<Driven> {
        let mut tasks = Calls::new();
        // Each token is a free slot: the epoch time its next call is scheduled to start.
        let (free, mut slots) = mpsc::unbounded_channel::<u64>();
        let load_start = self.epoch.elapsed_ns();
        let mut next_stagger = load_start;
        let (mut level, mut owed, mut opened) = (0usize, 0usize, 0u64);
        let mut started = 0;
        let mut k = 0;
        'calls: loop {
            while !self.shard.includes(k) {
                k += 1;
            }
            if max_calls.is_some_and(|m| k >= m) {
                break;
            }
            let scheduled = loop {
                if self.stopped() {
                    break 'calls;
                }
                let now = self.epoch.elapsed_ns();
                let t = ((now - load_start) as f64 * self.speed) as u64;
                let Some(window) = windows.iter().find(|w| w.start_ns <= t && t < w.end_ns) else {
                    break 'calls;
                };
                let target = self.shard.share(window.target.max(0.0).round() as usize);
                if target > level {
                    // New slots start one stagger apart, each at its own phase of the
                    // audio frame (a golden-ratio sequence spreads any number evenly), so
                    // calls' frames are not all due in the same instant as they would be with
                    // a stagger that is a multiple of the frame length — callers' phases are
                    // random, a burst of simultaneous frames is an artefact.
                    for _ in level..target {
                        let at = next_stagger.max(now);
                        let _ = free.send(at + phase_ns(opened, l.frame_ms));
                        opened += 1;
                        next_stagger = at + stagger_ms * 1_000_000;
                    }
                    level = target;
                } else if target < level {
                    owed += level - target;
                    level = target;
                }
                let boundary = self.at(load_start, window.end_ns);
                tokio::select! {
                    token = slots.recv() => {
                        let Some(at) = token else { break 'calls };
                        if owed > 0 {
                            owed -= 1; // a slot closed by a lower stage
                            continue;
                        }
                        break at;
                    }
                    _ = self.epoch.sleep_until(boundary), if boundary != u64::MAX => continue,
                }
            };
            if self.stopped() {
                break;
            }
            let now = self.epoch.elapsed_ns();
            self.sink.record_call_start(now.saturating_sub(scheduled));
            self.launch(
                &mut tasks,
                l,
                k,
                scheduled + CONNECT_LEAD_NS,
                Some(free.clone()),
            );
            started += 1;
            k += 1;
        }
        let cut_off = self.drain(&mut tasks).await?;
        Ok(Driven {
            started,
            dropped: 0,
            cut_off,
            load_start,
        })
    }

    /// Open loop: calls start at their planned arrival times, whatever is in flight; an
    /// arrival that finds `cap` calls in flight is dropped and counted.
    async fn open(&self, l: &Launcher, arrivals: &[u64], cap: usize) -> anyhow::Result<Driven> {
        let mut tasks = Calls::new();
        // The first arrival is due a little after the driver starts, so it is not late.
        let load_start = self.epoch.elapsed_ns() + 10_000_000;
        let (mut started, mut dropped) = (0, 0);
        for (k, &plan_ns) in arrivals.iter().enumerate() {
            if !self.shard.includes(k) {
                continue;
            }
            let due = self.at(load_start, plan_ns);
            self.pacer.sleep_until(self.epoch.instant_at(due)).await;
            if self.stopped() {
                break;
            }
            let now = self.epoch.elapsed_ns();
            self.sink.record_call_start(now.saturating_sub(due));
            if self.counters.in_flight.load(Ordering::SeqCst) >= cap {
                dropped += 1;
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.progress.inc(1);
                continue;
            }
            // Each call's frames at their own phase (see `closed`): constant arrivals every
            // multiple of the frame length would otherwise send every call's frames at once.
            let phase = phase_ns(k as u64, l.frame_ms);
            self.launch(&mut tasks, l, k, due + CONNECT_LEAD_NS + phase, None);
            started += 1;
        }
        let cut_off = self.drain(&mut tasks).await?;
        Ok(Driven {
            started,
            dropped,
            cut_off,
            load_start,
        })
    }
}

/// Orders results by profile, call, iteration and turn, so files read naturally.
pub fn sort_results(spans: &mut [Span], turns: &mut [TurnTimeline]) {
    spans.sort_by(|a, b| {
        (&a.profile, a.iteration, &a.call, a.turn, a.stage).cmp(&(
            &b.profile,
            b.iteration,
            &b.call,
            b.turn,
            b.stage,
        ))
    });
    turns.sort_by(|a, b| {
        (&a.profile, a.iteration, &a.call, a.turn).cmp(&(&b.profile, b.iteration, &b.call, b.turn))
    });
}

fn results_dir(opts: &RunOptions, name: &str) -> anyhow::Result<PathBuf> {
    let dir = match &opts.out {
        Some(out) => out.clone(),
        None => {
            let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .chars()
                .filter(|c| !matches!(c, ':' | '-'))
                .collect();
            let base = opts.results_root.join(format!("{name}-{stamp}"));
            let mut dir = base.clone();
            let mut n = 1;
            while dir.exists() {
                n += 1;
                dir = PathBuf::from(format!("{}-{n}", base.display()));
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
