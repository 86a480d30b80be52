//! The audio feeder: sends each frame when the recording says it is due, runs the local
//! endpointer on it, and keeps the STT stream open until the call is done.
//!
//! It does nothing else, so a slow turn elsewhere cannot make frames late; how late each
//! frame actually left is recorded (pacing lag).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::CallPlan;
use super::call::CallEvent;
use crate::clock::Epoch;
use crate::stage::{Endpointer, SttSender, VadEvent};
use crate::timing::SpanSink;

/// Frames whose lags are handed to the sink at once.
const PACING_BATCH: usize = 64;

/// Feeds the call's audio; returns the largest pacing lag seen (ns).
pub(super) async fn feed(
    epoch: Epoch,
    plan: CallPlan,
    mut vad: Option<Box<dyn Endpointer>>,
    mut sender: Box<dyn SttSender>,
    events: mpsc::UnboundedSender<CallEvent>,
    close: oneshot::Receiver<()>,
    sink: Arc<dyn SpanSink>,
) -> u64 {
    let samples = plan.samples.as_slice();
    let schedule = plan.schedule;
    let mut max_lag = 0;
    // Lags go to the sink in batches (at most one lock per second of audio per call), so the
    // frames of many calls do not contend for the sink's lock.
    let mut lags = Vec::with_capacity(PACING_BATCH);
    for k in 0..schedule.frame_count(samples.len()) {
        let due = schedule.frame_due_ns(k, samples.len());
        plan.pacer.sleep_until(epoch.instant_at(due)).await;
        let frame = schedule.frame(samples, k);
        let sent = epoch.elapsed_ns();
        let lag = sent.saturating_sub(due);
        max_lag = max_lag.max(lag);
        lags.push(lag);
        if lags.len() == PACING_BATCH {
            sink.record_pacing_batch(&lags);
            lags.clear();
        }
        if let Err(e) = sender.send_audio(frame).await {
            sink.record_pacing_batch(&lags);
            let _ = events.send(CallEvent::FeederFailed(e));
            return max_lag;
        }
        if let Some(vad) = vad.as_mut()
            && vad.push(frame) == Some(VadEvent::SpeechEnd)
        {
            let at = epoch.elapsed_ns();
            sink.record_endpoint_lag(at.saturating_sub(due));
            let audio_ms = (k + 1) as f64 * f64::from(plan.frame_ms);
            let _ = events.send(CallEvent::VadEnd { at, audio_ms });
            if let Err(e) = sender.finalize().await {
                sink.record_pacing_batch(&lags);
                let _ = events.send(CallEvent::FeederFailed(e));
                return max_lag;
            }
        }
    }
    sink.record_pacing_batch(&lags);
    let _ = events.send(CallEvent::AudioDone);
    // Keep the stream alive (Deepgram closes idle streams after ~10 s) until the call is done.
    let mut close = close;
    let keepalive = Duration::from_millis(plan.timeouts.stall_ms.clamp(500, 5_000));
    loop {
        tokio::select! {
            _ = &mut close => break,
            _ = tokio::time::sleep(keepalive) => {
                if sender.keep_alive().await.is_err() {
                    return max_lag;
                }
            }
        }
    }
    let _ = sender.close().await;
    max_lag
}
