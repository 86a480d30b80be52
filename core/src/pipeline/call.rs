//! One call session: open the STT stream, start the feeder, follow what the STT and the
//! endpointer report, and hand each finished user turn to the answering side in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::turn::{Answered, Heard, TurnId, finish};
use super::{Backends, CallPlan, agent, feeder};
use crate::clock::Epoch;
use crate::profile::Endpointing;
use crate::stage::{CallInfo, ChatMessage, SttEvent, SttOptions, SttReceiver};
use crate::timing::{CallLabels, ErrorKind, Outcome, SpanSink, StageError};

/// What happened on a call, for the harness's progress and summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallReport {
    /// Turns recorded.
    pub turns: usize,
    /// Turns whose outcome was an error.
    pub failed_turns: usize,
    /// Largest frame pacing lag (ns).
    pub max_pacing_lag_ns: u64,
}

/// Something the call's coordinator must react to, stamped when it happened.
pub(super) enum CallEvent {
    Stt(u64, Result<SttEvent, StageError>),
    SttClosed,
    VadEnd { at: u64, audio_ms: f64 },
    FeederFailed(StageError),
    AudioDone,
}

/// A turn whose transcript is final, queued for the answering side.
struct Ready {
    index: usize,
    heard: Heard,
    /// When it was handed over (`TurnTimeline::llm_queued_ns`).
    queued_ns: u64,
}

