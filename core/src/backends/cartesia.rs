//! Text-to-speech over Cartesia's WebSocket API: `GET {base_url}/tts/websocket` with
//! `X-API-Key` (and `Authorization: Bearer`) and `Cartesia-Version` headers.
//!
//! Each utterance is a context (`context_id`): a generation request carrying `model_id`,
//! `voice` (`{mode: "id", id}`), `output_format` (`raw`, `pcm_s16le`, the sample rate),
//! `language`, a `transcript` and `continue`. A whole sentence is one request with
//! `continue: false`; token streaming sends each piece with `continue: true` and ends with an
//! empty transcript and `continue: false`. The server answers per context with `chunk`
//! messages (base64 PCM), then `done`, or an `error`; `{context_id, cancel: true}` stops one.
//!
//! With `reuse_connection` one socket serves every context of a call (session), demultiplexed
//! by `context_id`; otherwise each request opens and closes its own socket. This module never
//! logs or prints the API key.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::deepgram::connect_error;
use super::{ApiKey, Timeouts, error_chain, join_url};
use crate::audio::Container;
use crate::stage::{
    AudioStream, IncrementalSpeech, SpeechContext, TextSink, TextToSpeech, TtsRequest,
};
use crate::timing::{ErrorKind, StageError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A pooled socket with no open context is closed after this long (Cartesia itself closes
/// idle sockets after a few minutes; a call's turns are seconds apart).
const IDLE_CLOSE: Duration = Duration::from_secs(30);

/// The sample rates Cartesia offers for raw PCM.
pub const SAMPLE_RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// Scenario settings of the Cartesia backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartesiaConfig {
    /// `wss://api.cartesia.ai`, or `emulator`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Model id (`sonic-3`, `sonic-2`, `sonic-turbo`).
    #[serde(default = "default_model")]
    pub model_id: String,
    /// The voice (`voice: {mode: "id", id}`).
    #[serde(default = "default_voice")]
    pub voice_id: String,
    /// Sample rate of the raw `pcm_s16le` audio (one of [`SAMPLE_RATES`]).
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
    /// Language code.
    #[serde(default = "default_language")]
    pub language: String,
    /// The `Cartesia-Version` header (the API version, a date).
    #[serde(default = "default_version")]
    pub version: String,
    /// Sent as `max_buffer_delay_ms` when set: how long Cartesia may buffer continued text
    /// before it speaks (its default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffer_delay_ms: Option<u32>,
    /// Environment variable holding the API key.
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
}

fn default_base_url() -> String {
    "wss://api.cartesia.ai".into()
}
fn default_model() -> String {
    "sonic-3".into()
}
fn default_voice() -> String {
    "a0e99841-438c-4a64-b679-ae501e7d6091".into()
}
fn default_sample_rate() -> u32 {
    16_000
}
fn default_language() -> String {
    "en".into()
}
fn default_version() -> String {
    "2025-04-16".into()
}
fn default_key_env() -> String {
    "CARTESIA_API_KEY".into()
}

impl CartesiaConfig {
    /// Checks what latlab can measure; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !SAMPLE_RATES.contains(&self.sample_rate) {
            return Err((
                "sample_rate",
                format!(
                    "{} is not a Cartesia raw PCM rate (one of {SAMPLE_RATES:?})",
                    self.sample_rate
                ),
            ));
        }
        if self.version.trim().is_empty() {
            return Err(("version", "the Cartesia-Version date must be set".into()));
        }
        Ok(())
    }
}

/// The Cartesia client.
pub struct CartesiaTts {
    config: Arc<CartesiaConfig>,
    key: Option<ApiKey>,
    timeouts: Timeouts,
    /// Open sockets by session, for `reuse_connection`.
    pool: Mutex<HashMap<String, Socket>>,
}

