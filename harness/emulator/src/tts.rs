//! The emulated ElevenLabs text-to-speech endpoints: `POST /v1/text-to-speech/{voice_id}/stream`
//! (chunked, timed) and `POST /v1/text-to-speech/{voice_id}` (whole body). Audio is raw PCM or
//! WAV of speech-like tone; what is sent and when is planned up front by [`plan_speech`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use latlab_core::audio::{AudioProbe, Container};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::Shutdown;
use crate::audio;
use crate::config::TtsConfig;
use crate::faults::Fault;
use crate::seed::{self, Stream};
use crate::stats::ServiceCounters;
use crate::stream::{Ending, Timed, timed_body};
use crate::trace::{ChunkMark, Mark};

/// The service name used in seeding.
pub const SERVICE: &str = "tts";

/// The longest speech one request may ask for: 10 minutes (10,000 characters, ElevenLabs'
/// per-request limit, at the default 60 ms per character). The audio is made in memory before
/// the first byte, so the text must not decide how much memory that takes.
pub const MAX_SPEECH_MS: u64 = 600_000;

/// A supported `output_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFormat {
    /// Samples per second.
    pub sample_rate: u32,
    /// Whether a 44-byte WAV header precedes the samples.
    pub wav: bool,
}

impl OutputFormat {
    /// Parses `pcm_<rate>` or `wav_<rate>` for the rates ElevenLabs offers.
    pub fn parse(s: &str) -> Option<OutputFormat> {
        let (kind, rate) = s.split_once('_')?;
        let sample_rate: u32 = rate.parse().ok()?;
        if ![8_000, 16_000, 22_050, 24_000, 44_100].contains(&sample_rate) {
            return None;
        }
        match kind {
            "pcm" => Some(OutputFormat {
                sample_rate,
                wav: false,
            }),
            "wav" => Some(OutputFormat {
                sample_rate,
                wav: true,
            }),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        if self.wav { "audio/wav" } else { "audio/pcm" }
    }
}

/// Everything about one synthesis decided before the first byte.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechPlan {
    /// The body's chunks (the WAV header, if any, opens the first) with their due offsets.
    pub chunks: Vec<Timed>,
    /// The chunk holding the first audible sample, by latlab's own measure of audible
    /// ([`latlab_core::audio::AudioProbe`]): the first audio a listener hears, after the
    /// header and the leading silence. `None` when no sample is audible.
    pub first_audible_chunk: Option<usize>,
    /// The fault drawn for this request.
    pub fault: Fault,
    /// The `request-id` header.
    pub request_id: String,
}

/// Plans the audio for `text` spoken by `voice_id` under `seed`.
pub fn plan_speech(
    seed: u64,
    session: &str,
    config: &TtsConfig,
    voice_id: &str,
    text: &str,
    format: OutputFormat,
) -> SpeechPlan {
    let key = [
        session.as_bytes(),
        b"\n",
        voice_id.as_bytes(),
        b"\n",
        text.as_bytes(),
    ]
    .concat();
    let speech_ms = text.chars().count() as u64 * u64::from(config.ms_per_char);
    let samples = audio::synthesize(
        &mut seed::request_rng(seed, SERVICE, &key, Stream::Content),
        format.sample_rate,
        config.leading_silence_ms,
        speech_ms,
    );
    let pcm = audio::pcm_bytes(&samples);
    let per_chunk = audio::ms_to_samples(format.sample_rate, u64::from(config.chunk_ms)).max(1) * 2;
    let mut timing = seed::request_rng(seed, SERVICE, &key, Stream::Timing);
    let mut at = config.ttfb.sample(&mut timing);
    let mut chunks = Vec::with_capacity(pcm.len() / per_chunk + 1);
    for (i, piece) in pcm.chunks(per_chunk).enumerate() {
        if i > 0 {
            at += config.chunk_gap.sample(&mut timing);
        }
        let bytes = if i == 0 && format.wav {
            let mut first = audio::wav_header(format.sample_rate, pcm.len() as u32).to_vec();
            first.extend_from_slice(piece);
            Bytes::from(first)
        } else {
            Bytes::copy_from_slice(piece)
        };
        chunks.push(Timed { at, bytes });
    }
    let fault = config
        .faults
        .draw(&mut seed::request_rng(seed, SERVICE, &key, Stream::Fault));
    SpeechPlan {
        first_audible_chunk: first_audible_chunk(&chunks, format),
        chunks,
        fault,
        request_id: seed::hex_id(seed, SERVICE, &key, 32),
    }
}

