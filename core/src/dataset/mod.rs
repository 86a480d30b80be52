//! Recorded calls: a folder with `manifest.jsonl`, one call per line, and its WAV files.
//!
//! Loading validates everything a run depends on (the file exists, the WAV is what the
//! manifest says, the turns lie inside the audio and do not overlap) so that a bad dataset
//! fails before the first frame is sent, with an error naming the manifest file and line.
//! The format is documented in `docs/datasets.md`.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name of a dataset's manifest inside its folder.
pub const MANIFEST_FILE: &str = "manifest.jsonl";

/// A loaded, validated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The dataset's folder.
    pub dir: PathBuf,
    /// The manifest file the calls were read from.
    pub manifest_path: PathBuf,
    /// The calls, in manifest order.
    pub calls: Vec<Call>,
}

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Unique id within the dataset.
    pub id: String,
    /// Absolute or manifest-relative-resolved path of the WAV file.
    pub audio_path: PathBuf,
    /// Sample rate of the WAV file (Hz).
    pub sample_rate: u32,
    /// Length of the audio in milliseconds.
    pub duration_ms: u64,
    /// The user's turns, in time order.
    pub turns: Vec<Turn>,
    /// Line of the manifest this call came from (1-based).
    pub line: usize,
    /// Free-form metadata (voice, band, noise level).
    pub meta: serde_json::Value,
}

/// One user utterance inside a call, in milliseconds from the start of the recording.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Start of the user's speech (ms).
    pub start_ms: u64,
    /// End of the user's speech (ms): the anchor of every latency of this turn.
    pub end_ms: u64,
    /// What the user said.
    pub text: String,
    /// What an agent should reply, when the dataset knows.
    #[serde(default)]
    pub reply: Option<String>,
    /// The tool an agent should call to answer this turn, when it needs one (the emulator's
    /// LLM answers such a turn with that call; `docs/datasets.md`).
    #[serde(default)]
    pub tool: Option<ExpectedTool>,
}

/// A tool call a dataset turn expects.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedTool {
    /// The function's name.
    pub name: String,
    /// Its arguments (a JSON object).
    #[serde(default)]
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// What the tool returns, when the dataset scripts it (the emulator's tool API answers
    /// with it; otherwise with a generated record).
    #[serde(default)]
    pub result: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLine {
    id: String,
    audio: String,
    sample_rate: u32,
    turns: Vec<Turn>,
    #[serde(default)]
    meta: serde_json::Value,
}

/// Where in a manifest something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The manifest file.
    pub manifest: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.manifest.display(), self.line)
    }
}

/// Everything that can be wrong with a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The manifest could not be read at all.
    #[error("cannot read dataset manifest {path}: {source}")]
    ManifestUnreadable {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest holds no calls.
    #[error("{path}: the manifest holds no calls")]
    Empty {
        /// The manifest path.
        path: PathBuf,
    },
    /// A line is not valid JSON or does not have the manifest's shape.
    #[error("{at}: invalid manifest line: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What serde said.
        message: String,
    },
    /// A line is well-formed but its content is invalid.
    #[error("{at}: call {call:?}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// The call's id.
        call: String,
        /// What is wrong.
        message: String,
    },
    /// A WAV file is missing, unreadable or not what the manifest says.
    #[error("{at}: call {call:?}: audio file {audio}: {message}")]
    Audio {
        /// Where.
        at: Location,
        /// The call's id.
        call: String,
        /// The WAV path.
        audio: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl Dataset {
    /// Loads and validates the dataset in `dir` (which holds `manifest.jsonl`).
    pub fn load(dir: &Path) -> Result<Dataset, DatasetError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| {
            DatasetError::ManifestUnreadable {
                path: manifest_path.clone(),
                source,
            }
        })?;
        let mut calls = Vec::new();
        let mut ids = HashSet::new();
        for (index, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let at = Location {
                manifest: manifest_path.clone(),
                line: index + 1,
            };
            let parsed: ManifestLine =
                serde_json::from_str(raw).map_err(|e| DatasetError::Syntax {
                    at: at.clone(),
                    message: e.to_string(),
                })?;
            let call = validate_line(dir, at, parsed)?;
            if !ids.insert(call.id.clone()) {
                return Err(DatasetError::Invalid {
                    at: Location {
                        manifest: manifest_path.clone(),
                        line: call.line,
                    },
                    call: call.id,
                    message: "duplicate call id".into(),
                });
            }
            calls.push(call);
        }
        if calls.is_empty() {
            return Err(DatasetError::Empty {
                path: manifest_path,
            });
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            manifest_path,
            calls,
        })
    }

    /// The call with this id.
    pub fn call(&self, id: &str) -> Option<&Call> {
        self.calls.iter().find(|c| c.id == id)
    }

    /// Total number of user turns over all calls.
    pub fn turn_count(&self) -> usize {
        self.calls.iter().map(|c| c.turns.len()).sum()
    }
}

