//! The answering side of a turn: send the transcript to the LLM, cut its streamed reply into
//! sentences, and speak them through TTS as the profile says (first sentence or whole reply),
//! or, with `tts_input = "tokens"` and a backend that takes text incrementally, stream every
//! token into one TTS context.
//!
//! [`answer`] returns once the reply's text is complete, with its speech still streaming in
//! [`Speaking`]: the conversation's next turn needs only the text, so a user who speaks again
//! while the agent is still talking is not kept waiting behind the previous reply's audio.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Backends;
use super::turn::Answered;
use crate::audio::AudioProbe;
use crate::clock::Epoch;
use crate::dataset::ExpectedTool;
use crate::profile::{Profile, TtsInput, TtsStart};
use crate::stage::{
    AudioStream, ChatMessage, IncrementalSpeech, LanguageModel, LlmRequest, TextToSpeech, ToolCall,
    ToolExchange, TtsRequest,
};
use crate::text::SentenceSplitter;
use crate::timing::{CacheOutcome, ErrorKind, StageError, ToolTurn};
use crate::tools::{ToolResult, Tools, cache_key, parse_arguments};

/// A reply whose text is complete and whose speech may still be streaming.
pub(super) struct Speaking {
    out: Answered,
    speaker: tokio::task::JoinHandle<Spoken>,
}

impl Speaking {
    /// The reply's text (complete, or cut short by an LLM error).
    pub(super) fn reply(&self) -> &str {
        &self.out.reply
    }

    /// Waits for the speech to end and returns the whole turn's answering side.
    pub(super) async fn finish(self) -> Answered {
        let Speaking { mut out, speaker } = self;
        let spoken = speaker.await.unwrap_or_else(|e| Spoken {
            error: Some(StageError::new(
                ErrorKind::Cancelled,
                format!("TTS task failed: {e}"),
            )),
            ..Spoken::default()
        });
        out.tts_sent_ns = spoken.sent_ns;
        out.tts_first_byte_ns = spoken.first_byte_ns;
        out.tts_first_audible_ns = spoken.first_audible_ns;
        out.tts_done_ns = spoken.done_ns;
        out.tts_bytes = spoken.bytes;
        out.tts_chars = spoken.chars;
        out.tts_audio_ms = spoken.audio_ms;
        out.tts_lead_ms = spoken.lead_ms;
        out.tts_error = spoken.error;
        out
    }
}

/// How a turn's LLM request waited for the call's answering side, which sends one request
/// at a time.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Queued {
    /// When the request was ready (its transcript final and handed over).
    pub at_ns: u64,
    /// How long it then waited for the call's previous request to finish.
    pub wait_ns: u64,
}

/// Answers one turn; `history` is the conversation before it, ending with the user's words.
/// Returns when the LLM's reply is complete; [`Speaking::finish`] waits for its speech.
///
/// With tools, the first round may end in a function call instead of words: the call runs
/// (through the profile's cache), and a second round with its result streams the spoken
/// answer. Only a reply's first call is made (a voice turn asks one thing; document the rest).
pub(super) async fn answer(
    epoch: Epoch,
    profile: &Profile,
    backends: &Backends,
    messages: Vec<ChatMessage>,
    session: &str,
    queued: Queued,
    expected: Option<&ExpectedTool>,
) -> Speaking {
    let mut out = Answered {
        llm_queued_ns: Some(queued.at_ns),
        llm_queue_wait_ns: Some(queued.wait_ns),
        ..Answered::default()
    };
    // With `by_token` the channel carries every token, else whole sentences or the reply.
    let by_token = profile.tts_input == TtsInput::Tokens && backends.tts.incremental().is_some();
    let (sentences, sentence_rx) = mpsc::unbounded_channel::<String>();
    let speaker = tokio::spawn(speak(
        epoch,
        Arc::clone(&backends.tts),
        by_token,
        profile.tts_streaming,
        profile.connection_reuse,
        session.to_string(),
        sentence_rx,
    ));
    let tools = backends
        .tools
        .as_ref()
        .filter(|t| !t.functions().is_empty());
    let mut request = LlmRequest {
        messages,
        stream: profile.llm_streaming,
        reuse_connection: profile.connection_reuse,
        session: session.to_string(),
        tools: tools.map(|t| t.definitions()),
        tool_exchange: None,
    };
    let mut replying = Replying {
        splitter: SentenceSplitter::new(),
        by_token,
        pieces: 0,
        usage: 0,
        first_token_ns: None,
    };
    out.llm_sent_ns = Some(epoch.elapsed_ns());
    let calls = replying
        .round(
            epoch,
            profile,
            &backends.llm,
            &request,
            &mut out,
            &sentences,
        )
        .await;
    if let (Some(tools), Some(call), None) = (tools, calls.into_iter().next(), &out.llm_error) {
        let mut tool = ToolTurn {
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            call_ns: Some(epoch.elapsed_ns()),
            matched: expected.map(|e| e.name == call.name && same_arguments(e, &call.arguments)),
            ..ToolTurn::default()
        };
        match run_tool(epoch, profile, backends, tools, &call, session, &mut tool).await {
            Ok(result) => {
                out.tool_bytes = result.bytes;
                request.tool_exchange = Some(ToolExchange {
                    call,
                    result: result.content,
                });
                tool.llm2_request_sent_ns = Some(epoch.elapsed_ns());
                replying.first_token_ns = None;
                // A second call in the spoken round is not made: its words are the answer.
                let _ = replying
                    .round(
                        epoch,
                        profile,
                        &backends.llm,
                        &request,
                        &mut out,
                        &sentences,
                    )
                    .await;
                tool.llm2_first_token_ns = replying.first_token_ns;
            }
            Err(e) => out.tool_error = Some(e),
        }
        out.tool = Some(tool);
    }
    out.tokens = if replying.usage > 0 {
        replying.usage
    } else {
        replying.pieces
    };
    if out.llm_error.is_none() && out.tool_error.is_none() {
        let rest = match profile.tts_start {
            _ if by_token => None,
            TtsStart::FirstSentence => replying.splitter.finish(),
            TtsStart::FullReply => Some(out.reply.trim().to_string()).filter(|r| !r.is_empty()),
        };
        if let Some(rest) = rest {
            out.first_sentence_ns.get_or_insert(epoch.elapsed_ns());
            let _ = sentences.send(rest);
        } else if out.reply.trim().is_empty() {
            out.llm_error = Some(StageError::new(
                ErrorKind::Protocol,
                "the LLM replied with no text",
            ));
        }
    }
    drop(sentences);
    Speaking { out, speaker }
}

