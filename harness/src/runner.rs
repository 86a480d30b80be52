//! The scenario runner: loads the dataset, starts the emulator when a backend asks for it,
//! builds the backends, replays the calls of each profile in a closed loop of `concurrency`
//! calls in flight, and writes the results folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use latlab_core::agent::{AgentTarget, run_agent_call};
use latlab_core::backends::Timeouts;
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::dataset::{Call, Dataset};
use latlab_core::load::{self, Shard, StageWindow};
use latlab_core::pipeline::{Backends, CallPlan, run_call};
use latlab_core::profile::Profile;
use latlab_core::schedule::CallSchedule;
use latlab_core::timing::{Outcome, Span, TurnTimeline};
use latlab_emulator::Emulator;
use tokio::sync::mpsc;

use crate::backends::BackendSet;
use crate::interrupt::Interrupt;
use crate::live::{self, Counters, Live, Metrics};
use crate::manifest::{self, Counts, Fingerprint, LoadFacts, RunManifest, RunStatus};
use crate::scenario::{LoadModel, LoadPlan, Scenario};
use crate::sinks::{self, Recorded, RunSink, hdr};
use crate::telemetry::{Telemetry, TelemetryFacts};
use crate::vision;

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

/// Runs a scenario to completion (or until `interrupt` is heard) and writes its results
/// folder. Each phase is one function below, in this order.
pub async fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    interrupt: &Interrupt,
) -> anyhow::Result<RunResult> {
    let setup = Setup::resolve(scenario, opts)?;
    let emulator = start_emulator(&setup).await?;
    let (backend_set, backends) = load_backends(&setup, emulator.as_ref())?;
    let self_report = scenario.spec.agent.as_ref().and_then(|a| {
        crate::agent::SelfReportSource::of(
            a,
            scenario.path.parent().unwrap_or(Path::new(".")),
            emulator
                .as_ref()
                .map(|e| e.agent_url().replacen("ws://", "http://", 1)),
        )
    });
    let detectors = load_detectors(&setup, emulator.as_ref()).await?;
    let dir = results_dir(opts, &scenario.spec.name)?;
    // Tool caches, one per profile (Redis profiles share a server latlab starts, dropped —
    // killed — when `run` returns, whichever way it returns).
    let mut backends = backends;
    let mut redis_server = None;
    let mut cache_fact = serde_json::Value::Null;
    if let Some(tools) = &scenario.spec.tools {
        let (caches, server, fact) =
            crate::tools::caches(tools, &setup.profiles, scenario.spec.limits.timeouts()).await?;
        redis_server = server;
        cache_fact = fact;
        let run_id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for ((answerer, cache), profile) in backends.iter_mut().zip(caches).zip(&setup.profiles) {
            if let Answerer::Pipeline(b) = answerer {
                b.tool_cache = cache;
                b.cache_namespace = format!("latlab:{run_id}:{}", profile.name);
            }
        }
    }
    let mut manifest = opening_manifest(&setup, &backend_set, &dir)?;
    if !cache_fact.is_null() {
        manifest.backends["tool_cache"] = cache_fact;
    }
    if let (Some(spec), Some(Answerer::Agent(target))) = (&scenario.spec.agent, backends.first()) {
        manifest.agent = Some(spec.facts(target));
    }
    detectors.describe(&setup, &mut manifest);
    manifest.write(&dir)?;
    let (live, observer) = LiveView::start(opts, setup.shard_calls * setup.profiles.len()).await?;
    let sink = Arc::new(RunSink::create(&dir, Some(Box::new(observer)))?);
    let replay = Replay::load(&setup.dataset)?;
    let clock = RunClock::start(interrupt);
    let telemetry = start_telemetry(&dir, clock.epoch, &mut manifest);
    let driver = Driver::new(&setup, &clock, &sink, &live);
    let frames = match &setup.vision {
        Some(_) => Some(Arc::new(vision::FrameSink::create(&dir)?)),
        None => None,
    };
    let lanes = Lanes {
        frames,
        stats: Vec::new(),
    };
    let (totals, lanes) = drive_profiles(
        &setup,
        &driver,
        backends,
        detectors.per_profile,
        lanes,
        &replay,
        &mut manifest,
    )
    .await?;
    live.finish();
    clock.finish();
    let telemetry = telemetry.map(Telemetry::stop);
    let reported = match &self_report {
        Some(source) => match source.read().await {
            Ok(read) => Some(read),
            Err(e) => {
                manifest
                    .notes
                    .push(format!("the agent's self-report could not be read: {e:#}"));
                None
            }
        },
        None => None,
    };
    let recorded = finish_sinks(&dir, &sink, &backend_set, reported, &mut manifest)?;
    finish_vision(&dir, &setup, &lanes, &mut manifest)?;
    if let Some(emulator) = emulator {
        settle_emulator(emulator, &setup, &clock.epoch, &recorded, &mut manifest).await;
    }
    close_manifest(&mut manifest, &setup, &recorded, &totals, &clock, &live);
    record_telemetry(&mut manifest, telemetry);
    manifest.write(&dir)?;
    drop(redis_server);
    Ok(RunResult { dir, manifest })
}

