#!/usr/bin/env python3
"""latlab's own cost around local models, from a finished run's results folder.

    python3 benches/local_overhead.py RESULTS_DIR

For every turn whose end of speech the local VAD decided, latlab's STT stage runs from that
decision (`speech_end_detected_ns`) to the final transcript (`final_transcript_ns`). whisper.cpp's
own part of it is the `whisper_full_with_state` call (`whisper_ms` in local_stats.json); the
rest is waiting for the inference slot (`waited_ms`) and latlab's own work: the Finalize hop,
converting the samples, reading the text back, handing the event to the pipeline. Prints, per
profile, n and the p50/p90 of that overhead in ms and as a share of whisper.cpp's time, and the
Silero VAD's cost per 32 ms chunk (p50/p99, n). Exact percentiles (nearest rank), stdlib only.
"""

import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def pct(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[max(1, math.ceil(q * len(v))) - 1]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    results = Path(sys.argv[1])
    stats = json.loads((results / "local_stats.json").read_text())
    turns = [json.loads(line) for line in (results / "turns.jsonl").read_text().splitlines() if line]

    # Segments the pipeline finalized, per session, in audio order.
    segments = defaultdict(list)  # (model label, session) -> finalized segments
    for model, s in stats.get("stt", {}).items():
        for inf in s["inferences"]:
            if inf["end"] == "finalize":
                segments[(model, inf["session"])].append(inf)

    # Where each turn's end of speech was decided, in ms of its call's audio: the dataset's
    # end of the turn plus how long after it the VAD decided.
    manifest = json.loads((results / "manifest.json").read_text())
    ends = {}
    for line in (Path(manifest["dataset"]["path"]) / "manifest.jsonl").read_text().splitlines():
        if line.strip():
            call = json.loads(line)
            ends[call["id"]] = [t["end_ms"] for t in call["turns"]]

    # Which whisper model each profile used (its label in local_stats.json).
    stt = manifest["backends"].get("stt", {}).get("config", {})
    label = {}
    for p in manifest["profiles"]:
        local = p.get("local", {})
        model = local.get("stt_model", stt.get("model", "tiny.en"))
        beam = local.get("beam_size", stt.get("beam_size", 1))
        label[p["name"]] = f"whisper {model} beam {beam}"

    rows = defaultdict(list)
    unpaired = 0
    profiles = {t["profile"] for t in turns}
    for t in turns:
        if not (t.get("speech_end_detected_ns") and t.get("final_transcript_ns")):
            continue
        decided_ms = ends[t["call"]][t["turn"]] + (t["speech_end_detected_ns"] - t["user_end_scheduled_ns"]) / 1e6
        segs = segments.get((label.get(t["profile"]), f"{t['call']}#{t['iteration']}"), [])
        best = min(segs, key=lambda i: abs(i["audio_end_ms"] - decided_ms), default=None)
        # The segment the VAD's Finalize closed ends at the frame that decided it (20 ms).
        if best is None or abs(best["audio_end_ms"] - decided_ms) > 40:
            unpaired += 1
            continue
        stage_ms = (t["final_transcript_ns"] - t["speech_end_detected_ns"]) / 1e6
        own_ms = stage_ms - best["waited_ms"] - best["whisper_ms"]
        rows[t["profile"]].append((stage_ms, best["whisper_ms"], best["waited_ms"], own_ms))
    skipped = unpaired
    if len(set(label[p] for p in profiles)) < len(profiles):
        print("(profiles sharing a whisper model share session ids: turns are paired by where their "
              "segment ended; run one profile, --profile NAME, for a pairing beyond doubt)")

    print("profile            n   STT stage p50   whisper.cpp p50   slot wait p50   latlab's own p50 / p90 (ms)   share of whisper.cpp p50 / p90")
    for profile, r in sorted(rows.items()):
        own = [x[3] for x in r]
        share = [x[3] / x[1] * 100 for x in r if x[1] > 0]
        print(
            f"{profile:16} {len(r):3}   {pct([x[0] for x in r], .5):10.1f}   {pct([x[1] for x in r], .5):14.1f}"
            f"   {pct([x[2] for x in r], .5):12.1f}   {pct(own, .5):9.2f} / {pct(own, .9):6.2f}"
            f"                   {pct(share, .5):6.2f} % / {pct(share, .9):5.2f} %"
        )
    if skipped:
        print(f"({skipped} turns not paired with a segment one to one: left out)")
    for model, s in stats.get("vad", {}).items():
        c = s["chunk_us"]
        print(f"{model}: per 32 ms chunk p50 {c['p50']:.0f} µs, p99 {c['p99']:.0f} µs, max {c['max']:.0f} µs (n = {c['n']})")
    for model, s in stats.get("stt", {}).items():
        rtf = s.get("real_time_factor")
        print(f"{model}: {s['compute_ms']['n']} inferences, compute p50 {s['compute_ms']['p50']:.0f} ms, "
              f"real-time factor {rtf:.3f}" if rtf is not None else f"{model}: no inference")
    for model, s in stats.get("llm", {}).items():
        t = s["tokens_per_s"]
        p = s["prompt_eval_ms"]
        print(f"{model}: {p['n']} generations, prompt eval p50 {p['p50']:.0f} ms, "
              f"tokens/s p50 {t['p50'] if t['p50'] is not None else float('nan'):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
