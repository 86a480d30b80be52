//! Deepgram live messages (`deepgram::parse_message`): every server message, mutated as JSON
//! and as bytes, gives an event, nothing (a type the pipeline ignores) or a `Protocol` error.

use latlab_core::backends::deepgram::parse_message;
use latlab_core::stage::SttEvent;
use latlab_core::timing::ErrorKind;
use proptest::prelude::*;

use crate::mutate::{apply_text, cases, few_byte_edits, json_value, mutate_json_text, tree_edits};

const VOCABULARY: &[&str] = &[
    "type",
    "Results",
    "UtteranceEnd",
    "SpeechStarted",
    "Metadata",
    "Error",
    "channel",
    "alternatives",
    "transcript",
    "words",
    "confidence",
    "start",
    "duration",
    "is_final",
    "speech_final",
    "from_finalize",
    "last_word_end",
    "timestamp",
    "description",
    "message",
    "channel_index",
];

const MESSAGES: &[&str] = &[
    r#"{"type":"Results","channel_index":[0,1],"duration":1.5,"start":0.5,"is_final":true,"speech_final":true,"from_finalize":false,"channel":{"alternatives":[{"transcript":"hello there","confidence":0.98,"words":[{"word":"hello","start":0.5,"end":0.9}]}]},"metadata":{"request_id":"x"}}"#,
    r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.1}"#,
    r#"{"type":"SpeechStarted","channel":[0],"timestamp":0.81}"#,
    r#"{"type":"Metadata","request_id":"r","duration":3.2,"channels":1}"#,
    r#"{"type":"Error","description":"bad audio","message":"m","variant":"x"}"#,
];

fn check(text: &str) -> Result<(), TestCaseError> {
    match parse_message(text) {
        Ok(Some(SttEvent::Transcript {
            audio_start_ms,
            audio_end_ms,
            ..
        })) => {
            // JSON has no NaN; a huge number may overflow to infinity, which the pipeline's
            // turn lookup handles.
            prop_assert!(!audio_start_ms.is_nan() && !audio_end_ms.is_nan());
        }
        Ok(_) => {}
        Err(e) => prop_assert_eq!(e.kind, ErrorKind::Protocol),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn mutated_messages_are_events_or_protocol_errors(
        seed in 0..MESSAGES.len(),
        tree in tree_edits(4, json_value(VOCABULARY), VOCABULARY),
        bytes in few_byte_edits(2),
    ) {
        let text = apply_text(&mutate_json_text(MESSAGES[seed], &tree), &bytes);
        check(&text)?;
    }

    #[test]
    fn any_text_is_an_event_or_a_protocol_error(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn any_json_is_an_event_or_a_protocol_error(value in json_value(VOCABULARY)) {
        check(&value.to_string())?;
    }
}
