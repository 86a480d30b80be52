//! One call session: open the STT stream, start the feeder, follow what the STT and the
//! endpointer report, and hand each finished user turn to the answering side in order.
//!
//! [`run_call`] reads as its phases: label the call's turns, start the answering side, open
//! the listening side, follow the turns until each is handed on or has failed, then close.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::turn::{Answered, Heard, TurnId, finish};
use super::{Backends, CallPlan, agent, feeder};
use crate::clock::Epoch;
use crate::dataset::Call;
use crate::profile::{Endpointing, Profile};
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
    let ids = TurnIds(call_labels(&plan, &backends));
    let mut turns = Turns::new(&plan, ids.clone());
    let session = format!("{}#{}", plan.call.id, plan.iteration);
    let (ready, answering) = start_answering(epoch, &plan, &backends, &sink, &turns, &session);
    let (mut listening, opened) = Listening::open(epoch, &plan, &backends, &sink, session).await;
    if let Err(e) = opened {
        turns.lose_stream(&e);
    }
    turns.follow(epoch, &mut listening, &ready, &*sink).await;
    turns.fail_undispatched(&*sink);
    drop(ready);
    let mut report = CallReport {
        turns: turns.heard.len(),
        failed_turns: turns.failed,
        ..CallReport::default()
    };
    report.failed_turns += answering.await.unwrap_or(0);
    report.max_pacing_lag_ns = listening.close().await;
    report
}

/// The labels every span of the call carries.
fn call_labels(plan: &CallPlan, backends: &Backends) -> Arc<CallLabels> {
    let endpoint_backend = match plan.profile.endpointing {
        Endpointing::Vad => backends.vad.name().to_string(),
        Endpointing::Stt => backends.stt.name().to_string(),
    };
    Arc::new(CallLabels {
        run: plan.run.clone(),
        scenario: plan.scenario.clone(),
        profile: plan.profile.name.clone(),
        call: plan.call.id.clone(),
        iteration: plan.iteration,
        backends: [
            endpoint_backend,
            backends.stt.name().to_string(),
            backends.llm.name().to_string(),
            backends
                .tools
                .as_ref()
                .map_or_else(|| "none".to_string(), |t| t.name().to_string()),
            backends.tts.name().to_string(),
            "pipeline".to_string(),
        ],
    })
}

/// Names each of a call's turns in results.
#[derive(Clone)]
struct TurnIds(Arc<CallLabels>);

impl TurnIds {
    fn of(&self, turn: usize) -> TurnId {
        TurnId {
            labels: Arc::clone(&self.0),
            turn: turn as u32,
        }
    }
}

/// The answering side: one LLM request at a time, in the order the transcripts became
/// final (each needs the previous reply's text); a reply's speech streams on beside the
/// next turn's request, as an agent that is interrupted answers at once. Returns where to
/// send finished turns and the task, which counts the turns that failed on its side.
fn start_answering(
    epoch: Epoch,
    plan: &CallPlan,
    backends: &Backends,
    sink: &Arc<dyn SpanSink>,
    turns: &Turns<'_>,
    session: &str,
) -> (mpsc::UnboundedSender<Ready>, JoinHandle<usize>) {
    let (ready_tx, ready_rx) = mpsc::unbounded_channel::<Ready>();
    let answering = Answering {
        epoch,
        profile: Arc::clone(&plan.profile),
        backends: backends.clone(),
        sink: Arc::clone(sink),
        ids: turns.ids.clone(),
        next_start: turns.next_start.clone(),
        speed: plan.schedule.speed,
        session: session.to_string(),
        expected: plan.call.turns.iter().map(|t| t.tool.clone()).collect(),
    };
    (ready_tx, tokio::spawn(answering.answer_all(ready_rx)))
}

