//! Whisper speech-to-text in-process, through whisper.cpp (whisper-rs), behind the same
//! streaming [`SpeechToText`] traits as the cloud backends.
//!
//! Whisper is not a streaming model: it transcribes a finished segment of audio. So a stream
//! buffers the PCM it is sent since the last segment and transcribes the segment when it
//! ends: when the pipeline's endpointer calls [`SttSender::finalize`], or — for profiles that
//! rely on the STT's own endpointing ([`SttOptions::endpointing_ms`]) — when an
//! [`EnergyVad`] with that hangover decides the speaker stopped. Each segment becomes one final
//! transcript. There are no interim results.
//!
//! One model is loaded once and shared by every call. At most `max_parallel` inferences run at
//! once across all calls (a semaphore); the time a segment waits for a slot is part of the
//! latency the pipeline measures, as it would be on a real local server. Every inference's
//! audio length, wait and compute time are kept ([`WhisperStt::inference_stats`]) so results
//! can report the real-time factor.
//!
//! Decoding follows whisper.cpp's defaults (temperature fallback included) except that each
//! segment is decoded on its own (no prompt from earlier text: states are shared by calls),
//! without timestamps, in the configured language. Whisper's non-speech annotations
//! (`[BLANK_AUDIO]`, `(music)`, ...) are stripped from the text. Audio left at
//! [`SttSender::close`] is transcribed only when the stream's energy VAD heard speech in it.
//!
//! This module never reads the run's clock for events: the pipeline stamps each transcript as
//! it arrives. It times only its own work, for the statistics.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};
use whisper_rs::{WhisperError, WhisperState};

use super::{Device, ModelError, Models, default_threads};
use crate::backends::energy_vad::EnergyVad;
use crate::stage::{
    CallInfo, Endpointer, SpeechToText, SttEvent, SttOptions, SttReceiver, SttSender, VadEvent,
};
use crate::timing::{ErrorKind, StageError};

/// The sample rate whisper takes; other rates are resampled (linearly) before inference.
pub const SAMPLE_RATE: u32 = 16_000;

/// Shortest input handed to whisper.cpp, in samples (it refuses less than 100 ms, and pads
/// everything to 30 s internally anyway, so padding short segments with silence is free).
const MIN_SAMPLES: usize = SAMPLE_RATE as usize;

/// Hangover of the stream's own energy VAD when the profile does not set one: used only to
/// tell whether audio left at [`SttSender::close`] holds any speech.
const DEFAULT_HANGOVER_MS: f64 = 300.0;

/// A Whisper model latlab can load (from `models/lock.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WhisperModel {
    /// Whisper tiny, English only (39 M parameters).
    #[default]
    #[serde(rename = "tiny.en")]
    TinyEn,
    /// Whisper base, multilingual (74 M parameters).
    #[serde(rename = "base")]
    Base,
}

impl WhisperModel {
    /// The model's name in `lock.toml` (what `models/fetch.py` takes).
    pub fn lock_name(self) -> &'static str {
        match self {
            WhisperModel::TinyEn => "whisper-tiny.en",
            WhisperModel::Base => "whisper-base",
        }
    }

    /// The ggml file, relative to the models folder.
    pub fn file(self) -> &'static str {
        match self {
            WhisperModel::TinyEn => "whisper/ggml-tiny.en.bin",
            WhisperModel::Base => "whisper/ggml-base.bin",
        }
    }

    /// The name a scenario uses (`tiny.en`, `base`).
    pub fn as_str(self) -> &'static str {
        match self {
            WhisperModel::TinyEn => "tiny.en",
            WhisperModel::Base => "base",
        }
    }

    /// Whether the model transcribes only English.
    pub fn english_only(self) -> bool {
        matches!(self, WhisperModel::TinyEn)
    }
}

/// Scenario settings of the Whisper backend (`[backends.stt] kind = "whisper"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhisperConfig {
    /// `tiny.en` or `base`.
    #[serde(default)]
    pub model: WhisperModel,
    /// CPU threads of one inference (default: all cores but one).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// 1 decodes greedily; more runs a beam search of that width.
    #[serde(default = "one")]
    pub beam_size: u32,
    /// Language code (`en`, `de`, ...) or `auto` to detect it (multilingual models only).
    #[serde(default = "english")]
    pub language: String,
    /// Where the model runs; CUDA needs latlab built with the `cuda-stt` feature.
    #[serde(default)]
    pub device: Device,
    /// Inferences at once across all calls; more wait for a slot (and that wait is measured).
    #[serde(default = "one_usize")]
    pub max_parallel: usize,
}

fn one() -> u32 {
    1
}
fn one_usize() -> usize {
    1
}
fn english() -> String {
    "en".into()
}

impl Default for WhisperConfig {
    fn default() -> WhisperConfig {
        WhisperConfig {
            model: WhisperModel::default(),
            threads: default_threads(),
            beam_size: one(),
            language: english(),
            device: Device::default(),
            max_parallel: one_usize(),
        }
    }
}

