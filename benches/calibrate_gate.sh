#!/usr/bin/env bash
# Calibrates latlab's baseline gate on the smoke scenario against the seeded emulator.
#
#   benches/calibrate_gate.sh [PAIRS] [SPEED] [CALLS]      (defaults: 200 pairs, speed 10, 10 calls)
#
# For each pair i it runs the smoke suite three times with fresh seeds:
#   base  — saved as a baseline;
#   same  — the same scenario again (A/A): any REGRESSED comparison is a false positive;
#   slow  — the emulator's LLM time to first token scaled by 1.1 (lognormal median 250 → 275 ms,
#           so every LLM latency percentile, P95 included, rises by about 10 %): an LLM p95
#           comparison marked REGRESSED is a detection.
# and gates `same` and `slow` against `base` with the default noise band (override with
# BAND_RELATIVE / BAND_MS). Prints the false-positive rate (pairs with any REGRESSED among all
# stage percentiles of all profiles; goal ≤ 1 %) and the detection rate (profiles whose LLM p95
# regressed; goal ≥ 95 %), each with its sample count.
#
# Needs the release binary (cargo build --release --bin latlab). Runs take ~4 s each at speed 10.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-200}
SPEED=${2:-10}
CALLS=${3:-10}
LATLAB=${LATLAB:-target/release/latlab}
[ -x "$LATLAB" ] || { echo "no $LATLAB: cargo build --release --bin latlab" >&2; exit 2; }

work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
here=$(pwd)
# Scenario copies with absolute paths (they live outside scenarios/).
sed -e "s#^dataset = \"\\.\\./#dataset = \"$here/#" \
    -e "s#^profiles_file = \"#profiles_file = \"$here/scenarios/#" \
    scenarios/smoke.toml >"$work/same.toml"
sed -e 's#^ttft = { dist = "lognormal", median_ms = 250.0#ttft = { dist = "lognormal", median_ms = 275.0#' \
    "$work/same.toml" >"$work/slow.toml"
grep -q 'median_ms = 275.0' "$work/slow.toml" || { echo "could not inject the LLM slowdown" >&2; exit 2; }
cat >"$work/targets.toml" <<'EOF'
# No real target: the calibration looks only at the baseline comparisons.
[[target]]
stage = "turn"
metric = "error_rate"
crit = 100
EOF

band=()
[ -n "${BAND_RELATIVE:-}" ] && band+=(--band-relative "$BAND_RELATIVE")
[ -n "${BAND_MS:-}" ] && band+=(--band-ms "$BAND_MS")

run() { # run NAME SCENARIO SEED
    "$LATLAB" run "$2" --out "$work/$1" --seed "$3" --speed "$SPEED" --calls "$CALLS" \
        --quiet --no-report >"$work/$1.log" 2>&1 || { cat "$work/$1.log" >&2; exit 1; }
}
gate() { # gate NAME → gate JSON in $work/NAME.gate.json
    "$LATLAB" gate "$work/$1" --targets "$work/targets.toml" --baseline "$work/baselines/base" \
        --json "$work/$1.gate.json" "${band[@]}" >/dev/null 2>&1 || true
}

start=$(date +%s)
for i in $(seq 1 "$PAIRS"); do
    seed=$((100000 + 3 * i))
    run base "$work/same.toml" "$seed"
    "$LATLAB" baseline save base "$work/base" --root "$work/baselines" >/dev/null
    run same "$work/same.toml" $((seed + 1))
    run slow "$work/slow.toml" $((seed + 2))
    gate same
    gate slow
    python3 - "$work" "$i" <<'PY'
import json, sys
work, i = sys.argv[1], sys.argv[2]
same = json.load(open(f"{work}/same.gate.json"))
slow = json.load(open(f"{work}/slow.gate.json"))
fp = [f"{c['profile']}/{c['stage']}/{c['metric']}" for c in same["comparisons"] if c["change"] == "REGRESSED"]
llm = [c for c in slow["comparisons"] if c["stage"] == "llm" and c["metric"] == "p95"]
with open(f"{work}/tally.jsonl", "a") as f:
    f.write(json.dumps({"pair": int(i), "false_positives": fp,
                        "llm_p95": [(c["profile"], c["change"], c["difference_ms"], c["baseline_ms"]) for c in llm],
                        "comparisons": len(same["comparisons"])}) + "\n")
PY
    rm -rf "$work/base" "$work/same" "$work/slow" "$work/baselines"
    printf '\rpair %d/%d (%ds)' "$i" "$PAIRS" $(($(date +%s) - start)) >&2
done
echo >&2

python3 - "$work/tally.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pairs = len(rows)
fp_pairs = sum(1 for r in rows if r["false_positives"])
fp_cmp = sum(len(r["false_positives"]) for r in rows)
cmps = sum(r["comparisons"] for r in rows)
det = [c for r in rows for c in r["llm_p95"]]
hits = sum(1 for c in det if c[1] == "REGRESSED")
rel = sorted(c[2]["value"] / c[3] for c in det if c[3])
med = rel[len(rel) // 2] if rel else float("nan")
print(f"A/A pairs: {pairs}; pairs with any REGRESSED: {fp_pairs} "
      f"(false-positive rate {100 * fp_pairs / max(pairs, 1):.1f} %; "
      f"{fp_cmp} of {cmps} comparisons)")
print(f"injected +10 % LLM TTFT: LLM p95 REGRESSED in {hits} of {len(det)} profile comparisons "
      f"(detection rate {100 * hits / max(len(det), 1):.1f} %); median observed LLM p95 change {100 * med:+.1f} %")
PY
echo "per-pair details: $work/tally.jsonl"
