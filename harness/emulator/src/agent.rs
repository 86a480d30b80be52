//! The emulated voice agent: the server side of a telephony media stream, called by latlab as
//! Twilio would call a real agent.
//!
//! - `GET /twilio` (WebSocket): Twilio Media Streams — JSON `connected`, `start` (its
//!   `start.callSid` names the call), `media` (base64 8 kHz μ-law), `mark` echoes and `stop`
//!   from the caller; `media`, `mark` (`reply-N` after the last chunk of the reply to turn N)
//!   and `clear` from the agent.
//! - `GET /pcm?rate=16000&call=<call id>` (WebSocket): binary 16-bit little-endian mono PCM
//!   both ways; the agent's clear is the text `{"event":"clear"}`.
//! - `GET /self-report`: the agent's own latency per answered turn, as JSON lines.
//!
//! The agent hears turns with a level-based detector ([`endpoint`]) and answers each with
//! speech-like audio planned by the pure [`reply::plan_reply`]; every random choice comes from
//! the seed and the call id, so one call under one seed always behaves the same. It never
//! transcribes or understands anything.

pub mod endpoint;
pub mod reply;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::SinkExt;
use latlab_core::agent::codec::{mulaw_decode_all, mulaw_encode_all};
use latlab_core::agent::protocol::{MarkName, Media, TWILIO_RATE, TwilioMessage};
use rand::RngExt;
use serde::Serialize;
use tokio::time::Instant;

use crate::Shutdown;
use crate::config::{AgentConfig, BargeIn};
use crate::faults::Fault;
use crate::seed::{self, Stream};
use crate::stats::ServiceCounters;
use crate::trace::{Mark, WireTrace};
use endpoint::Endpointer;
use reply::ReplyPlan;

/// The service name used in seeding.
pub const SERVICE: &str = "agent";

/// Lowest and highest `rate` of the PCM protocol.
pub const PCM_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// Self-report lines kept; later ones are dropped.
pub const SELF_REPORT_CAPACITY: usize = 200_000;

/// The text sent in place of a reply's first media message by the `malformed` fault.
pub const MALFORMED_TWILIO: &str = "{\"event\":\"media\",";
/// The same in PCM mode.
pub const MALFORMED_PCM: &str = "{\"event\":";

/// One line of `GET /self-report`: the agent's own view of one answered turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfReport {
    /// The call (`start.callSid` or the PCM `call`), e.g. `call-01#0`.
    pub call_sid: String,
    /// The agent's 0-based count of the user turns it detected in the call.
    pub turn: u64,
    /// Always `emulator`.
    pub source: &'static str,
    /// From the agent's end-of-turn decision to sending the reply's first chunk (ms): excludes
    /// the detector's silence wait, the transport and the leading silence.
    pub latency_ms: f64,
    /// The planned parts of it.
    pub stages: SelfReportStages,
}

/// The stages of a [`SelfReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfReportStages {
    /// The drawn `response` delay (ms).
    pub response_ms: f64,
}

/// What the handlers share.
pub(crate) struct AgentState {
    /// The run's seed.
    pub seed: u64,
    /// This service's config.
    pub config: AgentConfig,
    /// This service's counters.
    pub counters: Arc<ServiceCounters>,
    /// Fires when the emulator stops.
    pub shutdown: Shutdown,
    /// The wire trace.
    pub trace: Arc<WireTrace>,
    /// Every answered turn, in the order the replies started.
    pub reports: Mutex<Vec<SelfReport>>,
    /// Twilio upgrades without a call id, to key their `refuse` draw.
    pub anonymous: AtomicU64,
}

/// The router of the agent service.
pub(crate) fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/twilio", get(twilio))
        .route("/pcm", get(pcm))
        .route("/self-report", get(self_report))
        .with_state(state)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

