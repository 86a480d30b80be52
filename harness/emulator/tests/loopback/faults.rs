//! Every fault kind, as a client sees it: refused connections, 503s with the vendor's error
//! body, stalls (no bytes within a window), disconnects (a body or socket error) and
//! malformed frames.

use std::time::Duration;

use latlab_emulator::{EmulatorConfig, Faults};
use serde_json::{Value, json};

use crate::common::{self, CALL};
use crate::llm::request;
use crate::stt::{self, Next};
use crate::tts;

fn with_faults(faults: Faults) -> EmulatorConfig {
    let mut config = common::fast_config();
    config.stt.faults = faults;
    config.llm.faults = faults;
    config.tts.faults = faults;
    config
}

fn only(kind: &str) -> Faults {
    Faults::always(kind).expect("a fault kind")
}

async fn llm_stream(base: &str) -> reqwest::Response {
    common::http()
        .post(format!("{base}/chat/completions"))
        .json(&request(true))
        .send()
        .await
        .unwrap()
}

async fn tts_stream(base: &str) -> reqwest::Response {
    common::http()
        .post(tts::url(base, "pcm_16000", true))
        .json(&json!({"text": tts::TEXT}))
        .send()
        .await
        .unwrap()
}

/// Reads chunks until none arrives within `window`; returns the bytes read and whether the body
/// was still open (stalled) at that point.
async fn read_until_quiet(response: &mut reqwest::Response, window: Duration) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(window, response.chunk()).await {
            Err(_) => return (bytes, true),
            Ok(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
            Ok(Ok(None)) => return (bytes, false),
            Ok(Err(e)) => panic!("body error {e}"),
        }
    }
}

