//! The measurement of the measurer: latlab's own share of each stage's latency.
//!
//! When the emulator runs in latlab's process it records on the same monotonic clock when it
//! received each request and wrote each reply latlab stamps (`latlab_emulator::trace`). The
//! time from the emulator's write to latlab's stamp, and from latlab's stamp of a request
//! sent to the emulator holding it, is what latlab itself (its clients, tasks, channels and
//! the loopback) adds to the stage; the service's own time is not in it. With the emulator's
//! delays at zero (`scenarios/floor.toml`) that is the floor under every figure latlab
//! reports. Per stage:
//!
//! - endpoint: VAD decision − when the frame that completed it was due (VAD endpointing), or
//!   latlab's stamp of the STT's end-of-speech result − its write (STT endpointing);
//! - stt: latlab's stamp of the final transcript − the emulator's write of the message that
//!   ended the turn (a final result, or an `UtteranceEnd`);
//! - llm: (request received by the emulator − final transcript − the request's queue wait) +
//!   (first token stamped − its event written). The queue wait — the time a ready request
//!   spent behind the same call's previous LLM request, since the agent answers one turn at
//!   a time — is the system's time, not latlab's: [`llm_queue_wait`] reports it on its own;
//! - tts: (request received by the emulator − first sentence ready) + (first audible sample
//!   stamped − the chunk holding it written; the emulator finds that chunk with latlab's own
//!   audibility probe, so its leading silence and chunk gaps are not counted).
//!
//! Request-side shares include the emulator's HTTP parsing, so they are upper bounds.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use latlab_core::clock::Epoch;
use latlab_core::timing::{Stage, TurnTimeline};
use latlab_emulator::{Mark, WireEvent};

use crate::sinks::hdr;

pub use latlab_results::manifest::{QueueWait, StageShare};

/// The emulator's wire events, as ns since the run's epoch, by session and mark, sorted.
struct Wire(HashMap<(String, Mark), Vec<u64>>);

impl Wire {
    fn new(epoch: &Epoch, events: &[WireEvent]) -> Wire {
        let mut by: HashMap<(String, Mark), Vec<u64>> = HashMap::new();
        for e in events {
            by.entry((e.session.clone(), e.mark))
                .or_default()
                .push(epoch.ns_of(e.at));
        }
        for v in by.values_mut() {
            v.sort_unstable();
        }
        Wire(by)
    }

    fn times(&self, session: &str, mark: Mark) -> &[u64] {
        self.0
            .get(&(session.to_string(), mark))
            .map_or(&[], Vec::as_slice)
    }

    /// The last `mark` of `session` in `[from, to]`.
    fn last_within(&self, session: &str, mark: Mark, from: u64, to: u64) -> Option<u64> {
        let t = self.times(session, mark);
        let i = t.partition_point(|&x| x <= to);
        i.checked_sub(1).map(|i| t[i]).filter(|&x| x >= from)
    }

    /// The first `mark` of `session` in `[from, to]`.
    fn first_within(&self, session: &str, mark: Mark, from: u64, to: u64) -> Option<u64> {
        let t = self.times(session, mark);
        t.get(t.partition_point(|&x| x < from))
            .copied()
            .filter(|&x| x <= to)
    }
}

/// latlab's share of each stage, from the turns, the profiles whose end of speech the STT
/// declares (its endpointing, not a local VAD), the emulator's wire events and the VAD
/// decision lags; stages without samples are left out.
pub fn measure(
    epoch: &Epoch,
    turns: &[TurnTimeline],
    stt_endpointed: &[&str],
    events: &[WireEvent],
    vad_lags: &Histogram<u64>,
) -> Vec<StageShare> {
    let wire = Wire::new(epoch, events);
    let mut endpoint = vad_lags.clone();
    let [mut stt, mut llm, mut tts] = [(); 3].map(|_| hdr::new_histogram());
    for t in turns {
        let session = format!("{}#{}", t.call, t.iteration);
        let s = session.as_str();
        let since = t.user_start_scheduled_ns;
        if stt_endpointed.contains(&t.profile.as_str())
            && let Some(eos) = t.speech_end_detected_ns
            && let Some(w) = wire.last_within(s, Mark::SttFinal, since, eos)
        {
            endpoint.saturating_record((eos - w).max(1));
        }
        let Some(fin) = t.final_transcript_ns else {
            continue;
        };
        if let Some(w) = wire.last_within(s, Mark::SttFinal, since, fin) {
            stt.saturating_record((fin - w).max(1));
        }
        if let (Some(token), Some(sent)) = (t.llm_first_token_ns, t.llm_request_sent_ns)
            && let Some(r) = wire.first_within(s, Mark::LlmRequest, sent, token)
            && let Some(w) = wire.last_within(s, Mark::LlmFirstToken, r, token)
        {
            // Waiting behind the call's previous request is the agent's time, not latlab's.
            let queued = t.llm_queue_wait_ns.unwrap_or(0);
            let request = r.saturating_sub(fin).saturating_sub(queued);
            llm.saturating_record((request + (token - w)).max(1));
        }
        if let (Some(ready), Some(sent), Some(audible)) = (
            t.first_sentence_ns,
            t.tts_request_sent_ns,
            t.tts_first_audible_ns,
        ) && let Some(r) = wire.first_within(s, Mark::TtsRequest, sent, audible)
            && let Some(w) = wire.last_within(s, Mark::TtsFirstAudio, r, audible)
        {
            tts.saturating_record((r.saturating_sub(ready) + (audible - w)).max(1));
        }
    }
    [
        (
            Stage::Endpoint,
            "VAD decision - due time of the frame that completed it; or STT end-of-speech result stamped - written",
            endpoint,
        ),
        (
            Stage::Stt,
            "final transcript stamped - the message that ended the turn written",
            stt,
        ),
        (
            Stage::Llm,
            "(request received - final transcript - queue wait) + (first token stamped - written)",
            llm,
        ),
        (
            Stage::Tts,
            "(request received - first sentence ready) + (first audible sample stamped - the chunk holding it written)",
            tts,
        ),
    ]
    .into_iter()
    .filter(|(_, _, h)| !h.is_empty())
    .map(|(stage, measured, h)| StageShare {
        stage,
        measured: measured.to_string(),
        share: crate::manifest::lag_of(&h),
    })
    .collect()
}

