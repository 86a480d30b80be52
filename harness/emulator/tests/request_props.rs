//! The emulator never panics on a request: its pure request parsers (the STT query, the LLM
//! messages, the TTS output format and text) take any input, and the real loopback server
//! answers random requests — JSON mutated as trees and as bytes, made-up queries, random
//! WebSocket traffic — with a success or a 4xx, then keeps serving.
//! `PROPTEST_CASES=100000 cargo test -p latlab-emulator --test request_props` runs more cases
//! (docs/testing.md).

#[path = "../../../core/tests/support/mutate.rs"]
mod mutate;

#[allow(dead_code)] // the loopback tests' helpers; this file uses a few
#[path = "loopback/common.rs"]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use latlab_core::audio::{AudioProbe, Container};
use latlab_core::backends::openai::{SseBuffer, SseEvent, parse_event};
use latlab_emulator::llm::{Replies, plan_completion, tokenize};
use latlab_emulator::stt::Options;
use latlab_emulator::tts::{OutputFormat, plan_speech};
use latlab_emulator::{Emulator, EmulatorConfig, LlmConfig, Timing, TtsConfig};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use mutate::{
    apply_bytes, apply_text, byte_edits, cases, few_byte_edits, json_value, mutate_json_text,
    tree_edits, word,
};

const STT_WORDS: &[&str] = &[
    "encoding",
    "linear16",
    "opus",
    "sample_rate",
    "16000",
    "channels",
    "1",
    "2",
    "endpointing",
    "false",
    "true",
    "300",
    "utterance_end_ms",
    "1000",
    "18446744073709551615",
    "18446744073709551616",
    "4294967295",
    "interim_results",
    "vad_events",
    "punctuate",
    "smart_format",
    "tag",
    "c1",
    "model",
    "nova-3",
];

const LLM_WORDS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "system",
    "user",
    "assistant",
    "tool",
    "stream",
    "stream_options",
    "include_usage",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "text",
    "type",
    common::TURN1,
    common::TURN2,
];

const LLM_REQUESTS: &[&str] = &[
    r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there, how are you?"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":150,"temperature":0}"#,
    r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Book a table for two."}]}],"stream":false,"max_completion_tokens":3}"#,
    r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"again"}],"stream":true}"#,
];

const TTS_WORDS: &[&str] = &[
    "text",
    "model_id",
    "voice_settings",
    "eleven_flash_v2_5",
    "pcm_16000",
    "wav_16000",
    "pcm_44100",
    "wav_8000",
    "mp3_44100_128",
    "pcm_12345",
    "Hello there.",
];

const TTS_REQUESTS: &[&str] = &[
    r#"{"text":"Hello there, how can I help?","model_id":"eleven_flash_v2_5"}"#,
    r#"{"text":"Sure.","model_id":"m","voice_settings":{"stability":0.5}}"#,
];

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query: mostly the emulator's own keys with plausible or edge values.
fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((word(STT_WORDS), word(STT_WORDS)), 0..8)
}

fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An emulator with no faults and no waiting, so every answer is the request's own.
fn config() -> EmulatorConfig {
    let mut config = common::fast_config();
    config.stt.final_delay = Timing::constant(0.0);
    config.stt.interim_delay = Timing::constant(0.0);
    config.llm.ttft = Timing::constant(0.0);
    config.llm.inter_token = Timing::constant(0.0);
    config.tts.ttfb = Timing::constant(0.0);
    config.tts.chunk_gap = Timing::constant(0.0);
    config.tts.ms_per_char = 1;
    config.tts.leading_silence_ms = 5;
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `test` over `strategy` against one emulator, then checks that it still serves.
fn against_emulator<S: Strategy>(
    default_cases: u32,
    strategy: S,
    test: impl AsyncFn(&Emulator, &reqwest::Client, S::Value) -> Result<(), TestCaseError>,
) {
    let rt = runtime();
    let (emulator, _dir) = rt.block_on(common::start(config()));
    let http = common::http();
    let mut runner = TestRunner::new(cases(default_cases));
    let result = runner.run(&strategy, |input| {
        rt.block_on(test(&emulator, &http, input))
    });
    // Still serving: a valid request of each kind.
    rt.block_on(async {
        let llm = http
            .post(format!("{}/chat/completions", emulator.llm_url()))
            .body(LLM_REQUESTS[0])
            .send()
            .await
            .expect("the LLM still serves");
        assert!(llm.status().is_success());
        let tts = http
            .post(format!(
                "{}/v1/text-to-speech/v/stream?output_format=pcm_16000",
                emulator.tts_url()
            ))
            .body(TTS_REQUESTS[0])
            .send()
            .await
            .expect("the TTS still serves");
        assert!(tts.status().is_success());
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(emulator.shutdown());
}

/// A response that is a success or a client error and whose body arrives whole.
async fn answered(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<(u16, Vec<u8>, String), TestCaseError> {
    let response = response
        .map_err(|e| TestCaseError::fail(format!("no response (did the handler panic?): {e}")))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "status {status}"
    );
    let body = response
        .bytes()
        .await
        .map_err(|e| TestCaseError::fail(format!("body cut (did the stream panic?): {e}")))?;
    Ok((status.as_u16(), body.to_vec(), content_type))
}

/// The client's own SSE parser reads a streamed completion to `[DONE]` without an error.
fn sse_is_well_formed(body: &[u8]) -> Result<(), TestCaseError> {
    let mut buffer = SseBuffer::default();
    buffer.push(body);
    let mut done = false;
    while let Some(event) = buffer
        .next_event()
        .map_err(|e| TestCaseError::fail(e.message))?
    {
        match parse_event(&event) {
            Ok(Some(SseEvent::Done)) => done = true,
            Ok(_) => prop_assert!(!done, "an event after [DONE]"),
            Err(e) => prop_assert!(
                false,
                "the emulator sent an event its client rejects: {e:?}"
            ),
        }
    }
    prop_assert!(done, "no [DONE]");
    Ok(())
}

fn llm_body() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        0..LLM_REQUESTS.len(),
        tree_edits(4, json_value(LLM_WORDS), LLM_WORDS),
        few_byte_edits(2),
    )
        .prop_map(|(seed, tree, bytes)| {
            apply_bytes(
                mutate_json_text(LLM_REQUESTS[seed], &tree).into_bytes(),
                &bytes,
            )
        });
    prop_oneof![
        6 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => json_value(LLM_WORDS).prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn tts_body() -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        0..TTS_REQUESTS.len(),
        tree_edits(3, json_value(TTS_WORDS), TTS_WORDS),
        few_byte_edits(2),
    )
        .prop_map(|(seed, tree, bytes)| {
            apply_bytes(
                mutate_json_text(TTS_REQUESTS[seed], &tree).into_bytes(),
                &bytes,
            )
        });
    prop_oneof![4 => mutated, 1 => prop::collection::vec(any::<u8>(), 0..64)]
}

#[test]
fn llm_answers_any_body() {
    against_emulator(
        1000,
        (llm_body(), word(LLM_WORDS)),
        async |emulator, http, (body, session)| {
            let mut request = http
                .post(format!("{}/chat/completions", emulator.llm_url()))
                .body(body);
            if let Ok(session) = reqwest::header::HeaderValue::from_str(&session) {
                request = request.header(latlab_emulator::SESSION_HEADER, session);
            }
            let (status, body, content_type) = answered(request.send().await).await?;
            if status == 200 && content_type.starts_with("text/event-stream") {
                sse_is_well_formed(&body)?;
            } else if status == 200 {
                let v: Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    v.pointer("/choices/0/message/content")
                        .is_some_and(Value::is_string)
                );
            }
            Ok(())
        },
    );
}

