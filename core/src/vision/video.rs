//! Video datasets: a folder with `manifest.json` naming each video's file, frame rate,
//! frame count and size, and optional reference annotations per frame (`docs/datasets.md`).
//!
//! [`VideoDataset::load`] checks everything it can before a run starts — the manifest's
//! fields, that each file exists, that `ffprobe` agrees with the declared frame rate and size,
//! that every annotation lies inside its frame — and names the file and field of anything
//! wrong. [`decode`] turns one video into RGB24 [`Frame`]s with an `ffmpeg` child process;
//! decoding happens once, before the replay, and is **off the clock** (a camera hands over
//! decoded frames), but it is timed and reported ([`DecodeFacts`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{DecodeFacts, Frame};
use crate::backends::local::models::sha256_file;

/// The manifest's file name inside a video dataset folder.
pub const MANIFEST: &str = "manifest.json";

/// Decoded frames latlab keeps in memory at most (all streams share them).
pub const MAX_DECODED_BYTES: u64 = 4 << 30;

/// A video dataset's manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoManifest {
    /// Dataset name.
    pub name: String,
    /// What it holds.
    #[serde(default)]
    pub description: String,
    /// How the reference annotations were made and checked.
    #[serde(default)]
    pub reference: Option<String>,
    /// The videos.
    pub videos: Vec<VideoEntry>,
}

/// One video of the manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoEntry {
    /// Id a scenario names it by.
    pub id: String,
    /// The file, relative to the dataset folder.
    pub file: String,
    /// Recorded frame rate.
    pub fps: f64,
    /// Frame count.
    pub frames: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SHA-256 of the file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Where it comes from.
    #[serde(default)]
    pub source: Option<String>,
    /// Its licence.
    #[serde(default)]
    pub licence: Option<String>,
    /// Reference annotations (JSON lines), relative to the dataset folder.
    #[serde(default)]
    pub annotations: Option<String>,
}

/// One reference box, in the frame's pixels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefBox {
    /// Class name (`person`).
    pub class: String,
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotationLine {
    frame: u32,
    boxes: Vec<RefBox>,
}

/// A video ready to decode, with its reference annotations (frame index → boxes; a frame
/// without an entry was not annotated).
#[derive(Debug, Clone)]
pub struct Video {
    /// Its place in the manifest's `videos`.
    pub index: usize,
    /// Its manifest entry.
    pub entry: VideoEntry,
    /// The file.
    pub path: PathBuf,
    /// Reference boxes by frame.
    pub annotations: Arc<BTreeMap<u32, Vec<RefBox>>>,
}

/// A loaded, checked video dataset.
#[derive(Debug, Clone)]
pub struct VideoDataset {
    /// Its folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: VideoManifest,
    /// The videos, in manifest order.
    pub videos: Vec<Video>,
}

/// What is wrong with a video dataset or a video; each names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest or an annotation line is not valid JSON of the expected shape.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong (serde names the field).
        message: String,
    },
    /// A field's value is wrong.
    #[error("{path}: {field}: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field (`videos[0].fps`, `frame 12 box 1`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// `ffmpeg` or `ffprobe` could not run or could not read the video.
    #[error("{path}: {message}")]
    Decode {
        /// The video file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
}

