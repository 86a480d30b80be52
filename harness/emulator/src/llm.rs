//! The emulated OpenAI Chat Completions endpoint (`POST /v1/chat/completions`), streaming over
//! SSE or whole. What to say and when to say it is planned up front by the pure
//! [`plan_completion`], so tests can check timing determinism without a socket.
//!
//! The reply comes from the dataset when the last user message is one of its turns, else it is
//! generated from a fixed phrase list: this module never calls a real model. When the request
//! offers `tools` and the turn has a `tool` in the dataset, the first answer is that tool call
//! (streamed as OpenAI streams `tool_calls`); once a `tool` message follows the user's, the
//! turn's reply is spoken.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use latlab_core::dataset::{Dataset, ExpectedTool};
use rand::{Rng, RngExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Shutdown;
use crate::config::LlmConfig;
use crate::faults::Fault;
use crate::seed::{self, Stream};
use crate::stats::ServiceCounters;
use crate::stream::{Ending, Timed, timed_body};
use crate::trace::{ChunkMark, Mark};

/// The service name used in seeding.
pub const SERVICE: &str = "llm";

const PHRASES: &[&str] = &[
    "Sure, I can help with that.",
    "Let me check that for you.",
    "Your appointment is confirmed for Tuesday at ten.",
    "Is there anything else I can do for you?",
    "I have updated your account.",
    "The next available slot is tomorrow morning.",
    "Could you tell me your order number?",
    "That should arrive within three business days.",
    "Thanks for waiting.",
    "I understand, let me look into it.",
];

/// The dataset's replies (and expected tool calls), keyed by the normalized text of the user
/// turn they answer: per call (the session header names it) first, then over the whole dataset.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    by_call: HashMap<(String, String), Answer>,
    any: HashMap<String, Answer>,
}

/// What the dataset says about one user turn.
#[derive(Debug, Clone, Default)]
struct Answer {
    reply: Option<String>,
    tool: Option<ExpectedTool>,
}

impl Replies {
    /// Every turn of `dataset` that has a reply or a tool.
    pub fn from_dataset(dataset: Option<&Dataset>) -> Replies {
        let mut replies = Replies::default();
        for call in dataset.into_iter().flat_map(|d| d.calls.iter()) {
            for turn in &call.turns {
                if turn.reply.is_none() && turn.tool.is_none() {
                    continue;
                }
                let answer = Answer {
                    reply: turn.reply.clone(),
                    tool: turn.tool.clone(),
                };
                let text = normalize(&turn.text);
                replies
                    .by_call
                    .entry((call.id.clone(), text.clone()))
                    .or_insert_with(|| answer.clone());
                replies.any.entry(text).or_insert(answer);
            }
        }
        replies
    }

    fn answer(&self, session: &str, user_text: &str) -> Option<&Answer> {
        let text = normalize(user_text);
        let call = session.rsplit_once('#').map_or(session, |(call, _)| call);
        let call = call.rsplit_once('/').map_or(call, |(_, call)| call);
        self.by_call
            .get(&(call.to_string(), text.clone()))
            .or_else(|| self.any.get(&text))
    }

    /// The reply to `user_text` in the call named by `session` (`<call>#<iteration>`, or an
    /// agent run's `<profile>/<call>#<iteration>` passed on by the agent), or anywhere in the
    /// dataset; compared case-insensitively and ignoring punctuation.
    pub fn lookup(&self, session: &str, user_text: &str) -> Option<&str> {
        self.answer(session, user_text)?.reply.as_deref()
    }

    /// The tool the turn `user_text` of `session` expects, found as [`Replies::lookup`] finds
    /// its reply.
    pub fn lookup_tool(&self, session: &str, user_text: &str) -> Option<&ExpectedTool> {
        self.answer(session, user_text)?.tool.as_ref()
    }
}