#[test]
fn tts_answers_any_request() {
    const FORMATS: &[&str] = &[
        "pcm_16000",
        "wav_16000",
        "pcm_44100",
        "wav_8000",
        "wav_24000",
    ];
    let format = prop::option::weighted(
        0.95,
        prop_oneof![3 => prop::sample::select(FORMATS).prop_map(str::to_string), 1 => word(TTS_WORDS)],
    );
    let strategy = (tts_body(), word(TTS_WORDS), format, any::<bool>());
    against_emulator(
        1000,
        strategy,
        async |emulator, http, (body, voice, format, streaming)| {
            let path = if streaming { "/stream" } else { "" };
            let query = format
                .as_deref()
                .map(|f| format!("?output_format={}", encode(f)))
                .unwrap_or_default();
            let url = format!(
                "{}/v1/text-to-speech/{}{path}{query}",
                emulator.tts_url(),
                encode(&voice)
            );
            let (status, body, content_type) =
                answered(http.post(url).body(body).send().await).await?;
            if status == 200 {
                let container = if content_type == "audio/wav" {
                    Container::Wav
                } else {
                    Container::RawPcm
                };
                let mut probe = AudioProbe::new(container, 16_000);
                prop_assert!(probe.push(&body).is_ok());
                prop_assert!(probe.audible(), "speech without an audible sample");
            }
            Ok(())
        },
    );
}

#[test]
fn stt_rejects_any_plain_request() {
    against_emulator(1000, query(), async |emulator, http, pairs| {
        let base = emulator.stt_url().replacen("ws://", "http://", 1);
        let url = format!("{base}/v1/listen?{}", query_string(&pairs));
        let (status, _, _) = answered(http.get(url).send().await).await?;
        prop_assert!(status >= 400, "a plain GET is not a WebSocket session");
        Ok(())
    });
}

/// One message of a live session from the client.
#[derive(Debug, Clone)]
enum Sent {
    Audio(usize),
    Text(String),
    Ping,
}