/// Reads the body to its end; Err when it was cut.
async fn read_to_end(response: &mut reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[tokio::test]
async fn refused_connections_are_dropped_before_any_byte() {
    let (emu, _dir) = common::start(with_faults(only("refuse"))).await;
    let llm = common::http()
        .post(format!("{}/chat/completions", emu.llm_url()))
        .json(&request(true))
        .send()
        .await;
    assert!(llm.is_err(), "{llm:?}");
    let tts = common::http()
        .post(tts::url(&emu.tts_url(), "pcm_16000", true))
        .json(&json!({"text": "hi"}))
        .send()
        .await;
    assert!(tts.is_err());
    let url = format!(
        "{}/v1/listen?encoding=linear16&sample_rate=16000&tag={CALL}",
        emu.stt_url()
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    let stats = emu.stats();
    assert!(stats.llm.connections_refused >= 1);
    assert_eq!(stats.llm.faults.refuse, stats.llm.connections_refused);
    assert_eq!(stats.llm.requests, 0);
    assert!(stats.stt.connections_refused >= 1 && stats.tts.connections_refused >= 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn http_5xx_carries_each_vendors_error_body() {
    let (emu, _dir) = common::start(with_faults(only("http_5xx"))).await;
    let response = llm_stream(&emu.llm_url()).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["param"], Value::Null);

    let response = tts_stream(&emu.tts_url()).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"]["status"], "service_unavailable");

    let url = format!(
        "{}/v1/listen?encoding=linear16&sample_rate=16000&tag={CALL}",
        emu.stt_url()
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            let body: Value = serde_json::from_slice(response.body().as_ref().unwrap()).unwrap();
            assert_eq!(body["err_code"], "SERVICE_UNAVAILABLE");
            assert!(body["request_id"].is_string());
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    let stats = emu.stats();
    assert_eq!(
        (
            stats.llm.faults.http_5xx,
            stats.tts.faults.http_5xx,
            stats.stt.faults.http_5xx
        ),
        (1, 1, 1)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn stalls_send_part_then_nothing() {
    let (emu, _dir) = common::start(with_faults(only("stall"))).await;
    let window = Duration::from_millis(400);

    let mut llm = llm_stream(&emu.llm_url()).await;
    assert_eq!(llm.status(), 200);
    let (bytes, open) = read_until_quiet(&mut llm, window).await;
    let text = String::from_utf8(bytes).unwrap();
    assert!(open, "the stream stays open");
    assert!(text.contains("\"role\":\"assistant\""));
    assert!(!text.contains("[DONE]"));

    let mut tts = tts_stream(&emu.tts_url()).await;
    let (bytes, open) = read_until_quiet(&mut tts, window).await;
    assert!(open);
    assert!(!bytes.is_empty());
    assert!(bytes.len() < 2 * 16 * (120 + tts::TEXT.len() * 60 + 50));

    let mut ws = stt::connect(&emu.stt_url(), &format!("tag={CALL}&endpointing=100")).await;
    stt::send_audio(&mut ws, 0, common::AUDIO_MS).await;
    stt::send_json(&mut ws, "CloseStream").await;
    let mut finals = 0;
    loop {
        match stt::next(&mut ws, window).await {
            Next::Json(v) => {
                assert_eq!(v["type"], "Results");
                finals += 1;
            }
            Next::Silent => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The stall follows the first final of one of the two turns; no Metadata, no close.
    assert!((1..=2).contains(&finals));
    drop(ws);
    drop((llm, tts));
    let stats = emu.stats();
    assert_eq!(
        (
            stats.llm.faults.stall,
            stats.tts.faults.stall,
            stats.stt.faults.stall
        ),
        (1, 1, 1)
    );
    // Shutdown ends the stalled responses instead of waiting for them.
    tokio::time::timeout(Duration::from_secs(5), emu.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn disconnects_cut_the_body_or_socket() {
    let (emu, _dir) = common::start(with_faults(only("disconnect"))).await;
    let mut llm = llm_stream(&emu.llm_url()).await;
    assert_eq!(llm.status(), 200);
    assert!(read_to_end(&mut llm).await.is_err());

    let mut tts = tts_stream(&emu.tts_url()).await;
    assert_eq!(tts.status(), 200);
    assert!(read_to_end(&mut tts).await.is_err());

    let mut ws = stt::connect(&emu.stt_url(), &format!("tag={CALL}&endpointing=100")).await;
    stt::send_audio(&mut ws, 0, common::AUDIO_MS).await;
    let mut ended = false;
    for _ in 0..4 {
        match stt::next(&mut ws, Duration::from_secs(2)).await {
            Next::Json(v) => assert_eq!(v["type"], "Results"),
            Next::Error(_) | Next::Ended => {
                ended = true;
                break;
            }
            other => panic!("expected a cut without close frame, got {other:?}"),
        }
    }
    assert!(ended);
    emu.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_are_sent_mid_stream() {
    let (emu, _dir) = common::start(with_faults(only("malformed"))).await;
    let mut llm = llm_stream(&emu.llm_url()).await;
    let body = String::from_utf8(read_to_end(&mut llm).await.unwrap()).unwrap();
    assert!(body.contains("data: {\"id\": broken\n\n"));
    assert!(body.ends_with("data: [DONE]\n\n"));
    let broken = body.find("broken").unwrap();
    assert!(
        body[..broken].contains("\"content\":\"I\""),
        "after some tokens"
    );

    let tts = tts_stream(&emu.tts_url()).await;
    assert_eq!(tts.status(), 200);
    assert_eq!(tts.headers()["content-type"], "application/json");
    assert_eq!(tts.text().await.unwrap(), "{\"oops\"");

    let mut ws = stt::connect(&emu.stt_url(), &format!("tag={CALL}&endpointing=100")).await;
    stt::send_audio(&mut ws, 0, common::AUDIO_MS).await;
    stt::send_json(&mut ws, "CloseStream").await;
    let mut saw_final = false;
    let mut saw_junk = false;
    loop {
        match stt::next(&mut ws, Duration::from_secs(2)).await {
            Next::Json(v) => saw_final |= v["is_final"] == true,
            Next::NotJson(text) => {
                assert!(saw_final, "junk follows a final");
                assert!(text.contains("broken"), "{text}");
                saw_junk = true;
            }
            Next::Close(code) => {
                assert_eq!(code, Some(1000));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_junk);
    emu.shutdown().await;
}

#[tokio::test]
async fn same_seed_draws_the_same_faults() {
    let faults = Faults {
        http_5xx: 0.5,
        ..Faults::default()
    };
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let (emu, _dir) = common::start(with_faults(faults)).await;
        let mut run = Vec::new();
        for i in 0..12 {
            let mut body = request(false);
            body["messages"][1]["content"] = json!(format!("question {i}"));
            let response = common::http()
                .post(format!("{}/chat/completions", emu.llm_url()))
                .json(&body)
                .send()
                .await
                .unwrap();
            run.push(response.status().as_u16());
        }
        statuses.push(run);
        emu.shutdown().await;
    }
    assert_eq!(statuses[0], statuses[1]);
    assert!(
        statuses[0].contains(&503) && statuses[0].contains(&200),
        "{statuses:?}"
    );
}