/// What a scenario and the command line resolve to before anything starts: the dataset,
/// the load plan and the profiles to run.
struct Setup<'a> {
    scenario: &'a Scenario,
    dataset: Dataset,
    seed: u64,
    speed: f64,
    shard: Shard,
    plan: LoadPlan,
    windows: Vec<StageWindow>,
    /// Open loop: one arrival plan, the same for every profile (paired) and every shard.
    arrivals: Vec<u64>,
    concurrency: usize,
    /// Calls per profile of the whole run (every shard together); 0 when only time bounds it.
    calls_per_profile: usize,
    /// This shard's share, for the progress bar (0: unknown).
    shard_calls: usize,
    profiles: Vec<Profile>,
    /// The vision lane's video, decoded (before the clock starts), when the scenario has one.
    vision: Option<vision::Prepared>,
}

impl<'a> Setup<'a> {
    fn resolve(scenario: &'a Scenario, opts: &RunOptions) -> anyhow::Result<Setup<'a>> {
        let spec = &scenario.spec;
        let video_dir = spec.video.as_ref().map(|v| {
            scenario
                .path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&v.dataset)
        });
        let dataset = match (&video_dir, scenario.runs_audio()) {
            // Camera streams only: no recorded calls. The manifest's `dataset` is the video
            // dataset, fingerprinted by its manifest.
            (Some(dir), false) => Dataset {
                manifest_path: dir.join(latlab_core::vision::video::MANIFEST),
                dir: dir.clone(),
                calls: Vec::new(),
            },
            _ => Dataset::load(&scenario.dataset_dir)?,
        };
        let seed = opts.seed.unwrap_or(spec.seed);
        let speed = opts.speed.unwrap_or(spec.speed);
        if !(speed.is_finite() && speed > 0.0 && speed <= 100.0) {
            bail!("--speed {speed} is not in (0, 100]");
        }
        let shard = opts.shard.unwrap_or(Shard::WHOLE);
        let plan = scenario.load_plan(dataset.calls.len(), opts.calls, opts.concurrency);
        let windows = load::windows(&plan.stages);
        let arrivals = match plan.model {
            LoadModel::Open => load::arrivals(plan.arrival, &windows, plan.max_calls, seed),
            LoadModel::Closed => Vec::new(),
        };
        let concurrency = match plan.model {
            LoadModel::Closed => plan.stages.first().map_or(1, |s| s.target.round() as usize),
            LoadModel::Open => plan.max_in_flight,
        };
        let calls_per_profile = match plan.model {
            LoadModel::Closed => plan.max_calls.unwrap_or(0),
            LoadModel::Open => arrivals.len(),
        };
        let shard_calls = (0..calls_per_profile)
            .filter(|&k| shard.includes(k))
            .count();
        let profiles = chosen_profiles(scenario, &opts.profiles)?;
        let vision = match (&spec.video, &video_dir) {
            (Some(v), Some(dir)) if profiles.iter().any(|p| p.lanes.video()) => {
                Some(vision::prepare(v, dir)?)
            }
            _ => None,
        };
        Ok(Setup {
            scenario,
            dataset,
            seed,
            speed,
            shard,
            plan,
            windows,
            arrivals,
            concurrency,
            calls_per_profile,
            shard_calls,
            profiles,
            vision,
        })
    }
}

