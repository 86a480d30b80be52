//! Detections scored against a frame's reference annotations, as WER scores a transcript:
//! per class, each detection (best score first) matches the unmatched reference box of its
//! class it overlaps most, if that IoU is at least [`IOU_MATCH`]; matched detections are true
//! positives, the rest false positives, and unmatched reference boxes false negatives.
//!
//! Only the reference's vocabulary is scored: a detection of a class the reference never
//! annotates (a face detector's `face_male`) is neither right nor wrong here.

use std::collections::BTreeSet;

use super::Detection;
use super::video::RefBox;
use super::yolo::iou;
use latlab_results::frame::ClassCounts;

/// The IoU at which a detection matches a reference box (the PASCAL VOC / COCO AP50 rule).
pub const IOU_MATCH: f32 = 0.5;

/// Scores one frame's detections against its reference boxes, per class of `vocabulary`
/// (the classes the dataset's reference annotates), in the vocabulary's order.
pub fn score_frame(
    detections: &[Detection],
    reference: &[RefBox],
    vocabulary: &BTreeSet<String>,
) -> Vec<ClassCounts> {
    vocabulary
        .iter()
        .map(|class| {
            let refs: Vec<[f32; 4]> = reference
                .iter()
                .filter(|r| &r.class == class)
                .map(|r| [r.x1, r.y1, r.x2, r.y2])
                .collect();
            let mut dets: Vec<&Detection> =
                detections.iter().filter(|d| &d.class == class).collect();
            dets.sort_by(|a, b| b.score.total_cmp(&a.score));
            let mut taken = vec![false; refs.len()];
            let mut tp = 0u32;
            for d in &dets {
                let b = [d.x1, d.y1, d.x2, d.y2];
                let best = refs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !taken[*i])
                    .map(|(i, r)| (i, iou(b, *r)))
                    .filter(|(_, o)| *o >= IOU_MATCH)
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((i, _)) = best {
                    taken[i] = true;
                    tp += 1;
                }
            }
            ClassCounts {
                class: class.clone(),
                tp,
                fp: dets.len() as u32 - tp,
                fn_: refs.len() as u32 - tp,
            }
        })
        .collect()
}

/// Adds one frame's counts into running totals (same vocabulary order).
pub fn accumulate(totals: &mut Vec<ClassCounts>, frame: &[ClassCounts]) {
    for c in frame {
        match totals.iter_mut().find(|t| t.class == c.class) {
            Some(t) => {
                t.tp += c.tp;
                t.fp += c.fp;
                t.fn_ += c.fn_;
            }
            None => totals.push(c.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: &str, score: f32, b: [f32; 4]) -> Detection {
        Detection {
            class: class.into(),
            score,
            x1: b[0],
            y1: b[1],
            x2: b[2],
            y2: b[3],
        }
    }

    fn rb(class: &str, b: [f32; 4]) -> RefBox {
        RefBox {
            class: class.into(),
            x1: b[0],
            y1: b[1],
            x2: b[2],
            y2: b[3],
        }
    }

    #[test]
    fn matches_once_per_reference_box_and_ignores_unscored_classes() {
        let vocab: BTreeSet<String> = ["person".to_string()].into();
        let refs = [
            rb("person", [0.0, 0.0, 10.0, 20.0]),
            rb("person", [50.0, 50.0, 60.0, 70.0]),
            rb("person", [100.0, 100.0, 110.0, 120.0]),
        ];
        let dets = [
            det("person", 0.9, [0.0, 0.0, 10.0, 20.0]),          // tp
            det("person", 0.8, [1.0, 1.0, 10.0, 20.0]),          // duplicate of the same: fp
            det("person", 0.7, [50.0, 52.0, 60.0, 70.0]),        // tp
            det("person", 0.6, [200.0, 200.0, 210.0, 210.0]),    // fp
            det("face_male", 0.9, [100.0, 100.0, 110.0, 120.0]), // not scored
        ];
        let c = score_frame(&dets, &refs, &vocab);
        assert_eq!(
            c,
            vec![ClassCounts {
                class: "person".into(),
                tp: 2,
                fp: 2,
                fn_: 1
            }]
        );
        let mut totals = Vec::new();
        accumulate(&mut totals, &c);
        accumulate(&mut totals, &c);
        assert_eq!((totals[0].tp, totals[0].fp, totals[0].fn_), (4, 4, 2));
    }

    #[test]
    fn a_box_just_below_half_overlap_is_a_miss() {
        let vocab: BTreeSet<String> = ["person".to_string()].into();
        let refs = [rb("person", [0.0, 0.0, 10.0, 10.0])];
        // Shifted by 5.1 px: IoU = 49 / 151, below one half.
        let dets = [det("person", 0.9, [0.0, 5.1, 10.0, 15.1])];
        let c = score_frame(&dets, &refs, &vocab);
        assert_eq!((c[0].tp, c[0].fp, c[0].fn_), (0, 1, 1));
    }
}
