//! One call to a running agent: dial it, stream the recorded caller on the recording's
//! schedule (or, with `barge_in_after_ms`, each turn after the first timed off the agent's
//! previous reply), listen to everything it sends, and measure each turn at the caller's ear.
//!
//! The feeder owns the socket's sending half and does nothing slow: frames leave when due and
//! how late each left is recorded (pacing lag). The listener stamps every message on arrival
//! and builds the [`Ear`]. A refused, failed or dropped connection and a malformed message
//! become typed turn errors; the call's turns are always all recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::codec::{mulaw_decode_all, mulaw_encode_all, resample};
use super::ear::{CallerSpeech, CallerTurn, Ear, Heard, Measured, speech_flags};
use super::protocol::{
    Media, MediaFormat, StartMeta, TWILIO_ENCODING, TWILIO_RATE, TwilioMessage, is_pcm_clear,
};
use super::{AgentTarget, Protocol};
use crate::audio::frame_dbfs;
use crate::clock::Epoch;
use crate::pipeline::{CallPlan, CallReport};
use crate::timing::{
    CallLabels, ErrorKind, Outcome, SpanRecord, SpanSink, Stage, StageError, TurnTimeline, diff_ns,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type WsSink = futures_util::stream::SplitSink<Ws, Message>;

/// How long the caller stays on the line after the last reply went quiet (ms).
const HANG_UP_AFTER_MS: u64 = 1_000;
/// Frames whose lags are handed to the sink at once.
const PACING_BATCH: usize = 64;

/// What the listener shares with the feeder while the call runs.
#[derive(Debug, Default)]
struct Progress {
    /// Onsets heard so far (ear time of their first audible sample).
    onsets: Vec<u64>,
    /// When the audio received so far will have played out.
    play_end_ns: u64,
    /// The socket ended (by the agent or an error).
    closed: bool,
}

/// What the listener found.
struct Listened {
    ear: Ear,
    /// Malformed or unexpected messages, when they arrived.
    errors: Vec<(u64, StageError)>,
    /// When the agent closed the socket or it failed, before latlab hung up.
    dropped: Option<(u64, StageError)>,
}

/// Calls the agent with one recorded call and records every turn.
pub async fn run_agent_call(
    epoch: Epoch,
    plan: CallPlan,
    target: Arc<AgentTarget>,
    sink: Arc<dyn SpanSink>,
) -> CallReport {
    let labels = Arc::new(CallLabels {
        run: plan.run.clone(),
        scenario: plan.scenario.clone(),
        profile: plan.profile.name.clone(),
        call: plan.call.id.clone(),
        iteration: plan.iteration,
        backends: std::array::from_fn(|_| target.name.clone()),
    });
    let rate = target.sample_rate();
    // The caller's audio at the wire's rate, and which of its frames are speech: both off the
    // clock (the first frame is due `CONNECT_LEAD` after the call was scheduled).
    let wire = resample(&plan.samples, plan.call.sample_rate, rate);
    let frame = (rate as usize * plan.frame_ms as usize / 1000).max(1);
    let levels: Vec<f64> = wire.chunks(frame).map(frame_dbfs).collect();
    let speech = speech_flags(&levels);
    // The call's id on the wire (`start.callSid`, the session header): unique within the run,
    // so an agent's self-report lines up with one call of one profile.
    let session = call_sid(&plan.profile.name, &plan.call.id, plan.iteration);
    let recorded: Vec<CallerTurn> = plan
        .call
        .turns
        .iter()
        .map(|t| CallerTurn {
            start_ns: plan.schedule.at_ms(t.start_ms as f64),
            end_ns: plan.schedule.at_ms(t.end_ms as f64),
        })
        .collect();

    let ws = match dial(&target, &session).await {
        Ok(ws) => ws,
        Err(e) => {
            let measured = vec![Measured::default(); recorded.len()];
            let errors = vec![Some(e); recorded.len()];
            return record(&plan, &labels, &recorded, &measured, &errors, 0, &*sink);
        }
    };
    let (mut tx, rx) = ws.split();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let (marks_tx, marks) = mpsc::unbounded_channel();
    let listener = tokio::spawn(listen(
        epoch,
        rx,
        target.protocol,
        rate,
        Arc::clone(&progress),
        marks_tx,
    ));
    let feed = Feed {
        epoch,
        plan: &plan,
        target: &target,
        wire: &wire,
        frame,
        speech: &speech,
        recorded: &recorded,
        session: &session,
        progress: &progress,
        sink: &*sink,
    };
    let fed = feed.run(&mut tx, marks).await;
    let heard_until = epoch.elapsed_ns();
    let _ = tx.close().await;
    let listened = match tokio::time::timeout(Duration::from_secs(2), listener).await {
        Ok(Ok(l)) => l,
        _ => Listened {
            ear: Ear::new(rate),
            errors: vec![(
                heard_until,
                StageError::new(ErrorKind::Cancelled, "the listener did not finish"),
            )],
            dropped: None,
        },
    };
    let heard: Heard = listened.ear.finish();
    let answer_timeout = target.answer_timeout_ms * 1_000_000;
    let measured = heard.measure(&fed.turns, &fed.caller, answer_timeout, heard_until);
    let errors = turn_errors(
        &fed.turns,
        &measured,
        &listened.errors,
        listened.dropped.as_ref().or(fed.failed.as_ref()),
        target.answer_timeout_ms,
    );
    record(
        &plan,
        &labels,
        &fed.turns,
        &measured,
        &errors,
        fed.max_lag,
        &*sink,
    )
}

/// The id a call goes by on the wire: `PROFILE/CALL#ITERATION`.
pub fn call_sid(profile: &str, call: &str, iteration: u32) -> String {
    format!("{profile}/{call}#{iteration}")
}

/// Opens the media stream.
async fn dial(target: &AgentTarget, session: &str) -> Result<Ws, StageError> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| StageError::new(ErrorKind::Connect, format!("bad agent URL: {e}")))?;
    if let Ok(value) = session.parse() {
        request
            .headers_mut()
            .insert(crate::backends::SESSION_HEADER, value);
    }
    if let Some(key) = &target.api_key {
        let value = format!("Bearer {}", key.expose()).parse().map_err(|_| {
            StageError::new(ErrorKind::Connect, "API key is not a valid header value")
        })?;
        request.headers_mut().insert("Authorization", value);
    }
    let connect = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(Duration::from_millis(target.connect_timeout_ms), connect).await {
        Err(_) => Err(StageError::new(
            ErrorKind::Timeout,
            format!(
                "agent WebSocket not open within {} ms",
                target.connect_timeout_ms
            ),
        )),
        Ok(Err(e)) => Err(crate::backends::deepgram::connect_error(e)),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// The caller's side of the stream.
struct Feed<'a> {
    epoch: Epoch,
    plan: &'a CallPlan,
    target: &'a AgentTarget,
    wire: &'a [i16],
    frame: usize,
    speech: &'a [bool],
    recorded: &'a [CallerTurn],
    session: &'a str,
    progress: &'a Mutex<Progress>,
    sink: &'a dyn SpanSink,
}