impl std::fmt::Debug for CartesiaTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CartesiaTts")
            .field("config", &self.config)
            .field("key", &self.key)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl CartesiaTts {
    /// A client for `config`; fails if the config cannot be measured.
    pub fn new(
        config: CartesiaConfig,
        key: Option<ApiKey>,
        timeouts: Timeouts,
    ) -> Result<CartesiaTts, StageError> {
        config
            .validate()
            .map_err(|(k, m)| StageError::new(ErrorKind::Protocol, format!("{k}: {m}")))?;
        Ok(CartesiaTts {
            config: Arc::new(config),
            key,
            timeouts,
            pool: Mutex::default(),
        })
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        join_url(&self.config.base_url, "tts/websocket")
    }

    async fn connect(&self, session: &str, single_use: bool) -> Result<Socket, StageError> {
        let mut request = self
            .url()
            .into_client_request()
            .map_err(|e| StageError::new(ErrorKind::Connect, format!("bad TTS URL: {e}")))?;
        let headers = request.headers_mut();
        if let Ok(session) = session.parse() {
            headers.insert(super::SESSION_HEADER, session);
        }
        let version = self.config.version.parse().map_err(|_| {
            StageError::new(ErrorKind::Connect, "version is not a valid header value")
        })?;
        headers.insert("Cartesia-Version", version);
        if let Some(key) = &self.key {
            let invalid =
                || StageError::new(ErrorKind::Connect, "API key is not a valid header value");
            let plain = key.expose().parse().map_err(|_| invalid())?;
            let bearer = format!("Bearer {}", key.expose())
                .parse()
                .map_err(|_| invalid())?;
            headers.insert("X-API-Key", plain);
            headers.insert("Authorization", bearer);
        }
        let connect = tokio_tungstenite::connect_async(request);
        let ws = match tokio::time::timeout(self.timeouts.connect(), connect).await {
            Err(_) => {
                return Err(StageError::new(
                    ErrorKind::Timeout,
                    format!("WebSocket not open within {} ms", self.timeouts.connect_ms),
                ));
            }
            Ok(Err(e)) => return Err(connect_error(e)),
            Ok(Ok((ws, _response))) => ws,
        };
        Ok(Socket::spawn(ws, single_use))
    }

    /// A socket for `request`: the call's pooled one, or a fresh one used once.
    async fn socket(&self, request: &TtsRequest) -> Result<Socket, StageError> {
        if !request.reuse_connection {
            return self.connect(&request.session, true).await;
        }
        if let Some(socket) = self.pooled(&request.session) {
            return Ok(socket);
        }
        let socket = self.connect(&request.session, false).await?;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.retain(|_, s| s.is_open());
        pool.insert(request.session.clone(), socket.clone());
        Ok(socket)
    }

    fn pooled(&self, session: &str) -> Option<Socket> {
        let pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.get(session).filter(|s| s.is_open()).cloned()
    }

    /// Opens a context on a socket and sends its first request.
    async fn open(
        &self,
        request: &TtsRequest,
        first: Option<&str>,
    ) -> Result<(ContextAudio, ContextText), StageError> {
        let socket = self.socket(request).await?;
        let context_id = new_context_id();
        let (events_tx, events) = mpsc::unbounded_channel();
        let opening = first.map(|text| generation(&self.config, &context_id, text, false));
        socket.send(Command::Open {
            context_id: context_id.clone(),
            events: events_tx,
            first: opening,
        })?;
        let audio = ContextAudio {
            events,
            socket: socket.clone(),
            context_id: context_id.clone(),
            timeouts: self.timeouts,
            sample_rate: self.config.sample_rate,
            started: false,
            ended: false,
        };
        let text = ContextText {
            socket,
            context_id,
            config: Arc::clone(&self.config),
            finished: false,
        };
        Ok((audio, text))
    }
}

/// One generation request of `context_id`.
fn generation(config: &CartesiaConfig, context_id: &str, transcript: &str, more: bool) -> String {
    let mut body = serde_json::json!({
        "model_id": config.model_id,
        "transcript": transcript,
        "voice": { "mode": "id", "id": config.voice_id },
        "language": config.language,
        "context_id": context_id,
        "output_format": {
            "container": "raw",
            "encoding": "pcm_s16le",
            "sample_rate": config.sample_rate,
        },
        "continue": more,
    });
    if let Some(ms) = config.max_buffer_delay_ms {
        body["max_buffer_delay_ms"] = ms.into();
    }
    body.to_string()
}

fn new_context_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let salt: u64 = rand::random();
    format!("latlab-{salt:016x}-{n}")
}

#[async_trait]
impl TextToSpeech for CartesiaTts {
    fn name(&self) -> &str {
        "cartesia"
    }

    async fn start(&self, request: &TtsRequest) -> Result<Box<dyn AudioStream>, StageError> {
        let (audio, _text) = self.open(request, Some(&request.text)).await?;
        Ok(Box::new(audio))
    }

    fn incremental(&self) -> Option<&dyn IncrementalSpeech> {
        Some(self)
    }
}

#[async_trait]
impl IncrementalSpeech for CartesiaTts {
    async fn open_context(&self, request: &TtsRequest) -> Result<SpeechContext, StageError> {
        let (audio, text) = self.open(request, None).await?;
        Ok(SpeechContext {
            text: Box::new(text),
            audio: Box::new(audio),
        })
    }
}

