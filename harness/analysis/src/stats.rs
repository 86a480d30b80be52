//! Statistics as pure functions over slices: exact quantiles and bootstrap confidence
//! intervals. No I/O, no polars: these are what the property tests pin down.
//!
//! Quantiles are nearest-rank (the value of an actual sample, never interpolated). Their
//! bootstrap is exact and cheap: the k-th smallest of n draws with replacement from a sorted
//! sample is `sorted[ceil(n·V) − 1]` with `V ~ Beta(k, n − k + 1)`, so each replicate costs
//! one Beta draw instead of n. The mean's bootstrap resamples for real up to
//! [`RESAMPLE_LIMIT`] samples and uses its normal limit (mean, s²/n) above it.

use latlab_report::model::Estimate;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Normal};

/// Bootstrap replicates per interval.
pub const REPLICATES: usize = 2000;
/// Above this many samples the mean's bootstrap uses its normal limit.
pub const RESAMPLE_LIMIT: usize = 20_000;

/// The nearest-rank q-quantile of an ascending slice; `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[rank(sorted.len(), q) - 1])
}

/// The 1-based nearest rank of quantile q among n samples.
pub fn rank(n: usize, q: f64) -> usize {
    ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n)
}

/// Arithmetic mean; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Replicates of the q-quantile of `sorted` under the bootstrap.
pub fn quantile_replicates(
    sorted: &[f64],
    q: f64,
    replicates: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let k = rank(n, q) as f64;
    match Beta::new(k, n as f64 - k + 1.0) {
        Ok(beta) => (0..replicates)
            .map(|_| {
                let v: f64 = beta.sample(rng);
                let index = ((n as f64 * v).ceil() as usize).clamp(1, n) - 1;
                sorted[index]
            })
            .collect(),
        Err(_) => vec![sorted[rank(n, q) - 1]; replicates],
    }
}

/// Replicates of the mean of `values` under the bootstrap.
pub fn mean_replicates(values: &[f64], replicates: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = values.len();
    let Some(m) = mean(values) else {
        return Vec::new();
    };
    if n <= RESAMPLE_LIMIT {
        let index = rand::distr::Uniform::new(0, n).expect("n > 0");
        return (0..replicates)
            .map(|_| (0..n).map(|_| values[index.sample(rng)]).sum::<f64>() / n as f64)
            .collect();
    }
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
    let normal = Normal::new(m, (var / n as f64).sqrt()).expect("finite variance");
    (0..replicates).map(|_| normal.sample(rng)).collect()
}

/// The 2.5 % and 97.5 % points of replicates (nearest rank).
pub fn percentile_interval(mut replicates: Vec<f64>) -> Option<(f64, f64)> {
    replicates.sort_by(f64::total_cmp);
    Some((quantile(&replicates, 0.025)?, quantile(&replicates, 0.975)?))
}

/// A seeded generator for one named statistic, so each interval is reproducible on its own.
pub fn rng_for(seed: u64, what: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in what.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(h)
}

/// An estimate with the 95 % percentile interval of its replicates (widened to hold it).
fn with_interval(value: f64, replicates: Vec<f64>) -> Option<Estimate> {
    let (lo, hi) = percentile_interval(replicates)?;
    Some(Estimate {
        value,
        lo: lo.min(value),
        hi: hi.max(value),
    })
}

/// The q-quantile of an ascending sample with its 95 % bootstrap interval.
pub fn quantile_estimate(sorted: &[f64], q: f64, seed: u64, what: &str) -> Option<Estimate> {
    let value = quantile(sorted, q)?;
    with_interval(
        value,
        quantile_replicates(sorted, q, REPLICATES, &mut rng_for(seed, what)),
    )
}

/// The mean with its 95 % bootstrap interval.
pub fn mean_estimate(values: &[f64], seed: u64, what: &str) -> Option<Estimate> {
    let value = mean(values)?;
    with_interval(
        value,
        mean_replicates(values, REPLICATES, &mut rng_for(seed, what)),
    )
}

