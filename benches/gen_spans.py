#!/usr/bin/env python3
"""Writes a synthetic latlab results folder with N spans (default 10 million) for benchmarks.

    python3 benches/gen_spans.py --spans 10000000 --out /tmp/latlab-10m

Deterministic (seeded numpy). spans.parquet has exactly the columns latlab writes
(docs/metrics.md): 3 profiles, the 5 stages of every turn in order, lognormal latencies per
stage, about 3 % LLM/TTS errors with the downstream stages skipped. turns.parquet has one row
per turn; manifest.json carries the keys latlab's analysis reads.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

STAGES = ["endpoint", "stt", "llm", "tts", "turn"]
BACKENDS = ["deepgram", "deepgram", "openai", "elevenlabs", "pipeline"]
PROFILES = ["conservative", "balanced", "aggressive"]
# Median latency (ms) per profile × stage, and the lognormal sigma.
MEDIAN = {
    "conservative": [880, 880, 260, 180, 1580],
    "balanced": [570, 570, 260, 170, 1160],
    "aggressive": [240, 300, 260, 170, 840],
}
SIGMA = [0.08, 0.10, 0.30, 0.25, 0.15]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    started = time.monotonic()
    rng = np.random.default_rng(args.seed)
    turns = args.spans // len(STAGES)
    n = turns * len(STAGES)
    args.out.mkdir(parents=True, exist_ok=True)

    profile_of_turn = np.arange(turns) % len(PROFILES)
    call_of_turn = np.arange(turns) // 3
    anchor = (np.arange(turns, dtype=np.int64) * 50_000_000) + 1_000_000_000
    # 3 % of turns fail at the LLM (1.5 %) or the TTS (1.5 %).
    fail = rng.random(turns)
    llm_fail = fail < 0.015
    tts_fail = (fail >= 0.015) & (fail < 0.03)

    stage_idx = np.tile(np.arange(len(STAGES)), turns)
    turn_idx = np.repeat(np.arange(turns), len(STAGES))
    prof = profile_of_turn[turn_idx]
    medians = np.array([MEDIAN[p] for p in PROFILES], dtype=np.float64)[prof, stage_idx]
    sigma = np.array(SIGMA)[stage_idx]
    latency_ms = medians * np.exp(sigma * rng.standard_normal(n))
    outcome = np.zeros(n, dtype=np.int8)  # 0 ok, 1 error, 2 skipped
    lf = llm_fail[turn_idx]
    tf = tts_fail[turn_idx]
    outcome[lf & (stage_idx == 2)] = 1
    outcome[lf & (stage_idx >= 3)] = 2
    outcome[tf & (stage_idx == 3)] = 1
    outcome[(lf | tf) & (stage_idx == 4)] = 1
    latency_ns = (latency_ms * 1e6).astype(np.int64)
    has_latency = outcome == 0
    scheduled = anchor[turn_idx]

    def strings(values, index):
        return pa.DictionaryArray.from_arrays(pa.array(index, type=pa.int32()), pa.array(values))

    kinds = np.where(outcome == 1, 0, -1)
    spans = pa.table(
        {
            "run": strings(["bench-10m"], np.zeros(n, dtype=np.int32)),
            "scenario": strings(["bench"], np.zeros(n, dtype=np.int32)),
            "profile": strings(PROFILES, prof.astype(np.int32)),
            "call": pa.array(np.char.add("call-", call_of_turn[turn_idx].astype("U9")), pa.string()),
            "iteration": pa.array(np.zeros(n, dtype=np.int64)),
            "turn": pa.array(np.zeros(n, dtype=np.int64)),
            "stage": strings(STAGES, stage_idx.astype(np.int32)),
            "backend": strings(BACKENDS, stage_idx.astype(np.int32)),
            "scheduled_ns": pa.array(scheduled),
            "start_ns": pa.array(scheduled),
            "first_output_ns": pa.array(scheduled + latency_ns, mask=~has_latency),
            "end_ns": pa.array(scheduled + latency_ns, mask=~has_latency),
            "latency_ns": pa.array(latency_ns, mask=~has_latency),
            "audio_ms": pa.array(np.full(n, 1500.0), mask=stage_idx != 1),
            "tokens": pa.array(np.full(n, 24, dtype=np.int64), mask=stage_idx != 2),
            "bytes": pa.array(np.full(n, 96_044, dtype=np.int64), mask=stage_idx != 3),
            "chars": pa.array(np.full(n, 60, dtype=np.int64)),
            "outcome": strings(["ok", "error", "skipped"], outcome.astype(np.int32)),
            "error_kind": pa.DictionaryArray.from_arrays(
                pa.array(kinds, mask=kinds < 0, type=pa.int32()), pa.array(["http"])
            ),
            "error_status": pa.array(np.full(n, 503, dtype=np.int64), mask=outcome != 1),
            "error_message": pa.DictionaryArray.from_arrays(
                pa.array(kinds, mask=kinds < 0, type=pa.int32()), pa.array(["HTTP 503 Service Unavailable"])
            ),
        }
    )
    pq.write_table(spans, args.out / "spans.parquet", compression="snappy")

    v2v = latency_ns.reshape(turns, len(STAGES))[:, 4]
    ok_turn = ~(llm_fail | tts_fail)
    turns_table = pa.table(
        {
            "run": pa.array(["bench-10m"] * turns),
            "scenario": pa.array(["bench"] * turns),
            "profile": pa.array(np.array(PROFILES)[profile_of_turn]),
            "call": pa.array(np.char.add("call-", call_of_turn.astype("U9"))),
            "iteration": pa.array(np.zeros(turns, dtype=np.int64)),
            "turn": pa.array(np.zeros(turns, dtype=np.int64)),
            "user_start_scheduled_ns": pa.array(anchor - 1_500_000_000),
            "user_end_scheduled_ns": pa.array(anchor),
            "tts_first_audible_ns": pa.array(anchor + v2v, mask=~ok_turn),
            "voice_to_voice_ns": pa.array(v2v, mask=~ok_turn),
            "outcome": pa.array(np.where(ok_turn, "ok", "error")),
        }
    )
    pq.write_table(turns_table, args.out / "turns.parquet", compression="snappy")
    manifest = {
        "schema_version": 1,
        "latlab_version": "bench",
        "run_id": "bench-10m",
        "status": "complete",
        "started_at": "2026-11-23T00:00:00Z",
        "duration_s": None,
        "git": None,
        "scenario": {"name": "bench", "path": "benches/gen_spans.py", "sha256": "0" * 64},
        "dataset": {"name": "synthetic", "path": "", "sha256": "0" * 64},
        "seed": args.seed,
        "speed": 1.0,
        "calls_per_profile": int(call_of_turn.max() + 1),
        "concurrency": 1,
        "profiles": [{"name": p} for p in PROFILES],
        "backends": {},
        "host": {"cpu_model": "", "cores": 0, "memory_bytes": 0, "os": "", "kernel": ""},
        "counts": {"calls": 0, "turns": turns, "failed_turns": int((~ok_turn).sum()), "spans": n},
        "pacing": None,
        "emulator": None,
        "notes": [],
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"{n} spans, {turns} turns in {args.out} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
