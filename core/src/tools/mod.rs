//! Tools the LLM can call (OpenAI function calling) and the cache in front of them.
//!
//! A run's [`Tools`] are the function definitions sent with every LLM request and the HTTP
//! API that executes them (a "company API": latlab's emulator, or any URL): a call is
//! `POST {base_url}/{name}` with the arguments as the JSON body, answered with the result as
//! JSON. A profile's [`ToolCacheStore`] keeps results by tool name and arguments for
//! `tool_cache_ttl_s` — in memory, or in a real Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backends::{ApiKey, HttpClients, Timeouts, join_url, reject_status, send};
use crate::timing::{ErrorKind, StageError};

/// One function the LLM may call, as OpenAI's `tools` list describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The function's name (`[A-Za-z0-9_-]`, at most 64 characters).
    pub name: String,
    /// What it does, for the model.
    #[serde(default)]
    pub description: String,
    /// Its parameters as a JSON Schema object.
    #[serde(default = "empty_schema")]
    pub parameters: serde_json::Value,
}

fn empty_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// The run's tools: their definitions and the API that runs them.
#[derive(Debug, Clone)]
pub struct Tools {
    name: String,
    base_url: String,
    functions: Vec<ToolSpec>,
    key: Option<ApiKey>,
    timeouts: Timeouts,
    http: HttpClients,
}

/// A tool's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The result as JSON text (what goes back to the LLM).
    pub content: String,
    /// Bytes of the response body.
    pub bytes: u64,
}

impl Tools {
    /// Tools executed at `base_url` (`name` labels the tool stage's backend in results).
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        functions: Vec<ToolSpec>,
        key: Option<ApiKey>,
        timeouts: Timeouts,
    ) -> Result<Tools, StageError> {
        Ok(Tools {
            name: name.into(),
            base_url: base_url.into(),
            functions,
            key,
            http: HttpClients::new(&timeouts)?,
            timeouts,
        })
    }

    /// The backend's name in results.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function definitions.
    pub fn functions(&self) -> &[ToolSpec] {
        &self.functions
    }

    /// OpenAI's `tools` array for an LLM request.
    pub fn definitions(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.functions
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "type": "function",
                        "function": {
                            "name": f.name,
                            "description": f.description,
                            "parameters": f.parameters,
                        }
                    })
                })
                .collect(),
        )
    }

    /// Calls `name` with `arguments` (JSON object text). An unknown tool or arguments that are
    /// not a JSON object are `protocol` errors (the model's fault, caught before any request);
    /// the API's failures are typed like every HTTP backend's (`http`, `timeout`, `stall`,
    /// `disconnected`, and `protocol` for a body that is not JSON).
    pub async fn call(
        &self,
        name: &str,
        arguments: &str,
        session: &str,
        reuse_connection: bool,
    ) -> Result<ToolResult, StageError> {
        if !self.functions.iter().any(|f| f.name == name) {
            return Err(StageError::new(
                ErrorKind::Protocol,
                format!("the LLM called {name:?}, which is not one of the tools offered"),
            ));
        }
        let args = parse_arguments(arguments)?;
        let mut builder = self
            .http
            .get(reuse_connection)
            .post(join_url(&self.base_url, name))
            .json(&args)
            .header(crate::backends::SESSION_HEADER, session);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key.expose());
        }
        let resp = send(builder, &self.timeouts).await?;
        let resp = reject_status(resp, &self.timeouts, |v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .await?;
        let body = match tokio::time::timeout(self.timeouts.stall(), resp.bytes()).await {
            Err(_) => {
                return Err(StageError::new(
                    ErrorKind::Stall,
                    format!(
                        "the tool's response body did not arrive within {} ms",
                        self.timeouts.stall_ms
                    ),
                ));
            }
            Ok(Err(e)) => return Err(crate::backends::body_error(&e)),
            Ok(Ok(b)) => b,
        };
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            StageError::new(
                ErrorKind::Protocol,
                format!("the tool's response is not JSON: {e}"),
            )
        })?;
        Ok(ToolResult {
            content: value.to_string(),
            bytes: body.len() as u64,
        })
    }
}

