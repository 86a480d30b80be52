//! Tool calls on loopback, against datasets/tools: the LLM streams a turn's tool call in
//! OpenAI's `tool_calls` shape and speaks the reply once the result is in the conversation;
//! the tool API answers scripted and generated results, and each fault, to reqwest and to
//! latlab-core's real client (`latlab_core::tools::Tools`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use latlab_core::backends::{SESSION_HEADER, Timeouts};
use latlab_core::dataset::{Dataset, ExpectedTool};
use latlab_core::timing::ErrorKind;
use latlab_core::tools::{ToolSpec, Tools};
use latlab_emulator::{Emulator, EmulatorConfig, Faults, Timing};
use serde_json::{Value, json};

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/tools")
}

/// Loaded once: validating its WAVs is most of a test's time in a debug build.
fn dataset() -> Arc<Dataset> {
    static DATASET: OnceLock<Arc<Dataset>> = OnceLock::new();
    DATASET
        .get_or_init(|| Arc::new(Dataset::load(&dir()).expect("the tools dataset loads")))
        .clone()
}

fn specs() -> Vec<ToolSpec> {
    let text = std::fs::read_to_string(dir().join("tools.json")).unwrap();
    serde_json::from_str(&text).expect("tools.json is a list of function definitions")
}

/// OpenAI's `tools` array.
fn definitions() -> Value {
    specs()
        .iter()
        .map(|f| {
            json!({"type": "function", "function": {
                "name": f.name, "description": f.description, "parameters": f.parameters,
            }})
        })
        .collect()
}

fn fast() -> EmulatorConfig {
    let mut c = EmulatorConfig {
        seed: 7,
        ..EmulatorConfig::default()
    };
    c.llm.ttft = Timing::constant(5.0);
    c.llm.inter_token = Timing::constant(1.0);
    c.tools.latency = Timing::constant(30.0);
    c
}

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, Some(dataset())).await.unwrap()
}

/// The text and expected tool of `call`'s turn `turn`.
fn turn(call: &str, turn: usize) -> (String, Option<ExpectedTool>, Option<String>) {
    let data = dataset();
    let c = data.calls.iter().find(|c| c.id == call).unwrap();
    let t = &c.turns[turn];
    (t.text.clone(), t.tool.clone(), t.reply.clone())
}

async fn chat(emu: &Emulator, session: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", emu.llm_url()))
        .header(SESSION_HEADER, session)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The JSON chunks of an SSE body, and whether it ended with `[DONE]`.
fn sse_chunks(body: &str) -> (Vec<Value>, bool) {
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("a data line"))
        .collect();
    let done = events.last() == Some(&"[DONE]");
    let chunks = events
        .iter()
        .filter(|e| **e != "[DONE]")
        .map(|e| serde_json::from_str(e).expect("each chunk is JSON"))
        .collect();
    (chunks, done)
}

/// A streamed tool call assembled from its deltas as a client does.
#[derive(Debug, Default)]
struct Assembled {
    id: String,
    name: String,
    arguments: String,
    fragments: usize,
    finish: String,
    usage: Option<Value>,
    text: String,
}

fn assemble(chunks: &[Value]) -> Assembled {
    let mut a = Assembled::default();
    for c in chunks {
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            a.usage = Some(u.clone());
        }
        let Some(choice) = c["choices"].get(0) else {
            continue;
        };
        if let Some(reason) = choice["finish_reason"].as_str() {
            a.finish = reason.to_string();
        }
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str() {
            a.text.push_str(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            assert_eq!(call["index"], 0);
            if let Some(id) = call["id"].as_str() {
                a.id = id.to_string();
                assert_eq!(call["type"], "function");
            }
            if let Some(name) = call["function"]["name"].as_str() {
                a.name.push_str(name);
            }
            if let Some(args) = call["function"]["arguments"].as_str()
                && !args.is_empty()
            {
                a.arguments.push_str(args);
                a.fragments += 1;
            }
        }
    }
    a
}

fn user_request(text: &str, stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You answer customers of a home-goods company."},
            {"role": "user", "content": text},
        ],
        "stream": stream,
        "stream_options": {"include_usage": true},
        "tools": definitions(),
        "tool_choice": "auto",
        "parallel_tool_calls": false,
    })
}

