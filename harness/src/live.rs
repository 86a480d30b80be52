//! Watching a run while it goes: the progress line (calls done and in flight, errors, rolling
//! p95 voice-to-voice) and, with `--metrics-addr`, a Prometheus/OpenMetrics endpoint so a long
//! soak can be watched on a dashboard.
//!
//! Both are fed as each turn completes ([`TurnObserver`]) and read the driver's counters of
//! calls started, dropped and in flight. Neither is a measurement of record: the results
//! folder is.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use latlab_core::timing::{Outcome, Span, TurnTimeline};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::sinks::TurnObserver;

/// The window of the rolling p95 on the progress line.
const ROLLING: Duration = Duration::from_secs(10);

/// Counters the load driver keeps, read by the live view and the endpoint.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls in flight now.
    pub in_flight: AtomicUsize,
    /// The most calls that were in flight at once.
    pub max_in_flight: AtomicUsize,
    /// Calls started so far.
    pub started: AtomicU64,
    /// Open-loop arrivals dropped so far.
    pub dropped: AtomicU64,
}

/// The progress line and the metrics, updated per turn.
pub struct Live {
    bar: ProgressBar,
    counters: Arc<Counters>,
    turns: AtomicU64,
    failed: AtomicU64,
    recent: Mutex<VecDeque<(Instant, f64)>>,
    metrics: Option<Arc<Metrics>>,
}

impl Live {
    /// A live view on `bar`, reading `counters`, feeding `metrics` when given.
    pub fn new(bar: ProgressBar, counters: Arc<Counters>, metrics: Option<Arc<Metrics>>) -> Live {
        Live {
            bar,
            counters,
            turns: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
            metrics,
        }
    }

    /// The p95 of voice-to-voice over the last [`ROLLING`] (ms) and how many turns it stands on.
    fn rolling_p95(&self, now: Instant, v2v_ms: Option<f64>) -> Option<(f64, usize)> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = v2v_ms {
            recent.push_back((now, v));
        }
        while recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > ROLLING)
        {
            recent.pop_front();
        }
        let mut values: Vec<f64> = recent.iter().map(|(_, v)| *v).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = ((0.95 * values.len() as f64).ceil() as usize).clamp(1, values.len());
        Some((values[rank - 1], values.len()))
    }
}

impl TurnObserver for Live {
    fn turn_done(&self, timeline: &TurnTimeline) {
        let turns = self.turns.fetch_add(1, Ordering::Relaxed) + 1;
        let ok = timeline.outcome == Outcome::Ok;
        let failed = self.failed.fetch_add(u64::from(!ok), Ordering::Relaxed) + u64::from(!ok);
        let v2v = timeline
            .voice_to_voice_ns
            .filter(|_| ok)
            .map(|ns| ns as f64 / 1e6);
        let p95 = self.rolling_p95(Instant::now(), v2v);
        let in_flight = self.counters.in_flight.load(Ordering::Relaxed);
        let mut message = format!("{in_flight} in flight · {turns} turns, {failed} failed");
        if let Some((p95, n)) = p95 {
            message.push_str(&format!(
                " · p95 voice-to-voice {p95:.0} ms (last 10 s, n={n})"
            ));
        }
        self.bar.set_message(message);
        if let Some(m) = &self.metrics {
            m.record_turn(timeline);
        }
    }

    fn span_done(&self, span: &Span) {
        if let Some(m) = &self.metrics {
            m.record_span(span);
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TurnLabels {
    profile: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    profile: String,
    stage: String,
}

fn latency_buckets() -> Histogram {
    // 1 ms … ~33 s, doubling.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The run's metrics in a Prometheus registry.
pub struct Metrics {
    registry: Registry,
    counters: Arc<Counters>,
    in_flight: Gauge,
    started: Counter,
    dropped: Counter,
    turns: Family<TurnLabels, Counter>,
    latency: Family<StageLabels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Registers latlab's metrics, reading the driver's `counters` at each scrape.
    pub fn new(counters: Arc<Counters>) -> Metrics {
        let mut registry = Registry::with_prefix("latlab");
        let in_flight = Gauge::default();
        let started = Counter::default();
        let dropped = Counter::default();
        let turns = Family::<TurnLabels, Counter>::default();
        let latency = Family::<StageLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_buckets,
        );
        registry.register("calls_in_flight", "Calls in flight now", in_flight.clone());
        registry.register("calls_started", "Calls started", started.clone());
        registry.register(
            "calls_dropped",
            "Open-loop arrivals dropped at the in-flight cap",
            dropped.clone(),
        );
        registry.register("turns", "Turns completed, by outcome", turns.clone());
        registry.register(
            "stage_latency_seconds",
            "Latency of successful spans from their scheduled time (stage `turn` is voice-to-voice)",
            latency.clone(),
        );
        Metrics {
            registry,
            counters,
            in_flight,
            started,
            dropped,
            turns,
            latency,
        }
    }

    fn record_turn(&self, timeline: &TurnTimeline) {
        self.turns
            .get_or_create(&TurnLabels {
                profile: timeline.profile.clone(),
                outcome: timeline.outcome.as_str().to_string(),
            })
            .inc();
    }

    fn record_span(&self, s: &Span) {
        if let (Outcome::Ok, Some(ns)) = (s.outcome, s.latency_ns) {
            self.latency
                .get_or_create(&StageLabels {
                    profile: s.profile.clone(),
                    stage: s.stage.to_string(),
                })
                .observe(ns.max(0) as f64 / 1e9);
        }
    }

    /// The OpenMetrics text exposition, with the driver's counters as of now.
    pub fn encode(&self) -> String {
        self.in_flight
            .set(self.counters.in_flight.load(Ordering::Relaxed) as i64);
        let catch_up = |c: &Counter, to: u64| {
            let now = c.get();
            if to > now {
                c.inc_by(to - now);
            }
        };
        catch_up(&self.started, self.counters.started.load(Ordering::Relaxed));
        catch_up(&self.dropped, self.counters.dropped.load(Ordering::Relaxed));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `metrics` at `http://ADDR/metrics` until the returned handle is aborted; returns the
/// bound address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::header::CONTENT_TYPE;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rolling_p95_forgets_old_turns() {
        let live = Live::new(ProgressBar::hidden(), Arc::default(), None);
        let t0 = Instant::now();
        for v in 1..=100 {
            live.rolling_p95(t0, Some(v as f64));
        }
        assert_eq!(live.rolling_p95(t0, None), Some((95.0, 100)));
        let later = t0 + ROLLING + Duration::from_secs(1);
        assert_eq!(live.rolling_p95(later, Some(7.0)), Some((7.0, 1)));
    }
}
