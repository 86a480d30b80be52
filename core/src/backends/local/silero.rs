//! Silero VAD (v6, ONNX) as the local endpointer: a speech probability for every 32 ms
//! (512 samples at 16 kHz), with hysteresis — speech starts when the probability reaches the
//! threshold and ends after `min_silence_ms` below `threshold − 0.15` — as Silero's own
//! `VADIterator` decides.
//!
//! One ONNX session serves every call; each call keeps its own recurrent state and the last
//! 64 samples of the previous chunk, which the model wants in front of the next one.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ort::session::Session;
use ort::value::Tensor;

use super::onnx::{self, Placement};
use super::{Device, ModelError, Models};
use crate::profile::Profile;
use crate::stage::{Endpointer, EndpointerFactory, VadEvent};

/// The model file inside the models folder.
pub const MODEL_FILE: &str = "silero/silero_vad.onnx";
/// Samples per model call at 16 kHz.
pub const CHUNK: usize = 512;
/// Samples of the previous chunk put in front of each call.
const CONTEXT: usize = 64;
/// The only sample rate this model file takes in 512-sample chunks.
pub const SAMPLE_RATE: u32 = 16_000;
const STATE_LEN: usize = 2 * 128;

/// Silero's settings that a scenario or profile may change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SileroSettings {
    /// Speech probability at which speech starts (Silero's default 0.5).
    pub threshold: f32,
    /// Silence (ms below `threshold − 0.15`) that ends speech.
    pub min_silence_ms: f64,
    /// Speech shorter than this does not count as a start (ms).
    pub min_speech_ms: f64,
}

impl Default for SileroSettings {
    fn default() -> SileroSettings {
        SileroSettings {
            threshold: 0.5,
            min_silence_ms: 500.0,
            min_speech_ms: 64.0,
        }
    }
}

/// The loaded model, shared by every call's [`SileroVad`].
#[derive(Clone)]
pub struct SileroModel {
    session: Arc<Mutex<Session>>,
    placement: Placement,
    costs: Arc<Mutex<Vec<u64>>>,
}

impl std::fmt::Debug for SileroModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroModel")
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}

