//! What the whole-pipeline tests share: a sink that keeps every turn, the smoke dataset's
//! call-07 against a fresh emulator, and the emulated STT and LLM clients around a TTS the
//! test chooses.

use std::path::Path;
use std::sync::{Arc, Mutex};

use latlab_core::backends::Timeouts;
use latlab_core::backends::deepgram::{DeepgramConfig, DeepgramStt};
use latlab_core::backends::openai::{OpenAiConfig, OpenAiLlm};
use latlab_core::clock::{Epoch, Pacer};
use latlab_core::dataset::{Call, Dataset};
use latlab_core::pipeline::{Backends, CallPlan};
use latlab_core::profile::Profile;
use latlab_core::schedule::CallSchedule;
use latlab_core::stage::TextToSpeech;
use latlab_core::timing::{Span, SpanRecord, SpanSink, TurnTimeline};
use latlab_emulator::{Emulator, EmulatorConfig, Timing};

/// Keeps every turn (its timeline and spans) and every frame's pacing lag.
#[derive(Default)]
pub struct Collect {
    pub turns: Mutex<Vec<(TurnTimeline, Vec<Span>)>>,
    pub lags: Mutex<Vec<u64>>,
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

/// The smoke dataset's call-07 and an emulator serving it (STT finals 40 ms after the audio).
pub struct SmokeCall {
    pub emu: Emulator,
    pub call: Arc<Call>,
    pub samples: Arc<Vec<i16>>,
    pub timeouts: Timeouts,
}

impl SmokeCall {
    pub async fn start() -> SmokeCall {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/smoke");
        let data = Arc::new(Dataset::load(&dir).unwrap());
        let mut config = EmulatorConfig::default();
        config.stt.final_delay = Timing::Constant { ms: 40.0 };
        let emu = Emulator::start(config, Some(Arc::clone(&data)))
            .await
            .unwrap();
        let call = Arc::new(data.call("call-07").unwrap().clone());
        let samples = Arc::new(call.load_samples().unwrap());
        SmokeCall {
            emu,
            call,
            samples,
            timeouts: Timeouts::default(),
        }
    }

    /// The emulator's Deepgram-protocol STT and OpenAI-protocol LLM, speaking through `tts`.
    pub fn backends(&self, tts: Arc<dyn TextToSpeech>) -> Backends {
        Backends {
            stt: Arc::new(DeepgramStt::new(
                DeepgramConfig {
                    base_url: self.emu.stt_url(),
                    model: "nova-3".into(),
                    language: None,
                    api_key_env: "UNUSED".into(),
                },
                None,
                self.timeouts,
            )),
            llm: Arc::new(
                OpenAiLlm::new(
                    OpenAiConfig {
                        base_url: self.emu.llm_url(),
                        model: "m".into(),
                        api_key_env: "UNUSED".into(),
                        max_tokens: 200,
                        temperature: 0.0,
                        system_prompt: "be brief".into(),
                    },
                    None,
                    self.timeouts,
                )
                .unwrap(),
            ),
            tts,
            vad: Arc::new(latlab_core::backends::energy_vad::EnergyVadFactory),
            system_prompt: "be brief".into(),
            tools: None,
            tool_cache: None,
            cache_namespace: String::new(),
        }
    }

    /// A fresh epoch and the call's plan under `profile`, its first frame due 20 ms from now.
    pub fn plan(&self, profile: Profile) -> (Epoch, CallPlan) {
        let epoch = Epoch::now();
        let schedule = CallSchedule::new(
            epoch.elapsed_ns() + 20_000_000,
            self.call.sample_rate,
            20,
            1.0,
        );
        let plan = CallPlan {
            run: "test".into(),
            scenario: "test".into(),
            profile: Arc::new(profile),
            call: Arc::clone(&self.call),
            samples: Arc::clone(&self.samples),
            iteration: 0,
            schedule,
            frame_ms: 20,
            transcript_timeout_ms: 5_000,
            timeouts: self.timeouts,
            pacer: Pacer::start(),
        };
        (epoch, plan)
    }
}