/// The scenario's profiles, or those `--profile` names (each must be one of them).
fn chosen_profiles(scenario: &Scenario, chosen: &[String]) -> anyhow::Result<Vec<Profile>> {
    let mut profiles = scenario.profiles.clone();
    if chosen.is_empty() {
        return Ok(profiles);
    }
    if let Some(missing) = chosen
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
    profiles.retain(|p| chosen.contains(&p.name));
    Ok(profiles)
}

/// The emulator, when a backend's `base_url` asks for it, seeded with the run's seed.
async fn start_emulator(setup: &Setup<'_>) -> anyhow::Result<Option<Emulator>> {
    if !setup.scenario.uses_emulator() {
        return Ok(None);
    }
    let mut config = setup.scenario.spec.emulator.clone().unwrap_or_default();
    config.seed = setup.seed;
    let emulator = Emulator::start(config, Some(Arc::new(setup.dataset.clone())))
        .await
        .context("starting the emulator")?;
    Ok(Some(emulator))
}

/// The backends of every profile. Local models load now, before the clock starts: their
/// load time is a fact of the run (manifest `model_loads`), never part of a turn.
fn load_backends(
    setup: &Setup<'_>,
    emulator: Option<&Emulator>,
) -> anyhow::Result<(BackendSet, Vec<Answerer>)> {
    let scenario = setup.scenario;
    if let Some(agent) = &scenario.spec.agent {
        // The user's agent answers: no STT, LLM or TTS client is built.
        let url = emulator.map(Emulator::agent_url);
        let mut answerers = Vec::with_capacity(setup.profiles.len());
        for profile in &setup.profiles {
            let target = agent
                .for_profile(&profile.name, url.as_deref())
                .context("[agent]")?;
            answerers.push(Answerer::Agent(Arc::new(target)));
        }
        let fact = serde_json::json!({ "agent": agent.name, "emulated": scenario.uses_emulator() });
        return Ok((BackendSet::none(fact), answerers));
    }
    let mut backend_set = BackendSet::new(scenario, emulator, scenario.spec.limits.timeouts())?;
    if let Some(tools) = &scenario.spec.tools {
        let built = tools.tools(
            scenario.path.parent().unwrap_or(Path::new(".")),
            emulator.map(Emulator::tools_url),
            scenario.spec.limits.timeouts(),
        )?;
        backend_set.fact["tools"] = serde_json::json!({
            "backend": built.name(),
            "functions": built.functions().iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        });
        backend_set.tools = Some(Arc::new(built));
    }
    let mut backends = Vec::with_capacity(setup.profiles.len());
    for profile in &setup.profiles {
        backends.push(Answerer::Pipeline(
            backend_set.for_profile(scenario, profile)?,
        ));
    }
    Ok((backend_set, backends))
}

/// The manifest as the run starts (`status = "running"`): what it stands on.
fn opening_manifest(
    setup: &Setup<'_>,
    backend_set: &BackendSet,
    dir: &Path,
) -> anyhow::Result<RunManifest> {
    let scenario = setup.scenario;
    let spec = &scenario.spec;
    let dataset = &setup.dataset;
    let run_id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.name.clone());
    Ok(RunManifest {
        schema_version: manifest::SCHEMA_VERSION,
        latlab_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id,
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
            path: dataset.dir.display().to_string(),
            sha256: manifest::dataset_sha256(dataset)?,
        },
        seed: setup.seed,
        speed: setup.speed,
        calls_per_profile: setup.calls_per_profile,
        concurrency: setup.concurrency,
        profiles: setup.profiles.clone(),
        backends: backend_set.fact.clone(),
        model_loads: backend_set.loads.clone(),
        warmup: Vec::new(),
        // The emulator answers with the reference itself: accuracy per voice would say nothing.
        call_voices: if spec.backends.stt_is_emulated() {
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
            plan: setup.plan.clone(),
            shard: (setup.shard != Shard::WHOLE).then(|| setup.shard.to_string()),
            profile_start_ns: Default::default(),
        }),
        call_starts: None,
        telemetry: None,
        emulator: None,
        measurer: Vec::new(),
        llm_queue_wait: None,
        vision: None,
        agent: None,
        notes: Vec::new(),
    })
}

