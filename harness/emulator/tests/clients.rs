//! latlab-core's real clients (Deepgram, OpenAI, ElevenLabs) against the emulator on loopback:
//! a protocol round trip for each, and every fault mapped to its typed error.

use std::path::Path;
use std::sync::Arc;

use latlab_core::audio::AudioProbe;
use latlab_core::backends::deepgram::{DeepgramConfig, DeepgramStt};
use latlab_core::backends::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use latlab_core::backends::openai::{OpenAiConfig, OpenAiLlm};
use latlab_core::backends::{ApiKey, Timeouts};
use latlab_core::dataset::Dataset;
use latlab_core::stage::{
    CallInfo, ChatMessage, LanguageModel, LlmRequest, SpeechToText, SttEvent, SttOptions,
    TextToSpeech, TtsRequest,
};
use latlab_core::timing::{ErrorKind, StageError};
use latlab_emulator::{Emulator, EmulatorConfig, Faults, Timing};

fn smoke() -> Arc<Dataset> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/smoke");
    Arc::new(Dataset::load(&dir).expect("smoke dataset"))
}

fn fast() -> EmulatorConfig {
    let mut c = EmulatorConfig {
        seed: 7,
        ..EmulatorConfig::default()
    };
    c.llm.ttft = Timing::Constant { ms: 5.0 };
    c.llm.inter_token = Timing::Constant { ms: 1.0 };
    c.tts.ttfb = Timing::Constant { ms: 5.0 };
    c.tts.chunk_gap = Timing::Constant { ms: 1.0 };
    c.stt.final_delay = Timing::Constant { ms: 5.0 };
    c
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect_ms: 2_000,
        response_ms: 3_000,
        stall_ms: 400,
    }
}

fn llm(emu: &Emulator, key: Option<&str>) -> OpenAiLlm {
    let config = OpenAiConfig {
        base_url: emu.llm_url(),
        model: "gpt-4o-mini".into(),
        api_key_env: "UNUSED".into(),
        max_tokens: 200,
        temperature: 0.0,
        system_prompt: "be brief".into(),
    };
    OpenAiLlm::new(config, key.map(ApiKey::new), timeouts()).unwrap()
}

fn tts(emu: &Emulator, format: &str, key: Option<&str>) -> ElevenLabsTts {
    let config = ElevenLabsConfig {
        base_url: emu.tts_url(),
        voice_id: "voice-1".into(),
        model: "eleven_flash_v2_5".into(),
        output_format: format.into(),
        api_key_env: "UNUSED".into(),
    };
    ElevenLabsTts::new(config, key.map(ApiKey::new), timeouts()).unwrap()
}

fn stt(emu: &Emulator, key: Option<&str>) -> DeepgramStt {
    let config = DeepgramConfig {
        base_url: emu.stt_url(),
        model: "nova-3".into(),
        language: None,
        api_key_env: "UNUSED".into(),
    };
    DeepgramStt::new(config, key.map(ApiKey::new), timeouts())
}

fn request(text: &str, stream: bool) -> LlmRequest {
    LlmRequest {
        messages: vec![
            ChatMessage {
                role: "system".into(),
                content: "be brief".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: text.into(),
            },
        ],
        stream,
        reuse_connection: true,
        session: "call-02#0".into(),
        tools: None,
        tool_exchange: None,
    }
}

async fn reply(
    llm: &OpenAiLlm,
    req: &LlmRequest,
) -> Result<(String, Option<u64>, usize), StageError> {
    let mut stream = llm.start(req).await?;
    let mut text = String::new();
    let mut pieces = 0;
    while let Some(token) = stream.next_token().await {
        text.push_str(&token?);
        pieces += 1;
    }
    Ok((text, stream.usage_tokens(), pieces))
}