/// What a context hears from its socket.
#[derive(Debug)]
enum Event {
    Chunk(Bytes),
    Done,
    Failed(StageError),
}

/// What a socket's task is asked to do.
enum Command {
    /// Register a context, then send its first request when given.
    Open {
        context_id: String,
        events: mpsc::UnboundedSender<Event>,
        first: Option<String>,
    },
    /// Send a further request (text of an open context).
    Send(String),
    /// The context's reader is gone: forget it, and cancel it on the server when unfinished.
    Close { context_id: String, cancel: bool },
}

/// A handle on one socket and its task.
#[derive(Clone)]
struct Socket {
    commands: mpsc::UnboundedSender<Command>,
    open: Arc<AtomicBool>,
}

impl Socket {
    fn spawn(ws: Ws, single_use: bool) -> Socket {
        let (commands, rx) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicBool::new(true));
        tokio::spawn(run_socket(ws, rx, Arc::clone(&open), single_use));
        Socket { commands, open }
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire) && !self.commands.is_closed()
    }

    fn send(&self, command: Command) -> Result<(), StageError> {
        self.commands
            .send(command)
            .map_err(|_| StageError::new(ErrorKind::Disconnected, "the TTS WebSocket has closed"))
    }
}

/// The contexts a socket serves.
#[derive(Default)]
struct Contexts {
    open: HashMap<String, mpsc::UnboundedSender<Event>>,
    /// Contexts that ended or were cancelled: late messages for them are dropped.
    retired: HashSet<String>,
    served: u64,
}

impl Contexts {
    fn fail_all(&mut self, error: &StageError) {
        for (id, events) in self.open.drain() {
            let _ = events.send(Event::Failed(error.clone()));
            self.retired.insert(id);
        }
    }

    fn end(&mut self, id: &str, event: Event) {
        if let Some(events) = self.open.remove(id) {
            let _ = events.send(event);
            self.retired.insert(id.to_string());
        }
    }
}

/// One socket's task: writes requests, routes responses to their contexts by `context_id`,
/// and closes the socket when it is idle (pooled) or its one context has ended (single use).
async fn run_socket(
    mut ws: Ws,
    mut commands: mpsc::UnboundedReceiver<Command>,
    open: Arc<AtomicBool>,
    single_use: bool,
) {
    let mut contexts = Contexts::default();
    loop {
        if single_use && contexts.served > 0 && contexts.open.is_empty() {
            break;
        }
        let idle = contexts.open.is_empty();
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                let text = match command {
                    Command::Open { context_id, events, first } => {
                        contexts.served += 1;
                        contexts.open.insert(context_id, events);
                        first
                    }
                    Command::Send(text) => Some(text),
                    Command::Close { context_id, cancel } => {
                        let was_open = contexts.open.remove(&context_id).is_some();
                        contexts.retired.insert(context_id.clone());
                        (cancel && was_open).then(|| {
                            serde_json::json!({ "context_id": context_id, "cancel": true })
                                .to_string()
                        })
                    }
                };
                if let Some(text) = text
                    && let Err(e) = ws.send(Message::Text(text.into())).await
                {
                    contexts.fail_all(&StageError::new(
                        ErrorKind::Disconnected,
                        format!("sending to TTS: {}", error_chain(&e)),
                    ));
                    break;
                }
            }
            message = ws.next() => {
                let message = match message {
                    None => Err(StageError::new(
                        ErrorKind::Disconnected,
                        "TTS socket ended without a close frame",
                    )),
                    Some(Err(e)) => Err(StageError::new(ErrorKind::Disconnected, error_chain(&e))),
                    Some(Ok(m)) => Ok(m),
                };
                match message {
                    Err(e) => {
                        contexts.fail_all(&e);
                        break;
                    }
                    Ok(Message::Text(text)) => {
                        if !route(text.as_str(), &mut contexts) {
                            break;
                        }
                    }
                    Ok(Message::Binary(_)) => {
                        contexts.fail_all(&StageError::new(
                            ErrorKind::Protocol,
                            "unexpected binary message from TTS",
                        ));
                        break;
                    }
                    Ok(Message::Close(frame)) => {
                        let why = frame
                            .map(|f| format!(": {} {}", u16::from(f.code), f.reason))
                            .unwrap_or_default();
                        contexts.fail_all(&StageError::new(
                            ErrorKind::Disconnected,
                            format!("TTS closed the socket{why}"),
                        ));
                        break;
                    }
                    Ok(_) => {}
                }
            }
            _ = tokio::time::sleep(IDLE_CLOSE), if idle => break,
        }
    }
    open.store(false, Ordering::Release);
    // Anything still open hears that the socket is gone.
    contexts.fail_all(&StageError::new(
        ErrorKind::Disconnected,
        "the TTS WebSocket closed",
    ));
    let _ = ws.close(None).await;
}

