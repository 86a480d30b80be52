#!/usr/bin/env python3
"""Generate the latlab smoke dataset: short recorded "calls" of a user talking
to a voice agent, plus datasets/smoke/manifest.jsonl.

Requirements
------------
* Python >= 3.11 with numpy (``pip install numpy``); ``jsonschema`` is optional
  (``pip install jsonschema``) and, when present, every manifest line is
  validated against docs/schemas/dataset-manifest.schema.json.
* For call-11 and call-12 (spoken by the Piper neural voice en_US-joe-medium):
  ``onnxruntime`` (``pip install onnxruntime==1.31.1``, the release latlab's
  models folder pins) and the voice itself in models/piper/
  (``python3 models/fetch.py piper-joe``), checked against models/lock.toml.
* Debian packages (see datasets/install_smoke_deps.sh):
    espeak-ng   - formant TTS, several English voices/variants
    flite       - diphone/cluster TTS (voices slt, rms, awb, kal16)
    sox         - resampling, 8 kHz mu-law telephone round trip, soxi checks
    asterisk-core-sounds-en-wav - REAL recorded English prompts (Allison
                  Smith, CC-BY-SA-3.0); used for call-09 and call-10
    (espeak-ng also phonemizes the Piper calls' text, as latlab's Piper
    backend does: core/src/backends/local/piper.rs)

Usage
-----
    python3 datasets/generate_smoke.py            # writes datasets/smoke/
    python3 datasets/generate_smoke.py --out DIR  # somewhere else

What it does, per call
----------------------
1. Synthesize (or splice recorded prompts for) each user turn, resample to
   16 kHz, trim the synthesizer's own leading/trailing silence, level it.
2. Lay the turns out on a timeline: 0.3-0.8 s lead-in, 2.5-4.5 s gaps (time
   for the agent to answer), >= 2.5 s tail; the whole call stays <= 14 s
   (<= 10 s for the Piper calls, which keeps the set under 5 MB).
3. Add pink noise over the whole call at the call's target SNR.
4. For "telephone" calls, round-trip through 8 kHz mu-law with sox
   (300-3400 Hz band-pass, 8 kHz, mu-law encode, decode, back to 16 kHz).
5. Write 16 kHz / mono / 16-bit PCM WAV.
6. MEASURE the turn boundaries on the final audio with an energy detector
   (the synthesis plan is only used to check the detector), and fail loudly
   if the detector does not find exactly the planned turns.

Everything random comes from a seeded numpy Generator (and, for the Piper
voice's own noise, ONNX Runtime's seeded generator on one thread), so
re-running yields the same manifest and (given the same tool versions) the
same audio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unicodedata
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SEED = 20240611
RATE = 16000
MAX_CALL_S = 14.0
LEAD_S = (0.3, 0.8)
GAP_S = (2.5, 4.5)
TAIL_S = (2.55, 2.9)  # brief asks >= 2.5 s; keep a little margin
MAX_TOTAL_BYTES = 5_000_000  # "under 5 MB", decimal to be safe

# Energy detector settings (also documented in docs/datasets.md).
FRAME_MS = 20          # analysis window
HOP_MS = 10            # analysis hop -> boundaries are multiples of 10 ms
CORE_DB = 9.0          # a frame this far above the noise floor is speech
EDGE_DB = 5.0          # ...and a span is extended outwards while above this
MERGE_MS = 300         # pauses shorter than this stay inside one utterance
MIN_SPEECH_MS = 80     # shorter blips (clicks, noise bursts) are dropped
BOUNDARY_TOL_MS = 300  # detected edges must be this close to the plan

ASTERISK_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ALLISON_VOICE = "recorded: Allison Smith (Debian asterisk-core-sounds-en-wav)"

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "models"
PIPER_MODEL = "piper-joe"             # [[model]] name in models/lock.toml
PIPER_VOICES = {"en_US-joe-medium": PIPER_MODEL}
PIPER_CALL_S = 10.0                   # the Piper calls are shorter: 5 MB budget
SCHEMA_PATH = REPO / "docs" / "schemas" / "dataset-manifest.schema.json"


@dataclass
class Turn:
    text: str                 # what the user says (= what is synthesized)
    reply: str                # what an agent could plausibly answer
    clips: list[str] = field(default_factory=list)  # recorded: prompt files


@dataclass
class Call:
    id: str
    engine: str               # "espeak-ng", "flite", "recorded" or "piper"
    voice: str                # engine voice name
    band: str                 # "wideband" or "telephone"
    snr_db: int               # target SNR of speech vs. added noise
    turns: list[Turn]
    speed: int = 165          # espeak-ng words per minute
    max_s: float = MAX_CALL_S  # longest the call may be


# --------------------------------------------------------------------------
# The calls. Short turns in the 4-turn calls keep them under 14 s.
# --------------------------------------------------------------------------
CALLS: list[Call] = [
    Call("call-01", "espeak-ng", "en-us+m3", "wideband", 25, [
        Turn("Hi, I'd like to book a table for 4 at 7 p.m.",
             "Sure. Which day would you like the table for?"),
        Turn("This Friday, please.",
             "Done. Your table for 4 is booked for Friday at 7 p.m. "
             "Is there anything else I can help with?"),
    ]),
    Call("call-02", "flite", "slt", "wideband", 30, [
        Turn("What's the weather like in Boston today?",
             "It's 18 degrees and partly cloudy in Boston, with a light breeze."),
        Turn("Will it rain tomorrow?",
             "There's a 60 percent chance of showers tomorrow afternoon, "
             "so you might want an umbrella."),
        Turn("Thanks.", "You're welcome!"),
    ]),
    Call("call-03", "espeak-ng", "en-gb+f2", "telephone", 22, [
        Turn("Hi, I'm checking on order 48152.",
             "Thanks. Order 48152 shipped yesterday and should arrive by Thursday."),
        Turn("Great, can I change the delivery address?",
             "I'm sorry, the address can't be changed once an order has shipped. "
             "I can ask the courier to hold it at a pickup point instead, "
             "if you'd like."),
    ]),
    Call("call-04", "flite", "rms", "wideband", 20, [
        Turn("What's my balance?",
             "Your checking account balance is 2,340 dollars and 15 cents."),
        Turn("Move 200 from savings to checking.",
             "Okay, I've moved 200 dollars from savings to checking. "
             "Your new checking balance is 2,540 dollars and 15 cents."),
        Turn("Thanks, bye.", "Goodbye!"),
    ]),
    Call("call-05", "espeak-ng", "en-us+f3", "telephone", 18, [
        Turn("Taxi to the airport.",
             "Sure. Where should the driver pick you up?"),
        Turn("12 Baker Street.",
             "Got it, 12 Baker Street. A car can be there in 8 minutes. "
             "Shall I book it?"),
        Turn("Yes.", "Booked. Your driver will text you when they arrive."),
        Turn("Thanks.", "You're welcome. Have a good flight!"),
    ], speed=190),
    Call("call-06", "flite", "awb", "wideband", 28, [
        Turn("I'd like to move my Monday appointment to later in the week.",
             "I can do Thursday at 10:30 a.m. or Friday at 2 p.m. "
             "Which works better?"),
        Turn("Thursday at 10:30 works.",
             "All set: your appointment is now Thursday at 10:30. "
             "We'll send you a confirmation text."),
    ]),
    Call("call-07", "espeak-ng", "en-gb-x-rp+m1", "telephone", 24, [
        Turn("Timer for 10 minutes.", "Timer set for 10 minutes, starting now."),
        Turn("Lights off.", "Okay, the lights are off."),
        Turn("What time is it?", "It's 6:45 p.m."),
        Turn("Thanks.", "Anytime."),
    ], speed=190),
    Call("call-08", "flite", "kal16", "wideband", 23, [
        Turn("What time is checkout?", "Checkout is at 11 a.m."),
        Turn("Can I stay until 1 p.m.?",
             "Yes, I've extended your checkout to 1 p.m. at no extra charge."),
        Turn("That is perfect.",
             "You're welcome. Enjoy the rest of your stay!"),
    ]),
    # Real recorded speech: words from the Asterisk prompt set, spliced into
    # user-like phrases. The source is 8 kHz telephone audio already.
    Call("call-09", "recorded", "allison", "telephone", 26, [
        Turn("Hello.",
             "Hello, thanks for calling Bella Cucina. When would you like to come in?",
             ["hello.wav"]),
        Turn("Tomorrow at 7 p.m.",
             "Tomorrow at 7 p.m. is available. How many people will be joining?",
             ["digits/tomorrow.wav", "digits/at.wav", "digits/7.wav",
              "digits/p-m.wav"]),
        Turn("Four.",
             "Great, your table for 4 is booked for tomorrow at 7 p.m. See you then!",
             ["digits/4.wav"]),
    ]),
    Call("call-10", "recorded", "allison", "telephone", 20, [
        Turn("Hello.",
             "Hi, you've reached order support. What's your order number?",
             ["hello.wav"]),
        Turn("5 0 3 8 2.",
             "Thanks. Order 50382 shipped yesterday and should arrive tomorrow.",
             ["digits/5.wav", "digits/0.wav", "digits/3.wav", "digits/8.wav",
              "digits/2.wav"]),
        Turn("Goodbye.", "Goodbye, and thanks for calling.", ["goodbye.wav"]),
    ]),
    # A neural voice (Piper, VITS): natural enough for a small Whisper to
    # transcribe, unlike espeak-ng's formant voices. Shorter calls (10 s).
    Call("call-11", "piper", "en_US-joe-medium", "wideband", 26, [
        Turn("Hi, can I book a table for two tonight?",
             "Of course. What time would you like to come in?"),
        Turn("Eight o'clock would be great.",
             "Done. Your table for two is booked for 8 p.m. tonight. See you then!"),
    ], max_s=PIPER_CALL_S),
    Call("call-12", "piper", "en_US-joe-medium", "telephone", 22, [
        Turn("I would like a taxi to the station.",
             "Sure. Where should the driver pick you up?"),
        Turn("From the library on Main Street.",
             "Got it. A car will be at the library on Main Street in 5 minutes."),
    ], max_s=PIPER_CALL_S),
]


# --------------------------------------------------------------------------
# Small audio helpers
# --------------------------------------------------------------------------
def die(msg: str) -> None:
    print(f"generate_smoke: ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        die(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")
    return res.stdout


def sox(*args: str) -> None:
    # -R: repeatable mode (fixed seeds); -D: no dither, so conversions are
    # deterministic and we never add noise we did not plan for.
    run(["sox", "-R", "-D", "-V1", *args])


def read_wav(path: Path) -> np.ndarray:
    """Read a 16-bit mono WAV at RATE into float64 in [-1, 1)."""
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
            die(f"{path}: expected 16-bit mono {RATE} Hz")
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0


def write_wav(path: Path, x: np.ndarray) -> None:
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def to_16k(src: Path, dst: Path) -> np.ndarray:
    sox(str(src), "-c", "1", "-r", str(RATE), "-b", "16", "-e", "signed-integer",
        str(dst))
    return read_wav(dst)


def frame_db(x: np.ndarray, frame_ms: int = FRAME_MS, hop_ms: int = HOP_MS) -> np.ndarray:
    """Per-frame energy in dBFS (frame i starts at sample i*hop)."""
    flen, hop = RATE * frame_ms // 1000, RATE * hop_ms // 1000
    n = max(0, 1 + (len(x) - flen) // hop)
    idx = np.arange(flen)[None, :] + hop * np.arange(n)[:, None]
    return 10.0 * np.log10(np.mean(x[idx] ** 2, axis=1) + 1e-12)


def trim(x: np.ndarray, below_peak_db: float = 40.0, pad_ms: int = 10) -> np.ndarray:
    """Cut the clean clip's own silence so the plan knows where speech is."""
    e = frame_db(x, 10, 10)
    on = np.flatnonzero(e > e.max() - below_peak_db)
    hop = RATE // 100
    pad = RATE * pad_ms // 1000
    a = max(0, on[0] * hop - pad)
    b = min(len(x), (on[-1] + 1) * hop + pad)
    return x[a:b]


