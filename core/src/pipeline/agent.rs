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

use super::turn::Answered;
use crate::audio::AudioProbe;
use crate::clock::Epoch;
use crate::profile::{Profile, TtsInput, TtsStart};
use crate::stage::{
    AudioStream, ChatMessage, IncrementalSpeech, LanguageModel, LlmRequest, TextToSpeech,
    TtsRequest,
};
use crate::text::SentenceSplitter;
use crate::timing::{ErrorKind, StageError};

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
pub(super) async fn answer(
    epoch: Epoch,
    profile: &Profile,
    llm: &Arc<dyn LanguageModel>,
    tts: &Arc<dyn TextToSpeech>,
    messages: Vec<ChatMessage>,
    session: &str,
    queued: Queued,
) -> Speaking {
    let mut out = Answered {
        llm_queued_ns: Some(queued.at_ns),
        llm_queue_wait_ns: Some(queued.wait_ns),
        ..Answered::default()
    };
    // With `by_token` the channel carries every token, else whole sentences or the reply.
    let by_token = profile.tts_input == TtsInput::Tokens && tts.incremental().is_some();
    let (sentences, sentence_rx) = mpsc::unbounded_channel::<String>();
    let speaker = tokio::spawn(speak(
        epoch,
        Arc::clone(tts),
        by_token,
        profile.tts_streaming,
        profile.connection_reuse,
        session.to_string(),
        sentence_rx,
    ));

    let request = LlmRequest {
        messages,
        stream: profile.llm_streaming,
        reuse_connection: profile.connection_reuse,
        session: session.to_string(),
    };
    out.llm_sent_ns = Some(epoch.elapsed_ns());
    let mut splitter = SentenceSplitter::new();
    let mut pieces = 0u64;
    let mut usage = None;
    match llm.start(&request).await {
        Err(e) => out.llm_error = Some(e),
        Ok(mut stream) => {
            while let Some(next) = stream.next_token().await {
                match next {
                    Err(e) => {
                        out.llm_error = Some(e);
                        break;
                    }
                    Ok(token) => {
                        let now = epoch.elapsed_ns();
                        out.llm_first_token_ns.get_or_insert(now);
                        out.llm_end_ns = Some(now);
                        pieces += 1;
                        out.reply.push_str(&token);
                        if by_token {
                            out.first_sentence_ns.get_or_insert(now);
                            let _ = sentences.send(token);
                        } else if profile.tts_start == TtsStart::FirstSentence {
                            for sentence in splitter.push(&token) {
                                out.first_sentence_ns.get_or_insert(now);
                                let _ = sentences.send(sentence);
                            }
                        }
                    }
                }
            }
            usage = stream.usage_tokens();
        }
    }
    out.tokens = usage.unwrap_or(pieces);
    if out.llm_error.is_none() {
        let rest = match profile.tts_start {
            _ if by_token => None,
            TtsStart::FirstSentence => splitter.finish(),
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
