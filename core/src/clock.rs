//! One monotonic epoch per run: every timestamp in latlab is nanoseconds since it.
//!
//! Wall-clock time never enters a measurement; it only labels a run for humans.

use std::time::{Duration, Instant};

/// The run's time origin on the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    origin: Instant,
}

impl Epoch {
    /// Starts a new epoch now.
    pub fn now() -> Epoch {
        Epoch {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds elapsed since the epoch.
    pub fn elapsed_ns(&self) -> u64 {
        self.ns_of(Instant::now())
    }

    /// Nanoseconds since the epoch of a given instant (0 if before it).
    pub fn ns_of(&self, instant: Instant) -> u64 {
        instant
            .saturating_duration_since(self.origin)
            .as_nanos()
            .try_into()
            .unwrap_or(u64::MAX)
    }

    /// The instant `ns` nanoseconds after the epoch.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }

    /// Sleeps until `ns` after the epoch (returns at once if that is past).
    pub async fn sleep_until(&self, ns: u64) {
        tokio::time::sleep_until(self.instant_at(ns).into()).await;
    }
}