fn validate_line(dir: &Path, at: Location, line: ManifestLine) -> Result<Call, DatasetError> {
    let invalid = |message: String| DatasetError::Invalid {
        at: at.clone(),
        call: line.id.clone(),
        message,
    };
    if line.id.is_empty()
        || !line
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "id must be non-empty and use only A-Z a-z 0-9 . _ -".into(),
        ));
    }
    if line.sample_rate < 8000 {
        return Err(invalid(format!(
            "sample_rate {} is below 8000 Hz",
            line.sample_rate
        )));
    }
    if line.turns.is_empty() {
        return Err(invalid("a call needs at least one turn".into()));
    }
    let audio_path = dir.join(&line.audio);
    let audio_err = |message: String| DatasetError::Audio {
        at: at.clone(),
        call: line.id.clone(),
        audio: audio_path.clone(),
        message,
    };
    let info = probe_wav(&audio_path).map_err(audio_err)?;
    if info.sample_rate != line.sample_rate {
        return Err(audio_err(format!(
            "sample rate is {} Hz but the manifest says {} Hz",
            info.sample_rate, line.sample_rate
        )));
    }
    let duration_ms = info.frames * 1000 / u64::from(info.sample_rate);
    let mut previous_end = None;
    for (i, turn) in line.turns.iter().enumerate() {
        let n = i + 1;
        if turn.text.trim().is_empty() {
            return Err(invalid(format!("turn {n}: text is empty")));
        }
        if turn.start_ms >= turn.end_ms {
            return Err(invalid(format!(
                "turn {n}: start_ms {} is not before end_ms {}",
                turn.start_ms, turn.end_ms
            )));
        }
        if turn.end_ms > duration_ms {
            return Err(invalid(format!(
                "turn {n}: end_ms {} is outside the audio, which lasts {duration_ms} ms",
                turn.end_ms
            )));
        }
        if let Some(prev) = previous_end
            && turn.start_ms < prev
        {
            return Err(invalid(format!(
                "turn {n}: starts at {} ms, before the previous turn ends ({prev} ms): turns must be in order and must not overlap",
                turn.start_ms
            )));
        }
        previous_end = Some(turn.end_ms);
    }
    Ok(Call {
        id: line.id,
        audio_path,
        sample_rate: line.sample_rate,
        duration_ms,
        turns: line.turns,
        line: at.line,
        meta: line.meta,
    })
}

/// What a valid dataset WAV looks like: its rate and its length in sample frames.
#[derive(Debug, Clone, Copy)]
pub struct WavInfo {
    /// Sample rate (Hz).
    pub sample_rate: u32,
    /// Number of sample frames in the data chunk.
    pub frames: u64,
}

/// Checks that `path` is a mono 16-bit PCM WAV whose data chunk is complete.
pub fn probe_wav(path: &Path) -> Result<WavInfo, String> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            _ => format!("cannot read: {e}"),
        });
    }
    let mut reader =
        hound::WavReader::open(path).map_err(|e| format!("not a valid WAV file: {e}"))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format!(
            "must be 16-bit integer PCM, found {} bits {:?}",
            spec.bits_per_sample, spec.sample_format
        ));
    }
    if spec.channels != 1 {
        return Err(format!("must be mono, found {} channels", spec.channels));
    }
    let frames = u64::from(reader.duration());
    // hound trusts the data chunk's declared length; a cut file only shows when read to the end.
    let read = reader.samples::<i16>().take_while(Result::is_ok).count() as u64;
    if read < frames {
        return Err(format!(
            "truncated: the data chunk declares {frames} samples but only {read} can be read"
        ));
    }
    Ok(WavInfo {
        sample_rate: spec.sample_rate,
        frames,
    })
}

impl Call {
    /// Reads the call's samples (16-bit mono PCM).
    pub fn load_samples(&self) -> Result<Vec<i16>, DatasetError> {
        let err = |message: String| DatasetError::Audio {
            at: Location {
                manifest: PathBuf::from(MANIFEST_FILE),
                line: self.line,
            },
            call: self.id.clone(),
            audio: self.audio_path.clone(),
            message,
        };
        let reader = hound::WavReader::open(&self.audio_path).map_err(|e| err(e.to_string()))?;
        reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(format!("cannot decode samples: {e}")))
    }
}

#[cfg(test)]
mod tests;
