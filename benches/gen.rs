//! Seeded inputs for latlab's benches (`hot_paths.rs`): the same bytes every run, shaped like
//! what the hot paths see in a real run — one turn's spans, an OpenAI SSE token chunk, a
//! Deepgram transcript message, a second of noisy speech-like PCM and its WAV file.

use latlab_core::timing::{Outcome, Span, Stage, TurnTimeline, Units};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One second of 16 kHz mono PCM: a 180 Hz tone with harmonics under noise, after 200 ms of
/// low noise (so an audible-onset probe has a leading silence to find).
pub fn speech_like_pcm(sample_rate: u32, seed: u64) -> Vec<i16> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..sample_rate)
        .map(|i| {
            let t = f64::from(i) / f64::from(sample_rate);
            let noise = f64::from(rng.random_range(-40i16..=40));
            let voice = if t < 0.2 {
                0.0
            } else {
                let f = 180.0 * std::f64::consts::TAU * t;
                6000.0 * f.sin() + 2500.0 * (2.0 * f).sin() + 1200.0 * (3.0 * f).sin()
            };
            (voice + noise).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// A WAV file (RIFF header + 16-bit PCM) holding `samples`.
pub fn wav_bytes(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).expect("in-memory WAV");
        for &s in samples {
            w.write_sample(s).expect("in-memory WAV");
        }
        w.finalize().expect("in-memory WAV");
    }
    out.into_inner()
}

/// One OpenAI chat-completions streaming event carrying one token, as the wire has it.
pub fn sse_token_event() -> String {
    let chunk = serde_json::json!({
        "id": "chatcmpl-9x7Yb2Q", "object": "chat.completion.chunk", "created": 1_763_900_000,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": {"content": " Friday"}, "logprobs": null, "finish_reason": null}]
    });
    format!("data: {chunk}")
}

/// One Deepgram live-streaming final result, as the wire has it.
pub fn deepgram_final_message() -> String {
    serde_json::json!({
        "type": "Results", "channel_index": [0, 1], "duration": 1.98, "start": 4.02,
        "is_final": true, "speech_final": true, "from_finalize": false,
        "channel": {"alternatives": [{"transcript": "this friday please", "confidence": 0.98,
            "words": [
                {"word": "this", "start": 4.1, "end": 4.3, "confidence": 0.99},
                {"word": "friday", "start": 4.3, "end": 4.8, "confidence": 0.98},
                {"word": "please", "start": 4.8, "end": 5.2, "confidence": 0.97}
            ]}]},
        "metadata": {"request_id": "2f8b3c1e-8d2e-4e57-a1a5-0f0e9b1f6a11", "model_info": {"name": "2-general-nova", "version": "2024-01-09.29447", "arch": "nova-3"}, "model_uuid": "1dbdfb4d-85b2-4659-9ab9-0b4b0a1d2b3c"}
    })
    .to_string()
}

/// One finished turn as the pipeline hands it to the sink: its timeline and five spans.
pub fn turn(k: u32) -> (TurnTimeline, Vec<Span>) {
    let base = 1_000_000_000u64 * u64::from(k + 1);
    let id = |stage: Stage, start: u64, end: u64| Span {
        run: "bench-20261125T120000Z".into(),
        scenario: "bench".into(),
        profile: "balanced".into(),
        call: format!("call-{:02}", k % 12 + 1),
        iteration: k / 12,
        turn: k % 3,
        stage,
        backend: "deepgram".into(),
        scheduled_ns: base,
        start_ns: Some(base + start),
        first_output_ns: Some(base + start + 1_000_000),
        end_ns: Some(base + end),
        latency_ns: Some((end) as i64),
        units: Units {
            audio_ms: Some(1980.0),
            tokens: Some(24),
            bytes: Some(64_000),
            chars: Some(96),
        },
        outcome: Outcome::Ok,
        error: None,
    };
    let spans = vec![
        id(Stage::Endpoint, 0, 300_000_000),
        id(Stage::Stt, 300_000_000, 360_000_000),
        id(Stage::Llm, 360_000_000, 900_000_000),
        id(Stage::Tts, 620_000_000, 1_400_000_000),
        id(Stage::Turn, 0, 790_000_000),
    ];
    let timeline = TurnTimeline {
        run: "bench-20261125T120000Z".into(),
        scenario: "bench".into(),
        profile: "balanced".into(),
        call: format!("call-{:02}", k % 12 + 1),
        iteration: k / 12,
        turn: k % 3,
        user_start_scheduled_ns: base - 2_000_000_000,
        user_end_scheduled_ns: base,
        speech_end_detected_ns: Some(base + 300_000_000),
        final_transcript_ns: Some(base + 360_000_000),
        llm_request_sent_ns: Some(base + 361_000_000),
        llm_first_token_ns: Some(base + 610_000_000),
        first_sentence_ns: Some(base + 620_000_000),
        tts_request_sent_ns: Some(base + 620_500_000),
        tts_first_byte_ns: Some(base + 770_000_000),
        tts_first_audible_ns: Some(base + 790_000_000),
        tts_done_ns: Some(base + 1_400_000_000),
        voice_to_voice_ns: Some(790_000_000),
        agent_audio_ms: Some(3200.0),
        barge_in_ms: None,
        reference: Some("This Friday, please.".into()),
        transcript: Some("this friday please".into()),
        reply: Some("Done. Your table for 4 is booked for Friday at 7 p.m.".into()),
        outcome: Outcome::Ok,
        error: None,
    };
    (timeline, spans)
}