def active_rms(x: np.ndarray) -> float:
    """RMS over the frames within 30 dB of the loudest (i.e. speech only)."""
    e = frame_db(x)
    act = e[e > e.max() - 30.0]
    return float(np.sqrt(np.mean(10.0 ** (act / 10.0))))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink (1/f power) noise by shaping white noise in frequency."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    spec /= np.sqrt(np.maximum(f, 20.0))  # flatten below 20 Hz: no DC rumble
    y = np.fft.irfft(spec, n)
    return y / np.sqrt(np.mean(y ** 2))


# --------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------
def synth_turn(call: Call, turn: Turn, tmp: Path, tag: str,
               rng: np.random.Generator) -> np.ndarray:
    raw = tmp / f"{tag}-raw.wav"
    if call.engine == "espeak-ng":
        run(["espeak-ng", "-v", call.voice, "-s", str(call.speed), "-w", str(raw),
             turn.text])
        return trim(to_16k(raw, tmp / f"{tag}-16k.wav"))
    if call.engine == "flite":
        run(["flite", "-voice", call.voice, "-t", turn.text, "-o", str(raw)])
        return trim(to_16k(raw, tmp / f"{tag}-16k.wav"))
    if call.engine == "recorded":
        # Splice the word prompts with short natural-sounding pauses (well
        # under MERGE_MS, so the detector keeps them in one utterance).
        parts = []
        for i, clip in enumerate(turn.clips):
            src = ASTERISK_DIR / clip
            if not src.is_file():
                die(f"missing {src}; apt-get install asterisk-core-sounds-en-wav")
            if i:
                parts.append(np.zeros(int(RATE * rng.uniform(0.02, 0.06))))
            parts.append(trim(to_16k(src, tmp / f"{tag}-{i}.wav")))
        return np.concatenate(parts)
    if call.engine == "piper":
        voice = PiperVoice.load(call.voice)
        write_wav_rate(raw, voice.synthesize(turn.text, seed=turn_seed(tag)),
                       voice.sample_rate)
        return trim(to_16k(raw, tmp / f"{tag}-16k.wav"))
    raise ValueError(call.engine)