/// Lower-case words without punctuation, single-spaced.
fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits text into GPT-like tokens: words carry their leading space, punctuation stands alone.
/// Joining the tokens gives the text back with whitespace collapsed to single spaces.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut space = false;
    let flush = |current: &mut String, tokens: &mut Vec<String>| {
        if !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut current, &mut tokens);
            space = !tokens.is_empty();
        } else if c.is_alphanumeric() || c == '\'' {
            if current.is_empty() && space {
                current.push(' ');
                space = false;
            }
            current.push(c);
        } else {
            flush(&mut current, &mut tokens);
            tokens.push(if space {
                format!(" {c}")
            } else {
                c.to_string()
            });
            space = false;
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

fn generated_reply<R: Rng + ?Sized>(rng: &mut R) -> String {
    let count = rng.random_range(1..=3);
    (0..count)
        .map(|_| PHRASES[rng.random_range(0..PHRASES.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a tool call's arguments (JSON text) the way a model streams them: runs of letters
/// and digits, and runs of the rest, at most 6 characters each. Joined, they give the text back.
pub fn argument_fragments(arguments: &str) -> Vec<String> {
    let mut fragments: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut word = None;
    for c in arguments.chars() {
        let is_word = c.is_alphanumeric();
        if word != Some(is_word) || current.chars().count() >= 6 {
            if !current.is_empty() {
                fragments.push(std::mem::take(&mut current));
            }
            word = Some(is_word);
        }
        current.push(c);
    }
    if !current.is_empty() {
        fragments.push(current);
    }
    fragments
}

/// Arguments that are not JSON: the object left open, with a dangling key.
fn malformed(arguments: &str) -> String {
    let open = arguments.strip_suffix('}').unwrap_or(arguments);
    format!("{open},\"")
}

/// The text of a message's `content`: a string, or the text parts of a content array.
fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// A planned tool call: the call's header, then [`CompletionPlan::tokens`] are its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallPlan {
    /// `call_…`.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// Whether the arguments were made invalid JSON (`malformed_tool_arguments`).
    pub malformed_arguments: bool,
}

/// Everything about one completion decided before the first byte: text, timing, fault.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionPlan {
    /// The completion's tokens (for a tool call, fragments of its arguments).
    pub tokens: Vec<String>,
    /// When each token is due, from the request's arrival; the first is the TTFT.
    pub token_offsets: Vec<Duration>,
    /// When the final chunk is due (the last token's offset, or the TTFT when there are none).
    pub end_offset: Duration,
    /// `stop`, `tool_calls`, or `length` when `max_tokens` cut the reply.
    pub finish_reason: &'static str,
    /// The tool call this completion makes, if it makes one.
    pub tool_call: Option<ToolCallPlan>,
    /// Whitespace-separated words of all messages.
    pub prompt_tokens: u64,
    /// The fault drawn for this request.
    pub fault: Fault,
    /// `chatcmpl-…`.
    pub id: String,
}

/// Plans the completion of `messages` (the request's JSON array) under `seed`, without tools.
pub fn plan_completion(
    seed: u64,
    session: &str,
    config: &LlmConfig,
    replies: &Replies,
    messages: &Value,
    max_tokens: Option<u64>,
) -> CompletionPlan {
    plan_chat(seed, session, config, replies, messages, max_tokens, false)
}

/// Plans the completion of `messages` under `seed`; with `tools_offered`, a turn whose
/// dataset entry has a `tool` is answered with that call until a `tool` message follows the
/// user's.
pub fn plan_chat(
    seed: u64,
    session: &str,
    config: &LlmConfig,
    replies: &Replies,
    messages: &Value,
    max_tokens: Option<u64>,
    tools_offered: bool,
) -> CompletionPlan {
    let key = [
        session.as_bytes(),
        b"\n",
        &serde_json::to_vec(messages).unwrap_or_default(),
    ]
    .concat();
    let list = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    let last_user = list
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(content_text)
        .unwrap_or_default();
    // The tool's result is not in the conversation yet while the user spoke last.
    let awaiting_tool = list
        .last()
        .is_some_and(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    let tool = replies
        .lookup_tool(session, &last_user)
        .filter(|_| tools_offered && awaiting_tool);
    let (mut tokens, tool_call, mut finish_reason) = match tool {
        Some(tool) => {
            let arguments = Value::Object(tool.arguments.clone()).to_string();
            let tool_key = [&key[..], b"\ntool"].concat();
            let mut draw = seed::request_rng(seed, SERVICE, &tool_key, Stream::Fault);
            let malformed_arguments = draw.random::<f64>() < config.malformed_tool_arguments;
            let arguments = if malformed_arguments {
                malformed(&arguments)
            } else {
                arguments
            };
            let call = ToolCallPlan {
                id: format!("call_{}", seed::hex_id(seed, SERVICE, &tool_key, 24)),
                name: tool.name.clone(),
                malformed_arguments,
            };
            (argument_fragments(&arguments), Some(call), "tool_calls")
        }
        None => {
            let text = match replies.lookup(session, &last_user) {
                Some(reply) => reply.to_string(),
                None => {
                    generated_reply(&mut seed::request_rng(seed, SERVICE, &key, Stream::Content))
                }
            };
            (tokenize(&text), None, "stop")
        }
    };
    if let Some(max) = max_tokens
        && tokens.len() as u64 > max
    {
        tokens.truncate(max as usize);
        finish_reason = "length";
    }
    let mut timing = seed::request_rng(seed, SERVICE, &key, Stream::Timing);
    let ttft = config.ttft.sample(&mut timing);
    let mut token_offsets = Vec::with_capacity(tokens.len());
    let mut at = ttft;
    for i in 0..tokens.len() {
        if i > 0 {
            at += config.inter_token.sample(&mut timing);
        }
        token_offsets.push(at);
    }
    let prompt_tokens = list
        .iter()
        .map(|m| content_text(m).split_whitespace().count() as u64)
        .sum();
    let fault = config
        .faults
        .draw(&mut seed::request_rng(seed, SERVICE, &key, Stream::Fault));
    CompletionPlan {
        tokens,
        end_offset: at,
        token_offsets,
        finish_reason,
        tool_call,
        prompt_tokens,
        fault,
        id: format!("chatcmpl-{}", seed::hex_id(seed, SERVICE, &key, 29)),
    }
}

/// What the handlers share.
pub(crate) struct LlmState {
    /// The run's seed.
    pub seed: u64,
    /// This service's config.
    pub config: LlmConfig,
    /// Replies known from the dataset.
    pub replies: Replies,
    /// This service's counters.
    pub counters: Arc<ServiceCounters>,
    /// Fires when the emulator stops.
    pub shutdown: Shutdown,
    /// The wire trace.
    pub trace: Arc<crate::trace::WireTrace>,
}

/// The router of the LLM service.
pub(crate) fn router(state: Arc<LlmState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(state)
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Value,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    /// Function definitions; any non-empty list lets a dataset turn's tool be called.
    #[serde(default)]
    tools: Option<Vec<Value>>,
    // Other fields (`tool_choice`, `temperature`, …) are accepted and ignored: a turn's tool
    // is its answer whatever `tool_choice` says.
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    (status, axum::Json(body)).into_response()
}

async fn completions(
    State(state): State<Arc<LlmState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    state
        .trace
        .mark(crate::session_of(&headers), Mark::LlmRequest);
    state.counters.request();
    if !crate::bearer_authorized(state.config.api_key.as_deref(), &headers) {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        );
    }
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                &format!("We could not parse the JSON body of your request: {e}"),
                "invalid_request_error",
                None,
            );
        }
    };
    if !request.messages.is_array() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "'messages' must be an array.",
            "invalid_request_error",
            None,
        );
    }
    let plan = plan_chat(
        state.seed,
        crate::session_of(&headers),
        &state.config,
        &state.replies,
        &request.messages,
        request.max_completion_tokens.or(request.max_tokens),
        request.tools.as_ref().is_some_and(|t| !t.is_empty()),
    );
    if plan
        .tool_call
        .as_ref()
        .is_some_and(|c| c.malformed_arguments)
    {
        state.counters.fault(Fault::Malformed);
    }
    state.counters.fault(plan.fault);
    if plan.fault == Fault::Http5xx {
        return openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is overloaded or not ready yet. (emulated)",
            "server_error",
            None,
        );
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let model = request.model.unwrap_or_else(|| "emulated".into());
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    let shutdown = state.shutdown.clone();
    if request.stream {
        let (chunks, ending) = sse_chunks(&plan, created, &model, include_usage);
        // The first content token is chunk 1 (chunk 0 carries the role); a tool call has none.
        let mark = (!plan.tokens.is_empty() && plan.tool_call.is_none()).then(|| ChunkMark {
            trace: Arc::clone(&state.trace),
            session: crate::session_of(&headers).to_string(),
            mark: Mark::LlmFirstToken,
            chunk: 1,
        });
        let mut response = Response::new(timed_body(start, chunks, ending, shutdown, mark));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        whole_response(start, &plan, created, &model, shutdown).await
    }
}

