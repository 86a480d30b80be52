//! YOLOv8's pre- and postprocessing, shared by every detector backend: letterbox and
//! normalise a frame into the model's `[1, 3, H, W]` input, then decode the
//! `[1, 4 + classes, anchors]` output (centre x, centre y, width, height, then one score per
//! class; no objectness, no NMS inside) into boxes in the frame's own pixels, with
//! class-aware non-maximum suppression — what Ultralytics does, in Rust.

use super::{Detection, Frame};

/// The grey Ultralytics pads a letterbox with (114 / 255).
pub const PAD: f32 = 114.0 / 255.0;

/// How a YOLOv8 model is fed and read.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloSpec {
    /// Model input width (a multiple of 32).
    pub input_w: u32,
    /// Model input height (a multiple of 32).
    pub input_h: u32,
    /// Class names by output index, already mapped to the reference vocabulary.
    pub classes: Vec<String>,
    /// Keep boxes scoring at least this.
    pub conf: f32,
    /// Suppress a box overlapping a better one of its class by more than this IoU.
    pub iou: f32,
    /// Keep at most this many boxes per frame.
    pub max_det: usize,
}

/// Where a frame went inside the letterboxed input: the scale and the padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Input pixels per frame pixel.
    pub scale: f32,
    /// Left padding, input pixels.
    pub pad_x: f32,
    /// Top padding, input pixels.
    pub pad_y: f32,
    /// Frame width.
    pub frame_w: u32,
    /// Frame height.
    pub frame_h: u32,
}

impl Letterbox {
    /// The letterbox of a `frame_w × frame_h` frame in a `input_w × input_h` input.
    pub fn new(frame_w: u32, frame_h: u32, input_w: u32, input_h: u32) -> Letterbox {
        let scale = (input_w as f32 / frame_w as f32).min(input_h as f32 / frame_h as f32);
        let new_w = (frame_w as f32 * scale).round();
        let new_h = (frame_h as f32 * scale).round();
        Letterbox {
            scale,
            pad_x: ((input_w as f32 - new_w) / 2.0).floor(),
            pad_y: ((input_h as f32 - new_h) / 2.0).floor(),
            frame_w,
            frame_h,
        }
    }

    /// An input-space x back in frame pixels, clamped to the frame.
    fn x(&self, x: f32) -> f32 {
        ((x - self.pad_x) / self.scale).clamp(0.0, self.frame_w as f32)
    }

    /// An input-space y back in frame pixels, clamped to the frame.
    fn y(&self, y: f32) -> f32 {
        ((y - self.pad_y) / self.scale).clamp(0.0, self.frame_h as f32)
    }
}