impl VideoDataset {
    /// Loads `dir/manifest.json` and checks every video and annotation file.
    pub fn load(dir: &Path) -> Result<VideoDataset, VideoError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| VideoError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: VideoManifest =
            serde_json::from_str(&text).map_err(|e| VideoError::Parse {
                path: path.clone(),
                line: e.line(),
                message: e.to_string(),
            })?;
        let field = |i: usize, name: &str, message: String| VideoError::Field {
            path: path.clone(),
            field: format!("videos[{i}].{name}"),
            message,
        };
        if manifest.videos.is_empty() {
            return Err(VideoError::Field {
                path: path.clone(),
                field: "videos".into(),
                message: "the dataset lists no video".into(),
            });
        }
        let mut videos = Vec::new();
        for (i, entry) in manifest.videos.iter().enumerate() {
            if !(entry.fps.is_finite() && entry.fps > 0.0 && entry.fps <= 1000.0) {
                return Err(field(
                    i,
                    "fps",
                    format!("{} is not in (0, 1000]", entry.fps),
                ));
            }
            if entry.frames == 0 {
                return Err(field(i, "frames", "must be at least 1".into()));
            }
            if entry.width == 0 || entry.height == 0 || entry.width > 16384 || entry.height > 16384
            {
                return Err(field(
                    i,
                    "width",
                    format!("{}x{} is not a frame size", entry.width, entry.height),
                ));
            }
            if manifest.videos[..i].iter().any(|v| v.id == entry.id) {
                return Err(field(i, "id", format!("{:?} is listed twice", entry.id)));
            }
            let file = dir.join(&entry.file);
            if !file.is_file() {
                return Err(field(
                    i,
                    "file",
                    format!("{} does not exist", file.display()),
                ));
            }
            if let Some(want) = &entry.sha256 {
                let got = sha256_file(&file).map_err(|source| VideoError::Io {
                    path: file.clone(),
                    source,
                })?;
                if !got.eq_ignore_ascii_case(want) {
                    return Err(field(
                        i,
                        "sha256",
                        format!(
                            "{} hashes to {got}, not the manifest's {want}: not the recorded video",
                            file.display()
                        ),
                    ));
                }
            }
            let annotations = match &entry.annotations {
                Some(a) => read_annotations(&dir.join(a), entry)?,
                None => BTreeMap::new(),
            };
            videos.push(Video {
                index: i,
                entry: entry.clone(),
                path: file,
                annotations: Arc::new(annotations),
            });
        }
        Ok(VideoDataset {
            dir: dir.to_path_buf(),
            manifest,
            videos,
        })
    }

    /// The video with this id.
    pub fn video(&self, id: &str) -> Option<&Video> {
        self.videos.iter().find(|v| v.entry.id == id)
    }
}

/// Reads and checks a video's annotation lines: frames in range and increasing, boxes
/// inside the frame (half a pixel of slack) and not empty.
fn read_annotations(
    path: &Path,
    entry: &VideoEntry,
) -> Result<BTreeMap<u32, Vec<RefBox>>, VideoError> {
    let text = std::fs::read_to_string(path).map_err(|source| VideoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = BTreeMap::new();
    let (w, h) = (entry.width as f32 + 0.5, entry.height as f32 + 0.5);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = n + 1;
        let parsed: AnnotationLine = serde_json::from_str(line).map_err(|e| VideoError::Parse {
            path: path.to_path_buf(),
            line: line_no,
            message: e.to_string(),
        })?;
        let bad = |field: String, message: String| VideoError::Field {
            path: path.to_path_buf(),
            field: format!("line {line_no}: {field}"),
            message,
        };
        if parsed.frame >= entry.frames {
            return Err(bad(
                "frame".into(),
                format!(
                    "frame {} is past the video's end ({} frames)",
                    parsed.frame, entry.frames
                ),
            ));
        }
        if let Some((&last, _)) = out.last_key_value()
            && parsed.frame <= last
        {
            return Err(bad(
                "frame".into(),
                format!(
                    "frame {} comes after frame {last}: frames must be annotated once each, in order",
                    parsed.frame
                ),
            ));
        }
        for (b, r) in parsed.boxes.iter().enumerate() {
            let inside = [r.x1, r.y1, r.x2, r.y2].iter().all(|v| v.is_finite())
                && r.x1 >= -0.5
                && r.y1 >= -0.5
                && r.x2 <= w
                && r.y2 <= h
                && r.x2 > r.x1
                && r.y2 > r.y1;
            if !inside {
                return Err(bad(
                    format!("boxes[{b}]"),
                    format!(
                        "({}, {}, {}, {}) is not a box inside the {}x{} frame",
                        r.x1, r.y1, r.x2, r.y2, entry.width, entry.height
                    ),
                ));
            }
            if r.class.is_empty() {
                return Err(bad(format!("boxes[{b}].class"), "is empty".into()));
            }
        }
        out.insert(parsed.frame, parsed.boxes);
    }
    Ok(out)
}

/// What `ffprobe` says about a video's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Frame rate (`r_frame_rate`).
    pub fps: f64,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Asks `ffprobe` for a video's frame rate and size and checks them against its manifest
