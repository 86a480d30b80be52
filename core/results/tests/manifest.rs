//! The manifest contract: what older latlab wrote keeps loading, what a newer latlab wrote is
//! refused with a clear error, and what this build writes reads back unchanged.

use std::path::Path;

use latlab_results::ResultsError;
use latlab_results::manifest::{RunManifest, RunStatus, SCHEMA_VERSION};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn folder_with(manifest: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), manifest).unwrap();
    dir
}

#[test]
fn an_early_version_1_manifest_loads_with_defaults_for_later_fields() {
    let dir = folder_with(&fixture("manifest-v1-early.json"));
    let m = RunManifest::read(dir.path()).unwrap();
    assert_eq!(m.status, RunStatus::Complete);
    assert_eq!(m.profile_names(), ["conservative", "aggressive"]);
    assert_eq!(m.counts.as_ref().unwrap().turns, 56);
    // Fields added after the first runs: absent here, defaulted.
    assert_eq!(m.counts.as_ref().unwrap().max_in_flight, 0);
    assert!(m.load.is_none() && m.call_starts.is_none() && m.telemetry.is_none());
    assert!(m.measurer.is_empty() && m.model_loads.is_empty() && m.call_voices.is_empty());
}

#[test]
fn a_manifest_round_trips_through_write_and_read() {
    let dir = folder_with(&fixture("manifest-v1-early.json"));
    let m = RunManifest::read(dir.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    m.write(out.path()).unwrap();
    assert_eq!(RunManifest::read(out.path()).unwrap(), m);
    assert!(!out.path().join("manifest.json.tmp").exists());
}

#[test]
fn a_newer_schema_is_refused_by_name_not_by_a_confusing_field_error() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("manifest-v1-early.json")).unwrap();
    v["schema_version"] = (SCHEMA_VERSION + 1).into();
    // A newer shape may have changed anything; the version is what the reader must report.
    v["status"] = "some_future_status".into();
    let dir = folder_with(&serde_json::to_vec(&v).unwrap());
    let err = RunManifest::read(dir.path()).unwrap_err();
    assert!(
        matches!(err, ResultsError::TooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("manifest.json") && text.contains("newer"),
        "{text}"
    );
}

#[test]
fn a_renamed_or_mistyped_field_is_an_error_naming_it_not_a_silent_default() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("manifest-v1-early.json")).unwrap();
    let status = v.as_object_mut().unwrap().remove("status").unwrap();
    v["run_status"] = status;
    let dir = folder_with(&serde_json::to_vec(&v).unwrap());
    let err = RunManifest::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("missing field `status`"), "{err}");

    v["status"] = "finished".into();
    let dir = folder_with(&serde_json::to_vec(&v).unwrap());
    let err = RunManifest::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("unknown variant `finished`"), "{err}");
}

#[test]
fn a_missing_or_foreign_file_is_a_typed_error_naming_it() {
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        RunManifest::read(empty.path()),
        Err(ResultsError::Io { .. })
    ));
    let dir = folder_with(br#"{"hello": "world"}"#);
    let err = RunManifest::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a latlab run manifest"), "{err}");
    let dir = folder_with(b"{ not json");
    assert!(matches!(
        RunManifest::read(dir.path()),
        Err(ResultsError::Parse { .. })
    ));
}