/// The index of the chunk in which latlab's probe finds the first audible sample: the
/// chunk whose arrival latlab stamps as the first audible audio (`tts_first_audible_ns`).
fn first_audible_chunk(chunks: &[Timed], format: OutputFormat) -> Option<usize> {
    let container = if format.wav {
        Container::Wav
    } else {
        Container::RawPcm
    };
    let mut probe = AudioProbe::new(container, format.sample_rate);
    chunks
        .iter()
        .position(|c| probe.push(&c.bytes).is_ok_and(|f| f.first_audible))
}

/// What the handlers share.
pub(crate) struct TtsState {
    /// The run's seed.
    pub seed: u64,
    /// This service's config.
    pub config: TtsConfig,
    /// This service's counters.
    pub counters: Arc<ServiceCounters>,
    /// Fires when the emulator stops.
    pub shutdown: Shutdown,
    /// The wire trace.
    pub trace: Arc<crate::trace::WireTrace>,
}

/// The router of the TTS service: ElevenLabs' HTTP endpoints and Cartesia's WebSocket
/// ([`crate::cartesia`]), on one listener with one config.
pub(crate) fn router(state: Arc<TtsState>) -> Router {
    Router::new()
        .route("/v1/text-to-speech/{voice_id}/stream", post(streamed))
        .route("/v1/text-to-speech/{voice_id}", post(whole))
        .with_state(Arc::clone(&state))
        .merge(crate::cartesia::router(state))
}

#[derive(Deserialize)]
struct SpeechRequest {
    text: String,
}

fn detail(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "detail": { "status": kind, "message": message } });
    (status, axum::Json(body)).into_response()
}

async fn streamed(
    state: State<Arc<TtsState>>,
    path: Path<String>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, path, query, headers, body, true).await
}

async fn whole(
    state: State<Arc<TtsState>>,
    path: Path<String>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(state, path, query, headers, body, false).await
}