fn usage(plan: &CompletionPlan) -> Value {
    let completion = plan.tokens.len() as u64;
    json!({
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": plan.prompt_tokens + completion,
    })
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// The SSE events of a streamed completion and how the stream ends.
fn sse_chunks(
    plan: &CompletionPlan,
    created: u64,
    model: &str,
    include_usage: bool,
) -> (Vec<Timed>, Ending) {
    let chunk = |delta: Value, finish: Value| {
        let mut v = json!({
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_latlab",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        if include_usage {
            v["usage"] = Value::Null;
        }
        sse(&v)
    };
    let ttft = plan
        .token_offsets
        .first()
        .copied()
        .unwrap_or(plan.end_offset);
    // OpenAI's shapes: a tool call's first delta names it with empty arguments, then each
    // delta carries a fragment of the arguments under the same `index`.
    let first = match &plan.tool_call {
        Some(call) => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "index": 0,
                "id": call.id,
                "type": "function",
                "function": { "name": call.name, "arguments": "" },
            }],
            "refusal": null,
        }),
        None => json!({"role": "assistant", "content": ""}),
    };
    let mut chunks = vec![Timed {
        at: ttft,
        bytes: chunk(first, Value::Null),
    }];
    for (token, at) in plan.tokens.iter().zip(&plan.token_offsets) {
        let delta = match plan.tool_call {
            Some(_) => {
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": token } }] })
            }
            None => json!({ "content": token }),
        };
        chunks.push(Timed {
            at: *at,
            bytes: chunk(delta, Value::Null),
        });
    }
    let end = plan.end_offset;
    chunks.push(Timed {
        at: end,
        bytes: chunk(json!({}), json!(plan.finish_reason)),
    });
    if include_usage {
        let v = json!({
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_latlab",
            "choices": [],
            "usage": usage(plan),
        });
        chunks.push(Timed {
            at: end,
            bytes: sse(&v),
        });
    }
    chunks.push(Timed {
        at: end,
        bytes: Bytes::from_static(b"data: [DONE]\n\n"),
    });
    // Mid-stream: after the role chunk and about half of the tokens.
    let cut = 1 + plan.tokens.len().div_ceil(2);
    let ending = match plan.fault {
        Fault::Stall => Ending::StallAfter(cut),
        Fault::Disconnect => Ending::DisconnectAfter(cut),
        Fault::Malformed => {
            let at = chunks[cut - 1].at;
            chunks.insert(
                cut,
                Timed {
                    at,
                    bytes: Bytes::from_static(b"data: {\"id\": broken\n\n"),
                },
            );
            Ending::Complete
        }
        Fault::None | Fault::Http5xx => Ending::Complete,
    };
    (chunks, ending)
}

