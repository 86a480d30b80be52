//! Building the backends a scenario names: cloud clients (keys from the environment, or the
//! emulator's) and local models, each loaded once per distinct setting and timed.
//!
//! Profiles may change local models' settings (`[profiles.X.local]`: model size, threads,
//! beam size), so backends are built per profile; a model already loaded with the same
//! settings is reused, never loaded twice. Every load is timed apart from the turns
//! ([`ModelLoad`], written to the manifest), so a slow model load never shows up as a slow turn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use latlab_core::backends::cartesia::CartesiaTts;
use latlab_core::backends::deepgram::DeepgramStt;
use latlab_core::backends::elevenlabs::ElevenLabsTts;
use latlab_core::backends::energy_vad::EnergyVadFactory;
use latlab_core::backends::local::{Device, Models};
use latlab_core::backends::openai::OpenAiLlm;
use latlab_core::backends::{ApiKey, Timeouts};
use latlab_core::pipeline::Backends;
use latlab_core::profile::Profile;
use latlab_core::stage::{EndpointerFactory, LanguageModel, SpeechToText, TextToSpeech};
use latlab_emulator::Emulator;

pub use latlab_results::manifest::{ModelLoad, WarmUp};

#[cfg(not(feature = "local-vad"))]
use crate::scenario::not_built;
use crate::scenario::{EMULATOR, LlmBackend, Scenario, SttBackend, TtsBackend, VadBackend};

/// The backends of one run, built per profile and cached by setting.
pub struct BackendSet {
    stt: BTreeMap<String, Arc<dyn SpeechToText>>,
    llm: BTreeMap<String, Arc<dyn LanguageModel>>,
    tts: BTreeMap<String, Arc<dyn TextToSpeech>>,
    vad: BTreeMap<String, Arc<dyn EndpointerFactory>>,
    system_prompt: String,
    models: Models,
    /// Every model load so far, in order.
    pub loads: Vec<ModelLoad>,
    /// What the manifest says about the backends.
    pub fact: serde_json::Value,
    /// Each local model's own cost records (per inference, generation or chunk), read at the
    /// end of the run: (stage, model, reader).
    probes: Vec<(String, String, Probe)>,
    /// The tools the LLM may call (`[tools]`), shared by every profile.
    pub tools: Option<Arc<latlab_core::tools::Tools>>,
}

type Probe = Box<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Exact percentiles (nearest rank on the sorted sample) and the sample's size.
#[cfg(any(feature = "local-vad", feature = "local-stt", feature = "local-llm"))]
fn spread(mut v: Vec<f64>) -> serde_json::Value {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    let at = |q: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    };
    serde_json::json!({"n": v.len(), "p50": at(0.5), "p99": at(0.99), "max": v.last()})
}

impl BackendSet {
    /// No backends: the run calls a running agent, which answers with its own. `fact` is
    /// what the manifest says about it.
    pub fn none(fact: serde_json::Value) -> BackendSet {
        BackendSet {
            stt: BTreeMap::new(),
            llm: BTreeMap::new(),
            tts: BTreeMap::new(),
            vad: BTreeMap::new(),
            system_prompt: String::new(),
            models: Models::locate(),
            loads: Vec::new(),
            fact,
            probes: Vec::new(),
            tools: None,
        }
    }