impl SileroModel {
    /// Loads `silero/silero_vad.onnx` (checked against its pinned SHA-256) on one thread: a
    /// 32 ms chunk costs a fraction of a millisecond, and calls run in parallel.
    pub fn load(models: &Models, device: Device) -> Result<SileroModel, ModelError> {
        let (session, placement) = onnx::session(models, "silero-vad", MODEL_FILE, 1, device)?;
        Ok(SileroModel {
            session,
            placement,
            costs: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Where it runs, and why not on the GPU when that was asked for.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// A fresh endpointer for one call (any frame length: it cuts its own 512-sample chunks).
    pub fn start(&self, settings: SileroSettings) -> SileroVad {
        SileroVad {
            model: self.clone(),
            settings,
            pending: Vec::with_capacity(CHUNK * 2),
            context: [0.0; CONTEXT],
            state: vec![0.0; STATE_LEN],
            in_speech: false,
            speech_ms: 0.0,
            silence_ms: 0.0,
            failed: None,
            heard_ms: 0.0,
            last_speech_ms: 0.0,
            began_ms: 0.0,
        }
    }

    /// Wall-clock cost of every model call so far (ns), for the per-chunk cost figures.
    pub fn chunk_costs_ns(&self) -> Vec<u64> {
        self.costs.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Speech probability of one chunk; updates `state` in place.
    fn probability(
        &self,
        context: &[f32; CONTEXT],
        chunk: &[f32],
        state: &mut Vec<f32>,
    ) -> Result<f32, String> {
        let mut input = Vec::with_capacity(CONTEXT + CHUNK);
        input.extend_from_slice(context);
        input.extend_from_slice(chunk);
        let input =
            Tensor::from_array(([1usize, CONTEXT + CHUNK], input)).map_err(|e| e.to_string())?;
        let st = Tensor::from_array(([2usize, 1, 128], std::mem::take(state)))
            .map_err(|e| e.to_string())?;
        let sr = Tensor::from_array((Vec::<usize>::new(), vec![i64::from(SAMPLE_RATE)]))
            .map_err(|e| e.to_string())?;
        let began = Instant::now();
        let mut session = self.session.lock().map_err(|_| "VAD session poisoned")?;
        let outputs = session
            .run(ort::inputs!["input" => input, "state" => st, "sr" => sr])
            .map_err(|e| e.to_string())?;
        let (_, prob) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let (_, next) = outputs[1]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let p = *prob.first().ok_or("empty VAD output")?;
        *state = next.to_vec();
        drop(outputs);
        drop(session);
        if let Ok(mut costs) = self.costs.lock() {
            costs.push(began.elapsed().as_nanos() as u64);
        }
        Ok(p)
    }
}

fn chunk_ms() -> f64 {
    CHUNK as f64 * 1000.0 / f64::from(SAMPLE_RATE)
}

impl EndpointerFactory for SileroModel {
    fn name(&self) -> &str {
        "silero_vad"
    }

    fn endpointer(&self, _frame_ms: u32, profile: &Profile) -> Box<dyn Endpointer> {
        let settings = SileroSettings {
            threshold: profile.vad_threshold.unwrap_or(0.5),
            min_silence_ms: f64::from(profile.endpointing_ms),
            ..SileroSettings::default()
        };
        Box::new(self.start(settings))
    }
}

/// One call's Silero endpointer.
pub struct SileroVad {
    model: SileroModel,
    settings: SileroSettings,
    pending: Vec<f32>,
    context: [f32; CONTEXT],
    state: Vec<f32>,
    in_speech: bool,
    speech_ms: f64,
    silence_ms: f64,
    failed: Option<String>,
    /// Audio seen, ms.
    heard_ms: f64,
    /// End of the last chunk at or above the threshold, ms of audio.
    last_speech_ms: f64,
    /// Start of the run of chunks at or above the threshold that started speech.
    began_ms: f64,
}

impl SileroVad {
    /// Where the speech that was last heard ended, in ms of the call's audio: the middle of
    /// its last chunk at or above the threshold (the end lies somewhere in that chunk).
    pub fn last_speech_end_ms(&self) -> f64 {
        self.last_speech_ms - chunk_ms() / 2.0
    }

    /// Where the speech that was last started began, in ms of the call's audio: the middle
    /// of the first chunk of the run that started it.
    pub fn speech_began_ms(&self) -> f64 {
        self.began_ms + chunk_ms() / 2.0
    }

    /// Why the model stopped deciding, if it failed (the call then never ends speech by VAD
    /// and the turn is recorded as `no_speech_end` unless the STT ends it).
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn decide(&mut self, p: f32) -> Option<VadEvent> {
        let chunk_ms = chunk_ms();
        let s = self.settings;
        self.heard_ms += chunk_ms;
        if p >= s.threshold {
            self.last_speech_ms = self.heard_ms;
            self.silence_ms = 0.0;
            if self.speech_ms == 0.0 && !self.in_speech {
                self.began_ms = self.heard_ms - chunk_ms;
            }
            self.speech_ms += chunk_ms;
            if !self.in_speech && self.speech_ms >= s.min_speech_ms {
                self.in_speech = true;
                return Some(VadEvent::SpeechStart);
            }
        } else if p < s.threshold - 0.15 {
            if self.in_speech {
                self.silence_ms += chunk_ms;
                if self.silence_ms >= s.min_silence_ms {
                    self.in_speech = false;
                    self.speech_ms = 0.0;
                    self.silence_ms = 0.0;
                    return Some(VadEvent::SpeechEnd);
                }
            } else {
                self.speech_ms = 0.0;
            }
        }
        None
    }
}

impl Endpointer for SileroVad {
    fn name(&self) -> &str {
        "silero_vad"
    }

    fn push(&mut self, frame: &[i16]) -> Option<VadEvent> {
        if self.failed.is_some() {
            return None;
        }
        self.pending
            .extend(frame.iter().map(|&s| f32::from(s) / 32768.0));
        let mut event = None;
        while self.pending.len() >= CHUNK {
            let chunk: Vec<f32> = self.pending.drain(..CHUNK).collect();
            match self
                .model
                .probability(&self.context, &chunk, &mut self.state)
            {
                Ok(p) => {
                    self.context.copy_from_slice(&chunk[CHUNK - CONTEXT..]);
                    if let Some(e) = self.decide(p) {
                        event = Some(e);
                    }
                }
                Err(e) => {
                    self.failed = Some(e);
                    return None;
                }
            }
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;

    fn models() -> Option<Models> {
        let models = Models::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"));
        match models.verified("silero-vad", MODEL_FILE) {
            Ok(_) => Some(models),
            Err(e) if std::env::var("LATLAB_REQUIRE_MODELS").as_deref() != Ok("1") => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn finds_the_speech_of_a_smoke_call_where_the_manifest_says() {
        let Some(models) = models() else { return };
        let model = SileroModel::load(&models, Device::Cpu).unwrap();
        let dataset = Dataset::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../datasets/smoke"
        )))
        .unwrap();
        let mut worst = Vec::new();
        for call in &dataset.calls {
            let samples = call.load_samples().unwrap();
            let settings = SileroSettings {
                min_silence_ms: 300.0,
                ..SileroSettings::default()
            };
            let mut vad = model.start(settings);
            let mut events = Vec::new();
            for frame in samples.chunks(320) {
                match vad.push(frame) {
                    // A start: where the decision falls (end of this frame), in ms.
                    Some(VadEvent::SpeechStart) => {
                        events.push((VadEvent::SpeechStart, vad.speech_began_ms()))
                    }
                    // An end: where the speech it waited after ended.
                    Some(VadEvent::SpeechEnd) => {
                        events.push((VadEvent::SpeechEnd, vad.last_speech_end_ms()))
                    }
                    None => {}
                }
            }
            assert!(vad.failure().is_none(), "{:?}", vad.failure());
            let starts: Vec<f64> = events
                .iter()
                .filter(|(e, _)| *e == VadEvent::SpeechStart)
                .map(|(_, t)| *t)
                .collect();
            let ends: Vec<f64> = events
                .iter()
                .filter(|(e, _)| *e == VadEvent::SpeechEnd)
                .map(|(_, t)| *t)
                .collect();
            for turn in &call.turns {
                let (start, end) = (turn.start_ms as f64, turn.end_ms as f64);
                let ds = starts
                    .iter()
                    .map(|&t| t - start)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()));
                let de = ends
                    .iter()
                    .map(|&t| t - end)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()));
                worst.push((call.id.clone(), start, end, ds, de));
            }
        }
        // Silero's probability covers a 32 ms chunk and its recurrent state holds speech a
        // few chunks past the last word, so ends run late (about +60..+170 ms on these noisy
        // synthetic calls) and a noisy robot voice now and then starts early or late. So: every
        // turn is found, most boundaries (>= 80 %) lie within 100 ms of the manifest, and the
        // median error is within 100 ms.
        let mut errors = Vec::new();
        for (id, start, end, ds, de) in &worst {
            let (Some(ds), Some(de)) = (ds, de) else {
                panic!("{id}: turn {start}..{end} ms not found (start {ds:?}, end {de:?})");
            };
            eprintln!("{id} {start:>6}..{end:<6} start {ds:+5.0} ms  end {de:+5.0} ms");
            errors.extend([ds.abs(), de.abs()]);
        }
        errors.sort_by(f64::total_cmp);
        let within = errors.iter().filter(|e| **e <= 100.0).count();
        let median = errors[errors.len() / 2];
        assert!(
            within * 5 >= errors.len() * 4,
            "{within} of {} boundaries within 100 ms",
            errors.len()
        );
        assert!(median <= 100.0, "median boundary error {median} ms");
        let costs = model.chunk_costs_ns();
        assert!(!costs.is_empty());
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lock.toml"),
            "[[model]]\nname = \"silero-vad\"\nfiles = { \"silero/silero_vad.onnx\" = \"00\" }\n",
        )
        .unwrap();
        let err = SileroModel::load(&Models::at(dir.path()), Device::Cpu).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("silero/silero_vad.onnx"), "{text}");
        assert!(text.contains("fetch.py silero-vad"), "{text}");
    }
}