/// A server message as far as latlab reads it.
#[derive(Deserialize)]
struct Response {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    status_code: Option<u16>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Routes one text message; false when the socket can no longer be trusted.
fn route(text: &str, contexts: &mut Contexts) -> bool {
    let response: Response = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            contexts.fail_all(&StageError::new(
                ErrorKind::Protocol,
                format!("TTS message is not JSON: {e}"),
            ));
            return false;
        }
    };
    let id = match response.context_id.as_deref() {
        Some(id) if contexts.open.contains_key(id) => id.to_string(),
        Some(id) if contexts.retired.contains(id) => return true,
        other => {
            let what = match other {
                Some(id) => format!("a {:?} message for unknown context {id:?}", response.kind),
                None => format!("a {:?} message without a context_id", response.kind),
            };
            let detail = error_text(&response)
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            contexts.fail_all(&StageError::new(
                ErrorKind::Protocol,
                format!("TTS sent {what}{detail}"),
            ));
            return true;
        }
    };
    match response.kind.as_str() {
        "chunk" => {
            let decoded = response
                .data
                .as_deref()
                .map(|d| base64::engine::general_purpose::STANDARD.decode(d));
            match decoded {
                Some(Ok(bytes)) => {
                    if let Some(events) = contexts.open.get(&id) {
                        let _ = events.send(Event::Chunk(Bytes::from(bytes)));
                    }
                    if response.done {
                        contexts.end(&id, Event::Done);
                    }
                }
                Some(Err(e)) => contexts.end(
                    &id,
                    Event::Failed(StageError::new(
                        ErrorKind::Protocol,
                        format!("TTS chunk is not base64: {e}"),
                    )),
                ),
                None => contexts.end(
                    &id,
                    Event::Failed(StageError::new(
                        ErrorKind::Protocol,
                        "TTS chunk without data",
                    )),
                ),
            }
        }
        "done" => contexts.end(&id, Event::Done),
        "error" => {
            let status = response
                .status_code
                .map(|s| format!(" (status {s})"))
                .unwrap_or_default();
            let message = error_text(&response).unwrap_or_else(|| "unknown error".into());
            contexts.end(
                &id,
                Event::Failed(StageError::new(
                    ErrorKind::Protocol,
                    format!("TTS error message{status}: {message}"),
                )),
            );
        }
        // Timestamps, flush acknowledgements and message kinds newer than this client.
        _ if response.done => contexts.end(&id, Event::Done),
        _ => {}
    }
    true
}

fn error_text(r: &Response) -> Option<String> {
    match (&r.title, &r.message, &r.error) {
        (Some(t), Some(m), _) => Some(format!("{t}: {m}")),
        (_, Some(m), _) | (_, _, Some(m)) | (Some(m), _, _) => Some(m.clone()),
        _ => None,
    }
}

/// The audio of one context.
struct ContextAudio {
    events: mpsc::UnboundedReceiver<Event>,
    socket: Socket,
    context_id: String,
    timeouts: Timeouts,
    sample_rate: u32,
    started: bool,
    ended: bool,
}

#[async_trait]
impl AudioStream for ContextAudio {
    fn container(&self) -> Container {
        Container::RawPcm
    }
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    async fn next_chunk(&mut self) -> Option<Result<Bytes, StageError>> {
        if self.ended {
            return None;
        }
        // The first audio may wait for the service to start; later gaps are stalls.
        let (wait, kind, ms) = if self.started {
            (
                self.timeouts.stall(),
                ErrorKind::Stall,
                self.timeouts.stall_ms,
            )
        } else {
            (
                self.timeouts.response(),
                ErrorKind::Timeout,
                self.timeouts.response_ms,
            )
        };
        let event = match tokio::time::timeout(wait, self.events.recv()).await {
            Err(_) => {
                self.ended = true;
                let what = if self.started {
                    "TTS context silent"
                } else {
                    "no TTS audio"
                };
                return Some(Err(StageError::new(kind, format!("{what} for {ms} ms"))));
            }
            Ok(None) => Event::Failed(StageError::new(
                ErrorKind::Disconnected,
                "the TTS WebSocket closed",
            )),
            Ok(Some(event)) => event,
        };
        match event {
            Event::Chunk(bytes) => {
                self.started = true;
                Some(Ok(bytes))
            }
            Event::Done => {
                self.ended = true;
                None
            }
            Event::Failed(e) => {
                self.ended = true;
                Some(Err(e))
            }
        }
    }
}

