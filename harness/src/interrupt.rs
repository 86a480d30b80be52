//! Ctrl-C and SIGTERM, heard once for the whole `latlab run`: one scenario or a suite.
//!
//! One listener for the process, so an interruption stops the suite, not only the scenario
//! running when it came: the runner stops scheduling calls, and `latlab run` starts no
//! further scenario and exits with [`crate::exit::INTERRUPTED`]. The listener starts with
//! the first scenario's clock; before that, Ctrl-C ends the process at once, as it would
//! any program (nothing has been measured yet).

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Whether the process has been asked to stop; clones share one listener.
#[derive(Debug, Clone)]
pub struct Interrupt {
    heard: watch::Receiver<bool>,
    /// Taken by the first [`Interrupt::listen`].
    tell: Arc<Mutex<Option<watch::Sender<bool>>>>,
}

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt::new()
    }
}

impl Interrupt {
    /// An interrupt nobody listens for yet.
    pub fn new() -> Interrupt {
        let (tell, heard) = watch::channel(false);
        Interrupt {
            heard,
            tell: Arc::new(Mutex::new(Some(tell))),
        }
    }

    /// Starts listening for Ctrl-C (SIGINT) and SIGTERM, once: later calls, from any clone,
    /// do nothing. Call inside a tokio runtime; from then on those signals no longer end the
    /// process.
    pub fn listen(&self) {
        let tell = self.tell.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tell) = tell {
            tokio::spawn(async move {
                if signalled().await {
                    let _ = tell.send(true);
                    // Keep the sender, so waiters never see the channel close.
                    std::future::pending::<()>().await;
                }
            });
        }
    }

    /// Whether the signal has come.
    pub fn heard(&self) -> bool {
        *self.heard.borrow()
    }

    /// Waits for the signal; false when it can never come (no handler could be installed).
    pub async fn heard_now(&mut self) -> bool {
        self.heard.wait_for(|heard| *heard).await.is_ok()
    }
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
async fn signalled() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                c = tokio::signal::ctrl_c() => c.is_ok(),
                t = term.recv() => t.is_some(),
            };
        }
    }
    tokio::signal::ctrl_c().await.is_ok()
}
