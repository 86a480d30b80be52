//! The emulated Deepgram live transcription endpoint (`GET /v1/listen`, WebSocket).
//!
//! It knows what is said in each dataset call (the `tag` query parameter names the call) and
//! reveals it as audio arrives: interim results while a turn is heard, a final result once the
//! endpointing silence has been received, `UtteranceEnd`, `SpeechStarted`, `Finalize` and
//! `CloseStream` as Deepgram does. Decisions are driven only by received audio, never by the
//! wall clock; sends are queued with a sampled delay so a slow send never blocks receiving.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::SinkExt;
use latlab_core::dataset::{Dataset, Turn};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Shutdown;
use crate::config::SttConfig;
use crate::faults::Fault;
use crate::seed::{self, Stream};
use crate::stats::ServiceCounters;
use crate::trace::{Mark, WireTrace};

/// The service name used in seeding.
pub const SERVICE: &str = "stt";

/// Without endpointing, a segment is flushed as a (non-speech-final) final after this much audio
/// past the end of a turn.
const FLUSH_AFTER_MS: f64 = 1000.0;

/// Close code for a policy violation: the `tag` names no call of the dataset.
const CLOSE_UNKNOWN_TAG: u16 = 1008;

/// What the handlers share.
pub(crate) struct SttState {
    /// The run's seed.
    pub seed: u64,
    /// This service's config.
    pub config: SttConfig,
    /// The calls the emulator can transcribe.
    pub dataset: Option<Arc<Dataset>>,
    /// This service's counters.
    pub counters: Arc<ServiceCounters>,
    /// Fires when the emulator stops.
    pub shutdown: Shutdown,
    /// The wire trace.
    pub trace: Arc<crate::trace::WireTrace>,
    /// Connections seen per tag, so the n-th session of a call draws the same randomness.
    pub sessions_per_tag: Mutex<HashMap<String, u64>>,
}

/// The router of the STT service.
pub(crate) fn router(state: Arc<SttState>) -> Router {
    Router::new()
        .route("/v1/listen", get(listen))
        .with_state(state)
}

/// The query parameters of a live session that the emulator acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `model`.
    pub model: String,
    /// `sample_rate` of the linear16 audio.
    pub sample_rate: u32,
    /// `interim_results`.
    pub interim_results: bool,
    /// `endpointing` in ms, `None` when `endpointing=false`.
    pub endpointing_ms: Option<u64>,
    /// `utterance_end_ms`.
    pub utterance_end_ms: Option<u64>,
    /// `vad_events`.
    pub vad_events: bool,
    /// `tag`: the dataset call id.
    pub tag: Option<String>,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name} must be true or false, found {v:?}")),
    }
}

fn parse_int<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name} must be an integer, found {v:?}"))
}

impl Options {
    /// Reads the parameters the emulator understands; others are ignored, as Deepgram does.
    pub fn parse(query: &HashMap<String, String>) -> Result<Options, String> {
        let get = |k: &str| query.get(k).map(String::as_str);
        match get("encoding") {
            Some("linear16") => {}
            Some(other) => {
                return Err(format!(
                    "encoding {other:?} is not supported by the emulator: use linear16"
                ));
            }
            None => return Err("encoding is required: the emulator accepts only linear16".into()),
        }
        let sample_rate: u32 = match get("sample_rate") {
            Some(v) => parse_int("sample_rate", v)?,
            None => return Err("sample_rate is required with encoding=linear16".into()),
        };
        if sample_rate == 0 {
            return Err("sample_rate must be > 0".into());
        }
        if let Some(channels) = get("channels") {
            let channels: u32 = parse_int("channels", channels)?;
            if channels != 1 {
                return Err(format!(
                    "channels={channels} is not supported by the emulator: send mono audio"
                ));
            }
        }
        let flag = |k: &str| get(k).map_or(Ok(false), |v| parse_bool(k, v));
        let endpointing_ms = match get("endpointing") {
            None | Some("true") => Some(10),
            Some("false") => None,
            Some(v) => Some(parse_int("endpointing", v)?),
        };
        let utterance_end_ms = get("utterance_end_ms")
            .map(|v| parse_int("utterance_end_ms", v))
            .transpose()?;
        // Accepted but not acted on: the transcript is always punctuated as the dataset has it.
        flag("punctuate")?;
        flag("smart_format")?;
        Ok(Options {
            model: get("model").unwrap_or("nova-2").to_string(),
            sample_rate,
            interim_results: flag("interim_results")?,
            endpointing_ms,
            utterance_end_ms,
            vad_events: flag("vad_events")?,
            tag: get("tag").map(str::to_string),
        })
    }
}

