//! A GGUF chat model in-process through llama.cpp (the `llama-cpp-2` crate), behind the same
//! [`LanguageModel`] trait as the cloud backends, so a local reply is timed exactly like a
//! streamed cloud one.
//!
//! The model is loaded once (after its SHA-256 is checked against `models/lock.toml`) and
//! shared by every call. It has `max_parallel` generation slots, each a thread owning one
//! llama.cpp context for the model's lifetime (its KV cache cleared before each generation).
//! A request waits for a free slot inside [`LanguageModel::start`] — so the wait is part of
//! the measured latency — and its conversation goes through the model's chat template; the
//! slot then decodes the prompt and samples tokens one by one until end-of-generation or
//! `max_tokens`, each token's text sent to the [`TokenStream`] the moment it is sampled.
//! Dropping the stream stops the generation and frees the slot.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{Device, ModelError, Models, default_threads};
use crate::stage::{ChatMessage, LanguageModel, LlmRequest, TokenStream};
use crate::timing::{ErrorKind, StageError};

/// The file each known model name loads, inside the models folder.
const KNOWN_MODELS: &[(&str, &str)] = &[("gemma-3-270m", "gemma/gemma-3-270m-q4_k_m.gguf")];

/// Scenario settings of the llama.cpp backend (`[backends.llm] kind = "llama"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaConfig {
    /// The model's name in `models/lock.toml` (its GGUF file is looked up from the name).
    #[serde(default = "default_model")]
    pub model: String,
    /// CPU threads for prompt processing and generation, per slot (0: the default, all cores
    /// but one).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Context length in tokens (llama.cpp's `n_ctx`; prompt and reply must fit in it).
    #[serde(default = "default_context")]
    pub context: u32,
    /// Upper bound on the reply's tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature; 0 samples greedily (deterministic).
    #[serde(default)]
    pub temperature: f32,
    /// Seed of the sampler when `temperature` > 0.
    #[serde(default = "default_seed")]
    pub seed: u32,
    /// Where the model runs: `cuda` offloads every layer when latlab is built with the
    /// `cuda-llm` feature and a GPU is there, else it runs on the CPU with a note.
    #[serde(default)]
    pub device: Device,
    /// Generations running at once across all calls (0 is taken as 1); a request beyond it
    /// waits for a slot, and that wait counts in its latency.
    #[serde(default = "default_max_parallel")]
    pub max_parallel: usize,
    /// A system prompt put in front of conversations that do not start with one.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// The chat template: a llama.cpp built-in name (`gemma`, `chatml`, `llama3`, `phi3`, …).
    /// Default: the GGUF's own, else llama.cpp's built-in one for the model's architecture.
    #[serde(default)]
    pub chat_template: Option<String>,
}

fn default_model() -> String {
    "gemma-3-270m".into()
}
fn default_context() -> u32 {
    2048
}
fn default_max_tokens() -> u32 {
    150
}
fn default_seed() -> u32 {
    1
}
fn default_max_parallel() -> usize {
    1
}

impl Default for LlamaConfig {
    fn default() -> LlamaConfig {
        LlamaConfig {
            model: default_model(),
            threads: default_threads(),
            context: default_context(),
            max_tokens: default_max_tokens(),
            temperature: 0.0,
            seed: default_seed(),
            device: Device::Cpu,
            max_parallel: default_max_parallel(),
            system_prompt: None,
            chat_template: None,
        }
    }
}