/// What the feeder did.
struct Fed {
    /// The turns as they were actually scheduled.
    turns: Vec<CallerTurn>,
    caller: CallerSpeech,
    max_lag: u64,
    /// Sending failed (the socket went away).
    failed: Option<(u64, StageError)>,
}

impl Feed<'_> {
    fn frame_ns(&self) -> u64 {
        let ns = self.frame as f64 * 1e9 / f64::from(self.target.sample_rate());
        (ns / self.plan.schedule.speed).round() as u64
    }

    /// Epoch time of a recording position (ms), before any barge-in shift.
    fn at_ms(&self, ms: f64) -> u64 {
        self.plan.schedule.at_ms(ms)
    }

    async fn run(&self, tx: &mut WsSink, mut marks: mpsc::UnboundedReceiver<(u64, String)>) -> Fed {
        let mut fed = Fed {
            turns: Vec::with_capacity(self.recorded.len()),
            caller: CallerSpeech::default(),
            max_lag: 0,
            failed: None,
        };
        let rate = self.target.sample_rate();
        let frame_ns = self.frame_ns();
        let total = self.wire.len().div_ceil(self.frame);
        let sample_ms = |k: usize| (k * self.frame) as f64 * 1000.0 / f64::from(rate);
        // Frame index where each turn's speech begins and ends.
        let turn_frames: Vec<(usize, usize)> = self
            .plan
            .call
            .turns
            .iter()
            .map(|t| {
                let f = |ms: u64| (ms as f64 * f64::from(rate) / 1000.0) as usize / self.frame;
                (f(t.start_ms), f(t.end_ms))
            })
            .collect();
        let mut lags = Vec::with_capacity(PACING_BATCH);
        let mut pending_marks: Vec<(u64, String)> = Vec::new();
        let mut seq = 0u64;
        let mut media_ms = 0u64;
        if let Err(e) = self.open_stream(tx, &mut seq).await {
            fed.failed = Some((self.epoch.elapsed_ns(), e));
            return fed;
        }
        // `shift` maps a recording position to the epoch: due = at_ms(position) + shift.
        let mut shift: i64 = 0;
        let rec_due = |k: usize, shift: i64| shifted(self.at_ms(sample_ms(k + 1)), shift);
        let mut k = 0usize;
        let mut due = rec_due(0, 0);
        let mut next_turn = 0usize;
        let silence = vec![0i16; self.frame];
        let answer_timeout = self.target.answer_timeout_ms * 1_000_000;
        let last_end = self.recorded.last().map_or(0, |t| t.end_ns);
        loop {
            if self.progress.lock().expect("progress lock").closed {
                break;
            }
            // Where this frame comes from: the recording, or silence while the caller waits
            // for the agent (barge-in) or stays on the line after the recording.
            let mut from_recording = k < total;
            if let Some(after) = self.target.barge_in_after_ms
                && from_recording
                && next_turn > 0
                && next_turn < turn_frames.len()
                && k > turn_frames[next_turn - 1].1
            {
                // Turn `next_turn` starts `after` ms after the onset of the reply to the turn
                // before it (or once that reply's answer window closed without one).
                let start_frame = turn_frames[next_turn].0;
                let prev_end = fed.turns.last().map_or(0, |t: &CallerTurn| t.end_ns);
                let onset = {
                    let p = self.progress.lock().expect("progress lock");
                    p.onsets.iter().copied().find(|&o| o >= prev_end)
                };
                let target = match onset {
                    Some(o) => Some(o + after * 1_000_000),
                    None if due >= prev_end.saturating_add(answer_timeout) => Some(due),
                    None => None,
                };
                match target {
                    Some(t) if t <= due => {
                        let start_ms = self.plan.call.turns[next_turn].start_ms as f64;
                        shift = diff_ns(t, self.at_ms(start_ms));
                        k = start_frame;
                        due = rec_due(k, shift);
                    }
                    _ if k >= start_frame => from_recording = false,
                    _ => {}
                }
            }
            if from_recording
                && let Some(&(start_frame, _)) = turn_frames.get(next_turn)
                && k == start_frame
            {
                let t = &self.plan.call.turns[next_turn];
                fed.turns.push(CallerTurn {
                    start_ns: shifted(self.at_ms(t.start_ms as f64), shift),
                    end_ns: shifted(self.at_ms(t.end_ms as f64), shift),
                });
                next_turn += 1;
            }
            if k >= total {
                // After the recording: hang up once the last turn's reply has gone quiet, or
                // its answer window closed.
                let p = self.progress.lock().expect("progress lock");
                let last = fed.turns.last().map_or(last_end, |t| t.end_ns);
                let answered = p.onsets.iter().any(|&o| o >= last);
                let quiet_since = p.play_end_ns;
                let now = self.epoch.elapsed_ns();
                if now >= last.saturating_add(answer_timeout)
                    || (answered && now >= quiet_since + HANG_UP_AFTER_MS * 1_000_000)
                {
                    break;
                }
            }
            self.plan
                .pacer
                .sleep_until(self.epoch.instant_at(due))
                .await;
            let samples = if from_recording {
                &self.wire[k * self.frame..((k + 1) * self.frame).min(self.wire.len())]
            } else {
                &silence[..]
            };
            while let Ok(m) = marks.try_recv() {
                pending_marks.push(m);
            }
            let sent = self.epoch.elapsed_ns();
            let lag = sent.saturating_sub(due);
            fed.max_lag = fed.max_lag.max(lag);
            lags.push(lag);
            if lags.len() == PACING_BATCH {
                self.sink.record_pacing_batch(&lags);
                lags.clear();
            }
            let speech = from_recording && self.speech.get(k).copied().unwrap_or(false);
            fed.caller
                .frames
                .push((due.saturating_sub(frame_ns), due, speech));
            if let Err(e) = self.send_frame(tx, samples, &mut seq, media_ms).await {
                fed.failed = Some((self.epoch.elapsed_ns(), e));
                break;
            }
            media_ms += u64::from(self.plan.frame_ms);
            // Marks go back once the audio before them has played.
            let now = self.epoch.elapsed_ns();
            let mut echo = Vec::new();
            pending_marks.retain(|(at, name)| {
                let played = *at <= now;
                if played {
                    echo.push(name.clone());
                }
                !played
            });
            for name in echo {
                if self.target.protocol == Protocol::Twilio {
                    seq += 1;
                    let m = TwilioMessage::Mark {
                        sequence_number: Some(seq.to_string()),
                        stream_sid: Some(self.stream_sid()),
                        mark: super::protocol::MarkName { name },
                    };
                    let _ = tx.send(text(&m)).await;
                }
            }
            if from_recording {
                k += 1;
                due = rec_due(k, shift);
            } else {
                due += frame_ns;
            }
        }
        self.sink.record_pacing_batch(&lags);
        // Turns never reached (the socket failed first) keep their recorded schedule.
        for t in &self.recorded[fed.turns.len()..] {
            fed.turns.push(CallerTurn {
                start_ns: shifted(t.start_ns, shift),
                end_ns: shifted(t.end_ns, shift),
            });
        }
        if self.target.protocol == Protocol::Twilio {
            seq += 1;
            let stop = TwilioMessage::Stop {
                sequence_number: Some(seq.to_string()),
                stream_sid: Some(self.stream_sid()),
                stop: Some(serde_json::json!({ "callSid": self.session })),
            };
            let _ = tx.send(text(&stop)).await;
        }
        fed
    }

    fn stream_sid(&self) -> String {
        format!("MZ-{}", self.session)
    }

    async fn open_stream(&self, tx: &mut WsSink, seq: &mut u64) -> Result<(), StageError> {
        if self.target.protocol != Protocol::Twilio {
            return Ok(());
        }
        let connected = TwilioMessage::Connected {
            protocol: "Call".into(),
            version: "1.0.0".into(),
        };
        *seq += 1;
        let mut custom = serde_json::Map::new();
        custom.insert("latlab_call".into(), self.plan.call.id.clone().into());
        custom.insert("latlab_iteration".into(), self.plan.iteration.into());
        custom.insert(
            "latlab_profile".into(),
            self.plan.profile.name.clone().into(),
        );
        let start = TwilioMessage::Start {
            sequence_number: Some(seq.to_string()),
            start: StartMeta {
                account_sid: "AC-latlab".into(),
                stream_sid: self.stream_sid(),
                call_sid: self.session.to_string(),
                tracks: vec!["inbound".into()],
                media_format: MediaFormat {
                    encoding: TWILIO_ENCODING.into(),
                    sample_rate: TWILIO_RATE,
                    channels: 1,
                },
                custom_parameters: custom,
            },
            stream_sid: self.stream_sid(),
        };
        for m in [connected, start] {
            tx.send(text(&m)).await.map_err(send_error)?;
        }
        Ok(())
    }

    async fn send_frame(
        &self,
        tx: &mut WsSink,
        samples: &[i16],
        seq: &mut u64,
        media_ms: u64,
    ) -> Result<(), StageError> {
        let message = match self.target.protocol {
            Protocol::Twilio => {
                *seq += 1;
                let payload =
                    base64::engine::general_purpose::STANDARD.encode(mulaw_encode_all(samples));
                text(&TwilioMessage::Media {
                    sequence_number: Some(seq.to_string()),
                    stream_sid: Some(self.stream_sid()),
                    media: Media {
                        track: Some("inbound".into()),
                        chunk: Some((*seq - 2).to_string()),
                        timestamp: Some(media_ms.to_string()),
                        payload,
                    },
                })
            }
            Protocol::Pcm => {
                let mut bytes = Vec::with_capacity(samples.len() * 2);
                for s in samples {
                    bytes.extend_from_slice(&s.to_le_bytes());
                }
                Message::Binary(bytes.into())
            }
        };
        tx.send(message).await.map_err(send_error)
    }
}