# --------------------------------------------------------------------------
# Piper (neural TTS): the same phonemization as latlab's Piper backend
# (core/src/backends/local/piper.rs), which follows Piper's own.
# --------------------------------------------------------------------------
CLAUSE_PUNCT = ".,!?:;"
CLOSERS = "\"')]}\u201d\u2019"


def clause_breaks(text: str) -> list[tuple[str | None, bool]]:
    """Where espeak-ng ends the clauses of `text`: (punctuation, ends sentence).

    At . , ! ? : ; followed by white space (closing quotes/brackets between)
    or the end; the first mark of a run is the clause's punctuation; not at a
    "." before a lower-case word ("7 p.m. on"); an ellipsis ends a clause
    without punctuation; trailing text is a final clause without any.
    """
    n, i, content, out = len(text), 0, False, []
    while i < n:
        c = text[i]
        if c not in CLAUSE_PUNCT:
            content |= not c.isspace()
            i += 1
            continue
        start = i
        while i < n and text[i] in CLAUSE_PUNCT:
            i += 1
        run = text[start:i]
        j = i
        while j < n and text[j] in CLOSERS:
            j += 1
        rest = text[j:].lstrip()
        if rest and not text[j].isspace():
            content = True          # "2,340", "2.5", "e.g": not a break
            continue
        if len(run) >= 3 and set(run) == {"."}:
            brk = (None, False)
        elif run[0] == "." and rest and rest[0].islower():
            continue
        else:
            brk = (run[0], run[0] in ".!?")
        if content:
            out.append(brk)
            content = False
        i = j
    if content:
        out.append((None, True))
    return out