impl LlamaConfig {
    /// The GGUF file (relative to the models folder) that `model` names.
    pub fn model_file(&self) -> Result<&'static str, ModelError> {
        KNOWN_MODELS
            .iter()
            .find(|(name, _)| *name == self.model)
            .map(|(_, file)| *file)
            .ok_or_else(|| {
                ModelError::Lock(format!(
                    "the llama backend knows no model `{}` (known: {})",
                    self.model,
                    KNOWN_MODELS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context filled up.
    ContextFull,
    /// The token stream was dropped before the reply was complete.
    Cancelled,
    /// llama.cpp failed (the stream got the error).
    Error,
}

/// What one generation cost, as measured on its worker thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    /// The request's session (`<call>#<iteration>`).
    pub session: String,
    /// Time waiting for a generation slot (`max_parallel`), ms.
    pub slot_wait_ms: f64,
    /// Clearing the slot's context (KV cache) for this generation, ms.
    pub reset_ms: f64,
    /// Tokens of the templated prompt.
    pub prompt_tokens: usize,
    /// Decoding the prompt (up to the first token's logits), ms.
    pub prompt_eval_ms: f64,
    /// Tokens generated (the end-of-generation token not counted).
    pub generated_tokens: usize,
    /// From the end of prompt evaluation to the last token sampled, ms.
    pub generation_ms: f64,
    /// Why it stopped.
    pub stop: StopReason,
}

impl GenerationStats {
    /// The steady decode rate, tokens per second: the first token comes with the prompt's
    /// evaluation, each later one costs a decode, so (generated − 1) / `generation_ms`.
    /// `None` with fewer than two tokens.
    pub fn tokens_per_second(&self) -> Option<f64> {
        (self.generated_tokens >= 2 && self.generation_ms > 0.0)
            .then(|| (self.generated_tokens - 1) as f64 / (self.generation_ms / 1000.0))
    }
}

/// The process's llama.cpp backend: it can be initialised only once.
static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// llama.cpp mutates the model while creating a context, so contexts are created one at a time.
static CONTEXT_LOCK: Mutex<()> = Mutex::new(());

fn backend() -> Result<&'static LlamaBackend, String> {
    BACKEND
        .get_or_init(|| {
            // Route llama.cpp's and ggml's logging to `tracing` (silent unless a subscriber
            // is installed), instead of several hundred lines on stderr per model load.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| format!("initialising llama.cpp: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

struct Shared {
    model: LlamaModel,
    template: LlamaChatTemplate,
    template_name: String,
    /// Text of the BOS token, to avoid adding a second one when the template writes it.
    bos_text: Option<String>,
}

/// A GGUF chat model through llama.cpp.
#[derive(Clone)]
pub struct LlamaLlm {
    config: LlamaConfig,
    path: PathBuf,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    device: Device,
    note: Option<String>,
    stats: Arc<Mutex<Vec<GenerationStats>>>,
}

impl std::fmt::Debug for LlamaLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaLlm")
            .field("config", &self.config)
            .field("path", &self.path)
            .field("device", &self.device)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

impl LlamaLlm {
    /// Checks the model's GGUF file against its pin, loads it (once; clones share it) and
    /// starts its `max_parallel` generation slots, each with its context created and warmed
    /// up, so the first request pays no more than later ones.
    pub fn load(config: LlamaConfig, models: &Models) -> Result<LlamaLlm, ModelError> {
        let file = config.model_file()?;
        let path = models.verified(&config.model, file)?;
        let fail = |message: String| ModelError::Load {
            path: path.clone(),
            message,
        };
        let backend = backend().map_err(fail)?;

        let (device, note) = placement(backend, config.device);
        let params = match device {
            Device::Cuda => LlamaModelParams::default().with_n_gpu_layers(u32::MAX),
            Device::Cpu => LlamaModelParams::default().with_n_gpu_layers(0),
        };
        let model = LlamaModel::load_from_file(backend, &path, &params)
            .map_err(|e| fail(format!("llama.cpp could not load the model: {e}")))?;
        let (template, template_name) =
            chat_template(&model, config.chat_template.as_deref()).map_err(fail)?;
        let bos_text = {
            let vocab = model.vocab();
            vocab
                .text(vocab.bos())
                .and_then(|t| t.to_str().ok())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        let shared = Arc::new(Shared {
            model,
            template,
            template_name,
            bos_text,
        });
        let stats = Arc::new(Mutex::new(Vec::new()));
        let slots = config.max_parallel.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for slot in 0..slots {
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
            let worker = Worker {
                shared: Arc::clone(&shared),
                config: config.clone(),
                device,
                queue: Arc::clone(&queue),
                stats: Arc::clone(&stats),
            };
            std::thread::Builder::new()
                .name(format!("llama-slot-{slot}"))
                .spawn(move || worker.run(&ready_tx))
                .map_err(|e| fail(format!("starting a generation thread: {e}")))?;
            ready_rx
                .recv()
                .unwrap_or_else(|_| Err("the generation thread died while starting".into()))
                .map_err(fail)?;
        }
        Ok(LlamaLlm {
            slots: Arc::new(Semaphore::new(slots)),
            jobs,
            config,
            path,
            shared,
            device,
            note,
            stats,
        })
    }

    /// The settings it was loaded with.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The GGUF file it runs.
    pub fn model_path(&self) -> &std::path::Path {
        &self.path
    }

    /// Where it runs.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Why it does not run where the scenario asked, when it doesn't.
    pub fn placement_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Which chat template builds the prompts: the scenario's, the GGUF's own, or llama.cpp's
    /// built-in one for the architecture when the file has none.
    pub fn chat_template(&self) -> &str {
        &self.shared.template_name
    }

    /// The configured system prompt, if any.
    pub fn system_prompt(&self) -> Option<&str> {
        self.config.system_prompt.as_deref()
    }

    /// Every generation so far (finished, cancelled or failed), in the order they ended.
    pub fn generation_stats(&self) -> Vec<GenerationStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The prompt for `messages`: the conversation through the model's chat template, ending
    /// with the opening of the assistant's turn.
    pub fn prompt(&self, messages: &[ChatMessage]) -> Result<String, StageError> {
        let mut messages: Vec<ChatMessage> = messages
            .iter()
            .filter(|m| !(m.role == "system" && m.content.trim().is_empty()))
            .cloned()
            .collect();
        if let Some(system) = self.config.system_prompt.as_deref()
            && !system.trim().is_empty()
            && !messages.iter().any(|m| m.role == "system")
        {
            messages.insert(
                0,
                ChatMessage {
                    role: "system".into(),
                    content: system.to_string(),
                },
            );
        }
        if messages.is_empty() {
            return Err(inference("the request has no messages"));
        }
        match self.apply_template(&messages) {
            Ok(prompt) => Ok(prompt),
            // Templates without a system role (Gemma's) refuse it: fold it into the first
            // user turn, as the model was tuned to see it.
            Err(_) if messages.iter().any(|m| m.role == "system") => {
                self.apply_template(&fold_system(&messages))
            }
            Err(e) => Err(e),
        }
    }

    fn apply_template(&self, messages: &[ChatMessage]) -> Result<String, StageError> {
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| inference(format!("message not usable by llama.cpp: {e}")))?;
        self.shared
            .model
            .apply_chat_template(&self.shared.template, &chat, true)
            .map_err(|e| inference(format!("applying the chat template: {e}")))
    }
}

/// The template prompts are built with, and how to name it: the scenario's, else the GGUF's
/// own, else llama.cpp's built-in one for the architecture — the first that llama.cpp can
/// apply to a one-message conversation.
fn chat_template(
    model: &LlamaModel,
    asked: Option<&str>,
) -> Result<(LlamaChatTemplate, String), String> {
    let applies = |t: &LlamaChatTemplate| {
        LlamaChatMessage::new("user".into(), "hi".into())
            .is_ok_and(|m| model.apply_chat_template(t, &[m], true).is_ok())
    };
    let named = |name: &str| LlamaChatTemplate::new(name).map_err(|e| e.to_string());
    if let Some(name) = asked {
        let t = named(name)?;
        return if applies(&t) {
            Ok((t, format!("`{name}` (from the scenario)")))
        } else {
            Err(format!(
                "llama.cpp does not know the chat template `{name}`"
            ))
        };
    }
    if let Ok(t) = model.chat_template(None)
        && applies(&t)
    {
        return Ok((t, "the GGUF's own".into()));
    }
    // The Gemma 3 270M file carries no template.
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    let name = builtin_template(&arch);
    Ok((named(name)?, format!("llama.cpp's built-in `{name}`")))
}

/// llama.cpp's built-in template for a GGUF architecture whose file carries no template.
fn builtin_template(arch: &str) -> &'static str {
    if arch.starts_with("gemma") {
        "gemma"
    } else if arch.starts_with("phi3") {
        "phi3"
    } else {
        "chatml"
    }
}

/// Folds the system messages into the first user turn (or makes them one).
fn fold_system(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == "system")
        .map(|m| m.content.trim())
        .collect();
    let system = system.join("\n\n");
    let mut out: Vec<ChatMessage> = messages
        .iter()
        .filter(|m| m.role != "system")
        .cloned()
        .collect();
    match out.iter_mut().find(|m| m.role == "user") {
        Some(first) => first.content = format!("{system}\n\n{}", first.content),
        None => out.insert(
            0,
            ChatMessage {
                role: "user".into(),
                content: system,
            },
        ),
    }
    out
}

fn inference(message: impl Into<String>) -> StageError {
    StageError::new(ErrorKind::Inference, message)
}

#[cfg(feature = "cuda-llm")]
fn placement(backend: &LlamaBackend, asked: Device) -> (Device, Option<String>) {
    match asked {
        Device::Cpu => (Device::Cpu, None),
        Device::Cuda if backend.supports_gpu_offload() => (Device::Cuda, None),
        Device::Cuda => (
            Device::Cpu,
            Some("device = \"cuda\" but llama.cpp found no usable GPU; running on the CPU".into()),
        ),
    }
}

#[cfg(not(feature = "cuda-llm"))]
fn placement(_backend: &LlamaBackend, asked: Device) -> (Device, Option<String>) {
    match asked {
        Device::Cpu => (Device::Cpu, None),
        Device::Cuda => (
            Device::Cpu,
            Some(
                "device = \"cuda\" but latlab was built without the `cuda-llm` feature; running on the CPU"
                    .into(),
            ),
        ),
    }
}

/// What the worker thread sends to the stream.
enum Msg {
    Piece(String),
    Done(u64),
    Failed(StageError),
}

#[async_trait]
impl LanguageModel for LlamaLlm {
    fn name(&self) -> &str {
        "llama"
    }

    async fn start(&self, request: &LlmRequest) -> Result<Box<dyn TokenStream>, StageError> {
        let prompt = self.prompt(&request.messages)?;
        let waited = Instant::now();
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| StageError::new(ErrorKind::Cancelled, "the LLM was shut down"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let job = Job {
            prompt,
            session: request.session.clone(),
            slot_wait_ms: ms(waited),
            tx,
            slot,
        };
        self.jobs
            .send(job)
            .map_err(|_| inference("the llama.cpp generation threads are gone"))?;
        Ok(Box::new(LlamaTokens {
            rx,
            usage: None,
            done: false,
        }))
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// One generation, handed to a slot's thread with the slot's permit.
struct Job {
    prompt: String,
    session: String,
    slot_wait_ms: f64,
    tx: mpsc::UnboundedSender<Msg>,
    slot: OwnedSemaphorePermit,
}

/// A generation slot: a thread that owns one llama.cpp context for as long as the model is
/// loaded (creating a context costs tens of ms, which a server would not pay per request),
/// and clears its KV cache before each generation.
struct Worker {
    shared: Arc<Shared>,
    config: LlamaConfig,
    device: Device,
    queue: Arc<Mutex<std::sync::mpsc::Receiver<Job>>>,
    stats: Arc<Mutex<Vec<GenerationStats>>>,
}

impl Worker {
    fn run(self, ready: &std::sync::mpsc::SyncSender<Result<(), String>>) {
        let mut ctx = match self.context().and_then(|mut ctx| {
            self.warm_up(&mut ctx)?;
            Ok(ctx)
        }) {
            Ok(ctx) => {
                let _ = ready.send(Ok(()));
                ctx
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        loop {
            // Every `LlamaLlm` clone gone: the model is dropped with the last slot thread.
            let next = self.queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(job) = next else { return };
            let mut stats = GenerationStats {
                session: job.session.clone(),
                slot_wait_ms: job.slot_wait_ms,
                reset_ms: 0.0,
                prompt_tokens: 0,
                prompt_eval_ms: 0.0,
                generated_tokens: 0,
                generation_ms: 0.0,
                stop: StopReason::Error,
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.generate(&mut ctx, &job, &mut stats)
            }))
            .unwrap_or_else(|_| Err(inference("the llama.cpp generation panicked")));
            let last = match outcome {
                Ok(StopReason::Cancelled) => {
                    stats.stop = StopReason::Cancelled;
                    None
                }
                Ok(stop) => {
                    stats.stop = stop;
                    Some(Msg::Done(stats.generated_tokens as u64))
                }
                Err(e) => {
                    stats.stop = StopReason::Error;
                    Some(Msg::Failed(e))
                }
            };
            // Recorded before the stream hears the end, so a finished stream's stats are there.
            self.stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(stats);
            let Job { tx, slot, .. } = job;
            // The slot is free before the stream hears the end.
            drop(slot);
            if let Some(last) = last {
                let _ = tx.send(last);
            }
        }
    }

    fn context(&self) -> Result<LlamaContext<'_>, String> {
        let backend = backend()?;
        let threads = i32::try_from(match self.config.threads {
            0 => default_threads(),
            n => n,
        })
        .unwrap_or(i32::MAX);
        let mut params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.config.context))
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        if self.device == Device::Cpu {
            // Keep a CUDA build's CPU placement on the CPU.
            params = params.with_offload_kqv(false).with_op_offload(false);
        }
        // llama.cpp mutates the model while creating a context: one at a time.
        let _guard = CONTEXT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        self.shared
            .model
            .new_context(backend, params)
            .map_err(|e| format!("creating a llama.cpp context: {e}"))
    }

    /// One token through the whole model, so the first request does not pay for faulting the
    /// weights in and allocating the compute buffers (llama-server warms up the same way).
    fn warm_up(&self, ctx: &mut LlamaContext<'_>) -> Result<(), String> {
        let vocab = self.shared.model.vocab();
        let mut batch = LlamaBatch::new(1, 1);
        batch
            .add(vocab.bos(), 0, &[0], true)
            .map_err(|e| e.to_string())?;
        ctx.decode(&mut batch)
            .map_err(|e| format!("warming up the model: {e}"))?;
        ctx.clear_kv_cache();
        Ok(())
    }

    fn generate(
        &self,
        ctx: &mut LlamaContext<'_>,
        job: &Job,
        stats: &mut GenerationStats,
    ) -> Result<StopReason, StageError> {
        let tx = &job.tx;
        let vocab = self.shared.model.vocab();

        let started = Instant::now();
        // Forget every cached position (as llama-server does between requests); wipe the
        // buffers only if the memory cannot drop them that way.
        if !ctx.clear_kv_cache_seq(None, None, None).unwrap_or(false) {
            ctx.clear_kv_cache();
        }
        stats.reset_ms = ms(started);

        let add_bos = !self
            .shared
            .bos_text
            .as_deref()
            .is_some_and(|bos| job.prompt.starts_with(bos));
        let tokens = vocab.tokenize(job.prompt.as_bytes(), add_bos, true);
        stats.prompt_tokens = tokens.len();
        if tokens.is_empty() {
            return Err(inference("the prompt has no tokens"));
        }
        let n_ctx = ctx.n_ctx() as usize;
        if tokens.len() >= n_ctx {
            return Err(inference(format!(
                "the prompt has {} tokens, more than the context of {n_ctx} holds",
                tokens.len()
            )));
        }

        // The prompt, in batches of at most n_batch tokens; logits only for its last token.
        let started = Instant::now();
        let n_batch = (ctx.n_batch() as usize).max(1);
        let mut batch = LlamaBatch::new(n_batch, 1);
        let last = tokens.len() - 1;
        for (chunk_index, chunk) in tokens.chunks(n_batch).enumerate() {
            batch.clear();
            for (i, token) in chunk.iter().enumerate() {
                let pos = chunk_index * n_batch + i;
                batch
                    .add(*token, pos as i32, &[0], pos == last)
                    .map_err(|e| inference(format!("building the prompt batch: {e}")))?;
            }
            if tx.is_closed() {
                return Ok(StopReason::Cancelled);
            }
            ctx.decode(&mut batch)
                .map_err(|e| inference(format!("decoding the prompt: {e}")))?;
        }
        stats.prompt_eval_ms = ms(started);

        let mut sampler = if self.config.temperature > 0.0 {
            LlamaSampler::chain_simple([
                LlamaSampler::temp(self.config.temperature),
                LlamaSampler::dist(self.config.seed),
            ])
        } else {
            LlamaSampler::greedy()
        };

        let started = Instant::now();
        let mut text = Utf8Pieces::default();
        let mut pos = tokens.len();
        let mut logits_at = batch.n_tokens() - 1;
        let max_tokens = self.config.max_tokens as usize;
        let stop = loop {
            if stats.generated_tokens >= max_tokens {
                break StopReason::MaxTokens;
            }
            if tx.is_closed() {
                return Ok(StopReason::Cancelled);
            }
            let token: LlamaToken = sampler.sample(ctx, logits_at);
            if vocab.is_eog(token) {
                break StopReason::EndOfGeneration;
            }
            stats.generated_tokens += 1;
            stats.generation_ms = ms(started);
            let piece = text.push(&vocab.token_to_piece(token, false, None));
            if !piece.is_empty() && tx.send(Msg::Piece(piece)).is_err() {
                return Ok(StopReason::Cancelled);
            }
            if stats.generated_tokens >= max_tokens {
                break StopReason::MaxTokens;
            }
            if pos >= n_ctx {
                break StopReason::ContextFull;
            }
            batch.clear();
            batch
                .add(token, pos as i32, &[0], true)
                .map_err(|e| inference(format!("building the token batch: {e}")))?;
            ctx.decode(&mut batch)
                .map_err(|e| inference(format!("decoding token {pos}: {e}")))?;
            pos += 1;
            logits_at = 0;
        };
        let rest = text.finish();
        if !rest.is_empty() && tx.send(Msg::Piece(rest)).is_err() {
            return Ok(StopReason::Cancelled);
        }
        Ok(stop)
    }
}

/// Turns token pieces (bytes) into text: a character split across tokens is held back until
/// its last byte arrives; bytes that can never be UTF-8 become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    /// Adds a token's bytes; returns the text that is complete so far.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix is valid UTF-8 by the error's own account.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

struct LlamaTokens {
    rx: mpsc::UnboundedReceiver<Msg>,
    usage: Option<u64>,
    done: bool,
}

#[async_trait]
impl TokenStream for LlamaTokens {
    async fn next_token(&mut self) -> Option<Result<String, StageError>> {
        if self.done {
            return None;
        }
        match self.rx.recv().await {
            Some(Msg::Piece(piece)) => Some(Ok(piece)),
            Some(Msg::Done(generated)) => {
                self.usage = Some(generated);
                self.done = true;
                None
            }
            Some(Msg::Failed(e)) => {
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                Some(Err(inference(
                    "the llama.cpp generation thread ended before the reply was complete",
                )))
            }
        }
    }

    fn usage_tokens(&self) -> Option<u64> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_tokens_is_held_back() {
        let mut t = Utf8Pieces::default();
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(t.push(b"a"), "a");
        assert_eq!(t.push(&euro[..1]), "");
        assert_eq!(t.push(&euro[1..2]), "");
        let mut last = euro[2..].to_vec();
        last.extend_from_slice(" b".as_bytes());
        assert_eq!(t.push(&last), "€ b");
        // A byte that can never start a character is replaced, the rest goes on.
        assert_eq!(t.push(&[b'x', 0xff, b'y']), "x\u{fffd}y");
        // An unfinished character at the end is flushed as U+FFFD.
        assert_eq!(t.push(&"😀".as_bytes()[..2]), "");
        assert_eq!(t.finish(), "\u{fffd}");
        assert_eq!(t.finish(), "");
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: LlamaConfig = toml::from_str("").unwrap();
        assert_eq!(c, LlamaConfig::default());
        assert_eq!(c.model, "gemma-3-270m");
        assert_eq!(
            (c.context, c.max_tokens, c.seed, c.max_parallel),
            (2048, 150, 1, 1)
        );
        assert_eq!(c.temperature, 0.0);
        assert_eq!(c.model_file().unwrap(), "gemma/gemma-3-270m-q4_k_m.gguf");
        let c: LlamaConfig =
            toml::from_str("device = \"cuda\"\nthreads = 2\nsystem_prompt = \"be brief\"").unwrap();
        assert_eq!(c.device, Device::Cuda);
        assert_eq!(c.threads, 2);
        assert_eq!(c.system_prompt.as_deref(), Some("be brief"));
        assert!(toml::from_str::<LlamaConfig>("n_ctx = 4").is_err());
        let unknown = LlamaConfig {
            model: "nope".into(),
            ..LlamaConfig::default()
        };
        assert!(matches!(unknown.model_file(), Err(ModelError::Lock(_))));
    }

    #[test]
    fn system_messages_fold_into_the_first_user_turn() {
        let m = |role: &str, content: &str| ChatMessage {
            role: role.into(),
            content: content.into(),
        };
        let folded = fold_system(&[m("system", "be brief"), m("user", "hi")]);
        assert_eq!(folded, vec![m("user", "be brief\n\nhi")]);
        let folded = fold_system(&[m("system", "be brief")]);
        assert_eq!(folded, vec![m("user", "be brief")]);
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lock.toml"),
            "[[model]]\nname = \"gemma-3-270m\"\nfiles = { \"gemma/gemma-3-270m-q4_k_m.gguf\" = \"PENDING\" }\n",
        )
        .unwrap();
        let err = LlamaLlm::load(LlamaConfig::default(), &Models::at(dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ModelError::Missing { .. }), "{text}");
        assert!(
            text.contains("gemma/gemma-3-270m-q4_k_m.gguf")
                && text.contains("fetch.py gemma-3-270m"),
            "{text}"
        );
    }

    /// The real model (2 threads, replies of at most `max_tokens`); `None` (after saying so) when it is not
    /// fetched, unless `LATLAB_REQUIRE_MODELS=1`.
    fn real_llm(max_tokens: u32) -> Option<LlamaLlm> {
        let models = Models::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"));
        let config = LlamaConfig {
            threads: 2,
            max_tokens,
            ..LlamaConfig::default()
        };
        match LlamaLlm::load(config, &models) {
            Ok(llm) => Some(llm),
            Err(ModelError::Missing { .. })
                if std::env::var("LATLAB_REQUIRE_MODELS").as_deref() != Ok("1") =>
            {
                eprintln!(
                    "skipping: gemma-3-270m is not fetched (python3 models/fetch.py gemma-3-270m)"
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn request(session: &str, text: &str) -> LlmRequest {
        LlmRequest {
            messages: vec![
                ChatMessage {
                    role: "system".into(),
                    content: "You are a friendly voice assistant. Answer in one short sentence."
                        .into(),
                },
                ChatMessage {
                    role: "user".into(),
                    content: text.into(),
                },
            ],
            stream: true,
            reuse_connection: true,
            session: session.into(),
            tools: None,
            tool_exchange: None,
        }
    }

    async fn reply(llm: &LlamaLlm, session: &str, text: &str) -> (Vec<String>, Option<u64>) {
        let asked = Instant::now();
        let mut stream = llm.start(&request(session, text)).await.unwrap();
        let mut pieces = Vec::new();
        while let Some(piece) = stream.next_token().await {
            if pieces.is_empty() {
                eprintln!("{session}: first token {:.1} ms after start()", ms(asked));
            }
            pieces.push(piece.unwrap());
        }
        (pieces, stream.usage_tokens())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_real_model_streams_and_greedy_is_deterministic() {
        let Some(llm) = real_llm(24) else { return };
        assert_eq!(llm.placement_note(), None);
        let prompt = llm
            .prompt(&request("p", "What is the capital of France?").messages)
            .unwrap();
        // Gemma: no system role; llama.cpp's template folds it into the first user turn.
        assert!(
            llm.chat_template().contains("gemma"),
            "{}",
            llm.chat_template()
        );
        assert!(
            prompt.starts_with("<start_of_turn>user\nYou are a friendly voice assistant.")
                && prompt.contains("What is the capital of France?<end_of_turn>")
                && prompt.ends_with("<start_of_turn>model\n"),
            "{prompt}"
        );

        let (first, usage) = reply(&llm, "det#1", "What is the capital of France?").await;
        assert!(!first.is_empty(), "no tokens");
        let usage = usage.expect("usage once done");
        assert!((1..=24).contains(&usage), "{usage}");
        let (second, _) = reply(&llm, "det#2", "What is the capital of France?").await;
        assert_eq!(first.concat(), second.concat());
        let text = first.concat();
        assert!(
            !text.contains("<start_of_turn>") && !text.contains("<end_of_turn>"),
            "{text}"
        );

        let stats = llm.generation_stats();
        let mine: Vec<_> = stats
            .iter()
            .filter(|s| s.session.starts_with("det#"))
            .collect();
        assert_eq!(mine.len(), 2);
        for s in &mine {
            assert!(s.prompt_tokens > 5, "{s:?}");
            assert_eq!(s.generated_tokens as u64, usage, "{s:?}");
            assert!(matches!(
                s.stop,
                StopReason::EndOfGeneration | StopReason::MaxTokens
            ));
            eprintln!(
                "{}: reset {:.1} ms, prompt {} tokens in {:.1} ms, {} tokens in {:.1} ms ({:.1} tokens/s); reply {:?}",
                s.session,
                s.reset_ms,
                s.prompt_tokens,
                s.prompt_eval_ms,
                s.generated_tokens,
                s.generation_ms,
                s.tokens_per_second().unwrap_or(0.0),
                first.concat()
            );
        }
    }

    #[test]
    fn a_template_override_is_used_and_an_unknown_one_refused() {
        let models = Models::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"));
        let Some(_) = real_llm(1) else { return };
        let config = |name: &str| LlamaConfig {
            chat_template: Some(name.into()),
            ..LlamaConfig::default()
        };
        let llm = LlamaLlm::load(config("chatml"), &models).unwrap();
        let prompt = llm.prompt(&request("t", "Hello there.").messages).unwrap();
        assert!(
            prompt.contains("<|im_start|>user\nHello there.<|im_end|>"),
            "{prompt}"
        );
        let err = LlamaLlm::load(config("no-such-template"), &models).unwrap_err();
        assert!(err.to_string().contains("no-such-template"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_stream_cancels_and_frees_the_slot() {
        let Some(llm) = real_llm(200) else { return };
        let mut stream = llm
            .start(&request("cancel#1", "Tell me a long story about a dragon."))
            .await
            .unwrap();
        let first = stream.next_token().await.expect("a token").unwrap();
        assert!(!first.is_empty());
        drop(stream);
        // With one slot, the next request only starts once the cancelled one let go of it.
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            reply(&llm, "cancel#2", "Say hello."),
        )
        .await
        .expect("the slot was not freed");
        assert!(!next.0.is_empty());
        let stats = llm.generation_stats();
        let cancelled = stats.iter().find(|s| s.session == "cancel#1").unwrap();
        assert_eq!(cancelled.stop, StopReason::Cancelled, "{cancelled:?}");
    }
}
