//! One call through latlab-core's pipeline against the emulator on loopback, in real time:
//! frames leave on schedule, every stage of every turn is timed, and the timeline adds up.

use std::path::Path;
use std::sync::{Arc, Mutex};

use latlab_core::backends::Timeouts;
use latlab_core::backends::deepgram::{DeepgramConfig, DeepgramStt};
use latlab_core::backends::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use latlab_core::backends::openai::{OpenAiConfig, OpenAiLlm};
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::dataset::Dataset;
use latlab_core::pipeline::{Backends, CallPlan, run_call};
use latlab_core::profile::Profile;
use latlab_core::schedule::CallSchedule;
use latlab_core::timing::{Outcome, Span, SpanRecord, SpanSink, Stage, TurnTimeline};
use latlab_emulator::{Emulator, EmulatorConfig, Timing};

#[derive(Default)]
struct Collect {
    turns: Mutex<Vec<(TurnTimeline, Vec<Span>)>>,
    lags: Mutex<Vec<u64>>,
}

impl SpanSink for Collect {
    fn record_turn(&self, timeline: TurnTimeline, spans: [SpanRecord; 6]) {
        let spans = spans.iter().map(SpanRecord::to_span).collect();
        self.turns.lock().unwrap().push((timeline, spans));
    }
    fn record_pacing(&self, lag_ns: u64) {
        self.lags.lock().unwrap().push(lag_ns);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_time_call_is_paced_and_fully_timed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/smoke");
    let data = Arc::new(Dataset::load(&dir).unwrap());
    let mut config = EmulatorConfig::default();
    config.stt.final_delay = Timing::Constant { ms: 40.0 };
    let emu = Emulator::start(config, Some(Arc::clone(&data)))
        .await
        .unwrap();
    let timeouts = Timeouts::default();
    let backends = Backends {
        stt: Arc::new(DeepgramStt::new(
            DeepgramConfig {
                base_url: emu.stt_url(),
                model: "nova-3".into(),
                language: None,
                api_key_env: "UNUSED".into(),
            },
            None,
            timeouts,
        )),
        llm: Arc::new(
            OpenAiLlm::new(
                OpenAiConfig {
                    base_url: emu.llm_url(),
                    model: "m".into(),
                    api_key_env: "UNUSED".into(),
                    max_tokens: 200,
                    temperature: 0.0,
                    system_prompt: "be brief".into(),
                },
                None,
                timeouts,
            )
            .unwrap(),
        ),
        tts: Arc::new(
            ElevenLabsTts::new(
                ElevenLabsConfig {
                    base_url: emu.tts_url(),
                    voice_id: "v".into(),
                    model: "m".into(),
                    output_format: "wav_16000".into(),
                    api_key_env: "UNUSED".into(),
                },
                None,
                timeouts,
            )
            .unwrap(),
        ),
        vad: Arc::new(latlab_core::backends::energy_vad::EnergyVadFactory),
        system_prompt: "be brief".into(),
        tools: None,
        tool_cache: None,
        cache_namespace: String::new(),
    };
    let call = Arc::new(data.call("call-07").unwrap().clone());
    let samples = Arc::new(call.load_samples().unwrap());
    let epoch = Epoch::now();
    let schedule = CallSchedule::new(epoch.elapsed_ns() + 20_000_000, call.sample_rate, 20, 1.0);
    let mut profile = Profile::balanced();
    profile.endpointing_ms = 300;
    let plan = CallPlan {
        run: "test".into(),
        scenario: "test".into(),
        profile: Arc::new(profile),
        call: Arc::clone(&call),
        samples: Arc::clone(&samples),
        iteration: 0,
        schedule,
        frame_ms: 20,
        transcript_timeout_ms: 5_000,
        timeouts,
        pacer: Pacer::start(),
    };
    let sink = Arc::new(Collect::default());
    let report = run_call(
        epoch,
        plan,
        backends,
        Arc::clone(&sink) as Arc<dyn SpanSink>,
    )
    .await;
    emu.shutdown().await;

    // Pacing: every frame left, and within a few ms of when the recording says it was spoken.
    let mut lags = sink.lags.lock().unwrap().clone();
    assert_eq!(lags.len(), schedule.frame_count(samples.len()));
    lags.sort_unstable();
    let p99 = lags[lags.len() * 99 / 100];
    assert!(p99 < 5_000_000, "p99 pacing lag {p99} ns");
    assert!(
        report.max_pacing_lag_ns < 25_000_000,
        "max lag {}",
        report.max_pacing_lag_ns
    );

    // Every stage of every turn, all ok, and the timeline adds up.
    let turns = sink.turns.lock().unwrap();
    assert_eq!(turns.len(), call.turns.len());
    assert_eq!(report.failed_turns, 0);
    for (timeline, spans) in turns.iter() {
        let stages: Vec<Stage> = spans.iter().map(|s| s.stage).collect();
        assert_eq!(stages, Stage::ALL);
        // No [tools]: the tool span is skipped, every other stage ran.
        assert!(
            spans.iter().all(|s| if s.stage == Stage::Tool {
                s.outcome == Outcome::Skipped && s.backend == "none"
            } else {
                s.outcome == Outcome::Ok
            }),
            "{spans:#?}"
        );
        let turn = &call.turns[timeline.turn as usize];
        assert_eq!(
            timeline.user_end_scheduled_ns,
            schedule.at_ms(turn.end_ms as f64)
        );
        let audible = timeline.tts_first_audible_ns.unwrap();
        assert_eq!(
            timeline.voice_to_voice_ns,
            Some(audible as i64 - timeline.user_end_scheduled_ns as i64)
        );
        let order = [
            timeline.user_end_scheduled_ns,
            timeline.speech_end_detected_ns.unwrap(),
            timeline.llm_request_sent_ns.unwrap(),
            timeline.llm_first_token_ns.unwrap(),
            timeline.first_sentence_ns.unwrap(),
            timeline.tts_request_sent_ns.unwrap(),
            timeline.tts_first_byte_ns.unwrap(),
            audible,
            timeline.tts_done_ns.unwrap(),
        ];
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{timeline:#?}");
        // Endpointing 300 ms of silence + 40 ms processing, give or take a frame and scheduling.
        let endpoint_ms = spans[0].latency_ns.unwrap() as f64 / 1e6;
        assert!(
            (320.0..420.0).contains(&endpoint_ms),
            "endpoint {endpoint_ms} ms"
        );
        assert_eq!(timeline.transcript.as_deref(), Some(turn.text.as_str()));
        assert_eq!(
            timeline.reply.as_deref().map(str::trim),
            turn.reply.as_deref()
        );
        // Barge-in is measured against the next recorded turn; the last turn has none.
        let last = timeline.turn as usize + 1 == call.turns.len();
        assert_eq!(timeline.barge_in_ms.is_none(), last, "{timeline:#?}");
        assert!(timeline.barge_in_ms.unwrap_or(0.0) >= 0.0);
        // The emulator's leading silence (120 ms of audio) is not audible.
        assert!(audible > timeline.tts_first_byte_ns.unwrap());
    }
}