/// entry: a contradiction is an error naming the field.
pub fn probe(video: &Video, manifest: &Path) -> Result<Probe, VideoError> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate",
            "-of",
            "json",
        ])
        .arg(&video.path)
        .output()
        .map_err(|e| VideoError::Decode {
            path: video.path.clone(),
            message: format!("running ffprobe: {e} (install ffmpeg: apt-get install ffmpeg)"),
        })?;
    if !out.status.success() {
        return Err(VideoError::Decode {
            path: video.path.clone(),
            message: format!(
                "ffprobe cannot read it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| VideoError::Decode {
            path: video.path.clone(),
            message: format!("ffprobe's answer: {e}"),
        })?;
    let stream = v["streams"].get(0).ok_or_else(|| VideoError::Decode {
        path: video.path.clone(),
        message: "it has no video stream".into(),
    })?;
    let fps = stream["r_frame_rate"]
        .as_str()
        .and_then(|r| {
            let (n, d) = r.split_once('/')?;
            let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
            (d > 0.0).then(|| n / d)
        })
        .unwrap_or(0.0);
    let p = Probe {
        fps,
        width: stream["width"].as_u64().unwrap_or(0) as u32,
        height: stream["height"].as_u64().unwrap_or(0) as u32,
    };
    let i = video.index;
    let e = &video.entry;
    if (p.fps - e.fps).abs() > 0.01 * e.fps {
        return Err(VideoError::Field {
            path: manifest.to_path_buf(),
            field: format!("videos[{i}].fps"),
            message: format!(
                "{} says {} fps; the file ({}) is {:.3} fps",
                MANIFEST,
                e.fps,
                video.path.display(),
                p.fps
            ),
        });
    }
    if (p.width, p.height) != (e.width, e.height) {
        return Err(VideoError::Field {
            path: manifest.to_path_buf(),
            field: format!("videos[{i}].width"),
            message: format!(
                "{} says {}x{}; the file ({}) is {}x{}",
                MANIFEST,
                e.width,
                e.height,
                video.path.display(),
                p.width,
                p.height
            ),
        });
    }
    Ok(p)
}

/// The first line of `ffmpeg -version`, or "ffmpeg (version unknown)".
pub fn ffmpeg_version() -> String {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split(" Copyright").next().unwrap_or(l).to_string())
        })
        .unwrap_or_else(|| "ffmpeg (version unknown)".into())
}