    /// The cloud backends (built now: they load nothing) and the facts about all of them.
    pub fn new(
        scenario: &Scenario,
        emulator: Option<&Emulator>,
        timeouts: Timeouts,
    ) -> anyhow::Result<BackendSet> {
        let b = &scenario.spec.backends;
        let emu = scenario.spec.emulator.clone().unwrap_or_default();
        let resolve = |url: &str, pick: fn(&Emulator) -> String| -> String {
            match (url, emulator) {
                (EMULATOR, Some(e)) => pick(e),
                _ => url.to_string(),
            }
        };
        let mut set = BackendSet {
            stt: BTreeMap::new(),
            llm: BTreeMap::new(),
            tts: BTreeMap::new(),
            vad: BTreeMap::new(),
            system_prompt: String::new(),
            models: Models::locate(),
            loads: Vec::new(),
            fact: serde_json::json!({ "emulated": scenario.uses_emulator() }),
            probes: Vec::new(),
            tools: None,
        };
        match &b.stt {
            SttBackend::Deepgram(stt) => {
                let key = key_for(&stt.base_url, &stt.api_key_env, &emu.stt.api_key)?;
                let mut stt = stt.clone();
                stt.base_url = resolve(&stt.base_url, Emulator::stt_url);
                set.fact["stt"] = serde_json::json!({"kind": "deepgram", "base_url": stt.base_url, "model": stt.model});
                set.stt.insert(
                    String::new(),
                    Arc::new(DeepgramStt::new(stt, key, timeouts)),
                );
            }
            #[cfg(feature = "local-stt")]
            SttBackend::Whisper(c) => {
                set.fact["stt"] = serde_json::json!({"kind": "whisper", "config": c});
            }
        }
        match &b.llm {
            LlmBackend::Openai(llm) => {
                let key = key_for(&llm.base_url, &llm.api_key_env, &emu.llm.api_key)?;
                let mut llm = llm.clone();
                llm.base_url = resolve(&llm.base_url, Emulator::llm_url);
                set.fact["llm"] = serde_json::json!({"kind": "openai", "base_url": llm.base_url, "model": llm.model});
                set.system_prompt = llm.system_prompt.clone();
                let client = OpenAiLlm::new(llm, key, timeouts)
                    .map_err(|e| anyhow::anyhow!("LLM backend: {e}"))?;
                set.llm.insert(String::new(), Arc::new(client));
            }
            #[cfg(feature = "local-llm")]
            LlmBackend::Llama(c) => {
                set.fact["llm"] = serde_json::json!({"kind": "llama", "config": c});
                set.system_prompt = c.system_prompt.clone().unwrap_or_else(|| {
                    "You are a helpful voice assistant. Answer in one or two short sentences."
                        .into()
                });
            }
        }
        match &b.tts {
            TtsBackend::Elevenlabs(tts) => {
                let key = key_for(&tts.base_url, &tts.api_key_env, &emu.tts.api_key)?;
                let mut tts = tts.clone();
                tts.base_url = resolve(&tts.base_url, Emulator::tts_url);
                set.fact["tts"] = serde_json::json!({"kind": "elevenlabs", "base_url": tts.base_url, "model": tts.model, "voice_id": tts.voice_id, "output_format": tts.output_format});
                let client = ElevenLabsTts::new(tts, key, timeouts)
                    .map_err(|e| anyhow::anyhow!("TTS backend: {e}"))?;
                set.tts.insert(String::new(), Arc::new(client));
            }
            TtsBackend::Cartesia(tts) => {
                let key = key_for(&tts.base_url, &tts.api_key_env, &emu.tts.api_key)?;
                let mut tts = tts.clone();
                tts.base_url = resolve(&tts.base_url, Emulator::tts_ws_url);
                set.fact["tts"] = serde_json::json!({"kind": "cartesia", "base_url": tts.base_url, "model_id": tts.model_id, "voice_id": tts.voice_id, "sample_rate": tts.sample_rate, "version": tts.version});
                let client = CartesiaTts::new(tts, key, timeouts)
                    .map_err(|e| anyhow::anyhow!("TTS backend: {e}"))?;
                set.tts.insert(String::new(), Arc::new(client));
            }
            #[cfg(feature = "local-tts")]
            TtsBackend::Piper(c) => {
                set.fact["tts"] = serde_json::json!({"kind": "piper", "config": c});
            }
        }
        set.fact["vad"] = serde_json::to_value(&b.vad)?;
        Ok(set)
    }

    /// Each local model's own costs so far: per stage and model, percentiles with their
    /// sample sizes, and the raw records (`local_stats.json` of a run).
    pub fn local_stats(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (stage, model, probe) in &self.probes {
            let entry = out
                .entry(stage.clone())
                .or_insert_with(|| serde_json::json!({}));
            entry[model.as_str()] = probe();
        }
        serde_json::Value::Object(out)
    }

    /// The backends of one profile, loading any local model it needs that is not loaded yet.
    pub fn for_profile(
        &mut self,
        scenario: &Scenario,
        profile: &Profile,
    ) -> anyhow::Result<Backends> {
        let b = &scenario.spec.backends;
        let vad = self.vad(&b.vad)?;
        let stt = self.stt_for(&b.stt, profile)?;
        let llm = self.llm_for(&b.llm, profile)?;
        let tts = self.tts_for(&b.tts, profile)?;
        Ok(Backends {
            stt,
            llm,
            tts,
            vad,
            system_prompt: self.system_prompt.clone(),
            tools: self.tools.clone(),
            // The cache is made by the runner (a Redis connection is async): `with_cache`.
            tool_cache: None,
            cache_namespace: String::new(),
        })
    }

