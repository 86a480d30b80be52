//! latlab-emulator: a loopback server that speaks the wire protocols latlab measures —
//! Deepgram live speech-to-text over WebSocket, OpenAI Chat Completions over SSE, ElevenLabs
//! streaming text-to-speech over HTTP, Cartesia text-to-speech over WebSocket, the KServe v2 /
//! Triton inference protocol of an object detector, a voice agent answering calls over Twilio
//! Media Streams or binary PCM, and a company's tool API for the LLM's function calls — with
//! seeded, configurable timing and faults.
//!
//! Tests and `latlab run` start it on ephemeral ports and point latlab's real clients at it,
//! so the whole pipeline can be measured with known service latencies. Every delay and fault
//! is drawn from an RNG derived from the seed and the request, never from arrival order.
//! This crate never contacts a real vendor.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod audio;
pub mod cartesia;
pub mod config;
pub mod detector;
pub mod error;
pub mod faults;
pub mod llm;
pub mod seed;
pub mod stats;
pub mod stream;
pub mod stt;
pub mod timing;
pub mod tools;
pub mod trace;
pub mod tts;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use latlab_core::dataset::Dataset;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Header naming the client's session (call and replay iteration), e.g. `call-01#0`. The
/// emulator folds it into every request's seed, so replays of one call draw fresh timings
/// while the same session under the same seed always draws the same ones.
pub use latlab_core::backends::SESSION_HEADER;

/// Whether `Authorization: Bearer <key>` carries `expected` (always, when no key is configured):
/// the OpenAI-style services' check (the LLM and the tool API).
pub(crate) fn bearer_authorized(expected: Option<&str>, headers: &axum::http::HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|key| key.trim() == expected)
}