/// What ended a transcribed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentEnd {
    /// The pipeline asked for it ([`SttSender::finalize`]).
    Finalize,
    /// The stream's own endpointing (energy VAD with the profile's hangover).
    Endpoint,
    /// The stream was closed with speech still buffered.
    Close,
}

/// The cost of one inference: the figures of the real-time factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceStats {
    /// The call session (`<call>#<iteration>`) of the stream.
    pub session: String,
    /// What ended the segment.
    pub end: SegmentEnd,
    /// Start of the segment (ms from the start of the stream).
    pub audio_start_ms: f64,
    /// End of the segment (ms from the start of the stream).
    pub audio_end_ms: f64,
    /// Audio transcribed (ms), before any padding.
    pub audio_ms: f64,
    /// From the end of the segment to a free inference slot (ms): the queue, including this
    /// stream's earlier segments still being transcribed.
    pub waited_ms: f64,
    /// From the slot to the text (ms): latlab's whole cost of the inference (conversion,
    /// whisper.cpp, reading the segments back).
    pub compute_ms: f64,
    /// whisper.cpp's own part of `compute_ms` (ms): the `whisper_full_with_state` call (mel
    /// spectrogram, encoder, decoder), timed right around it. whisper-rs exposes no per-state
    /// timings of whisper.cpp itself (`whisper_get_timings` reads only the context's default
    /// state, which whisper-rs never creates), so this is the closest figure to whisper.cpp's
    /// own total.
    pub whisper_ms: f64,
    /// CPU threads of the inference.
    pub threads: usize,
    /// Where it ran.
    pub device: Device,
    /// Characters of the transcript.
    pub chars: usize,
}

impl InferenceStats {
    /// Compute time over audio time (below 1 is faster than real time); 0 for no audio.
    pub fn real_time_factor(&self) -> f64 {
        if self.audio_ms > 0.0 {
            self.compute_ms / self.audio_ms
        } else {
            0.0
        }
    }
}

/// The loaded model, shared by every stream.
struct Engine {
    ctx: WhisperContext,
    /// Idle whisper.cpp states (KV caches and work buffers), one per inference slot, so no
    /// inference pays for allocating one.
    states: Mutex<Vec<WhisperState>>,
    slots: Arc<Semaphore>,
    config: WhisperConfig,
    device: Device,
    path: PathBuf,
    stats: Arc<Mutex<Vec<InferenceStats>>>,
}

/// Whisper (whisper.cpp) as a streaming speech-to-text backend.
#[derive(Clone)]
pub struct WhisperStt {
    engine: Arc<Engine>,
    note: Option<String>,
}

impl std::fmt::Debug for WhisperStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStt")
            .field("config", &self.engine.config)
            .field("device", &self.engine.device)
            .field("path", &self.engine.path)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

impl WhisperStt {
    /// Loads the configured model from `models` (checked against its pinned SHA-256) once,
    /// with one whisper.cpp state per inference slot.
    pub fn load(config: WhisperConfig, models: &Models) -> Result<WhisperStt, ModelError> {
        // whisper.cpp prints ~40 lines per model load and state to stderr; route them to
        // whisper-rs's (disabled) log backends. Failures still come back as errors.
        whisper_rs::install_logging_hooks();
        let path = models.verified(config.model.lock_name(), config.model.file())?;
        let fail = |message: String| ModelError::Load {
            path: path.clone(),
            message,
        };
        if config.threads == 0 || config.max_parallel == 0 || config.beam_size == 0 {
            return Err(fail(format!(
                "threads ({}), beam_size ({}) and max_parallel ({}) must each be at least 1",
                config.threads, config.beam_size, config.max_parallel
            )));
        }
        check_language(&config).map_err(fail)?;
        let (use_gpu, device, note) = placement(config.device);
        let mut params = WhisperContextParameters::default();
        params.use_gpu(use_gpu);
        let ctx = WhisperContext::new_with_params(&path, params)
            .map_err(|e| fail(format!("whisper.cpp refused the model: {e}")))?;
        let mut states = (0..config.max_parallel)
            .map(|_| ctx.create_state())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("whisper.cpp could not allocate a state: {e}")))?;
        let engine = Engine {
            ctx,
            states: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(config.max_parallel)),
            config,
            device,
            path: path.clone(),
            stats: Arc::new(Mutex::new(Vec::new())),
        };
        // One inference on each state before any call: the first one pays for cold caches and
        // lazy allocations (about 0.3 s for tiny.en on 2 threads), which a running server has
        // long paid; it also shows a model that loads but cannot run, now rather than mid-run.
        let silence = vec![0.0; MIN_SAMPLES];
        for state in &mut states {
            engine
                .infer(state, &silence)
                .map_err(|e| fail(format!("warm-up inference: {e}")))?;
        }
        *engine
            .states
            .lock()
            .map_err(|_| fail("whisper state pool poisoned".into()))? = states;
        Ok(WhisperStt {
            engine: Arc::new(engine),
            note,
        })
    }

    /// The settings it was loaded with.
    pub fn config(&self) -> &WhisperConfig {
        &self.engine.config
    }

    /// Where the model runs.
    pub fn device(&self) -> Device {
        self.engine.device
    }

    /// Why the model does not run where the scenario asked, when it doesn't.
    pub fn placement_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Every inference so far, in the order they finished.
    pub fn inference_stats(&self) -> Vec<InferenceStats> {
        self.engine
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// The shared list [`WhisperStt::inference_stats`] reads, for a caller that keeps only the
    /// backend behind `dyn SpeechToText`.
    pub fn stats_handle(&self) -> Arc<Mutex<Vec<InferenceStats>>> {
        Arc::clone(&self.engine.stats)
    }
}