    fn stt_for(
        &mut self,
        spec: &SttBackend,
        profile: &Profile,
    ) -> anyhow::Result<Arc<dyn SpeechToText>> {
        let _ = profile;
        match spec {
            SttBackend::Deepgram(_) => Ok(Arc::clone(&self.stt[""])),
            #[cfg(feature = "local-stt")]
            SttBackend::Whisper(c) => {
                use latlab_core::backends::local::whisper::{WhisperConfig, WhisperStt};
                let mut config: WhisperConfig = c.clone();
                let k = &profile.local;
                if let Some(m) = &k.stt_model {
                    config.model = serde_json::from_value(serde_json::json!(m)).map_err(|_| {
                        anyhow::anyhow!(
                            "profile {}: local.stt_model {m:?} is not a whisper model (tiny.en, base)",
                            profile.name
                        )
                    })?;
                }
                if let Some(t) = k.stt_threads {
                    config.threads = t;
                }
                if let Some(b) = k.beam_size {
                    config.beam_size = b;
                }
                let key = serde_json::to_string(&config)?;
                self.load_once(
                    |set| &mut set.stt,
                    "stt",
                    key,
                    |models| {
                        let stt = WhisperStt::load(config.clone(), models)?;
                        let handle = stt.clone();
                        let probe: Probe = Box::new(move || {
                            let stats = handle.inference_stats();
                            let audio: f64 = stats.iter().map(|s| s.audio_ms).sum();
                            let compute: f64 = stats.iter().map(|s| s.compute_ms).sum();
                            serde_json::json!({
                                "compute_ms": spread(stats.iter().map(|s| s.compute_ms).collect()),
                                "whisper_ms": spread(stats.iter().map(|s| s.whisper_ms).collect()),
                                "waited_ms": spread(stats.iter().map(|s| s.waited_ms).collect()),
                                "audio_ms": spread(stats.iter().map(|s| s.audio_ms).collect()),
                                "real_time_factor": (audio > 0.0).then(|| compute / audio),
                                "inferences": stats,
                            })
                        });
                        Ok(Local {
                            model: format!(
                                "whisper {} (beam {}, {} threads)",
                                config.model.as_str(),
                                config.beam_size,
                                config.threads
                            ),
                            device: stt.device(),
                            note: stt.placement_note().map(str::to_string),
                            probe: Some((
                                format!(
                                    "whisper {} beam {}",
                                    config.model.as_str(),
                                    config.beam_size
                                ),
                                probe,
                            )),
                            loaded: Arc::new(stt),
                        })
                    },
                )
            }
        }
    }

    fn llm_for(
        &mut self,
        spec: &LlmBackend,
        profile: &Profile,
    ) -> anyhow::Result<Arc<dyn LanguageModel>> {
        let _ = profile;
        match spec {
            LlmBackend::Openai(_) => Ok(Arc::clone(&self.llm[""])),
            #[cfg(feature = "local-llm")]
            LlmBackend::Llama(c) => {
                use latlab_core::backends::local::llama::LlamaLlm;
                let mut config = c.clone();
                if let Some(t) = profile.local.llm_threads {
                    config.threads = t;
                }
                let key = serde_json::to_string(&config)?;
                self.load_once(|set| &mut set.llm, "llm", key, |models| {
                    let llm = LlamaLlm::load(config.clone(), models)?;
                    let handle = llm.clone();
                    let probe: Probe = Box::new(move || {
                        let stats = handle.generation_stats();
                        serde_json::json!({
                            "prompt_eval_ms": spread(stats.iter().map(|s| s.prompt_eval_ms).collect()),
                            "slot_wait_ms": spread(stats.iter().map(|s| s.slot_wait_ms).collect()),
                            "tokens_per_s": spread(stats.iter().filter_map(|s| s.tokens_per_second()).collect()),
                            "generations": stats,
                        })
                    });
                    Ok(Local {
                        model: format!("llama.cpp {} ({} threads)", config.model, config.threads),
                        device: llm.device(),
                        note: llm.placement_note().map(str::to_string),
                        probe: Some((format!("llama.cpp {}", config.model), probe)),
                        loaded: Arc::new(llm),
                    })
                })
            }
        }
    }

    fn tts_for(
        &mut self,
        spec: &TtsBackend,
        profile: &Profile,
    ) -> anyhow::Result<Arc<dyn TextToSpeech>> {
        let _ = profile;
        match spec {
            TtsBackend::Elevenlabs(_) | TtsBackend::Cartesia(_) => Ok(Arc::clone(&self.tts[""])),
            #[cfg(feature = "local-tts")]
            TtsBackend::Piper(c) => {
                use latlab_core::backends::local::piper::PiperTts;
                let mut config = c.clone();
                if let Some(t) = profile.local.tts_threads {
                    config.threads = t;
                }
                let key = serde_json::to_string(&config)?;
                self.load_once(
                    |set| &mut set.tts,
                    "tts",
                    key,
                    |models| {
                        let tts = PiperTts::new(config.clone(), models)?;
                        Ok(Local {
                            model: format!("piper {} ({} threads)", config.voice, config.threads),
                            device: tts.placement().device,
                            note: tts.placement().note.clone(),
                            probe: None,
                            loaded: Arc::new(tts),
                        })
                    },
                )
            }
        }
    }

