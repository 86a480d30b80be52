//! Load models: when calls start.
//!
//! - **Closed loop**: a number of calls in flight; each slot starts its next call when its
//!   call ends. The number can change in stages (a ramp of steps).
//! - **Open loop**: calls arrive on a plan made before the run — a Poisson process or a
//!   constant rate, per stage — whatever the system's state. An arrival that finds the
//!   harness at its in-flight cap is dropped and counted, never delayed.
//!
//! Plans are pure functions of the spec and the seed, so a rerun, or every shard of a run,
//! sees the same arrival times. Times are nanoseconds from the start of a profile's load, in
//! recording time (the runner divides them by the replay speed).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};

pub use latlab_results::load::{Arrival, Stage, StageWindow, window_at, windows};

/// The closed-loop level (calls in flight) at `t_ns`: the stage holding it, or `None` after
/// the last stage ends.
pub fn closed_target_at(windows: &[StageWindow], t_ns: u64) -> Option<usize> {
    window_at(windows, t_ns).map(|i| windows[i].target.max(0.0).round() as usize)
}

/// Open-loop arrival times (ns from the load start, ascending): each stage's arrivals at its
/// rate, until the stages end or `max_calls` have arrived. A stage with rate 0 is a pause.
/// Stages must be bounded unless `max_calls` is given.
pub fn arrivals(
    arrival: Arrival,
    windows: &[StageWindow],
    max_calls: Option<usize>,
    seed: u64,
) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0A11_A7E5);
    let limit = max_calls.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for w in windows {
        let rate = w.target;
        if !(rate.is_finite() && rate > 0.0) {
            continue;
        }
        let gap_ns = 1e9 / rate;
        let mut t = w.start_ns as f64;
        let exp = Exp::new(rate).ok();
        // The first constant-rate arrival of a stage comes at its start.
        let mut first = true;
        loop {
            if out.len() >= limit {
                return out;
            }
            t += match (arrival, &exp) {
                (Arrival::Poisson, Some(exp)) => exp.sample(&mut rng) * 1e9,
                _ if first => 0.0,
                _ => gap_ns,
            };
            first = false;
            if t >= w.end_ns as f64 {
                break;
            }
            out.push(t.round() as u64);
        }
    }
    out
}

/// One of N shards of a run: shard `index` runs calls `k` with `k % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based shard number.
    pub index: usize,
    /// How many shards the run is split into.
    pub count: usize,
}

impl Shard {
    /// The whole run.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/N` (0 ≤ i < N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not i/N (e.g. 0/3)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: shard index {i:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "{text:?}: need 0 ≤ i < N (shards are numbered from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether call `k` (numbered across the whole run) belongs to this shard.
    pub fn includes(&self, k: usize) -> bool {
        k % self.count == self.index
    }

    /// This shard's part of a quantity split as evenly as whole numbers allow (the first
    /// `total % count` shards take one more); the parts add up to `total`.
    pub fn share(&self, total: usize) -> usize {
        total / self.count + usize::from(self.index < total % self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(duration_s: f64, target: f64) -> Stage {
        Stage {
            name: String::new(),
            duration_s,
            target,
        }
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced_per_stage() {
        let w = windows(&[stage(1.0, 4.0), stage(1.0, 2.0)]);
        let a = arrivals(Arrival::Constant, &w, None, 1);
        let ms: Vec<u64> = a.iter().map(|t| t / 1_000_000).collect();
        assert_eq!(ms, vec![0, 250, 500, 750, 1000, 1500]);
    }

    #[test]
    fn poisson_arrivals_are_seeded_bounded_and_near_their_rate() {
        let w = windows(&[stage(100.0, 20.0)]);
        let a = arrivals(Arrival::Poisson, &w, None, 7);
        assert_eq!(a, arrivals(Arrival::Poisson, &w, None, 7));
        assert_ne!(a, arrivals(Arrival::Poisson, &w, None, 8));
        assert!(a.windows(2).all(|p| p[0] <= p[1]));
        assert!(a.iter().all(|&t| t < 100_000_000_000));
        // 2,000 expected; a Poisson count's sd is √2000 ≈ 45.
        assert!((1800..2200).contains(&a.len()), "{}", a.len());
        assert_eq!(arrivals(Arrival::Poisson, &w, Some(10), 7), a[..10]);
    }

    #[test]
    fn an_unbounded_stage_needs_a_call_limit_and_a_zero_rate_is_a_pause() {
        let w = windows(&[stage(1.0, 0.0), stage(f64::INFINITY, 10.0)]);
        let a = arrivals(Arrival::Constant, &w, Some(3), 1);
        assert_eq!(a, vec![1_000_000_000, 1_100_000_000, 1_200_000_000]);
    }

    #[test]
    fn an_unbounded_stage_survives_json() {
        let s = stage(f64::INFINITY, 3.0);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("null"), "{json}");
        assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), s);
    }

    #[test]
    fn closed_levels_follow_the_stages() {
        let w = windows(&[stage(1.0, 10.0), stage(2.0, 50.0)]);
        assert_eq!(closed_target_at(&w, 0), Some(10));
        assert_eq!(closed_target_at(&w, 999_999_999), Some(10));
        assert_eq!(closed_target_at(&w, 1_000_000_000), Some(50));
        assert_eq!(closed_target_at(&w, 3_000_000_000), None);
    }

    #[test]
    fn shards_partition_calls_and_shares_add_up() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for k in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.includes(k)).count(), 1);
        }
        for total in 0..20 {
            assert_eq!(shards.iter().map(|s| s.share(total)).sum::<usize>(), total);
        }
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("x/3").unwrap_err().contains("not a number"));
        assert!(Shard::parse("3").unwrap_err().contains("i/N"));
        assert_eq!(Shard::WHOLE.to_string(), "0/1");
    }
}
