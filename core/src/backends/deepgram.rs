//! Streaming speech-to-text over WebSocket in Deepgram's live-streaming shape.
//!
//! `GET {base_url}/v1/listen?model=..&encoding=linear16&sample_rate=..&channels=1
//! &interim_results=..&endpointing=..&utterance_end_ms=..&tag=<call id>` with
//! `Authorization: Token <key>`; binary frames of PCM up, JSON `Results`, `UtteranceEnd`,
//! `SpeechStarted` and `Metadata` down; `Finalize` and `CloseStream` control messages.

use async_trait::async_trait;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ApiKey, Timeouts, error_chain, join_url};
use crate::stage::{CallInfo, SpeechToText, SttEvent, SttOptions, SttReceiver, SttSender};
use crate::timing::{ErrorKind, StageError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Scenario settings of the Deepgram backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepgramConfig {
    /// `wss://api.deepgram.com`, or `emulator` for latlab's emulator.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Model name.
    #[serde(default = "default_model")]
    pub model: String,
    /// Language code.
    #[serde(default)]
    pub language: Option<String>,
    /// Environment variable holding the API key.
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
}

fn default_base_url() -> String {
    "wss://api.deepgram.com".into()
}
fn default_model() -> String {
    "nova-3".into()
}
fn default_key_env() -> String {
    "DEEPGRAM_API_KEY".into()
}

/// The Deepgram live-streaming client.
#[derive(Debug, Clone)]
pub struct DeepgramStt {
    config: DeepgramConfig,
    key: Option<ApiKey>,
    timeouts: Timeouts,
}

impl DeepgramStt {
    /// A client for `config`, authenticating with `key` when given.
    pub fn new(config: DeepgramConfig, key: Option<ApiKey>, timeouts: Timeouts) -> DeepgramStt {
        DeepgramStt {
            config,
            key,
            timeouts,
        }
    }

    /// The URL of a stream for this call and these options.
    pub fn listen_url(&self, call: &CallInfo, options: &SttOptions) -> String {
        let mut url = join_url(&self.config.base_url, "v1/listen");
        let endpointing = match options.endpointing_ms {
            Some(ms) => ms.to_string(),
            None => "false".into(),
        };
        url.push_str(&format!(
            "?model={}&encoding=linear16&sample_rate={}&channels=1&interim_results={}&endpointing={}&punctuate=true&vad_events=true",
            encode(&self.config.model),
            call.sample_rate,
            options.interim_results,
            endpointing,
        ));
        if let Some(ms) = options.utterance_end_ms {
            url.push_str(&format!("&utterance_end_ms={ms}"));
        }
        if let Some(lang) = &self.config.language {
            url.push_str(&format!("&language={}", encode(lang)));
        }
        url.push_str(&format!("&tag={}", encode(&call.call_id)));
        url
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[async_trait]
impl SpeechToText for DeepgramStt {
    fn name(&self) -> &str {
        "deepgram"
    }

    async fn open(
        &self,
        call: &CallInfo,
        options: &SttOptions,
    ) -> Result<(Box<dyn SttSender>, Box<dyn SttReceiver>), StageError> {
        let mut request = self
            .listen_url(call, options)
            .into_client_request()
            .map_err(|e| StageError::new(ErrorKind::Connect, format!("bad STT URL: {e}")))?;
        if let Ok(session) = call.session.parse() {
            request.headers_mut().insert(super::SESSION_HEADER, session);
        }
        if let Some(key) = &self.key {
            let value = format!("Token {}", key.expose()).parse().map_err(|_| {
                StageError::new(ErrorKind::Connect, "API key is not a valid header value")
            })?;
            request.headers_mut().insert("Authorization", value);
        }
        let connect = tokio_tungstenite::connect_async(request);
        let (ws, _response) = match tokio::time::timeout(self.timeouts.connect(), connect).await {
            Err(_) => {
                return Err(StageError::new(
                    ErrorKind::Timeout,
                    format!("WebSocket not open within {} ms", self.timeouts.connect_ms),
                ));
            }
            Ok(Err(e)) => return Err(connect_error(e)),
            Ok(Ok(ok)) => ok,
        };
        let (sink, stream) = ws.split();
        Ok((
            Box::new(DeepgramSender { sink }),
            Box::new(DeepgramReceiver { stream }),
        ))
    }
}

pub(crate) fn connect_error(e: tungstenite::Error) -> StageError {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                .unwrap_or_default();
            StageError::http(
                status.as_u16(),
                format!("upgrade refused: HTTP {status} {body}"),
            )
        }
        other => StageError::new(ErrorKind::Connect, error_chain(&other)),
    }
}

struct DeepgramSender {
    sink: SplitSink<Ws, Message>,
}

impl DeepgramSender {
    async fn send(&mut self, message: Message) -> Result<(), StageError> {
        self.sink
            .send(message)
            .await
            .map_err(|e| StageError::new(ErrorKind::Disconnected, format!("sending to STT: {e}")))
    }
}

#[async_trait]
impl SttSender for DeepgramSender {
    async fn send_audio(&mut self, pcm: &[i16]) -> Result<(), StageError> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.send(Message::Binary(bytes.into())).await
    }

    async fn finalize(&mut self) -> Result<(), StageError> {
        self.send(Message::Text(r#"{"type":"Finalize"}"#.into()))
            .await
    }

    async fn keep_alive(&mut self) -> Result<(), StageError> {
        self.send(Message::Text(r#"{"type":"KeepAlive"}"#.into()))
            .await
    }

    async fn close(&mut self) -> Result<(), StageError> {
        self.send(Message::Text(r#"{"type":"CloseStream"}"#.into()))
            .await
    }
}

struct DeepgramReceiver {
    stream: SplitStream<Ws>,
}

#[async_trait]
impl SttReceiver for DeepgramReceiver {
    async fn next_event(&mut self) -> Option<Result<SttEvent, StageError>> {
        loop {
            let message = match self.stream.next().await {
                None => {
                    return Some(Err(StageError::new(
                        ErrorKind::Disconnected,
                        "STT stream ended without a close frame",
                    )));
                }
                Some(Err(e)) => {
                    return Some(Err(StageError::new(
                        ErrorKind::Disconnected,
                        error_chain(&e),
                    )));
                }
                Some(Ok(m)) => m,
            };
            match message {
                Message::Text(text) => match parse_message(text.as_str()) {
                    Ok(Some(event)) => return Some(Ok(event)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                },
                Message::Close(frame) => {
                    return match frame {
                        Some(f) if f.code != CloseCode::Normal => Some(Err(StageError::new(
                            ErrorKind::Protocol,
                            format!("STT closed the stream: {} {}", u16::from(f.code), f.reason),
                        ))),
                        _ => None,
                    };
                }
                Message::Binary(_) => {
                    return Some(Err(StageError::new(
                        ErrorKind::Protocol,
                        "unexpected binary message from STT",
                    )));
                }
                _ => continue,
            }
        }
    }
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    start: f64,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    from_finalize: bool,
    channel: Channel,
}

#[derive(Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    transcript: String,
}

/// Parses one server message; `Ok(None)` for message types the pipeline does not use.
pub fn parse_message(text: &str) -> Result<Option<SttEvent>, StageError> {
    let protocol = |what: String| StageError::new(ErrorKind::Protocol, what);
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| protocol(format!("STT message is not JSON: {e}")))?;
    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let event = match kind {
        "Results" => {
            let r: Results = serde_json::from_value(value)
                .map_err(|e| protocol(format!("malformed Results message: {e}")))?;
            let text = r
                .channel
                .alternatives
                .first()
                .map(|a| a.transcript.clone())
                .unwrap_or_default();
            SttEvent::Transcript {
                text,
                is_final: r.is_final,
                speech_final: r.speech_final,
                from_finalize: r.from_finalize,
                audio_start_ms: r.start * 1000.0,
                audio_end_ms: (r.start + r.duration) * 1000.0,
            }
        }
        "UtteranceEnd" => SttEvent::UtteranceEnd {
            last_word_end_ms: value
                .get("last_word_end")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
                * 1000.0,
        },
        "SpeechStarted" => SttEvent::SpeechStarted {
            at_ms: value
                .get("timestamp")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
                * 1000.0,
        },
        "Metadata" => SttEvent::Metadata,
        "Error" => {
            let msg = value
                .get("description")
                .or_else(|| value.get("message"))
                .and_then(|v| v.as_str())
                .unwrap_or("unknown error");
            return Err(protocol(format!("STT error message: {msg}")));
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_final_result() {
        let msg = r#"{"type":"Results","channel_index":[0,1],"duration":1.5,"start":0.5,"is_final":true,"speech_final":true,"from_finalize":false,"channel":{"alternatives":[{"transcript":"hello there","confidence":0.98,"words":[]}]},"metadata":{"request_id":"x"}}"#;
        let event = parse_message(msg).unwrap().unwrap();
        assert_eq!(
            event,
            SttEvent::Transcript {
                text: "hello there".into(),
                is_final: true,
                speech_final: true,
                from_finalize: false,
                audio_start_ms: 500.0,
                audio_end_ms: 2000.0,
            }
        );
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let err = parse_message("{not json").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert!(parse_message(r#"{"type":"Novel"}"#).unwrap().is_none());
    }

    #[test]
    fn url_carries_the_profile_knobs() {
        let stt = DeepgramStt::new(
            DeepgramConfig {
                base_url: "ws://127.0.0.1:9/".into(),
                model: "nova-3".into(),
                language: None,
                api_key_env: "X".into(),
            },
            Some(ApiKey::new("secret")),
            Timeouts::default(),
        );
        let url = stt.listen_url(
            &CallInfo {
                call_id: "call 1".into(),
                sample_rate: 16000,
                session: "call 1#0".into(),
            },
            &SttOptions {
                interim_results: false,
                endpointing_ms: Some(300),
                utterance_end_ms: Some(1000),
            },
        );
        assert!(url.starts_with(
            "ws://127.0.0.1:9/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"
        ));
        assert!(url.contains("interim_results=false&endpointing=300"));
        assert!(url.ends_with("&utterance_end_ms=1000&tag=call+1"));
        assert!(!format!("{stt:?}").contains("secret"));
    }
}