fn check_language(config: &WhisperConfig) -> Result<(), String> {
    let lang = config.language.as_str();
    if config.model.english_only() && lang != "en" {
        return Err(format!(
            "model {} transcribes only English, not language `{lang}`",
            config.model.as_str()
        ));
    }
    if lang != "auto" && whisper_rs::get_lang_id(lang).is_none() {
        return Err(format!("whisper does not know language `{lang}`"));
    }
    Ok(())
}

/// Whether to ask whisper.cpp for the GPU, where the model will run, and why not the GPU
/// when it was asked for and will not be used.
fn placement(asked: Device) -> (bool, Device, Option<String>) {
    match asked {
        Device::Cpu => (false, Device::Cpu, None),
        Device::Cuda => cuda_placement(),
    }
}

#[cfg(feature = "cuda-stt")]
fn cuda_placement() -> (bool, Device, Option<String>) {
    // whisper.cpp falls back to the CPU by itself when CUDA finds no device; say so up front.
    if std::path::Path::new("/dev/nvidiactl").exists() {
        (true, Device::Cuda, None)
    } else {
        (
            false,
            Device::Cpu,
            Some(
                "no NVIDIA GPU is visible (/dev/nvidiactl is missing); whisper runs on the CPU"
                    .into(),
            ),
        )
    }
}

#[cfg(not(feature = "cuda-stt"))]
fn cuda_placement() -> (bool, Device, Option<String>) {
    (
        false,
        Device::Cpu,
        Some("latlab was built without the cuda-stt feature; whisper runs on the CPU".into()),
    )
}

impl Engine {
    /// Transcribes one segment: waits for a slot, then runs whisper on a blocking thread.
    async fn transcribe(
        self: &Arc<Engine>,
        segment: Segment,
        session: &str,
    ) -> Result<SttEvent, StageError> {
        let Segment {
            samples,
            rate,
            start_ms,
            end_ms,
            end,
            requested,
        } = segment;
        let event = |text: String| SttEvent::Transcript {
            text,
            is_final: true,
            speech_final: end != SegmentEnd::Close,
            from_finalize: end == SegmentEnd::Finalize,
            audio_start_ms: start_ms,
            audio_end_ms: end_ms,
        };
        if samples.is_empty() {
            // Nothing was sent since the last segment: the answer is known without a model.
            return Ok(event(String::new()));
        }
        let audio_ms = samples.len() as f64 * 1000.0 / f64::from(rate);
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| StageError::new(ErrorKind::Inference, "whisper's slots were closed"))?;
        let slot_at = Instant::now();
        let waited = slot_at.duration_since(requested);
        let engine = Arc::clone(self);
        let (text, whisper_ms) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            engine.run(&samples, rate)
        })
        .await
        .map_err(|e| StageError::new(ErrorKind::Inference, format!("whisper task failed: {e}")))?
        .map_err(|e| StageError::new(ErrorKind::Inference, e))?;
        let compute = slot_at.elapsed();
        let stats = InferenceStats {
            session: session.to_string(),
            end,
            audio_start_ms: start_ms,
            audio_end_ms: end_ms,
            audio_ms,
            waited_ms: waited.as_secs_f64() * 1000.0,
            compute_ms: compute.as_secs_f64() * 1000.0,
            whisper_ms,
            threads: self.config.threads,
            device: self.device,
            chars: text.chars().count(),
        };
        if let Ok(mut all) = self.stats.lock() {
            all.push(stats);
        }
        Ok(event(text))
    }

    /// Runs whisper.cpp on one segment (blocking) on an idle state; returns the cleaned text
    /// and the time of the `whisper_full_with_state` call (ms).
    fn run(&self, pcm: &[i16], rate: u32) -> Result<(String, f64), String> {
        let audio = whisper_input(pcm, rate);
        let idle = self
            .states
            .lock()
            .map_err(|_| "whisper state pool poisoned".to_string())?
            .pop();
        let mut state = match idle {
            Some(state) => state,
            None => self
                .ctx
                .create_state()
                .map_err(|e| format!("whisper.cpp could not allocate a state: {e}"))?,
        };
        let out = self.infer(&mut state, &audio)?;
        // A state that failed may be left half-way; only a good one goes back to the pool.
        if let Ok(mut states) = self.states.lock() {
            states.push(state);
        }
        Ok(out)
    }

    /// One whisper.cpp inference on `state`: the cleaned text and the time of the
    /// `whisper_full_with_state` call (ms).
    fn infer(&self, state: &mut WhisperState, audio: &[f32]) -> Result<(String, f64), String> {
        let strategy = if self.config.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: clamp_i32(self.config.beam_size as usize),
                patience: -1.0,
            }
        } else {
            // whisper.cpp's default: 5 candidates only when a temperature fallback samples.
            SamplingStrategy::Greedy { best_of: 5 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(clamp_i32(self.config.threads));
        params.set_language(Some(self.config.language.as_str()));
        params.set_translate(false);
        // States are reused across calls: never carry one call's text into another's prompt.
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        let began = Instant::now();
        let result = state.full(params, audio);
        let whisper_ms = began.elapsed().as_secs_f64() * 1000.0;
        result.map_err(|e| describe(&e, &self.path))?;
        let mut raw = String::new();
        for segment in state.as_iter() {
            let text = segment
                .to_str_lossy()
                .map_err(|e| describe(&e, &self.path))?;
            raw.push_str(&text);
            raw.push(' ');
        }
        Ok((clean_transcript(&raw), whisper_ms))
    }
}

