//! OpenAI Chat Completions: the SSE chunk sequence, usage, [DONE], whole replies, timing
//! determinism and the request's rejections.

use std::time::{Duration, Instant};

use latlab_emulator::LlmConfig;
use latlab_emulator::llm::{Replies, plan_completion};
use serde_json::{Value, json};

use crate::common::{self, REPLY1, TURN1};

/// The `data:` payloads of an SSE body.
pub fn events(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .expect("every event is a data line")
        })
        .collect()
}

pub fn request(stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful agent."},
            {"role": "user", "content": format!("  {}  ", TURN1.to_uppercase())},
        ],
        "stream": stream,
        "stream_options": {"include_usage": true},
        "temperature": 0.2,
    })
}

#[tokio::test]
async fn streams_the_dataset_reply_as_openai_chunks() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let started = Instant::now();
    let response = common::http()
        .post(format!("{}/chat/completions", emu.llm_url()))
        .json(&request(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(20),
        "ttft is 20 ms"
    );
    let events = events(&body);
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-4o-mini");
        assert_eq!(c["system_fingerprint"], "fp_latlab");
        assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    let n = chunks.len();
    let text: String = chunks[1..n - 2]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, REPLY1);
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "I");
    assert_eq!(chunks[2]["choices"][0]["delta"]["content"], " am");
    let finish = &chunks[n - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[n - 1];
    assert_eq!(usage["choices"], json!([]));
    let completion = (n - 3) as u64;
    assert_eq!(usage["usage"]["completion_tokens"], completion);
    assert_eq!(usage["usage"]["prompt_tokens"], 10);
    assert_eq!(usage["usage"]["total_tokens"], 10 + completion);
    assert_eq!(emu.stats().llm.requests, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn whole_reply_and_max_tokens() {
    let (emu, _dir) = common::start(common::fast_config()).await;
    let mut body = request(false);
    body["messages"][1]["content"] = json!("something the dataset does not know");
    body["max_tokens"] = json!(3);
    let reply: Value = common::http()
        .post(format!("{}/chat/completions", emu.llm_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["choices"][0]["message"]["role"], "assistant");
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(reply["usage"]["completion_tokens"], 3);
    assert!(
        !reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn first_token_waits_for_the_configured_ttft() {
    let mut config = common::fast_config();
    config.llm.ttft = latlab_emulator::Timing::constant(150.0);
    let (emu, _dir) = common::start(config).await;
    let started = Instant::now();
    let mut response = common::http()
        .post(format!("{}/chat/completions", emu.llm_url()))
        .json(&request(true))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    let ttft = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("assistant"));
    assert!(ttft >= Duration::from_millis(150), "{ttft:?}");
    assert!(ttft < Duration::from_millis(1500), "{ttft:?}");
    emu.shutdown().await;
}

#[test]
fn same_seed_same_request_same_schedule() {
    let config = LlmConfig::default();
    let replies = Replies::default();
    let messages = json!([{"role": "user", "content": "what time is it"}]);
    let plans: Vec<_> = (0..3)
        .map(|_| plan_completion(7, "", &config, &replies, &messages, None))
        .collect();
    assert_eq!(plans[0], plans[1]);
    assert_eq!(plans[1], plans[2]);
    let other = json!([{"role": "user", "content": "what day is it"}]);
    assert_ne!(
        plan_completion(7, "", &config, &replies, &other, None).token_offsets,
        plans[0].token_offsets
    );
}

#[tokio::test]
async fn rejects_bad_keys_and_bad_json() {
    let mut config = common::fast_config();
    config.llm.api_key = Some("sk-test".into());
    let (emu, _dir) = common::start(config).await;
    let url = format!("{}/chat/completions", emu.llm_url());
    let response = common::http()
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&request(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let response = common::http()
        .post(&url)
        .bearer_auth("sk-test")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let response = common::http()
        .post(&url)
        .bearer_auth("sk-test")
        .json(&request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    emu.shutdown().await;
}