def piper_phonemes(text: str, espeak_voice: str) -> list[list[str]]:
    """Piper's phonemes of `text`, one list per sentence: espeak-ng's IPA per
    clause (one output line each), the clause's punctuation kept (plus a
    space after , : ; or a bare clause end), one code point per phoneme."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    lines = [ln.strip() for ln in
             run(["espeak-ng", "-q", "-v", espeak_voice, "--ipa", "--", text]).split("\n")]
    lines = [ln for ln in lines if ln]
    breaks = clause_breaks(text)
    if len(lines) == len(breaks):
        clauses = list(zip(lines, breaks))
    else:  # espeak-ng split differently: one clause ending as the text ends
        clauses = [(" ".join(lines), (breaks[-1][0] if breaks else None, True))]
    sentences, cur = [], []
    for line, (punct, end) in clauses:
        cur.extend(re.sub(r"\([^)]+\)", "", line))   # language-switch flags
        if punct:
            cur.append(punct)
        if not end:
            cur.append(" ")
        else:
            while cur and cur[-1] == " ":
                cur.pop()
            if cur:
                sentences.append(cur)
            cur = []
    while cur and cur[-1] == " ":
        cur.pop()
    if cur:
        sentences.append(cur)
    return sentences


def turn_seed(tag: str) -> int:
    """A seed for the voice's own noise, from SEED and the turn's tag."""
    return int.from_bytes(hashlib.sha256(f"{SEED}:{tag}".encode()).digest()[:4], "little")


def write_wav_rate(path: Path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


class PiperVoice:
    """A Piper voice from models/, checked against models/lock.toml."""

    _loaded: dict[str, "PiperVoice"] = {}

    def __init__(self, name: str) -> None:
        model = PIPER_VOICES.get(name) or die(f"unknown Piper voice {name}")
        try:
            lock = tomllib.loads((MODELS_DIR / "lock.toml").read_text())
        except OSError as e:
            die(f"cannot read models/lock.toml: {e}")
        pins = next((m["files"] for m in lock["model"] if m["name"] == model), None)
        if pins is None:
            die(f"models/lock.toml has no model {model}")
        self.onnx = MODELS_DIR / f"piper/{name}.onnx"
        for path in (self.onnx, self.onnx.with_suffix(".onnx.json")):
            rel = path.relative_to(MODELS_DIR).as_posix()
            if not path.is_file():
                die(f"missing {path}; fetch it with: python3 models/fetch.py {model}")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if pins.get(rel) not in (digest, "PENDING"):
                die(f"{path} is not the pinned file (sha256 {digest}); "
                    f"fetch it again with: python3 models/fetch.py {model}")
        config = json.loads(self.onnx.with_suffix(".onnx.json").read_text())
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.espeak_voice = config["espeak"]["voice"]
        self.id_map = config["phoneme_id_map"]
        inf = config.get("inference", {})
        # [noise_scale, length_scale, noise_w], the order of the model's input
        self.scales = np.array([inf.get("noise_scale", 0.667), inf.get("length_scale", 1.0),
                                inf.get("noise_w", 0.8)], dtype=np.float32)

    @classmethod
    def load(cls, name: str) -> "PiperVoice":
        if name not in cls._loaded:
            cls._loaded[name] = cls(name)
        return cls._loaded[name]

    def ids(self, phonemes: list[str]) -> list[int]:
        """^ _ p1 _ p2 _ ... $ ; phonemes the voice lacks are skipped."""
        pad = self.id_map["_"]
        ids = [*self.id_map["^"], *pad]
        for p in phonemes:
            if p in self.id_map:
                ids += [*self.id_map[p], *pad]
        return ids + self.id_map["$"]

    def synthesize(self, text: str, seed: int) -> np.ndarray:
        """16-bit PCM at the voice's rate, each sentence peak-normalized (as
        Piper does). A fresh one-thread session after seeding ONNX Runtime
        makes the voice's noise repeatable."""
        try:
            import onnxruntime
        except ImportError:
            die("onnxruntime not installed; pip install onnxruntime==1.31.1")
        onnxruntime.set_seed(seed)
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(self.onnx), opts,
                                               providers=["CPUExecutionProvider"])
        parts = []
        for phonemes in piper_phonemes(text, self.espeak_voice):
            ids = np.array([self.ids(phonemes)], dtype=np.int64)
            audio = session.run(None, {
                "input": ids,
                "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
                "scales": self.scales,
            })[0].reshape(-1)
            gain = 32767.0 / max(0.01, float(np.max(np.abs(audio))))
            parts.append(np.clip(audio * gain, -32767, 32767).astype(np.int16))
        if not parts:
            die(f"Piper: nothing to say in {text!r}")
        return np.concatenate(parts)


