//! latlab-core's Cartesia client against the emulator's Cartesia WebSocket on loopback: a
//! sentence per context, token streaming into one context, contexts multiplexed on one socket,
//! keys, every fault mapped to its typed error, and a whole call with `tts_input = "tokens"`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use latlab_core::audio::AudioProbe;
use latlab_core::backends::cartesia::{CartesiaConfig, CartesiaTts};
use latlab_core::backends::{ApiKey, Timeouts};
use latlab_core::pipeline::run_call;
use latlab_core::profile::{Profile, TtsInput};
use latlab_core::stage::{AudioStream, TextToSpeech, TtsRequest};
use latlab_core::timing::{ErrorKind, Outcome, Span, SpanSink, Stage, StageError, TurnTimeline};
use latlab_emulator::{Emulator, EmulatorConfig, Faults, Timing};
use support::{Collect, SmokeCall};

fn fast() -> EmulatorConfig {
    let mut c = EmulatorConfig {
        seed: 7,
        ..EmulatorConfig::default()
    };
    c.tts.ttfb = Timing::Constant { ms: 5.0 };
    c.tts.chunk_gap = Timing::Constant { ms: 1.0 };
    c
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect_ms: 2_000,
        response_ms: 3_000,
        stall_ms: 400,
    }
}

fn cartesia(emu: &Emulator, key: Option<&str>) -> CartesiaTts {
    let config = CartesiaConfig {
        base_url: emu.tts_ws_url(),
        model_id: "sonic-3".into(),
        voice_id: "voice-1".into(),
        sample_rate: 16_000,
        language: "en".into(),
        version: "2025-04-16".into(),
        max_buffer_delay_ms: None,
        api_key_env: "UNUSED".into(),
    };
    CartesiaTts::new(config, key.map(ApiKey::new), timeouts()).unwrap()
}

fn request(text: &str, reuse: bool, session: &str) -> TtsRequest {
    TtsRequest {
        text: text.into(),
        streaming: true,
        reuse_connection: reuse,
        session: session.into(),
    }
}

/// Reads a stream to its end: the audio and when the first audible chunk arrived.
async fn drain(
    mut stream: Box<dyn AudioStream>,
) -> Result<(AudioProbe, usize, Option<Instant>), StageError> {
    let mut probe = AudioProbe::new(stream.container(), stream.sample_rate());
    let (mut chunks, mut audible) = (0, None);
    while let Some(chunk) = stream.next_chunk().await {
        let chunk = chunk?;
        chunks += 1;
        if probe.push(&chunk).unwrap().first_audible {
            audible = Some(Instant::now());
        }
    }
    Ok((probe, chunks, audible))
}

