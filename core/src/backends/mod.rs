//! Backends: the services a pipeline stage can talk to, on their vendors' real wire protocols.
//!
//! Cloud backends take their base URL and model from the scenario and their API key from the
//! environment; the key lives in an [`ApiKey`] that never prints. Every failure becomes a
//! typed [`StageError`] so that the run records it on the turn and goes on.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::timing::{ErrorKind, StageError};

pub mod cartesia;
pub mod deepgram;
pub mod elevenlabs;
pub mod energy_vad;
pub mod local;
pub mod openai;

/// Header naming the session a request belongs to (`<call>#<iteration>`). Vendors ignore
/// it; latlab's emulator seeds each session's timings from it, so replays of one call draw
/// fresh timings while a rerun with the same seed draws the same ones.
pub const SESSION_HEADER: &str = "x-latlab-session";

/// A URL as results, logs and errors may show it: scheme, host, port and path, without query,
/// fragment or credentials (where tokens ride). Text that is not a URL is cut before any `?` or
/// `#`, and anything up to an `@` is dropped.
pub fn public_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => {
            let head = url.split(['?', '#']).next().unwrap_or("");
            head.rsplit_once('@')
                .map_or(head, |(_, rest)| rest)
                .to_string()
        }
    }
}

/// An API key read from the environment. Its `Debug` never shows it and it is never serialized.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Reads the key from environment variable `var`; `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<ApiKey> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(ApiKey)
    }

    /// A key given directly (tests, emulators).
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// How long a backend waits before it calls a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Opening a connection (TCP, TLS, WebSocket upgrade), ms.
    pub connect_ms: u64,
    /// From request sent to response status, ms.
    pub response_ms: u64,
    /// Longest silence inside a streamed response, ms.
    pub stall_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect_ms: 5_000,
            response_ms: 10_000,
            stall_ms: 3_000,
        }
    }
}

impl Timeouts {
    pub(crate) fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    pub(crate) fn response(&self) -> Duration {
        Duration::from_millis(self.response_ms)
    }
    pub(crate) fn stall(&self) -> Duration {
        Duration::from_millis(self.stall_ms)
    }
}

/// Two HTTP clients: one pooling connections, one opening a fresh connection per request,
/// so the profile's `connection_reuse` knob changes what goes over the wire.
#[derive(Debug, Clone)]
pub(crate) struct HttpClients {
    pooled: reqwest::Client,
    fresh: reqwest::Client,
}

impl HttpClients {
    pub(crate) fn new(timeouts: &Timeouts) -> Result<HttpClients, StageError> {
        let build = |pool: usize| {
            reqwest::Client::builder()
                .connect_timeout(timeouts.connect())
                .pool_max_idle_per_host(pool)
                .tcp_nodelay(true)
                .user_agent(concat!("latlab/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| {
                    StageError::new(ErrorKind::Connect, format!("building HTTP client: {e}"))
                })
        };
        Ok(HttpClients {
            pooled: build(usize::MAX)?,
            fresh: build(0)?,
        })
    }

    pub(crate) fn get(&self, reuse: bool) -> &reqwest::Client {
        if reuse { &self.pooled } else { &self.fresh }
    }
}

/// Maps a reqwest failure before the response started.
pub(crate) fn request_error(e: &reqwest::Error) -> StageError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Disconnected
    } else {
        ErrorKind::Connect
    };
    StageError::new(kind, error_chain(e))
}

/// Maps a reqwest failure while reading a streamed body.
pub(crate) fn body_error(e: &reqwest::Error) -> StageError {
    let kind = if e.is_timeout() {
        ErrorKind::Stall
    } else {
        ErrorKind::Disconnected
    };
    StageError::new(kind, error_chain(e))
}

/// The error and its sources on one line (reqwest hides the useful part in the source).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Sends a request and waits for the response status within the response timeout.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
) -> Result<reqwest::Response, StageError> {
    match tokio::time::timeout(timeouts.response(), request.send()).await {
        Err(_) => Err(StageError::new(
            ErrorKind::Timeout,
            format!("no response within {} ms", timeouts.response_ms),
        )),
        Ok(Err(e)) => Err(request_error(&e)),
        Ok(Ok(resp)) => Ok(resp),
    }
}

/// Turns a non-success response into an HTTP error carrying the vendor's message.
pub(crate) async fn reject_status(
    resp: reqwest::Response,
    timeouts: &Timeouts,
    message_of: fn(&serde_json::Value) -> Option<String>,
) -> Result<reqwest::Response, StageError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = tokio::time::timeout(timeouts.stall(), resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| message_of(&v))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Err(StageError::http(
        status.as_u16(),
        format!("HTTP {status}: {detail}"),
    ))
}

/// Reads the next body chunk, failing with `Stall` after the stall timeout.
pub(crate) async fn next_chunk(
    resp: &mut reqwest::Response,
    timeouts: &Timeouts,
) -> Option<Result<bytes::Bytes, StageError>> {
    match tokio::time::timeout(timeouts.stall(), resp.chunk()).await {
        Err(_) => Some(Err(StageError::new(
            ErrorKind::Stall,
            format!("stream silent for {} ms", timeouts.stall_ms),
        ))),
        Ok(Err(e)) => Some(Err(body_error(&e))),
        Ok(Ok(None)) => None,
        Ok(Ok(Some(b))) => Some(Ok(b)),
    }
}

/// Joins a base URL and a path without doubling or dropping slashes.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn public_urls_keep_no_secret() {
        assert_eq!(
            public_url("wss://user:pw@agent.example:8443/ws?token=SECRET#x"),
            "wss://agent.example:8443/ws"
        );
        assert_eq!(
            public_url("redis://:pw@127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(public_url("not a url?token=SECRET"), "not a url");
        assert_eq!(public_url("//u:pw@host/x?token=SECRET"), "host/x");
    }
}