/// What watches the run as it goes: the progress bar, the driver's counters and, with
/// `--metrics-addr`, the metrics endpoint.
struct LiveView {
    progress: ProgressBar,
    counters: Arc<Counters>,
    endpoint: Option<tokio::task::JoinHandle<()>>,
}

impl LiveView {
    /// Shows the progress bar (unless quiet) and serves metrics when asked; returns the view
    /// and the observer the sink feeds each turn to.
    async fn start(opts: &RunOptions, total_calls: usize) -> anyhow::Result<(LiveView, Live)> {
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
        let view = LiveView {
            progress,
            counters,
            endpoint,
        };
        Ok((view, observer))
    }

    /// Clears the progress bar and stops serving metrics.
    fn finish(&self) {
        self.progress.finish_and_clear();
        if let Some(endpoint) = &self.endpoint {
            endpoint.abort();
        }
    }
}

/// Every call's recording and samples, shared by all profiles' calls.
struct Replay {
    calls: Arc<Vec<Arc<Call>>>,
    samples: Arc<Vec<Arc<Vec<i16>>>>,
}

impl Replay {
    fn load(dataset: &Dataset) -> anyhow::Result<Replay> {
        let mut samples = Vec::with_capacity(dataset.calls.len());
        for call in &dataset.calls {
            samples.push(Arc::new(call.load_samples()?));
        }
        Ok(Replay {
            calls: Arc::new(dataset.calls.iter().cloned().map(Arc::new).collect()),
            samples: Arc::new(samples),
        })
    }
}

/// The run's clock (its epoch and frame pacer) and its stop: set when `interrupt` is heard,
/// with the moment it was, so calls in flight get their grace period from then.
struct RunClock {
    began: Instant,
    epoch: Epoch,
    pacer: Pacer,
    stop: Arc<AtomicBool>,
    /// When the interrupt came, in ns since the epoch (`u64::MAX`: it has not).
    stop_at: Arc<AtomicU64>,
    listener: tokio::task::JoinHandle<()>,
}

