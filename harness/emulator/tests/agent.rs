//! The emulated voice agent on loopback, called by a real WebSocket client the way latlab
//! calls an agent: Twilio Media Streams and binary PCM, paced at real time with short
//! synthetic speech. Replies, barge-in, each fault, determinism and the self-report.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use latlab_core::agent::codec::{mulaw_decode_all, mulaw_encode_all, resample};
use latlab_core::agent::protocol::TWILIO_RATE;
use latlab_core::dataset::Dataset;
use latlab_emulator::agent::endpoint::Endpointer;
use latlab_emulator::{AgentConfig, BargeIn, Emulator, EmulatorConfig, Timing};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const FRAME_MS: u64 = 20;

/// Response 150 ms, replies of 60 ms silence + 400 ms speech, barge-in reaction 50 ms.
fn fast() -> EmulatorConfig {
    let mut c = EmulatorConfig {
        seed: 11,
        ..EmulatorConfig::default()
    };
    c.agent.response = Timing::constant(150.0);
    c.agent.reply_ms = Timing::constant(400.0);
    c.agent.barge_in_delay = Timing::constant(50.0);
    c
}

/// Caller audio at `rate`: alternating silence and speech-like tone, `(speech, ms)` segments.
fn caller(rate: u32, segments: &[(bool, u64)]) -> Vec<i16> {
    let mut out = Vec::new();
    for &(speech, ms) in segments {
        let n = rate as u64 * ms / 1000;
        for i in 0..n {
            let t = i as f64 / f64::from(rate);
            let v = if speech {
                let voice = (std::f64::consts::TAU * 170.0 * t).sin()
                    + 0.5 * (std::f64::consts::TAU * 340.0 * t).sin();
                6_000.0 * voice
            } else {
                0.0
            };
            out.push(v as i16);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Twilio,
    Pcm(u32),
}

impl Protocol {
    fn rate(self) -> u32 {
        match self {
            Protocol::Twilio => TWILIO_RATE,
            Protocol::Pcm(rate) => rate,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// Agent audio, decoded to samples.
    Audio(Vec<i16>),
    Mark(String),
    Clear,
    /// A text message that is not JSON.
    Invalid(String),
    Closed,
}

/// What the caller saw: when each of its frames left, and what arrived when.
struct Heard {
    sent: Vec<Instant>,
    events: Vec<(Instant, Event)>,
}

impl Heard {
    /// Arrival of the first audio chunk with a non-zero sample after `after`.
    fn first_audible_after(&self, after: Instant) -> Option<Instant> {
        self.events.iter().find_map(|(at, e)| match e {
            Event::Audio(s) if *at > after && s.iter().any(|x| *x != 0) => Some(*at),
            _ => None,
        })
    }

    fn audio_between(&self, from: Instant, to: Instant) -> usize {
        self.events
            .iter()
            .filter(|(at, _)| *at > from && *at < to)
            .map(|(_, e)| match e {
                Event::Audio(s) => s.len(),
                _ => 0,
            })
            .sum()
    }

    fn marks(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Mark(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| pred(e)).count()
    }

    /// When the frame that completes the end-of-turn silence after speech ending at
    /// `speech_end_ms` left (the agent's endpoint: 500 ms of non-speech).
    fn endpoint(&self, speech_end_ms: u64) -> Instant {
        self.sent[((speech_end_ms + 500) / FRAME_MS - 1) as usize]
    }
}

/// Calls the agent, streams `audio` in real time, listens `tail_ms` more, then hangs up.
async fn call(
    emu: &Emulator,
    protocol: Protocol,
    call_id: &str,
    audio: Vec<i16>,
    tail_ms: u64,
) -> Heard {
    let url = match protocol {
        Protocol::Twilio => format!("{}/twilio", emu.agent_url()),
        Protocol::Pcm(rate) => format!(
            "{}/pcm?rate={rate}&call={}",
            emu.agent_url(),
            call_id.replace('#', "%23")
        ),
    };
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    if protocol == Protocol::Twilio {
        let connected = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
        tx.send(Message::text(connected)).await.unwrap();
        let start = serde_json::json!({
            "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
            "start": {"accountSid": "AC0", "streamSid": "MZ1", "callSid": call_id,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
        });
        tx.send(Message::text(start.to_string())).await.unwrap();
    }
    let frame = (protocol.rate() as u64 * FRAME_MS / 1000) as usize;
    let frames: Vec<Vec<i16>> = audio.chunks(frame).map(<[i16]>::to_vec).collect();
    let total = Duration::from_millis(frames.len() as u64 * FRAME_MS + tail_ms);
    let t0 = Instant::now();
    let sender = tokio::spawn(async move {
        let mut sent = Vec::new();
        for (k, f) in frames.into_iter().enumerate() {
            tokio::time::sleep_until(t0 + Duration::from_millis(k as u64 * FRAME_MS)).await;
            let message = match protocol {
                Protocol::Twilio => {
                    let payload = BASE64.encode(mulaw_encode_all(&f));
                    let m = serde_json::json!({"event": "media", "streamSid": "MZ1",
                        "media": {"track": "inbound", "payload": payload}});
                    Message::text(m.to_string())
                }
                Protocol::Pcm(_) => {
                    Message::binary(f.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>())
                }
            };
            sent.push(Instant::now());
            if tx.send(message).await.is_err() {
                break;
            }
        }
        (tx, sent)
    });
    let mut events = Vec::new();
    let deadline = t0 + total;
    loop {
        let next = tokio::time::timeout_at(deadline, rx.next()).await;
        let Ok(next) = next else { break };
        let at = Instant::now();
        let event = match next {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                events.push((at, Event::Closed));
                break;
            }
            Some(Ok(Message::Binary(b))) => Event::Audio(
                b.chunks_exact(2)
                    .map(|p| i16::from_le_bytes([p[0], p[1]]))
                    .collect(),
            ),
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(&t) {
                Err(_) => Event::Invalid(t.to_string()),
                Ok(v) => match v["event"].as_str() {
                    Some("media") => {
                        assert_eq!(v["streamSid"], "MZ1", "{v}");
                        let bytes = BASE64
                            .decode(v["media"]["payload"].as_str().unwrap())
                            .unwrap();
                        Event::Audio(mulaw_decode_all(&bytes))
                    }
                    Some("mark") => Event::Mark(v["mark"]["name"].as_str().unwrap().into()),
                    Some("clear") => Event::Clear,
                    _ => panic!("unexpected message {v}"),
                },
            },
            Some(Ok(_)) => continue,
        };
        events.push((at, event));
    }
    let (mut tx, sent) = sender.await.unwrap();
    if protocol == Protocol::Twilio {
        let _ = tx
            .send(Message::text(r#"{"event":"stop","streamSid":"MZ1"}"#))
            .await;
    }
    let _ = tx.close().await;
    Heard { sent, events }
}

/// 200 ms silence, 500 ms speech, 1300 ms silence: one turn, endpoint at 1200 ms.
fn one_turn(rate: u32) -> Vec<i16> {
    caller(rate, &[(false, 200), (true, 500), (false, 1300)])
}

async fn self_report(emu: &Emulator) -> Vec<Value> {
    let body = reqwest::get(format!("http://{}/self-report", emu.agent_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn assert_reply_starts_on_time(heard: &Heard, speech_end_ms: u64, config: &AgentConfig) {
    let endpoint = heard.endpoint(speech_end_ms);
    let audible = heard.first_audible_after(endpoint).expect("a reply");
    let delta = (audible - endpoint).as_secs_f64() * 1000.0;
    // response (150) + leading silence (60), plus scheduling slack on a busy machine.
    let Timing::Constant { ms: response } = config.response else {
        panic!()
    };
    let expected = response + f64::from(config.leading_silence_ms);
    assert!(
        (expected - 5.0..expected + 80.0).contains(&delta),
        "audible {delta:.1} ms after the endpoint, expected {expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_call_gets_one_reply_per_turn_on_time() {
    let config = fast();
    let emu = Emulator::start(config.clone(), None).await.unwrap();
    let audio = caller(
        8_000,
        &[
            (false, 300),
            (true, 600),
            (false, 1400),
            (true, 500),
            (false, 1400),
        ],
    );
    let heard = call(&emu, Protocol::Twilio, "call-01#0", audio, 200).await;
    assert_eq!(heard.marks(), ["reply-0", "reply-1"]);
    assert_reply_starts_on_time(&heard, 900, &config.agent);
    assert_reply_starts_on_time(&heard, 2800, &config.agent);
    // Each reply is 60 + 400 ms of 8 kHz audio, then its mark.
    let t0 = heard.sent[0];
    let mid = t0 + Duration::from_millis(2300);
    assert_eq!(heard.audio_between(t0, mid), 8 * 460);
    assert_eq!(
        heard.audio_between(mid, t0 + Duration::from_secs(60)),
        8 * 460
    );
    assert_eq!(
        heard.count(|e| matches!(e, Event::Clear | Event::Invalid(_))),
        0
    );

    let lines = self_report(&emu).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (turn, line) in lines.iter().enumerate() {
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{line}");
        assert_eq!(line["call_sid"], "call-01#0");
        assert_eq!(line["turn"], turn);
        assert_eq!(line["source"], "emulator");
        assert_eq!(line["stages"]["response_ms"], 150.0);
        let latency = line["latency_ms"].as_f64().unwrap();
        assert!((150.0..230.0).contains(&latency), "{line}");
    }
    let stats = emu.stats().agent;
    assert_eq!(stats.requests, 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pcm_call_at_16k_gets_its_reply_on_time() {
    let config = fast();
    let emu = Emulator::start(config.clone(), None).await.unwrap();
    let heard = call(
        &emu,
        Protocol::Pcm(16_000),
        "call-02#0",
        one_turn(16_000),
        200,
    )
    .await;
    assert_reply_starts_on_time(&heard, 700, &config.agent);
    assert_eq!(
        heard.audio_between(heard.sent[0], heard.sent[0] + Duration::from_secs(60)),
        16 * 460
    );
    // No marks in PCM mode.
    assert!(heard.marks().is_empty());
    let lines = self_report(&emu).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["call_sid"], "call-02#0");
    emu.shutdown().await;
}

/// 200 silence, 500 speech (endpoint 1200, a 2 s reply from 1350), the caller talks again
/// at 1800 for 500 ms (barge-in once 200 ms of it arrived, + 50 ms), then 1000 ms of silence.
fn interrupted(rate: u32) -> Vec<i16> {
    caller(
        rate,
        &[
            (false, 200),
            (true, 500),
            (false, 1100),
            (true, 500),
            (false, 1000),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_and_the_interruption_is_a_new_turn() {
    let mut config = fast();
    config.agent.reply_ms = Timing::constant(2000.0);
    let emu = Emulator::start(config, None).await.unwrap();
    let heard = call(&emu, Protocol::Twilio, "call-03#0", interrupted(8_000), 300).await;
    let t0 = heard.sent[0];
    let (clear_at, _) = heard
        .events
        .iter()
        .find(|(_, e)| *e == Event::Clear)
        .expect("a clear");
    // The 10th speech frame leaves at 1980 ms; the reaction comes 50 ms later.
    let after = (*clear_at - t0).as_millis();
    assert!((2025..2150).contains(&after), "clear at {after} ms");
    // Nothing of the interrupted reply after the clear; its mark never comes.
    assert_eq!(
        heard.audio_between(*clear_at, t0 + Duration::from_millis(2900)),
        0
    );
    assert!(!heard.marks().contains(&"reply-0".to_string()));
    // The interruption (speech ending at 2300) is turn 1, answered as usual.
    let endpoint = heard.endpoint(2300);
    let audible = heard
        .first_audible_after(endpoint)
        .expect("the reply to turn 1");
    assert!((audible - endpoint) < Duration::from_millis(300));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stop_stops_without_clear() {
    let mut config = fast();
    config.agent.reply_ms = Timing::constant(2000.0);
    config.agent.barge_in = BargeIn::Stop;
    let emu = Emulator::start(config, None).await.unwrap();
    let heard = call(
        &emu,
        Protocol::Pcm(8_000),
        "call-04#0",
        interrupted(8_000),
        300,
    )
    .await;
    let t0 = heard.sent[0];
    assert_eq!(heard.count(|e| *e == Event::Clear), 0);
    assert!(heard.audio_between(t0, t0 + Duration::from_millis(2000)) > 0);
    let quiet = heard.audio_between(
        t0 + Duration::from_millis(2150),
        t0 + Duration::from_millis(2900),
    );
    assert_eq!(quiet, 0, "the reply went on after the barge-in");
    emu.shutdown().await;
}

fn with_fault(set: impl FnOnce(&mut AgentConfig)) -> EmulatorConfig {
    let mut c = fast();
    set(&mut c.agent);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_answers_the_upgrade_with_503_and_bad_rates_with_400() {
    let emu = Emulator::start(with_fault(|a| a.faults.refuse = 1.0), None)
        .await
        .unwrap();
    for path in ["/twilio", "/pcm?rate=16000&call=c%230"] {
        let err = tokio_tungstenite::connect_async(format!("{}{path}", emu.agent_url()))
            .await
            .unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
            panic!("{err:?}")
        };
        assert_eq!(response.status(), 503);
    }
    let err = tokio_tungstenite::connect_async(format!("{}/pcm?rate=100", emu.agent_url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 400),
        "{err:?}"
    );
    assert_eq!(emu.stats().agent.faults.http_5xx, 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drops_the_call_mid_reply() {
    let emu = Emulator::start(with_fault(|a| a.faults.close = 1.0), None)
        .await
        .unwrap();
    let heard = call(&emu, Protocol::Twilio, "call-05#0", one_turn(8_000), 200).await;
    let audio = heard.audio_between(heard.sent[0], Instant::now());
    // 23 chunks of 20 ms planned; the connection went after 11.
    assert_eq!(audio, 11 * 160);
    assert_eq!(heard.events.last().map(|(_, e)| e), Some(&Event::Closed));
    assert!(heard.marks().is_empty());
    assert_eq!(emu.stats().agent.faults.disconnect, 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replaces_the_first_media_message_then_the_reply_goes_on() {
    let emu = Emulator::start(with_fault(|a| a.faults.malformed = 1.0), None)
        .await
        .unwrap();
    let heard = call(&emu, Protocol::Twilio, "call-06#0", one_turn(8_000), 200).await;
    let invalid: Vec<usize> = (0..heard.events.len())
        .filter(|&i| matches!(heard.events[i].1, Event::Invalid(_)))
        .collect();
    assert_eq!(invalid.len(), 1);
    assert!(
        !heard.events[..invalid[0]]
            .iter()
            .any(|(_, e)| matches!(e, Event::Audio(_)))
    );
    assert_eq!(heard.count(|e| matches!(e, Event::Audio(_))), 22);
    assert_eq!(heard.marks(), ["reply-0"]);
    assert_eq!(emu.stats().agent.faults.malformed, 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_answer_leaves_the_turn_unanswered() {
    let emu = Emulator::start(with_fault(|a| a.faults.never_answer = 1.0), None)
        .await
        .unwrap();
    let heard = call(
        &emu,
        Protocol::Pcm(16_000),
        "call-07#0",
        one_turn(16_000),
        200,
    )
    .await;
    assert!(heard.events.is_empty(), "{:?}", heard.events.len());
    assert!(self_report(&emu).await.is_empty());
    assert_eq!(emu.stats().agent.faults.stall, 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_under_one_seed_always_behaves_the_same() {
    let mut config = fast();
    config.agent.response = Timing::lognormal(200.0, 0.4);
    config.agent.reply_ms = Timing::lognormal(400.0, 0.4);
    let emu = Emulator::start(config, None).await.unwrap();
    let (a, b, c) = tokio::join!(
        call(
            &emu,
            Protocol::Pcm(8_000),
            "call-08#0",
            one_turn(8_000),
            1500
        ),
        call(
            &emu,
            Protocol::Pcm(8_000),
            "call-08#0",
            one_turn(8_000),
            1500
        ),
        call(
            &emu,
            Protocol::Pcm(8_000),
            "call-08#1",
            one_turn(8_000),
            1500
        ),
    );
    let length = |h: &Heard| h.audio_between(h.sent[0], Instant::now());
    assert_eq!(length(&a), length(&b));
    assert_ne!(length(&a), length(&c));
    let lines = self_report(&emu).await;
    let response = |call: &str| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l["call_sid"] == call)
            .map(|l| l["stages"]["response_ms"].as_f64().unwrap())
            .collect()
    };
    let same = response("call-08#0");
    assert_eq!(same.len(), 2);
    assert_eq!(same[0], same[1]);
    assert_ne!(response("call-08#1"), same[..1]);
    emu.shutdown().await;
}

/// The default level threshold separates the smoke dataset's speech from its noise after the
/// 16 kHz → 8 kHz μ-law round trip: every call's turns are found, each ending near its
/// end in the manifest.
#[test]
fn the_default_detector_finds_every_turn_of_the_smoke_calls() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/smoke");
    let data = Dataset::load(&dir).unwrap();
    let c = AgentConfig::default();
    for call in &data.calls {
        let samples = call.load_samples().unwrap();
        let wire = mulaw_decode_all(&mulaw_encode_all(&resample(
            &samples,
            call.sample_rate,
            TWILIO_RATE,
        )));
        let mut ears = Endpointer::new(
            TWILIO_RATE,
            c.speech_dbfs,
            c.endpointing_ms,
            c.min_speech_ms,
        );
        let mut ends = Vec::new();
        let mut frame = 0u64;
        ears.push(&wire, |f| {
            frame += 1;
            if f.end_of_turn {
                ends.push(frame * FRAME_MS - u64::from(c.endpointing_ms));
            }
        });
        assert_eq!(ends.len(), call.turns.len(), "{}: {ends:?}", call.id);
        for (end, turn) in ends.iter().zip(&call.turns) {
            // Quiet word endings may fall under the threshold: the detector ends early.
            assert!(
                (turn.end_ms.saturating_sub(400)..=turn.end_ms + 40).contains(end),
                "{}: turn ending at {} found ending at {end}",
                call.id,
                turn.end_ms
            );
        }
    }
}