fn sent() -> impl Strategy<Value = Sent> {
    let control = prop_oneof![
        Just(r#"{"type":"Finalize"}"#.to_string()),
        Just(r#"{"type":"KeepAlive"}"#.to_string()),
        Just(r#"{"type":"CloseStream"}"#.to_string()),
        json_value(&["type", "Finalize", "KeepAlive", "CloseStream"]).prop_map(|v| v.to_string()),
        (Just(r#"{"type":"Finalize"}"#), byte_edits(2)).prop_map(|(t, e)| apply_text(t, &e)),
    ];
    prop_oneof![
        6 => prop_oneof![0..8usize, Just(640usize), 0..64_000usize].prop_map(Sent::Audio),
        3 => control.prop_map(Sent::Text),
        1 => Just(Sent::Ping),
    ]
}

#[test]
fn stt_sessions_survive_any_traffic() {
    let params = (
        prop::sample::select(&["16000", "1", "8000", "4294967295"][..]),
        prop::sample::select(&["false", "true", "0", "10", "18446744073709551615"][..]),
        prop::option::of(prop::sample::select(
            &["0", "1000", "18446744073709551615"][..],
        )),
        any::<bool>(),
        any::<bool>(),
    );
    let strategy = (params, prop::collection::vec(sent(), 0..24));
    against_emulator(
        300,
        strategy,
        async |emulator, _, ((rate, endpointing, utterance_end, interim, vad), messages)| {
            let mut url = format!(
                "{}/v1/listen?encoding=linear16&sample_rate={rate}&channels=1&endpointing={endpointing}&interim_results={interim}&vad_events={vad}&tag={}",
                emulator.stt_url(),
                common::CALL
            );
            if let Some(u) = utterance_end {
                url.push_str(&format!("&utterance_end_ms={u}"));
            }
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| TestCaseError::fail(format!("upgrade refused: {e}")))?;
            for message in messages {
                let m = match message {
                    Sent::Audio(n) => Message::Binary(vec![0x55u8; n].into()),
                    Sent::Text(t) => Message::Text(t.into()),
                    Sent::Ping => Message::Ping(Vec::new().into()),
                };
                // The server may have closed already (CloseStream); that is an answer too.
                if ws.send(m).await.is_err() {
                    break;
                }
            }
            let _ = ws
                .send(Message::Text(r#"{"type":"CloseStream"}"#.into()))
                .await;
            // Every message is JSON, and the session ends with a normal close.
            loop {
                match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                    Err(_) => prop_assert!(false, "the session went silent"),
                    Ok(None) => prop_assert!(false, "the stream ended without a close frame"),
                    Ok(Some(Err(e))) => {
                        prop_assert!(false, "the session broke (did it panic?): {e}")
                    }
                    Ok(Some(Ok(Message::Text(t)))) => {
                        prop_assert!(serde_json::from_str::<Value>(&t).is_ok(), "not JSON: {t}");
                    }
                    Ok(Some(Ok(Message::Close(frame)))) => {
                        let code = frame.map(|f| u16::from(f.code));
                        prop_assert_eq!(code, Some(1000));
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                }
            }
            Ok(())
        },
    );
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn stt_options_parse_or_say_why(pairs in query()) {
        let query: HashMap<String, String> = pairs.into_iter().collect();
        if let Ok(o) = Options::parse(&query) {
            prop_assert!(o.sample_rate > 0);
            prop_assert_eq!(query.get("encoding").map(String::as_str), Some("linear16"));
        }
    }

    #[test]
    fn llm_plans_any_messages(
        seed in 0..LLM_REQUESTS.len(),
        tree in tree_edits(4, json_value(LLM_WORDS), LLM_WORDS),
        max_tokens in prop::option::of(prop_oneof![0..5u64, Just(u64::MAX)]),
        session in word(LLM_WORDS),
    ) {
        let request: Value = serde_json::from_str(&mutate_json_text(LLM_REQUESTS[seed], &tree)).unwrap();
        let messages = request.get("messages").cloned().unwrap_or(Value::Null);
        let plan = plan_completion(7, &session, &LlmConfig::default(), &Replies::default(), &messages, max_tokens);
        prop_assert_eq!(plan.tokens.len(), plan.token_offsets.len());
        prop_assert!(plan.token_offsets.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(max_tokens.is_none_or(|m| plan.tokens.len() as u64 <= m));
    }

    #[test]
    fn tokenize_gives_the_text_back(text in any::<String>()) {
        let tokens = tokenize(&text);
        prop_assert!(tokens.iter().all(|t| !t.is_empty()));
        let words: Vec<&str> = text.split_whitespace().collect();
        prop_assert_eq!(tokens.concat().split_whitespace().collect::<Vec<_>>().concat(), words.concat());
    }

    #[test]
    fn tts_plans_any_text(
        text in any::<String>(),
        voice in any::<String>(),
        format in word(TTS_WORDS),
    ) {
        let Some(format) = OutputFormat::parse(&format) else { return Ok(()) };
        let config = TtsConfig { ms_per_char: 1, ..TtsConfig::default() };
        let plan = plan_speech(3, "s", &config, &voice, &text, format);
        let total: usize = plan.chunks.iter().map(|c| c.bytes.len()).sum();
        prop_assert_eq!(total % 2, 0);
        prop_assert!(plan.chunks.windows(2).all(|w| w[0].at <= w[1].at));
    }
}

/// A text whose speech would not fit in memory is a 400, not an allocation of gigabytes: the
/// audio is made before the first byte, and 1,000,000 characters at 60 ms each were 16.7
/// hours of 16 kHz samples (about 2 GB, then again as bytes) before the limit.
#[test]
fn tts_refuses_a_text_longer_than_its_speech_limit() {
    let rt = runtime();
    rt.block_on(async {
        let (emulator, _dir) = common::start(common::fast_config()).await;
        let text = "a".repeat(1_000_000);
        let response = common::http()
            .post(format!(
                "{}/v1/text-to-speech/v/stream?output_format=pcm_16000",
                emulator.tts_url()
            ))
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"]["status"], "max_character_limit_exceeded",
            "{body}"
        );
        emulator.shutdown().await;
    });
}
