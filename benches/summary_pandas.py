#!/usr/bin/env python3
"""latlab's summary computed with pandas + numpy, for a side-by-side speed comparison.

    python3 benches/summary_pandas.py DIR [--json OUT]

Same grouping (run × scenario × profile × backend × stage), same statistics and the same
bootstrap as latlab (harness/analysis/src/stats.rs): nearest-rank p50/p90/p95/p99, each with
a 95 % interval from 2,000 replicates drawn through the exact order-statistic shortcut
(sorted[ceil(n·V) − 1], V ~ Beta(k, n − k + 1)); the mean's interval from 2,000 resamples up
to 20,000 samples and from N(mean, s²/n) above.
"""
import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

REPLICATES = 2000
RESAMPLE_LIMIT = 20_000
QUANTILES = [(0.50, "p50"), (0.90, "p90"), (0.95, "p95"), (0.99, "p99")]
KEYS = ["run", "scenario", "profile", "backend", "stage"]


def rank(n: int, q: float) -> int:
    return min(max(math.ceil(q * n), 1), n)


def interval(value: float, reps: np.ndarray) -> dict:
    reps = np.sort(reps)
    lo = reps[rank(len(reps), 0.025) - 1]
    hi = reps[rank(len(reps), 0.975) - 1]
    return {"value": float(value), "lo": float(min(lo, value)), "hi": float(max(hi, value))}


def summarize(sorted_ms: np.ndarray, rng: np.random.Generator) -> dict:
    n = len(sorted_ms)
    row = {}
    for q, name in QUANTILES:
        if n == 0:
            row[name] = None
            continue
        k = rank(n, q)
        v = rng.beta(k, n - k + 1, REPLICATES)
        idx = np.clip(np.ceil(n * v).astype(np.int64), 1, n) - 1
        row[name] = interval(sorted_ms[k - 1], sorted_ms[idx])
    if n == 0:
        row["mean"] = None
    else:
        m = sorted_ms.mean()
        if n <= RESAMPLE_LIMIT:
            reps = sorted_ms[rng.integers(0, n, (REPLICATES, n))].mean(axis=1)
        else:
            reps = rng.normal(m, sorted_ms.std(ddof=1) / math.sqrt(n), REPLICATES)
        row["mean"] = interval(m, reps)
    row["max"] = float(sorted_ms[-1]) if n else None
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    df = pd.read_parquet(args.dir / "spans.parquet", columns=KEYS + ["outcome", "latency_ns"])
    for k in KEYS + ["outcome"]:
        df[k] = df[k].astype(str)
    df["latency_ms"] = df["latency_ns"] / 1e6
    df["ok"] = (df["outcome"] == "ok") & df["latency_ns"].notna()
    rng = np.random.default_rng(0x1A71AB)
    rows = []
    for key, g in df.groupby(KEYS, sort=True, observed=True):
        ok = np.sort(g.loc[g["ok"], "latency_ms"].to_numpy(dtype=np.float64))
        errors = int((g["outcome"] == "error").sum())
        row = dict(zip(KEYS, key))
        row.update(
            count=len(ok),
            errors=errors,
            skipped=int((g["outcome"] == "skipped").sum()),
            error_rate=errors / (len(ok) + errors) if len(ok) + errors else 0.0,
        )
        row.update(summarize(ok, rng))
        rows.append(row)
    for r in rows:
        cells = [r["profile"], r["stage"], str(r["count"]), str(r["errors"])]
        cells += [f'{r[n]["value"]:.1f} [{r[n]["lo"]:.1f}, {r[n]["hi"]:.1f}]' if r[n] else "-" for _, n in QUANTILES]
        print("  ".join(cells))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
