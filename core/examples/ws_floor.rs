//! The floor under the scale goal: how many WebSocket audio frames a second the stack latlab
//! is built on (tokio + tokio-tungstenite over loopback TCP) carries when one side does
//! nothing but send and the other nothing but receive — no pacing, no transcripts, no LLM or
//! TTS streams. Real-time calls at 20 ms frames need 50 frames a second each, so this divided
//! by 50 bounds the calls any latlab built on this stack could drive, per core.
//!
//!   cargo build --release -p latlab-core --example ws_floor
//!   taskset -c 1 target/release/examples/ws_floor serve 127.0.0.1:9100 &
//!   taskset -c 0 target/release/examples/ws_floor send 127.0.0.1:9100 CONNECTIONS SECONDS [BYTES]
//!
//! Both sides run a single-threaded tokio runtime, so "per core" means one thread each.

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: ws_floor serve ADDR | ws_floor send ADDR CONNECTIONS SECONDS [BYTES]";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.get(1).map(String::as_str) {
        Some("serve") => rt.block_on(serve(args.get(2).ok_or(usage)?)),
        Some("send") => {
            let addr = args.get(2).ok_or(usage)?;
            let conns: usize = args.get(3).ok_or(usage)?.parse()?;
            let secs: f64 = args.get(4).ok_or(usage)?.parse()?;
            let bytes: usize = args.get(5).map_or(Ok(640), |b| b.parse())?;
            rt.block_on(send(addr, conns, secs, bytes))
        }
        _ => Err(usage.into()),
    }
}

async fn serve(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let received = Arc::new(AtomicU64::new(0));
    eprintln!("listening on {addr}");
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let received = received.clone();
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let mut n = 0u64;
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    break;
                }
                n += 1;
            }
            let total = received.fetch_add(n, Ordering::Relaxed) + n;
            eprintln!("connection closed after {n} frames ({total} in all)");
        });
    }
}

async fn send(
    addr: &str,
    conns: usize,
    secs: f64,
    bytes: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let sent = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await?;
        sockets.push(ws);
    }
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let frame = vec![0u8; bytes];
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let sent = sent.clone();
            let frame = frame.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    // One frame, one flush: as a paced sender must, frames go out one by one.
                    if ws.send(Message::binary(frame.clone())).await.is_err() {
                        break;
                    }
                    n += 1;
                    if n.is_multiple_of(32) {
                        tokio::task::yield_now().await;
                    }
                }
                let _ = ws.close(None).await;
                sent.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    let per_s = n as f64 / elapsed;
    println!(
        "{{\"connections\":{conns},\"bytes\":{bytes},\"seconds\":{elapsed:.2},\"frames\":{n},\"frames_per_s\":{per_s:.0},\"calls_at_20ms\":{:.0}}}",
        per_s / 50.0
    );
    Ok(())
}