/// Runs one call from its first frame to its last turn's spans.
pub async fn run_call(
    epoch: Epoch,
    plan: CallPlan,
    backends: Backends,
    sink: Arc<dyn SpanSink>,
) -> CallReport {
    let profile = Arc::clone(&plan.profile);
    let call = Arc::clone(&plan.call);
    let schedule = plan.schedule;
    let endpoint_backend = match profile.endpointing {
        Endpointing::Vad => backends.vad.name().to_string(),
        Endpointing::Stt => backends.stt.name().to_string(),
    };
    let labels = Arc::new(CallLabels {
        run: plan.run.clone(),
        scenario: plan.scenario.clone(),
        profile: profile.name.clone(),
        call: call.id.clone(),
        iteration: plan.iteration,
        backends: [
            endpoint_backend,
            backends.stt.name().to_string(),
            backends.llm.name().to_string(),
            backends.tts.name().to_string(),
            "pipeline".to_string(),
        ],
    });
    let id_of = move |turn: usize| TurnId {
        labels: Arc::clone(&labels),
        turn: turn as u32,
    };
    let mut heard: Vec<Heard> = call
        .turns
        .iter()
        .map(|t| Heard {
            start_scheduled_ns: schedule.at_ms(t.start_ms as f64),
            end_scheduled_ns: schedule.at_ms(t.end_ms as f64),
            audio_ms: (t.end_ms - t.start_ms) as f64,
            reference: t.text.clone(),
            ..Heard::default()
        })
        .collect();
    let next_start: Vec<Option<u64>> = (0..heard.len())
        .map(|i| heard.get(i + 1).map(|h| h.start_scheduled_ns))
        .collect();
    let mut report = CallReport {
        turns: heard.len(),
        ..CallReport::default()
    };

    let session = format!("{}#{}", call.id, plan.iteration);
    // The answering side: one LLM request at a time, in the order the transcripts became
    // final (each needs the previous reply's text); a reply's speech streams on beside the
    // next turn's request, as an agent that is interrupted answers at once.
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Ready>();
    let responder = {
        let backends = backends.clone();
        let profile = Arc::clone(&profile);
        let sink = Arc::clone(&sink);
        let id_of = id_of.clone();
        let next_start = next_start.clone();
        let speed = schedule.speed;
        let session = session.clone();
        tokio::spawn(async move {
            let mut history = vec![ChatMessage {
                role: "system".into(),
                content: backends.system_prompt.clone(),
            }];
            let mut speaking = Vec::new();
            // When the previous request's reply was complete: a turn ready before then
            // waited behind it (the system's queueing, not latlab's; `llm_queue_wait_ns`).
            let mut free_ns: u64 = 0;
            while let Some(Ready {
                index,
                heard,
                queued_ns,
            }) = ready_rx.recv().await
            {
                let queued = agent::Queued {
                    at_ns: queued_ns,
                    wait_ns: free_ns.saturating_sub(queued_ns),
                };
                history.push(ChatMessage {
                    role: "user".into(),
                    content: heard.transcript(),
                });
                let reply = agent::answer(
                    epoch,
                    &profile,
                    &backends.llm,
                    &backends.tts,
                    history.clone(),
                    &session,
                    queued,
                )
                .await;
                if !reply.reply().trim().is_empty() {
                    history.push(ChatMessage {
                        role: "assistant".into(),
                        content: reply.reply().trim().to_string(),
                    });
                }
                let sink = Arc::clone(&sink);
                let id = id_of(index);
                let next = next_start[index];
                speaking.push(tokio::spawn(async move {
                    let answered = reply.finish().await;
                    let (timeline, spans) = finish(&id, &heard, &answered, next, speed);
                    let failed = timeline.outcome != Outcome::Ok;
                    sink.record_turn(timeline, spans);
                    failed
                }));
                free_ns = epoch.elapsed_ns();
            }
            let mut failed = 0;
            for task in speaking {
                // A turn whose task died recorded nothing; count it as failed.
                if task.await.unwrap_or(true) {
                    failed += 1;
                }
            }
            failed
        })
    };

    let info = CallInfo {
        call_id: call.id.clone(),
        sample_rate: call.sample_rate,
        session: session.clone(),
    };
    let options = SttOptions {
        interim_results: profile.interim_results,
        endpointing_ms: match profile.endpointing {
            Endpointing::Stt => Some(profile.endpointing_ms),
            Endpointing::Vad => None,
        },
        utterance_end_ms: match profile.endpointing {
            Endpointing::Stt => profile.utterance_end_ms,
            Endpointing::Vad => None,
        },
    };
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<CallEvent>();
    let (close_tx, close_rx) = oneshot::channel::<()>();
    let mut feeder_task = None;
    let mut listener_task = None;
    let mut stt_failed = false;
    // Connect at once: the runner leaves a lead before the first frame is due, so a normal
    // handshake does not make the first frames late.
    match backends.stt.open(&info, &options).await {
        Err(e) => {
            stt_failed = true;
            for h in heard.iter_mut() {
                h.error = Some(e.clone());
            }
        }
        Ok((sender, receiver)) => {
            feeder_task = Some(tokio::spawn(feeder::feed(
                epoch,
                plan.clone(),
                (profile.endpointing == Endpointing::Vad)
                    .then(|| backends.vad.endpointer(plan.frame_ms, &profile)),
                sender,
                events_tx.clone(),
                close_rx,
                Arc::clone(&sink),
            )));
            listener_task = Some(tokio::spawn(listen(epoch, receiver, events_tx.clone())));
        }
    }
    drop(events_tx);

    let mut dispatched = vec![false; heard.len()];
    let mut audio_done = stt_failed;
    let deadline_of = |h: &Heard| h.end_scheduled_ns + plan.transcript_timeout_ms * 1_000_000;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let turn_of = |audio_ms: f64| -> usize {
        // The last turn that had started (with a little slack for early word boundaries).
        call.turns
            .iter()
            .rposition(|t| t.start_ms as f64 - 250.0 <= audio_ms)
            .unwrap_or(0)
    };

    loop {
        let pending = dispatched.iter().filter(|d| !**d).count();
        if pending == 0 || (stt_failed && audio_done) {
            break;
        }
        let event = tokio::select! {
            e = events_rx.recv() => e,
            _ = tick.tick() => None,
        };
        let now = epoch.elapsed_ns();
        match event {
            None => {}
            Some(CallEvent::AudioDone) => audio_done = true,
            Some(CallEvent::FeederFailed(e)) | Some(CallEvent::Stt(_, Err(e))) => {
                stt_failed = true;
                audio_done = true;
                for (h, _) in heard.iter_mut().zip(&dispatched).filter(|(_, d)| !**d) {
                    h.error.get_or_insert(e.clone());
                }
            }
            Some(CallEvent::SttClosed) => {
                stt_failed = true;
                audio_done = true;
                let e = StageError::new(
                    ErrorKind::Disconnected,
                    "STT closed the stream before the turn was final",
                );
                for (h, _) in heard.iter_mut().zip(&dispatched).filter(|(_, d)| !**d) {
                    h.error.get_or_insert(e.clone());
                }
            }
            Some(CallEvent::VadEnd { at, audio_ms }) => {
                let i = turn_of(audio_ms - f64::from(profile.endpointing_ms));
                if !dispatched[i] && heard[i].eos_ns.is_none() {
                    heard[i].eos_ns = Some(at);
                    heard[i].finalize_sent = true;
                }
            }
            Some(CallEvent::Stt(at, Ok(ev))) => match ev {
                SttEvent::Transcript {
                    text,
                    is_final,
                    speech_final,
                    from_finalize,
                    audio_start_ms: _,
                    audio_end_ms,
                } => {
                    // The end of the covered audio says which turn it belongs to: results may
                    // also cover the silence before the turn.
                    let i = turn_of(audio_end_ms);
                    let h = &mut heard[i];
                    if !dispatched[i] && h.final_ns.is_none() {
                        if !text.trim().is_empty() {
                            h.first_stt_output_ns.get_or_insert(at);
                        }
                        if is_final {
                            h.segments.push(text);
                        }
                        let ends_turn = match profile.endpointing {
                            Endpointing::Stt => speech_final || from_finalize,
                            Endpointing::Vad => from_finalize && h.finalize_sent,
                        };
                        if is_final && ends_turn {
                            h.final_ns = Some(at);
                            if profile.endpointing == Endpointing::Stt {
                                h.eos_ns.get_or_insert(at);
                            }
                        }
                    }
                }
                SttEvent::UtteranceEnd { last_word_end_ms } => {
                    let i = turn_of(last_word_end_ms);
                    let h = &mut heard[i];
                    if profile.endpointing == Endpointing::Stt
                        && !dispatched[i]
                        && h.final_ns.is_none()
                    {
                        h.eos_ns.get_or_insert(at);
                        if !h.segments.is_empty() {
                            h.final_ns = Some(at);
                        }
                    }
                }
                SttEvent::SpeechStarted { .. } | SttEvent::Metadata => {}
            },
        }
        // Hand finished turns to the answering side; give up on turns past their deadline.
        for i in 0..heard.len() {
            if dispatched[i] {
                continue;
            }
            let h = &mut heard[i];
            if h.final_ns.is_some() && h.eos_ns.is_some() {
                if h.transcript().is_empty() {
                    h.final_ns = None;
                    h.error = Some(StageError::new(
                        ErrorKind::NoTranscript,
                        "the final transcript is empty",
                    ));
                } else {
                    dispatched[i] = true;
                    let _ = ready_tx.send(Ready {
                        index: i,
                        heard: h.clone(),
                        queued_ns: epoch.elapsed_ns(),
                    });
                    continue;
                }
            }
            let expired = now >= deadline_of(h);
            if expired || (stt_failed && h.error.is_some()) {
                h.error.get_or_insert_with(|| {
                    StageError::new(
                        ErrorKind::NoTranscript,
                        format!(
                            "no final transcript within {} ms of the end of speech",
                            plan.transcript_timeout_ms
                        ),
                    )
                });
                dispatched[i] = true;
                let (timeline, spans) = finish(
                    &id_of(i),
                    h,
                    &Answered::default(),
                    next_start[i],
                    schedule.speed,
                );
                sink.record_turn(timeline, spans);
                report.failed_turns += 1;
            }
        }
    }
    // After a lost stream the remaining turns fail now rather than at their deadlines.
    for i in 0..heard.len() {
        if !dispatched[i] {
            let (timeline, spans) = finish(
                &id_of(i),
                &heard[i],
                &Answered::default(),
                next_start[i],
                schedule.speed,
            );
            sink.record_turn(timeline, spans);
            report.failed_turns += 1;
        }
    }
    drop(ready_tx);
    report.failed_turns += responder.await.unwrap_or(0);
    let _ = close_tx.send(());
    if let Some(task) = feeder_task {
        report.max_pacing_lag_ns = task.await.unwrap_or(0);
    }
    if let Some(task) = listener_task {
        task.abort();
    }
    report
}

/// Forwards STT events, stamped on arrival, until the stream ends.
async fn listen(
    epoch: Epoch,
    mut receiver: Box<dyn SttReceiver>,
    events: mpsc::UnboundedSender<CallEvent>,
) {
    loop {
        let next = receiver.next_event().await;
        let at = epoch.elapsed_ns();
        let stop = match next {
            None => {
                let _ = events.send(CallEvent::SttClosed);
                true
            }
            Some(result) => {
                let failed = result.is_err();
                let _ = events.send(CallEvent::Stt(at, result));
                failed
            }
        };
        if stop {
            return;
        }
    }
}
