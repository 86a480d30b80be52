//! Chat language models over OpenAI's Chat Completions API with `stream: true` (SSE).
//!
//! Works unchanged against OpenAI-compatible local servers (llama.cpp server, vLLM, Ollama):
//! only `base_url` and `model` differ, and the key is optional.

use std::collections::VecDeque;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{ApiKey, HttpClients, Timeouts, join_url, next_chunk, reject_status, send};
use crate::stage::{LanguageModel, LlmRequest, TokenStream, ToolCall};
use crate::timing::{ErrorKind, StageError};

/// Scenario settings of the OpenAI-compatible backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// `https://api.openai.com/v1`, a local server's `/v1`, or `emulator`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Model name.
    #[serde(default = "default_model")]
    pub model: String,
    /// Environment variable holding the API key (optional for local servers).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// Upper bound on the reply's tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: f32,
    /// The system prompt that starts every conversation.
    #[serde(default = "default_system_prompt")]
    pub system_prompt: String,
}

fn default_base_url() -> String {
    "https://api.openai.com/v1".into()
}
fn default_model() -> String {
    "gpt-4o-mini".into()
}
fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}
fn default_max_tokens() -> u32 {
    150
}
fn default_system_prompt() -> String {
    "You are a friendly voice assistant on a phone call. Answer in one to three short spoken sentences.".into()
}

/// The Chat Completions client.
#[derive(Debug, Clone)]
pub struct OpenAiLlm {
    config: OpenAiConfig,
    key: Option<ApiKey>,
    timeouts: Timeouts,
    http: HttpClients,
}

impl OpenAiLlm {
    /// A client for `config`, authenticating with `key` when given.
    pub fn new(
        config: OpenAiConfig,
        key: Option<ApiKey>,
        timeouts: Timeouts,
    ) -> Result<OpenAiLlm, StageError> {
        Ok(OpenAiLlm {
            http: HttpClients::new(&timeouts)?,
            config,
            key,
            timeouts,
        })
    }

    /// The system prompt the pipeline should start conversations with.
    pub fn system_prompt(&self) -> &str {
        &self.config.system_prompt
    }
}

fn error_message(v: &serde_json::Value) -> Option<String> {
    v.pointer("/error/message")
        .and_then(|m| m.as_str())
        .map(str::to_string)
}

#[async_trait]
impl LanguageModel for OpenAiLlm {
    fn name(&self) -> &str {
        "openai"
    }

