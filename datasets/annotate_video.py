#!/usr/bin/env python3
"""Reference person boxes for a video, every frame, from the YOLOv8s person detector.

    python3 datasets/annotate_video.py VIDEO OUT.boxes.jsonl [--model PATH] [--threads N]

Writes one JSON line per frame, frames in increasing order, in the format of
docs/datasets.md ("Video datasets"):

    {"frame": 0, "boxes": [{"class": "person", "x1": 412.3, "y1": 80.0, "x2": 455.1, "y2": 190.7}]}

The model is models/vision/yolov8s-person.onnx (`python3 models/fetch.py yolov8s-person`),
a YOLOv8s trained on two classes, 0 Normal and 1 Fall, both of them people. Each frame is
decoded by ffmpeg as RGB24 at its own size, letterboxed into 640x640 the way latlab's
core/src/vision/yolo.rs does it (bilinear with half-pixel centres, no antialiasing, aspect
kept, centred, padded with grey 114/255, scaled to 0-1), run through ONNX Runtime on the CPU,
and the [1, 6, 8400] output (cx, cy, w, h, score Normal, score Fall) is decoded: a box's score
is the larger class score, boxes scoring >= 0.5 are kept, then class-agnostic non-maximum
suppression at IoU 0.45 (both classes are "person"), at most 300 boxes. Boxes are mapped back
to the frame's pixels (x right, y down, origin at the top-left corner of the top-left
pixel), clamped inside the frame and rounded to 0.1 px; within a frame they are listed by
descending score. ONNX Runtime runs on one thread by default so that reruns give the same
file on any machine.

Needs Python 3.11+, numpy, onnxruntime (1.31.1 made the committed files) and ffmpeg/ffprobe.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# One SHA-256 for every pinned file: the models' fetch script's (standard library only).
sys.path.insert(0, str(ROOT / "models"))
from fetch import sha256  # noqa: E402
DEFAULT_MODEL = ROOT / "models" / "vision" / "yolov8s-person.onnx"

INPUT = 640
PAD = 114.0 / 255.0
CONF = 0.5  # what the committed reference used; --conf changes it
IOU = 0.45
MAX_DET = 300


class AnnotateError(Exception):
    pass


def pinned_sha256(rel: str) -> str:
    """The SHA-256 models/lock.toml pins for a model file (path relative to models/)."""
    lock = tomllib.loads((ROOT / "models" / "lock.toml").read_text())
    for model in lock["model"]:
        if rel in model["files"]:
            return model["files"][rel]
    raise AnnotateError(f"models/lock.toml pins no file {rel}")


def probe(video: Path) -> tuple[int, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0",
         "-show_entries", "stream=width,height", "-of", "json", str(video)],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise AnnotateError(f"ffprobe could not read {video}: {out.stderr.strip()}")
    stream = json.loads(out.stdout)["streams"][0]
    return int(stream["width"]), int(stream["height"])


def frames(video: Path, width: int, height: int):
    """Yields each frame as a uint8 array [height, width, 3], as latlab's decoder sees it."""
    size = width * height * 3
    proc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video),
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    finished = False
    try:
        while True:
            buf = proc.stdout.read(size)
            if not buf:
                break
            if len(buf) != size:
                raise AnnotateError(f"{video}: ffmpeg gave a partial frame ({len(buf)} of {size} bytes)")
            yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)
        finished = True
    finally:
        if not finished:
            proc.kill()  # the caller stopped early: ffmpeg's exit status means nothing
        proc.stdout.close()
        code = proc.wait()
    if code != 0:
        raise AnnotateError(f"ffmpeg failed to decode {video} (exit {code})")


