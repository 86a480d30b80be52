//! The emulated tool API: a "company API" that an agent's tool calls run against.
//! `POST /{name}` with the call's arguments as a JSON object answers, after a seeded
//! `latency`, with JSON: the dataset's scripted `result` for a turn whose expected tool has
//! this name and these arguments (compared canonically, whatever the key order), else a
//! record generated from the seed, the name and the arguments alone — so the same call gets
//! the same answer in every session, as a cache in front of it assumes.
//!
//! Latency and faults are drawn per session and call, like every service's; this module never
//! calls a real API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use latlab_core::dataset::Dataset;
use latlab_core::tools::cache_key;
use rand::RngExt;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::Shutdown;
use crate::config::ToolsConfig;
use crate::faults::Fault;
use crate::seed::{self, Stream};
use crate::stats::ServiceCounters;
use crate::stream::{Ending, Timed, timed_body};

/// The service name used in seeding.
pub const SERVICE: &str = "tools";

/// The emulator's own response header: `scripted` when the answer is the dataset's result,
/// `generated` otherwise (for tests and debugging; a real API does not send it).
pub const SOURCE_HEADER: &str = "x-latlab-tool-result";

const STATUSES: &[&str] = &[
    "confirmed",
    "pending",
    "in_progress",
    "completed",
    "unavailable",
];

/// The dataset's scripted tool results, by tool name and canonical arguments.
#[derive(Debug, Clone, Default)]
pub struct ScriptedResults {
    by_call: HashMap<String, Value>,
}

/// The key of a call: its name and its arguments with keys sorted.
fn call_key(name: &str, arguments: &Map<String, Value>) -> String {
    cache_key(SERVICE, name, &Value::Object(arguments.clone()).to_string())
}

impl ScriptedResults {
    /// Every turn of `dataset` whose tool has a scripted `result` (the first one wins when
    /// two turns script the same call).
    pub fn from_dataset(dataset: Option<&Dataset>) -> ScriptedResults {
        let mut results = ScriptedResults::default();
        let tools = dataset
            .into_iter()
            .flat_map(|d| d.calls.iter())
            .flat_map(|c| c.turns.iter())
            .filter_map(|t| t.tool.as_ref());
        for tool in tools {
            if let Some(result) = &tool.result {
                results
                    .by_call
                    .entry(call_key(&tool.name, &tool.arguments))
                    .or_insert_with(|| result.clone());
            }
        }
        results
    }

    /// The scripted result of `name` called with `arguments`.
    pub fn lookup(&self, name: &str, arguments: &Map<String, Value>) -> Option<&Value> {
        self.by_call.get(&call_key(name, arguments))
    }
}

/// The record the API answers for a call the dataset does not script: it depends only on the
/// seed, the tool's name and its (canonical) arguments.
pub fn generated_result(seed: u64, name: &str, arguments: &Map<String, Value>) -> Value {
    let key = call_key(name, arguments);
    let mut rng = seed::request_rng(seed, SERVICE, key.as_bytes(), Stream::Content);
    let status = STATUSES[rng.random_range(0..STATUSES.len())];
    let day = rng.random_range(1..=28);
    let hour = rng.random_range(8..=18);
    json!({
        "id": format!("rec_{}", seed::hex_id(seed, SERVICE, key.as_bytes(), 12)),
        "tool": name,
        "query": arguments,
        "status": status,
        "updated_at": format!("2025-03-{day:02}T{hour:02}:00:00Z"),
        "value": rng.random_range(1..=999),
    })
}

/// Everything about one tool call decided before the response is built.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolPlan {
    /// From the request's arrival (received whole) to the response.
    pub latency: Duration,
    /// The fault drawn for this call.
    pub fault: Fault,
    /// The result.
    pub result: Value,
    /// Whether the result is the dataset's.
    pub scripted: bool,
}

