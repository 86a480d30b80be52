//! The wire trace: when the emulator received each request and wrote the replies latlab
//! stamps, on the monotonic clock an in-process latlab run also reads.
//!
//! With the emulator's delays at zero, the time between the emulator writing a reply and
//! latlab stamping it (and between latlab stamping a request sent and the emulator receiving
//! it) is latlab's own share of the stage's latency: the measurement of the measurer
//! (`latlab_harness::measurer`, `scenarios/floor.toml`). Recording is a push under a lock a
//! few times per turn, bounded to [`TRACE_CAPACITY`] events.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Events the trace keeps (about 40,000 turns); later ones are counted, not kept.
pub const TRACE_CAPACITY: usize = 200_000;

/// What happened on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mark {
    /// An STT message that can end a turn — a final result (`is_final`) or an
    /// `UtteranceEnd` — was handed to the WebSocket.
    SttFinal,
    /// A chat completion request had arrived whole and reached its handler.
    LlmRequest,
    /// The SSE event with the first content token was handed to the HTTP connection.
    LlmFirstToken,
    /// A text-to-speech request had arrived whole and reached its handler.
    TtsRequest,
    /// The chunk of a streamed speech response that holds its first audible sample (by
    /// latlab's measure, `latlab_core::audio`: after the header and the leading silence) was
    /// handed to the connection.
    TtsFirstAudio,
    /// A detector inference request had arrived whole and reached its handler.
    DetectorRequest,
    /// A whole detector inference response was handed to the connection.
    DetectorResponse,
    /// The emulated agent decided that the caller's turn had ended (its endpoint).
    AgentEndpoint,
    /// The emulated agent handed the chunk of a reply that holds its first audible sample
    /// (after the leading silence) to the socket.
    AgentFirstAudio,
}

/// One event: which client session, what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireEvent {
    /// The session header of the request (`call#iteration`), "" when absent.
    pub session: String,
    /// What happened.
    pub mark: Mark,
    /// When.
    pub at: Instant,
}

/// The emulator's wire events, shared by its services.
#[derive(Debug, Default)]
pub struct WireTrace {
    events: Mutex<Vec<WireEvent>>,
    dropped: AtomicU64,
}

impl WireTrace {
    /// Records `mark` for `session`, now.
    pub fn mark(&self, session: &str, mark: Mark) {
        let at = Instant::now();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() < TRACE_CAPACITY {
            events.push(WireEvent {
                session: session.to_string(),
                mark,
                at,
            });
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes the events recorded so far, and how many found the trace full.
    pub fn take(&self) -> (Vec<WireEvent>, u64) {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        (events, self.dropped.swap(0, Ordering::Relaxed))
    }
}

/// A mark to record when chunk `chunk` of a timed body is handed to the connection.
#[derive(Debug, Clone)]
pub struct ChunkMark {
    /// Where to record it.
    pub trace: std::sync::Arc<WireTrace>,
    /// The request's session.
    pub session: String,
    /// What to record.
    pub mark: Mark,
    /// Which chunk (0-based).
    pub chunk: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_keeps_events_in_order_up_to_its_capacity() {
        let trace = WireTrace::default();
        trace.mark("call-01#0", Mark::LlmRequest);
        trace.mark("call-01#0", Mark::LlmFirstToken);
        let (events, dropped) = trace.take();
        assert_eq!(dropped, 0);
        assert_eq!(
            events.iter().map(|e| e.mark).collect::<Vec<_>>(),
            [Mark::LlmRequest, Mark::LlmFirstToken]
        );
        assert!(events[0].at <= events[1].at);
        assert!(trace.take().0.is_empty());
    }
}