/// Decodes a video into RGB24 frames at its own size with an `ffmpeg` child process, timed.
/// The frame count must match the manifest's `frames`. Refuses videos whose decoded frames
/// would take more than [`MAX_DECODED_BYTES`].
pub fn decode(video: &Video) -> Result<(Arc<[Frame]>, DecodeFacts), VideoError> {
    let e = &video.entry;
    let frame_bytes = e.width as usize * e.height as usize * 3;
    let total = frame_bytes as u64 * u64::from(e.frames);
    if total > MAX_DECODED_BYTES {
        return Err(VideoError::Decode {
            path: video.path.clone(),
            message: format!(
                "{} frames of {}x{} take {:.1} GiB decoded, more than latlab keeps in memory ({} GiB): cut a shorter clip",
                e.frames,
                e.width,
                e.height,
                total as f64 / (1u64 << 30) as f64,
                MAX_DECODED_BYTES >> 30
            ),
        });
    }
    let began = Instant::now();
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&video.path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| VideoError::Decode {
            path: video.path.clone(),
            message: format!("running ffmpeg: {err} (install ffmpeg: apt-get install ffmpeg)"),
        })?;
    let mut stdout = child.stdout.take().ok_or_else(|| VideoError::Decode {
        path: video.path.clone(),
        message: "ffmpeg's output pipe is missing".into(),
    })?;
    let mut frames = Vec::with_capacity(e.frames as usize);
    let mut extra = 0u64;
    loop {
        let mut buf = vec![0u8; frame_bytes];
        match read_full(&mut stdout, &mut buf) {
            Ok(0) => break,
            Ok(n) if n < frame_bytes => {
                return Err(VideoError::Decode {
                    path: video.path.clone(),
                    message: format!(
                        "ffmpeg's output ended inside frame {} ({n} of {frame_bytes} bytes)",
                        frames.len()
                    ),
                });
            }
            Ok(_) => {}
            Err(err) => {
                return Err(VideoError::Decode {
                    path: video.path.clone(),
                    message: format!("reading ffmpeg's output: {err}"),
                });
            }
        }
        if frames.len() < e.frames as usize {
            frames.push(Frame {
                index: frames.len() as u32,
                width: e.width,
                height: e.height,
                rgb: Arc::from(buf),
            });
        } else {
            extra += 1;
        }
    }
    let mut stderr = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|err| VideoError::Decode {
        path: video.path.clone(),
        message: format!("waiting for ffmpeg: {err}"),
    })?;
    let elapsed = began.elapsed();
    if !status.success() {
        return Err(VideoError::Decode {
            path: video.path.clone(),
            message: format!("ffmpeg failed ({status}): {}", stderr.trim()),
        });
    }
    let decoded = frames.len() as u64 + extra;
    if decoded != u64::from(e.frames) {
        return Err(VideoError::Decode {
            path: video.path.clone(),
            message: format!(
                "decoded {decoded} frames; its manifest entry ({}) says frames = {}",
                e.id, e.frames
            ),
        });
    }
    let total_ms = elapsed.as_secs_f64() * 1e3;
    let facts = DecodeFacts {
        decoder: format!("{}, rawvideo rgb24 over a pipe", ffmpeg_version()),
        frames: decoded,
        total_ms,
        fps: if total_ms > 0.0 {
            decoded as f64 / (total_ms / 1e3)
        } else {
            0.0
        },
    };
    Ok((Arc::from(frames), facts))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn manifest(extra: &str) -> String {
        format!(
            r#"{{"name": "t", "videos": [{{"id": "v", "file": "v.mp4", "fps": 10.0, "frames": 5, "width": 64, "height": 48{extra}}}]}}"#
        )
    }

    #[test]
    fn a_missing_file_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), MANIFEST, &manifest(""));
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("videos[0].file"), "{err}");
        assert!(err.contains("v.mp4"), "{err}");
    }

    #[test]
    fn an_unknown_field_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            MANIFEST,
            "{\"name\": \"t\",\n \"videos\": [],\n \"fsp\": 3}",
        );
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("manifest.json:3"), "{err}");
        assert!(err.contains("fsp"), "{err}");
    }

    #[test]
    fn a_video_that_is_not_the_recorded_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "v.mp4", "other bytes");
        write(
            dir.path(),
            MANIFEST,
            &manifest(&format!(r#", "sha256": "{}""#, "0".repeat(64))),
        );
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("videos[0].sha256"), "{err}");
    }

    #[test]
    fn a_bad_fps_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "v.mp4", "");
        write(
            dir.path(),
            MANIFEST,
            &manifest("").replace("\"fps\": 10.0", "\"fps\": -1"),
        );
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("videos[0].fps"), "{err}");
    }

    #[test]
    fn annotations_outside_the_frame_or_past_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "v.mp4", "");
        write(
            dir.path(),
            MANIFEST,
            &manifest(r#", "annotations": "a.jsonl""#),
        );
        write(
            dir.path(),
            "a.jsonl",
            "{\"frame\": 0, \"boxes\": [{\"class\": \"person\", \"x1\": 1, \"y1\": 1, \"x2\": 10, \"y2\": 10}]}\n{\"frame\": 1, \"boxes\": [{\"class\": \"person\", \"x1\": 1, \"y1\": 1, \"x2\": 70, \"y2\": 10}]}\n",
        );
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a.jsonl"), "{err}");
        assert!(err.contains("line 2: boxes[0]"), "{err}");
        write(
            dir.path(),
            "a.jsonl",
            "{\"frame\": 2, \"boxes\": []}\n{\"frame\": 1, \"boxes\": []}\n",
        );
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 2: frame"), "{err}");
        write(dir.path(), "a.jsonl", "{\"frame\": 9, \"boxes\": []}\n");
        let err = VideoDataset::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("past the video's end"), "{err}");
        write(
            dir.path(),
            "a.jsonl",
            "{\"frame\": 0, \"boxes\": []}\n{\"frame\": 2, \"boxes\": [{\"class\": \"person\", \"x1\": 1, \"y1\": 2, \"x2\": 3, \"y2\": 4}]}\n",
        );
        let ds = VideoDataset::load(dir.path()).unwrap();
        let v = ds.video("v").unwrap();
        assert_eq!(v.annotations.len(), 2);
        assert_eq!(v.annotations[&2][0].class, "person");
    }
}
