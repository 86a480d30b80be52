//! Counters of what the emulator did, per service: connections accepted and refused, requests
//! served, faults injected. Handlers bump atomics; [`crate::Emulator::stats`] takes a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::faults::Fault;

/// Live counters of one service.
#[derive(Debug, Default)]
pub struct ServiceCounters {
    accepted: AtomicU64,
    refused: AtomicU64,
    requests: AtomicU64,
    http_5xx: AtomicU64,
    stall: AtomicU64,
    disconnect: AtomicU64,
    malformed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl ServiceCounters {
    /// A TCP connection was accepted and handed to the HTTP server.
    pub fn accepted(&self) {
        bump(&self.accepted);
    }

    /// A TCP connection was accepted and dropped (the `refuse` fault).
    pub fn refused(&self) {
        bump(&self.refused);
    }

    /// A request reached a handler.
    pub fn request(&self) {
        bump(&self.requests);
    }

    /// A fault was injected into a response.
    pub fn fault(&self, fault: Fault) {
        match fault {
            Fault::None => {}
            Fault::Http5xx => bump(&self.http_5xx),
            Fault::Stall => bump(&self.stall),
            Fault::Disconnect => bump(&self.disconnect),
            Fault::Malformed => bump(&self.malformed),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> ServiceStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServiceStats {
            connections_accepted: get(&self.accepted),
            connections_refused: get(&self.refused),
            requests: get(&self.requests),
            faults: FaultCounts {
                refuse: get(&self.refused),
                http_5xx: get(&self.http_5xx),
                stall: get(&self.stall),
                disconnect: get(&self.disconnect),
                malformed: get(&self.malformed),
            },
        }
    }
}

/// What one service did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    /// TCP connections handed to the HTTP server (refused ones not included).
    pub connections_accepted: u64,
    /// TCP connections accepted and dropped at once (the `refuse` fault).
    pub connections_refused: u64,
    /// Requests that reached a handler (a WebSocket session counts once).
    pub requests: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
}

/// Faults injected, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    /// Connections refused.
    pub refuse: u64,
    /// 503 replies.
    pub http_5xx: u64,
    /// Replies that went silent.
    pub stall: u64,
    /// Replies aborted mid-stream.
    pub disconnect: u64,
    /// Invalid frames or bodies sent.
    pub malformed: u64,
}

/// What the whole emulator did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EmulatorStats {
    /// Speech-to-text.
    pub stt: ServiceStats,
    /// Chat completions.
    pub llm: ServiceStats,
    /// Text-to-speech.
    pub tts: ServiceStats,
    /// Object detection (KServe v2 / Triton).
    pub detector: ServiceStats,
    /// The voice agent (Twilio Media Streams / binary PCM). Its faults are counted as
    /// `http_5xx` (`refuse`: the upgrade answered 503), `disconnect` (`close`), `malformed`
    /// and `stall` (`never_answer`: a turn that got no reply).
    pub agent: ServiceStats,
    /// The tool API (`POST /{name}`).
    pub tools: ServiceStats,
}
