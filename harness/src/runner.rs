//! The scenario runner: loads the dataset, starts the emulator when a backend asks for it,
//! builds the backends, replays the calls of each profile in a closed loop of `concurrency`
//! calls in flight, and writes the results folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use latlab_core::backends::deepgram::DeepgramStt;
use latlab_core::backends::elevenlabs::ElevenLabsTts;
use latlab_core::backends::openai::OpenAiLlm;
use latlab_core::backends::{ApiKey, Timeouts};
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::dataset::Dataset;
use latlab_core::pipeline::{Backends, CallPlan, run_call};
use latlab_core::schedule::CallSchedule;
use latlab_core::timing::{Outcome, Span, TurnTimeline};
use latlab_emulator::Emulator;
use tokio::sync::Semaphore;

use crate::manifest::{self, Counts, Fingerprint, Pacing, RunManifest};
use crate::scenario::{EMULATOR, LlmBackend, Scenario, SttBackend, TtsBackend};
use crate::sinks::{self, RunSink, TurnObserver};

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
}

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
    let concurrency = opts.concurrency.unwrap_or(spec.concurrency).max(1);
    let calls_per_profile = opts
        .calls
        .or(spec.calls)
        .unwrap_or(dataset.calls.len())
        .max(1);
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
    let (backends, backends_fact) = build_backends(scenario, emulator.as_ref(), timeouts)?;

    let dir = results_dir(opts, &spec.name)?;
    let run_id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.name.clone());
    let mut manifest = RunManifest {
        schema_version: manifest::SCHEMA_VERSION,
        latlab_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run_id.clone(),
        status: "running".into(),
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
        backends: backends_fact,
        host: manifest::host(),
        counts: None,
        pacing: None,
        emulator: None,
        notes: Vec::new(),
    };
    manifest.write(&dir)?;

    let total_calls = calls_per_profile * profiles.len();
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
    let observer = Progress {
        bar: progress.clone(),
        turns: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    };
    let sink = Arc::new(RunSink::create(&dir, Some(Box::new(observer)))?);

    let mut samples = Vec::with_capacity(dataset.calls.len());
    for call in &dataset.calls {
        samples.push(Arc::new(call.load_samples()?));
    }
    let calls: Vec<_> = dataset.calls.iter().cloned().map(Arc::new).collect();

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let began = Instant::now();
    let epoch = Epoch::now();
    let pacer = Pacer::start();
    let deadline =
        (spec.limits.max_duration_s > 0).then(|| spec.limits.max_duration_s * 1_000_000_000);
    let mut calls_run = 0;
    for profile in &profiles {
        let profile = Arc::new(profile.clone());
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let first_start = epoch.elapsed_ns() + CONNECT_LEAD_NS;
        for k in 0..calls_per_profile {
            let permit = Arc::clone(&slots).acquire_owned().await?;
            let now = epoch.elapsed_ns();
            if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| now >= d) {
                break;
            }
            let index = k % calls.len();
            // Leave the call time to connect before its first frame is due.
            let planned = if k < concurrency {
                first_start + k as u64 * spec.stagger_ms * 1_000_000
            } else {
                now + CONNECT_LEAD_NS
            };
            let call = Arc::clone(&calls[index]);
            let plan = CallPlan {
                run: run_id.clone(),
                scenario: spec.name.clone(),
                profile: Arc::clone(&profile),
                schedule: CallSchedule::new(
                    planned.max(now),
                    call.sample_rate,
                    spec.frame_ms,
                    speed,
                ),
                call,
                samples: Arc::clone(&samples[index]),
                iteration: (k / calls.len()) as u32,
                frame_ms: spec.frame_ms,
                transcript_timeout_ms: spec.limits.transcript_timeout_ms,
                timeouts,
                pacer: pacer.clone(),
            };
            let backends = backends.clone();
            let sink = Arc::clone(&sink) as Arc<dyn latlab_core::timing::SpanSink>;
            let bar = progress.clone();
            tasks.spawn(async move {
                let report = run_call(epoch, plan, backends, sink).await;
                bar.inc(1);
                drop(permit);
                report
            });
            calls_run += 1;
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a call task panicked")?;
        }
    }
    progress.finish_and_clear();
    let interrupted = stop.load(Ordering::SeqCst);

    let (mut spans, mut turns, pacing) = sink.finish()?;
    sort_results(&mut spans, &mut turns);
    sinks::write_tables(&dir, &spans, &turns)?;

    if let Some(emulator) = emulator {
        manifest.emulator = serde_json::to_value(emulator.stats()).ok();
        emulator.shutdown().await;
    }
    let pacing = Pacing {
        frames: pacing.len(),
        p50_ns: pacing.value_at_quantile(0.5),
        p99_ns: pacing.value_at_quantile(0.99),
        max_ns: pacing.max(),
    };
    if pacing.p99_ns > 1_000_000 {
        manifest.notes.push(format!(
            "WARNING: p99 frame pacing lag was {:.2} ms (> 1 ms): the harness fell behind its schedule, so latencies partly describe the load generator",
            pacing.p99_ns as f64 / 1e6
        ));
    }
    if interrupted {
        manifest
            .notes
            .push("interrupted by Ctrl-C: calls not yet started were not run".into());
    }
    manifest.status = if interrupted {
        "interrupted"
    } else {
        "complete"
    }
    .into();
    manifest.duration_s = Some(began.elapsed().as_secs_f64());
    manifest.counts = Some(Counts {
        calls: calls_run,
        turns: turns.len(),
        failed_turns: turns.iter().filter(|t| t.outcome != Outcome::Ok).count(),
        spans: spans.len(),
    });
    manifest.pacing = Some(pacing);
    manifest.write(&dir)?;
    Ok(RunResult { dir, manifest })
}