/// A reply's text as it streams in, over one or two LLM rounds.
struct Replying {
    splitter: SentenceSplitter,
    /// Every token goes to the speaker (one incremental TTS context), not sentences.
    by_token: bool,
    pieces: u64,
    usage: u64,
    /// The round's first content token.
    first_token_ns: Option<u64>,
}

impl Replying {
    /// Streams one LLM round: its words go to the speaker sentence by sentence (as the
    /// profile says); returns the function calls it made.
    async fn round(
        &mut self,
        epoch: Epoch,
        profile: &Profile,
        llm: &Arc<dyn LanguageModel>,
        request: &LlmRequest,
        out: &mut Answered,
        sentences: &mpsc::UnboundedSender<String>,
    ) -> Vec<ToolCall> {
        let mut stream = match llm.start(request).await {
            Err(e) => {
                out.llm_error = Some(e);
                return Vec::new();
            }
            Ok(stream) => stream,
        };
        let mut pieces = 0;
        while let Some(next) = stream.next_token().await {
            match next {
                Err(e) => {
                    out.llm_error = Some(e);
                    break;
                }
                Ok(token) => {
                    let now = epoch.elapsed_ns();
                    out.llm_first_token_ns.get_or_insert(now);
                    self.first_token_ns.get_or_insert(now);
                    out.llm_end_ns = Some(now);
                    pieces += 1;
                    out.reply.push_str(&token);
                    if self.by_token {
                        out.first_sentence_ns.get_or_insert(now);
                        let _ = sentences.send(token);
                    } else if profile.tts_start == TtsStart::FirstSentence {
                        for sentence in self.splitter.push(&token) {
                            out.first_sentence_ns.get_or_insert(now);
                            let _ = sentences.send(sentence);
                        }
                    }
                }
            }
        }
        self.pieces += pieces;
        self.usage += stream.usage_tokens().unwrap_or(0);
        if out.llm_error.is_some() {
            return Vec::new();
        }
        stream.tool_calls()
    }
}

/// Runs a tool call: its arguments checked, then the profile's cache, then the tool's API
/// (storing the result on a miss). A cache that cannot be read fails the tool stage; one that
/// cannot be written does not (the turn has its result).
async fn run_tool(
    epoch: Epoch,
    profile: &Profile,
    backends: &Backends,
    tools: &Tools,
    call: &ToolCall,
    session: &str,
    tool: &mut ToolTurn,
) -> Result<ToolResult, StageError> {
    parse_arguments(&call.arguments)?;
    let key = cache_key(&backends.cache_namespace, &call.name, &call.arguments);
    let cache = backends.tool_cache.as_ref();
    if let Some(cache) = cache {
        if let Some(content) = cache.get(&key).await? {
            tool.cache = Some(CacheOutcome::Hit);
            tool.result_ns = Some(epoch.elapsed_ns());
            return Ok(ToolResult {
                bytes: content.len() as u64,
                content,
            });
        }
        tool.cache = Some(CacheOutcome::Miss);
    } else {
        tool.cache = Some(CacheOutcome::Off);
    }
    tool.sent_ns = Some(epoch.elapsed_ns());
    let result = tools
        .call(
            &call.name,
            &call.arguments,
            session,
            profile.connection_reuse,
        )
        .await?;
    tool.result_ns = Some(epoch.elapsed_ns());
    if let Some(cache) = cache {
        let ttl = std::time::Duration::from_secs(profile.tool_cache_ttl_s.max(1));
        let _ = cache.put(&key, &result.content, ttl).await;
    }
    Ok(result)
}

