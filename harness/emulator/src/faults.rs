//! Fault injection: the per-service fault probabilities, the one fault drawn per request, and
//! the listener that refuses connections (accepts them and drops them before any HTTP byte).
//!
//! The decision to refuse depends only on the seed, the service and the connection's ordinal,
//! never on timing, so the same run refuses the same connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use crate::seed;
use crate::stats::ServiceCounters;

/// Probabilities of each fault for one service (each in [0, 1], summing to at most 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Per accepted TCP connection: close it before any HTTP byte.
    pub refuse: f64,
    /// Per request: answer with HTTP 503 and the vendor's error body.
    pub http_5xx: f64,
    /// Per request: stream part of the reply, then send nothing more while keeping it open.
    pub stall: f64,
    /// Per request: stream part of the reply, then abort the connection.
    pub disconnect: f64,
    /// Per request: send one invalid frame (or body) mid-stream.
    pub malformed: f64,
}

/// The fault drawn for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Serve normally.
    None,
    /// Reply 503 with the vendor's error body.
    Http5xx,
    /// Go silent mid-stream.
    Stall,
    /// Abort mid-stream.
    Disconnect,
    /// Send one invalid frame.
    Malformed,
}

impl Faults {
    /// Faults where `kind` (`refuse`, `http_5xx`, `stall`, `disconnect` or `malformed`)
    /// always happens; `None` for an unknown kind.
    pub fn always(kind: &str) -> Option<Faults> {
        let mut f = Faults::default();
        *match kind {
            "refuse" => &mut f.refuse,
            "http_5xx" => &mut f.http_5xx,
            "stall" => &mut f.stall,
            "disconnect" => &mut f.disconnect,
            "malformed" => &mut f.malformed,
            _ => return None,
        } = 1.0;
        Some(f)
    }

    /// Checks that each probability lies in [0, 1] and that they sum to at most 1.
    pub fn validate(&self) -> Result<(), String> {
        let named = [
            ("refuse", self.refuse),
            ("http_5xx", self.http_5xx),
            ("stall", self.stall),
            ("disconnect", self.disconnect),
            ("malformed", self.malformed),
        ];
        for (name, p) in named {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} = {p} is not a probability in [0, 1]"));
            }
        }
        let sum: f64 = named.iter().map(|(_, p)| p).sum();
        if sum > 1.0 + 1e-9 {
            return Err(format!("the fault probabilities sum to {sum}, more than 1"));
        }
        Ok(())
    }

    /// Draws the request-level fault (everything but `refuse`, which is decided at accept).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Fault {
        let u: f64 = rng.random();
        let mut edge = 0.0;
        for (p, fault) in [
            (self.http_5xx, Fault::Http5xx),
            (self.stall, Fault::Stall),
            (self.disconnect, Fault::Disconnect),
            (self.malformed, Fault::Malformed),
        ] {
            edge += p;
            if u < edge {
                return fault;
            }
        }
        Fault::None
    }
}

/// Whether the `ordinal`-th connection (0-based) to `service` is refused.
pub fn refuses(seed: u64, service: &str, ordinal: u64, probability: f64) -> bool {
    if probability <= 0.0 {
        return false;
    }
    let mut rng = seed::request_rng(seed, service, &ordinal.to_le_bytes(), seed::Stream::Fault);
    rng.random::<f64>() < probability
}

/// A TCP listener that drops the connections the seed says to refuse and hands the rest to axum.
#[derive(Debug)]
pub struct RefusingListener {
    inner: TcpListener,
    seed: u64,
    service: &'static str,
    probability: f64,
    ordinal: u64,
    counters: Arc<ServiceCounters>,
}

impl RefusingListener {
    /// Wraps `inner`; `probability` is the service's `faults.refuse`.
    pub fn new(
        inner: TcpListener,
        seed: u64,
        service: &'static str,
        probability: f64,
        counters: Arc<ServiceCounters>,
    ) -> Self {
        RefusingListener {
            inner,
            seed,
            service,
            probability,
            ordinal: 0,
            counters,
        }
    }
}

impl axum::serve::Listener for RefusingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    // Like axum's own listener: out of descriptors and the like are transient.
                    tracing::debug!(service = self.service, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let ordinal = self.ordinal;
            self.ordinal += 1;
            if refuses(self.seed, self.service, ordinal, self.probability) {
                self.counters.refused();
                drop(stream);
                continue;
            }
            self.counters.accepted();
            let _ = stream.set_nodelay(true);
            return (stream, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn validation() {
        assert!(Faults::default().validate().is_ok());
        let too_much = Faults {
            stall: 0.6,
            malformed: 0.5,
            ..Faults::default()
        };
        assert!(too_much.validate().is_err());
        let negative = Faults {
            refuse: -0.1,
            ..Faults::default()
        };
        assert!(negative.validate().unwrap_err().contains("refuse"));
    }

    #[test]
    fn draw_follows_the_probabilities() {
        let faults = Faults {
            http_5xx: 0.25,
            disconnect: 0.25,
            ..Faults::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 4000;
        let draws: Vec<Fault> = (0..n).map(|_| faults.draw(&mut rng)).collect();
        let count = |f| draws.iter().filter(|d| **d == f).count();
        assert!((800..1200).contains(&count(Fault::Http5xx)));
        assert!((800..1200).contains(&count(Fault::Disconnect)));
        assert_eq!(count(Fault::Stall), 0);
        let always = Faults {
            stall: 1.0,
            ..Faults::default()
        };
        assert_eq!(always.draw(&mut rng), Fault::Stall);
    }

    #[test]
    fn refusal_is_seeded() {
        let a: Vec<bool> = (0..64).map(|i| refuses(5, "llm", i, 0.5)).collect();
        let b: Vec<bool> = (0..64).map(|i| refuses(5, "llm", i, 0.5)).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|r| *r) && a.iter().any(|r| !*r));
        assert!((0..64).all(|i| !refuses(5, "llm", i, 0.0)));
        assert!((0..64).all(|i| refuses(5, "llm", i, 1.0)));
    }
}