/// Plans the answer to `name` called with `arguments` in `session` under `seed`.
pub fn plan_tool_call(
    seed: u64,
    session: &str,
    config: &ToolsConfig,
    scripted: &ScriptedResults,
    name: &str,
    arguments: &Map<String, Value>,
) -> ToolPlan {
    let key = [session, "\n", &call_key(name, arguments)].concat();
    let latency = config.latency.sample(&mut seed::request_rng(
        seed,
        SERVICE,
        key.as_bytes(),
        Stream::Timing,
    ));
    let fault = config.faults.draw(&mut seed::request_rng(
        seed,
        SERVICE,
        key.as_bytes(),
        Stream::Fault,
    ));
    let (result, scripted) = match scripted.lookup(name, arguments) {
        Some(result) => (result.clone(), true),
        None => (generated_result(seed, name, arguments), false),
    };
    ToolPlan {
        latency,
        fault,
        result,
        scripted,
    }
}

/// What the handlers share.
pub(crate) struct ToolsState {
    /// The run's seed.
    pub seed: u64,
    /// This service's config.
    pub config: ToolsConfig,
    /// Results the dataset scripts.
    pub scripted: ScriptedResults,
    /// This service's counters.
    pub counters: Arc<ServiceCounters>,
    /// Fires when the emulator stops.
    pub shutdown: Shutdown,
}

/// The router of the tool API.
pub(crate) fn router(state: Arc<ToolsState>) -> Router {
    Router::new().route("/{name}", post(call)).with_state(state)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "error": { "message": message, "type": kind } });
    (status, axum::Json(body)).into_response()
}

async fn call(
    State(state): State<Arc<ToolsState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    state.counters.request();
    if !crate::bearer_authorized(state.config.api_key.as_deref(), &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Invalid API key.",
        );
    }
    if !state.config.names.is_empty() && !state.config.names.contains(&name) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("There is no tool named {name:?}."),
        );
    }
    let arguments = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The body must be a JSON object of the tool's arguments.",
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The body is not JSON: {e}"),
            );
        }
    };
    let plan = plan_tool_call(
        state.seed,
        crate::session_of(&headers),
        &state.config,
        &state.scripted,
        &name,
        &arguments,
    );
    state.counters.fault(plan.fault);
    if plan.fault == Fault::Http5xx {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The service is temporarily unavailable. (emulated)",
        );
    }
    let source = if plan.scripted {
        "scripted"
    } else {
        "generated"
    };
    let respond = |body: Body| {
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(SOURCE_HEADER, HeaderValue::from_static(source));
        response
    };
    let bytes = Bytes::from(plan.result.to_string());
    let half = bytes.slice(..bytes.len() / 2);
    let at = plan.latency;
    // Like the LLM's whole responses: a stall or a disconnect sends half of the body first.
    let (chunks, ending) = match plan.fault {
        Fault::Stall => (vec![Timed { at, bytes: half }], Ending::StallAfter(1)),
        Fault::Disconnect => (vec![Timed { at, bytes: half }], Ending::DisconnectAfter(1)),
        Fault::Malformed => (
            vec![Timed {
                at,
                bytes: Bytes::from_static(b"{\"result\": broken"),
            }],
            Ending::Complete,
        ),
        Fault::None | Fault::Http5xx => {
            tokio::select! {
                _ = tokio::time::sleep_until(start + at) => {}
                _ = state.shutdown.clone().wait() => {}
            }
            return respond(Body::from(bytes));
        }
    };
    respond(timed_body(
        start,
        chunks,
        ending,
        state.shutdown.clone(),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn generated_results_depend_on_seed_name_and_arguments_only() {
        let a = args(json!({"order_id": "48152", "zip": "02139"}));
        let b = args(json!({"zip": "02139", "order_id": "48152"}));
        assert_eq!(generated_result(1, "f", &a), generated_result(1, "f", &b));
        assert_ne!(generated_result(1, "f", &a), generated_result(2, "f", &a));
        assert_ne!(generated_result(1, "f", &a), generated_result(1, "g", &a));
        let config = ToolsConfig::default();
        let none = ScriptedResults::default();
        let p = plan_tool_call(1, "call-01#0", &config, &none, "f", &a);
        let q = plan_tool_call(1, "call-02#0", &config, &none, "f", &a);
        assert_eq!(p.result, q.result);
        assert_ne!(p.latency, q.latency);
        assert!(!p.scripted);
    }
}