/// What the answering side's task owns.
struct Answering {
    epoch: Epoch,
    profile: Arc<Profile>,
    backends: Backends,
    sink: Arc<dyn SpanSink>,
    ids: TurnIds,
    next_start: Vec<Option<u64>>,
    speed: f64,
    session: String,
    /// Each turn's expected tool call, from the dataset.
    expected: Vec<Option<crate::dataset::ExpectedTool>>,
}

impl Answering {
    /// Answers each turn handed over, in order, and records it when its speech has ended;
    /// returns how many of those turns failed.
    async fn answer_all(self, mut ready_rx: mpsc::UnboundedReceiver<Ready>) -> usize {
        let mut history = vec![ChatMessage {
            role: "system".into(),
            content: self.backends.system_prompt.clone(),
        }];
        let mut speaking = Vec::new();
        // When the previous request's reply was complete: a turn ready before then waited
        // behind it (the system's queueing, not latlab's; `llm_queue_wait_ns`).
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
                self.epoch,
                &self.profile,
                &self.backends,
                history.clone(),
                &self.session,
                queued,
                self.expected.get(index).and_then(Option::as_ref),
            )
            .await;
            if !reply.reply().trim().is_empty() {
                history.push(ChatMessage {
                    role: "assistant".into(),
                    content: reply.reply().trim().to_string(),
                });
            }
            let sink = Arc::clone(&self.sink);
            let id = self.ids.of(index);
            let next = self.next_start[index];
            let speed = self.speed;
            speaking.push(tokio::spawn(async move {
                let answered = reply.finish().await;
                let (timeline, spans) = finish(&id, &heard, &answered, next, speed);
                let failed = timeline.outcome != Outcome::Ok;
                sink.record_turn(timeline, spans);
                failed
            }));
            free_ns = self.epoch.elapsed_ns();
        }
        let mut failed = 0;
        for task in speaking {
            // A turn whose task died recorded nothing; count it as failed.
            if task.await.unwrap_or(true) {
                failed += 1;
            }
        }
        failed
    }
}

/// The listening side's tasks: the feeder (paced audio into the STT and the endpointer) and
/// the listener (STT events, stamped on arrival), both reporting on `events`.
struct Listening {
    events: mpsc::UnboundedReceiver<CallEvent>,
    close: oneshot::Sender<()>,
    feeder: Option<JoinHandle<u64>>,
    listener: Option<JoinHandle<()>>,
}

impl Listening {
    /// Opens the STT stream and starts the feeder and listener on it. Connects at once: the
    /// runner leaves a lead before the first frame is due, so a normal handshake does not
    /// make the first frames late. On a failed open no task starts and the error comes back.
    async fn open(
        epoch: Epoch,
        plan: &CallPlan,
        backends: &Backends,
        sink: &Arc<dyn SpanSink>,
        session: String,
    ) -> (Listening, Result<(), StageError>) {
        let profile = &plan.profile;
        let info = CallInfo {
            call_id: plan.call.id.clone(),
            sample_rate: plan.call.sample_rate,
            session,
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
        let (events_tx, events) = mpsc::unbounded_channel::<CallEvent>();
        let (close, close_rx) = oneshot::channel::<()>();
        let mut listening = Listening {
            events,
            close,
            feeder: None,
            listener: None,
        };
        let opened = match backends.stt.open(&info, &options).await {
            Err(e) => Err(e),
            Ok((sender, receiver)) => {
                listening.feeder = Some(tokio::spawn(feeder::feed(
                    epoch,
                    plan.clone(),
                    (profile.endpointing == Endpointing::Vad)
                        .then(|| backends.vad.endpointer(plan.frame_ms, profile)),
                    sender,
                    events_tx.clone(),
                    close_rx,
                    Arc::clone(sink),
                )));
                listening.listener = Some(tokio::spawn(listen(epoch, receiver, events_tx)));
                Ok(())
            }
        };
        (listening, opened)
    }

    /// Tells the feeder the call is done and waits for it; returns its largest pacing lag.
    async fn close(self) -> u64 {
        let _ = self.close.send(());
        let lag = match self.feeder {
            Some(task) => task.await.unwrap_or(0),
            None => 0,
        };
        if let Some(task) = self.listener {
            task.abort();
        }
        lag
    }
}

/// The call's user turns as the listening side learns about them.
struct Turns<'a> {
    call: &'a Call,
    profile: &'a Profile,
    transcript_timeout_ms: u64,
    speed: f64,
    ids: TurnIds,
    heard: Vec<Heard>,
    /// Scheduled start of each turn's next turn (for barge-in).
    next_start: Vec<Option<u64>>,
    /// Whether each turn has been handed on (answered or recorded as failed).
    dispatched: Vec<bool>,
    /// The STT stream is lost: no turn still open can become final.
    stt_failed: bool,
    /// The feeder sent the last frame (or never will).
    audio_done: bool,
    /// Turns recorded as failed on the listening side.
    failed: usize,
}