/// Whether the streamed arguments are the dataset's (as JSON values, key order aside).
fn same_arguments(expected: &ExpectedTool, arguments: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(arguments)
        .is_ok_and(|v| v == serde_json::Value::Object(expected.arguments.clone()))
}

#[derive(Debug, Default)]
struct Spoken {
    sent_ns: Option<u64>,
    first_byte_ns: Option<u64>,
    first_audible_ns: Option<u64>,
    done_ns: Option<u64>,
    bytes: u64,
    chars: u64,
    audio_ms: f64,
    lead_ms: f64,
    error: Option<StageError>,
}

/// Speaks the reply's text as it arrives: sentences one after another, or (with `by_token`)
/// every token into one incremental context. Stops at the first failure.
async fn speak(
    epoch: Epoch,
    tts: Arc<dyn TextToSpeech>,
    by_token: bool,
    streaming: bool,
    reuse_connection: bool,
    session: String,
    mut texts: mpsc::UnboundedReceiver<String>,
) -> Spoken {
    let mut out = Spoken::default();
    let request = |text: String| TtsRequest {
        text,
        streaming,
        reuse_connection,
        session: session.clone(),
    };
    match tts.incremental() {
        Some(incremental) if by_token => {
            speak_tokens(epoch, incremental, request(String::new()), texts, &mut out).await;
        }
        _ => {
            while let Some(text) = texts.recv().await {
                out.chars += text.chars().count() as u64;
                out.sent_ns.get_or_insert(epoch.elapsed_ns());
                let stream = match tts.start(&request(text)).await {
                    Ok(s) => s,
                    Err(e) => {
                        out.error = Some(e);
                        break;
                    }
                };
                listen(epoch, stream, &mut out, None).await;
                if out.error.is_some() {
                    break;
                }
            }
        }
    }
    if out.error.is_none() && out.sent_ns.is_some() && out.first_audible_ns.is_none() {
        out.error = Some(StageError::new(
            ErrorKind::Inaudible,
            format!("{:.0} ms of audio and not one audible sample", out.audio_ms),
        ));
    }
    out
}

/// Streams every token into one context opened at the first token, reading its audio at the
/// same time; the context is finished when the reply's text ends.
async fn speak_tokens(
    epoch: Epoch,
    tts: &dyn IncrementalSpeech,
    request: TtsRequest,
    mut tokens: mpsc::UnboundedReceiver<String>,
    out: &mut Spoken,
) {
    let Some(first) = tokens.recv().await else {
        return;
    };
    out.sent_ns = Some(epoch.elapsed_ns());
    let context = match tts.open_context(&request).await {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(e);
            return;
        }
    };
    let (mut sink, audio) = (context.text, context.audio);
    let (failed, failure) = tokio::sync::oneshot::channel::<()>();
    let feed = async move {
        let mut chars = 0u64;
        let mut text = Some(first);
        while let Some(piece) = text {
            chars += piece.chars().count() as u64;
            if let Err(e) = sink.push(&piece).await {
                let _ = failed.send(());
                return (chars, Some(e));
            }
            text = tokens.recv().await;
        }
        let finished = sink.finish().await.err();
        if finished.is_some() {
            let _ = failed.send(());
        }
        (chars, finished)
    };
    let ((chars, feed_error), ()) = tokio::join!(feed, listen(epoch, audio, out, Some(failure)));
    out.chars += chars;
    if let Some(e) = feed_error {
        out.error.get_or_insert(e);
    }
}

/// Reads one audio stream to its end, stamping first byte, first audible and done; stops early
/// when `abandon` fires (the text side failed).
async fn listen(
    epoch: Epoch,
    mut stream: Box<dyn AudioStream>,
    out: &mut Spoken,
    abandon: Option<tokio::sync::oneshot::Receiver<()>>,
) {
    let mut probe = AudioProbe::new(stream.container(), stream.sample_rate());
    let abandon = async {
        // A sender dropped without sending means the text side finished normally.
        let fired = match abandon {
            Some(rx) => rx.await.is_ok(),
            None => false,
        };
        if !fired {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(abandon);
    loop {
        let chunk = tokio::select! {
            chunk = stream.next_chunk() => chunk,
            () = &mut abandon => break,
        };
        let Some(chunk) = chunk else { break };
        let now = epoch.elapsed_ns();
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        if chunk.is_empty() {
            continue;
        }
        out.first_byte_ns.get_or_insert(now);
        match probe.push(&chunk) {
            Ok(found) if found.first_audible => {
                out.first_audible_ns.get_or_insert(now);
            }
            Ok(_) => {}
            Err(e) => {
                out.error = Some(StageError::new(ErrorKind::Protocol, e.to_string()));
                break;
            }
        }
        out.done_ns = Some(now);
    }
    if out.audio_ms == 0.0 {
        out.lead_ms = probe.lead_ms().unwrap_or(0.0);
    }
    out.bytes += probe.bytes();
    out.audio_ms += probe.audio_ms();
}