async fn self_report(State(state): State<Arc<AgentState>>) -> Response {
    state.counters.request();
    let reports = state.reports.lock().unwrap_or_else(|e| e.into_inner());
    let mut body = String::new();
    for r in reports.iter() {
        if let Ok(line) = serde_json::to_string(r) {
            body.push_str(&line);
            body.push('\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// Whether the call keyed `key` is refused (the `refuse` fault), counted if so.
fn refused(state: &AgentState, key: &str) -> bool {
    let p = state.config.faults.refuse;
    if p <= 0.0 {
        return false;
    }
    let mut rng = seed::request_rng(
        state.seed,
        SERVICE,
        &[b"refuse\n", key.as_bytes()].concat(),
        Stream::Fault,
    );
    let refused = rng.random::<f64>() < p;
    if refused {
        state.counters.fault(Fault::Http5xx);
    }
    refused
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the emulated agent refused the call (fault: refuse)\n",
    )
        .into_response()
}

async fn twilio(
    State(state): State<Arc<AgentState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    state.counters.request();
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    // The call id arrives only after the upgrade (in `start`): `refuse` is keyed by the
    // session header or `call` parameter when the caller sends one, else by arrival order.
    let key = match (crate::session_of(&headers), query.get("call")) {
        ("", Some(call)) => call.clone(),
        ("", None) => format!(
            "#anonymous-{}",
            state.anonymous.fetch_add(1, Ordering::Relaxed)
        ),
        (session, _) => session.to_string(),
    };
    if refused(&state, &key) {
        return unavailable();
    }
    upgrade.on_upgrade(move |socket| async move {
        let shutdown = state.shutdown.clone();
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = serve(socket, state, Wire::Twilio { stream_sid: None }, None) => {}
        }
    })
}

async fn pcm(
    State(state): State<Arc<AgentState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    state.counters.request();
    let rate = match query.get("rate").map(|r| r.parse::<u32>()) {
        None => 16_000,
        Some(Ok(r)) if PCM_RATES.contains(&r) => r,
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "rate must be an integer from {} to {} (Hz)\n",
                    PCM_RATES.start(),
                    PCM_RATES.end()
                ),
            )
                .into_response();
        }
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let call = match crate::session_of(&headers) {
        "" => query.get("call").cloned().unwrap_or_default(),
        session => session.to_string(),
    };
    if refused(&state, &call) {
        return unavailable();
    }
    upgrade.on_upgrade(move |socket| async move {
        let shutdown = state.shutdown.clone();
        tokio::select! {
            _ = shutdown.wait() => {}
            _ = serve(socket, state, Wire::Pcm { rate }, Some(call)) => {}
        }
    })
}

/// The protocol of one call.
#[derive(Debug, Clone)]
enum Wire {
    Twilio { stream_sid: Option<String> },
    Pcm { rate: u32 },
}

impl Wire {
    fn rate(&self) -> u32 {
        match self {
            Wire::Twilio { .. } => TWILIO_RATE,
            Wire::Pcm { rate } => *rate,
        }
    }

    fn sid(&self) -> Option<String> {
        match self {
            Wire::Twilio { stream_sid } => stream_sid.clone(),
            Wire::Pcm { .. } => None,
        }
    }

    fn media(&self, samples: &[i16]) -> Message {
        match self {
            Wire::Twilio { .. } => twilio_text(&TwilioMessage::Media {
                sequence_number: None,
                stream_sid: self.sid(),
                media: Media {
                    track: None,
                    chunk: None,
                    timestamp: None,
                    payload: BASE64.encode(mulaw_encode_all(samples)),
                },
            }),
            Wire::Pcm { .. } => Message::Binary(crate::audio::pcm_bytes(samples).into()),
        }
    }

    fn malformed(&self) -> Message {
        Message::Text(
            match self {
                Wire::Twilio { .. } => MALFORMED_TWILIO,
                Wire::Pcm { .. } => MALFORMED_PCM,
            }
            .into(),
        )
    }

    fn clear(&self) -> Message {
        match self {
            Wire::Twilio { .. } => twilio_text(&TwilioMessage::Clear {
                stream_sid: self.sid(),
            }),
            Wire::Pcm { .. } => Message::Text("{\"event\":\"clear\"}".into()),
        }
    }

    /// The `mark` after the reply to turn `turn` (Twilio only).
    fn mark(&self, turn: u64) -> Option<Message> {
        match self {
            Wire::Twilio { .. } => Some(twilio_text(&TwilioMessage::Mark {
                sequence_number: None,
                stream_sid: self.sid(),
                mark: MarkName {
                    name: format!("reply-{turn}"),
                },
            })),
            Wire::Pcm { .. } => None,
        }
    }
}