    fn vad(&mut self, spec: &VadBackend) -> anyhow::Result<Arc<dyn EndpointerFactory>> {
        match spec {
            VadBackend::Energy => {
                let vad = self
                    .vad
                    .entry(serde_json::to_string(spec)?)
                    .or_insert_with(|| Arc::new(EnergyVadFactory));
                Ok(Arc::clone(vad))
            }
            VadBackend::Silero { device } => self.silero(serde_json::to_string(spec)?, *device),
        }
    }

    #[cfg(feature = "local-vad")]
    fn silero(
        &mut self,
        key: String,
        device: Device,
    ) -> anyhow::Result<Arc<dyn EndpointerFactory>> {
        use latlab_core::backends::local::silero::SileroModel;
        self.load_once(
            |set| &mut set.vad,
            "vad",
            key,
            |models| {
                let model = SileroModel::load(models, device)?;
                let handle = model.clone();
                let probe: Probe = Box::new(move || {
                    let costs = handle.chunk_costs_ns();
                    serde_json::json!({
                        "chunk_us": spread(costs.iter().map(|&ns| ns as f64 / 1e3).collect()),
                    })
                });
                Ok(Local {
                    model: "silero-vad v6".into(),
                    device: model.placement().device,
                    note: model.placement().note.clone(),
                    probe: Some(("silero-vad v6".into(), probe)),
                    loaded: Arc::new(model),
                })
            },
        )
    }

    #[cfg(not(feature = "local-vad"))]
    fn silero(
        &mut self,
        _key: String,
        _device: Device,
    ) -> anyhow::Result<Arc<dyn EndpointerFactory>> {
        let _ = &self.models;
        bail!(not_built("silero", "local-vad"))
    }

    /// The one way a local model is loaded: once per distinct setting (`key`, its config
    /// as JSON), timed into [`ModelLoad`], its cost probe kept for `local_stats.json`, and
    /// cached in the stage's map (`cache`) so later profiles with the same setting share it.
    #[cfg(any(
        feature = "local-vad",
        feature = "local-stt",
        feature = "local-tts",
        feature = "local-llm"
    ))]
    fn load_once<T: ?Sized>(
        &mut self,
        cache: fn(&mut BackendSet) -> &mut BTreeMap<String, Arc<T>>,
        stage: &str,
        key: String,
        load: impl FnOnce(&Models) -> anyhow::Result<Local<T>>,
    ) -> anyhow::Result<Arc<T>> {
        if let Some(loaded) = cache(self).get(&key) {
            return Ok(Arc::clone(loaded));
        }
        let began = Instant::now();
        let local = load(&self.models)?;
        let load_ms = began.elapsed().as_secs_f64() * 1e3;
        self.loads.push(ModelLoad {
            stage: stage.into(),
            model: local.model,
            device: local.device,
            load_ms,
            note: local.note,
        });
        if let Some((name, probe)) = local.probe {
            self.probes.push((stage.into(), name, probe));
        }
        cache(self).insert(key, Arc::clone(&local.loaded));
        Ok(local.loaded)
    }
}

/// A local model just loaded, and what the manifest and `local_stats.json` say of it.
#[cfg(any(
    feature = "local-vad",
    feature = "local-stt",
    feature = "local-tts",
    feature = "local-llm"
))]
struct Local<T: ?Sized> {
    loaded: Arc<T>,
    /// The backend and model as [`ModelLoad::model`] names them.
    model: String,
    device: Device,
    note: Option<String>,
    /// Its own cost records, by the name they are filed under.
    probe: Option<(String, Probe)>,
}

