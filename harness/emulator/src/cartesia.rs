//! The emulated Cartesia text-to-speech WebSocket (`GET /tts/websocket`) on the TTS listener,
//! with the ElevenLabs endpoints' timings (`[tts]`: `ttfb`, `chunk_ms`, `chunk_gap`,
//! `leading_silence_ms`, `ms_per_char`) and faults.
//!
//! A socket carries any number of contexts at once, told apart by `context_id`. A context's
//! text arrives in one request (`continue: false`) or in pieces (`continue: true`, ended by
//! `continue: false`, often with an empty transcript). The emulator speaks text as soon as it
//! holds whole words: on each request it commits the text up to the last whitespace (all of
//! it once `continue` is false) and schedules that segment's audio. The first segment's first
//! chunk is due `ttfb` after it was committed, after `leading_silence_ms` of silence; each
//! later chunk `chunk_gap` after the one before, and a later segment starts no earlier than
//! `chunk_gap` after its commit. `done` follows the last chunk once the text has ended.
//! `{context_id, cancel: true}` stops a context silently. `max_buffer_delay_ms` is accepted
//! and ignored: the emulator never waits for more text than a word.
//!
//! Faults: `refuse` at accept (the listener), `http_5xx` answers the upgrade with 503 (drawn
//! per socket); per context, `stall` goes silent and `disconnect` drops the socket (both after
//! half of the first segment's chunks), and `malformed` sends one bad message in place of the
//! first chunk — invalid JSON, a chunk whose data is not base64, or an `error` message with
//! status 500, picked by the seed — then nothing more for that context.
//!
//! Seeding: a socket's draw from the seed, the session header and the socket's ordinal in the
//! session; a context's from the seed, the session, the context's ordinal in the session and
//! its first transcript piece — never from `context_id` (random) or arrival times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use latlab_core::audio::{AudioProbe, Container};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::audio;
use crate::config::TtsConfig;
use crate::faults::{Fault, Faults};
use crate::seed::{self, Stream};
use crate::trace::Mark;
use crate::tts::{MAX_SPEECH_MS, SERVICE, TtsState};

/// The sample rates the emulator speaks (Cartesia's raw PCM rates).
const SAMPLE_RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// What the Cartesia handler shares beyond the TTS service's state.
pub(crate) struct CartesiaState {
    tts: Arc<TtsState>,
    /// Sockets opened per session, so the n-th socket of a session draws the same fault.
    sockets: Mutex<HashMap<String, u64>>,
    /// Contexts opened per session, so the n-th context draws the same timings.
    contexts: Arc<Mutex<HashMap<String, u64>>>,
}

/// The Cartesia route, sharing the TTS service's state.
pub(crate) fn router(tts: Arc<TtsState>) -> Router {
    let state = Arc::new(CartesiaState {
        tts,
        sockets: Mutex::default(),
        contexts: Arc::default(),
    });
    Router::new()
        .route("/tts/websocket", get(websocket))
        .with_state(state)
}

fn next_ordinal(map: &Mutex<HashMap<String, u64>>, session: &str) -> u64 {
    let mut seen = map.lock().unwrap_or_else(|p| p.into_inner());
    let n = seen.entry(session.to_string()).or_insert(0);
    *n += 1;
    *n - 1
}

fn refuse(status: StatusCode, title: &str, message: &str) -> Response {
    let code = title.to_lowercase().replace(' ', "_");
    let body = json!({ "title": title, "message": message, "error_code": code });
    (status, axum::Json(body)).into_response()
}

