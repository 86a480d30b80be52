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

/// A precise timer for audio frames, shared by every call of a run.
///
/// tokio's timer wheel has millisecond granularity, so a frame woken by it leaves up to a
/// millisecond late. The pacer keeps the due times in one OS thread that sleeps on a futex
/// with a timeout (tens of microseconds of slack on Linux) and wakes each waiting task
/// exactly once; one thread serves thousands of calls.
#[derive(Debug, Clone)]
pub struct Pacer {
    requests: std::sync::mpsc::Sender<(Instant, Wake)>,
}

impl Pacer {
    /// Starts the pacer thread; it ends when the last clone of the pacer is dropped.
    pub fn start() -> Pacer {
        let (requests, incoming) = std::sync::mpsc::channel::<(Instant, Wake)>();
        std::thread::Builder::new()
            .name("latlab-pacer".into())
            .spawn(move || pace(incoming))
            .expect("spawning the pacer thread");
        Pacer { requests }
    }

    /// Sleeps until `at` (returns at once if that is past).
    pub async fn sleep_until(&self, at: Instant) {
        if at <= Instant::now() {
            return;
        }
        let (wake, woken) = tokio::sync::oneshot::channel();
        if self.requests.send((at, wake)).is_err() {
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        let _ = woken.await;
    }
}

type Wake = tokio::sync::oneshot::Sender<()>;

/// A waiting task, ordered so that the earliest due time is the heap's greatest.
struct Waiting {
    at: Instant,
    seq: u64,
    wake: Wake,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

fn pace(incoming: std::sync::mpsc::Receiver<(Instant, Wake)>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut heap = std::collections::BinaryHeap::<Waiting>::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|w| w.at <= now) {
            if let Some(w) = heap.pop() {
                let _ = w.wake.send(());
            }
        }
        let next = match heap.peek() {
            Some(w) => incoming.recv_timeout(w.at.saturating_duration_since(Instant::now())),
            None => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, wake)) => {
                seq += 1;
                heap.push(Waiting { at, seq, wake });
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // No pacer handle is left; serve who is still waiting, in order, then stop.
                while let Some(w) = heap.pop() {
                    std::thread::sleep(w.at.saturating_duration_since(Instant::now()));
                    let _ = w.wake.send(());
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pacer_wakes_in_order_and_not_early() {
        let pacer = Pacer::start();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for ms in [30u64, 10, 20, 10] {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                let at = start + Duration::from_millis(ms);
                pacer.sleep_until(at).await;
                Instant::now().duration_since(at)
            }));
        }
        for t in tasks {
            let late = t.await.unwrap();
            assert!(late < Duration::from_millis(50), "woke {late:?} late");
        }
        pacer.sleep_until(start).await; // in the past: returns at once
    }
}
