use super::*;

fn write_wav(path: &Path, rate: u32, channels: u16, seconds: f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(f64::from(rate) * seconds) as usize * channels as usize {
        w.write_sample(((i % 100) as i16 - 50) * 100).unwrap();
    }
    w.finalize().unwrap();
}

fn dataset(lines: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_wav(&dir.path().join("a.wav"), 16000, 1, 3.0);
    std::fs::write(dir.path().join(MANIFEST_FILE), lines.join("\n")).unwrap();
    dir
}

const GOOD: &str = r#"{"id":"a","audio":"a.wav","sample_rate":16000,"turns":[{"start_ms":100,"end_ms":900,"text":"hello","reply":"hi"},{"start_ms":1500,"end_ms":2500,"text":"bye"}]}"#;

fn err_of(lines: &[&str]) -> String {
    let dir = dataset(lines);
    Dataset::load(dir.path()).unwrap_err().to_string()
}

#[test]
fn loads_a_valid_manifest() {
    let dir = dataset(&[GOOD, ""]);
    let d = Dataset::load(dir.path()).unwrap();
    assert_eq!(d.calls.len(), 1);
    let call = &d.calls[0];
    assert_eq!(call.duration_ms, 3000);
    assert_eq!(call.turns[0].reply.as_deref(), Some("hi"));
    assert_eq!(call.turns[1].reply, None);
    assert_eq!(call.load_samples().unwrap().len(), 48000);
    assert_eq!(d.turn_count(), 2);
}

#[test]
fn missing_manifest_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = Dataset::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("manifest.jsonl"), "{e}");
}

#[test]
fn syntax_errors_name_file_and_line() {
    let e = err_of(&[GOOD, "{not json"]);
    assert!(e.contains("manifest.jsonl:2: invalid manifest line"), "{e}");
    let e = err_of(&[r#"{"id":"a","audio":"a.wav","sample_rate":16000,"turns":[],"extra":1}"#]);
    assert!(
        e.contains(":1:") && e.contains("unknown field `extra`"),
        "{e}"
    );
}

#[test]
fn missing_audio_file() {
    let e = err_of(&[&GOOD.replace("a.wav", "nope.wav")]);
    assert!(
        e.contains("manifest.jsonl:1") && e.contains("nope.wav") && e.contains("file not found"),
        "{e}"
    );
}

#[test]
fn wrong_sample_rate() {
    let e = err_of(&[&GOOD.replace("16000", "8000")]);
    assert!(
        e.contains("sample rate is 16000 Hz but the manifest says 8000 Hz"),
        "{e}"
    );
}

#[test]
fn wrong_channel_count() {
    let dir = dataset(&[&GOOD.replace("a.wav", "st.wav")]);
    write_wav(&dir.path().join("st.wav"), 16000, 2, 1.0);
    let e = Dataset::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("must be mono, found 2 channels"), "{e}");
}

#[test]
fn truncated_wav() {
    let dir = dataset(&[GOOD]);
    let path = dir.path().join("a.wav");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = Dataset::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("manifest.jsonl:1") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn not_a_wav() {
    let dir = dataset(&[GOOD]);
    std::fs::write(dir.path().join("a.wav"), b"hello").unwrap();
    let e = Dataset::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a valid WAV file"), "{e}");
}

#[test]
fn turn_outside_the_audio() {
    let e = err_of(&[&GOOD.replace("2500", "3500")]);
    assert!(
        e.contains("turn 2: end_ms 3500 is outside the audio, which lasts 3000 ms"),
        "{e}"
    );
}

#[test]
fn overlapping_turns() {
    let e = err_of(&[&GOOD.replace("\"start_ms\":1500", "\"start_ms\":800")]);
    assert!(
        e.contains("turn 2: starts at 800 ms, before the previous turn ends (900 ms)"),
        "{e}"
    );
}

#[test]
fn reversed_turn() {
    let e = err_of(&[&GOOD.replace("\"end_ms\":900", "\"end_ms\":50")]);
    assert!(
        e.contains("turn 1: start_ms 100 is not before end_ms 50"),
        "{e}"
    );
}

#[test]
fn duplicate_ids_and_bad_ids() {
    let e = err_of(&[GOOD, GOOD]);
    assert!(
        e.contains("manifest.jsonl:2") && e.contains("duplicate call id"),
        "{e}"
    );
    let e = err_of(&[&GOOD.replace("\"id\":\"a\"", "\"id\":\"a/b\"")]);
    assert!(e.contains("id must be"), "{e}");
}

#[test]
fn empty_manifest() {
    let e = err_of(&["", "  "]);
    assert!(e.contains("holds no calls"), "{e}");
}

#[test]
fn the_smoke_dataset_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/smoke");
    let d = Dataset::load(&dir).unwrap();
    assert!(d.calls.len() >= 8);
    for call in &d.calls {
        assert_eq!(call.sample_rate, 16000);
        assert!((2..=4).contains(&call.turns.len()), "{}", call.id);
    }
}