async fn websocket(
    State(state): State<Arc<CartesiaState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let tts = &state.tts;
    let session = crate::session_of(&headers).to_string();
    if let Some(expected) = &tts.config.api_key {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let given = header("x-api-key")
            .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
            .or_else(|| query.get("api_key").map(String::as_str))
            .or_else(|| query.get("access_token").map(String::as_str));
        match given {
            None => {
                return refuse(StatusCode::UNAUTHORIZED, "Unauthorized", "No API key given");
            }
            Some(key) if key.trim() != expected => {
                return refuse(StatusCode::FORBIDDEN, "Forbidden", "Invalid API key");
            }
            Some(_) => {}
        }
    }
    // Cartesia asks for a version (`Cartesia-Version`, or `cartesia_version`, which wins);
    // the emulator accepts any, and none, as older clients omit it.
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let ordinal = next_ordinal(&state.sockets, &session);
    let key = [session.as_bytes(), b"\nsocket\n", &ordinal.to_le_bytes()].concat();
    let upgrade_faults = Faults {
        http_5xx: tts.config.faults.http_5xx,
        ..Faults::default()
    };
    let mut rng = seed::request_rng(tts.seed, SERVICE, &key, Stream::Fault);
    if upgrade_faults.draw(&mut rng) == Fault::Http5xx {
        tts.counters.request();
        tts.counters.fault(Fault::Http5xx);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "The service is temporarily unavailable. (emulated)",
        );
    }
    let contexts = Arc::clone(&state.contexts);
    let tts = Arc::clone(tts);
    upgrade.on_upgrade(move |socket| serve(socket, tts, contexts, session))
}

/// A generation request (or a cancel) as the emulator reads it.
#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    cancel: bool,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    transcript: Option<String>,
    #[serde(default)]
    voice: Option<serde_json::Value>,
    #[serde(default)]
    output_format: Option<OutputFormat>,
    #[serde(rename = "continue", default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct OutputFormat {
    container: String,
    #[serde(default)]
    encoding: Option<String>,
    sample_rate: u32,
}

/// What the socket's loop is told by its contexts.
enum Out {
    Send(String),
    /// Drop the socket without a close frame.
    Abort,
}

/// One scheduled message of a context.
struct Due {
    at: Instant,
    text: String,
    /// Mark the wire trace's first audio when this is sent.
    first_audio: bool,
    /// Drop the socket instead of sending.
    abort: bool,
}

/// A context being spoken.
struct Context {
    queue: mpsc::UnboundedSender<Due>,
    task: tokio::task::JoinHandle<()>,
    sample_rate: u32,
    /// Text received and not yet spoken (no whitespace after it yet).
    pending: String,
    /// Characters spoken so far.
    chars: u64,
    /// When the last scheduled message is due.
    cursor: Option<Instant>,
    timing: ChaCha8Rng,
    content: ChaCha8Rng,
    fault: Fault,
    malformed: u32,
    probe: AudioProbe,
    audible: bool,
    /// The fault fired or the input ended: nothing more is scheduled.
    closed: bool,
}

async fn serve(
    mut socket: WebSocket,
    tts: Arc<TtsState>,
    ordinals: Arc<Mutex<HashMap<String, u64>>>,
    session: String,
) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Out>();
    let mut contexts: HashMap<String, Context> = HashMap::new();
    let stop = tts.shutdown.clone().wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            message = socket.recv() => {
                let text = match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                };
                let reply = receive(text.as_str(), &tts, &ordinals, &session, &mut contexts, &out_tx);
                if let Some(reply) = reply
                    && socket.send(Message::Text(reply.into())).await.is_err()
                {
                    break;
                }
            }
            out = out_rx.recv() => match out {
                Some(Out::Send(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                // Dropping the socket closes TCP without a close frame.
                Some(Out::Abort) | None => break,
            },
            () = &mut stop => break,
        }
    }
    for context in contexts.into_values() {
        context.task.abort();
    }
}

fn error_message(context_id: Option<&str>, status: u16, title: &str, message: &str) -> String {
    json!({
        "type": "error",
        "done": true,
        "status_code": status,
        "title": title,
        "message": message,
        "error": format!("{title}: {message}"),
        "context_id": context_id,
    })
    .to_string()
}

