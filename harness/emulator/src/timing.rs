//! Delay distributions for the emulated services: a configured [`Timing`] is sampled once per
//! delay from the request's seeded RNG.
//!
//! Sampling never reads the clock and never fails: validation happens once, when the config is
//! loaded, so a running emulator cannot be stopped by a bad distribution.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};

/// No sampled delay exceeds this (one hour): a heavy tail must not overflow a `Duration`.
const MAX_DELAY_MS: f64 = 3_600_000.0;

/// A distribution of delays in milliseconds.
///
/// TOML: `ttft = { dist = "lognormal", median_ms = 250.0, sigma = 0.3 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Timing {
    /// Always the same delay.
    Constant {
        /// The delay (ms).
        ms: f64,
    },
    /// `median_ms * exp(sigma * N(0,1))`.
    Lognormal {
        /// The median delay (ms).
        median_ms: f64,
        /// The standard deviation of the delay's logarithm.
        sigma: f64,
    },
    /// Gamma with this shape and scale: mean `shape * scale_ms`.
    Gamma {
        /// Shape k (> 0).
        shape: f64,
        /// Scale θ (ms, > 0).
        scale_ms: f64,
    },
}

impl Timing {
    /// A constant delay of `ms` milliseconds.
    pub const fn constant(ms: f64) -> Timing {
        Timing::Constant { ms }
    }

    /// A lognormal delay.
    pub const fn lognormal(median_ms: f64, sigma: f64) -> Timing {
        Timing::Lognormal { median_ms, sigma }
    }

    /// Checks the parameters; the error says which one is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        let finite_non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be finite and >= 0, found {v}"))
            }
        };
        let finite_positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be finite and > 0, found {v}"))
            }
        };
        match *self {
            Timing::Constant { ms } => finite_non_negative("ms", ms),
            Timing::Lognormal { median_ms, sigma } => {
                finite_non_negative("median_ms", median_ms)?;
                finite_non_negative("sigma", sigma)
            }
            Timing::Gamma { shape, scale_ms } => {
                finite_positive("shape", shape)?;
                finite_positive("scale_ms", scale_ms)
            }
        }
    }

    /// Draws one delay. Assumes [`Timing::validate`] passed; invalid parameters give zero.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let ms = match *self {
            Timing::Constant { ms } => ms,
            Timing::Lognormal { median_ms, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                median_ms * (sigma * z).exp()
            }
            Timing::Gamma { shape, scale_ms } => match Gamma::new(shape, scale_ms) {
                Ok(gamma) => gamma.sample(rng),
                Err(_) => 0.0,
            },
        };
        let ms = if ms.is_finite() {
            ms.clamp(0.0, MAX_DELAY_MS)
        } else {
            0.0
        };
        Duration::from_secs_f64(ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn constant_is_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(
            Timing::constant(15.0).sample(&mut rng),
            Duration::from_millis(15)
        );
    }

    #[test]
    fn lognormal_median_is_near_the_configured_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let t = Timing::lognormal(100.0, 0.3);
        let mut v: Vec<f64> = (0..4001)
            .map(|_| t.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        let median = v[2000];
        assert!((90.0..110.0).contains(&median), "median {median}");
        assert!(v.iter().all(|x| *x >= 0.0));
    }

    #[test]
    fn gamma_mean_is_shape_times_scale() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let t = Timing::Gamma {
            shape: 2.0,
            scale_ms: 10.0,
        };
        let n = 4000;
        let mean = (0..n)
            .map(|_| t.sample(&mut rng).as_secs_f64() * 1000.0)
            .sum::<f64>()
            / f64::from(n);
        assert!((18.0..22.0).contains(&mean), "mean {mean}");
    }

    #[test]
    fn validation_rejects_bad_parameters() {
        assert!(Timing::constant(-1.0).validate().is_err());
        assert!(Timing::constant(f64::NAN).validate().is_err());
        assert!(Timing::lognormal(10.0, -0.1).validate().is_err());
        assert!(
            Timing::Gamma {
                shape: 0.0,
                scale_ms: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(Timing::lognormal(0.0, 0.0).validate().is_ok());
    }

    #[test]
    fn toml_form_parses() {
        #[derive(Deserialize)]
        struct W {
            t: Timing,
        }
        let w: W = toml::from_str(r#"t = { dist = "lognormal", median_ms = 250.0, sigma = 0.3 }"#)
            .unwrap();
        assert_eq!(w.t, Timing::lognormal(250.0, 0.3));
        let bad = toml::from_str::<W>(r#"t = { dist = "constant", ms = 1.0, extra = 2 }"#);
        assert!(bad.is_err());
    }
}