/// The whole (non-streamed) completion's message.
fn message(plan: &CompletionPlan) -> Value {
    match &plan.tool_call {
        Some(call) => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": call.id,
                "type": "function",
                "function": { "name": call.name, "arguments": plan.tokens.concat() },
            }],
            "refusal": null,
        }),
        None => json!({ "role": "assistant", "content": plan.tokens.concat(), "refusal": null }),
    }
}

async fn whole_response(
    start: Instant,
    plan: &CompletionPlan,
    created: u64,
    model: &str,
    shutdown: Shutdown,
) -> Response {
    let json_response = |body: Body| {
        let mut response = Response::new(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let body = json!({
        "id": plan.id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_latlab",
        "choices": [{
            "index": 0,
            "message": message(plan),
            "logprobs": null,
            "finish_reason": plan.finish_reason,
        }],
        "usage": usage(plan),
    });
    let bytes = Bytes::from(body.to_string());
    let half = bytes.slice(..bytes.len() / 2);
    let at = plan.end_offset;
    let (chunks, ending) = match plan.fault {
        Fault::Stall => (vec![Timed { at, bytes: half }], Ending::StallAfter(1)),
        Fault::Disconnect => (vec![Timed { at, bytes: half }], Ending::DisconnectAfter(1)),
        Fault::Malformed => (
            vec![Timed {
                at,
                bytes: Bytes::from_static(b"{\"id\": broken"),
            }],
            Ending::Complete,
        ),
        Fault::None | Fault::Http5xx => {
            // A whole body: the headers leave with it, when the completion is done.
            tokio::select! {
                _ = tokio::time::sleep_until(start + at) => {}
                _ = shutdown.wait() => {}
            }
            return json_response(Body::from(bytes));
        }
    };
    json_response(timed_body(start, chunks, ending, shutdown, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_keeps_spaces_and_splits_punctuation() {
        let t = tokenize("Sure. Which day, Tuesday?");
        assert_eq!(t, ["Sure", ".", " Which", " day", ",", " Tuesday", "?"]);
        assert_eq!(t.concat(), "Sure. Which day, Tuesday?");
        assert_eq!(tokenize("  it's  ok "), ["it's", " ok"]);
        assert!(tokenize("").is_empty());
    }

    #[test]
    fn normalization_ignores_case_and_punctuation() {
        assert_eq!(normalize("  Hello, World! "), "hello world");
    }

    #[test]
    fn plan_is_deterministic_and_seed_dependent() {
        let config = LlmConfig::default();
        let replies = Replies::default();
        let messages = json!([{"role": "user", "content": "book me a table"}]);
        let a = plan_completion(1, "", &config, &replies, &messages, None);
        let b = plan_completion(1, "", &config, &replies, &messages, None);
        let c = plan_completion(2, "", &config, &replies, &messages, None);
        assert_eq!(a, b);
        assert_ne!(a.token_offsets, c.token_offsets);
        assert!(!a.tokens.is_empty());
        assert!(a.token_offsets.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(a.prompt_tokens, 4);
    }

    #[test]
    fn argument_fragments_join_back() {
        let args = r#"{"order_id":"A-48152","zip":"02139"}"#;
        let f = argument_fragments(args);
        assert!(f.len() > 5, "{f:?}");
        assert_eq!(f.concat(), args);
        assert!(f.iter().all(|p| p.chars().count() <= 6));
        assert!(argument_fragments("").is_empty());
        assert!(serde_json::from_str::<Value>(&malformed(args)).is_err());
        assert!(serde_json::from_str::<Value>(&malformed("{}")).is_err());
    }

    #[test]
    fn max_tokens_truncates() {
        let plan = plan_completion(
            1,
            "",
            &LlmConfig::default(),
            &Replies::default(),
            &json!([{"role": "user", "content": "x"}]),
            Some(2),
        );
        assert_eq!(plan.tokens.len(), 2);
        assert_eq!(plan.finish_reason, "length");
    }
}