#[tokio::test]
async fn a_sentence_is_one_context_and_ends_with_done() {
    let emu = Emulator::start(fast(), None).await.unwrap();
    let client = cartesia(&emu, None);
    let text = "Hello there, how can I help?";
    for reuse in [true, false] {
        let session = format!("sentence-{reuse}#0");
        for _ in 0..2 {
            let stream = client.start(&request(text, reuse, &session)).await.unwrap();
            let (probe, chunks, audible) = drain(stream).await.unwrap();
            assert!(probe.audible() && audible.is_some());
            // 120 ms leading silence + 60 ms per character + 50 ms tail, as ElevenLabs.
            let expected = 120.0 + 60.0 * text.len() as f64 + 50.0;
            assert!(
                (probe.audio_ms() - expected).abs() < 1.0,
                "{}",
                probe.audio_ms()
            );
            assert_eq!(probe.lead_ms(), Some(120.0));
            assert!(chunks > 5, "streamed in {chunks} chunks");
        }
    }
    // Two sentences of a call on one socket; one socket per sentence without reuse.
    let stats = emu.stats().tts;
    assert_eq!(stats.connections_accepted, 1 + 2, "{stats:?}");
    assert_eq!(stats.requests, 4);
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_stream_into_one_context_and_audio_starts_before_the_last_token() {
    let emu = Emulator::start(fast(), None).await.unwrap();
    let client = cartesia(&emu, None);
    let incremental = client
        .incremental()
        .expect("cartesia takes text incrementally");
    let context = incremental
        .open_context(&request("", true, "tokens#0"))
        .await
        .unwrap();
    let (mut sink, audio) = (context.text, context.audio);
    let tokens = [
        "Sure",
        ",",
        " your",
        " table",
        " for",
        " two",
        " is",
        " booked",
        " at",
        " eight",
        ".",
        " Anything",
        " else",
        "?",
    ];
    let reader = tokio::spawn(drain(audio));
    let started = Instant::now();
    for token in tokens {
        sink.push(token).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let last_pushed = Instant::now();
    sink.finish().await.unwrap();
    let (probe, _, audible) = reader.await.unwrap().unwrap();
    let audible = audible.expect("audible");
    assert!(
        audible < last_pushed,
        "first audio {:?} after the start, the last token {:?}",
        audible - started,
        last_pushed - started
    );
    // Every character pushed is spoken, once: one leading silence, a tail per segment.
    let chars: usize = tokens.iter().map(|t| t.len()).sum();
    assert!(
        probe.audio_ms() >= 120.0 + 60.0 * chars as f64,
        "{}",
        probe.audio_ms()
    );
    assert_eq!(emu.stats().tts.requests, 1, "one context");
    emu.shutdown().await;
}

#[tokio::test]
async fn two_contexts_share_one_socket() {
    let emu = Emulator::start(fast(), None).await.unwrap();
    let client = cartesia(&emu, None);
    let a = client
        .start(&request("The first sentence is here.", true, "mux#0"))
        .await
        .unwrap();
    let b = client
        .start(&request(
            "And a second, longer one follows it.",
            true,
            "mux#0",
        ))
        .await
        .unwrap();
    let (a, b) = tokio::join!(drain(a), drain(b));
    let (a, b) = (a.unwrap().0, b.unwrap().0);
    assert!((a.audio_ms() - (120.0 + 60.0 * 27.0 + 50.0)).abs() < 1.0);
    assert!((b.audio_ms() - (120.0 + 60.0 * 36.0 + 50.0)).abs() < 1.0);
    assert_eq!(emu.stats().tts.connections_accepted, 1);
    // A context dropped unread is cancelled; the socket keeps serving the call.
    let dropped = client
        .start(&request("Never mind this one.", true, "mux#0"))
        .await
        .unwrap();
    drop(dropped);
    let c = client
        .start(&request("Still here.", true, "mux#0"))
        .await
        .unwrap();
    assert!(drain(c).await.unwrap().0.audible());
    assert_eq!(emu.stats().tts.connections_accepted, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_and_session_draw_the_same_audio() {
    let mut bytes = Vec::new();
    for _ in 0..2 {
        let mut config = fast();
        config.tts.ttfb = Timing::lognormal(20.0, 0.5);
        let emu = Emulator::start(config, None).await.unwrap();
        let mut stream = cartesia(&emu, None)
            .start(&request("Same words, same sound.", true, "seed#0"))
            .await
            .unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = stream.next_chunk().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        bytes.push(all);
        emu.shutdown().await;
    }
    assert_eq!(bytes[0], bytes[1]);
}

#[tokio::test]
async fn keys_are_checked_on_the_upgrade_and_never_echoed() {
    let mut config = fast();
    config.tts.api_key = Some("right".into());
    let emu = Emulator::start(config, None).await.unwrap();
    let req = request("hi there", false, "keys#0");
    let e = cartesia(&emu, None).start(&req).await.err().unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(401)));
    let e = cartesia(&emu, Some("wrong"))
        .start(&req)
        .await
        .err()
        .unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::Http, Some(403)));
    assert!(!e.message.contains("wrong"), "{}", e.message);
    let stream = cartesia(&emu, Some("right")).start(&req).await.unwrap();
    assert!(drain(stream).await.unwrap().0.audible());
    emu.shutdown().await;
}

async fn first_error(client: &CartesiaTts, req: &TtsRequest) -> StageError {
    match client.start(req).await {
        Err(e) => e,
        Ok(stream) => match drain(stream).await {
            Err(e) => e,
            Ok(_) => panic!("{}: the stream ended cleanly", req.session),
        },
    }
}