def telephone(x: np.ndarray, tmp: Path, tag: str) -> np.ndarray:
    """Round trip through an 8 kHz mu-law narrowband channel."""
    src, ulaw, back = tmp / f"{tag}-in.wav", tmp / f"{tag}-ulaw.wav", tmp / f"{tag}-out.wav"
    write_wav(src, x)
    sox(str(src), "-r", "8000", "-e", "u-law", "-b", "8", str(ulaw),
        "sinc", "300-3400", "rate", "-v", "8000")
    return to_16k(ulaw, back)


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------
def detect(x: np.ndarray) -> tuple[list[tuple[int, int]], float]:
    """Energy-based utterance detector. Returns ([(start_ms, end_ms)], floor_db).

    The noise floor is a low percentile of frame energies: every call is
    mostly silence (lead-in, gaps, tail), so the 15th percentile is noise.
    Frames CORE_DB above it seed a span, which grows while frames stay
    EDGE_DB above (hysteresis keeps soft onsets/offsets); spans closer than
    MERGE_MS are merged so short intra-utterance pauses do not split a turn.
    """
    e = frame_db(x)
    floor = float(np.percentile(e, 15))
    core, edge = e > floor + CORE_DB, e > floor + EDGE_DB
    spans: list[list[int]] = []
    i = 0
    while i < len(e):
        if not core[i]:
            i += 1
            continue
        a = i
        while a > 0 and edge[a - 1]:
            a -= 1
        b = i
        while b + 1 < len(e) and edge[b + 1]:
            b += 1
        spans.append([a, b])
        i = b + 1
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and (a - merged[-1][1] - 1) * HOP_MS < MERGE_MS:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    out = []
    for a, b in merged:
        start, end = a * HOP_MS, b * HOP_MS + FRAME_MS
        if end - start >= MIN_SPEECH_MS:
            out.append((start, end))
    return out, floor