fn shifted(t: u64, shift: i64) -> u64 {
    (i128::from(t) + i128::from(shift)).clamp(0, i128::from(u64::MAX)) as u64
}

fn text(m: &TwilioMessage) -> Message {
    Message::Text(
        serde_json::to_string(m)
            .expect("a Twilio message always serializes")
            .into(),
    )
}

fn send_error(e: tokio_tungstenite::tungstenite::Error) -> StageError {
    StageError::new(
        ErrorKind::Disconnected,
        format!("the agent's socket closed while the caller was sending: {e}"),
    )
}

/// Reads everything the agent sends, stamping each message when it arrives.
async fn listen(
    epoch: Epoch,
    mut rx: futures_util::stream::SplitStream<Ws>,
    protocol: Protocol,
    rate: u32,
    progress: Arc<Mutex<Progress>>,
    marks: mpsc::UnboundedSender<(u64, String)>,
) -> Listened {
    let mut out = Listened {
        ear: Ear::new(rate),
        errors: Vec::new(),
        dropped: None,
    };
    loop {
        let message = rx.next().await;
        let at = epoch.elapsed_ns();
        let message = match message {
            None => break,
            Some(Err(e)) => {
                out.dropped = Some((
                    at,
                    StageError::new(ErrorKind::Disconnected, format!("agent stream failed: {e}")),
                ));
                break;
            }
            Some(Ok(m)) => m,
        };
        let audio: Option<Vec<i16>> = match (protocol, message) {
            (_, Message::Close(frame)) => {
                out.dropped = Some((
                    at,
                    StageError::new(
                        ErrorKind::Disconnected,
                        format!(
                            "the agent closed the call{}",
                            frame
                                .map(|f| format!(" ({} {})", f.code, f.reason))
                                .unwrap_or_default()
                        ),
                    ),
                ));
                break;
            }
            (Protocol::Twilio, Message::Text(t)) => match serde_json::from_str::<TwilioMessage>(&t)
            {
                Ok(TwilioMessage::Media { media, .. }) => {
                    match base64::engine::general_purpose::STANDARD.decode(media.payload.as_bytes())
                    {
                        Ok(bytes) => Some(mulaw_decode_all(&bytes)),
                        Err(e) => {
                            out.errors.push((
                                at,
                                StageError::new(
                                    ErrorKind::Protocol,
                                    format!("media payload is not base64: {e}"),
                                ),
                            ));
                            None
                        }
                    }
                }
                Ok(TwilioMessage::Clear { .. }) => {
                    out.ear.clear(at);
                    None
                }
                Ok(TwilioMessage::Mark { mark, .. }) => {
                    let _ = marks.send((out.ear.play_end().max(at), mark.name));
                    None
                }
                Ok(_) => None,
                Err(e) => {
                    out.errors.push((
                        at,
                        StageError::new(
                            ErrorKind::Protocol,
                            format!("not a Twilio Media Streams message: {e}"),
                        ),
                    ));
                    None
                }
            },
            (Protocol::Pcm, Message::Text(t)) => {
                if is_pcm_clear(&t) {
                    out.ear.clear(at);
                } else {
                    out.errors.push((
                        at,
                        StageError::new(
                            ErrorKind::Protocol,
                            format!(
                                "unexpected text message on a PCM stream: {:?}",
                                t.chars().take(60).collect::<String>()
                            ),
                        ),
                    ));
                }
                None
            }
            (Protocol::Pcm, Message::Binary(b)) => Some(
                b.chunks_exact(2)
                    .map(|p| i16::from_le_bytes([p[0], p[1]]))
                    .collect(),
            ),
            (Protocol::Twilio, Message::Binary(_)) => {
                out.errors.push((
                    at,
                    StageError::new(
                        ErrorKind::Protocol,
                        "binary message on a Twilio Media Streams socket",
                    ),
                ));
                None
            }
            _ => None,
        };
        let mut p = progress.lock().expect("progress lock");
        if let Some(samples) = audio
            && let Some(onset) = out.ear.audio(at, &samples)
        {
            p.onsets.push(onset);
        }
        p.play_end_ns = out.ear.play_end();
    }
    progress.lock().expect("progress lock").closed = true;
    out
}

