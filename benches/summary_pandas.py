#!/usr/bin/env python3
"""latlab's summary computed with pandas + numpy, for a side-by-side speed comparison.

    python3 benches/summary_pandas.py DIR [--json OUT] [--timings]

Reads DIR/spans.parquet (and DIR/manifest.json for the run id and profile order) and prints
what `latlab show DIR` prints, computed the same way (harness/analysis/src/report.rs and
stats.rs):

- one row per run × scenario × profile × backend × stage, for the run named by the manifest
  and the stages endpoint, stt, llm, tts, turn (printed as voice-to-voice), in the manifest's
  profile order then pipeline order;
- count = spans with outcome "ok" and a latency; errors; skipped;
  error_rate = errors / (count + errors);
- latency in ms = latency_ns / 1e6 (as float64);
- p50/p90/p95/p99 nearest rank: sorted[ceil(q·n) − 1] (rank clamped to [1, n]), each with a
  95 % bootstrap interval from 2,000 replicates drawn through the exact order-statistic
  shortcut: a replicate is sorted[ceil(n·V) − 1] with V ~ Beta(k, n − k + 1);
- the mean with a 95 % bootstrap interval: 2,000 real resamples up to 20,000 samples, else
  2,000 draws of Normal(mean, s²/n);
- intervals are the nearest-rank 2.5 % and 97.5 % points of the replicates, widened to hold
  the estimate; max.

Every interval has its own generator seeded from latlab's seed and the statistic's name, as
latlab does, but numpy's generators are not latlab's ChaCha8: point estimates are identical,
interval bounds agree only statistically.

--json OUT writes the rows as latlab's `latlab show DIR --json` does (fields run, scenario,
profile, backend, stage, count, errors, skipped, error_rate, mean, p50, p90, p95, p99 as
{value, lo, hi} or null, max). --timings prints phase times to stderr (the benchmark times
the whole command, start-up and Parquet reading included).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPLICATES = 2000
RESAMPLE_LIMIT = 20_000
BOOTSTRAP_SEED = 0x1A71AB
QUANTILES = [(0.50, "p50"), (0.90, "p90"), (0.95, "p95"), (0.99, "p99")]
STAGES = ["endpoint", "stt", "llm", "tts", "turn"]
KEYS = ["run", "scenario", "profile", "backend", "stage"]


def rank(n: int, q: float) -> int:
    """1-based nearest rank of quantile q among n samples."""
    return min(max(math.ceil(min(max(q, 0.0), 1.0) * n), 1), n)


def rng_for(what: str) -> np.random.Generator:
    """One generator per statistic (FNV-1a of its name, as latlab's rng_for)."""
    h = 0xCBF29CE484222325 ^ BOOTSTRAP_SEED
    for b in what.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return np.random.default_rng(h)


def estimate(value: float, reps: np.ndarray) -> dict:
    reps = np.sort(reps)
    lo = float(reps[rank(len(reps), 0.025) - 1])
    hi = float(reps[rank(len(reps), 0.975) - 1])
    value = float(value)
    return {"value": value, "lo": min(lo, value), "hi": max(hi, value)}


def quantile_estimate(sorted_ms: np.ndarray, q: float, what: str) -> dict | None:
    n = len(sorted_ms)
    if n == 0:
        return None
    k = rank(n, q)
    v = rng_for(what).beta(k, n - k + 1, REPLICATES)
    index = np.clip(np.ceil(n * v).astype(np.int64), 1, n) - 1
    return estimate(sorted_ms[k - 1], sorted_ms[index])


def mean_estimate(values: np.ndarray, what: str) -> dict | None:
    n = len(values)
    if n == 0:
        return None
    m = values.sum() / n
    rng = rng_for(what)
    if n <= RESAMPLE_LIMIT:
        block = max(1, 4_000_000 // n)  # replicates per block: bounded memory
        reps = np.concatenate(
            [
                values[rng.integers(0, n, (min(block, REPLICATES - i), n))].mean(axis=1)
                for i in range(0, REPLICATES, block)
            ]
        )
    else:
        var = ((values - m) ** 2).sum() / (n - 1)
        reps = rng.normal(m, math.sqrt(var / n), REPLICATES)
    return estimate(m, reps)


def summary(directory: Path, timings: bool = False) -> list[dict]:
    t0 = time.perf_counter()
    manifest = json.loads((directory / "manifest.json").read_text())
    spans = pd.read_parquet(directory / "spans.parquet", columns=KEYS + ["outcome", "latency_ns"])
    t_read = time.perf_counter()

    ok = spans["outcome"].eq("ok") & spans["latency_ns"].notna()
    flags = pd.DataFrame(
        {
            "count": ok,
            "errors": spans["outcome"].eq("error"),
            "skipped": spans["outcome"].eq("skipped"),
        }
    )
    counts = flags.groupby([spans[k] for k in KEYS], sort=False, observed=True).sum()
    latency_ms = spans.loc[ok, "latency_ns"].astype(np.float64) / 1e6
    sorted_by_group = {
        key: np.sort(g.to_numpy(dtype=np.float64))
        for key, g in latency_ms.groupby([spans.loc[ok, k] for k in KEYS], sort=False, observed=True)
    }
    t_group = time.perf_counter()

    # latlab's row order: the run's profiles as the manifest lists them (then any other),
    # stages in pipeline order; only the manifest's run and the five stages are reported.
    run_id = manifest["run_id"]
    order = [p["name"] for p in manifest.get("profiles", [])]
    keys = [k for k in counts.index if k[0] == run_id and k[4] in STAGES]
    for k in keys:
        if k[2] not in order:
            order.append(k[2])
    keys.sort(key=lambda k: (order.index(k[2]), STAGES.index(k[4]), k[3], k[1]))
    dropped = len(counts) - len(keys)
    if dropped:
        print(f"note: {dropped} span groups of another run or stage are not reported", file=sys.stderr)

    rows = []
    for key in keys:
        run, scenario, profile, backend, stage = key
        c = counts.loc[key]
        v = sorted_by_group.get(key, np.empty(0))
        n, errors = len(v), int(c["errors"])
        assert n == int(c["count"])
        what = f"{run}/{profile}/{backend}/{stage}"
        row = {
            "run": run,
            "scenario": scenario,
            "profile": profile,
            "backend": backend,
            "stage": stage,
            "count": n,
            "errors": errors,
            "skipped": int(c["skipped"]),
            "error_rate": errors / (n + errors) if n + errors else 0.0,
            "mean": mean_estimate(v, f"{what}/mean"),
        }
        for q, name in QUANTILES:
            row[name] = quantile_estimate(v, q, f"{what}/{name}")
        row["max"] = float(v[-1]) if n else None
        rows.append(row)
    t_stats = time.perf_counter()
    if timings:
        print(
            f"read {t_read - t0:.2f} s, group {t_group - t_read:.2f} s, "
            f"bootstrap {t_stats - t_group:.2f} s",
            file=sys.stderr,
        )
    return rows


def print_table(rows: list[dict]) -> None:
    def cell(e: dict | None, ci: bool) -> str:
        if e is None:
            return "-"
        return f'{e["value"]:.1f} [{e["lo"]:.1f}, {e["hi"]:.1f}]' if ci else f'{e["value"]:.1f}'

    header = ["profile", "stage", "n", "errors", "p50 ms [95% CI]", "p90 ms", "p95 ms", "p99 ms", "max ms", "mean ms [95% CI]"]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r["profile"],
                "voice-to-voice" if r["stage"] == "turn" else r["stage"],
                str(r["count"]),
                str(r["errors"]),
                *(cell(r[name], True) for _, name in QUANTILES),
                "-" if r["max"] is None else f'{r["max"]:.1f}',
                cell(r["mean"], True),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))
            ).rstrip()
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="a latlab results folder (spans.parquet, manifest.json)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the rows as JSON")
    ap.add_argument("--timings", action="store_true", help="print phase times to stderr")
    args = ap.parse_args()
    rows = summary(args.dir, args.timings)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
