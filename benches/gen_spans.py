#!/usr/bin/env python3
"""Writes a synthetic latlab results folder with N spans (default 10 million) for benchmarks.

    python3 benches/gen_spans.py --spans 10000000 --out /tmp/latlab-10m

Deterministic: the same arguments give the same files (seeded numpy, fixed chunking, no
wall clock in the output). The folder looks like one `latlab run` (docs/metrics.md):

- spans.parquet: exactly latlab's span columns and types (all nullable, plain strings),
  five rows per turn in pipeline order (endpoint, stt, llm, tts, turn), rows sorted by
  profile, iteration, call, turn, stage. Three profiles that differ in endpointing; backends
  deepgram (endpoint and stt: endpointing = "stt", so both are stamped by the same message),
  openai, elevenlabs, pipeline. Lognormal latencies per stage with a small slow tail; about
  3 % of turns fail (no transcript, LLM or TTS errors) and the stages after a failure are
  skipped, the turn span carrying the turn's error.
- turns.parquet: one row per turn, every boundary consistent with the spans
  (voice_to_voice_ns = the turn span's latency_ns, and so on).
- manifest.json: the keys latlab writes; status "complete"; run_id = the folder name (the
  spans' `run` column), which latlab's analysis requires.

Memory stays around 1-2 GB whatever N: spans are generated and written in chunks of whole
turns (one Parquet row group per chunk).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

STAGES = ["endpoint", "stt", "llm", "tts", "turn"]
BACKENDS = ["deepgram", "deepgram", "openai", "elevenlabs", "pipeline"]
# Sorted by name, as latlab sorts its tables; the manifest lists them in run order.
PROFILES = ["aggressive", "balanced", "conservative"]
RUN_ORDER = ["conservative", "balanced", "aggressive"]
ENDPOINTING_MS = {"conservative": 800, "balanced": 500, "aggressive": 200}
# Median STT/endpoint latency (ms) per profile; the other stages do not depend on it.
STT_MEDIAN_MS = {"conservative": 880.0, "balanced": 570.0, "aggressive": 290.0}
DATASET_CALLS = 40
TURNS_PER_CHUNK = 200_000  # 1 M spans per row group
OUTCOMES = ["ok", "error", "skipped"]
OK, ERROR, SKIPPED = 0, 1, 2
# Failure modes: (probability per turn, failing stage, error_kind, error_status, message).
FAILURES = [
    (0.006, "stt", "no_transcript", None, "no final transcript within 5000 ms"),
    (0.008, "llm", "http", 503, "HTTP 503 Service Unavailable: upstream overloaded"),
    (0.004, "llm", "stall", None, "no token for 3000 ms"),
    (0.002, "llm", "timeout", None, "no response status within 5000 ms"),
    (0.006, "tts", "http", 429, "HTTP 429 Too Many Requests: concurrent request limit"),
    (0.004, "tts", "disconnected", None, "body read failed: connection reset by peer"),
]
PHRASES = [
    ("I'd like to book a table for two on Friday at 7 p.m.", "Sure. A table for two on Friday at 7 p.m., which name should I put it under?"),
    ("What time do you open tomorrow?", "We open at nine in the morning. Anything else I can help with?"),
    ("Can I change my delivery address?", "Of course. What is the new address?"),
    ("It's 42 Baker Street, second floor.", "Thanks, I've updated it to 42 Baker Street, second floor."),
    ("How much is the monthly plan?", "The monthly plan is twelve dollars. Would you like to sign up?"),
    ("No thanks, that's all.", "Alright. Have a great day!"),
    ("Is the order already on its way?", "Yes. It left the warehouse this morning and should arrive by noon."),
    ("Please cancel my appointment on Monday.", "Done. Your Monday appointment is cancelled."),
]


def dictionary(index: np.ndarray, values: list, mask: np.ndarray | None = None) -> pa.Array:
    """A plain string column built cheaply from small-integer codes."""
    idx = pa.array(index.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, pa.array(values, pa.string())).cast(pa.string())


def i64(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype(np.int64), mask=None if valid is None else ~valid)


def f64(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pa.array(values.astype(np.float64), mask=None if valid is None else ~valid)


def lognormal(rng, median_ms, sigma, n, tail_p=0.01, tail_factor=3.0):
    """Lognormal latencies in ns with a small multiplicative slow tail."""
    ms = median_ms * np.exp(sigma * rng.standard_normal(n))
    ms *= np.where(rng.random(n) < tail_p, tail_factor * (1.0 + rng.random(n)), 1.0)
    return (ms * 1e6).astype(np.int64)


def dataset(rng):
    """The replayed dataset: per (call, turn) the user's speech start/end on the call's
    recording (ms) and a phrase index."""
    turns_per_call = rng.integers(3, 13, DATASET_CALLS)
    call = np.repeat(np.arange(DATASET_CALLS), turns_per_call)
    turn = np.concatenate([np.arange(k) for k in turns_per_call])
    speech_ms = np.round(np.clip(rng.lognormal(np.log(1600), 0.45, len(call)), 300, 9000), -1)
    gap_ms = np.round(rng.uniform(4000, 9000, len(call)), -1)  # agent turn + pause
    start_ms = np.zeros(len(call))
    for i in range(1, len(call)):
        if call[i] == call[i - 1]:
            start_ms[i] = start_ms[i - 1] + speech_ms[i - 1] + gap_ms[i - 1]
        else:
            start_ms[i] = 400.0
    phrase = rng.integers(0, len(PHRASES), len(call))
    return call, turn, start_ms, start_ms + speech_ms, phrase


def chunk(rng, first: int, count: int, per_profile: int, ds, run: str, scenario: str):
    """Spans and turns of global turns [first, first + count)."""
    ds_call, ds_turn, ds_start_ms, ds_end_ms, ds_phrase = ds
    d = len(ds_call)
    g = np.arange(first, first + count)
    prof = g // per_profile
    local = g % per_profile
    iteration = local // d
    pos = local % d
    call = ds_call[pos]
    # Calls start 250 ms apart in (profile, iteration, call) order, 100 ms of setup first.
    call_ordinal = (prof * ((per_profile + d - 1) // d) + iteration) * DATASET_CALLS + call
    call_start = call_ordinal.astype(np.int64) * 250_000_000 + 100_000_000
    user_start = call_start + (ds_start_ms[pos] * 1e6).astype(np.int64)
    user_end = call_start + (ds_end_ms[pos] * 1e6).astype(np.int64)
    speech_ms = ds_end_ms[pos] - ds_start_ms[pos]

    # Failures: one mode at most per turn.
    u = rng.random(count)
    mode = np.full(count, -1)
    edge = 0.0
    for m, (p, *_rest) in enumerate(FAILURES):
        mode[(u >= edge) & (u < edge + p)] = m
        edge += p
    fail_stage = np.array([STAGES.index(f[1]) for f in FAILURES] + [99])[mode]  # 99: none
    stt_ok = fail_stage != 1
    llm_ran = stt_ok
    llm_ok = llm_ran & (fail_stage != 2)
    tts_ran = llm_ok
    tts_ok = tts_ran & (fail_stage != 3)

    # Stage latencies (ns).
    stt_median = np.array([STT_MEDIAN_MS[p] for p in PROFILES])[prof]
    stt_lat = (stt_median * 1e6 * np.exp(0.10 * rng.standard_normal(count))).astype(np.int64)
    stt_lat += np.where(rng.random(count) < 0.01, (rng.uniform(500, 2500, count) * 1e6).astype(np.int64), 0)
    llm_lat = lognormal(rng, 260.0, 0.30, count, 0.02, 2.5)
    sentence_gap = lognormal(rng, 110.0, 0.40, count, 0.0)
    tts_lat = lognormal(rng, 170.0, 0.25, count, 0.01, 3.0)
    ttfb = (tts_lat * rng.uniform(0.55, 0.85, count)).astype(np.int64)

    final = user_end + stt_lat
    first_interim = user_start + np.minimum((rng.uniform(250, 450, count) * 1e6).astype(np.int64), user_end - user_start + stt_lat)
    llm_sent = final + rng.integers(40_000, 200_000, count)
    first_token = final + llm_lat
    first_sentence = first_token + sentence_gap
    tokens = rng.poisson(22, count) + 4
    reply_chars = tokens * 4 + rng.integers(0, 4, count)
    llm_end = first_token + tokens * rng.integers(8_000_000, 16_000_000, count)
    tts_sent = first_sentence + rng.integers(20_000, 120_000, count)
    first_byte = tts_sent + ttfb
    first_audible = first_sentence + tts_lat
    agent_audio_ms = np.round(reply_chars * rng.uniform(55, 70, count), -1)
    tts_done = np.maximum(first_audible + (agent_audio_ms * 0.35e6).astype(np.int64), llm_end + 50_000_000)
    tts_bytes = (agent_audio_ms * 32).astype(np.int64) + 44
    transcript_chars = np.array([len(p[0]) for p in PHRASES])[ds_phrase[pos]]
    v2v = first_audible - user_end
    turn_ok = tts_ok

    # Barge-in: agent speech running into the same call's next user turn.
    speaking_end = np.maximum(first_audible + (agent_audio_ms * 1e6).astype(np.int64), tts_done)
    nxt = np.minimum(pos + 1, d - 1)
    has_next = (pos + 1 < d) & (ds_call[nxt] == call)
    next_start = call_start + (ds_start_ms[nxt] * 1e6).astype(np.int64)
    barge = np.maximum(0, speaking_end - next_start) / 1e6
    barge_valid = has_next & turn_ok

    err_kind = [f[2] for f in FAILURES]
    err_status = np.array([f[3] or 0 for f in FAILURES] + [0])[mode]
    err_msg = [f[4] for f in FAILURES]
    has_err = mode >= 0
    mode_idx = np.where(has_err, mode, 0)

    # ---- spans: 5 rows per turn, interleaved in stage order.
    n = count * 5

    def inter(*cols):
        return np.stack(cols, axis=1).reshape(n)

    t_ = np.ones(count, dtype=bool)
    f_ = np.zeros(count, dtype=bool)
    outcome = inter(
        np.where(stt_ok, OK, ERROR),  # endpoint: same message as the final transcript
        np.where(stt_ok, OK, ERROR),
        np.where(llm_ok, OK, np.where(llm_ran, ERROR, SKIPPED)),
        np.where(tts_ok, OK, np.where(tts_ran, ERROR, SKIPPED)),
        np.where(turn_ok, OK, ERROR),
    )
    scheduled = inter(user_end, user_end, np.where(stt_ok, final, user_end), np.where(llm_ok, first_sentence, np.where(stt_ok, final, user_end)), user_end)
    start = inter(user_end, user_start, llm_sent, tts_sent, user_end)
    start_v = inter(t_, t_, llm_ran, tts_ran, t_)
    first_out = inter(final, first_interim, first_token, first_audible, first_audible)
    first_out_v = inter(stt_ok, t_, llm_ok, tts_ok, turn_ok)
    end = inter(final, final, llm_end, tts_done, tts_done)
    end_v = inter(stt_ok, stt_ok, llm_ok, tts_ok, turn_ok)
    latency = inter(stt_lat, stt_lat, llm_lat, tts_lat, v2v)
    ok = outcome == OK
    audio = inter(speech_ms, speech_ms, speech_ms, agent_audio_ms, agent_audio_ms)
    audio_v = inter(f_, t_, f_, tts_ok, turn_ok)
    tok = inter(tokens, tokens, tokens, tokens, tokens)
    tok_v = inter(f_, f_, llm_ok, f_, f_)
    byt = inter(tts_bytes, tts_bytes, tts_bytes, tts_bytes, tts_bytes)
    byt_v = inter(f_, f_, f_, tts_ok, f_)
    chars = inter(transcript_chars, transcript_chars, reply_chars, reply_chars, reply_chars)
    chars_v = inter(f_, stt_ok, llm_ok, tts_ok, f_)
    # The failing stage, the endpoint of a failed STT and the turn carry the error.
    stage_err = inter(has_err & ~stt_ok, has_err & ~stt_ok, has_err & llm_ran & ~llm_ok, has_err & tts_ran & ~tts_ok, has_err)
    span_mode = np.repeat(mode_idx, 5)
    span_status = np.repeat(err_status, 5)
    stage_idx = np.tile(np.arange(5), count)
    rep = lambda a: np.repeat(a, 5)  # noqa: E731

    spans = pa.table(
        {
            "run": dictionary(np.zeros(n), [run]),
            "scenario": dictionary(np.zeros(n), [scenario]),
            "profile": dictionary(rep(prof), PROFILES),
            "call": dictionary(rep(call), [f"call-{c + 1:03d}" for c in range(DATASET_CALLS)]),
            "iteration": i64(rep(iteration)),
            "turn": i64(rep(ds_turn[pos])),
            "stage": dictionary(stage_idx, STAGES),
            "backend": dictionary(stage_idx, BACKENDS),
            "scheduled_ns": i64(scheduled),
            "start_ns": i64(start, start_v),
            "first_output_ns": i64(first_out, first_out_v),
            "end_ns": i64(end, end_v),
            "latency_ns": i64(latency, ok),
            "audio_ms": f64(audio, audio_v),
            "tokens": i64(tok, tok_v),
            "bytes": i64(byt, byt_v),
            "chars": i64(chars, chars_v),
            "outcome": dictionary(outcome, OUTCOMES),
            "error_kind": dictionary(span_mode, err_kind, ~stage_err),
            "error_status": i64(span_status, stage_err & (span_status > 0)),
            "error_message": dictionary(span_mode, err_msg, ~stage_err),
        }
    )

    # ---- turns: one row per turn.
    phrase = ds_phrase[pos]
    turns = pa.table(
        {
            "run": dictionary(np.zeros(count), [run]),
            "scenario": dictionary(np.zeros(count), [scenario]),
            "profile": dictionary(prof, PROFILES),
            "call": dictionary(call, [f"call-{c + 1:03d}" for c in range(DATASET_CALLS)]),
            "iteration": i64(iteration),
            "turn": i64(ds_turn[pos]),
            "user_start_scheduled_ns": i64(user_start),
            "user_end_scheduled_ns": i64(user_end),
            "speech_end_detected_ns": i64(final, stt_ok),
            "final_transcript_ns": i64(final, stt_ok),
            "llm_request_sent_ns": i64(llm_sent, llm_ran),
            "llm_first_token_ns": i64(first_token, llm_ok),
            "first_sentence_ns": i64(first_sentence, llm_ok),
            "tts_request_sent_ns": i64(tts_sent, tts_ran),
            "tts_first_byte_ns": i64(first_byte, tts_ok),
            "tts_first_audible_ns": i64(first_audible, tts_ok),
            "tts_done_ns": i64(tts_done, tts_ok),
            "voice_to_voice_ns": i64(v2v, turn_ok),
            "agent_audio_ms": f64(agent_audio_ms, tts_ok),
            "barge_in_ms": f64(barge, barge_valid),
            "reference": dictionary(phrase, [p[0] for p in PHRASES]),
            "transcript": dictionary(phrase, [p[0] for p in PHRASES], ~stt_ok),
            "reply": dictionary(phrase, [p[1] for p in PHRASES], ~llm_ok),
            "outcome": dictionary(np.where(turn_ok, 0, 1), OUTCOMES),
            "error_kind": dictionary(mode_idx, err_kind, ~has_err),
            "error_status": i64(err_status, has_err & (err_status > 0)),
            "error_message": dictionary(mode_idx, err_msg, ~has_err),
        }
    )
    failed = int((~turn_ok).sum())
    return spans, turns, failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000, help="spans to write (a multiple of 5)")
    ap.add_argument("--out", type=Path, required=True, help="results folder to (over)write")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.spans < 5 * len(PROFILES):
        sys.exit("--spans must be at least 15 (five stages × three profiles)")
    if args.spans % 5:
        print(f"note: {args.spans} is not a multiple of 5; writing {args.spans // 5 * 5} spans", file=sys.stderr)
    started = time.monotonic()
    total_turns = args.spans // 5
    per_profile = -(-total_turns // len(PROFILES))
    run = args.out.resolve().name
    scenario = "bench"
    ds = dataset(np.random.default_rng([args.seed, 0]))
    args.out.mkdir(parents=True, exist_ok=True)

    spans_tmp = args.out / "spans.parquet.tmp"
    turns_tmp = args.out / "turns.parquet.tmp"
    spans_writer = turns_writer = None
    failed = 0
    for i, first in enumerate(range(0, total_turns, TURNS_PER_CHUNK)):
        count = min(TURNS_PER_CHUNK, total_turns - first)
        rng = np.random.default_rng([args.seed, 1, i])
        spans, turns, f = chunk(rng, first, count, per_profile, ds, run, scenario)
        failed += f
        if spans_writer is None:
            spans_writer = pq.ParquetWriter(spans_tmp, spans.schema, compression="snappy")
            turns_writer = pq.ParquetWriter(turns_tmp, turns.schema, compression="snappy")
        spans_writer.write_table(spans, row_group_size=len(spans))
        turns_writer.write_table(turns, row_group_size=len(turns))
        del spans, turns
    spans_writer.close()
    turns_writer.close()
    spans_tmp.replace(args.out / "spans.parquet")
    turns_tmp.replace(args.out / "turns.parquet")

    d = len(ds[0])
    calls = 0  # call replays: whole dataset iterations plus the calls a last partial one began
    for p in range(len(PROFILES)):
        full, rem = divmod(max(0, min(per_profile, total_turns - p * per_profile)), d)
        calls += full * DATASET_CALLS + (int(ds[0][rem - 1]) + 1 if rem else 0)
    manifest = {
        "schema_version": 1,
        "latlab_version": "synthetic (benches/gen_spans.py)",
        "run_id": run,
        "status": "complete",
        "started_at": "2026-01-01T00:00:00Z",
        "duration_s": None,
        "git": None,
        "scenario": {"name": scenario, "path": "benches/gen_spans.py", "sha256": "0" * 64},
        "dataset": {"name": f"synthetic-{DATASET_CALLS}-calls", "path": "", "sha256": "0" * 64},
        "seed": args.seed,
        "speed": 1.0,
        "calls_per_profile": -(-per_profile // d) * DATASET_CALLS,
        "concurrency": 40,
        "profiles": [
            {
                "name": p,
                "endpointing": "stt",
                "endpointing_ms": ENDPOINTING_MS[p],
                "utterance_end_ms": None,
                "interim_results": True,
                "tts_start": "first_sentence",
                "tts_streaming": True,
                "connection_reuse": True,
                "llm_streaming": True,
            }
            for p in RUN_ORDER
        ],
        "backends": {
            "emulated": True,
            "llm": {"kind": "openai", "base_url": "synthetic", "model": "synthetic"},
            "stt": {"kind": "deepgram", "base_url": "synthetic", "model": "synthetic"},
            "tts": {"kind": "elevenlabs", "base_url": "synthetic", "model": "synthetic"},
        },
        "host": {"cpu_model": "synthetic", "cores": 0, "memory_bytes": 0, "os": "synthetic", "kernel": "synthetic"},
        "counts": {"calls": calls, "turns": total_turns, "failed_turns": failed, "spans": total_turns * 5},
        "pacing": None,
        "emulator": None,
        "notes": [f"synthetic results written by benches/gen_spans.py --spans {args.spans} --seed {args.seed}"],
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        f"{total_turns * 5} spans, {total_turns} turns ({failed} failed) in {args.out} "
        f"({time.monotonic() - started:.1f} s)"
    )


if __name__ == "__main__":
    main()