impl<'a> Turns<'a> {
    fn new(plan: &'a CallPlan, ids: TurnIds) -> Turns<'a> {
        let schedule = plan.schedule;
        let heard: Vec<Heard> = plan
            .call
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
        let next_start = (0..heard.len())
            .map(|i| heard.get(i + 1).map(|h| h.start_scheduled_ns))
            .collect();
        Turns {
            call: &plan.call,
            profile: &plan.profile,
            transcript_timeout_ms: plan.transcript_timeout_ms,
            speed: schedule.speed,
            ids,
            dispatched: vec![false; heard.len()],
            next_start,
            heard,
            stt_failed: false,
            audio_done: false,
            failed: 0,
        }
    }

    /// The STT stream could not be opened: every turn carries its error.
    fn lose_stream(&mut self, e: &StageError) {
        self.stt_failed = true;
        self.audio_done = true;
        for h in self.heard.iter_mut() {
            h.error = Some(e.clone());
        }
    }

    /// Follows the STT's and the endpointer's events (and a 20 ms tick, for deadlines) until
    /// every turn is handed on, or the stream is lost and the audio is done.
    async fn follow(
        &mut self,
        epoch: Epoch,
        listening: &mut Listening,
        ready: &mpsc::UnboundedSender<Ready>,
        sink: &dyn SpanSink,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let pending = self.dispatched.iter().filter(|d| !**d).count();
            if pending == 0 || (self.stt_failed && self.audio_done) {
                break;
            }
            let event = tokio::select! {
                e = listening.events.recv() => e,
                _ = tick.tick() => None,
            };
            let now = epoch.elapsed_ns();
            if let Some(event) = event {
                self.apply(event);
            }
            self.hand_over(now, ready, sink);
        }
    }

    /// The last turn that had started at `audio_ms` into the call (with a little slack for
    /// early word boundaries).
    fn turn_at(&self, audio_ms: f64) -> usize {
        self.call
            .turns
            .iter()
            .rposition(|t| t.start_ms as f64 - 250.0 <= audio_ms)
            .unwrap_or(0)
    }

    /// What one event says about the turns.
    fn apply(&mut self, event: CallEvent) {
        match event {
            CallEvent::AudioDone => self.audio_done = true,
            CallEvent::FeederFailed(e) | CallEvent::Stt(_, Err(e)) => self.fail_open_turns(e),
            CallEvent::SttClosed => self.fail_open_turns(StageError::new(
                ErrorKind::Disconnected,
                "STT closed the stream before the turn was final",
            )),
            CallEvent::VadEnd { at, audio_ms } => {
                let i = self.turn_at(audio_ms - f64::from(self.profile.endpointing_ms));
                if !self.dispatched[i] && self.heard[i].eos_ns.is_none() {
                    self.heard[i].eos_ns = Some(at);
                    self.heard[i].finalize_sent = true;
                }
            }
            CallEvent::Stt(at, Ok(ev)) => self.on_stt(at, ev),
        }
    }