async fn serve(
    State(state): State<Arc<TtsState>>,
    Path(voice_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
    streaming: bool,
) -> Response {
    let start = Instant::now();
    state
        .trace
        .mark(crate::session_of(&headers), Mark::TtsRequest);
    state.counters.request();
    if let Some(expected) = &state.config.api_key {
        let given = headers.get("xi-api-key").and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return detail(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Invalid API key",
            );
        }
    }
    let format_name = query
        .get("output_format")
        .map_or("mp3_44100_128", String::as_str);
    let Some(format) = OutputFormat::parse(format_name) else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_output_format",
            &format!(
                "output_format {format_name:?} is not supported by the emulator: use pcm_<rate> or wav_<rate> with rate 8000, 16000, 22050, 24000 or 44100"
            ),
        );
    };
    let request: SpeechRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return detail(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("invalid JSON body: {e}"),
            );
        }
    };
    if request.text.trim().is_empty() {
        return detail(
            StatusCode::BAD_REQUEST,
            "invalid_text",
            "text must not be empty",
        );
    }
    let speech_ms = request.text.chars().count() as u64 * u64::from(state.config.ms_per_char);
    if speech_ms > MAX_SPEECH_MS {
        return detail(
            StatusCode::BAD_REQUEST,
            "max_character_limit_exceeded",
            &format!(
                "text of {} characters is {} s of speech; the emulator speaks at most {} s per request",
                request.text.chars().count(),
                speech_ms / 1000,
                MAX_SPEECH_MS / 1000
            ),
        );
    }
    let plan = plan_speech(
        state.seed,
        crate::session_of(&headers),
        &state.config,
        &voice_id,
        &request.text,
        format,
    );
    state.counters.fault(plan.fault);
    let shutdown = state.shutdown.clone();
    let request_id = HeaderValue::from_str(&plan.request_id).ok();
    let mut content_type = format.content_type();
    let response_body = match plan.fault {
        Fault::Http5xx => {
            return detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable. (emulated)",
            );
        }
        Fault::Malformed => {
            content_type = "application/json";
            let at = plan.chunks.first().map_or(Duration::ZERO, |c| c.at);
            let chunks = vec![Timed {
                at,
                bytes: Bytes::from_static(b"{\"oops\""),
            }];
            timed_body(start, chunks, Ending::Complete, shutdown, None)
        }
        Fault::Stall | Fault::Disconnect => {
            let cut = plan.chunks.len().div_ceil(2).max(1);
            let ending = if plan.fault == Fault::Stall {
                Ending::StallAfter(cut)
            } else {
                Ending::DisconnectAfter(cut)
            };
            let chunks = if streaming {
                plan.chunks
            } else {
                // A whole body goes out at once, so the fault cuts it in half.
                let end = plan.chunks.last().map_or(Duration::ZERO, |c| c.at);
                let all: Vec<u8> = plan.chunks.iter().flat_map(|c| c.bytes.to_vec()).collect();
                let mut pieces = vec![Timed {
                    at: end,
                    bytes: Bytes::from(all),
                }];
                let half = pieces[0].bytes.len() / 2;
                pieces[0].bytes.truncate(half);
                pieces
            };
            timed_body(start, chunks, ending, shutdown, None)
        }
        Fault::None if streaming => {
            let mark = plan.first_audible_chunk.map(|chunk| ChunkMark {
                trace: Arc::clone(&state.trace),
                session: crate::session_of(&headers).to_string(),
                mark: Mark::TtsFirstAudio,
                chunk,
            });
            timed_body(start, plan.chunks, Ending::Complete, shutdown, mark)
        }
        Fault::None => {
            let end = plan.chunks.last().map_or(Duration::ZERO, |c| c.at);
            tokio::select! {
                _ = tokio::time::sleep_until(start + end) => {}
                _ = shutdown.wait() => {}
            }
            let all: Vec<u8> = plan.chunks.iter().flat_map(|c| c.bytes.to_vec()).collect();
            Body::from(all)
        }
    };
    let mut response = Response::new(response_body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(id) = request_id {
        headers.insert("request-id", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            OutputFormat::parse("wav_16000"),
            Some(OutputFormat {
                sample_rate: 16_000,
                wav: true
            })
        );
        assert!(OutputFormat::parse("pcm_44100").is_some());
        assert!(OutputFormat::parse("mp3_44100_128").is_none());
        assert!(OutputFormat::parse("pcm_12345").is_none());
    }

    #[test]
    fn plan_sizes_and_timing() {
        let config = TtsConfig {
            ttfb: crate::timing::Timing::constant(100.0),
            ..TtsConfig::default()
        };
        let format = OutputFormat::parse("wav_16000").unwrap();
        let plan = plan_speech(3, "", &config, "v", "hello", format);
        let total: usize = plan.chunks.iter().map(|c| c.bytes.len()).sum();
        assert_eq!(total, 44 + 2 * 16 * (120 + 5 * 60 + 50));
        assert_eq!(plan.chunks[0].at, Duration::from_millis(100));
        assert_eq!(plan.chunks[1].at, Duration::from_millis(115));
        assert_eq!(plan.chunks[1].bytes.len(), 2 * 1600);
        assert_eq!(plan, plan_speech(3, "", &config, "v", "hello", format));
    }

    #[test]
    fn the_first_audible_chunk_follows_the_leading_silence() {
        let format = OutputFormat::parse("wav_16000").unwrap();
        let plan = |leading_silence_ms, chunk_ms| {
            let config = TtsConfig {
                leading_silence_ms,
                chunk_ms,
                ..TtsConfig::default()
            };
            plan_speech(3, "", &config, "v", "hello there", format).first_audible_chunk
        };
        // 120 ms of silence in 100 ms chunks: the voice starts in the second chunk.
        assert_eq!(plan(120, 100), Some(1));
        assert_eq!(plan(0, 100), Some(0));
        assert_eq!(plan(250, 50), Some(5));
        assert_eq!(plan(120, 1), Some(120));
    }
}
