//! OpenAI Chat Completions SSE streams: `openai::SseBuffer` cuts the body into events however
//! the network chunks it, and `openai::parse_event` turns any event into content, usage,
//! `[DONE]`, nothing, or a `Protocol` error.

use latlab_core::backends::openai::{MAX_SSE_EVENT_BYTES, SseBuffer, SseEvent, parse_event};
use latlab_core::timing::ErrorKind;
use proptest::prelude::*;

use crate::mutate::{
    apply_text, cases, few_byte_edits, json_value, mutate_json_text, split_at_cuts, tree_edits,
};

const VOCABULARY: &[&str] = &[
    "id",
    "object",
    "choices",
    "delta",
    "content",
    "role",
    "assistant",
    "index",
    "finish_reason",
    "stop",
    "usage",
    "completion_tokens",
    "prompt_tokens",
    "error",
    "message",
    "[DONE]",
];

const CHUNKS: &[&str] = &[
    r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"c","choices":[{"index":0,"delta":{"content":" Hi"},"finish_reason":null}]}"#,
    r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
    r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10}}"#,
    r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
];

/// One event's text (its lines joined by `\n`; the stream picks the line ending).
fn event() -> impl Strategy<Value = Vec<String>> {
    let data = (
        0..CHUNKS.len(),
        tree_edits(3, json_value(VOCABULARY), VOCABULARY),
        few_byte_edits(1),
    )
        .prop_map(|(seed, tree, bytes)| apply_text(&mutate_json_text(CHUNKS[seed], &tree), &bytes))
        .boxed();
    prop_oneof![
        6 => data.clone().prop_map(|d| vec![format!("data: {d}")]),
        1 => data.clone().prop_map(|d| vec![format!("data:{d}")]),
        1 => Just(vec!["data: [DONE]".to_string()]),
        1 => Just(vec![": keep-alive".to_string()]),
        1 => data.clone().prop_map(|d| vec!["event: message".into(), format!("data: {d}"), "id: 7".into()]),
        // One JSON document over two data lines (joined with a newline, as SSE says).
        1 => data.prop_map(|d| {
            let cut = d.char_indices().map(|(i, _)| i).nth(d.chars().count() / 2).unwrap_or(0);
            vec![format!("data: {}", &d[..cut]), format!("data: {}", &d[cut..])]
        }),
        1 => "[^\r\n]{0,40}".prop_map(|garbage| vec![garbage]),
    ]
}

/// The events `buffer` gives for these chunks, and the error that ended them, if any.
fn events_of(chunks: &[Vec<u8>]) -> (Vec<String>, Option<String>) {
    let mut buffer = SseBuffer::default();
    let mut events = Vec::new();
    for chunk in chunks {
        buffer.push(chunk);
        loop {
            match buffer.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e.message)),
            }
        }
    }
    (events, None)
}

fn check_event(event: &str) -> Result<(), TestCaseError> {
    match parse_event(event) {
        Ok(Some(SseEvent::Content(pieces))) => prop_assert!(pieces.iter().all(|p| !p.is_empty())),
        Ok(_) => {}
        Err(e) => prop_assert_eq!(e.kind, ErrorKind::Protocol),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn streams_split_anywhere_give_the_same_events(
        events in prop::collection::vec(event(), 0..8),
        crlf in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let texts: Vec<String> = events.iter().map(|lines| lines.join(eol)).collect();
        let mut body = String::new();
        for text in &texts {
            body.push_str(text);
            body.push_str(eol);
            body.push_str(eol);
        }
        let whole = events_of(&[body.as_bytes().to_vec()]);
        let chunked = events_of(&split_at_cuts(body.as_bytes(), &cuts));
        prop_assert_eq!(&whole, &chunked);
        // Events whose lines hold no line break come out exactly as sent.
        let expected: Vec<String> = events
            .iter()
            .map(|lines| lines.join("\n"))
            .collect();
        if events.iter().flatten().all(|l| !l.contains(['\r', '\n'])) {
            let got: Vec<String> = whole.0.iter().map(|e| e.replace("\r\n", "\n")).collect();
            prop_assert_eq!(got, expected);
        }
        for event in &whole.0 {
            check_event(event)?;
        }
    }

    #[test]
    fn any_bytes_split_anywhere_give_the_same_events(
        body in prop::collection::vec(prop::sample::select(&b"data: {}[]\"\r\n:x"[..]), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let whole = events_of(std::slice::from_ref(&body));
        prop_assert_eq!(&whole, &events_of(&split_at_cuts(&body, &cuts)));
        for event in &whole.0 {
            check_event(event)?;
        }
    }

    #[test]
    fn any_event_text_parses_or_is_a_protocol_error(text in any::<String>()) {
        check_event(&text)?;
        check_event(&format!("data: {text}"))?;
    }
}

#[test]
fn an_endless_event_is_an_error_not_a_growing_buffer() {
    let mut buffer = SseBuffer::default();
    let piece = vec![b'x'; 64 * 1024];
    let mut failed = false;
    for _ in 0..(MAX_SSE_EVENT_BYTES / piece.len() + 2) {
        buffer.push(&piece);
        match buffer.next_event() {
            Ok(None) => {}
            Ok(Some(e)) => panic!("no event was sent, got {} bytes", e.len()),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Protocol);
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "a {MAX_SSE_EVENT_BYTES}-byte event without an end must fail"
    );
}

#[test]
fn a_separator_split_across_chunks_is_found() {
    let mut buffer = SseBuffer::default();
    let mut events = Vec::new();
    for chunk in [&b"data: 1\r"[..], b"\n\r", b"\ndata: 2\n", b"\n"] {
        buffer.push(chunk);
        while let Some(e) = buffer.next_event().unwrap() {
            events.push(e);
        }
    }
    assert_eq!(events, ["data: 1", "data: 2"]);
}