fn twilio_text(message: &TwilioMessage) -> Message {
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

/// A reply decided on, waiting for its start or being sent.
#[derive(Debug)]
struct Pending {
    plan: ReplyPlan,
    /// The end-of-turn decision it answers.
    endpoint_at: Instant,
    /// When its first chunk is due (set once it is at the head of the queue).
    start: Option<Instant>,
    /// Chunks sent so far.
    sent: usize,
}

/// One call's state.
struct Call {
    state: Arc<AgentState>,
    wire: Wire,
    /// The call id, once known (Twilio: from `start`).
    id: Option<String>,
    ears: Endpointer,
    /// User turns detected so far.
    turns: u64,
    /// Barge-ins detected so far (each draws its own reaction delay).
    barge_ins: u64,
    replies: VecDeque<Pending>,
    /// When the last sent chunk of the latest reply will have played at the caller (an
    /// estimate at real time from its first chunk).
    playing_until: Option<Instant>,
    /// A barge-in was detected in the caller's current turn.
    barged_this_turn: bool,
    /// When to act on the detected barge-in.
    barge_in_due: Option<Instant>,
    /// When the last reply's final chunk left: the next reply never starts before it.
    free_at: Instant,
}

/// What the call should do after an event.
enum Next {
    Continue,
    /// Close the WebSocket properly and end.
    End,
    /// Drop the connection without a close frame (the `close` fault).
    Abort,
}

impl Call {
    fn new(state: Arc<AgentState>, wire: Wire, id: Option<String>) -> Call {
        let c = &state.config;
        let ears = Endpointer::new(
            wire.rate(),
            c.speech_dbfs,
            c.endpointing_ms,
            c.min_speech_ms,
        );
        Call {
            ears,
            wire,
            id,
            turns: 0,
            barge_ins: 0,
            replies: VecDeque::new(),
            playing_until: None,
            barged_this_turn: false,
            barge_in_due: None,
            free_at: Instant::now(),
            state,
        }
    }

    fn replying(&self, now: Instant) -> bool {
        !self.replies.is_empty() || self.playing_until.is_some_and(|t| t > now)
    }

    /// Caller audio arrived (at the wire rate).
    fn hear(&mut self, samples: &[i16]) {
        let Some(call) = self.id.clone() else { return };
        let mut frames = Vec::new();
        self.ears.push(samples, |f| frames.push(f));
        let barge_in_min = self.state.config.barge_in_min_ms.max(1);
        for frame in frames {
            let now = Instant::now();
            if frame.turn_speech_ms == 0 {
                self.barged_this_turn = false;
            }
            if frame.end_of_turn {
                self.end_of_turn(&call, now);
            } else if !self.barged_this_turn
                && frame.turn_speech_ms >= barge_in_min
                && self.replying(now)
            {
                self.barged_this_turn = true;
                let key = [
                    call.as_bytes(),
                    b"\nbarge-in\n",
                    &self.barge_ins.to_le_bytes(),
                ]
                .concat();
                self.barge_ins += 1;
                let mut rng = seed::request_rng(self.state.seed, SERVICE, &key, Stream::Timing);
                let delay = self.state.config.barge_in_delay.sample(&mut rng);
                self.barge_in_due.get_or_insert(now + delay);
            }
        }
    }

    fn end_of_turn(&mut self, call: &str, now: Instant) {
        self.state.trace.mark(call, Mark::AgentEndpoint);
        let plan = reply::plan_reply(
            self.state.seed,
            &self.state.config,
            call,
            self.turns,
            self.wire.rate(),
        );
        self.turns += 1;
        self.barged_this_turn = false;
        if plan.never_answer {
            self.state.counters.fault(Fault::Stall);
            return;
        }
        self.replies.push_back(Pending {
            plan,
            endpoint_at: now,
            start: None,
            sent: 0,
        });
    }

    /// When the next timed action is due.
    fn next_due(&mut self) -> Option<Instant> {
        let free_at = self.free_at;
        let chunk = self.replies.front_mut().map(|r| {
            let start = *r
                .start
                .get_or_insert((r.endpoint_at + r.plan.response).max(free_at));
            start + r.plan.chunks.get(r.sent).map_or(Duration::ZERO, |c| c.at)
        });
        match (chunk, self.barge_in_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does what is due now: acts on a barge-in, or sends the head reply's next chunk.
    async fn act(&mut self, socket: &mut WebSocket) -> Next {
        let now = Instant::now();
        if self.barge_in_due.is_some_and(|t| t <= now) {
            self.barge_in_due = None;
            return self.barge_in(socket, now).await;
        }
        let Some(head) = self.replies.front_mut() else {
            return Next::Continue;
        };
        let Some(chunk) = head.plan.chunks.get(head.sent) else {
            return self.finish_reply(socket, now).await;
        };
        let call = self.id.clone().unwrap_or_default();
        let index = head.sent;
        let message = if index == 0 && head.plan.malformed {
            self.state.counters.fault(Fault::Malformed);
            self.wire.malformed()
        } else {
            self.wire.media(&chunk.samples)
        };
        if head.plan.first_audible == Some(index) {
            self.state.trace.mark(&call, Mark::AgentFirstAudio);
        }
        if socket.send(message).await.is_err() {
            return Next::End;
        }
        head.sent += 1;
        if index == 0 {
            let plan = &head.plan;
            let gap = plan.gap_before.map_or(Duration::ZERO, |_| {
                Duration::from_millis(u64::from(self.state.config.gap_ms))
            });
            self.playing_until = Some(now + plan.audio(self.wire.rate()) + gap);
            record(
                &self.state,
                SelfReport {
                    call_sid: call,
                    turn: plan.turn,
                    source: "emulator",
                    latency_ms: ms(now - head.endpoint_at),
                    stages: SelfReportStages {
                        response_ms: ms(plan.response),
                    },
                },
            );
        }
        if head.plan.close_after == Some(head.sent) {
            self.state.counters.fault(Fault::Disconnect);
            return Next::Abort;
        }
        if head.sent == head.plan.chunks.len() {
            return self.finish_reply(socket, now).await;
        }
        Next::Continue
    }

    async fn finish_reply(&mut self, socket: &mut WebSocket, now: Instant) -> Next {
        let Some(done) = self.replies.pop_front() else {
            return Next::Continue;
        };
        self.free_at = now;
        if let Some(mark) = self.wire.mark(done.plan.turn)
            && socket.send(mark).await.is_err()
        {
            return Next::End;
        }
        Next::Continue
    }

    async fn barge_in(&mut self, socket: &mut WebSocket, now: Instant) -> Next {
        if !self.replying(now) {
            return Next::Continue;
        }
        let audible = self.replies.front().is_some_and(|r| r.sent > 0)
            || self.playing_until.is_some_and(|t| t > now);
        match self.state.config.barge_in {
            BargeIn::Ignore => return Next::Continue,
            BargeIn::Stop => {}
            BargeIn::Clear => {
                if audible && socket.send(self.wire.clear()).await.is_err() {
                    return Next::End;
                }
                self.playing_until = None;
            }
        }
        // The interrupted reply and any queued behind it are dropped: their turns are past.
        self.replies.clear();
        self.free_at = now;
        Next::Continue
    }

    /// A message from the caller.
    fn receive(&mut self, message: Message) -> Next {
        match (&mut self.wire, message) {
            (_, Message::Close(_)) => Next::End,
            (Wire::Pcm { .. }, Message::Binary(bytes)) => {
                let samples: Vec<i16> = bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                self.hear(&samples);
                Next::Continue
            }
            (Wire::Twilio { stream_sid }, Message::Text(text)) => {
                match serde_json::from_str::<TwilioMessage>(&text) {
                    Ok(TwilioMessage::Start { start, .. }) => {
                        *stream_sid = Some(start.stream_sid);
                        self.id = Some(start.call_sid);
                        Next::Continue
                    }
                    Ok(TwilioMessage::Media { media, .. }) => {
                        if let Ok(bytes) = BASE64.decode(media.payload.as_bytes()) {
                            self.hear(&mulaw_decode_all(&bytes));
                        }
                        Next::Continue
                    }
                    Ok(TwilioMessage::Stop { .. }) => Next::End,
                    // `connected`, `mark` echoes and anything unknown.
                    _ => Next::Continue,
                }
            }
            _ => Next::Continue,
        }
    }
}

/// Adds a line to the self-report.
fn record(state: &AgentState, line: SelfReport) {
    let mut reports = state.reports.lock().unwrap_or_else(|e| e.into_inner());
    if reports.len() < SELF_REPORT_CAPACITY {
        reports.push(line);
    }
}

/// Serves one call until the caller leaves or a fault ends it.
async fn serve(mut socket: WebSocket, state: Arc<AgentState>, wire: Wire, id: Option<String>) {
    let mut call = Call::new(state, wire, id);
    loop {
        let due = call.next_due();
        let next = tokio::select! {
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                call.act(&mut socket).await
            }
            received = socket.recv() => match received {
                None | Some(Err(_)) => Next::End,
                Some(Ok(message)) => call.receive(message),
            },
        };
        match next {
            Next::Continue => {}
            Next::End => {
                let _ = socket.close().await;
                return;
            }
            // Dropping the socket closes TCP without a close frame.
            Next::Abort => return,
        }
    }
}