/// The difference b − a of a statistic, and (b − a) / a, with 95 % bootstrap intervals from
/// independent replicates of each side.
pub fn difference(
    a: &Estimate,
    a_reps: &[f64],
    b: &Estimate,
    b_reps: &[f64],
) -> Option<(Estimate, Estimate)> {
    let diffs: Vec<f64> = a_reps.iter().zip(b_reps).map(|(x, y)| y - x).collect();
    let rels: Vec<f64> = a_reps
        .iter()
        .zip(b_reps)
        .filter(|(x, _)| **x != 0.0)
        .map(|(x, y)| (y - x) / x)
        .collect();
    let d = b.value - a.value;
    let (dlo, dhi) = percentile_interval(diffs)?;
    let r = if a.value != 0.0 {
        d / a.value
    } else {
        f64::NAN
    };
    let (rlo, rhi) = percentile_interval(rels).unwrap_or((f64::NAN, f64::NAN));
    Some((
        Estimate {
            value: d,
            lo: dlo.min(d),
            hi: dhi.max(d),
        },
        Estimate {
            value: r,
            lo: rlo.min(r),
            hi: rhi.max(r),
        },
    ))
}

/// The proportion `k / n` with its exact two-sided 95 % (Clopper–Pearson) interval; `None`
/// when `n` is 0. Exact, not bootstrapped: a proportion's sampling distribution is known.
pub fn proportion_estimate(k: u64, n: u64) -> Option<Estimate> {
    use statrs::distribution::{Beta as BetaDist, ContinuousCDF};
    if n == 0 {
        return None;
    }
    let (kf, nf) = (k.min(n) as f64, n as f64);
    let lo = if k == 0 {
        0.0
    } else {
        BetaDist::new(kf, nf - kf + 1.0).map_or(0.0, |b| b.inverse_cdf(0.025))
    };
    let hi = if k >= n {
        1.0
    } else {
        BetaDist::new(kf + 1.0, nf - kf).map_or(1.0, |b| b.inverse_cdf(0.975))
    };
    let value = kf / nf;
    Some(Estimate {
        value,
        lo: lo.min(value),
        hi: hi.max(value),
    })
}