#[tokio::test]
async fn a_tool_turn_streams_its_call_then_the_reply() {
    let emu = start(fast()).await;
    let (text, tool, reply) = turn("tools-01", 0);
    let tool = tool.unwrap();
    let mut request = user_request(&text, true);
    let response = chat(&emu, "tools-01#0", &request).await;
    assert_eq!(response.status(), 200);
    let (chunks, done) = sse_chunks(&response.text().await.unwrap());
    assert!(done);
    // The first delta names the call with empty arguments, as OpenAI's does.
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert!(first["content"].is_null());
    assert_eq!(first["tool_calls"][0]["function"]["arguments"], "");
    let call = assemble(&chunks);
    assert!(call.id.starts_with("call_"), "{}", call.id);
    assert_eq!(call.name, tool.name);
    assert!(call.fragments >= 3, "arguments come in pieces: {call:?}");
    let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(arguments, Value::Object(tool.arguments.clone()));
    assert_eq!(call.finish, "tool_calls");
    assert!(call.text.is_empty());
    assert_eq!(call.usage.unwrap()["completion_tokens"], call.fragments);
    // The finishing choice chunk has an empty delta.
    let finishing = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "tool_calls")
        .unwrap();
    assert_eq!(finishing["choices"][0]["delta"], json!({}));

    // Second request: the assistant's call (content null) and the tool's result.
    let result = tool.result.clone().unwrap();
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments}}],
    }));
    messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": result.to_string()}));
    // A profile-prefixed session (an agent run's) finds the same call.
    let response = chat(&emu, "profile-a/tools-01#0", &request).await;
    assert_eq!(response.status(), 200);
    let (chunks, done) = sse_chunks(&response.text().await.unwrap());
    assert!(done);
    let answer = assemble(&chunks);
    assert_eq!(answer.text, reply.unwrap());
    assert_eq!(answer.finish, "stop");
    assert!(answer.name.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn turns_without_a_tool_or_requests_without_tools_stream_text() {
    let emu = start(fast()).await;
    // A turn the dataset answers without a tool, asked with tools.
    let (text, tool, reply) = turn("tools-01", 2);
    assert!(tool.is_none());
    let response = chat(&emu, "tools-01#0", &user_request(&text, true)).await;
    let answer = assemble(&sse_chunks(&response.text().await.unwrap()).0);
    assert_eq!(answer.text, reply.unwrap());
    assert_eq!(answer.finish, "stop");
    assert!(answer.name.is_empty());
    // A tool turn asked without `tools`: the reply, as before tools existed.
    let (text, _, reply) = turn("tools-04", 1);
    let mut request = user_request(&text, true);
    request.as_object_mut().unwrap().remove("tools");
    let response = chat(&emu, "tools-04#1", &request).await;
    let answer = assemble(&sse_chunks(&response.text().await.unwrap()).0);
    assert_eq!(answer.text, reply.unwrap());
    assert!(answer.name.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_whole_completion_carries_the_tool_call() {
    let emu = start(fast()).await;
    let (text, tool, _) = turn("tools-06", 1);
    let tool = tool.unwrap();
    let response = chat(&emu, "tools-06#0", &user_request(&text, false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    assert!(message["content"].is_null());
    let call = &message["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["name"], tool.name.as_str());
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, Value::Object(tool.arguments));
    emu.shutdown().await;
}

#[tokio::test]
async fn malformed_tool_arguments_do_not_parse() {
    let mut config = fast();
    config.llm.malformed_tool_arguments = 1.0;
    let emu = start(config).await;
    let (text, _, _) = turn("tools-02", 0);
    let response = chat(&emu, "tools-02#0", &user_request(&text, true)).await;
    let call = assemble(&sse_chunks(&response.text().await.unwrap()).0);
    assert_eq!(call.name, "get_order_status");
    assert!(
        serde_json::from_str::<Value>(&call.arguments).is_err(),
        "{}",
        call.arguments
    );
    assert!(latlab_core::tools::parse_arguments(&call.arguments).is_err());
    assert_eq!(emu.stats().llm.faults.malformed, 1);
    emu.shutdown().await;
}

async fn post(emu: &Emulator, name: &str, session: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/{name}", emu.tools_url()))
        .header(SESSION_HEADER, session)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_tool_api_answers_scripted_results_after_its_latency() {
    let emu = start(fast()).await;
    let (_, tool, _) = turn("tools-01", 1);
    let tool = tool.unwrap();
    // The arguments in another key order than the dataset's still find the script.
    let mut keys: Vec<_> = tool.arguments.iter().collect();
    keys.reverse();
    let body = format!(
        "{{{}}}",
        keys.iter()
            .map(|(k, v)| format!("{}:{v}", Value::String((*k).clone())))
            .collect::<Vec<_>>()
            .join(",")
    );
    let started = Instant::now();
    let response = post(&emu, &tool.name, "tools-07#0", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-latlab-tool-result"], "scripted");
    let result: Value = response.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(result, tool.result.unwrap());
    let stats = emu.stats().tools;
    assert_eq!(stats.requests, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn generated_results_are_deterministic_per_seed() {
    let body = r#"{"order_id": "99999"}"#;
    let emu = start(fast()).await;
    let a = post(&emu, "get_order_status", "tools-01#0", body).await;
    assert_eq!(a.headers()["x-latlab-tool-result"], "generated");
    let a: Value = a.json().await.unwrap();
    let b: Value = post(&emu, "get_order_status", "tools-09#3", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a, b, "the same call gets the same record in every session");
    assert_eq!(a["tool"], "get_order_status");
    assert_eq!(a["query"], json!({"order_id": "99999"}));
    emu.shutdown().await;
    let mut other = fast();
    other.seed = 8;
    let emu = start(other).await;
    let c: Value = post(&emu, "get_order_status", "tools-01#0", body)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(a, c, "another seed, another record");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_tool_api_rejects_bad_bodies_and_unknown_names() {
    let mut config = fast();
    config.tools.names = specs().into_iter().map(|s| s.name).collect();
    let emu = start(config).await;
    for body in ["[1, 2]", "\"x\"", "{\"order_id\": ", ""] {
        let response = post(&emu, "get_order_status", "s#0", body).await;
        assert_eq!(response.status(), 400, "{body:?}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].is_string());
    }
    let response = post(&emu, "launch_rockets", "s#0", "{}").await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("launch_rockets")
    );
    emu.shutdown().await;
}

fn client(emu: &Emulator) -> Tools {
    Tools::new(
        "emulator",
        emu.tools_url(),
        specs(),
        None,
        Timeouts {
            connect_ms: 2_000,
            response_ms: 2_000,
            stall_ms: 300,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn latlab_core_s_client_calls_the_tool_api() {
    let emu = start(fast()).await;
    let tools = client(&emu);
    let (_, tool, _) = turn("tools-03", 0);
    let tool = tool.unwrap();
    let arguments = Value::Object(tool.arguments.clone()).to_string();
    let result = tools
        .call(&tool.name, &arguments, "tools-03#0", true)
        .await
        .unwrap();
    let content: Value = serde_json::from_str(&result.content).unwrap();
    assert_eq!(content, tool.result.unwrap());
    assert_eq!(result.bytes as usize, content.to_string().len());
    emu.shutdown().await;
}

#[tokio::test]
async fn each_fault_reaches_the_client_as_its_kind() {
    let cases = [
        ("http_5xx", ErrorKind::Http),
        ("stall", ErrorKind::Stall),
        ("disconnect", ErrorKind::Disconnected),
        ("malformed", ErrorKind::Protocol),
        ("refuse", ErrorKind::Connect),
    ];
    for (kind, expected) in cases {
        let mut config = fast();
        config.tools.faults = Faults::always(kind).unwrap();
        let emu = start(config).await;
        let tools = client(&emu);
        let err = tools
            .call(
                "get_order_status",
                r#"{"order_id":"48152"}"#,
                "tools-01#0",
                false,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, expected, "{kind}: {err:?}");
        if kind == "http_5xx" {
            assert_eq!(err.status, Some(503));
        }
        let faults = emu.stats().tools.faults;
        let counted = match kind {
            "http_5xx" => faults.http_5xx,
            "stall" => faults.stall,
            "disconnect" => faults.disconnect,
            "malformed" => faults.malformed,
            _ => faults.refuse,
        };
        assert!(counted >= 1, "{kind}: {faults:?}");
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn an_http_5xx_answers_a_json_error_body() {
    let mut config = fast();
    config.tools.faults = Faults::always("http_5xx").unwrap();
    let emu = start(config).await;
    let response = post(&emu, "get_store_hours", "s#0", r#"{"store":"downtown"}"#).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    emu.shutdown().await;
}

/// The dataset's shape, as datasets/README.md documents it: tool arguments repeat across
/// calls, so a tool cache's hit rate means something.
#[test]
fn the_tools_dataset_repeats_its_tool_calls() {
    let data = dataset();
    let defined: HashSet<String> = specs().into_iter().map(|s| s.name).collect();
    assert_eq!(defined.len(), 3);
    assert_eq!(data.calls.len(), 12);
    let turns: Vec<_> = data.calls.iter().flat_map(|c| &c.turns).collect();
    assert_eq!(turns.len(), 31);
    let tools: Vec<&ExpectedTool> = turns.iter().filter_map(|t| t.tool.as_ref()).collect();
    assert_eq!(tools.len(), 25);
    for (t, tool) in turns.iter().filter_map(|t| t.tool.as_ref().map(|x| (t, x))) {
        assert!(defined.contains(&tool.name), "{}", tool.name);
        assert!(tool.result.is_some() && t.reply.is_some(), "{}", t.text);
    }
    let distinct: HashSet<String> = tools
        .iter()
        .map(|t| {
            latlab_core::tools::cache_key(
                "k",
                &t.name,
                &Value::Object(t.arguments.clone()).to_string(),
            )
        })
        .collect();
    assert_eq!(distinct.len(), 9);
}