/// Handles one client message; returns an immediate reply (an error) when there is one.
fn receive(
    text: &str,
    tts: &Arc<TtsState>,
    ordinals: &Mutex<HashMap<String, u64>>,
    session: &str,
    contexts: &mut HashMap<String, Context>,
    out: &mpsc::UnboundedSender<Out>,
) -> Option<String> {
    let request: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => return Some(error_message(None, 400, "Invalid request", &e.to_string())),
    };
    let Some(id) = request.context_id.clone() else {
        let message = "context_id is required";
        return Some(error_message(None, 400, "Invalid request", message));
    };
    if request.cancel {
        if let Some(context) = contexts.remove(&id) {
            context.task.abort();
        }
        return None;
    }
    let now = Instant::now();
    if !contexts.contains_key(&id) {
        match open(&request, tts, ordinals, session, out) {
            Ok(context) => {
                contexts.insert(id.clone(), context);
            }
            Err(why) => return Some(error_message(Some(&id), 400, "Invalid request", &why)),
        }
    }
    let context = contexts.get_mut(&id)?;
    if context.closed {
        return None;
    }
    context
        .pending
        .push_str(request.transcript.as_deref().unwrap_or(""));
    let cut = if request.more {
        // Up to and including the last whitespace: whole words only.
        context
            .pending
            .char_indices()
            .rfind(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8())
    } else {
        context.pending.len()
    };
    let segment: String = context.pending.drain(..cut).collect();
    if !segment.is_empty() {
        speak_segment(context, &segment, now, &tts.config, &id, out);
    }
    if !request.more && !context.closed {
        context.closed = true;
        let message = if context.chars == 0 {
            error_message(
                Some(&id),
                400,
                "Invalid request",
                "transcript must not be empty",
            )
        } else {
            json!({ "type": "done", "done": true, "status_code": 206, "context_id": id })
                .to_string()
        };
        let _ = context.queue.send(Due {
            at: context.cursor.unwrap_or(now),
            text: message,
            first_audio: false,
            abort: false,
        });
    }
    None
}

/// Registers a new context: its draws and the task that sends its messages on time.
fn open(
    request: &Request,
    tts: &Arc<TtsState>,
    ordinals: &Mutex<HashMap<String, u64>>,
    session: &str,
    out: &mpsc::UnboundedSender<Out>,
) -> Result<Context, String> {
    if request.model_id.as_deref().is_none_or(str::is_empty) {
        return Err("model_id is required".into());
    }
    if request.voice.is_none() {
        return Err("voice is required".into());
    }
    let format = request
        .output_format
        .as_ref()
        .ok_or("output_format is required")?;
    if format.container != "raw" || format.encoding.as_deref() != Some("pcm_s16le") {
        return Err(format!(
            "the emulator speaks container \"raw\" with encoding \"pcm_s16le\" only, not {:?}/{:?}",
            format.container, format.encoding
        ));
    }
    if !SAMPLE_RATES.contains(&format.sample_rate) {
        return Err(format!(
            "sample_rate {} is not one of {SAMPLE_RATES:?}",
            format.sample_rate
        ));
    }
    tts.trace.mark(session, Mark::TtsRequest);
    tts.counters.request();
    let ordinal = next_ordinal(ordinals, session);
    let key = [
        session.as_bytes(),
        b"\ncontext\n",
        &ordinal.to_le_bytes(),
        b"\n",
        request.transcript.as_deref().unwrap_or("").as_bytes(),
    ]
    .concat();
    // 5xx is the upgrade's fault; a context draws the mid-stream ones.
    let context_faults = Faults {
        http_5xx: 0.0,
        ..tts.config.faults
    };
    let mut fault_rng = seed::request_rng(tts.seed, SERVICE, &key, Stream::Fault);
    let fault = context_faults.draw(&mut fault_rng);
    tts.counters.fault(fault);
    let (queue, due) = mpsc::unbounded_channel();
    let task = tokio::spawn(send_on_time(
        due,
        out.clone(),
        Arc::clone(tts),
        session.to_string(),
    ));
    Ok(Context {
        queue,
        task,
        sample_rate: format.sample_rate,
        pending: String::new(),
        chars: 0,
        cursor: None,
        timing: seed::request_rng(tts.seed, SERVICE, &key, Stream::Timing),
        content: seed::request_rng(tts.seed, SERVICE, &key, Stream::Content),
        fault,
        malformed: fault_rng.random_range(0..3),
        probe: AudioProbe::new(Container::RawPcm, format.sample_rate),
        audible: false,
        closed: false,
    })
}

