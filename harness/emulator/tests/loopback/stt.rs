//! Deepgram live STT: finals after endpointing, interims, Finalize, UtteranceEnd, SpeechStarted,
//! CloseStream, and the upgrade's rejections.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{self, AUDIO_MS, CALL, RATE, TURN1, TURN2};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(base: &str, params: &str) -> Ws {
    let url = format!("{base}/v1/listen?encoding=linear16&sample_rate={RATE}&channels=1&{params}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// Sends silence covering [from_ms, to_ms) in 20 ms frames.
pub async fn send_audio(ws: &mut Ws, from_ms: u64, to_ms: u64) {
    let frame = vec![0u8; (RATE / 50 * 2) as usize];
    let mut at = from_ms;
    while at < to_ms {
        ws.send(Message::Binary(frame.clone().into()))
            .await
            .unwrap();
        at += 20;
    }
}

pub async fn send_json(ws: &mut Ws, kind: &str) {
    let text = format!("{{\"type\":\"{kind}\"}}");
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// What the server sent next, within `wait`.
#[derive(Debug)]
pub enum Next {
    Json(Value),
    NotJson(String),
    Close(Option<u16>),
    #[allow(dead_code)] // Read through Debug in failure messages.
    Error(String),
    Ended,
    Silent,
}

pub async fn next(ws: &mut Ws, wait: Duration) -> Next {
    match tokio::time::timeout(wait, ws.next()).await {
        Err(_) => Next::Silent,
        Ok(None) => Next::Ended,
        Ok(Some(Err(e))) => Next::Error(e.to_string()),
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str(&t) {
            Ok(v) => Next::Json(v),
            Err(_) => Next::NotJson(t.to_string()),
        },
        Ok(Some(Ok(Message::Close(frame)))) => Next::Close(frame.map(|f| u16::from(f.code))),
        Ok(Some(Ok(other))) => Next::NotJson(format!("{other:?}")),
    }
}

/// Every JSON message until the server closes; panics on anything else.
pub async fn drain(ws: &mut Ws) -> (Vec<Value>, Option<u16>) {
    let mut out = Vec::new();
    loop {
        match next(ws, Duration::from_secs(5)).await {
            Next::Json(v) => out.push(v),
            Next::Close(code) => return (out, code),
            other => panic!("unexpected {other:?} after {out:?}"),
        }
    }
}

fn transcript(v: &Value) -> &str {
    v["channel"]["alternatives"][0]["transcript"]
        .as_str()
        .unwrap()
}

fn is(v: &Value, kind: &str) -> bool {
    v["type"] == kind
}

#[tokio::test]
async fn final_waits_for_the_endpointing_silence_then_carries_the_turn() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let mut ws = connect(
        &emu.stt_url(),
        &format!("tag={CALL}&endpointing=300&utterance_end_ms=1000&model=nova-2"),
    )
    .await;
    // Up to 200 ms after the turn: no endpoint yet, whatever the wall clock does.
    send_audio(&mut ws, 0, 1700).await;
    assert!(matches!(
        next(&mut ws, Duration::from_millis(200)).await,
        Next::Silent
    ));
    send_audio(&mut ws, 1700, 1820).await;
    let Next::Json(first) = next(&mut ws, Duration::from_secs(2)).await else {
        panic!("no final")
    };
    assert!(is(&first, "Results"));
    assert_eq!(first["is_final"], true);
    assert_eq!(first["speech_final"], true);
    assert_eq!(first["from_finalize"], false);
    assert_eq!(transcript(&first), TURN1);
    let words = first["channel"]["alternatives"][0]["words"]
        .as_array()
        .unwrap();
    assert_eq!(words.len(), 5);
    assert_eq!(words[0]["word"], "hello");
    assert_eq!(words[1]["punctuated_word"], "there,");
    assert!((words[0]["start"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!((words[4]["end"].as_f64().unwrap() - 1.5).abs() < 1e-9);
    assert_eq!(first["channel_index"], serde_json::json!([0, 1]));
    assert_eq!(first["metadata"]["model_info"]["name"], "emulated");
    // The span runs from the start of the stream to the audio that triggered the endpoint.
    assert_eq!(first["start"], 0.0);
    assert!((first["duration"].as_f64().unwrap() - 1.8).abs() < 1e-9);

    send_audio(&mut ws, 1820, AUDIO_MS).await;
    send_json(&mut ws, "KeepAlive").await;
    send_json(&mut ws, "CloseStream").await;
    let (rest, code) = drain(&mut ws).await;
    assert_eq!(code, Some(1000));
    let kinds: Vec<&str> = rest.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["UtteranceEnd", "Results", "UtteranceEnd", "Metadata"]
    );
    assert_eq!(rest[0]["last_word_end"], 1.5);
    assert_eq!(transcript(&rest[1]), TURN2);
    assert_eq!(rest[1]["speech_final"], true);
    assert_eq!(rest[3]["duration"], 4.0);
    assert_eq!(rest[3]["channels"], 1);
    let stats = emu.stats();
    assert_eq!(stats.stt.requests, 1);
    assert_eq!(stats.stt.connections_accepted, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn interims_grow_while_the_turn_is_heard() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let mut ws = connect(
        &emu.stt_url(),
        &format!("tag={CALL}&interim_results=true&endpointing=100&vad_events=true"),
    )
    .await;
    send_audio(&mut ws, 0, 1700).await;
    send_json(&mut ws, "CloseStream").await;
    let (msgs, code) = drain(&mut ws).await;
    assert_eq!(code, Some(1000));
    assert!(is(&msgs[0], "SpeechStarted"));
    assert_eq!(msgs[0]["timestamp"], 0.5);
    let interims: Vec<&Value> = msgs
        .iter()
        .filter(|v| is(v, "Results") && v["is_final"] == false)
        .collect();
    // Boundaries at 800, 1100 and 1400 ms.
    assert_eq!(interims.len(), 3, "{msgs:?}");
    let texts: Vec<&str> = interims.iter().map(|v| transcript(v)).collect();
    assert!(
        texts.windows(2).all(|w| w[1].len() > w[0].len()),
        "{texts:?}"
    );
    assert!(TURN1.starts_with(texts[2]));
    assert!(interims.iter().all(|v| v["speech_final"] == false));
    let finals: Vec<&Value> = msgs.iter().filter(|v| v["is_final"] == true).collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(transcript(finals[0]), TURN1);
    emu.shutdown().await;
}

#[tokio::test]
async fn finalize_flushes_the_heard_words_and_without_endpointing_segments_flush() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let mut ws = connect(&emu.stt_url(), &format!("tag={CALL}&endpointing=false")).await;
    send_json(&mut ws, "Finalize").await;
    let Next::Json(empty) = next(&mut ws, Duration::from_secs(2)).await else {
        panic!()
    };
    assert_eq!(empty["from_finalize"], true);
    assert_eq!(transcript(&empty), "");

    send_audio(&mut ws, 0, 1200).await;
    send_json(&mut ws, "Finalize").await;
    let Next::Json(partial) = next(&mut ws, Duration::from_secs(2)).await else {
        panic!()
    };
    assert_eq!(partial["is_final"], true);
    assert_eq!(partial["speech_final"], false);
    assert_eq!(partial["from_finalize"], true);
    let heard = transcript(&partial);
    assert!(
        !heard.is_empty() && heard.len() < TURN1.len() && TURN1.starts_with(heard),
        "{heard}"
    );

    send_audio(&mut ws, 1200, AUDIO_MS).await;
    send_json(&mut ws, "CloseStream").await;
    let (rest, _) = drain(&mut ws).await;
    let results: Vec<&Value> = rest.iter().filter(|v| is(v, "Results")).collect();
    // The first turn was finalized; the second is flushed 1 s after its end, not speech-final.
    assert_eq!(results.len(), 1, "{rest:?}");
    assert_eq!(transcript(results[0]), TURN2);
    assert_eq!(results[0]["is_final"], true);
    assert_eq!(results[0]["speech_final"], false);
    assert_eq!(results[0]["from_finalize"], false);
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_tag_closes_with_policy_violation() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let mut ws = connect(&emu.stt_url(), "tag=nope").await;
    let Next::Close(code) = next(&mut ws, Duration::from_secs(2)).await else {
        panic!()
    };
    assert_eq!(code, Some(u16::from(CloseCode::Policy)));
    emu.shutdown().await;
}

fn rejected_status(
    result: Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error>,
) -> (u16, Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                serde_json::from_slice(&body).unwrap(),
            )
        }
        other => panic!("expected an HTTP rejection, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn upgrade_rejects_bad_encoding_and_bad_keys() {
    let mut config = common::fast_config();
    config.stt.api_key = Some("sekrit".into());
    let (emu, _dir) = common::start(config).await;
    let base = emu.stt_url();

    let mut request = format!("{base}/v1/listen?encoding=opus&sample_rate=16000&tag={CALL}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Token sekrit".parse().unwrap());
    let (status, body) = rejected_status(tokio_tungstenite::connect_async(request).await);
    assert_eq!(status, 400);
    assert!(body["err_msg"].as_str().unwrap().contains("opus"));

    let mut request = format!("{base}/v1/listen?encoding=linear16&sample_rate=16000&tag={CALL}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Token wrong".parse().unwrap());
    let (status, body) = rejected_status(tokio_tungstenite::connect_async(request).await);
    assert_eq!(status, 401);
    assert_eq!(body["err_code"], "INVALID_AUTH");

    let mut request = format!("{base}/v1/listen?encoding=linear16&sample_rate=16000&tag={CALL}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Token sekrit".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send_json(&mut ws, "CloseStream").await;
    let (msgs, code) = drain(&mut ws).await;
    assert_eq!(code, Some(1000));
    assert!(is(&msgs[0], "Metadata"));
    emu.shutdown().await;
}