fn describe(e: &WhisperError, path: &std::path::Path) -> String {
    format!("whisper.cpp ({}) failed: {e}", path.display())
}

fn clamp_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// 16 kHz mono f32 in [-1, 1], at least [`MIN_SAMPLES`] long.
fn whisper_input(pcm: &[i16], rate: u32) -> Vec<f32> {
    let samples: Vec<f32> = pcm.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let mut audio = if rate == SAMPLE_RATE || rate == 0 {
        samples
    } else {
        resample_linear(&samples, rate, SAMPLE_RATE)
    };
    if audio.len() < MIN_SAMPLES {
        audio.resize(MIN_SAMPLES, 0.0);
    }
    audio
}

/// Linear-interpolation resampling (enough for speech recognition input).
fn resample_linear(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if input.is_empty() {
        return Vec::new();
    }
    let len = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..len)
        .map(|i| {
            let x = i as f64 * step;
            let k = x.floor() as usize;
            let frac = (x - k as f64) as f32;
            let a = input[k.min(input.len() - 1)];
            let b = input[(k + 1).min(input.len() - 1)];
            a + (b - a) * frac
        })
        .collect()
}

/// Whisper's transcript without its non-speech annotations (`[BLANK_AUDIO]`, `(music)`,
/// `*laughs*`, `♪`) and with whitespace collapsed.
pub fn clean_transcript(raw: &str) -> String {
    let mut kept = String::with_capacity(raw.len());
    // The open annotation: its closing character and where its text starts in `raw`.
    let mut open: Option<(char, usize)> = None;
    for (at, c) in raw.char_indices() {
        match open {
            Some((close, _)) => {
                if c == close {
                    open = None;
                }
            }
            None => match c {
                '[' => open = Some((']', at + c.len_utf8())),
                '(' => open = Some((')', at + c.len_utf8())),
                '*' => open = Some(('*', at + c.len_utf8())),
                '♪' | '♫' => kept.push(' '),
                _ => kept.push(c),
            },
        }
    }
    // An annotation that never closes was not one: keep its text.
    if let Some((_, from)) = open {
        kept.push_str(&raw[from..]);
    }
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A finished segment waiting for its transcript.
struct Segment {
    samples: Vec<i16>,
    rate: u32,
    start_ms: f64,
    end_ms: f64,
    end: SegmentEnd,
    /// When the segment ended (for the wait statistic only).
    requested: Instant,
}

/// Work for a stream's worker, in stream order.
enum Job {
    Transcribe(Segment),
    Report(SttEvent),
}

#[async_trait]
impl SpeechToText for WhisperStt {
    fn name(&self) -> &str {
        "whisper"
    }

    async fn open(
        &self,
        call: &CallInfo,
        options: &SttOptions,
    ) -> Result<(Box<dyn SttSender>, Box<dyn SttReceiver>), StageError> {
        if call.sample_rate == 0 {
            return Err(StageError::new(
                ErrorKind::Inference,
                "the call's sample rate is 0",
            ));
        }
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(work(
            Arc::clone(&self.engine),
            call.session.clone(),
            jobs_rx,
            events_tx,
        ));
        let sender = WhisperSender {
            jobs: Some(jobs_tx),
            rate: call.sample_rate,
            endpointing_ms: options.endpointing_ms,
            buffer: Vec::new(),
            segment_start: 0,
            position: 0,
            vad: None,
            hangover: 0,
            in_speech: false,
            started_since_cut: false,
            heard_speech: false,
        };
        Ok((
            Box::new(sender),
            Box::new(WhisperReceiver { events: events_rx }),
        ))
    }
}

/// A stream's worker: transcribes its segments one after another, in order, and ends the
/// receiver once the sender is closed and every segment is answered.
async fn work(
    engine: Arc<Engine>,
    session: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    events: mpsc::UnboundedSender<Result<SttEvent, StageError>>,
) {
    while let Some(job) = jobs.recv().await {
        let event = match job {
            Job::Transcribe(segment) => engine.transcribe(segment, &session).await,
            Job::Report(event) => Ok(event),
        };
        if events.send(event).is_err() {
            return; // nobody listens any more
        }
    }
}

struct WhisperSender {
    /// `None` once closed.
    jobs: Option<mpsc::UnboundedSender<Job>>,
    rate: u32,
    endpointing_ms: Option<u32>,
    /// PCM since the last segment.
    buffer: Vec<i16>,
    /// Sample index where the buffered segment starts.
    segment_start: u64,
    /// Samples sent so far.
    position: u64,
    /// Created with the first frame (it needs the frame length).
    vad: Option<EnergyVad>,
    /// The VAD's hangover, in samples.
    hangover: u64,
    in_speech: bool,
    /// Speech started after the last cut.
    started_since_cut: bool,
    /// The buffered segment holds speech (as far as the energy VAD can tell).
    heard_speech: bool,
}

impl WhisperSender {
    fn ms(&self, samples: u64) -> f64 {
        samples as f64 * 1000.0 / f64::from(self.rate)
    }

    fn submit(&mut self, job: Job) -> Result<(), StageError> {
        let jobs = self.jobs.as_ref().ok_or_else(|| {
            StageError::new(ErrorKind::Disconnected, "the STT stream is already closed")
        })?;
        jobs.send(job).map_err(|_| {
            StageError::new(ErrorKind::Disconnected, "the STT stream's receiver is gone")
        })
    }

    /// Ends the buffered segment and queues it for transcription.
    fn cut(&mut self, end: SegmentEnd) -> Result<(), StageError> {
        let segment = Segment {
            samples: std::mem::take(&mut self.buffer),
            rate: self.rate,
            start_ms: self.ms(self.segment_start),
            end_ms: self.ms(self.position),
            end,
            requested: Instant::now(),
        };
        self.segment_start = self.position;
        // Speech still going on at the cut belongs to the next segment too (until its end
        // shows it stopped before the cut).
        self.heard_speech = self.in_speech;
        self.started_since_cut = false;
        self.submit(Job::Transcribe(segment))
    }
}

#[async_trait]
impl SttSender for WhisperSender {
    async fn send_audio(&mut self, pcm: &[i16]) -> Result<(), StageError> {
        if self.jobs.is_none() {
            return Err(StageError::new(
                ErrorKind::Disconnected,
                "audio sent after the STT stream was closed",
            ));
        }
        if pcm.is_empty() {
            return Ok(());
        }
        self.buffer.extend_from_slice(pcm);
        self.position += pcm.len() as u64;
        let frame_ms = pcm.len() as f64 * 1000.0 / f64::from(self.rate);
        let hangover_ms = self.endpointing_ms.map_or(DEFAULT_HANGOVER_MS, f64::from);
        if self.vad.is_none() {
            self.hangover = (hangover_ms * f64::from(self.rate) / 1000.0) as u64;
        }
        let vad = self
            .vad
            .get_or_insert_with(|| EnergyVad::new(frame_ms, hangover_ms));
        match vad.push(pcm) {
            Some(VadEvent::SpeechStart) => {
                self.in_speech = true;
                self.started_since_cut = true;
                self.heard_speech = true;
                if self.endpointing_ms.is_some() {
                    let at_ms = self.ms(self.position);
                    self.submit(Job::Report(SttEvent::SpeechStarted { at_ms }))?;
                }
            }
            Some(VadEvent::SpeechEnd) => {
                self.in_speech = false;
                let speech_end = self.position.saturating_sub(self.hangover);
                if !self.started_since_cut && speech_end <= self.segment_start {
                    self.heard_speech = false; // it ended before the last cut
                }
                if self.endpointing_ms.is_some() {
                    self.cut(SegmentEnd::Endpoint)?;
                }
            }
            None => {}
        }
        Ok(())
    }

    async fn finalize(&mut self) -> Result<(), StageError> {
        self.cut(SegmentEnd::Finalize)
    }

    async fn keep_alive(&mut self) -> Result<(), StageError> {
        Ok(())
    }

    async fn close(&mut self) -> Result<(), StageError> {
        if self.jobs.is_none() {
            return Ok(());
        }
        // Audio after the last segment is transcribed only if it holds speech: transcribing
        // the silence at the end of every call would take slots from live turns.
        if !self.buffer.is_empty() && self.heard_speech {
            self.cut(SegmentEnd::Close)?;
        }
        self.jobs = None; // the worker finishes what is queued, then ends the receiver
        Ok(())
    }
}

struct WhisperReceiver {
    events: mpsc::UnboundedReceiver<Result<SttEvent, StageError>>,
}

#[async_trait]
impl SttReceiver for WhisperReceiver {
    async fn next_event(&mut self) -> Option<Result<SttEvent, StageError>> {
        self.events.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;
    use crate::wer::word_error_rate;

    /// Transcripts of the real model may differ from the manifest by this much per turn
    /// (normalized WER); the smoke call's turns are one to four words, so one wrong word in a
    /// four-word turn is 0.25.
    const MAX_TURN_WER: f64 = 0.34;

    fn real_whisper() -> Option<WhisperStt> {
        let models = Models::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"));
        let config = WhisperConfig {
            threads: 2,
            ..WhisperConfig::default()
        };
        match WhisperStt::load(config, &models) {
            Ok(stt) => Some(stt),
            Err(ModelError::Missing { .. })
                if std::env::var("LATLAB_REQUIRE_MODELS").as_deref() != Ok("1") =>
            {
                eprintln!(
                    "skipping: whisper-tiny.en is not fetched (python3 models/fetch.py whisper-tiny.en)"
                );
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn call(id: &str) -> crate::dataset::Call {
        let dataset = Dataset::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../datasets/smoke"
        )))
        .unwrap();
        dataset.call(id).unwrap().clone()
    }

    fn info(call: &crate::dataset::Call) -> CallInfo {
        CallInfo {
            call_id: call.id.clone(),
            sample_rate: call.sample_rate,
            session: format!("{}#0", call.id),
        }
    }

    fn options(endpointing_ms: Option<u32>) -> SttOptions {
        SttOptions {
            interim_results: false,
            endpointing_ms,
            utterance_end_ms: None,
        }
    }

    async fn next_transcript(receiver: &mut Box<dyn SttReceiver>) -> SttEvent {
        loop {
            match receiver.next_event().await {
                Some(Ok(event @ SttEvent::Transcript { .. })) => return event,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("{e}"),
                None => panic!("the stream ended before a transcript"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transcribes_the_turns_of_a_recorded_call_on_finalize() {
        let Some(stt) = real_whisper() else { return };
        let call = call("call-09");
        let samples = call.load_samples().unwrap();
        let (mut sender, mut receiver) = stt.open(&info(&call), &options(None)).await.unwrap();
        let frame = call.sample_rate as usize / 50; // 20 ms
        let mut sent = 0;
        for (i, turn) in call.turns.iter().enumerate() {
            // Feed up to 300 ms after the turn's end (an endpointer's hangover), then finalize.
            let until = ((turn.end_ms + 300) as usize * call.sample_rate as usize / 1000)
                .min(samples.len());
            while sent < until {
                let end = (sent + frame).min(until);
                sender.send_audio(&samples[sent..end]).await.unwrap();
                sent = end;
            }
            sender.finalize().await.unwrap();
            let SttEvent::Transcript {
                text,
                is_final,
                speech_final,
                from_finalize,
                audio_start_ms,
                audio_end_ms,
            } = next_transcript(&mut receiver).await
            else {
                unreachable!()
            };
            let wer = word_error_rate(&turn.text, &text);
            let stats = stt.inference_stats();
            let last = stats.last().unwrap();
            eprintln!(
                "turn {i}: {:?} -> {text:?}, WER {wer:.2}; audio {:.0} ms, waited {:.1} ms, compute {:.1} ms (whisper.cpp {:.1} ms), RTF {:.3}",
                turn.text,
                last.audio_ms,
                last.waited_ms,
                last.compute_ms,
                last.whisper_ms,
                last.real_time_factor()
            );
            assert!(is_final && speech_final && from_finalize);
            assert!(audio_end_ms > audio_start_ms);
            assert!((audio_end_ms - sent as f64 * 1000.0 / 16000.0).abs() < 1e-6);
            if i == 0 {
                assert_eq!(audio_start_ms, 0.0);
            }
            assert!(
                wer <= MAX_TURN_WER,
                "turn {i}: {:?} transcribed as {text:?} (WER {wer:.2})",
                turn.text
            );
        }
        sender.close().await.unwrap();
        // The tail holds no speech: nothing more to transcribe; the stream ends.
        while let Some(event) = receiver.next_event().await {
            assert!(
                !matches!(event, Ok(SttEvent::Transcript { .. }) | Err(_)),
                "{event:?}"
            );
        }
        let stats = stt.inference_stats();
        assert_eq!(stats.len(), call.turns.len());
        for s in &stats {
            assert_eq!(s.session, "call-09#0");
            assert_eq!(s.end, SegmentEnd::Finalize);
            assert!(s.whisper_ms > 0.0 && s.whisper_ms <= s.compute_ms, "{s:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn endpoints_by_itself_when_the_profile_relies_on_the_stt() {
        let Some(stt) = real_whisper() else { return };
        let call = call("call-09");
        let samples = call.load_samples().unwrap();
        let (mut sender, mut receiver) = stt.open(&info(&call), &options(Some(500))).await.unwrap();
        for frame in samples.chunks(320) {
            sender.send_audio(frame).await.unwrap();
        }
        sender.close().await.unwrap();
        let mut texts = Vec::new();
        let mut started = 0;
        while let Some(event) = receiver.next_event().await {
            match event.unwrap() {
                SttEvent::Transcript {
                    text,
                    is_final,
                    speech_final,
                    from_finalize,
                    ..
                } => {
                    // The last turn may still be going on when the call ends (closed, not
                    // endpointed).
                    assert!(is_final && !from_finalize);
                    assert!(speech_final || texts.len() + 1 == call.turns.len());
                    texts.push(text);
                }
                SttEvent::SpeechStarted { .. } => started += 1,
                other => panic!("{other:?}"),
            }
        }
        eprintln!("segments: {texts:?}");
        assert_eq!(texts.len(), call.turns.len(), "{texts:?}");
        assert_eq!(started, call.turns.len());
        for (turn, text) in call.turns.iter().zip(&texts) {
            let wer = word_error_rate(&turn.text, text);
            assert!(wer <= MAX_TURN_WER, "{:?} -> {text:?}", turn.text);
        }
        assert!(
            stt.inference_stats()
                .iter()
                .all(|s| s.end != SegmentEnd::Finalize)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silence_still_gets_a_final_transcript() {
        let Some(stt) = real_whisper() else { return };
        let call = CallInfo {
            call_id: "silence".into(),
            sample_rate: 16_000,
            session: "silence#0".into(),
        };
        let (mut sender, mut receiver) = stt.open(&call, &options(None)).await.unwrap();
        // Finalize with nothing buffered is answered at once.
        sender.finalize().await.unwrap();
        let first = next_transcript(&mut receiver).await;
        assert!(
            matches!(first, SttEvent::Transcript { ref text, from_finalize: true, .. } if text.is_empty())
        );
        for _ in 0..50 {
            sender.send_audio(&[0i16; 320]).await.unwrap();
        }
        sender.finalize().await.unwrap();
        let SttEvent::Transcript {
            text,
            is_final,
            audio_start_ms,
            audio_end_ms,
            ..
        } = next_transcript(&mut receiver).await
        else {
            unreachable!()
        };
        assert!(is_final);
        assert_eq!((audio_start_ms, audio_end_ms), (0.0, 1000.0));
        assert!(!text.contains('['), "{text:?}");
        sender.close().await.unwrap();
        assert!(receiver.next_event().await.is_none());
        assert!(sender.send_audio(&[0; 320]).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_share_the_inference_slots_and_wait_for_them() {
        let Some(stt) = real_whisper() else { return };
        let mut streams = Vec::new();
        for n in 0..2 {
            let call = CallInfo {
                call_id: format!("quiet-{n}"),
                sample_rate: 16_000,
                session: format!("quiet-{n}#0"),
            };
            streams.push(stt.open(&call, &options(None)).await.unwrap());
        }
        for (sender, _) in &mut streams {
            for _ in 0..25 {
                sender.send_audio(&[0i16; 320]).await.unwrap();
            }
            sender.finalize().await.unwrap();
        }
        for (_, receiver) in &mut streams {
            next_transcript(receiver).await;
        }
        let stats = stt.inference_stats();
        assert_eq!(stats.len(), 2);
        // One slot (max_parallel = 1): the second inference waited for the first to finish.
        let (first, second) = (&stats[0], &stats[1]);
        assert!(
            second.waited_ms >= 0.9 * first.compute_ms,
            "first {first:?}, second {second:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_multilingual_base_model_transcribes_too() {
        let models = Models::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"));
        let config = WhisperConfig {
            model: WhisperModel::Base,
            threads: 2,
            ..WhisperConfig::default()
        };
        let stt = match WhisperStt::load(config, &models) {
            Ok(stt) => stt,
            Err(ModelError::Missing { .. })
                if std::env::var("LATLAB_REQUIRE_MODELS").as_deref() != Ok("1") =>
            {
                eprintln!(
                    "skipping: whisper-base is not fetched (python3 models/fetch.py whisper-base)"
                );
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let call = call("call-09");
        let samples = call.load_samples().unwrap();
        let turn = &call.turns[1];
        let (mut sender, mut receiver) = stt.open(&info(&call), &options(None)).await.unwrap();
        let from = (call.turns[0].end_ms + 300) as usize * 16;
        let until = (turn.end_ms + 300) as usize * 16;
        sender.send_audio(&samples[..from]).await.unwrap();
        sender.finalize().await.unwrap();
        next_transcript(&mut receiver).await;
        for frame in samples[from..until].chunks(320) {
            sender.send_audio(frame).await.unwrap();
        }
        sender.finalize().await.unwrap();
        let SttEvent::Transcript { text, .. } = next_transcript(&mut receiver).await else {
            unreachable!()
        };
        let wer = word_error_rate(&turn.text, &text);
        eprintln!("base: {:?} -> {text:?} (WER {wer:.2})", turn.text);
        assert!(wer <= MAX_TURN_WER, "{:?} -> {text:?}", turn.text);
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lock.toml"),
            "[[model]]\nname = \"whisper-base\"\nfiles = { \"whisper/ggml-base.bin\" = \"00\" }\n",
        )
        .unwrap();
        let config = WhisperConfig {
            model: WhisperModel::Base,
            ..WhisperConfig::default()
        };
        let err = WhisperStt::load(config, &Models::at(dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ModelError::Missing { .. }), "{text}");
        assert!(text.contains("whisper/ggml-base.bin"), "{text}");
        assert!(text.contains("fetch.py whisper-base"), "{text}");
    }

    #[test]
    fn a_file_whisper_cpp_refuses_is_a_load_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("whisper")).unwrap();
        std::fs::write(dir.path().join("whisper/ggml-tiny.en.bin"), b"not a model").unwrap();
        std::fs::write(
            dir.path().join("lock.toml"),
            "[[model]]\nname = \"whisper-tiny.en\"\nfiles = { \"whisper/ggml-tiny.en.bin\" = \"PENDING\" }\n",
        )
        .unwrap();
        let err = WhisperStt::load(WhisperConfig::default(), &Models::at(dir.path())).unwrap_err();
        assert!(matches!(err, ModelError::Load { .. }), "{err}");
        assert!(err.to_string().contains("ggml-tiny.en.bin"), "{err}");
    }

    #[test]
    fn config_reads_from_toml_with_defaults_and_refuses_unknown_keys() {
        let config: WhisperConfig = toml::from_str("model = \"base\"\nbeam_size = 5\n").unwrap();
        assert_eq!(config.model, WhisperModel::Base);
        assert_eq!(config.beam_size, 5);
        assert_eq!(config.language, "en");
        assert_eq!(config.device, Device::Cpu);
        assert_eq!(config.max_parallel, 1);
        assert_eq!(config.threads, default_threads());
        let config: WhisperConfig = toml::from_str("device = \"cuda\"").unwrap();
        assert_eq!(config.model, WhisperModel::TinyEn);
        assert_eq!(config.device, Device::Cuda);
        assert!(toml::from_str::<WhisperConfig>("modle = \"base\"").is_err());
        assert!(toml::from_str::<WhisperConfig>("model = \"large\"").is_err());
    }

    #[test]
    fn english_only_models_refuse_other_languages() {
        let mut config = WhisperConfig {
            language: "de".into(),
            ..WhisperConfig::default()
        };
        assert!(check_language(&config).is_err());
        config.model = WhisperModel::Base;
        assert!(check_language(&config).is_ok());
        config.language = "auto".into();
        assert!(check_language(&config).is_ok());
        config.language = "xx".into();
        assert!(check_language(&config).is_err());
    }

    #[test]
    fn cuda_without_the_feature_or_a_gpu_falls_back_with_a_note() {
        assert_eq!(placement(Device::Cpu), (false, Device::Cpu, None));
        let (use_gpu, device, note) = placement(Device::Cuda);
        if cfg!(feature = "cuda-stt") && std::path::Path::new("/dev/nvidiactl").exists() {
            assert!(use_gpu && device == Device::Cuda && note.is_none());
        } else {
            assert!(!use_gpu && device == Device::Cpu);
            assert!(note.unwrap().contains("CPU"));
        }
    }

    #[test]
    fn annotations_are_stripped_from_transcripts() {
        assert_eq!(clean_transcript(" [BLANK_AUDIO] "), "");
        assert_eq!(
            clean_transcript(" Hello. (upbeat music)  *laughs* there ♪ "),
            "Hello. there"
        );
        assert_eq!(
            clean_transcript(" Tomorrow at 7 p.m. "),
            "Tomorrow at 7 p.m."
        );
        assert_eq!(clean_transcript("I said (twice"), "I said twice");
    }

    #[test]
    fn input_is_resampled_and_padded_for_whisper() {
        let pcm = vec![16384i16; 8000];
        let audio = whisper_input(&pcm, 8000);
        assert_eq!(audio.len(), MIN_SAMPLES);
        assert!(audio[..16000].iter().all(|&s| (s - 0.5).abs() < 1e-6));
        let ramp: Vec<f32> = (0..4).map(|i| i as f32).collect();
        assert_eq!(
            resample_linear(&ramp, 8000, 16000),
            vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]
        );
        assert_eq!(whisper_input(&[0; 32000], 16000).len(), 32000);
    }
}
