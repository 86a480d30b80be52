//! ElevenLabs TTS: WAV and PCM bodies with exact sizes and leading silence, streamed in timed
//! chunks, and the request's rejections.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;

pub fn url(base: &str, format: &str, stream: bool) -> String {
    let tail = if stream { "/stream" } else { "" };
    format!("{base}/v1/text-to-speech/voice123{tail}?output_format={format}")
}

pub const TEXT: &str = "Your table is booked.";

#[tokio::test]
async fn streamed_wav_has_an_exact_header_silence_and_length() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let started = Instant::now();
    let mut response = common::http()
        .post(url(&emu.tts_url(), "wav_16000", true))
        .json(&json!({"text": TEXT, "model_id": "eleven_flash_v2_5", "voice_settings": {"stability": 0.5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert!(response.headers().contains_key("request-id"));
    let mut chunks = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks.push(chunk);
    }
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert!(chunks.len() > 5, "streamed in chunks: {}", chunks.len());
    let body: Vec<u8> = chunks.concat();
    let speech_ms = TEXT.chars().count() * 60;
    let samples = 16 * (120 + speech_ms + 50);
    assert_eq!(body.len(), 44 + 2 * samples);
    assert_eq!(&body[0..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize,
        body.len() - 8
    );
    assert_eq!(
        u32::from_le_bytes(body[40..44].try_into().unwrap()) as usize,
        2 * samples
    );
    let reader = hound::WavReader::new(std::io::Cursor::new(body)).unwrap();
    assert_eq!(reader.spec().sample_rate, 16_000);
    assert_eq!(reader.spec().channels, 1);
    assert_eq!(reader.spec().bits_per_sample, 16);
    let pcm: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
    let first_sound = pcm.iter().position(|s| *s != 0).unwrap();
    assert_eq!(first_sound, 16 * 120, "leading silence is exactly 120 ms");
    assert!(pcm[pcm.len() - 16 * 50..].iter().all(|s| *s == 0));
    emu.shutdown().await;
}

#[tokio::test]
async fn whole_pcm_matches_the_stream_byte_for_byte() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let fetch = |stream| {
        let url = url(&emu.tts_url(), "pcm_24000", stream);
        async move {
            let response = common::http()
                .post(url)
                .header("xi-api-key", "anything")
                .json(&json!({"text": TEXT}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["content-type"], "audio/pcm");
            response.bytes().await.unwrap()
        }
    };
    let streamed = fetch(true).await;
    let whole = fetch(false).await;
    assert_eq!(streamed.len(), 2 * 24 * (120 + TEXT.len() * 60 + 50));
    assert_eq!(streamed, whole);
    assert_eq!(emu.stats().tts.requests, 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn rejects_bad_formats_empty_text_and_bad_keys() {
    let mut config = common::fast_config();
    config.tts.api_key = Some("xi".into());
    let (emu, _dir) = common::start(config).await;
    let send = |format: &str, key: &str, text: &str| {
        common::http()
            .post(url(&emu.tts_url(), format, true))
            .header("xi-api-key", key)
            .json(&json!({"text": text}))
            .send()
    };
    let response = send("mp3_44100_128", "xi", TEXT).await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"]["status"], "invalid_output_format");

    let response = send("pcm_16000", "xi", "  ").await.unwrap();
    assert_eq!(response.status(), 400);

    let response = send("pcm_16000", "nope", TEXT).await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"]["status"], "invalid_api_key");
    assert_eq!(body["detail"]["message"], "Invalid API key");
    emu.shutdown().await;
}