    async fn start(&self, request: &LlmRequest) -> Result<Box<dyn TokenStream>, StageError> {
        let mut messages = serde_json::to_value(&request.messages).unwrap_or_default();
        if let (Some(x), Some(list)) = (&request.tool_exchange, messages.as_array_mut()) {
            list.push(serde_json::json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": x.call.id,
                    "type": "function",
                    "function": {"name": x.call.name, "arguments": x.call.arguments},
                }],
            }));
            list.push(serde_json::json!({
                "role": "tool",
                "tool_call_id": x.call.id,
                "content": x.result,
            }));
        }
        let mut body = serde_json::json!({
            "model": self.config.model,
            "messages": messages,
            "stream": request.stream,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        });
        if let Some(tools) = &request.tools {
            body["tools"] = tools.clone();
        }
        if request.stream {
            body["stream_options"] = serde_json::json!({"include_usage": true});
        }
        let mut builder = self
            .http
            .get(request.reuse_connection)
            .post(join_url(&self.config.base_url, "chat/completions"))
            .json(&body)
            .header(super::SESSION_HEADER, &request.session);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key.expose());
        }
        let resp = send(builder, &self.timeouts).await?;
        let resp = reject_status(resp, &self.timeouts, error_message).await?;
        if request.stream {
            Ok(Box::new(SseTokens {
                resp,
                timeouts: self.timeouts,
                buffer: SseBuffer::default(),
                pending: VecDeque::new(),
                usage: None,
                done: false,
                calls: Vec::new(),
            }))
        } else {
            let bytes = match tokio::time::timeout(self.timeouts.response(), resp.bytes()).await {
                Err(_) => {
                    return Err(StageError::new(
                        ErrorKind::Timeout,
                        "completion body timed out",
                    ));
                }
                Ok(Err(e)) => return Err(super::body_error(&e)),
                Ok(Ok(b)) => b,
            };
            let completion: Completion = serde_json::from_slice(&bytes).map_err(|e| {
                StageError::new(ErrorKind::Protocol, format!("malformed completion: {e}"))
            })?;
            let message = completion.choices.into_iter().next().map(|c| c.message);
            let calls: Vec<ToolCall> = message
                .as_ref()
                .map(|m| {
                    m.tool_calls
                        .iter()
                        .map(|c| ToolCall {
                            id: c.id.clone(),
                            name: c.function.name.clone(),
                            arguments: c.function.arguments.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let content = message.and_then(|m| m.content).unwrap_or_default();
            Ok(Box::new(WholeReply {
                content: (!content.is_empty() || calls.is_empty()).then_some(content),
                usage: completion.usage.map(|u| u.completion_tokens),
                calls,
            }))
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<CompletionChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
}

#[derive(Deserialize)]
struct CompletionMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WholeToolCall>,
}

#[derive(Deserialize)]
struct WholeToolCall {
    #[serde(default)]
    id: String,
    function: WholeFunction,
}

#[derive(Deserialize)]
struct WholeFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct Usage {
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A piece of a streamed function call: the first piece of call `index` carries its id and
/// name, later ones pieces of its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct ToolCallDelta {
    /// Which call of the reply (calls stream one after another).
    #[serde(default)]
    pub index: u32,
    /// The call's id, on its first piece.
    #[serde(default)]
    pub id: Option<String>,
    /// The function's name and a piece of its arguments.
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

/// `tool_calls[].function` of a stream chunk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct FunctionDelta {
    /// The function's name, on the call's first piece.
    #[serde(default)]
    pub name: Option<String>,
    /// A piece of the arguments' JSON text.
    #[serde(default)]
    pub arguments: Option<String>,
}

/// Adds `deltas` to the calls assembled so far.
fn assemble(calls: &mut Vec<ToolCall>, deltas: Vec<ToolCallDelta>) {
    for d in deltas {
        let i = d.index as usize;
        if calls.len() <= i {
            calls.resize_with(i + 1, ToolCall::default);
        }
        let call = &mut calls[i];
        if let Some(id) = d.id {
            call.id = id;
        }
        if let Some(f) = d.function {
            if let Some(name) = f.name {
                call.name.push_str(&name);
            }
            if let Some(args) = f.arguments {
                call.arguments.push_str(&args);
            }
        }
    }
}

struct WholeReply {
    content: Option<String>,
    usage: Option<u64>,
    calls: Vec<ToolCall>,
}

#[async_trait]
impl TokenStream for WholeReply {
    async fn next_token(&mut self) -> Option<Result<String, StageError>> {
        self.content.take().map(Ok)
    }
    fn usage_tokens(&self) -> Option<u64> {
        self.usage
    }
    fn tool_calls(&mut self) -> Vec<ToolCall> {
        std::mem::take(&mut self.calls)
    }
}

struct SseTokens {
    resp: reqwest::Response,
    timeouts: Timeouts,
    buffer: SseBuffer,
    pending: VecDeque<String>,
    usage: Option<u64>,
    done: bool,
    calls: Vec<ToolCall>,
}

/// What one SSE event of a Chat Completions stream means.
#[derive(Debug, PartialEq)]
pub enum SseEvent {
    /// Content pieces (possibly none: role-only or finish chunks).
    Content(Vec<String>),
    /// Pieces of function calls (and any content the same chunk carried).
    ToolCalls {
        /// Content pieces.
        content: Vec<String>,
        /// Function-call pieces.
        deltas: Vec<ToolCallDelta>,
    },
    /// The usage chunk.
    Usage(u64),
    /// `data: [DONE]`.
    Done,
}

/// Parses one SSE event (the lines between blank lines).
pub fn parse_event(event: &str) -> Result<Option<SseEvent>, StageError> {
    let data: Vec<&str> = event
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return Ok(None); // comments, keep-alives, `event:` lines alone
    }
    let data = data.join("\n");
    if data.trim() == "[DONE]" {
        return Ok(Some(SseEvent::Done));
    }
    let value: serde_json::Value = serde_json::from_str(&data)
        .map_err(|e| StageError::new(ErrorKind::Protocol, format!("SSE data is not JSON: {e}")))?;
    if let Some(message) = error_message(&value) {
        return Err(StageError::new(
            ErrorKind::Protocol,
            format!("error in stream: {message}"),
        ));
    }
    let chunk: Chunk = serde_json::from_value(value)
        .map_err(|e| StageError::new(ErrorKind::Protocol, format!("malformed chunk: {e}")))?;
    if let Some(u) = chunk.usage
        && chunk.choices.is_empty()
    {
        return Ok(Some(SseEvent::Usage(u.completion_tokens)));
    }
    let mut content = Vec::new();
    let mut deltas = Vec::new();
    for c in chunk.choices {
        if let Some(text) = c.delta.content.filter(|c| !c.is_empty()) {
            content.push(text);
        }
        if let Some(calls) = c.delta.tool_calls {
            deltas.extend(calls);
        }
    }
    if deltas.is_empty() {
        Ok(Some(SseEvent::Content(content)))
    } else {
        Ok(Some(SseEvent::ToolCalls { content, deltas }))
    }
}

/// The longest SSE event accepted: a server that never ends an event must not make the client
/// buffer without bound (a real chunk is a few hundred bytes).
pub const MAX_SSE_EVENT_BYTES: usize = 1 << 20;

/// The bytes of an SSE body received so far, cut into events at blank lines. Chunks may split
/// an event (or a UTF-8 character) anywhere: only complete events come out.
#[derive(Debug, Default)]
pub struct SseBuffer {
    bytes: Vec<u8>,
    /// Bytes already searched for a blank line (less the 3 a separator may straddle), so a
    /// long event arriving in small chunks is not rescanned from its start each time.
    searched: usize,
}

impl SseBuffer {
    /// Appends the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
    }

    /// Takes the first complete event (without its blank line), if one has arrived; fails
    /// once more than [`MAX_SSE_EVENT_BYTES`] are buffered without an event's end.
    pub fn next_event(&mut self) -> Result<Option<String>, StageError> {
        let from = self.searched.saturating_sub(3);
        let Some((at, sep)) = event_end(&self.bytes[from..]).map(|(at, sep)| (from + at, sep))
        else {
            self.searched = self.bytes.len();
            if self.bytes.len() > MAX_SSE_EVENT_BYTES {
                return Err(StageError::new(
                    ErrorKind::Protocol,
                    format!("SSE event longer than {MAX_SSE_EVENT_BYTES} bytes"),
                ));
            }
            return Ok(None);
        };
        let event: Vec<u8> = self.bytes.drain(..at + sep).collect();
        self.searched = 0;
        Ok(Some(String::from_utf8_lossy(&event[..at]).into_owned()))
    }
}

/// Finds the end of the first complete SSE event in `buf` (the blank line), and its length.
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[async_trait]
impl TokenStream for SseTokens {
    async fn next_token(&mut self) -> Option<Result<String, StageError>> {
        loop {
            if let Some(token) = self.pending.pop_front() {
                return Some(Ok(token));
            }
            if self.done {
                return None;
            }
            // `None`: no complete event yet; `Some(Ok(None))`: an event without data.
            let parsed = match self.buffer.next_event() {
                Ok(Some(event)) => Some(parse_event(&event)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            };
            if let Some(parsed) = parsed {
                match parsed {
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Ok(None) => {}
                    Ok(Some(SseEvent::Done)) => self.done = true,
                    Ok(Some(SseEvent::Usage(n))) => self.usage = Some(n),
                    Ok(Some(SseEvent::Content(pieces))) => self.pending.extend(pieces),
                    Ok(Some(SseEvent::ToolCalls { content, deltas })) => {
                        self.pending.extend(content);
                        assemble(&mut self.calls, deltas);
                    }
                }
                continue;
            }
            match next_chunk(&mut self.resp, &self.timeouts).await {
                Some(Ok(bytes)) => self.buffer.push(&bytes),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return Some(Err(StageError::new(
                        ErrorKind::Disconnected,
                        "stream ended before data: [DONE]",
                    )));
                }
            }
        }
    }

    fn usage_tokens(&self) -> Option<u64> {
        self.usage
    }

    fn tool_calls(&mut self) -> Vec<ToolCall> {
        std::mem::take(&mut self.calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stream_events() {
        let role = r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(parse_event(role).unwrap(), Some(SseEvent::Content(vec![])));
        let tok = r#"data: {"id":"c","choices":[{"index":0,"delta":{"content":" Hi"},"finish_reason":null}]}"#;
        assert_eq!(
            parse_event(tok).unwrap(),
            Some(SseEvent::Content(vec![" Hi".into()]))
        );
        let usage = r#"data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10}}"#;
        assert_eq!(parse_event(usage).unwrap(), Some(SseEvent::Usage(7)));
        assert_eq!(parse_event("data: [DONE]").unwrap(), Some(SseEvent::Done));
        assert_eq!(parse_event(": keep-alive").unwrap(), None);
        assert_eq!(
            parse_event(r#"data: {"id": broken"#).unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn streamed_tool_calls_assemble_from_their_pieces() {
        let events = [
            r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"order_status","arguments":""}}]},"finish_reason":null}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"order_"}}]},"finish_reason":null}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"id\":\"1234\"}"}}]},"finish_reason":null}]}"#,
            r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        let mut calls = Vec::new();
        for e in events {
            match parse_event(e).unwrap() {
                Some(SseEvent::ToolCalls { content, deltas }) => {
                    assert!(content.is_empty());
                    assemble(&mut calls, deltas);
                }
                Some(SseEvent::Content(c)) => assert!(c.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            calls,
            vec![ToolCall {
                id: "call_1".into(),
                name: "order_status".into(),
                arguments: r#"{"order_id":"1234"}"#.into(),
            }]
        );
    }

    #[test]
    fn finds_event_boundaries() {
        assert_eq!(event_end(b"data: x\n\ndata: y"), Some((7, 2)));
        assert_eq!(event_end(b"data: x\r\n\r\n"), Some((7, 4)));
        assert_eq!(event_end(b"data: x\n"), None);
    }
}
