//! Timed HTTP bodies: a response body whose chunks leave at planned offsets from the request's
//! arrival, and that can go silent (stall) or abort (disconnect) at a planned chunk.
//!
//! Offsets are absolute from the request's start, so a slow write never shifts later chunks.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Shutdown;
use crate::trace::ChunkMark;

/// One chunk of a body and when it is due, counted from the request's arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    /// When the chunk is due.
    pub at: Duration,
    /// The bytes.
    pub bytes: Bytes,
}

/// How a timed body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// All chunks, then the end of the body.
    Complete,
    /// This many chunks, then silence until the client leaves or the emulator shuts down.
    StallAfter(usize),
    /// This many chunks, then an error that makes hyper abort the connection.
    DisconnectAfter(usize),
}

/// A body that sends `chunks` at their offsets from `start`, then ends as `ending` says;
/// `mark` is recorded in the wire trace as its chunk is handed to the connection.
pub fn timed_body(
    start: Instant,
    chunks: Vec<Timed>,
    ending: Ending,
    shutdown: Shutdown,
    mark: Option<ChunkMark>,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let cut = match ending {
            Ending::Complete => chunks.len(),
            Ending::StallAfter(n) | Ending::DisconnectAfter(n) => n.min(chunks.len()),
        };
        for chunk in chunks.into_iter().take(cut) {
            tokio::select! {
                _ = tokio::time::sleep_until(start + chunk.at) => {}
                _ = tx.closed() => return,
                _ = shutdown.clone().wait() => return,
            }
            if tx.send(Ok(chunk.bytes)).await.is_err() {
                return;
            }
        }
        match ending {
            Ending::Complete => {}
            Ending::StallAfter(_) => {
                // Keep the sender alive (the body open) until nobody is listening.
                tokio::select! {
                    _ = tx.closed() => {}
                    _ = shutdown.wait() => {}
                }
            }
            Ending::DisconnectAfter(_) => {
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "emulated disconnect",
                    )))
                    .await;
            }
        }
    });
    let stream = futures_util::stream::unfold((rx, 0usize, mark), |(mut rx, k, mark)| async move {
        let item = rx.recv().await?;
        let mark = match mark {
            Some(m) if m.chunk == k && item.is_ok() => {
                m.trace.mark(&m.session, m.mark);
                None
            }
            other => other,
        };
        Some((item, (rx, k + 1, mark)))
    });
    Body::from_stream(stream)
}