/// The session a request names, or "".
pub(crate) fn session_of(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub use config::{
    AgentConfig, AgentFaults, BargeIn, DetectorConfig, EmulatorConfig, LlmConfig, SttConfig,
    ToolsConfig, TtsConfig, load_config,
};
pub use error::EmulatorError;
pub use faults::{Fault, Faults};
pub use stats::{EmulatorStats, FaultCounts, ServiceStats};
pub use timing::Timing;
pub use trace::{Mark, WireEvent, WireTrace};

use faults::RefusingListener;
use stats::ServiceCounters;

/// How long [`Emulator::shutdown`] lets in-flight responses finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Resolves once the emulator shuts down (or is dropped). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Waits for the shutdown signal.
    pub async fn wait(mut self) {
        // An error means the sender is gone, which is a shutdown too.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }
}

/// A running emulator: six listeners on 127.0.0.1. Dropping it stops the services too,
/// but only [`Emulator::shutdown`] waits for them.
#[derive(Debug)]
pub struct Emulator {
    stt_addr: SocketAddr,
    llm_addr: SocketAddr,
    tts_addr: SocketAddr,
    detector_addr: SocketAddr,
    agent_addr: SocketAddr,
    tools_addr: SocketAddr,
    counters: [Arc<ServiceCounters>; 6],
    trace: Arc<WireTrace>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Validates `config`, binds the STT, LLM, TTS, detector, agent and tool listeners on
    /// 127.0.0.1 (port 0 picks a free port) and serves until [`Emulator::shutdown`]. `dataset`
    /// gives the STT service its transcripts, the LLM its replies and tool calls, and the tool
    /// API its scripted results; without it every STT tag is unknown.
    pub async fn start(
        config: EmulatorConfig,
        dataset: Option<Arc<Dataset>>,
    ) -> Result<Emulator, EmulatorError> {
        config.validate()?;
        let (stop, stopped) = watch::channel(false);
        let shutdown = Shutdown(stopped);
        let counters: [Arc<ServiceCounters>; 6] = Default::default();
        let trace = Arc::new(WireTrace::default());
        let stt_listener = bind("stt", config.stt.port).await?;
        let llm_listener = bind("llm", config.llm.port).await?;
        let tts_listener = bind("tts", config.tts.port).await?;
        let detector_listener = bind("detector", config.detector.port).await?;
        let agent_listener = bind("agent", config.agent.port).await?;
        let tools_listener = bind("tools", config.tools.port).await?;
        let addr = |l: &TcpListener, service, port| {
            l.local_addr().map_err(|source| EmulatorError::Bind {
                service,
                addr: loopback(port),
                source,
            })
        };
        let stt_addr = addr(&stt_listener, "stt", config.stt.port)?;
        let llm_addr = addr(&llm_listener, "llm", config.llm.port)?;
        let tts_addr = addr(&tts_listener, "tts", config.tts.port)?;
        let detector_addr = addr(&detector_listener, "detector", config.detector.port)?;
        let agent_addr = addr(&agent_listener, "agent", config.agent.port)?;
        let tools_addr = addr(&tools_listener, "tools", config.tools.port)?;

        let stt_router = stt::router(Arc::new(stt::SttState {
            seed: config.seed,
            config: config.stt.clone(),
            dataset: dataset.clone(),
            counters: counters[0].clone(),
            shutdown: shutdown.clone(),
            trace: Arc::clone(&trace),
            sessions_per_tag: Mutex::default(),
        }));
        let llm_router = llm::router(Arc::new(llm::LlmState {
            seed: config.seed,
            config: config.llm.clone(),
            replies: llm::Replies::from_dataset(dataset.as_deref()),
            counters: counters[1].clone(),
            shutdown: shutdown.clone(),
            trace: Arc::clone(&trace),
        }));
        let tts_router = tts::router(Arc::new(tts::TtsState {
            seed: config.seed,
            config: config.tts.clone(),
            counters: counters[2].clone(),
            shutdown: shutdown.clone(),
            trace: Arc::clone(&trace),
        }));
        let detector_router = detector::router(Arc::new(detector::DetectorState {
            seed: config.seed,
            config: config.detector.clone(),
            counters: counters[3].clone(),
            shutdown: shutdown.clone(),
            trace: Arc::clone(&trace),
        }));
        let agent_router = agent::router(Arc::new(agent::AgentState {
            seed: config.seed,
            config: config.agent.clone(),
            counters: counters[4].clone(),
            shutdown: shutdown.clone(),
            trace: Arc::clone(&trace),
            reports: Mutex::default(),
            anonymous: Default::default(),
        }));
        let tools_router = tools::router(Arc::new(tools::ToolsState {
            seed: config.seed,
            config: config.tools.clone(),
            scripted: tools::ScriptedResults::from_dataset(dataset.as_deref()),
            counters: counters[5].clone(),
            shutdown: shutdown.clone(),
        }));
        // The agent's `refuse` answers the upgrade with 503 (per call), not at accept.
        let services = [
            (
                stt::SERVICE,
                stt_listener,
                stt_router,
                config.stt.faults.refuse,
                &counters[0],
            ),
            (
                llm::SERVICE,
                llm_listener,
                llm_router,
                config.llm.faults.refuse,
                &counters[1],
            ),
            (
                tts::SERVICE,
                tts_listener,
                tts_router,
                config.tts.faults.refuse,
                &counters[2],
            ),
            (
                detector::SERVICE,
                detector_listener,
                detector_router,
                config.detector.faults.refuse,
                &counters[3],
            ),
            (
                agent::SERVICE,
                agent_listener,
                agent_router,
                0.0,
                &counters[4],
            ),
            (
                tools::SERVICE,
                tools_listener,
                tools_router,
                config.tools.faults.refuse,
                &counters[5],
            ),
        ];
        let servers = services
            .into_iter()
            .map(|(service, listener, router, refuse, counters)| {
                let listener =
                    RefusingListener::new(listener, config.seed, service, refuse, counters.clone());
                spawn_server(service, listener, router, shutdown.clone())
            })
            .collect();
        Ok(Emulator {
            stt_addr,
            llm_addr,
            tts_addr,
            detector_addr,
            agent_addr,
            tools_addr,
            counters,
            trace,
            stop,
            servers,
        })
    }

    /// The STT base URL, `ws://127.0.0.1:PORT`; clients append `/v1/listen?...`.
    pub fn stt_url(&self) -> String {
        format!("ws://{}", self.stt_addr)
    }

    /// The LLM base URL, `http://127.0.0.1:PORT/v1`; clients append `/chat/completions`.
    pub fn llm_url(&self) -> String {
        format!("http://{}/v1", self.llm_addr)
    }

    /// The TTS base URL, `http://127.0.0.1:PORT`; clients append
    /// `/v1/text-to-speech/{voice_id}/stream`.
    pub fn tts_url(&self) -> String {
        format!("http://{}", self.tts_addr)
    }

    /// The same TTS listener as a WebSocket base URL, `ws://127.0.0.1:PORT`; Cartesia clients
    /// append `/tts/websocket`.
    pub fn tts_ws_url(&self) -> String {
        format!("ws://{}", self.tts_addr)
    }

    /// The detector's base URL, `http://127.0.0.1:PORT`; clients append `/v2/models/{model}`
    /// (KServe v2 / Triton HTTP).
    pub fn detector_url(&self) -> String {
        format!("http://{}", self.detector_addr)
    }

    /// The emulated agent's base URL, `ws://127.0.0.1:PORT`; callers append `/twilio` or
    /// `/pcm?rate=16000&call=<call id>`. `GET http://127.0.0.1:PORT/self-report` serves its
    /// own latency per answered turn.
    pub fn agent_url(&self) -> String {
        format!("ws://{}", self.agent_addr)
    }

    /// The emulated agent's address.
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    /// The tool API's base URL, `http://127.0.0.1:PORT`; clients append `/{name}` (POST, the
    /// arguments as a JSON object).
    pub fn tools_url(&self) -> String {
        format!("http://{}", self.tools_addr)
    }

    /// What each service did so far.
    pub fn stats(&self) -> EmulatorStats {
        EmulatorStats {
            stt: self.counters[0].snapshot(),
            llm: self.counters[1].snapshot(),
            tts: self.counters[2].snapshot(),
            detector: self.counters[3].snapshot(),
            agent: self.counters[4].snapshot(),
            tools: self.counters[5].snapshot(),
        }
    }

    /// Takes the wire events recorded so far (see [`trace`]), and how many found the trace
    /// full.
    pub fn take_trace(&self) -> (Vec<WireEvent>, u64) {
        self.trace.take()
    }

    /// Stops accepting, ends stalled and streaming responses, and waits (briefly) for the
    /// servers to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for server in self.servers {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

async fn bind(service: &'static str, port: u16) -> Result<TcpListener, EmulatorError> {
    let addr = loopback(port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind {
            service,
            addr,
            source,
        })
}

fn spawn_server(
    service: &'static str,
    listener: RefusingListener,
    router: Router,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.wait())
            .await;
        if let Err(e) = served {
            tracing::warn!(service, "emulated service stopped: {e}");
        }
    })
}
