//! Piper text-to-speech: a VITS voice on ONNX Runtime, phonemes from espeak-ng.
//!
//! The reply is split into sentences ([`SentenceSplitter`]); each sentence is phonemized by
//! `espeak-ng -q -v <voice> --ipa` and synthesized on a blocking thread, and its audio (raw
//! 16-bit little-endian mono PCM at the voice's rate, 22.05 kHz for `en_US-joe-medium`) is
//! sent as soon as it is ready, so the time to first audio is the first sentence's synthesis,
//! not the whole reply's.
//!
//! Phonemization follows Piper's own (`piper.phonemize_espeak` over espeak-ng's C API):
//! every clause's IPA is followed by its punctuation (`,` `:` `;` then a space; `.` `?` `!`
//! end a sentence, which is synthesized on its own), each code point is a phoneme, unknown
//! phonemes are skipped, and a sentence becomes `^ _ p1 _ p2 _ … $`. The command-line
//! `espeak-ng` prints one line per clause but drops the punctuation, so the punctuation is
//! recovered from the text with espeak-ng's clause rules (`clause_breaks` below); when the
//! two disagree the clauses are joined with spaces and only the final punctuation is kept.
//! Known differences from Piper: no Unicode NFD decomposition (espeak-ng's English IPA is
//! already decomposed), no `[[ raw phonemes ]]` blocks, no vowel-cluster merging, and a space
//! (not nothing) after a clause espeak-ng ends without punctuation (an ellipsis).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use async_trait::async_trait;
use bytes::Bytes;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::onnx::{self, Placement};
use super::{Device, ModelError, Models, default_threads};
use crate::audio::Container;
use crate::stage::{AudioStream, TextToSpeech, TtsRequest};
use crate::text::SentenceSplitter;
use crate::timing::{ErrorKind, StageError};

/// The voices latlab knows: (voice, model name in `models/lock.toml`).
const VOICES: &[(&str, &str)] = &[("en_US-joe-medium", "piper-joe")];

/// The `models/lock.toml` model that holds `voice`, when latlab knows the voice.
pub fn voice_model(voice: &str) -> Option<&'static str> {
    VOICES.iter().find(|(v, _)| *v == voice).map(|(_, m)| *m)
}

/// Scenario settings of the Piper backend (`[backends.tts] kind = "piper"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiperConfig {
    /// The voice: `piper/<voice>.onnx` and `.onnx.json` in the models folder.
    #[serde(default = "default_voice")]
    pub voice: String,
    /// ONNX Runtime intra-op threads of each synthesis.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Where the voice runs.
    #[serde(default)]
    pub device: Device,
    /// Phoneme length scale (> 1 speaks slower); default from the voice's `.onnx.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_scale: Option<f32>,
    /// Generator noise; default from the voice's `.onnx.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_scale: Option<f32>,
    /// Phoneme duration noise; default from the voice's `.onnx.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_w: Option<f32>,
    /// Sentences synthesized at once across all calls (one ONNX session each); a sentence
    /// waiting for a free slot waits inside its turn's latency.
    #[serde(default = "default_max_parallel")]
    pub max_parallel: usize,
}

fn default_voice() -> String {
    "en_US-joe-medium".into()
}
fn default_max_parallel() -> usize {
    1
}

impl Default for PiperConfig {
    fn default() -> PiperConfig {
        PiperConfig {
            voice: default_voice(),
            threads: default_threads(),
            device: Device::Cpu,
            length_scale: None,
            noise_scale: None,
            noise_w: None,
            max_parallel: default_max_parallel(),
        }
    }
}

/// The parts of a Piper voice's `.onnx.json` latlab uses.
#[derive(Debug, Deserialize)]
struct VoiceFile {
    audio: VoiceAudio,
    espeak: VoiceEspeak,
    #[serde(default)]
    inference: VoiceInference,
    #[serde(default)]
    phoneme_type: Option<String>,
    #[serde(default)]
    phoneme_map: HashMap<String, Vec<String>>,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: u32,
}

