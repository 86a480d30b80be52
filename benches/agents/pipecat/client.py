#!/usr/bin/env python3
"""A small Twilio Media Streams caller that checks the Pipecat bot end to end.

    .venv/bin/python client.py --url ws://127.0.0.1:8765/ws \
        --wav ../../../datasets/smoke/call-01.wav --manifest ../../../datasets/smoke/manifest.jsonl \
        --self-report /tmp/pipecat-self.jsonl

It is a check of the bot, not latlab's measurement. It sends `connected` and `start`, then the
WAV as 8 kHz μ-law `media` events, one 20 ms chunk each, paced like a live caller (chunk i
leaves when its last sample has been "spoken", t0 + (i+1)·20 ms), then silence for --tail
seconds, then `stop`. For each turn of the manifest it prints the caller-side voice-to-voice
time (the recorded end of the caller's speech → the start of the bot's first burst of audible
audio after it and before the caller's next turn ends, taken at the arrival of its chunk plus
the sample's offset inside that chunk) beside the bot's own figure from its self-report file,
paired by turn index (Pipecat counts the user turns it saw, which can differ from the script), and what the bot's stream looked like (chunk sizes,
gaps, clear and mark events).
"""

from __future__ import annotations

import argparse
import asyncio
import audioop  # deprecated in 3.11, removed in 3.13; the stdlib one is what Pipecat uses here too
import base64
import json
import statistics
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import websockets

RATE = 8000
CHUNK = 160  # 20 ms of 8 kHz μ-law
SILENCE = b"\xff" * CHUNK  # μ-law zero


@dataclass
class Heard:
    """What came back from the bot, timed from t0 (the caller's sample 0)."""

    media: list[tuple[float, bytes]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    other: list[tuple[float, str]] = field(default_factory=list)


def caller_audio(wav_path: Path) -> bytes:
    """The WAV as 8 kHz μ-law, padded to whole 20 ms chunks."""
    with wave.open(str(wav_path), "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{wav_path}: expected 16-bit PCM")
        pcm = w.readframes(w.getnframes())
        if w.getnchannels() == 2:
            pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
        pcm, _ = audioop.ratecv(pcm, 2, 1, w.getframerate(), RATE, None)
    ulaw = audioop.lin2ulaw(pcm, 2)
    return ulaw + SILENCE[: (-len(ulaw)) % CHUNK]


def turns_of(manifest: Path, wav: Path) -> list[dict]:
    for line in manifest.read_text().splitlines():
        call = json.loads(line)
        if call["audio"] == wav.name:
            return call["turns"]
    raise SystemExit(f"{manifest}: no call with audio {wav.name}")


def first_audible(payload: bytes, threshold: int) -> int | None:
    """Index of the first sample whose magnitude reaches threshold (of 32768), if any."""
    pcm = audioop.ulaw2lin(payload, 2)
    for i in range(0, len(pcm), 2):
        if abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) >= threshold:
            return i // 2
    return None


async def call(args: argparse.Namespace, audio: bytes) -> tuple[Heard, float]:
    heard = Heard()
    stream_sid, call_sid = "MZlatlabcheck", args.call_sid
    async with websockets.connect(args.url, max_size=None) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "streamSid": stream_sid,
                    "start": {
                        "streamSid": stream_sid,
                        "accountSid": "AClatlabcheck",
                        "callSid": call_sid,
                        "tracks": ["inbound"],
                        "customParameters": {},
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
                    },
                }
            )
        )
        t0 = time.monotonic()

        async def receive() -> None:
            async for message in ws:
                at = time.monotonic() - t0
                event = json.loads(message)
                kind = event.get("event")
                if kind == "media":
                    heard.media.append((at, base64.b64decode(event["media"]["payload"])))
                elif kind == "clear":
                    heard.clears.append(at)
                elif kind == "mark":
                    heard.marks.append((at, event.get("mark", {}).get("name", "")))
                else:
                    heard.other.append((at, kind))

        receiver = asyncio.create_task(receive())
        chunks = len(audio) // CHUNK + int(args.tail * 1000 / 20)
        worst_lag = 0.0
        for i in range(chunks):
            due = t0 + (i + 1) * 0.020
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            worst_lag = max(worst_lag, time.monotonic() - due)
            payload = audio[i * CHUNK : (i + 1) * CHUNK] or SILENCE
            await ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "sequenceNumber": str(i + 2),
                        "streamSid": stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(i + 1),
                            "timestamp": str(i * 20),
                            "payload": base64.b64encode(payload).decode(),
                        },
                    }
                )
            )
        await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(chunks + 2), "streamSid": stream_sid}))
        await asyncio.sleep(0.2)
        receiver.cancel()
    return heard, worst_lag