/// How long before its first frame a call opens its STT stream.
const CONNECT_LEAD_NS: u64 = 100_000_000;

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

struct Progress {
    bar: ProgressBar,
    turns: AtomicUsize,
    failed: AtomicUsize,
}

impl TurnObserver for Progress {
    fn turn_done(&self, timeline: &TurnTimeline) {
        let turns = self.turns.fetch_add(1, Ordering::Relaxed) + 1;
        let failed =
            self.failed.load(Ordering::Relaxed) + usize::from(timeline.outcome != Outcome::Ok);
        if timeline.outcome != Outcome::Ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.bar
            .set_message(format!("{turns} turns, {failed} failed"));
    }
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

/// The key for a backend: the emulator's configured key on loopback, else the environment's.
fn key_for(
    base_url: &str,
    env: &str,
    emulator_key: &Option<String>,
) -> anyhow::Result<Option<ApiKey>> {
    if base_url == EMULATOR {
        return Ok(emulator_key.clone().map(ApiKey::new));
    }
    let key = ApiKey::from_env(env);
    let local = ["://127.0.0.1", "://localhost", "://[::1]"]
        .iter()
        .any(|h| base_url.contains(h));
    if key.is_none() && !local {
        bail!("backend {base_url} needs an API key: set the environment variable {env}");
    }
    Ok(key)
}

fn build_backends(
    scenario: &Scenario,
    emulator: Option<&Emulator>,
    timeouts: Timeouts,
) -> anyhow::Result<(Backends, serde_json::Value)> {
    let b = &scenario.spec.backends;
    let emu = scenario.spec.emulator.clone().unwrap_or_default();
    let resolve = |url: &str, pick: fn(&Emulator) -> String| -> String {
        match (url, emulator) {
            (EMULATOR, Some(e)) => pick(e),
            _ => url.to_string(),
        }
    };
    let SttBackend::Deepgram(stt) = &b.stt;
    let LlmBackend::Openai(llm) = &b.llm;
    let TtsBackend::Elevenlabs(tts) = &b.tts;
    let stt_key = key_for(&stt.base_url, &stt.api_key_env, &emu.stt.api_key)?;
    let llm_key = key_for(&llm.base_url, &llm.api_key_env, &emu.llm.api_key)?;
    let tts_key = key_for(&tts.base_url, &tts.api_key_env, &emu.tts.api_key)?;
    let mut stt = stt.clone();
    stt.base_url = resolve(&stt.base_url, Emulator::stt_url);
    let mut llm = llm.clone();
    llm.base_url = resolve(&llm.base_url, Emulator::llm_url);
    let mut tts = tts.clone();
    tts.base_url = resolve(&tts.base_url, Emulator::tts_url);
    let fact = serde_json::json!({
        "emulated": scenario.uses_emulator(),
        "stt": {"kind": "deepgram", "base_url": stt.base_url, "model": stt.model},
        "llm": {"kind": "openai", "base_url": llm.base_url, "model": llm.model},
        "tts": {"kind": "elevenlabs", "base_url": tts.base_url, "model": tts.model, "voice_id": tts.voice_id, "output_format": tts.output_format},
    });
    let system_prompt = llm.system_prompt.clone();
    let backends = Backends {
        stt: Arc::new(DeepgramStt::new(stt, stt_key, timeouts)),
        llm: Arc::new(
            OpenAiLlm::new(llm, llm_key, timeouts)
                .map_err(|e| anyhow::anyhow!("LLM backend: {e}"))?,
        ),
        tts: Arc::new(
            ElevenLabsTts::new(tts, tts_key, timeouts)
                .map_err(|e| anyhow::anyhow!("TTS backend: {e}"))?,
        ),
        system_prompt,
    };
    Ok((backends, fact))
}
