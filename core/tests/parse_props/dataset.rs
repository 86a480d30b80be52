//! The dataset manifest (`manifest.jsonl` through `Dataset::load`): valid lines mutated as
//! JSON and as bytes, next to real WAV files, give a dataset or a `DatasetError` naming the
//! line; a dataset that loads keeps every promise the runner relies on.

use std::path::Path;

use latlab_core::dataset::{Dataset, MANIFEST_FILE};
use proptest::prelude::*;

use crate::mutate::{
    TreeEdit, apply_json, apply_text, cases, few_byte_edits, json_value, rewrite, tree_edits,
};
use crate::wav::WavParts;

const VOCABULARY: &[&str] = &[
    "id",
    "audio",
    "sample_rate",
    "turns",
    "start_ms",
    "end_ms",
    "text",
    "reply",
    "meta",
    "a.wav",
    "b.wav",
    "missing.wav",
    "manifest.jsonl",
    ".",
    "call-01",
    "c2",
];

const LINES: &[&str] = &[
    r#"{"id":"call-01","audio":"a.wav","sample_rate":16000,"turns":[{"start_ms":100,"end_ms":400,"text":"hello there","reply":"hi"},{"start_ms":500,"end_ms":1000,"text":"bye"}],"meta":{"voice":"x","snr":25}}"#,
    r#"{"id":"c2","audio":"b.wav","sample_rate":8000,"turns":[{"start_ms":0,"end_ms":500,"text":"x"}]}"#,
];

/// A folder with the WAVs the seed lines name: `a.wav` 1 s at 16 kHz, `b.wav` 0.5 s at 8 kHz.
/// One per test thread; each case rewrites only the manifest.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tone = |n: usize| {
        (0..n)
            .map(|i| (i % 200) as i16 * 50 - 5000)
            .collect::<Vec<_>>()
    };
    let write = |name: &str, rate: u32, n: usize| {
        std::fs::write(
            dir.path().join(name),
            WavParts::pcm16(rate, &tone(n)).bytes(),
        )
        .unwrap();
    };
    write("a.wav", 16_000, 16_000);
    write("b.wav", 8_000, 4_000);
    dir
}

thread_local! {
    static FOLDER: tempfile::TempDir = folder();
}

fn check(dir: &Path, manifest: &[u8]) -> Result<(), TestCaseError> {
    rewrite(&dir.join(MANIFEST_FILE), manifest);
    let Ok(dataset) = Dataset::load(dir) else {
        return Ok(());
    };
    prop_assert!(!dataset.calls.is_empty());
    let mut ids = std::collections::HashSet::new();
    for call in &dataset.calls {
        prop_assert!(ids.insert(call.id.clone()), "duplicate id {}", call.id);
        prop_assert!(call.sample_rate >= 8000);
        prop_assert!(!call.turns.is_empty());
        let mut end = 0;
        for turn in &call.turns {
            prop_assert!(turn.start_ms >= end && turn.start_ms < turn.end_ms);
            prop_assert!(turn.end_ms <= call.duration_ms);
            end = turn.end_ms;
        }
        let samples = call
            .load_samples()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            samples.len() as u64 * 1000 / u64::from(call.sample_rate),
            call.duration_ms
        );
    }
    Ok(())
}

/// One manifest line: a seed line with tree and byte edits.
fn line() -> impl Strategy<Value = String> {
    (
        0..LINES.len(),
        tree_edits(3, json_value(VOCABULARY), VOCABULARY),
        few_byte_edits(2),
    )
        .prop_map(
            |(seed, tree, bytes): (usize, Vec<TreeEdit<serde_json::Value>>, _)| {
                let mut value: serde_json::Value = serde_json::from_str(LINES[seed]).unwrap();
                apply_json(&mut value, &tree);
                apply_text(&value.to_string(), &bytes)
            },
        )
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn mutated_manifests_load_or_name_their_error(
        lines in prop::collection::vec(line(), 1..4),
        crlf in any::<bool>(),
        blank in any::<bool>(),
    ) {
        let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
        if blank {
            text.push_str("\n\n   \n");
        }
        FOLDER.with(|dir| check(dir.path(), text.as_bytes()))?;
    }

    #[test]
    fn any_bytes_are_a_manifest_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        FOLDER.with(|dir| check(dir.path(), &bytes))?;
    }
}