class Letterbox:
    """Where a frame goes inside the square input; same arithmetic as yolo.rs (f32)."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.scale = np.float32(min(np.float32(INPUT) / np.float32(width), np.float32(INPUT) / np.float32(height)))
        self.new_w = int(np.round(np.float32(width) * self.scale))
        self.new_h = int(np.round(np.float32(height) * self.scale))
        self.pad_x = (INPUT - self.new_w) // 2
        self.pad_y = (INPUT - self.new_h) // 2
        # Bilinear sample positions with half-pixel centres (OpenCV's INTER_LINEAR).
        sx = np.float32(width) / np.float32(self.new_w)
        sy = np.float32(height) / np.float32(self.new_h)
        src_x = np.maximum((np.arange(self.new_w, dtype=np.float32) + 0.5) * sx - 0.5, 0).astype(np.float32)
        src_y = np.maximum((np.arange(self.new_h, dtype=np.float32) + 0.5) * sy - 0.5, 0).astype(np.float32)
        self.x0 = np.minimum(src_x.astype(np.int64), width - 1)
        self.x1 = np.minimum(self.x0 + 1, width - 1)
        self.wx = (src_x - self.x0).astype(np.float32)[None, :, None]
        self.y0 = np.minimum(src_y.astype(np.int64), height - 1)
        self.y1 = np.minimum(self.y0 + 1, height - 1)
        self.wy = (src_y - self.y0).astype(np.float32)[:, None, None]

    def input(self, rgb: np.ndarray) -> np.ndarray:
        f = rgb.astype(np.float32)
        r0, r1 = f[self.y0], f[self.y1]
        top = r0[:, self.x0] + (r0[:, self.x1] - r0[:, self.x0]) * self.wx
        bottom = r1[:, self.x0] + (r1[:, self.x1] - r1[:, self.x0]) * self.wx
        img = (top + (bottom - top) * self.wy) * np.float32(1.0 / 255.0)
        out = np.full((3, INPUT, INPUT), PAD, dtype=np.float32)
        out[:, self.pad_y:self.pad_y + self.new_h, self.pad_x:self.pad_x + self.new_w] = img.transpose(2, 0, 1)
        return out[None]


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area(box) + area(others) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def decode(output: np.ndarray, lb: Letterbox, conf: float = CONF) -> list[dict]:
    pred = output[0]  # [6, 8400]
    scores = pred[4:].max(axis=0)
    keep = scores >= conf
    cx, cy, w, h = pred[:4, keep]
    scores = scores[keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size and len(kept) < MAX_DET:
        best = order[0]
        kept.append(int(best))
        rest = order[1:]
        order = rest[iou(boxes[best], boxes[rest]) <= IOU]
    out = []
    for i in kept:
        x1, y1, x2, y2 = boxes[i]
        fx = lambda x: float(np.clip((x - lb.pad_x) / lb.scale, 0, lb.width))
        fy = lambda y: float(np.clip((y - lb.pad_y) / lb.scale, 0, lb.height))
        out.append({"class": "person", "x1": round(fx(x1), 1), "y1": round(fy(y1), 1),
                    "x2": round(fx(x2), 1), "y2": round(fy(y2), 1)})
    return out


def annotate(video: Path, out: Path, model: Path = DEFAULT_MODEL, threads: int = 1, conf: float = CONF) -> dict:
    """Writes `out` for `video`; returns a summary (frames, boxes, seconds)."""
    import onnxruntime as ort

    want = pinned_sha256("vision/yolov8s-person.onnx")
    if not model.is_file():
        raise AnnotateError(f"{model} is missing: python3 models/fetch.py yolov8s-person")
    if sha256(model) != want:
        raise AnnotateError(f"{model}: SHA-256 is not the pinned {want} (models/lock.toml)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    width, height = probe(video)
    lb = Letterbox(width, height)
    started = time.monotonic()
    lines, total = [], 0
    for index, rgb in enumerate(frames(video, width, height)):
        (output,) = session.run(["output0"], {"images": lb.input(rgb)})
        boxes = decode(output, lb, conf)
        total += len(boxes)
        lines.append(json.dumps({"frame": index, "boxes": boxes}, separators=(", ", ": ")))
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    return {"frames": len(lines), "boxes": total, "seconds": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1: repeatable)")
    parser.add_argument("--conf", type=float, default=CONF, help=f"keep boxes scoring at least this (default {CONF})")
    args = parser.parse_args()
    try:
        s = annotate(args.video, args.out, args.model, args.threads, args.conf)
    except AnnotateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {s['frames']} frames, {s['boxes']} boxes "
          f"({s['boxes'] / max(s['frames'], 1):.2f} a frame), {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