/// The LLM queue wait of `turns`; `None` when no turn says (no request sent, or results
/// from before the field existed).
pub fn llm_queue_wait(turns: &[TurnTimeline]) -> Option<QueueWait> {
    let mut h = hdr::new_histogram();
    let mut requests = 0;
    for wait in turns.iter().filter_map(|t| t.llm_queue_wait_ns) {
        requests += 1;
        if wait > 0 {
            h.saturating_record(wait);
        }
    }
    (requests > 0).then(|| QueueWait {
        requests,
        waited: crate::manifest::lag_of(&h),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use latlab_core::timing::Outcome;

    use super::*;

    #[test]
    fn the_nearest_events_of_the_session_are_matched() {
        let epoch = Epoch::now();
        let at = |us: u64| epoch.instant_at(us * 1_000);
        let ev = |session: &str, mark, us| WireEvent {
            session: session.into(),
            mark,
            at: at(us),
        };
        let events = [
            ev("c#0", Mark::SttFinal, 900),
            ev("c#0", Mark::SttFinal, 1_000),
            ev("c#1", Mark::SttFinal, 1_010),
            ev("c#0", Mark::SttFinal, 5_000),
        ];
        let wire = Wire::new(&epoch, &events);
        assert_eq!(
            wire.last_within("c#0", Mark::SttFinal, 0, 1_020_000),
            Some(1_000_000)
        );
        assert_eq!(
            wire.last_within("c#0", Mark::SttFinal, 950_000, 990_000),
            None
        );
        assert_eq!(
            wire.first_within("c#0", Mark::SttFinal, 1_001_000, 9_000_000),
            Some(5_000_000)
        );
        assert_eq!(wire.first_within("c#2", Mark::SttFinal, 0, u64::MAX), None);
        // Instants before the epoch clamp to 0 rather than wrap.
        let early = Instant::now().checked_sub(Duration::from_secs(1));
        if let Some(early) = early {
            assert_eq!(epoch.ns_of(early), 0);
        }
    }

    /// A turn of call `c`, iteration 0, whose LLM request was ready at `fin_ms`, waited
    /// `wait_ms` behind the previous one, was then sent, and had its first token stamped at
    /// `token_ms`.
    fn llm_turn(turn: u32, fin_ms: u64, wait_ms: u64, token_ms: u64) -> TurnTimeline {
        let ms = |v: u64| Some(v * 1_000_000);
        TurnTimeline {
            run: "r".into(),
            scenario: "s".into(),
            profile: "p".into(),
            call: "c".into(),
            iteration: 0,
            turn,
            user_start_scheduled_ns: 0,
            user_end_scheduled_ns: 0,
            speech_end_detected_ns: ms(fin_ms),
            final_transcript_ns: ms(fin_ms),
            llm_queued_ns: ms(fin_ms),
            llm_queue_wait_ns: Some(wait_ms * 1_000_000),
            llm_request_sent_ns: ms(fin_ms + wait_ms),
            llm_first_token_ns: ms(token_ms),
            outcome: Outcome::Ok,
            ..TurnTimeline::default()
        }
    }

    #[test]
    fn a_request_queued_behind_the_calls_previous_one_is_not_latlabs_share() {
        let epoch = Epoch::now();
        let ev = |mark, ms: u64| WireEvent {
            session: "c#0".into(),
            mark,
            at: epoch.instant_at(ms * 1_000_000),
        };
        // Turn 0: ready at 1000 ms, received 1 ms later. Turn 1: ready at 1500 ms while turn
        // 0's reply still streamed; sent at 1900 ms (400 ms queued), received 1 ms later.
        let turns = [llm_turn(0, 1_000, 0, 1_302), llm_turn(1, 1_500, 400, 2_203)];
        let events = [
            ev(Mark::LlmRequest, 1_001),
            ev(Mark::LlmFirstToken, 1_300),
            ev(Mark::LlmRequest, 1_901),
            ev(Mark::LlmFirstToken, 2_200),
        ];
        let shares = measure(&epoch, &turns, &[], &events, &hdr::new_histogram());
        let llm = shares.iter().find(|s| s.stage == Stage::Llm).unwrap();
        assert_eq!(llm.share.count, 2);
        // 1 ms to the emulator + 2 or 3 ms from its write to latlab's stamp.
        assert!(llm.share.max_ns < 5_000_000, "{llm:?}");

        let q = llm_queue_wait(&turns).unwrap();
        assert_eq!(q.requests, 2);
        assert_eq!(q.waited.count, 1);
        assert_eq!(q.waited.max_ns / 1_000_000, 400);
        assert_eq!(llm_queue_wait(&[]), None);
    }
}