def measure_snr(x: np.ndarray, spans: list[tuple[int, int]]) -> float:
    """SNR from the final audio: power inside turns vs. well outside them."""
    n = len(x)
    inside = np.zeros(n, bool)
    near = np.zeros(n, bool)
    for s, e in spans:
        a, b = s * RATE // 1000, e * RATE // 1000
        inside[a:b] = True
        near[max(0, a - RATE // 5):min(n, b + RATE // 5)] = True
    p_in, p_noise = np.mean(x[inside] ** 2), np.mean(x[~near] ** 2)
    return float(10.0 * np.log10(max(p_in - p_noise, 1e-12) / p_noise))


# --------------------------------------------------------------------------
# Building a call
# --------------------------------------------------------------------------
def build_call(idx: int, call: Call, out_dir: Path, tmp: Path,
               seed: int = SEED) -> tuple[dict, dict]:
    # One generator per call, seeded by (seed, index): editing one call does
    # not reshuffle the others. Other sets (generate_tools.py) pass their own.
    rng = np.random.default_rng([seed, idx])
    speech_dbfs = rng.uniform(-24.0, -19.0)
    clips = []
    for t, turn in enumerate(call.turns):
        y = synth_turn(call, turn, tmp, f"{call.id}-t{t}", rng)
        clips.append(y * (10 ** (speech_dbfs / 20) / active_rms(y)))

    lead = rng.uniform(*LEAD_S)
    tail = rng.uniform(*TAIL_S)
    gaps = rng.uniform(*GAP_S, size=len(clips) - 1)
    speech = sum(len(c) for c in clips) / RATE
    budget = call.max_s - lead - tail - speech
    if budget < GAP_S[0] * len(gaps):
        die(f"{call.id}: turns too long ({speech:.2f} s of speech) for {call.max_s} s")
    if gaps.sum() > budget:
        # Shrink only the part above the minimum gap, proportionally.
        extra = gaps - GAP_S[0]
        gaps = GAP_S[0] + extra * (budget - GAP_S[0] * len(gaps)) / extra.sum()

    total = int(round((lead + speech + gaps.sum() + tail) * RATE))
    clean = np.zeros(total)
    plan = []
    pos = int(round(lead * RATE))
    for t, c in enumerate(clips):
        clean[pos:pos + len(c)] = c
        plan.append((pos * 1000 // RATE, (pos + len(c)) * 1000 // RATE))
        pos += len(c) + (int(round(gaps[t] * RATE)) if t < len(gaps) else 0)

    noise_rms = 10 ** (speech_dbfs / 20) / 10 ** (call.snr_db / 20)
    mix = clean + noise_rms * pink_noise(total, rng)
    mix *= min(1.0, 0.89 / np.max(np.abs(mix)))  # headroom for mu-law / int16
    if call.band == "telephone":
        mix = telephone(mix, tmp, call.id)
        mix = mix[:total] if len(mix) >= total else np.pad(mix, (0, total - len(mix)))
    mix *= min(1.0, 0.89 / np.max(np.abs(mix)))

    wav = out_dir / f"{call.id}.wav"
    write_wav(wav, mix)
    final = read_wav(wav)  # measure exactly what was written

    spans, floor = detect(final)
    if len(spans) != len(plan):
        die(f"{call.id}: detector found {len(spans)} utterances {spans}, "
            f"planned {len(plan)} {plan}")
    for t, ((s, e), (ps, pe)) in enumerate(zip(spans, plan)):
        if not (s < pe and ps < e):
            die(f"{call.id} turn {t}: detected {s}-{e} ms does not overlap plan {ps}-{pe}")
        if abs(s - ps) > BOUNDARY_TOL_MS or abs(e - pe) > BOUNDARY_TOL_MS:
            die(f"{call.id} turn {t}: detected {s}-{e} ms too far from plan {ps}-{pe}")
    snr = measure_snr(final, spans)

    recorded = call.engine == "recorded"
    meta = {"voice": ALLISON_VOICE if recorded else f"{call.engine} {call.voice}",
            "band": call.band,
            "noise_snr_db": call.snr_db,          # target, speech vs. pink noise
            "measured_snr_db": round(snr, 1),     # on the final audio
            "noise": "pink",
            "source": "recorded" if recorded else "synthetic"}
    if recorded:
        meta["license"] = "CC-BY-SA-3.0"
    entry = {
        "id": call.id,
        "audio": wav.name,
        "sample_rate": RATE,
        "turns": [{"start_ms": s, "end_ms": e, "text": tr.text, "reply": tr.reply}
                  for (s, e), tr in zip(spans, call.turns)],
        "meta": meta,
    }
    report = {"id": call.id, "dur_s": len(final) / RATE, "band": call.band,
              "target": call.snr_db, "snr": snr, "floor": floor,
              "spans": spans, "plan": plan, "voice": meta["voice"]}
    return entry, report


# --------------------------------------------------------------------------
# Checks on the finished set
# --------------------------------------------------------------------------
def check_manifest(out_dir: Path, entries: list[dict]) -> None:
    ids = [e["id"] for e in entries]
    if len(set(ids)) != len(ids):
        die("duplicate ids")
    for e in entries:
        wav = out_dir / e["audio"]
        # soxi is an independent reader: confirm rate / channels / bits.
        got = tuple(run(["soxi", flag, str(wav)]).strip() for flag in ("-r", "-c", "-b", "-e"))
        if got != (str(RATE), "1", "16", "Signed Integer PCM"):
            die(f"{wav}: soxi says {got}")
        dur_ms = int(run(["soxi", "-s", str(wav)]).strip()) * 1000 // RATE
        prev_end = -1
        for t in e["turns"]:
            if not (prev_end <= t["start_ms"] < t["end_ms"] <= dur_ms):
                die(f"{e['id']}: bad turn order/bounds {t} (audio {dur_ms} ms)")
            prev_end = t["end_ms"]
    try:
        import jsonschema  # optional
    except ImportError:
        print("note: jsonschema not installed; schema validation skipped")
        return
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for n, e in enumerate(entries, 1):
        errors = list(validator.iter_errors(e))
        if errors:
            die(f"manifest.jsonl:{n}: schema: {errors[0].message}")
    print(f"schema: all {len(entries)} lines valid against {SCHEMA_PATH.relative_to(REPO)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "datasets" / "smoke")
    args = ap.parse_args()
    for tool in ("espeak-ng", "flite", "sox", "soxi"):
        if shutil.which(tool) is None:
            die(f"{tool} not found; run datasets/install_smoke_deps.sh")

    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.wav"):
        old.unlink()

    entries, reports = [], []
    with tempfile.TemporaryDirectory(prefix="latlab-smoke-") as tmpd:
        for idx, call in enumerate(CALLS):
            entry, report = build_call(idx, call, out_dir, Path(tmpd))
            entries.append(entry)
            reports.append(report)

    manifest = out_dir / "manifest.jsonl"
    with manifest.open("w", encoding="utf-8", newline="\n") as f:
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    check_manifest(out_dir, entries)

    print(f"\n{'id':8} {'dur_s':>6} {'band':9} {'snr':>4} {'meas':>5} {'floor':>6}  "
          "turns (detected ms | planned ms)  voice")
    for r in reports:
        turns = "  ".join(f"{s}-{e}|{ps}-{pe}" for (s, e), (ps, pe)
                          in zip(r["spans"], r["plan"]))
        print(f"{r['id']:8} {r['dur_s']:6.2f} {r['band']:9} {r['target']:4d} "
              f"{r['snr']:5.1f} {r['floor']:6.1f}  {turns}  [{r['voice']}]")

    total = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    print(f"\n{len(entries)} calls, {sum(len(e['turns']) for e in entries)} turns, "
          f"{total} bytes ({total / 1e6:.2f} MB) in {out_dir}")
    if total >= MAX_TOTAL_BYTES:
        die(f"dataset is {total} bytes, over the {MAX_TOTAL_BYTES} byte budget")


if __name__ == "__main__":
    main()
