#!/usr/bin/env python3
"""Summarises benches/calibrate_gate.sh's tally: the gate's false-positive and detection rates.

    python3 benches/calibrate_gate.py TALLY.jsonl

First the rates as the gate decided them (its default band, or BAND_* given to the script),
then the same comparisons replayed against other noise bands: a comparison is REGRESSED when
the lower end of its interval of (candidate − baseline) lies above max(relative × baseline,
floor). Each rate comes with its count and a 95 % Wilson interval.
"""
import json
import math
import sys


def wilson(k, n, z=1.96):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(k, n):
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {100 * k / max(n, 1):.1f} % (95 % CI {100 * lo:.1f}–{100 * hi:.1f} %)"


QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def needs(q, alpha):
    """The gate's rule (bounds::min_samples_to_pass): fewest n with P(Binom(n, 1 − q) ≤ 1) ≤ alpha."""
    n = 2
    while q ** n + n * (1 - q) * q ** (n - 1) > alpha:
        n += 1
    return n


def comparable(c):
    if "needs_samples" in c:
        return c["detectable_ms"] is not None
    # Tallies from before the field existed: the same rule at the gate's 99 % (0.5 % a side).
    return min(c["n"]) >= needs(QUANTILES[c["metric"]], 0.005)


def regressed(c, relative=None, floor=None):
    if relative is None:
        return c["change"] == "REGRESSED"
    width = max(relative * abs(c["baseline_ms"]), floor)
    return comparable(c) and c["difference_ms"]["lo"] > width


def rates(rows, relative=None, floor=None):
    fp_pairs = sum(1 for r in rows if any(regressed(c, relative, floor) for c in r["same"]))
    fp_cmp = sum(sum(1 for c in r["same"] if regressed(c, relative, floor)) for r in rows)
    cmps = sum(len(r["same"]) for r in rows)
    det = [c for r in rows for c in r["slow"] if c["stage"] == "llm" and c["metric"] == "p95"]
    hits = sum(1 for c in det if regressed(c, relative, floor))
    return fp_pairs, fp_cmp, cmps, hits, len(det)


def compared(rows):
    """Comparisons per metric that the gate actually judged (enough samples on both sides)."""
    out = {}
    for r in rows:
        for c in r["same"]:
            k = c["metric"]
            done, total = out.get(k, (0, 0))
            out[k] = (done + comparable(c), total + 1)
    return out


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    if not rows:
        sys.exit("no pairs in the tally")
    pairs = len(rows)
    fp_pairs, fp_cmp, cmps, hits, det = rates(rows)
    n = sorted({tuple(c["n"]) for r in rows for c in r["same"] if c["stage"] == "llm"})
    print(f"A/A pairs: {pairs}; LLM samples per profile (baseline, candidate): "
          f"{n[0]}…{n[-1]}" if n else f"A/A pairs: {pairs}")
    print(f"false positives (gate with any REGRESSED): {rate(fp_pairs, pairs)}; "
          f"{fp_cmp} of {cmps} comparisons")
    print(f"detection (+10 % LLM p95 marked REGRESSED): {rate(hits, det)}")
    judged = compared(rows)
    print("percentiles compared (enough samples on both sides): " + ", ".join(
        f"{m} {judged[m][0]}/{judged[m][1]}" for m in QUANTILES if m in judged))
    slow = [c for r in rows for c in r["slow"] if c["stage"] == "llm" and c["metric"] == "p95"]
    if slow:
        rel = sorted(c["difference_ms"]["value"] / c["baseline_ms"] for c in slow if c["baseline_ms"])
        half = sorted((c["difference_ms"]["hi"] - c["difference_ms"]["lo"]) / 2 / c["baseline_ms"]
                      for c in slow if c["baseline_ms"])
        print(f"observed LLM p95 change: median {100 * rel[len(rel) // 2]:+.1f} %; "
              f"median half-width of its interval {100 * half[len(half) // 2]:.1f} % of the baseline")
    lags = sorted(r["pacing"].get("p99_ns", 0) / 1e6 for r in rows if r.get("pacing"))
    if lags:
        print(f"A/A runs' p99 frame pacing lag: median {lags[len(lags) // 2]:.2f} ms, "
              f"max {lags[-1]:.2f} ms")
    print()
    print("| band (relative, floor) | false-positive pairs | REGRESSED comparisons | detection |")
    print("|---|---|---|---|")
    for relative in (0.0, 0.01, 0.02, 0.05, 0.10, 0.15, 0.20):
        for floor in (0.0, 2.0, 5.0):
            fp_pairs, fp_cmp, cmps, hits, det = rates(rows, relative, floor)
            print(f"| ±max({100 * relative:.0f} %, {floor:.0f} ms) | {rate(fp_pairs, pairs)} "
                  f"| {fp_cmp}/{cmps} | {rate(hits, det)} |")


if __name__ == "__main__":
    main()
