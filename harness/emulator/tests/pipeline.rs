//! One call through latlab-core's pipeline against the emulator on loopback, in real time:
//! frames leave on schedule, every stage of every turn is timed, and the timeline adds up.

mod support;

use std::sync::Arc;

use latlab_core::backends::elevenlabs::{ElevenLabsConfig, ElevenLabsTts};
use latlab_core::pipeline::run_call;
use latlab_core::profile::Profile;
use latlab_core::timing::{Outcome, SpanSink, Stage};
use support::{Collect, SmokeCall};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_time_call_is_paced_and_fully_timed() {
    let smoke = SmokeCall::start().await;
    let backends = smoke.backends(Arc::new(
        ElevenLabsTts::new(
            ElevenLabsConfig {
                base_url: smoke.emu.tts_url(),
                voice_id: "v".into(),
                model: "m".into(),
                output_format: "wav_16000".into(),
                api_key_env: "UNUSED".into(),
            },
            None,
            smoke.timeouts,
        )
        .unwrap(),
    ));
    let mut profile = Profile::balanced();
    profile.endpointing_ms = 300;
    let (epoch, plan) = smoke.plan(profile);
    let (call, samples, schedule) = (
        Arc::clone(&smoke.call),
        Arc::clone(&smoke.samples),
        plan.schedule,
    );
    let sink = Arc::new(Collect::default());
    let report = run_call(
        epoch,
        plan,
        backends,
        Arc::clone(&sink) as Arc<dyn SpanSink>,
    )
    .await;
    smoke.emu.shutdown().await;

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
