//! Seeded inputs for latlab's benches (`hot_paths.rs`, `iai.rs`): the same bytes every run,
//! shaped like what the hot paths see in a real run — a turn's span record, an OpenAI SSE token
//! chunk, a Deepgram transcript message, a second of noisy speech-like PCM and its WAV file.
#![deny(missing_docs)]

use std::sync::Arc;

use latlab_core::timing::{CallLabels, Outcome, SpanRecord, Stage, Units};
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

/// The labels one call's spans share (made once per call by the pipeline).
pub fn call_labels() -> Arc<CallLabels> {
    Arc::new(CallLabels {
        run: "20261125-220000-smoke".into(),
        scenario: "smoke".into(),
        profile: "balanced".into(),
        call: "call-07".into(),
        iteration: 3,
        backends: [
            "energy_vad",
            "deepgram",
            "openai",
            "none",
            "elevenlabs",
            "pipeline",
        ]
        .map(String::from),
    })
}

/// The LLM span of turn `turn` as the pipeline fills it in when the turn ends, stamped
/// `now_ns`: request sent, first token and last token, tokens and characters.
pub fn llm_span(labels: &Arc<CallLabels>, turn: u32, now_ns: u64) -> SpanRecord {
    let scheduled = now_ns.saturating_sub(900_000_000);
    let mut span = SpanRecord::new(labels, turn, Stage::Llm, scheduled);
    span.start_ns = Some(scheduled + 40_000);
    span.first_output_ns = Some(scheduled + 250_000_000);
    span.end_ns = Some(now_ns);
    span.latency_ns = Some(250_000_000);
    span.units = Units {
        tokens: Some(31),
        chars: Some(142),
        ..Units::default()
    };
    span.outcome = Outcome::Ok;
    span
}