#[derive(Debug, Deserialize)]
struct VoiceAudio {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct VoiceEspeak {
    voice: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct VoiceInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for VoiceInference {
    fn default() -> VoiceInference {
        // Piper's defaults.
        VoiceInference {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

/// Piper text-to-speech on a local voice.
#[derive(Clone)]
pub struct PiperTts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PiperTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperTts")
            .field("sample_rate", &self.inner.sample_rate)
            .field("sessions", &self.inner.sessions.len())
            .field("scales", &self.inner.scales)
            .field("placement", &self.inner.placement)
            .finish_non_exhaustive()
    }
}

struct Inner {
    sessions: Vec<Arc<Mutex<Session>>>,
    slots: Arc<Semaphore>,
    phonemizer: Phonemizer,
    ids: PhonemeIds,
    /// `[noise_scale, length_scale, noise_w]`, the order of the model's `scales` input.
    scales: [f32; 3],
    sample_rate: u32,
    speakers: u32,
    placement: Placement,
}

impl PiperTts {
    /// Loads the voice `config.voice` from `models` (checked against `models/lock.toml`),
    /// with `config.max_parallel` ONNX sessions.
    pub fn new(config: PiperConfig, models: &Models) -> Result<PiperTts, ModelError> {
        let model = voice_model(&config.voice).ok_or_else(|| {
            ModelError::Lock(format!(
                "unknown Piper voice {:?}; latlab pins: {}",
                config.voice,
                VOICES
                    .iter()
                    .map(|(v, _)| *v)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let onnx_file = format!("piper/{}.onnx", config.voice);
        let json_file = format!("{onnx_file}.json");
        let json_path = models.verified(model, &json_file)?;
        let voice = read_voice_file(&json_path)?;
        let parallel = config.max_parallel.max(1);
        let mut sessions = Vec::with_capacity(parallel);
        let mut placement = None;
        for _ in 0..parallel {
            let (session, placed) =
                onnx::session(models, model, &onnx_file, config.threads, config.device)?;
            sessions.push(session);
            placement.get_or_insert(placed);
        }
        let inference = &voice.inference;
        Ok(PiperTts {
            inner: Arc::new(Inner {
                sessions,
                slots: Arc::new(Semaphore::new(parallel)),
                phonemizer: Phonemizer::new(voice.espeak.voice.clone()),
                ids: PhonemeIds::new(voice.phoneme_id_map, voice.phoneme_map),
                scales: [
                    config.noise_scale.unwrap_or(inference.noise_scale),
                    config.length_scale.unwrap_or(inference.length_scale),
                    config.noise_w.unwrap_or(inference.noise_w),
                ],
                sample_rate: voice.audio.sample_rate,
                speakers: voice.num_speakers,
                placement: placement.unwrap_or(Placement {
                    device: Device::Cpu,
                    note: None,
                }),
            }),
        })
    }

    /// Where the voice runs (with a note when it does not run where it was asked to).
    pub fn placement(&self) -> &Placement {
        &self.inner.placement
    }

    /// The voice's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.inner.sample_rate
    }

    #[cfg(test)]
    fn with_espeak(self, bin: impl Into<PathBuf>) -> PiperTts {
        let mut inner = Arc::into_inner(self.inner).expect("not shared yet");
        inner.phonemizer.bin = bin.into();
        PiperTts {
            inner: Arc::new(inner),
        }
    }
}

fn read_voice_file(path: &std::path::Path) -> Result<VoiceFile, ModelError> {
    let fail = |message: String| ModelError::Load {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let voice: VoiceFile =
        serde_json::from_str(&text).map_err(|e| fail(format!("not a Piper voice file: {e}")))?;
    if let Some(kind) = voice.phoneme_type.as_deref()
        && kind != "espeak"
    {
        return Err(fail(format!(
            "phoneme_type {kind:?}: latlab's Piper backend only phonemizes with espeak-ng"
        )));
    }
    for symbol in [PAD, BOS, EOS] {
        if !voice.phoneme_id_map.contains_key(symbol) {
            return Err(fail(format!("phoneme_id_map has no {symbol:?}")));
        }
    }
    if voice.audio.sample_rate == 0 {
        return Err(fail("sample_rate 0".into()));
    }
    Ok(voice)
}

impl Inner {
    /// Runs the voice on one sentence's phoneme ids; 16-bit PCM, peak-normalized like Piper.
    fn synthesize(&self, ids: &[i64]) -> Result<Vec<i16>, StageError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            StageError::new(ErrorKind::Inference, format!("piper {what}: {e}"))
        };
        let n = ids.len();
        let input = Tensor::from_array((vec![1i64, n as i64], ids.to_vec()))
            .map_err(|e| fail("input tensor", &e))?;
        let lengths = Tensor::from_array((vec![1i64], vec![n as i64]))
            .map_err(|e| fail("input tensor", &e))?;
        let scales = Tensor::from_array((vec![3i64], self.scales.to_vec()))
            .map_err(|e| fail("input tensor", &e))?;
        let mut inputs: Vec<(std::borrow::Cow<'_, str>, SessionInputValue<'_>)> = ort::inputs![
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        ];
        if self.speakers > 1 {
            let sid = Tensor::from_array((vec![1i64], vec![0i64]))
                .map_err(|e| fail("input tensor", &e))?;
            inputs.push(("sid".into(), sid.into()));
        }
        let mut session = self.free_session();
        let outputs = session.run(inputs).map_err(|e| fail("inference", &e))?;
        let (_, audio) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| fail("output", &e))?;
        Ok(to_pcm(audio))
    }

    /// A session nobody is running (the semaphore guarantees there is one).
    fn free_session(&self) -> MutexGuard<'_, Session> {
        for session in &self.sessions {
            match session.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.sessions[0].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Float audio to 16-bit PCM, scaled so the peak is full scale (as Piper does).
fn to_pcm(audio: &[f32]) -> Vec<i16> {
    let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let gain = 32767.0 / peak.max(0.01);
    audio
        .iter()
        .map(|s| (s * gain).clamp(-32767.0, 32767.0) as i16)
        .collect()
}

#[async_trait]
impl TextToSpeech for PiperTts {
    fn name(&self) -> &str {
        "piper"
    }

    async fn start(&self, request: &TtsRequest) -> Result<Box<dyn AudioStream>, StageError> {
        let mut splitter = SentenceSplitter::new();
        let mut sentences = splitter.push(&request.text);
        sentences.extend(splitter.finish());
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(produce(
            Arc::clone(&self.inner),
            sentences,
            request.streaming,
            tx,
        ));
        Ok(Box::new(PiperAudio {
            rx,
            task,
            sample_rate: self.inner.sample_rate,
        }))
    }
}

type Chunk = Result<Bytes, StageError>;

/// Synthesizes sentence after sentence, sending each one's audio as soon as it is ready
/// (or all of it at the end when not streaming); stops at the first error or when the
/// stream is dropped.
async fn produce(
    inner: Arc<Inner>,
    sentences: Vec<String>,
    streaming: bool,
    tx: mpsc::UnboundedSender<Chunk>,
) {
    let mut whole = Vec::new();
    for sentence in sentences {
        if tx.is_closed() {
            return;
        }
        let job = Arc::clone(&inner);
        let groups = match blocking(move || {
            let phonemes = job.phonemizer.phonemize(&sentence)?;
            Ok(phonemes
                .iter()
                .map(|p| job.ids.ids(p))
                .filter(|ids| ids.len() > 3)
                .collect::<Vec<_>>())
        })
        .await
        {
            Ok(g) => g,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for ids in groups {
            let Ok(slot) = Arc::clone(&inner.slots).acquire_owned().await else {
                let _ = tx.send(Err(StageError::new(
                    ErrorKind::Inference,
                    "piper: the synthesis slots were closed",
                )));
                return;
            };
            let job = Arc::clone(&inner);
            let pcm = match blocking(move || {
                let _slot = slot;
                job.synthesize(&ids)
            })
            .await
            {
                Ok(pcm) => pcm,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
            if streaming {
                if tx.send(Ok(Bytes::from(bytes))).is_err() {
                    return;
                }
            } else {
                whole.extend(bytes);
            }
        }
    }
    if !whole.is_empty() {
        let _ = tx.send(Ok(Bytes::from(whole)));
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, StageError> + Send + 'static,
) -> Result<T, StageError> {
    tokio::task::spawn_blocking(job).await.unwrap_or_else(|e| {
        Err(StageError::new(
            ErrorKind::Inference,
            format!("piper synthesis thread failed: {e}"),
        ))
    })
}

struct PiperAudio {
    rx: mpsc::UnboundedReceiver<Chunk>,
    task: JoinHandle<()>,
    sample_rate: u32,
}

impl Drop for PiperAudio {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl AudioStream for PiperAudio {
    fn container(&self) -> Container {
        Container::RawPcm
    }
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    async fn next_chunk(&mut self) -> Option<Result<Bytes, StageError>> {
        self.rx.recv().await
    }
}

// ---------------------------------------------------------------------------------------------
// Phonemes
// ---------------------------------------------------------------------------------------------

const PAD: &str = "_";
const BOS: &str = "^";
const EOS: &str = "$";

/// Text to Piper phonemes through the `espeak-ng` command.
#[derive(Debug, Clone)]
struct Phonemizer {
    bin: PathBuf,
    voice: String,
}

/// How espeak-ng ends a clause: the punctuation Piper keeps, and whether a sentence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Break {
    punct: Option<char>,
    sentence_end: bool,
}

impl Phonemizer {
    fn new(voice: String) -> Phonemizer {
        Phonemizer {
            bin: PathBuf::from("espeak-ng"),
            voice,
        }
    }

    /// The phonemes of `text`, one list per sentence (as espeak-ng ends sentences).
    fn phonemize(&self, text: &str) -> Result<Vec<Vec<String>>, StageError> {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let output = Command::new(&self.bin)
            .args(["-q", "-v", &self.voice, "--ipa", "--", &text])
            .output()
            .map_err(|e| {
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "{} not found: Piper needs espeak-ng for phonemes; install espeak-ng \
                         (Debian/Ubuntu: apt-get install espeak-ng)",
                        self.bin.display()
                    )
                } else {
                    format!("cannot run {}: {e}", self.bin.display())
                };
                StageError::new(ErrorKind::Inference, message)
            })?;
        if !output.status.success() {
            return Err(StageError::new(
                ErrorKind::Inference,
                format!(
                    "espeak-ng -v {} failed ({}): {}",
                    self.voice,
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Ok(assemble(&lines, &clause_breaks(&text)))
    }
}

/// Piper's sentences of phonemes from espeak-ng's clause lines and the text's clause breaks.
fn assemble(lines: &[&str], breaks: &[Break]) -> Vec<Vec<String>> {
    let clauses: Vec<(String, Break)> = if lines.len() == breaks.len() {
        lines
            .iter()
            .map(|l| l.to_string())
            .zip(breaks.iter().copied())
            .collect()
    } else {
        // espeak-ng split the text differently: one clause, ending as the text ends.
        let last = breaks.last().and_then(|b| b.punct);
        let end = Break {
            punct: last,
            sentence_end: true,
        };
        vec![(lines.join(" "), end)]
    };
    let mut sentences = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for (line, brk) in &clauses {
        current.extend(strip_language_flags(line).chars().map(String::from));
        if let Some(p) = brk.punct {
            current.push(p.to_string());
        }
        if !brk.sentence_end {
            current.push(" ".into());
        } else {
            while current.last().is_some_and(|p| p == " ") {
                current.pop();
            }
            if !current.is_empty() {
                sentences.push(std::mem::take(&mut current));
            }
        }
    }
    while current.last().is_some_and(|p| p == " ") {
        current.pop();
    }
    if !current.is_empty() {
        sentences.push(current);
    }
    sentences
}

/// Removes espeak-ng's language-switch flags, e.g. `(fr)`, as Piper does.
fn strip_language_flags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        match rest[open..].find(')') {
            Some(close) if close > 1 => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out
}

fn is_clause_punct(c: char) -> bool {
    matches!(c, '.' | ',' | '!' | '?' | ':' | ';')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '\u{201d}' | '\u{2019}')
}

/// Where espeak-ng ends the clauses of `text` (English rules): at `.` `,` `!` `?` `:` `;`
/// followed by white space (closing quotes and brackets in between) or the end of the
/// text, with the first mark of a run as the clause's punctuation; not at a `.` followed
/// by a lower-case word ("7 p.m. on Friday", "e.g. this"); an ellipsis ends a clause
/// without punctuation. Text after the last mark is a final clause without punctuation.
fn clause_breaks(text: &str) -> Vec<Break> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut out = Vec::new();
    let mut content = false;
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if !is_clause_punct(c) {
            content |= !c.is_whitespace();
            i += 1;
            continue;
        }
        let start = i;
        while i < n && is_clause_punct(chars[i]) {
            i += 1;
        }
        let run = &chars[start..i];
        let mut j = i;
        while j < n && is_closer(chars[j]) {
            j += 1;
        }
        let next_word = chars[j..].iter().find(|c| !c.is_whitespace());
        if next_word.is_some() && !chars[j].is_whitespace() {
            content = true; // "2,340", "2.5", "e.g": not a break
            continue;
        }
        let brk = if run.len() >= 3 && run.iter().all(|&c| c == '.') {
            Break {
                punct: None,
                sentence_end: false,
            }
        } else {
            match run[0] {
                '.' if next_word.is_some_and(|c| c.is_lowercase()) => continue,
                p @ ('.' | '!' | '?') => Break {
                    punct: Some(p),
                    sentence_end: true,
                },
                p => Break {
                    punct: Some(p),
                    sentence_end: false,
                },
            }
        };
        if content {
            out.push(brk);
            content = false;
        }
        i = j;
    }
    if content {
        out.push(Break {
            punct: None,
            sentence_end: true,
        });
    }
    out
}

/// Phonemes to the voice's ids.
#[derive(Debug, Clone)]
struct PhonemeIds {
    map: HashMap<String, Vec<i64>>,
    phoneme_map: HashMap<String, Vec<String>>,
}

impl PhonemeIds {
    fn new(map: HashMap<String, Vec<i64>>, phoneme_map: HashMap<String, Vec<String>>) -> Self {
        PhonemeIds { map, phoneme_map }
    }

    /// `^ _ p1 _ p2 _ … $` (Piper's `phonemes_to_ids`); phonemes the voice lacks are skipped.
    fn ids(&self, phonemes: &[String]) -> Vec<i64> {
        let pad = &self.map[PAD];
        let mut ids = self.map[BOS].clone();
        ids.extend(pad);
        let mapped = phonemes.iter().flat_map(|p| match self.phoneme_map.get(p) {
            Some(to) => to.as_slice(),
            None => std::slice::from_ref(p),
        });
        for p in mapped {
            if let Some(id) = self.map.get(p) {
                ids.extend(id);
                ids.extend(pad);
            }
        }
        ids.extend(&self.map[EOS]);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::AudioProbe;
    use std::time::Instant;

    fn require() -> bool {
        std::env::var("LATLAB_REQUIRE_MODELS").is_ok_and(|v| v == "1")
    }

    fn skip(why: &str) {
        assert!(!require(), "LATLAB_REQUIRE_MODELS=1 but {why}");
        eprintln!("SKIPPED: {why}");
    }

    fn espeak_available() -> bool {
        let ok = Command::new("espeak-ng")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            skip("espeak-ng is not installed (apt-get install espeak-ng)");
        }
        ok
    }

    fn models() -> Models {
        Models::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"))
    }

    /// The voice, or `None` (skipped) when the model or espeak-ng is absent.
    fn voice(config: PiperConfig) -> Option<PiperTts> {
        if let Err(e) = models().verified("piper-joe", "piper/en_US-joe-medium.onnx") {
            skip(&format!("the Piper voice is not there: {e}"));
            return None;
        }
        if !espeak_available() {
            return None;
        }
        Some(PiperTts::new(config, &models()).expect("load the voice"))
    }

    fn brk(punct: Option<char>, sentence_end: bool) -> Break {
        Break {
            punct,
            sentence_end,
        }
    }

    #[test]
    fn clause_breaks_follow_espeak() {
        let cases: &[(&str, &[Break])] = &[
            (
                "Hi, I'd like to book a table for 4 at 7 p.m. This Friday, please!",
                &[
                    brk(Some(','), false),
                    brk(Some('.'), true),
                    brk(Some(','), false),
                    brk(Some('!'), true),
                ],
            ),
            (
                "At 7 p.m. on Friday, please.",
                &[brk(Some(','), false), brk(Some('.'), true)],
            ),
            (
                "It costs 2,340 dollars, ok?",
                &[brk(Some(','), false), brk(Some('?'), true)],
            ),
            ("Wait... what?", &[brk(None, false), brk(Some('?'), true)]),
            (
                "Hello!! Really?!",
                &[brk(Some('!'), true), brk(Some('?'), true)],
            ),
            (
                "He said \"stop.\" Then left",
                &[brk(Some('.'), true), brk(None, true)],
            ),
            (
                "I'm e.g. fine; yes: 10:30.",
                &[
                    brk(Some(';'), false),
                    brk(Some(':'), false),
                    brk(Some('.'), true),
                ],
            ),
            ("Version 2.5 is out.", &[brk(Some('.'), true)]),
            (", ok", &[brk(None, true)]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(clause_breaks(text), *want, "{text:?}");
        }
    }

    #[test]
    fn clauses_keep_their_punctuation_and_sentences_split() {
        let lines = ["hˈaɪ", "ðɛɹ", "ɪz ɪt"];
        let breaks = clause_breaks("Hi, there. Is it?");
        let got = assemble(&lines, &breaks);
        let s: Vec<String> = got.iter().map(|s| s.concat()).collect();
        assert_eq!(s, vec!["hˈaɪ, ðɛɹ.", "ɪz ɪt?"]);
        // espeak-ng split differently: one sentence, final punctuation kept.
        let got = assemble(&["a", "b"], &clause_breaks("x y z."));
        assert_eq!(got.concat().concat(), "a b.");
        assert_eq!(strip_language_flags("(fr)ʒə(en) sˈeɪ"), "ʒə sˈeɪ");
    }

    #[test]
    fn ids_are_bos_pad_interleaved_eos_and_skip_unknowns() {
        let map: HashMap<String, Vec<i64>> = [
            ("_", 0),
            ("^", 1),
            ("$", 2),
            (" ", 3),
            ("h", 20),
            ("a", 14),
            ("ˈ", 120),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v]))
        .collect();
        let ids = PhonemeIds::new(map, HashMap::new());
        let phonemes: Vec<String> = "hˈa☃ a".chars().map(String::from).collect();
        assert_eq!(
            ids.ids(&phonemes),
            vec![1, 0, 20, 0, 120, 0, 14, 0, 3, 0, 14, 0, 2]
        );
    }

    #[test]
    fn pcm_is_peak_normalized() {
        assert_eq!(to_pcm(&[0.0, 0.5, -0.25]), vec![0, 32767, -16383]);
        // Near-silence is not blown up to full scale.
        assert_eq!(to_pcm(&[0.001]), vec![3276]);
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: PiperConfig = toml::from_str("").unwrap();
        assert_eq!(c, PiperConfig::default());
        assert_eq!(c.voice, "en_US-joe-medium");
        assert_eq!(c.max_parallel, 1);
        let c: PiperConfig =
            toml::from_str("device = \"cuda\"\nlength_scale = 1.2\nmax_parallel = 2").unwrap();
        assert_eq!(
            (c.device, c.length_scale, c.max_parallel),
            (Device::Cuda, Some(1.2), 2)
        );
        assert!(toml::from_str::<PiperConfig>("speed = 2").is_err());
    }

    #[test]
    fn a_missing_espeak_is_a_clear_inference_error() {
        let p = Phonemizer {
            bin: PathBuf::from("/nonexistent/espeak-ng"),
            voice: "en-us".into(),
        };
        let err = p.phonemize("Hello.").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Inference);
        assert!(err.message.contains("install espeak-ng"), "{}", err.message);
    }

    #[test]
    fn a_missing_voice_is_a_model_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lock.toml"),
            "[[model]]\nname = \"piper-joe\"\nfiles = { \"piper/en_US-joe-medium.onnx\" = \"PENDING\", \"piper/en_US-joe-medium.onnx.json\" = \"PENDING\" }\n",
        )
        .unwrap();
        let err = PiperTts::new(PiperConfig::default(), &Models::at(dir.path())).unwrap_err();
        assert!(matches!(err, ModelError::Missing { .. }), "{err}");
        let config = PiperConfig {
            voice: "xx_XX-nobody-low".into(),
            ..PiperConfig::default()
        };
        let err = PiperTts::new(config, &Models::at(dir.path())).unwrap_err();
        assert!(err.to_string().contains("en_US-joe-medium"), "{err}");
    }

    #[test]
    fn espeak_phonemes_through_the_voice_map() {
        if !espeak_available() {
            return;
        }
        let p = Phonemizer::new("en-us".into());
        let got = p.phonemize("Hi, I'd like a table. Is that okay?").unwrap();
        let s: Vec<String> = got.iter().map(|s| s.concat()).collect();
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].starts_with("hˈaɪ, "), "{s:?}");
        assert!(s[0].ends_with("tˈeɪbəl."), "{s:?}");
        assert!(s[1].ends_with('?'), "{s:?}");
    }

    struct Heard {
        chunks: usize,
        first_chunk_s: f64,
        done_s: f64,
        audio_s: f64,
        rms_dbfs: f64,
        probe: AudioProbe,
    }

    async fn speak(tts: &PiperTts, text: &str, streaming: bool) -> Heard {
        let request = TtsRequest {
            text: text.into(),
            streaming,
            reuse_connection: true,
            session: "test#0".into(),
        };
        let t0 = Instant::now();
        let mut stream = tts.start(&request).await.expect("start");
        assert_eq!(stream.container(), Container::RawPcm);
        assert_eq!(stream.sample_rate(), 22050);
        let mut probe = AudioProbe::new(stream.container(), stream.sample_rate());
        let mut pcm = Vec::new();
        let mut chunks = 0;
        let mut first_chunk_s = None;
        while let Some(chunk) = stream.next_chunk().await {
            let chunk = chunk.expect("chunk");
            first_chunk_s.get_or_insert(t0.elapsed().as_secs_f64());
            chunks += 1;
            probe.push(&chunk).unwrap();
            pcm.extend(
                chunk
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
        }
        Heard {
            chunks,
            first_chunk_s: first_chunk_s.expect("some audio"),
            done_s: t0.elapsed().as_secs_f64(),
            audio_s: probe.audio_ms() / 1000.0,
            rms_dbfs: crate::audio::frame_dbfs(&pcm),
            probe,
        }
    }

    const TWO_SENTENCES: &str = "Sure, your table for two is booked for Friday evening. Is there anything else I can help with?";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn speaks_audibly_sentence_by_sentence() {
        let Some(tts) = voice(PiperConfig::default()) else {
            return;
        };
        // Warm-up (first run allocates).
        speak(&tts, "Hello.", true).await;
        let heard = speak(&tts, TWO_SENTENCES, true).await;
        let chars = TWO_SENTENCES.chars().count() as f64;
        let ms_per_char = heard.audio_s * 1000.0 / chars;
        eprintln!(
            "piper: {} chunks, first audio after {:.0} ms, all after {:.0} ms, {:.2} s of audio \
             ({ms_per_char:.0} ms/char), RTF {:.3}, RMS {:.1} dBFS, lead {:?} ms",
            heard.chunks,
            heard.first_chunk_s * 1000.0,
            heard.done_s * 1000.0,
            heard.audio_s,
            heard.done_s / heard.audio_s,
            heard.rms_dbfs,
            heard.probe.lead_ms(),
        );
        assert!(heard.probe.audible(), "no audible sample");
        assert!(heard.rms_dbfs > -35.0, "RMS {:.1} dBFS", heard.rms_dbfs);
        // Natural speech is about 12-18 characters a second (55-85 ms a character).
        assert!(
            (40.0..=150.0).contains(&ms_per_char),
            "{ms_per_char:.0} ms per character"
        );
        assert!(heard.chunks >= 2, "{} chunks", heard.chunks);
        assert!(
            heard.first_chunk_s < heard.done_s * 0.9,
            "first chunk at {:.3} s, done at {:.3} s",
            heard.first_chunk_s,
            heard.done_s
        );
        // Not streaming: the same speech, in one piece at the end.
        let whole = speak(&tts, TWO_SENTENCES, false).await;
        assert_eq!(whole.chunks, 1);
        assert!((whole.audio_s / heard.audio_s - 1.0).abs() < 0.25);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_espeak_fails_the_stream() {
        let Some(tts) = voice(PiperConfig::default()) else {
            return;
        };
        let tts = tts.with_espeak("/nonexistent/espeak-ng");
        let request = TtsRequest {
            text: "Hello there.".into(),
            streaming: true,
            reuse_connection: true,
            session: "test#0".into(),
        };
        let mut stream = tts.start(&request).await.unwrap();
        let err = stream.next_chunk().await.unwrap().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Inference);
        assert!(err.message.contains("install espeak-ng"), "{}", err.message);
        assert!(stream.next_chunk().await.is_none());
    }
}