fn deepgram_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let body = json!({ "err_code": code, "err_msg": message, "request_id": request_id });
    (status, axum::Json(body)).into_response()
}

async fn listen(
    State(state): State<Arc<SttState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    state.counters.request();
    let tag = query.get("tag").cloned().unwrap_or_default();
    let ordinal = {
        let mut seen = state
            .sessions_per_tag
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = seen.entry(tag.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    // A client that names its session gets the same randomness whatever order sessions
    // arrive in; otherwise the n-th session of a tag draws the n-th stream.
    let key = match crate::session_of(&headers) {
        "" => [tag.as_bytes(), b"\n", &ordinal.to_le_bytes()].concat(),
        session => [tag.as_bytes(), b"\n", session.as_bytes()].concat(),
    };
    let request_id = seed::uuid_like(state.seed, SERVICE, &key);
    if let Some(expected) = &state.config.api_key {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Token "))
            .map(str::trim);
        if given != Some(expected.as_str()) {
            return deepgram_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTH",
                "Invalid credentials.",
                &request_id,
            );
        }
    }
    let options = match Options::parse(&query) {
        Ok(o) => o,
        Err(message) => {
            return deepgram_error(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                &message,
                &request_id,
            );
        }
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let mut fault_rng = seed::request_rng(state.seed, SERVICE, &key, Stream::Fault);
    let fault = state.config.faults.draw(&mut fault_rng);
    if fault == Fault::Http5xx {
        state.counters.fault(fault);
        return deepgram_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable. (emulated)",
            &request_id,
        );
    }
    let call = state
        .dataset
        .as_ref()
        .and_then(|d| d.call(&tag))
        .map(|c| c.turns.clone());
    let shutdown = state.shutdown.clone();
    let Some(turns) = call else {
        return upgrade.on_upgrade(|mut socket| async move {
            let frame = CloseFrame {
                code: CLOSE_UNKNOWN_TAG,
                reason: "unknown call tag".into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        });
    };
    let fault_turn = fault_rng.random_range(0..turns.len().max(1));
    let session = Session::new(
        &state,
        options,
        &turns,
        seed::request_rng(state.seed, SERVICE, &key, Stream::Timing),
        Injection {
            fault,
            turn: fault_turn,
        },
        request_id,
    );
    let counters = state.counters.clone();
    let trace = (
        Arc::clone(&state.trace),
        crate::session_of(&headers).to_string(),
    );
    upgrade.on_upgrade(move |socket| run(socket, session, counters, trace, shutdown))
}

/// One word of a turn with its (evenly spread) time span.
#[derive(Debug, Clone)]
struct Word {
    word: String,
    punctuated: String,
    start_ms: f64,
    end_ms: f64,
}

impl Word {
    fn midpoint_ms(&self) -> f64 {
        (self.start_ms + self.end_ms) / 2.0
    }
}

/// A turn's words, spread over [start, end] in proportion to their length in characters.
fn spread_words(turn: &Turn) -> Vec<Word> {
    let tokens: Vec<&str> = turn.text.split_whitespace().collect();
    let total: usize = tokens.iter().map(|t| t.chars().count()).sum();
    let (start, end) = (turn.start_ms as f64, turn.end_ms as f64);
    let mut before = 0usize;
    tokens
        .iter()
        .map(|token| {
            let len = token.chars().count();
            let at = |chars: usize| start + (end - start) * chars as f64 / total.max(1) as f64;
            let word: String = token
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect();
            let w = Word {
                word: if word.is_empty() {
                    token.to_lowercase()
                } else {
                    word
                },
                punctuated: (*token).to_string(),
                start_ms: at(before),
                end_ms: at(before + len),
            };
            before += len;
            w
        })
        .collect()
}

#[derive(Debug)]
struct TurnState {
    start_ms: f64,
    end_ms: f64,
    words: Vec<Word>,
    speech_started: bool,
    next_interim: u64,
    finalized: bool,
    utterance_end_sent: bool,
}

#[derive(Debug, Clone, Copy)]
struct Injection {
    fault: Fault,
    /// The turn whose first final triggers the fault.
    turn: usize,
}

#[derive(Debug)]
struct Outgoing {
    due: Instant,
    text: String,
    /// The final result of this turn: a fault armed on it fires once it is sent.
    final_of: Option<usize>,
    /// A final result (`is_final`) or an `UtteranceEnd`: a message that can end a turn,
    /// which the wire trace records.
    traced: bool,
}

/// The state of one live session: what has been received and what is queued to send.
struct Session {
    options: Options,
    interim_interval_ms: f64,
    final_delay: crate::timing::Timing,
    interim_delay: crate::timing::Timing,
    turns: Vec<TurnState>,
    received_bytes: u64,
    /// Start of the audio not yet covered by a final result (ms).
    cursor_ms: f64,
    rng: ChaCha8Rng,
    queue: VecDeque<Outgoing>,
    last_due: Instant,
    injection: Injection,
    request_id: String,
    model_uuid: String,
}

impl Session {
    fn new(
        state: &SttState,
        options: Options,
        turns: &[Turn],
        rng: ChaCha8Rng,
        injection: Injection,
        request_id: String,
    ) -> Session {
        let model_uuid = seed::uuid_like(0, "stt-model", options.model.as_bytes());
        Session {
            interim_interval_ms: state.config.interim_interval_ms as f64,
            final_delay: state.config.final_delay,
            interim_delay: state.config.interim_delay,
            options,
            turns: turns
                .iter()
                .map(|t| TurnState {
                    start_ms: t.start_ms as f64,
                    end_ms: t.end_ms as f64,
                    words: spread_words(t),
                    speech_started: false,
                    next_interim: 1,
                    finalized: false,
                    utterance_end_sent: false,
                })
                .collect(),
            received_bytes: 0,
            cursor_ms: 0.0,
            rng,
            queue: VecDeque::new(),
            last_due: Instant::now(),
            injection,
            request_id,
            model_uuid,
        }
    }

    fn position_ms(&self) -> f64 {
        (self.received_bytes / 2) as f64 * 1000.0 / f64::from(self.options.sample_rate)
    }

    /// Queues `text` after `delay`, never before what is already queued (Deepgram sends in order).
    fn schedule(&mut self, delay: Duration, text: String, final_of: Option<usize>) {
        self.schedule_result(delay, text, final_of, false);
    }

    /// Queues a message that can end a turn (a final result of turn `final_of`, if any, or an
    /// `UtteranceEnd`), recorded in the wire trace when sent.
    fn schedule_traced(&mut self, delay: Duration, text: String, final_of: Option<usize>) {
        self.schedule_result(delay, text, final_of, true);
    }

    fn schedule_result(
        &mut self,
        delay: Duration,
        text: String,
        final_of: Option<usize>,
        traced: bool,
    ) {
        let due = (Instant::now() + delay).max(self.last_due);
        self.last_due = due;
        self.queue.push_back(Outgoing {
            due,
            text,
            final_of,
            traced,
        });
    }

    fn results(&self, end_ms: f64, flags: [bool; 3], words: &[Word]) -> String {
        let [is_final, speech_final, from_finalize] = flags;
        let transcript = words
            .iter()
            .map(|w| w.punctuated.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<Value> = words
            .iter()
            .map(|w| {
                json!({
                    "word": w.word,
                    "start": w.start_ms / 1000.0,
                    "end": w.end_ms / 1000.0,
                    "confidence": 0.98,
                    "punctuated_word": w.punctuated,
                })
            })
            .collect();
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": ((end_ms - self.cursor_ms).max(0.0)) / 1000.0,
            "start": self.cursor_ms / 1000.0,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": { "alternatives": [{
                "transcript": transcript,
                "confidence": 0.98,
                "words": words,
            }]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": { "name": "emulated", "version": "latlab", "arch": "emulated" },
                "model_uuid": self.model_uuid,
            },
        })
        .to_string()
    }

    /// Audio arrived: advance the position and queue whatever it reveals.
    fn on_audio(&mut self, bytes: usize) {
        self.received_bytes += bytes as u64;
        let p = self.position_ms();
        for i in 0..self.turns.len() {
            let (start, end) = (self.turns[i].start_ms, self.turns[i].end_ms);
            if p < start {
                break;
            }
            if self.options.vad_events && !self.turns[i].speech_started {
                self.turns[i].speech_started = true;
                let msg =
                    json!({"type": "SpeechStarted", "channel": [0], "timestamp": start / 1000.0});
                self.schedule(Duration::ZERO, msg.to_string(), None);
            }
            if self.options.interim_results && !self.turns[i].finalized {
                self.interim(i, p);
            }
            if !self.turns[i].finalized {
                let (threshold, speech_final) = match self.options.endpointing_ms {
                    Some(n) => (end + n as f64, true),
                    None => (end + FLUSH_AFTER_MS, false),
                };
                if p >= threshold {
                    let words = self.turns[i].words.clone();
                    let text = self.results(p, [true, speech_final, false], &words);
                    let delay = self.final_delay.sample(&mut self.rng);
                    self.schedule_traced(delay, text, Some(i));
                    self.turns[i].finalized = true;
                    self.cursor_ms = p;
                }
            }
            if let Some(u) = self.options.utterance_end_ms
                && self.turns[i].finalized
                && !self.turns[i].utterance_end_sent
                && p >= end + u as f64
            {
                self.turns[i].utterance_end_sent = true;
                let msg = json!({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": end / 1000.0});
                self.schedule_traced(Duration::ZERO, msg.to_string(), None);
            }
        }
    }

    /// Queues an interim result of turn `i` if the position passed a new interim boundary.
    fn interim(&mut self, i: usize, p: f64) {
        let turn = &self.turns[i];
        let interval = self.interim_interval_ms;
        // The last boundary start + k·interval that lies before the turn's end and was received.
        let by_position = ((p - turn.start_ms) / interval).floor();
        let by_end = ((turn.end_ms - turn.start_ms) / interval).ceil() - 1.0;
        let k = by_position.min(by_end);
        if k < turn.next_interim as f64 {
            return;
        }
        let heard: Vec<Word> = turn
            .words
            .iter()
            .filter(|w| w.midpoint_ms() <= p)
            .cloned()
            .collect();
        self.turns[i].next_interim = k as u64 + 1;
        if heard.is_empty() {
            return;
        }
        let text = self.results(p, [false, false, false], &heard);
        let delay = self.interim_delay.sample(&mut self.rng);
        self.schedule(delay, text, None);
    }

    /// `Finalize`: finalize what has been heard of the current turn, or send an empty result.
    fn on_finalize(&mut self) {
        let p = self.position_ms();
        let current = self
            .turns
            .iter()
            .position(|t| !t.finalized && t.start_ms <= p);
        let words: Vec<Word> = current
            .map(|i| {
                self.turns[i]
                    .words
                    .iter()
                    .filter(|w| w.midpoint_ms() <= p)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let text = self.results(p, [true, false, true], &words);
        let delay = self.final_delay.sample(&mut self.rng);
        self.schedule_traced(delay, text, current);
        if let Some(i) = current {
            self.turns[i].finalized = true;
        }
        self.cursor_ms = p;
    }

    fn metadata(&self) -> String {
        let key = self.request_id.as_bytes();
        json!({
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": seed::hex_id(0, "stt-sha256", key, 64),
            "created": rfc3339_now(),
            "duration": self.position_ms() / 1000.0,
            "channels": 1,
        })
        .to_string()
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_millis())
}

fn rfc3339(secs: u64, millis: u32) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Serves one session until the client leaves, `CloseStream` completes, a fault ends it, or
/// the emulator shuts down.
async fn run(
    mut socket: WebSocket,
    mut session: Session,
    counters: Arc<ServiceCounters>,
    (trace, name): (Arc<WireTrace>, String),
    shutdown: Shutdown,
) {
    let mut stalled = false;
    let mut closing = false;
    loop {
        if closing && !stalled && session.queue.is_empty() {
            let _ = socket.send(Message::Text(session.metadata().into())).await;
            let frame = CloseFrame {
                code: 1000,
                reason: "".into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
            let _ = socket.close().await;
            return;
        }
        let due = session.queue.front().map(|o| o.due);
        tokio::select! {
            _ = shutdown.clone().wait() => return,
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() && !stalled => {
                let Some(out) = session.queue.pop_front() else { continue };
                // Marked as the message is handed to the socket (as the HTTP services mark
                // their chunks): once written, the client may read it before this task runs on.
                if out.traced {
                    trace.mark(&name, Mark::SttFinal);
                }
                if socket.send(Message::Text(out.text.into())).await.is_err() {
                    return;
                }
                let injection = session.injection;
                if out.final_of.is_some() && out.final_of == Some(injection.turn) {
                    session.injection.fault = Fault::None;
                    counters.fault(injection.fault);
                    match injection.fault {
                        Fault::Stall => {
                            stalled = true;
                            session.queue.clear();
                        }
                        // Dropping the socket closes TCP without a close frame.
                        Fault::Disconnect => return,
                        Fault::Malformed => {
                            let junk = "{\"type\": \"Results\", \"channel_index\": [0, 1], broken";
                            if socket.send(Message::Text(junk.into())).await.is_err() {
                                return;
                            }
                        }
                        Fault::None | Fault::Http5xx => {}
                    }
                }
            }
            received = socket.recv() => match received {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Close(_))) => {
                    let _ = socket.close().await;
                    return;
                }
                Some(Ok(Message::Binary(audio))) => {
                    if !stalled && !closing {
                        session.on_audio(audio.len());
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if stalled || closing {
                        continue;
                    }
                    let kind = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
                    match kind.as_deref() {
                        Some("Finalize") => session.on_finalize(),
                        Some("CloseStream") => closing = true,
                        // KeepAlive and anything unknown: nothing to do.
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_reject() {
        let q = |s: &str| -> HashMap<String, String> {
            s.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let o = Options::parse(&q(
            "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300&tag=c1&foo=bar",
        ))
        .unwrap();
        assert_eq!(o.sample_rate, 16_000);
        assert!(o.interim_results);
        assert_eq!(o.endpointing_ms, Some(300));
        assert_eq!(o.tag.as_deref(), Some("c1"));
        let o = Options::parse(&q("encoding=linear16&sample_rate=8000&endpointing=false")).unwrap();
        assert_eq!(o.endpointing_ms, None);
        assert!(Options::parse(&q("encoding=opus&sample_rate=8000")).is_err());
        assert!(Options::parse(&q("encoding=linear16&sample_rate=8000&channels=2")).is_err());
        assert!(Options::parse(&q("encoding=linear16")).is_err());
    }

    #[test]
    fn words_spread_by_characters() {
        let turn = Turn {
            start_ms: 1000,
            end_ms: 2000,
            text: "Hi, there!".into(),
            reply: None,
            tool: None,
        };
        let words = spread_words(&turn);
        assert_eq!(words.len(), 2);
        assert_eq!(words[0].word, "hi");
        assert_eq!(words[0].punctuated, "Hi,");
        assert_eq!(words[1].word, "there");
        // "Hi," is 3 of 9 characters.
        assert!((words[0].end_ms - (1000.0 + 1000.0 / 3.0)).abs() < 1e-9);
        assert!((words[1].end_ms - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_251_200, 5), "2024-03-01T00:00:00.005Z");
    }
}