def onsets(heard: Heard, threshold: int, gap: float) -> list[float]:
    """Starts of the bot's bursts of audible audio, in s from t0.

    A burst starts at the first audible sample (its chunk's arrival + its offset in the chunk)
    after a clear event or after `gap` seconds without an audible chunk, so a reply still
    playing when the caller finishes a turn is not taken for the answer to that turn.
    """
    out: list[float] = []
    last = float("-inf")
    clears = list(heard.clears)
    for at, payload in heard.media:
        i = first_audible(payload, threshold)
        if i is None:
            continue
        cleared = any(last < c <= at for c in clears)
        if at - last > gap or cleared:
            out.append(at + i / RATE)
        last = at
    return out


def self_reported(path: Path | None, call_sid: str) -> dict[int, dict]:
    if path is None or not path.is_file():
        return {}
    rows = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("call_sid") == call_sid:
            rows[row["turn"]] = row
    return rows


def main() -> int:
    here = Path(__file__).resolve().parent
    smoke = here.parents[2] / "datasets" / "smoke"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765/ws")
    parser.add_argument("--wav", type=Path, default=smoke / "call-01.wav")
    parser.add_argument("--manifest", type=Path, default=smoke / "manifest.jsonl")
    parser.add_argument("--call-sid", default=None, help="start.callSid (default: <call>#0)")
    parser.add_argument("--tail", type=float, default=6.0, help="seconds of silence after the audio")
    parser.add_argument("--threshold", type=int, default=300, help="audible: |sample| ≥ this (of 32768)")
    parser.add_argument("--gap", type=float, default=0.5, help="silence (s) that ends a bot burst")
    parser.add_argument("--self-report", type=Path, default=None, help="the bot's --self-report file")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-turn results here")
    args = parser.parse_args()
    args.call_sid = args.call_sid or f"{args.wav.stem}#0"

    audio = caller_audio(args.wav)
    turns = turns_of(args.manifest, args.wav)
    heard, worst_lag = asyncio.run(call(args, audio))
    time.sleep(0.5)  # the bot writes its last line when the call ends
    reported = self_reported(args.self_report, args.call_sid)
    audible = onsets(heard, args.threshold, args.gap)

    rows = []
    print(f"call {args.call_sid}: {len(audio) / RATE:.2f} s of caller audio + {args.tail:.0f} s silence; "
          f"send lag ≤ {worst_lag * 1000:.1f} ms")
    print("turn  speech_end_s  bot_audible_s  caller_v2v_ms  pipecat_latency_ms  diff_ms  stages")
    for n, turn in enumerate(turns):
        end = turn["end_ms"] / 1000
        next_end = turns[n + 1]["end_ms"] / 1000 if n + 1 < len(turns) else float("inf")
        onset = next((t for t in audible if end < t < next_end), None)
        v2v = None if onset is None else (onset - end) * 1000
        own = reported.get(n, {})
        own_ms = own.get("latency_ms")
        diff = None if v2v is None or own_ms is None else v2v - own_ms
        rows.append({"turn": n, "speech_end_s": end, "bot_audible_s": onset, "caller_v2v_ms": v2v,
                     "pipecat_latency_ms": own_ms, "diff_ms": diff, "stages": own.get("stages")})
        fmt = lambda v, p=0: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
        print(f"{n:>4}  {end:>12.2f}  {fmt(onset, 3):>13}  {fmt(v2v):>13}  {fmt(own_ms):>18}  "
              f"{fmt(diff):>7}  {json.dumps(own.get('stages', {}))}")

    sizes = [len(p) for _, p in heard.media]
    gaps = [b[0] - a[0] for a, b in zip(heard.media, heard.media[1:])]
    print(f"bot media: {len(sizes)} events, {sum(sizes) / RATE:.2f} s of audio; "
          + (f"payload bytes min/median/max {min(sizes)}/{statistics.median(sizes):.0f}/{max(sizes)}; "
             f"gaps ms median {statistics.median(gaps) * 1000:.1f}, max {max(gaps) * 1000:.1f}"
             if len(sizes) > 1 else ""))
    print(f"bot clear events at s: {[round(t, 3) for t in heard.clears]}; marks: {len(heard.marks)}; "
          f"other events: {sorted({k for _, k in heard.other})}")
    extra = sorted(set(reported) - set(range(len(turns))))
    if extra:
        print(f"self-report has turns the manifest lacks: {extra} (Pipecat split or merged a turn)")
    if args.json:
        args.json.write_text(json.dumps({"call_sid": args.call_sid, "turns": rows,
                                         "clears_s": heard.clears, "marks": len(heard.marks),
                                         "media_bytes": sizes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