#[tokio::test]
async fn openai_streams_the_datasets_reply_over_sse() {
    let data = smoke();
    let emu = Emulator::start(fast(), Some(Arc::clone(&data)))
        .await
        .unwrap();
    let turn = &data.call("call-02").unwrap().turns[0];
    let client = llm(&emu, None);
    let (text, usage, pieces) = reply(&client, &request(&turn.text, true)).await.unwrap();
    assert_eq!(text, turn.reply.clone().unwrap());
    assert!(pieces > 5, "streamed token by token, got {pieces} pieces");
    assert_eq!(usage, Some(pieces as u64));
    let (whole, usage, pieces) = reply(&client, &request(&turn.text, false)).await.unwrap();
    assert_eq!(whole, text);
    assert_eq!(pieces, 1);
    assert!(usage.is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn elevenlabs_streams_wav_and_raw_pcm() {
    let emu = Emulator::start(fast(), None).await.unwrap();
    let text = "Hello there, how can I help?";
    for format in ["wav_16000", "pcm_22050"] {
        let client = tts(&emu, format, None);
        for streaming in [true, false] {
            let req = TtsRequest {
                text: text.into(),
                streaming,
                reuse_connection: streaming,
                session: "s#0".into(),
            };
            let mut stream = client.start(&req).await.unwrap();
            let mut probe = AudioProbe::new(stream.container(), stream.sample_rate());
            let mut chunks = 0;
            while let Some(chunk) = stream.next_chunk().await {
                probe.push(&chunk.unwrap()).unwrap();
                chunks += 1;
            }
            assert!(probe.audible(), "{format}");
            // 120 ms leading silence + 60 ms per character + 50 ms tail.
            let expected = 120.0 + 60.0 * text.len() as f64 + 50.0;
            assert!(
                (probe.audio_ms() - expected).abs() < 1.0,
                "{format}: {} ms",
                probe.audio_ms()
            );
            if streaming {
                assert!(chunks > 5, "{format} streamed in {chunks} chunks");
            }
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn the_traced_first_audio_is_the_chunk_latlab_first_hears() {
    // Leading silence longer than a chunk and a wide gap between chunks: the first audible
    // sample arrives a gap after the first chunk, and the trace must say so.
    let mut config = fast();
    config.tts.leading_silence_ms = 120;
    config.tts.chunk_ms = 100;
    config.tts.chunk_gap = Timing::Constant { ms: 60.0 };
    let emu = Emulator::start(config, None).await.unwrap();
    for format in ["wav_16000", "pcm_22050"] {
        let session = format!("{format}#0");
        let req = TtsRequest {
            text: "Your table is booked.".into(),
            streaming: true,
            reuse_connection: true,
            session: session.clone(),
        };
        let mut stream = tts(&emu, format, None).start(&req).await.unwrap();
        let mut probe = AudioProbe::new(stream.container(), stream.sample_rate());
        let (mut chunks, mut heard) = (0, None);
        while let Some(chunk) = stream.next_chunk().await {
            let now = std::time::Instant::now();
            chunks += 1;
            if probe.push(&chunk.unwrap()).unwrap().first_audible {
                heard = Some((now, chunks));
            }
        }
        let (heard, nth) = heard.expect("audible");
        assert!(
            nth > 1,
            "{format}: the leading silence fills the first chunk"
        );
        let (events, _) = emu.take_trace();
        let written: Vec<_> = events
            .iter()
            .filter(|e| e.session == session && e.mark == latlab_emulator::Mark::TtsFirstAudio)
            .map(|e| e.at)
            .collect();
        assert_eq!(written.len(), 1, "{format}");
        assert!(heard >= written[0], "{format}: heard before written");
        let share = heard - written[0];
        assert!(
            share < std::time::Duration::from_millis(20),
            "{format}: {share:?} from the traced first audio to the first audible chunk, \
             against a 60 ms chunk gap"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn deepgram_transcribes_a_recorded_call_over_websocket() {
    let data = smoke();
    let emu = Emulator::start(fast(), Some(Arc::clone(&data)))
        .await
        .unwrap();
    let call = data.call("call-02").unwrap();
    let samples = call.load_samples().unwrap();
    let info = CallInfo {
        call_id: call.id.clone(),
        sample_rate: call.sample_rate,
        session: "call-02#0".into(),
    };
    let options = SttOptions {
        interim_results: true,
        endpointing_ms: Some(300),
        utterance_end_ms: Some(1000),
    };
    let (mut tx, mut rx) = stt(&emu, None).open(&info, &options).await.unwrap();
    let sender = tokio::spawn(async move {
        for frame in samples.chunks(320) {
            tx.send_audio(frame).await.unwrap();
        }
        tx
    });
    let mut finals = Vec::new();
    let mut interims = 0;
    let mut utterance_ends = 0;
    while finals.len() < call.turns.len() || utterance_ends < call.turns.len() {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), rx.next_event())
            .await
            .expect("STT answered")
            .expect("stream open")
            .unwrap();
        match event {
            SttEvent::Transcript {
                text,
                is_final: true,
                speech_final: true,
                audio_end_ms,
                ..
            } => finals.push((text, audio_end_ms)),
            SttEvent::Transcript {
                is_final: false, ..
            } => interims += 1,
            SttEvent::UtteranceEnd { .. } => utterance_ends += 1,
            _ => {}
        }
    }
    for ((text, end_ms), turn) in finals.iter().zip(&call.turns) {
        assert_eq!(text, &turn.text);
        assert!(
            *end_ms >= turn.end_ms as f64,
            "final covers audio up to {end_ms} ms"
        );
    }
    assert!(interims >= call.turns.len(), "interim results: {interims}");
    let mut tx = sender.await.unwrap();
    tx.close().await.unwrap();
    // After CloseStream: Metadata, then a normal close.
    loop {
        match rx.next_event().await {
            None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("close was not clean: {e}"),
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_checked_and_wrong_ones_are_http_401() {
    let mut config = fast();
    config.llm.api_key = Some("right".into());
    config.tts.api_key = Some("right".into());
    config.stt.api_key = Some("right".into());
    let data = smoke();
    let emu = Emulator::start(config, Some(Arc::clone(&data)))
        .await
        .unwrap();
    let e = reply(&llm(&emu, Some("wrong")), &request("hi", true))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(401)));
    assert!(
        !e.message.contains("wrong"),
        "the key must not be echoed: {}",
        e.message
    );
    assert!(
        reply(&llm(&emu, Some("right")), &request("hi", true))
            .await
            .is_ok()
    );

    let req = TtsRequest {
        text: "hi".into(),
        streaming: true,
        reuse_connection: true,
        session: "s".into(),
    };
    let e = tts(&emu, "pcm_16000", None)
        .start(&req)
        .await
        .err()
        .unwrap();
    assert_eq!(e.status, Some(401));
    assert!(
        tts(&emu, "pcm_16000", Some("right"))
            .start(&req)
            .await
            .is_ok()
    );

    let (info, options) = call_01();
    let e = stt(&emu, Some("wrong"))
        .open(&info, &options)
        .await
        .err()
        .unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(401)));
    assert!(stt(&emu, Some("right")).open(&info, &options).await.is_ok());
    emu.shutdown().await;
}

/// Call-01's stream options, as a plain profile would set them.
fn call_01() -> (CallInfo, SttOptions) {
    let info = CallInfo {
        call_id: "call-01".into(),
        sample_rate: 16000,
        session: "call-01#0".into(),
    };
    let options = SttOptions {
        interim_results: false,
        endpointing_ms: Some(300),
        utterance_end_ms: None,
    };
    (info, options)
}

fn only(kind: &str) -> Faults {
    Faults::always(kind).expect("a fault kind")
}

#[tokio::test]
async fn llm_and_tts_faults_become_typed_errors() {
    let cases = [
        ("refuse", ErrorKind::Connect),
        ("http_5xx", ErrorKind::Http),
        ("stall", ErrorKind::Stall),
        ("disconnect", ErrorKind::Disconnected),
        ("malformed", ErrorKind::Protocol),
    ];
    for (fault, kind) in cases {
        let mut config = fast();
        config.llm.faults = only(fault);
        config.tts.faults = only(fault);
        let emu = Emulator::start(config, None).await.unwrap();
        let e = reply(&llm(&emu, None), &request("hello", true))
            .await
            .unwrap_err();
        assert_eq!(e.kind, kind, "LLM {fault}: {e}");

        let req = TtsRequest {
            text: "Hello there, this is a longer sentence to stream.".into(),
            streaming: true,
            reuse_connection: true,
            session: "s".into(),
        };
        let client = tts(&emu, "wav_16000", None);
        let e = match client.start(&req).await {
            Err(e) => e,
            Ok(mut stream) => loop {
                match stream.next_chunk().await {
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break e,
                    None => panic!("TTS {fault}: stream ended cleanly"),
                }
            },
        };
        assert_eq!(e.kind, kind, "TTS {fault}: {e}");
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn stt_refusal_and_5xx_are_typed_errors() {
    for (fault, kind) in [
        ("refuse", ErrorKind::Connect),
        ("http_5xx", ErrorKind::Http),
    ] {
        let mut config = fast();
        config.stt.faults = only(fault);
        let emu = Emulator::start(config, Some(smoke())).await.unwrap();
        let (info, options) = call_01();
        let e = stt(&emu, None).open(&info, &options).await.err().unwrap();
        assert_eq!(e.kind, kind, "STT {fault}: {e}");
        emu.shutdown().await;
    }
}