/// Letterboxes `frame` into `input_w × input_h` (bilinear, aspect kept, grey padding) and
/// writes it normalised to 0–1, planar RGB (`[3, H, W]`), into `out`, which is resized to
/// fit. Returns where the frame went.
pub fn preprocess(frame: &Frame, input_w: u32, input_h: u32, out: &mut Vec<f32>) -> Letterbox {
    let lb = Letterbox::new(frame.width, frame.height, input_w, input_h);
    let (iw, ih) = (input_w as usize, input_h as usize);
    let plane = iw * ih;
    out.clear();
    out.resize(3 * plane, PAD);
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    if fw == 0 || fh == 0 || frame.rgb.len() < fw * fh * 3 {
        return lb;
    }
    let new_w = ((fw as f32 * lb.scale).round() as usize).min(iw);
    let new_h = ((fh as f32 * lb.scale).round() as usize).min(ih);
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    let sx = fw as f32 / new_w.max(1) as f32;
    let sy = fh as f32 / new_h.max(1) as f32;
    // Horizontal sample positions, computed once per row of output.
    let xs: Vec<(usize, usize, f32)> = (0..new_w)
        .map(|x| {
            let src = ((x as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (src as usize).min(fw - 1);
            let x1 = (x0 + 1).min(fw - 1);
            (x0, x1, src - x0 as f32)
        })
        .collect();
    let rgb = &frame.rgb[..];
    const NORM: f32 = 1.0 / 255.0;
    for y in 0..new_h {
        let src = ((y as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (src as usize).min(fh - 1);
        let y1 = (y0 + 1).min(fh - 1);
        let wy = src - y0 as f32;
        let row0 = &rgb[y0 * fw * 3..(y0 + 1) * fw * 3];
        let row1 = &rgb[y1 * fw * 3..(y1 + 1) * fw * 3];
        let base = (py + y) * iw + px;
        for (x, &(x0, x1, wx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let a = row0[x0 * 3 + c] as f32;
                let b = row0[x1 * 3 + c] as f32;
                let d = row1[x0 * 3 + c] as f32;
                let e = row1[x1 * 3 + c] as f32;
                let top = a + (b - a) * wx;
                let bottom = d + (e - d) * wx;
                out[c * plane + base + x] = (top + (bottom - top) * wy) * NORM;
            }
        }
    }
    lb
}

/// Intersection over union of two boxes given as (x1, y1, x2, y2).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Why an output tensor could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The shape is not `[1, 4 + classes, anchors]`.
    #[error("output shape {shape:?} is not [1, 4 + {classes}, anchors]")]
    Shape {
        /// The shape received.
        shape: Vec<usize>,
        /// The classes the model was declared with.
        classes: usize,
    },
    /// Fewer values than the shape says.
    #[error("output holds {got} values; its shape {shape:?} needs {want}")]
    Length {
        /// The shape received.
        shape: Vec<usize>,
        /// Values present.
        got: usize,
        /// Values the shape needs.
        want: usize,
    },
}

/// Decodes a YOLOv8 output (`[1, 4 + classes, anchors]`, channels first) into detections in
/// frame pixels: best class per anchor, score ≥ `spec.conf`, class-aware NMS at
/// `spec.iou`, at most `spec.max_det`, best first.
pub fn decode(
    output: &[f32],
    shape: &[usize],
    spec: &YoloSpec,
    lb: &Letterbox,
) -> Result<Vec<Detection>, DecodeError> {
    let classes = spec.classes.len();
    let (channels, anchors) = match shape {
        [1, c, n] | [c, n] if *c == 4 + classes => (*c, *n),
        _ => {
            return Err(DecodeError::Shape {
                shape: shape.to_vec(),
                classes,
            });
        }
    };
    let want = channels.saturating_mul(anchors);
    if output.len() < want {
        return Err(DecodeError::Length {
            shape: shape.to_vec(),
            got: output.len(),
            want,
        });
    }
    let at = |c: usize, i: usize| output[c * anchors + i];
    let mut candidates: Vec<(usize, f32, [f32; 4])> = Vec::new();
    for i in 0..anchors {
        let mut best = (0usize, f32::MIN);
        for c in 0..classes {
            let s = at(4 + c, i);
            if s > best.1 {
                best = (c, s);
            }
        }
        // NaN scores never pass.
        if best.1.is_nan() || best.1 < spec.conf {
            continue;
        }
        let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
        let b = [
            lb.x(cx - w / 2.0),
            lb.y(cy - h / 2.0),
            lb.x(cx + w / 2.0),
            lb.y(cy + h / 2.0),
        ];
        if b[2] > b[0] && b[3] > b[1] {
            candidates.push((best.0, best.1, b));
        }
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<(usize, f32, [f32; 4])> = Vec::new();
    for cand in candidates {
        if kept.len() >= spec.max_det {
            break;
        }
        // Classes that map to the same reference name suppress each other (a person
        // detector's "standing" and "fallen" boxes are one person).
        let name = &spec.classes[cand.0];
        if kept
            .iter()
            .any(|k| spec.classes[k.0] == *name && iou(k.2, cand.2) > spec.iou)
        {
            continue;
        }
        kept.push(cand);
    }
    Ok(kept
        .into_iter()
        .map(|(c, score, b)| Detection {
            class: spec.classes[c].clone(),
            score,
            x1: b[0],
            y1: b[1],
            x2: b[2],
            y2: b[3],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn spec(classes: &[&str]) -> YoloSpec {
        YoloSpec {
            input_w: 640,
            input_h: 640,
            classes: classes.iter().map(|s| s.to_string()).collect(),
            conf: 0.25,
            iou: 0.45,
            max_det: 300,
        }
    }

    #[test]
    fn letterbox_of_a_4_3_frame_pads_top_and_bottom() {
        let lb = Letterbox::new(768, 576, 640, 640);
        assert!((lb.scale - 640.0 / 768.0).abs() < 1e-6);
        assert_eq!(lb.pad_x, 0.0);
        assert_eq!(lb.pad_y, 80.0);
        let lb = Letterbox::new(640, 480, 640, 480);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (1.0, 0.0, 0.0));
    }

    #[test]
    fn preprocess_keeps_colour_and_pads_grey() {
        // A 4×2 frame of pure red, letterboxed into 8×8: rows 2..6 red, the rest grey.
        let rgb: Vec<u8> = (0..8).flat_map(|_| [255u8, 0, 0]).collect();
        let frame = Frame {
            index: 0,
            width: 4,
            height: 2,
            rgb: Arc::from(rgb),
        };
        let mut out = Vec::new();
        let lb = preprocess(&frame, 8, 8, &mut out);
        assert_eq!(out.len(), 3 * 64);
        assert_eq!(lb.pad_y, 2.0);
        assert_eq!(out[0], PAD); // top-left is padding
        let at = |c: usize, y: usize, x: usize| out[c * 64 + y * 8 + x];
        assert!((at(0, 3, 3) - 1.0).abs() < 1e-6);
        assert!(at(1, 3, 3).abs() < 1e-6);
        assert_eq!(at(2, 7, 7), PAD);
    }

    /// Builds a `[1, 4 + classes, anchors]` output from (cx, cy, w, h, class, score).
    fn output(classes: usize, boxes: &[(f32, f32, f32, f32, usize, f32)]) -> Vec<f32> {
        let n = boxes.len();
        let mut out = vec![0.0; (4 + classes) * n];
        for (i, &(cx, cy, w, h, c, s)) in boxes.iter().enumerate() {
            out[i] = cx;
            out[n + i] = cy;
            out[2 * n + i] = w;
            out[3 * n + i] = h;
            out[(4 + c) * n + i] = s;
        }
        out
    }

    #[test]
    fn decode_undoes_the_letterbox_and_suppresses_duplicates() {
        let lb = Letterbox::new(768, 576, 640, 640);
        let out = output(
            2,
            &[
                (320.0, 320.0, 100.0, 200.0, 0, 0.9),
                (322.0, 321.0, 100.0, 200.0, 1, 0.8), // same person, other class name alias
                (100.0, 150.0, 20.0, 20.0, 0, 0.5),
                (500.0, 500.0, 50.0, 50.0, 0, 0.1), // below conf
            ],
        );
        let dets = decode(&out, &[1, 6, 4], &spec(&["person", "person"]), &lb).unwrap();
        assert_eq!(dets.len(), 2, "{dets:?}");
        let d = &dets[0];
        assert_eq!(d.class, "person");
        // x1 = (320 - 50 - 0) / (640/768) = 324
        assert!((d.x1 - 324.0).abs() < 0.01, "{d:?}");
        // y1 = (320 - 100 - 80) * 1.2 = 168
        assert!((d.y1 - 168.0).abs() < 0.01, "{d:?}");
    }

    #[test]
    fn decode_keeps_overlapping_boxes_of_different_classes() {
        let lb = Letterbox::new(640, 640, 640, 640);
        let out = output(
            2,
            &[
                (100.0, 100.0, 50.0, 50.0, 0, 0.9),
                (100.0, 100.0, 50.0, 50.0, 1, 0.8),
            ],
        );
        let dets = decode(&out, &[1, 6, 2], &spec(&["person", "car"]), &lb).unwrap();
        assert_eq!(dets.len(), 2);
    }

    #[test]
    fn decode_rejects_a_wrong_shape_with_a_message() {
        let lb = Letterbox::new(640, 640, 640, 640);
        let err = decode(&[0.0; 10], &[1, 5, 2], &spec(&["a", "b"]), &lb).unwrap_err();
        assert!(err.to_string().contains("[1, 5, 2]"), "{err}");
        let err = decode(&[0.0; 10], &[1, 6, 2], &spec(&["a", "b"]), &lb).unwrap_err();
        assert!(err.to_string().contains("needs 12"), "{err}");
    }

    #[test]
    fn a_huge_shape_is_a_length_error_not_an_overflow() {
        let lb = Letterbox::new(640, 640, 640, 640);
        let err = decode(&[], &[7, 6148914691236517205], &spec(&["a", "b", "c"]), &lb).unwrap_err();
        assert!(matches!(err, DecodeError::Length { .. }), "{err}");
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
        assert!((iou([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
