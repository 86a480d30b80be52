//! Dataset WAV files (`dataset::probe_wav`, `Call::load_samples`, both on hound): a lying
//! header gives an error, never a panic or an allocation the size of a header field; a file
//! the probe accepts loads exactly the frames it promised.

use std::path::Path;

use latlab_core::dataset::{Call, probe_wav};
use proptest::prelude::*;

use crate::mutate::{apply_bytes, byte_edits, cases, rewrite};
use crate::wav::wav_parts;

fn call_of(path: &Path) -> Call {
    Call {
        id: "c".into(),
        audio_path: path.to_path_buf(),
        sample_rate: 16_000,
        duration_ms: 0,
        turns: Vec::new(),
        line: 1,
        meta: serde_json::Value::Null,
    }
}

/// Writes `bytes` as a WAV file and reads it as a dataset would.
fn check_file(dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.join("x.wav");
    rewrite(&path, bytes);
    let probed = probe_wav(&path);
    let loaded = call_of(&path).load_samples();
    if let Ok(info) = probed {
        let samples =
            loaded.map_err(|e| TestCaseError::fail(format!("probe passed, load failed: {e}")))?;
        prop_assert_eq!(samples.len() as u64, info.frames);
    }
    Ok(())
}

thread_local! {
    /// One folder per test thread; each case rewrites the file.
    static DIR: tempfile::TempDir = tempfile::tempdir().unwrap();
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn any_bytes_are_a_wav_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        DIR.with(|dir| check_file(dir.path(), &bytes))?;
    }

    #[test]
    fn lying_wav_headers_are_errors(parts in wav_parts(), edits in byte_edits(3)) {
        let bytes = apply_bytes(parts.bytes(), &edits);
        DIR.with(|dir| check_file(dir.path(), &bytes))?;
    }
}
