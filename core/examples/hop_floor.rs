//! The floor under latlab's own share of a stage (docs/metrics.md, The measurement of the
//! measurer): how long one message takes from one task handing it to a loopback socket to
//! another task of the same process reading it, with nothing of latlab in between — the
//! kernel's loopback, the wake-up of the reading thread and tokio's scheduling.
//!
//! It runs the same shape as an in-process emulator run: one tokio runtime with two worker
//! threads, the writer and the reader both tasks on it, one message every `GAP_MS` (so the
//! reader is parked when each arrives, as between the turns of a call). Two transports: a
//! WebSocket text message (tokio-tungstenite, as the Deepgram stream) and 64 raw TCP bytes.
//!
//!   cargo run --release -p latlab-core --example hop_floor [MESSAGES]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Between two messages.
const GAP_MS: u64 = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(4_000), |a| a.parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ws = websocket_hops(n).await?;
        report("websocket text message", ws);
        let tcp = tcp_hops(n).await?;
        report("raw TCP, 64 bytes", tcp);
        Ok(())
    })
}

fn report(what: &str, mut hops: Vec<u64>) {
    hops.sort_unstable();
    let at = |q: f64| hops[((q * hops.len() as f64).ceil() as usize).clamp(1, hops.len()) - 1];
    println!(
        "{what}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs (n={})",
        at(0.50) as f64 / 1e3,
        at(0.99) as f64 / 1e3,
        hops[hops.len() - 1] as f64 / 1e3,
        hops.len()
    );
}

/// Nanoseconds since `origin`, written into each message by the sender.
fn ns_since(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

async fn websocket_hops(n: usize) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let origin = Instant::now();
    let sender = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let mut ws = tokio_tungstenite::accept_async(tcp).await?;
        for _ in 0..n {
            tokio::time::sleep(Duration::from_millis(GAP_MS)).await;
            ws.send(Message::Text(ns_since(origin).to_string().into()))
                .await?;
        }
        ws.close(None).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    let mut hops = Vec::with_capacity(n);
    while let Some(message) = ws.next().await {
        let now = ns_since(origin);
        if let Message::Text(text) = message? {
            hops.push(now - text.parse::<u64>()?);
        }
    }
    sender.await?.map_err(|e| e.to_string())?;
    Ok(hops)
}

async fn tcp_hops(n: usize) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let origin = Instant::now();
    let sender = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        for _ in 0..n {
            tokio::time::sleep(Duration::from_millis(GAP_MS)).await;
            buf[..8].copy_from_slice(&ns_since(origin).to_le_bytes());
            tcp.write_all(&buf).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut hops = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    for _ in 0..n {
        tcp.read_exact(&mut buf).await?;
        let now = ns_since(origin);
        let sent = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        hops.push(now - sent);
    }
    sender.await??;
    Ok(hops)
}