impl RunClock {
    fn start(interrupt: &Interrupt) -> RunClock {
        interrupt.listen();
        let stop = Arc::new(AtomicBool::new(false));
        let began = Instant::now();
        let epoch = Epoch::now();
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let listener = {
            let (stop, stop_at) = (Arc::clone(&stop), Arc::clone(&stop_at));
            let mut interrupt = interrupt.clone();
            tokio::spawn(async move {
                if interrupt.heard_now().await {
                    stop_at.store(epoch.elapsed_ns(), Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
                }
            })
        };
        RunClock {
            began,
            epoch,
            pacer: Pacer::start(),
            stop,
            stop_at,
            listener,
        }
    }

    /// Stops listening for the interrupt: from now on [`RunClock::interrupted`] holds.
    fn finish(&self) {
        self.listener.abort();
    }

    /// Whether the interrupt came while the run was listening.
    fn interrupted(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Machine telemetry beside the run, or a note in the manifest saying why there is none.
fn start_telemetry(dir: &Path, epoch: Epoch, manifest: &mut RunManifest) -> Option<Telemetry> {
    match Telemetry::start(dir, epoch, std::time::Duration::from_secs(1)) {
        Ok(t) => Some(t),
        Err(e) => {
            manifest.notes.push(format!("telemetry off: {e:#}"));
            None
        }
    }
}

/// Calls started, arrivals dropped and calls cut off, over every profile driven.
#[derive(Debug, Default)]
struct Totals {
    started: usize,
    dropped: usize,
    cut_off: usize,
}

/// A profile's resolved vision settings and its (possibly shared) detector.
type ProfileDetector = (
    vision::ProfileVision,
    Arc<dyn latlab_core::vision::Detector>,
);

/// Each profile's detector (None: the profile runs no camera streams), loaded before the
/// clock starts, with its resolved settings.
struct Detectors {
    per_profile: Vec<Option<ProfileDetector>>,
    loads: Vec<latlab_results::manifest::ModelLoad>,
    /// What the warm-up frames said when they failed.
    notes: Vec<String>,
}

impl Detectors {
    /// Records the detectors in the manifest: their loads, and per profile the detector and
    /// policy, with the video's facts.
    fn describe(&self, setup: &Setup<'_>, manifest: &mut RunManifest) {
        manifest.model_loads.extend(self.loads.iter().cloned());
        manifest.notes.extend(self.notes.iter().cloned());
        let Some(prepared) = &setup.vision else {
            return;
        };
        let mut facts = prepared.facts.clone();
        for (profile, d) in setup.profiles.iter().zip(&self.per_profile) {
            if let Some((pv, det)) = d {
                facts.detectors.insert(profile.name.clone(), det.describe());
                facts.policies.insert(profile.name.clone(), pv.policy);
            }
        }
        manifest.vision = Some(facts);
    }
}

/// Loads one detector per distinct setting (profiles sharing one share it) and runs one frame
/// through each, outside the clock, so no frame pays for a cold start.
async fn load_detectors(
    setup: &Setup<'_>,
    emulator: Option<&Emulator>,
) -> anyhow::Result<Detectors> {
    let mut out = Detectors {
        per_profile: Vec::new(),
        loads: Vec::new(),
        notes: Vec::new(),
    };
    let (Some(spec), Some(prepared)) = (&setup.scenario.spec.video, &setup.vision) else {
        out.per_profile = setup.profiles.iter().map(|_| None).collect();
        return Ok(out);
    };
    let url = emulator.map(|e| e.detector_url());
    let timeouts = setup.scenario.spec.limits.timeouts();
    let mut cache: Vec<(vision::DetectorSpec, Arc<dyn latlab_core::vision::Detector>)> = Vec::new();
    for profile in &setup.profiles {
        if !profile.lanes.video() {
            out.per_profile.push(None);
            continue;
        }
        let pv = vision::for_profile(spec, profile);
        let detector = match cache.iter().find(|(s, _)| *s == pv.detector) {
            Some((_, d)) => Arc::clone(d),
            None => {
                let d =
                    vision::build_detector(&pv.detector, url.as_deref(), &timeouts, &mut out.loads)
                        .await
                        .with_context(|| format!("profile {}: the detector", profile.name))?;
                // A failed warm-up frame (a fault of the server) is noted, not fatal: the
                // frames of the run record their own errors.
                if let Some(first) = prepared.frames.first()
                    && let Err(e) = d.detect(first).await
                {
                    out.notes.push(format!(
                        "profile {}: the detector's warm-up frame failed: {e}",
                        profile.name
                    ));
                }
                cache.push((pv.detector.clone(), Arc::clone(&d)));
                d
            }
        };
        out.per_profile.push(Some((pv, detector)));
    }
    Ok(out)
}

/// Who answers a profile's calls: the pipeline latlab builds, or the user's running agent.
#[derive(Clone)]
enum Answerer {
    Pipeline(Backends),
    Agent(Arc<AgentTarget>),
}

/// The vision lane while it runs: the frame sink and each profile's stream statistics.
struct Lanes {
    frames: Option<Arc<vision::FrameSink>>,
    stats: Vec<vision::LaneStats>,
}

/// Drives each profile in turn — its calls (after its warm-up) and its camera streams side by
/// side, on the same clock — until all are done or the run is stopped; records each
/// profile's load start in the manifest.
async fn drive_profiles(
    setup: &Setup<'_>,
    driver: &Driver,
    backends: Vec<Answerer>,
    detectors: Vec<Option<ProfileDetector>>,
    mut lanes: Lanes,
    replay: &Replay,
    manifest: &mut RunManifest,
) -> anyhow::Result<(Totals, Lanes)> {
    let spec = &setup.scenario.spec;
    let plan = &setup.plan;
    let mut totals = Totals::default();
    for ((profile, backends), detector) in setup.profiles.iter().zip(backends).zip(detectors) {
        let audio = profile.lanes.audio();
        if audio && let Answerer::Pipeline(backends) = &backends {
            warm_up(setup, profile, backends, replay, manifest).await;
        }
        let launcher = Launcher {
            run: manifest.run_id.clone(),
            scenario: spec.name.clone(),
            profile: Arc::new(profile.clone()),
            calls: replay.calls.clone(),
            samples: replay.samples.clone(),
            frame_ms: spec.frame_ms,
            transcript_timeout_ms: spec.limits.transcript_timeout_ms,
            timeouts: spec.limits.timeouts(),
            backends,
        };
        // The camera streams start with the profile's load, a little ahead so frame 0 is
        // not late.
        let video_start = driver.epoch.elapsed_ns() + 10_000_000;
        let calls = async {
            if !audio {
                return Ok(None);
            }
            let done = match plan.model {
                LoadModel::Closed => {
                    driver
                        .closed(&launcher, &setup.windows, plan.max_calls, spec.stagger_ms)
                        .await?
                }
                LoadModel::Open => {
                    driver
                        .open(
                            &launcher,
                            &setup.arrivals,
                            setup.shard.share(plan.max_in_flight),
                        )
                        .await?
                }
            };
            anyhow::Ok(Some(done))
        };
        let streams = async {
            match (&setup.vision, detector, &lanes.frames) {
                (Some(prepared), Some((pv, detector)), Some(sink)) => Some(
                    vision::drive(
                        prepared,
                        &profile.name,
                        &pv,
                        detector,
                        setup.speed,
                        video_start,
                        driver.epoch,
                        driver.pacer.clone(),
                        Arc::clone(&driver.stop),
                        Arc::clone(sink),
                    )
                    .await,
                ),
                _ => None,
            }
        };
        let (done, streamed) = tokio::join!(calls, streams);
        if let Some(s) = streamed {
            lanes.stats.push(s);
        }
        let load_start = match done? {
            Some(done) => {
                totals.started += done.started;
                totals.dropped += done.dropped;
                totals.cut_off += done.cut_off;
                done.load_start
            }
            None => video_start,
        };
        if let Some(load) = &mut manifest.load {
            load.profile_start_ns
                .insert(profile.name.clone(), load_start);
        }
        if driver.stopped() {
            break;
        }
    }
    Ok((totals, lanes))
}

/// Writes `frames.parquet` and the vision lane's closing facts: accuracy per profile and
/// class, and a warning when latlab's own capture lag passed 1 ms.
fn finish_vision(
    dir: &Path,
    setup: &Setup<'_>,
    lanes: &Lanes,
    manifest: &mut RunManifest,
) -> anyhow::Result<()> {
    let Some(sink) = &lanes.frames else {
        return Ok(());
    };
    let mut frames = sink.take();
    vision::write_table(
        dir,
        &manifest.run_id,
        &setup.scenario.spec.name,
        &mut frames,
    )?;
    let names: Vec<String> = setup.profiles.iter().map(|p| p.name.clone()).collect();
    let stats: Vec<&vision::LaneStats> = lanes.stats.iter().collect();
    let lag = vision::capture_lag(&stats);
    let mut failed = 0;
    if let Some(v) = &mut manifest.vision {
        v.accuracy = vision::accuracy_of(&frames, &names);
        v.count(&frames);
        failed = v.failed;
        v.capture_lag = lag.clone();
        v.capture_lag_by_profile = lanes
            .stats
            .iter()
            .filter_map(|s| Some((s.profile.clone(), vision::capture_lag(&[s])?)))
            .collect();
    }
    if let Some(lag) = &lag
        && lag.p99_ns > 1_000_000
    {
        manifest.notes.push(format!(
            "WARNING: p99 frame capture lag was {:.2} ms (max {:.2} ms, {} frames picked up by an idle detector): latlab woke late for captures, so frame latencies partly describe the load generator",
            lag.p99_ns as f64 / 1e6,
            lag.max_ns as f64 / 1e6,
            lag.count
        ));
    }
    let stopped = lanes
        .stats
        .iter()
        .flat_map(|s| s.streams.iter())
        .filter(|s| s.stopped)
        .count();
    if stopped > 0 {
        manifest.notes.push(format!(
            "{stopped} camera stream{} stopped at the interrupt: the {} frames captured before it are recorded, later ones were never captured",
            if stopped == 1 { "" } else { "s" },
            frames.len()
        ));
    }
    if failed > 0 {
        manifest.notes.push(format!(
            "{failed} frames failed in the detector (frames.parquet `error_kind`, `error_message`)"
        ));
    }
    Ok(())
}

/// The profile's warm-up turns (`warmup_turns`), outside the clock; their timings and any
/// failure go to the manifest.
async fn warm_up(
    setup: &Setup<'_>,
    profile: &Profile,
    backends: &Backends,
    replay: &Replay,
    manifest: &mut RunManifest,
) {
    let turns = setup.scenario.spec.warmup_turns;
    let (Some(call), Some(audio)) = (replay.calls.first(), replay.samples.first()) else {
        return;
    };
    if turns == 0 {
        return;
    }
    let warm = crate::backends::warm_up(backends, profile, call, audio, turns).await;
    for w in &warm {
        if let Some(e) = &w.error {
            manifest
                .notes
                .push(format!("warm-up of profile {} failed: {e}", profile.name));
        }
    }
    manifest.warmup.extend(warm);
}

/// Ends the sink and writes what it recorded: the sorted span and turn tables, the local
/// models' own costs and the scheduling lag log.
fn finish_sinks(
    dir: &Path,
    sink: &RunSink,
    backend_set: &BackendSet,
    reported: Option<(String, Vec<latlab_results::agent::SelfReportLine>)>,
    manifest: &mut RunManifest,
) -> anyhow::Result<Recorded> {
    let mut recorded = sink.finish()?;
    sort_results(&mut recorded.spans, &mut recorded.turns);
    if let Some((source, lines)) = reported {
        let facts = crate::agent::align(&mut recorded.turns, &lines, &source);
        if facts.unaligned_calls > 0 {
            manifest.notes.push(format!(
                "the agent counted the turns of {} call(s) differently from the recording (a false cutoff or a missed turn): those turns have no agent's own figure",
                facts.unaligned_calls
            ));
        }
        if let Some(a) = &mut manifest.agent {
            a.self_report = Some(facts);
        }
        sinks::rewrite_turns_log(dir, &recorded.turns)?;
    }
    sinks::write_tables(dir, &recorded.spans, &recorded.turns)?;
    let local = backend_set.local_stats();
    if local.as_object().is_some_and(|o| !o.is_empty()) {
        let path = dir.join(LOCAL_STATS);
        std::fs::write(&path, serde_json::to_vec_pretty(&local)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    hdr::write_lag_log(
        &dir.join(hdr::SCHEDULING_LOG),
        &recorded.pacing,
        &recorded.call_starts,
    )
    .context("writing scheduling.hlog")?;
    Ok(recorded)
}

/// Stops the emulator and keeps what it saw: its counters and, from its wire trace,
/// latlab's own share of each stage's latency (manifest `measurer`).
async fn settle_emulator(
    emulator: Emulator,
    setup: &Setup<'_>,
    epoch: &Epoch,
    recorded: &Recorded,
    manifest: &mut RunManifest,
) {
    manifest.emulator = serde_json::to_value(emulator.stats()).ok();
    let (events, untraced) = emulator.take_trace();
    emulator.shutdown().await;
    let stt_endpointed: Vec<&str> = setup
        .profiles
        .iter()
        .filter(|p| p.endpointing == latlab_core::profile::Endpointing::Stt)
        .map(|p| p.name.as_str())
        .collect();
    manifest.measurer = crate::measurer::measure(
        epoch,
        &recorded.turns,
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

/// Says once per profile when `tts_input = "tokens"` met a TTS backend that takes whole texts
/// only, so the profile was spoken sentence by sentence.
fn note_sentence_fallback(manifest: &mut RunManifest, setup: &Setup<'_>) {
    use crate::scenario::TtsBackend;
    if matches!(setup.scenario.spec.backends.tts, TtsBackend::Cartesia(_)) {
        return;
    }
    for profile in &setup.profiles {
        if profile.tts_input == latlab_core::profile::TtsInput::Tokens {
            manifest.notes.push(format!(
                "profile {}: tts_input = \"tokens\" needs a TTS backend that takes text incrementally (cartesia); this one takes whole texts, so the profile was spoken as tts_start says (sentences)",
                profile.name
            ));
        }
    }
}

/// The manifest's closing facts: warnings about the load generator, what an interruption
/// left out, the status, duration, counts and lags.
fn close_manifest(
    manifest: &mut RunManifest,
    setup: &Setup<'_>,
    recorded: &Recorded,
    totals: &Totals,
    clock: &RunClock,
    live: &LiveView,
) {
    let interrupted = clock.interrupted();
    note_sentence_fallback(manifest, setup);
    let pacing = manifest::pacing_of(&recorded.pacing);
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
    if totals.dropped > 0 {
        manifest.notes.push(format!(
            "{} arrivals were dropped: they found {} calls in flight (max_in_flight) and were not started",
            totals.dropped,
            setup.shard.share(setup.plan.max_in_flight)
        ));
    }
    if interrupted && !setup.scenario.runs_audio() {
        manifest
            .notes
            .push("interrupted (Ctrl-C or SIGTERM)".to_string());
    } else if interrupted {
        manifest.notes.push(format!(
            "interrupted (Ctrl-C or SIGTERM): calls not yet started were not run; calls in flight had {} s to finish{}",
            setup.scenario.spec.limits.grace_s,
            if totals.cut_off > 0 {
                format!(
                    ", and {} that had not were cut off (their unfinished turns are not recorded)",
                    totals.cut_off
                )
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
    manifest.duration_s = Some(clock.began.elapsed().as_secs_f64());
    let turns = &recorded.turns;
    manifest.counts = Some(Counts {
        calls: totals.started,
        turns: turns.len(),
        failed_turns: turns.iter().filter(|t| t.outcome != Outcome::Ok).count(),
        spans: recorded.spans.len(),
        dropped_calls: totals.dropped,
        max_in_flight: live.counters.max_in_flight.load(Ordering::SeqCst),
    });
    manifest.pacing = Some(pacing);
    manifest.call_starts = Some(call_starts);
    manifest.llm_queue_wait = crate::measurer::llm_queue_wait(turns);
}

/// The machine's telemetry facts and notes, when it was sampled.
fn record_telemetry(manifest: &mut RunManifest, telemetry: Option<TelemetryFacts>) {
    if let Some(telemetry) = telemetry {
        manifest.notes.extend(telemetry.notes.iter().cloned());
        manifest.telemetry = Some(telemetry);
    }
}

/// The `n`-th call's offset within an audio frame: a golden-ratio sequence, which spreads any
/// number of calls evenly over the frame's length.
fn phase_ns(n: u64, frame_ms: u32) -> u64 {
    ((n as f64 * 0.618_033_988_75).fract() * f64::from(frame_ms) * 1e6) as u64
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
    backends: Answerer,
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
    fn new(setup: &Setup<'_>, clock: &RunClock, sink: &Arc<RunSink>, live: &LiveView) -> Driver {
        let limits = &setup.scenario.spec.limits;
        Driver {
            epoch: clock.epoch,
            pacer: clock.pacer.clone(),
            speed: setup.speed,
            shard: setup.shard,
            stop: Arc::clone(&clock.stop),
            stop_at: Arc::clone(&clock.stop_at),
            grace_ns: limits.grace_s.saturating_mul(1_000_000_000),
            deadline: (limits.max_duration_s > 0).then(|| limits.max_duration_s * 1_000_000_000),
            sink: Arc::clone(sink),
            progress: live.progress.clone(),
            counters: Arc::clone(&live.counters),
        }
    }

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
            let report = match backends {
                Answerer::Pipeline(backends) => run_call(epoch, plan, backends, sink).await,
                Answerer::Agent(target) => run_agent_call(epoch, plan, target, sink).await,
            };
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