/// The lock-file names of the local STT, LLM and TTS models a scenario loads (its backends
/// as set, and every model size its profiles ask for).
pub fn local_models(scenario: &Scenario) -> Vec<String> {
    let b = &scenario.spec.backends;
    #[allow(unused_mut)] // nothing to add in a build without local backends
    let mut names = Vec::new();
    #[cfg(feature = "local-stt")]
    if let SttBackend::Whisper(c) = &b.stt {
        use latlab_core::backends::local::whisper::WhisperModel;
        let mut sizes = vec![c.model];
        for p in &scenario.profiles {
            if let Some(m) = &p.local.stt_model
                && let Ok(m) = serde_json::from_value::<WhisperModel>(serde_json::json!(m))
            {
                sizes.push(m);
            }
        }
        for m in sizes {
            names.push(m.lock_name().to_string());
        }
    }
    #[cfg(feature = "local-llm")]
    if let LlmBackend::Llama(c) = &b.llm {
        names.push(c.model.clone());
    }
    #[cfg(feature = "local-tts")]
    if let TtsBackend::Piper(c) = &b.tts {
        names.push("onnxruntime".into());
        if let Some(m) = latlab_core::backends::local::piper::voice_model(&c.voice) {
            names.push(m.into());
        }
    }
    let _ = b;
    if let Some(v) = &scenario.spec.video {
        names.extend(v.local_models(&scenario.profiles));
        names.dedup();
    }
    names
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

/// Runs `turns` warm-up turns through `backends` outside the run's clock: the first turns of
/// the dataset's first call, each stage driven directly (audio sent unpaced). Nothing of it
/// is recorded as a turn; models that compile kernels or fill caches on first use do it here.
pub async fn warm_up(
    backends: &Backends,
    profile: &Profile,
    call: &latlab_core::dataset::Call,
    samples: &[i16],
    turns: usize,
) -> Vec<WarmUp> {
    use latlab_core::stage::{CallInfo, ChatMessage, LlmRequest, SttEvent, SttOptions, TtsRequest};
    let mut done = Vec::new();
    for (i, turn) in call.turns.iter().take(turns).enumerate() {
        let mut w = WarmUp {
            profile: profile.name.clone(),
            ..WarmUp::default()
        };
        let rate = u64::from(call.sample_rate);
        let at = |ms: u64| ((ms * rate / 1000) as usize).min(samples.len());
        let audio = &samples[at(turn.start_ms.saturating_sub(300))..at(turn.end_ms + 300)];
        let info = CallInfo {
            call_id: call.id.clone(),
            sample_rate: call.sample_rate,
            session: format!("{}#warmup{i}", call.id),
        };
        let options = SttOptions {
            interim_results: false,
            endpointing_ms: None,
            utterance_end_ms: None,
        };
        let began = Instant::now();
        let stt = async {
            let (mut tx, mut rx) = backends.stt.open(&info, &options).await?;
            for frame in audio.chunks(320) {
                tx.send_audio(frame).await?;
            }
            tx.finalize().await?;
            while let Some(event) = rx.next_event().await {
                if let SttEvent::Transcript { is_final: true, .. } = event? {
                    break;
                }
            }
            let _ = tx.close().await;
            Ok::<_, latlab_core::timing::StageError>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(60), stt).await {
            Ok(Ok(())) => w.stt_ms = Some(began.elapsed().as_secs_f64() * 1e3),
            Ok(Err(e)) => w.error = Some(format!("stt: {e}")),
            Err(_) => w.error = Some("stt: no final transcript within 60 s".into()),
        }
        let began = Instant::now();
        let request = LlmRequest {
            messages: vec![
                ChatMessage {
                    role: "system".into(),
                    content: backends.system_prompt.clone(),
                },
                ChatMessage {
                    role: "user".into(),
                    content: turn.text.clone(),
                },
            ],
            stream: true,
            reuse_connection: true,
            session: info.session.clone(),
            tools: None,
            tool_exchange: None,
        };
        let llm = async {
            let mut stream = backends.llm.start(&request).await?;
            while let Some(token) = stream.next_token().await {
                token?;
            }
            Ok::<_, latlab_core::timing::StageError>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(60), llm).await {
            Ok(Ok(())) => w.llm_ms = Some(began.elapsed().as_secs_f64() * 1e3),
            Ok(Err(e)) => w.error = w.error.or(Some(format!("llm: {e}"))),
            Err(_) => w.error = w.error.or(Some("llm: no reply within 60 s".into())),
        }
        let began = Instant::now();
        let request = TtsRequest {
            text: turn
                .reply
                .clone()
                .unwrap_or_else(|| "Sure, I can help with that.".into()),
            streaming: true,
            reuse_connection: true,
            session: info.session.clone(),
        };
        let tts = async {
            let mut stream = backends.tts.start(&request).await?;
            while let Some(chunk) = stream.next_chunk().await {
                chunk?;
            }
            Ok::<_, latlab_core::timing::StageError>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(60), tts).await {
            Ok(Ok(())) => w.tts_ms = Some(began.elapsed().as_secs_f64() * 1e3),
            Ok(Err(e)) => w.error = w.error.or(Some(format!("tts: {e}"))),
            Err(_) => w.error = w.error.or(Some("tts: no audio within 60 s".into())),
        }
        done.push(w);
    }
    done
}
