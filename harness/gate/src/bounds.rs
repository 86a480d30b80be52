//! One-sided confidence bounds for a percentile and for a rate, and how many samples a
//! decision needs. Pure functions; no I/O.
//!
//! Percentiles use order statistics and the binomial distribution, as MLPerf LoadGen's early
//! stopping does: if the true q-quantile were at or above a limit, each sample would reach the
//! limit with probability at least 1 − q, so seeing at most `t` such samples among `n` has
//! probability at most `P(Binom(n, 1 − q) ≤ t)`. The upper bound is the order statistic that
//! leaves the largest `t` with that probability ≤ 1 − confidence — and, like LoadGen, `t` must
//! be at least 1, so a P90 at 99 % confidence needs 64 samples even when every one is under
//! the limit. The lower bound is the mirror image. Rates (errors over attempts) use the exact
//! Clopper–Pearson bounds.

use statrs::distribution::{Beta, Binomial, ContinuousCDF, DiscreteCDF};

/// The confidence of every bound unless a targets file says otherwise.
pub const DEFAULT_CONFIDENCE: f64 = 0.99;

/// Sample sizes beyond which "need N more" stops searching.
const SEARCH_LIMIT: u64 = 1_000_000_000;

/// `P(Binom(n, p) ≤ k)`.
fn cdf(n: u64, p: f64, k: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    Binomial::new(p, n).map_or(1.0, |b| b.cdf(k))
}

/// `P(Binom(n, p) ≥ s)`.
fn tail(n: u64, p: f64, s: u64) -> f64 {
    if s == 0 {
        return 1.0;
    }
    if s > n {
        return 0.0;
    }
    Binomial::new(p, n).map_or(0.0, |b| b.sf(s - 1))
}

/// The most samples at or above a limit that still show, at `confidence`, that the true
/// q-quantile is under it: the largest `t ≥ 1` with `P(Binom(n, 1 − q) ≤ t) ≤ 1 − confidence`.
/// `None` when even `t = 1` is too many (too few samples to ever pass).
pub fn tolerated_over(n: u64, q: f64, confidence: f64) -> Option<u64> {
    let (p, alpha) = (1.0 - q, 1.0 - confidence);
    if n < 2 || cdf(n, p, 1) > alpha {
        return None;
    }
    let (mut lo, mut hi) = (1, n - 1); // cdf(lo) ≤ alpha
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if cdf(n, p, mid) <= alpha {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The fewest samples above a limit that show, at `confidence`, that the true q-quantile is
/// above it: the smallest `s` with `P(Binom(n, 1 − q) ≥ s) ≤ 1 − confidence`. `None` when even
/// all `n` would not be enough.
pub fn decisive_over(n: u64, q: f64, confidence: f64) -> Option<u64> {
    let (p, alpha) = (1.0 - q, 1.0 - confidence);
    if n == 0 || tail(n, p, n) > alpha {
        return None;
    }
    let (mut lo, mut hi) = (1, n); // tail(hi) ≤ alpha
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if tail(n, p, mid) <= alpha {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The fewest samples with which a q-quantile can pass at all (every sample under the limit).
pub fn min_samples_to_pass(q: f64, confidence: f64) -> u64 {
    first(2, |n| tolerated_over(n, q, confidence).is_some()).unwrap_or(u64::MAX)
}

/// One-sided bounds on a quantile, at one confidence each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// The true value is above this with the confidence asked for (`None`: too few samples).
    pub lower: Option<f64>,
    /// The true value is below this with the confidence asked for (`None`: too few samples).
    pub upper: Option<f64>,
}

/// Order-statistic bounds on the q-quantile of an ascending sample.
pub fn quantile_bounds(sorted: &[f64], q: f64, confidence: f64) -> Bounds {
    let n = sorted.len() as u64;
    Bounds {
        // x₍ₙ₋ₜ₎ (1-based): at most t samples reach it.
        upper: tolerated_over(n, q, confidence).map(|t| sorted[(n - t - 1) as usize]),
        // x₍ₙ₋ₛ₊₁₎: at least s samples reach it.
        lower: decisive_over(n, q, confidence).map(|s| sorted[(n - s) as usize]),
    }
}

/// Exact (Clopper–Pearson) one-sided bounds on a rate of `k` events in `n` trials.
pub fn rate_bounds(k: f64, n: f64, confidence: f64) -> Bounds {
    if n <= 0.0 {
        return Bounds {
            lower: None,
            upper: None,
        };
    }
    let upper = if k >= n {
        1.0
    } else {
        Beta::new(k + 1.0, n - k).map_or(1.0, |b| b.inverse_cdf(confidence))
    };
    let lower = if k <= 0.0 {
        0.0
    } else {
        Beta::new(k, n - k + 1.0).map_or(0.0, |b| b.inverse_cdf(1.0 - confidence))
    };
    Bounds {
        lower: Some(lower),
        upper: Some(upper),
    }
}

/// The smallest `n ≥ from` for which `decided(n)` holds, assuming it keeps holding once it
/// does (doubling, then bisection); `None` past a billion.
pub fn first(from: u64, decided: impl Fn(u64) -> bool) -> Option<u64> {
    let from = from.max(1);
    if decided(from) {
        return Some(from);
    }
    let (mut lo, mut hi) = (from, from.saturating_mul(2));
    while !decided(hi) {
        if hi >= SEARCH_LIMIT {
            return None;
        }
        lo = hi;
        hi = hi.saturating_mul(2).min(SEARCH_LIMIT);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decided(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_p90_at_99_percent_needs_64_samples_like_loadgen() {
        assert_eq!(min_samples_to_pass(0.90, 0.99), 64);
        assert!(tolerated_over(63, 0.90, 0.99).is_none());
        assert_eq!(tolerated_over(64, 0.90, 0.99), Some(1));
        // P95 and P99 need more (LoadGen's figures for t = 1).
        assert_eq!(min_samples_to_pass(0.95, 0.99), 130);
        assert_eq!(min_samples_to_pass(0.99, 0.99), 662);
    }

    #[test]
    fn bounds_bracket_the_quantile_and_tighten_with_samples() {
        let small: Vec<f64> = (1..=200).map(f64::from).collect();
        let large: Vec<f64> = (1..=20_000).map(|i| f64::from(i) / 100.0).collect();
        for s in [&small, &large] {
            let b = quantile_bounds(s, 0.9, 0.99);
            let point = s[(s.len() as f64 * 0.9).ceil() as usize - 1];
            assert!(
                b.lower.unwrap() < point && point < b.upper.unwrap(),
                "{b:?} {point}"
            );
        }
        let width = |s: &[f64]| {
            let b = quantile_bounds(s, 0.9, 0.99);
            (b.upper.unwrap() - b.lower.unwrap()) / s[s.len() - 1]
        };
        assert!(width(&large) < width(&small));
    }

    #[test]
    fn rate_bounds_hold_the_observed_rate() {
        let b = rate_bounds(10.0, 100.0, 0.99);
        assert!(b.lower.unwrap() < 0.1 && 0.1 < b.upper.unwrap());
        let none = rate_bounds(0.0, 50.0, 0.99);
        assert_eq!(none.lower, Some(0.0));
        // Zero events in 50: the 99 % upper bound is 1 − 0.01^(1/50) ≈ 0.088.
        assert!((none.upper.unwrap() - 0.0880).abs() < 1e-3, "{none:?}");
    }

    #[test]
    fn first_finds_the_threshold() {
        assert_eq!(first(1, |n| n >= 1000), Some(1000));
        assert_eq!(first(5, |n| n >= 3), Some(5));
        assert_eq!(first(1, |_| false), None);
    }
}
