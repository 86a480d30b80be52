//! The vision lane's inputs: a video dataset's `manifest.json` and annotation lines
//! (`VideoDataset::load`), mutated as JSON and as bytes, give a dataset or a `VideoError`
//! naming the file; a dataset that loads keeps the promises the replay relies on. And a
//! detector's output of any shape and values (`yolo::decode`) gives boxes inside the frame or
//! a typed error — a remote server's answer is input too.

use std::path::Path;

use latlab_core::vision::video::{MANIFEST, VideoDataset};
use latlab_core::vision::yolo::{Letterbox, YoloSpec, decode};
use proptest::prelude::*;

use crate::mutate::{
    TreeEdit, apply_json, apply_text, cases, few_byte_edits, json_value, rewrite, tree_edits,
};

const VOCABULARY: &[&str] = &[
    "name",
    "videos",
    "id",
    "file",
    "fps",
    "frames",
    "width",
    "height",
    "annotations",
    "frame",
    "boxes",
    "class",
    "x1",
    "y1",
    "x2",
    "y2",
    "person",
    "v.mp4",
    "a.jsonl",
    "missing.mp4",
];

const MANIFEST_SEED: &str = r#"{"name":"t","reference":"by hand","videos":[{"id":"v","file":"v.mp4","fps":10.0,"frames":5,"width":64,"height":48,"annotations":"a.jsonl"}]}"#;
const ANNOTATION_SEEDS: &[&str] = &[
    r#"{"frame":0,"boxes":[{"class":"person","x1":1.0,"y1":2.0,"x2":30.0,"y2":40.0}]}"#,
    r#"{"frame":3,"boxes":[]}"#,
];

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.mp4"), b"not decoded by load").unwrap();
    dir
}

thread_local! {
    static FOLDER: tempfile::TempDir = folder();
}

fn check(dir: &Path, manifest: &[u8], annotations: &[u8]) -> Result<(), TestCaseError> {
    rewrite(&dir.join(MANIFEST), manifest);
    rewrite(&dir.join("a.jsonl"), annotations);
    let Ok(ds) = VideoDataset::load(dir) else {
        return Ok(());
    };
    prop_assert!(!ds.videos.is_empty());
    for v in &ds.videos {
        let e = &v.entry;
        prop_assert!(e.fps > 0.0 && e.fps <= 1000.0);
        prop_assert!(e.frames >= 1 && e.width >= 1 && e.height >= 1);
        prop_assert!(v.path.is_file());
        for (frame, boxes) in v.annotations.iter() {
            prop_assert!(*frame < e.frames);
            for b in boxes {
                prop_assert!(b.x1 >= -0.5 && b.y1 >= -0.5);
                prop_assert!(b.x2 <= e.width as f32 + 0.5 && b.y2 <= e.height as f32 + 0.5);
                prop_assert!(b.x2 > b.x1 && b.y2 > b.y1);
            }
        }
    }
    Ok(())
}

fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    (
        tree_edits(3, json_value(VOCABULARY), VOCABULARY),
        few_byte_edits(2),
    )
        .prop_map(
            move |(tree, bytes): (Vec<TreeEdit<serde_json::Value>>, _)| {
                let mut value: serde_json::Value = serde_json::from_str(seed).unwrap();
                apply_json(&mut value, &tree);
                apply_text(&value.to_string(), &bytes)
            },
        )
}

fn annotation_line() -> impl Strategy<Value = String> {
    prop_oneof![mutated(ANNOTATION_SEEDS[0]), mutated(ANNOTATION_SEEDS[1])]
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn mutated_video_manifests_load_or_name_their_error(
        manifest in mutated(MANIFEST_SEED),
        lines in prop::collection::vec(annotation_line(), 0..4),
    ) {
        let annotations = lines.join("\n");
        FOLDER.with(|dir| check(dir.path(), manifest.as_bytes(), annotations.as_bytes()))?;
    }

    #[test]
    fn any_bytes_are_a_video_manifest_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        annotations in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        FOLDER.with(|dir| check(dir.path(), &bytes, &annotations))?;
    }

    #[test]
    fn any_detector_output_decodes_inside_the_frame_or_errs(
        classes in 1usize..4,
        shape in prop::collection::vec(prop_oneof![0usize..12, Just(usize::MAX / 3)], 0..4),
        values in prop::collection::vec(
            prop_oneof![
                -1000.0f32..2000.0,
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::NEG_INFINITY),
                0.0f32..1.0,
            ],
            0..200,
        ),
        frame in (1u32..2000, 1u32..2000),
    ) {
        let spec = YoloSpec {
            input_w: 320,
            input_h: 320,
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            conf: 0.25,
            iou: 0.45,
            max_det: 300,
        };
        let lb = Letterbox::new(frame.0, frame.1, 320, 320);
        if let Ok(dets) = decode(&values, &shape, &spec, &lb) {
            prop_assert!(dets.len() <= spec.max_det);
            for d in dets {
                prop_assert!(d.score >= 0.25);
                prop_assert!(d.x1 >= 0.0 && d.y1 >= 0.0);
                prop_assert!(d.x2 <= frame.0 as f32 && d.y2 <= frame.1 as f32);
                prop_assert!(d.x2 > d.x1 && d.y2 > d.y1);
            }
        }
    }
}