/// The arguments the LLM streamed, as a JSON object; anything else is a `protocol` error.
pub fn parse_arguments(arguments: &str) -> Result<serde_json::Value, StageError> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(other) => Err(StageError::new(
            ErrorKind::Protocol,
            format!("tool arguments are not a JSON object: {other}"),
        )),
        Err(e) => Err(StageError::new(
            ErrorKind::Protocol,
            format!(
                "malformed tool arguments ({e}): {:?}",
                truncate(arguments, 80)
            ),
        )),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The cache key of a call: the tool's name and its arguments with keys sorted, so that the
/// same call spelled in another key order hits. Arguments that do not parse are keyed as text.
pub fn cache_key(namespace: &str, name: &str, arguments: &str) -> String {
    let canonical = match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(v) => canonical_json(&v),
        Err(_) => arguments.to_string(),
    };
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{namespace}:tool:{name}:{hex}")
}

fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String((*k).clone()),
                        canonical_json(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", body.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(canonical_json)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        other => other.to_string(),
    }
}

/// A store of tool results by key, with a time to live.
#[async_trait]
pub trait ToolCacheStore: Send + Sync {
    /// The store's kind in results (`memory`, `redis`).
    fn kind(&self) -> &'static str;
    /// A fresh result, if one is stored.
    async fn get(&self, key: &str) -> Result<Option<String>, StageError>;
    /// Stores a result for `ttl`.
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StageError>;
}

/// Results in a map in latlab's process.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

#[async_trait]
impl ToolCacheStore for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StageError> {
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.get(key) {
            Some((until, value)) if *until > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StageError> {
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key.to_string(), (Instant::now() + ttl, value.to_string()));
        Ok(())
    }
}

/// Results in a real Redis (`SET key value PX ttl`, `GET key`) over one multiplexed
/// connection.
#[derive(Clone)]
pub struct RedisCache {
    connection: redis::aio::MultiplexedConnection,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisCache")
    }
}

impl RedisCache {
    /// Connects to `url` (`redis://127.0.0.1:PORT`).
    pub async fn connect(url: &str, timeout: Duration) -> Result<RedisCache, StageError> {
        let client = redis::Client::open(url)
            .map_err(|e| StageError::new(ErrorKind::Connect, format!("redis URL: {e}")))?;
        let connection = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| {
                StageError::new(
                    ErrorKind::Timeout,
                    format!("redis not connected within {} ms", timeout.as_millis()),
                )
            })?
            .map_err(redis_error)?;
        Ok(RedisCache { connection })
    }
}

fn redis_error(e: redis::RedisError) -> StageError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connection_refusal() {
        ErrorKind::Connect
    } else if e.is_io_error() || e.is_connection_dropped() {
        ErrorKind::Disconnected
    } else {
        ErrorKind::Protocol
    };
    StageError::new(kind, format!("redis: {e}"))
}

#[async_trait]
impl ToolCacheStore for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StageError> {
        let mut c = self.connection.clone();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .map_err(redis_error)
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StageError> {
        let mut c = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<()>(&mut c)
            .await
            .map_err(redis_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_call_in_any_key_order_has_one_key() {
        let a = cache_key(
            "run/p",
            "order_status",
            r#"{"order_id":"1234","verbose":false}"#,
        );
        let b = cache_key(
            "run/p",
            "order_status",
            r#"{ "verbose": false, "order_id": "1234" }"#,
        );
        let c = cache_key(
            "run/p",
            "order_status",
            r#"{"order_id":"1235","verbose":false}"#,
        );
        let d = cache_key(
            "run/q",
            "order_status",
            r#"{"order_id":"1234","verbose":false}"#,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert!(a.starts_with("run/p:tool:order_status:"));
    }

    #[test]
    fn arguments_must_be_a_json_object() {
        assert!(parse_arguments(r#"{"a":1}"#).is_ok());
        assert!(parse_arguments("").is_ok());
        let e = parse_arguments(r#"{"a":"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("malformed"), "{e}");
        assert_eq!(
            parse_arguments("[1]").unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    #[tokio::test]
    async fn the_memory_cache_forgets_after_its_ttl() {
        let cache = MemoryCache::default();
        cache
            .put("k", "v", Duration::from_millis(30))
            .await
            .unwrap();
        assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("k").await.unwrap(), None);
    }
}