/// Each turn's error: the connection dropping before the turn was done, a malformed message
/// in its window, or dead air.
fn turn_errors(
    turns: &[CallerTurn],
    measured: &[Measured],
    errors: &[(u64, StageError)],
    dropped: Option<&(u64, StageError)>,
    answer_timeout_ms: u64,
) -> Vec<Option<StageError>> {
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let m = &measured[i];
            let window_end = turns.get(i + 1).map_or(u64::MAX, |n| n.start_ns);
            let window_start = if i == 0 { 0 } else { t.start_ns };
            let done_by = m
                .last_audible_ns
                .unwrap_or(t.end_ns.saturating_add(answer_timeout_ms * 1_000_000));
            if let Some((at, e)) = dropped
                && *at < done_by
            {
                return Some(e.clone());
            }
            if let Some((_, e)) = errors
                .iter()
                .find(|(at, _)| *at >= window_start && *at < window_end)
            {
                return Some(e.clone());
            }
            if m.agent.dead_air {
                return Some(StageError::new(
                    ErrorKind::NoAnswer,
                    format!(
                        "no audible reply within {answer_timeout_ms} ms of the end of the caller's speech"
                    ),
                ));
            }
            None
        })
        .collect()
}

/// Hands every turn to the sink.
fn record(
    plan: &CallPlan,
    labels: &Arc<CallLabels>,
    turns: &[CallerTurn],
    measured: &[Measured],
    errors: &[Option<StageError>],
    max_lag: u64,
    sink: &dyn SpanSink,
) -> CallReport {
    let mut report = CallReport {
        turns: turns.len(),
        failed_turns: 0,
        max_pacing_lag_ns: max_lag,
    };
    for (i, ((t, m), error)) in turns.iter().zip(measured).zip(errors).enumerate() {
        let ok = error.is_none() && m.voice_to_voice_ns.is_some();
        if !ok {
            report.failed_turns += 1;
        }
        let error = error.clone().or_else(|| {
            (!ok).then(|| StageError::new(ErrorKind::NoAnswer, "no audible reply was heard"))
        });
        let outcome = if ok { Outcome::Ok } else { Outcome::Error };
        let dataset_turn = &plan.call.turns[i];
        let timeline = TurnTimeline {
            run: labels.run.clone(),
            scenario: labels.scenario.clone(),
            profile: labels.profile.clone(),
            call: labels.call.clone(),
            iteration: labels.iteration,
            turn: i as u32,
            user_start_scheduled_ns: t.start_ns,
            user_end_scheduled_ns: t.end_ns,
            tts_first_byte_ns: m.first_heard_ns,
            tts_first_audible_ns: m.first_audible_ns,
            tts_done_ns: m.last_audible_ns,
            voice_to_voice_ns: m.voice_to_voice_ns,
            agent_audio_ms: m.agent.reply_ms,
            barge_in_ms: m.barge_in_ms,
            reference: Some(dataset_turn.text.clone()),
            outcome,
            error: error.clone(),
            agent: Some(m.agent.clone()),
            ..TurnTimeline::default()
        };
        let span = |stage| SpanRecord::new(labels, i as u32, stage, t.end_ns);
        let mut turn = span(Stage::Turn);
        turn.start_ns = Some(t.end_ns);
        turn.first_output_ns = m.first_audible_ns;
        turn.end_ns = m.last_audible_ns;
        turn.latency_ns = m.voice_to_voice_ns;
        turn.units.audio_ms = m.agent.reply_ms;
        turn.outcome = outcome;
        turn.error = error;
        sink.record_turn(
            timeline,
            [
                span(Stage::Endpoint),
                span(Stage::Stt),
                span(Stage::Llm),
                span(Stage::Tool),
                span(Stage::Tts),
                turn,
            ],
        );
    }
    report
}