    /// The stream is lost: turns not yet handed on keep their first error.
    fn fail_open_turns(&mut self, e: StageError) {
        self.stt_failed = true;
        self.audio_done = true;
        for (h, _) in self
            .heard
            .iter_mut()
            .zip(&self.dispatched)
            .filter(|(_, d)| !**d)
        {
            h.error.get_or_insert(e.clone());
        }
    }

    /// A transcript or utterance end from the STT, received at `at`.
    fn on_stt(&mut self, at: u64, event: SttEvent) {
        let endpointing = self.profile.endpointing;
        match event {
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
                let i = self.turn_at(audio_end_ms);
                let h = &mut self.heard[i];
                if !self.dispatched[i] && h.final_ns.is_none() {
                    if !text.trim().is_empty() {
                        h.first_stt_output_ns.get_or_insert(at);
                    }
                    if is_final {
                        h.segments.push(text);
                    }
                    let ends_turn = match endpointing {
                        Endpointing::Stt => speech_final || from_finalize,
                        Endpointing::Vad => from_finalize && h.finalize_sent,
                    };
                    if is_final && ends_turn {
                        h.final_ns = Some(at);
                        if endpointing == Endpointing::Stt {
                            h.eos_ns.get_or_insert(at);
                        }
                    }
                }
            }
            SttEvent::UtteranceEnd { last_word_end_ms } => {
                let i = self.turn_at(last_word_end_ms);
                let h = &mut self.heard[i];
                if endpointing == Endpointing::Stt && !self.dispatched[i] && h.final_ns.is_none() {
                    h.eos_ns.get_or_insert(at);
                    if !h.segments.is_empty() {
                        h.final_ns = Some(at);
                    }
                }
            }
            SttEvent::SpeechStarted { .. } | SttEvent::Metadata => {}
        }
    }

    /// Hands finished turns to the answering side; gives up on turns past their deadline
    /// (or, once the stream is lost, on those that carry its error) and records them.
    fn hand_over(&mut self, now: u64, ready: &mpsc::UnboundedSender<Ready>, sink: &dyn SpanSink) {
        for i in 0..self.heard.len() {
            if self.dispatched[i] {
                continue;
            }
            let h = &mut self.heard[i];
            if h.final_ns.is_some() && h.eos_ns.is_some() {
                if h.transcript().is_empty() {
                    h.final_ns = None;
                    h.error = Some(StageError::new(
                        ErrorKind::NoTranscript,
                        "the final transcript is empty",
                    ));
                } else {
                    self.dispatched[i] = true;
                    let _ = ready.send(Ready {
                        index: i,
                        heard: h.clone(),
                        queued_ns: now,
                    });
                    continue;
                }
            }
            let deadline = h.end_scheduled_ns + self.transcript_timeout_ms * 1_000_000;
            if now >= deadline || (self.stt_failed && h.error.is_some()) {
                h.error.get_or_insert_with(|| {
                    StageError::new(
                        ErrorKind::NoTranscript,
                        format!(
                            "no final transcript within {} ms of the end of speech",
                            self.transcript_timeout_ms
                        ),
                    )
                });
                self.dispatched[i] = true;
                self.record_failed(i, sink);
            }
        }
    }

    /// After a lost stream the remaining turns fail now rather than at their deadlines.
    fn fail_undispatched(&mut self, sink: &dyn SpanSink) {
        for i in 0..self.heard.len() {
            if !self.dispatched[i] {
                self.record_failed(i, sink);
            }
        }
    }

    /// Records turn `i` with no answer: its listening side's error is the turn's.
    fn record_failed(&mut self, i: usize, sink: &dyn SpanSink) {
        let (timeline, spans) = finish(
            &self.ids.of(i),
            &self.heard[i],
            &Answered::default(),
            self.next_start[i],
            self.speed,
        );
        sink.record_turn(timeline, spans);
        self.failed += 1;
    }
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