#[tokio::test]
async fn every_fault_becomes_its_typed_error() {
    let cases = [
        ("refuse", ErrorKind::Connect, None),
        ("http_5xx", ErrorKind::Http, Some(503)),
        ("stall", ErrorKind::Stall, None),
        ("disconnect", ErrorKind::Disconnected, None),
        ("malformed", ErrorKind::Protocol, None),
    ];
    for (fault, kind, status) in cases {
        let mut config = fast();
        config.tts.faults = Faults::always(fault).unwrap();
        let emu = Emulator::start(config, None).await.unwrap();
        let client = cartesia(&emu, None);
        for reuse in [true, false] {
            let req = request(
                "Hello there, this is a longer sentence to stream.",
                reuse,
                &format!("{fault}-{reuse}#0"),
            );
            let e = first_error(&client, &req).await;
            assert_eq!(
                (e.kind, e.status),
                (kind, status),
                "{fault} reuse={reuse}: {e}"
            );
        }
        // Token streaming meets the same faults.
        if let Some(incremental) = client.incremental() {
            let opened = incremental
                .open_context(&request("", true, &format!("{fault}-tokens#0")))
                .await;
            let e = match opened {
                Err(e) => e,
                Ok(context) => {
                    let (mut sink, audio) = (context.text, context.audio);
                    for token in ["Hello", " there,", " a", " few", " words", " more."] {
                        let _ = sink.push(token).await;
                    }
                    let _ = sink.finish().await;
                    match drain(audio).await {
                        Err(e) => e,
                        Ok(_) => panic!("{fault} tokens: the stream ended cleanly"),
                    }
                }
            };
            assert_eq!(e.kind, kind, "{fault} tokens: {e}");
        }
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn malformed_messages_cover_bad_json_bad_base64_and_error_messages() {
    let mut config = fast();
    config.tts.faults = Faults::always("malformed").unwrap();
    let emu = Emulator::start(config, None).await.unwrap();
    let client = cartesia(&emu, None);
    let mut seen = [false; 3];
    for i in 0..24 {
        let req = request("A sentence to break.", false, &format!("bad-{i}#0"));
        let e = first_error(&client, &req).await;
        assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
        for (k, what) in ["not JSON", "not base64", "error message"]
            .iter()
            .enumerate()
        {
            seen[k] |= e.message.contains(what);
        }
    }
    assert_eq!(seen, [true; 3], "each kind of bad message was drawn");
    emu.shutdown().await;
}

/// One call of the smoke dataset through the whole pipeline with Cartesia as the TTS.
async fn call_with(input: TtsInput) -> (Vec<(TurnTimeline, Vec<Span>)>, usize) {
    let smoke = SmokeCall::start().await;
    let backends = smoke.backends(Arc::new(cartesia(&smoke.emu, None)));
    let mut profile = Profile::balanced();
    profile.endpointing_ms = 300;
    profile.tts_input = input;
    let (epoch, plan) = smoke.plan(profile);
    let sink = Arc::new(Collect::default());
    let report = run_call(
        epoch,
        plan,
        backends,
        Arc::clone(&sink) as Arc<dyn SpanSink>,
    )
    .await;
    let contexts = smoke.emu.stats().tts.requests as usize;
    smoke.emu.shutdown().await;
    assert_eq!(report.failed_turns, 0);
    let turns = sink.turns.lock().unwrap().clone();
    assert_eq!(turns.len(), smoke.call.turns.len());
    (turns, contexts)
}

fn assert_ok_and_ordered(turns: &[(TurnTimeline, Vec<Span>)]) {
    for (timeline, spans) in turns {
        // No [tools]: the tool span is skipped, every other stage ran.
        assert!(
            spans.iter().all(|s| if s.stage == Stage::Tool {
                s.outcome == Outcome::Skipped
            } else {
                s.outcome == Outcome::Ok
            }),
            "{spans:#?}"
        );
        let order = [
            timeline.llm_first_token_ns.unwrap(),
            timeline.first_sentence_ns.unwrap(),
            timeline.tts_request_sent_ns.unwrap(),
            timeline.tts_first_byte_ns.unwrap(),
            timeline.tts_first_audible_ns.unwrap(),
            timeline.tts_done_ns.unwrap(),
        ];
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{timeline:#?}");
        assert!(timeline.voice_to_voice_ns.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_tokens_streamed_into_cartesia_records_ok_turns() {
    let (turns, contexts) = call_with(TtsInput::Tokens).await;
    assert_ok_and_ordered(&turns);
    // One context per reply, opened at its first token.
    assert_eq!(contexts, turns.len());
    for (timeline, _) in &turns {
        assert_eq!(timeline.first_sentence_ns, timeline.llm_first_token_ns);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_spoken_sentence_by_sentence_through_cartesia_records_ok_turns() {
    let (turns, contexts) = call_with(TtsInput::Sentences).await;
    assert_ok_and_ordered(&turns);
    assert!(contexts >= turns.len());
}