/// Schedules the audio of one committed segment of text.
fn speak_segment(
    context: &mut Context,
    text: &str,
    now: Instant,
    config: &TtsConfig,
    id: &str,
    out: &mpsc::UnboundedSender<Out>,
) {
    let chars = text.chars().count() as u64;
    let first = context.cursor.is_none();
    if (context.chars + chars) * u64::from(config.ms_per_char) > MAX_SPEECH_MS {
        context.closed = true;
        let why = format!(
            "the emulator speaks at most {} s per context",
            MAX_SPEECH_MS / 1000
        );
        let _ = out.send(Out::Send(error_message(
            Some(id),
            400,
            "Invalid request",
            &why,
        )));
        return;
    }
    context.chars += chars;
    let lead = if first { config.leading_silence_ms } else { 0 };
    let speech_ms = chars * u64::from(config.ms_per_char);
    let samples = audio::synthesize(&mut context.content, context.sample_rate, lead, speech_ms);
    let pcm = audio::pcm_bytes(&samples);
    let per_chunk =
        audio::ms_to_samples(context.sample_rate, u64::from(config.chunk_ms)).max(1) * 2;
    let pieces: Vec<&[u8]> = pcm.chunks(per_chunk).collect();
    let mut at = match context.cursor {
        None => now + config.ttfb.sample(&mut context.timing),
        Some(cursor) => {
            let gap = config.chunk_gap.sample(&mut context.timing);
            (cursor + gap).max(now + gap)
        }
    };
    let faulty = first && context.fault != Fault::None;
    // A stall or disconnect fires after half the first segment's chunks; malformed at once.
    let cut = match context.fault {
        _ if !faulty => pieces.len(),
        Fault::Malformed => 1,
        _ => pieces.len().div_ceil(2).max(1),
    };
    for (i, piece) in pieces.iter().enumerate().take(cut) {
        if i > 0 {
            at += config.chunk_gap.sample(&mut context.timing);
        }
        let first_audio =
            !context.audible && context.probe.push(piece).is_ok_and(|f| f.first_audible);
        context.audible |= first_audio;
        let text = if faulty && context.fault == Fault::Malformed {
            malformed(context.malformed, id)
        } else {
            json!({
                "type": "chunk",
                "data": base64::engine::general_purpose::STANDARD.encode(piece),
                "done": false,
                "status_code": 206,
                "step_time": 0,
                "context_id": id,
            })
            .to_string()
        };
        let _ = context.queue.send(Due {
            at,
            text,
            first_audio,
            abort: false,
        });
    }
    context.cursor = Some(at);
    if faulty {
        context.closed = true;
        if context.fault == Fault::Disconnect {
            let _ = context.queue.send(Due {
                at,
                text: String::new(),
                first_audio: false,
                abort: true,
            });
        }
    }
}

/// The bad message of a `malformed` fault: 0 invalid JSON, 1 data that is not base64, 2 an
/// `error` message.
fn malformed(which: u32, id: &str) -> String {
    match which {
        0 => "{\"type\": \"chunk\", \"data\": broken".to_string(),
        1 => json!({
            "type": "chunk",
            "data": "%%not base64%%",
            "done": false,
            "status_code": 206,
            "context_id": id,
        })
        .to_string(),
        _ => error_message(
            Some(id),
            500,
            "Internal Server Error",
            "generation failed (emulated)",
        ),
    }
}

/// Sends a context's messages at their due times, in order.
async fn send_on_time(
    mut due: mpsc::UnboundedReceiver<Due>,
    out: mpsc::UnboundedSender<Out>,
    tts: Arc<TtsState>,
    session: String,
) {
    while let Some(item) = due.recv().await {
        tokio::time::sleep_until(item.at).await;
        if item.abort {
            let _ = out.send(Out::Abort);
            return;
        }
        if out.send(Out::Send(item.text)).is_err() {
            return;
        }
        if item.first_audio {
            tts.trace.mark(&session, Mark::TtsFirstAudio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_messages_are_what_they_say() {
        assert!(serde_json::from_str::<serde_json::Value>(&malformed(0, "a")).is_err());
        let bad: serde_json::Value = serde_json::from_str(&malformed(1, "a")).unwrap();
        let data = bad["data"].as_str().unwrap();
        assert!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .is_err()
        );
        let error: serde_json::Value = serde_json::from_str(&malformed(2, "a")).unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["context_id"], "a");
    }
}