/// Replicates of a proportion `k / n` under the (parametric) bootstrap: `Binom(n, k/n) / n`.
pub fn proportion_replicates(k: u64, n: u64, replicates: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let p = (k.min(n) as f64 / n as f64).clamp(0.0, 1.0);
    match rand_distr::Binomial::new(n, p) {
        Ok(b) => (0..replicates)
            .map(|_| b.sample(rng) as f64 / n as f64)
            .collect(),
        Err(_) => vec![p; replicates],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.9), Some(90.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.01), Some(7.0));
        assert_eq!(rank(100, 0.99), 99);
    }

    #[test]
    fn quantile_bootstrap_matches_resampling() {
        // The Beta shortcut and brute-force resampling agree on the interval.
        let data = sorted((0..400).map(|i| f64::from((i * 37) % 400) + 0.5).collect());
        let mut rng = rng_for(1, "x");
        let fast = percentile_interval(quantile_replicates(&data, 0.9, 4000, &mut rng)).unwrap();
        let index = rand::distr::Uniform::new(0, data.len()).unwrap();
        let slow: Vec<f64> = (0..4000)
            .map(|_| {
                let r = sorted(
                    (0..data.len())
                        .map(|_| data[index.sample(&mut rng)])
                        .collect(),
                );
                quantile(&r, 0.9).unwrap()
            })
            .collect();
        let slow = percentile_interval(slow).unwrap();
        assert!(
            (fast.0 - slow.0).abs() <= 4.0 && (fast.1 - slow.1).abs() <= 4.0,
            "{fast:?} vs {slow:?}"
        );
    }

    proptest! {
        #[test]
        fn a_percentile_lies_within_min_and_max(v in prop::collection::vec(-1e6f64..1e6, 1..300), q in 0.0f64..=1.0) {
            let s = sorted(v);
            let p = quantile(&s, q).unwrap();
            prop_assert!(s[0] <= p && p <= s[s.len() - 1]);
        }

        #[test]
        fn a_percentile_is_monotone_in_q(v in prop::collection::vec(-1e6f64..1e6, 1..300), q1 in 0.0f64..=1.0, q2 in 0.0f64..=1.0) {
            let s = sorted(v);
            let (lo, hi) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            prop_assert!(quantile(&s, lo).unwrap() <= quantile(&s, hi).unwrap());
        }

        #[test]
        fn an_interval_contains_its_estimate(v in prop::collection::vec(0f64..5e3, 1..200), q in 0.01f64..=0.99, seed in any::<u64>()) {
            let s = sorted(v.clone());
            let e = quantile_estimate(&s, q, seed, "q").unwrap();
            prop_assert!(e.lo <= e.value && e.value <= e.hi);
            prop_assert!(s[0] <= e.lo && e.hi <= s[s.len() - 1]);
            let m = mean_estimate(&v, seed, "m").unwrap();
            prop_assert!(m.lo <= m.value && m.value <= m.hi);
        }

        #[test]
        fn a_fixed_seed_reproduces_the_interval(v in prop::collection::vec(0f64..5e3, 1..200), seed in any::<u64>()) {
            let s = sorted(v.clone());
            prop_assert_eq!(quantile_estimate(&s, 0.95, seed, "p95"), quantile_estimate(&s, 0.95, seed, "p95"));
            prop_assert_eq!(mean_estimate(&v, seed, "mean"), mean_estimate(&v, seed, "mean"));
        }
    }

    #[test]
    fn proportions_have_exact_intervals() {
        // 10 of 100: the Clopper–Pearson 95 % interval is [0.0490, 0.1762].
        let e = proportion_estimate(10, 100).unwrap();
        assert_eq!(e.value, 0.1);
        assert!(
            (e.lo - 0.0490).abs() < 1e-3 && (e.hi - 0.1762).abs() < 1e-3,
            "{e:?}"
        );
        // None of 50: [0, 1 − 0.025^(1/50)].
        let z = proportion_estimate(0, 50).unwrap();
        assert_eq!((z.value, z.lo), (0.0, 0.0));
        assert!(
            (z.hi - (1.0 - 0.025f64.powf(1.0 / 50.0))).abs() < 1e-9,
            "{z:?}"
        );
        assert_eq!(proportion_estimate(3, 3).unwrap().hi, 1.0);
        assert_eq!(proportion_estimate(0, 0), None);
        let reps = proportion_replicates(10, 100, 500, &mut rng_for(1, "p"));
        assert!(reps.iter().all(|r| (0.0..=1.0).contains(r)));
        let m = mean(&reps).unwrap();
        assert!((m - 0.1).abs() < 0.01, "{m}");
    }

    #[test]
    fn difference_of_shifted_samples() {
        let a = sorted((0..500).map(|i| 1000.0 + f64::from(i)).collect());
        let b: Vec<f64> = a.iter().map(|x| x + 300.0).collect();
        let ea = quantile_estimate(&a, 0.5, 1, "a").unwrap();
        let eb = quantile_estimate(&b, 0.5, 1, "b").unwrap();
        let ra = quantile_replicates(&a, 0.5, REPLICATES, &mut rng_for(1, "ra"));
        let rb = quantile_replicates(&b, 0.5, REPLICATES, &mut rng_for(1, "rb"));
        let (d, r) = difference(&ea, &ra, &eb, &rb).unwrap();
        assert_eq!(d.value, 300.0);
        assert!(d.lo < 300.0 && d.hi > 300.0, "{d:?}");
        assert!((r.value - 300.0 / ea.value).abs() < 1e-12);
    }
}