impl Drop for ContextAudio {
    fn drop(&mut self) {
        let _ = self.socket.send(Command::Close {
            context_id: std::mem::take(&mut self.context_id),
            cancel: !self.ended,
        });
    }
}

/// The text side of one context.
struct ContextText {
    socket: Socket,
    context_id: String,
    config: Arc<CartesiaConfig>,
    finished: bool,
}

#[async_trait]
impl TextSink for ContextText {
    async fn push(&mut self, text: &str) -> Result<(), StageError> {
        if self.finished {
            return Err(StageError::new(
                ErrorKind::Protocol,
                "text pushed after the context was finished",
            ));
        }
        if text.is_empty() {
            return Ok(());
        }
        let body = generation(&self.config, &self.context_id, text, true);
        self.socket.send(Command::Send(body))
    }

    async fn finish(&mut self) -> Result<(), StageError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let body = generation(&self.config, &self.context_id, "", false);
        self.socket.send(Command::Send(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> CartesiaTts {
        let config: CartesiaConfig = toml::from_str("base_url = \"ws://127.0.0.1:9/\"").unwrap();
        CartesiaTts::new(config, Some(ApiKey::new("secret")), Timeouts::default()).unwrap()
    }

    #[test]
    fn requests_follow_cartesias_shape() {
        let tts = client();
        assert_eq!(tts.url(), "ws://127.0.0.1:9/tts/websocket");
        let body: serde_json::Value =
            serde_json::from_str(&generation(&tts.config, "c1", "Hello ", true)).unwrap();
        assert_eq!(body["context_id"], "c1");
        assert_eq!(body["transcript"], "Hello ");
        assert_eq!(body["continue"], true);
        assert_eq!(body["voice"]["mode"], "id");
        assert_eq!(body["output_format"]["container"], "raw");
        assert_eq!(body["output_format"]["encoding"], "pcm_s16le");
        assert_eq!(body["output_format"]["sample_rate"], 16000);
        assert!(body.get("max_buffer_delay_ms").is_none());
        assert!(!format!("{tts:?}").contains("secret"));
    }

    #[test]
    fn bad_rates_name_their_key() {
        let config: CartesiaConfig = toml::from_str("sample_rate = 12345").unwrap();
        assert_eq!(config.validate().unwrap_err().0, "sample_rate");
    }

    #[test]
    fn messages_are_routed_by_context() {
        let mut contexts = Contexts::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        contexts.open.insert("a".into(), tx);
        let chunk =
            r#"{"type":"chunk","data":"AAE=","done":false,"status_code":206,"context_id":"a"}"#;
        assert!(route(chunk, &mut contexts));
        assert!(matches!(rx.try_recv(), Ok(Event::Chunk(b)) if b.as_ref() == [0, 1]));
        assert!(route(
            r#"{"type":"done","done":true,"status_code":206,"context_id":"a"}"#,
            &mut contexts
        ));
        assert!(matches!(rx.try_recv(), Ok(Event::Done)));
        // Late messages of an ended context are dropped; unknown ones fail what is open.
        assert!(route(chunk, &mut contexts));
        let (tx, mut rx) = mpsc::unbounded_channel();
        contexts.open.insert("b".into(), tx);
        let stray = r#"{"type":"chunk","data":"AAE=","done":false,"context_id":"zz"}"#;
        assert!(route(stray, &mut contexts));
        assert!(matches!(rx.try_recv(), Ok(Event::Failed(e)) if e.kind == ErrorKind::Protocol));
    }

    #[test]
    fn errors_and_bad_base64_are_protocol_errors() {
        for message in [
            r#"{"type":"error","done":true,"title":"Invalid model","message":"no such model","status_code":400,"context_id":"a"}"#,
            r#"{"type":"error","done":true,"error":"Invalid model","status_code":400,"context_id":"a"}"#,
            r#"{"type":"chunk","data":"%%%","done":false,"context_id":"a"}"#,
        ] {
            let mut contexts = Contexts::default();
            let (tx, mut rx) = mpsc::unbounded_channel();
            contexts.open.insert("a".into(), tx);
            assert!(route(message, &mut contexts));
            match rx.try_recv() {
                Ok(Event::Failed(e)) => assert_eq!(e.kind, ErrorKind::Protocol, "{message}"),
                other => panic!("{message}: {other:?}"),
            }
        }
        let mut contexts = Contexts::default();
        assert!(!route("{not json", &mut contexts));
    }
}
