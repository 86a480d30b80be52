#!/usr/bin/env bash
# Calibrates latlab's baseline gate on the smoke scenario against the seeded emulator.
#
#   benches/calibrate_gate.sh [PAIRS] [SPEED] [CALLS] [JOBS] [SLOW_PAIRS]
#        defaults: 200 pairs, speed 10, 10 calls per profile (the smoke suite's), 8 pairs at once,
#        an injected slowdown in the first 60 pairs
#
# For each pair i it runs the smoke suite with fresh seeds:
#   base  — saved as a baseline;
#   same  — the same scenario again (A/A): any REGRESSED comparison is a false positive;
#   slow  — (first SLOW_PAIRS pairs only) the emulator's LLM time to first token scaled by 1.1
#           (lognormal median 250 → 275 ms, so every LLM latency percentile, P95 included,
#           rises by 10 %): an LLM p95 comparison marked REGRESSED is a detection;
# and gates `same` and `slow` against `base` with the noise band given by BAND_RELATIVE /
# BAND_MS (default: the gate's own). Every comparison (difference, interval, baseline value) is
# kept in $WORK/tally.jsonl, so `benches/calibrate_gate.py` can also replay other bands.
#
# Prints the false-positive rate (pairs with any REGRESSED among all stage percentiles of all
# profiles; goal ≤ 1 %) and the detection rate (profiles whose LLM p95 regressed; goal ≥ 95 %),
# each with its sample count. JOBS pairs run side by side: a smoke run at speed 10 uses ~16 % of
# one core and is mostly waiting for the emulator's (unscaled) reply timings; more than ~8 at
# once on 2 cores and the harness falls behind its own schedule (the summary prints the runs'
# p99 frame pacing lag: keep it to a few ms).
#
# SEED_BASE (default 100000) offsets the seeds, so a second batch draws fresh ones.
# SCENARIO picks the suite (default scenarios/smoke.toml; scenarios/gate.toml is the one sized
# for baseline gating, docs/ci.md). RUN_ARGS adds options to every `latlab run`.
#
# Needs the release binary (cargo build --release --bin latlab).
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-200}
SPEED=${2:-10}
CALLS=${3:-10}
JOBS=${4:-8}
SLOW_PAIRS=${5:-60}
LATLAB=${LATLAB:-$(pwd)/target/release/latlab}
[ -x "$LATLAB" ] || { echo "no $LATLAB: cargo build --release --bin latlab" >&2; exit 2; }

work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
rm -f "$work/tally.jsonl"
here=$(pwd)
# Scenario copies with absolute paths (they live outside scenarios/).
sed -e "s#^dataset = \"\\.\\./#dataset = \"$here/#" \
    -e "s#^profiles_file = \"#profiles_file = \"$here/scenarios/#" \
    "${SCENARIO:-scenarios/smoke.toml}" >"$work/same.toml"
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

RUN_ARGS=${RUN_ARGS:-}
export LATLAB SPEED CALLS SLOW_PAIRS RUN_ARGS SEED_BASE work
export BAND_RELATIVE=${BAND_RELATIVE:-} BAND_MS=${BAND_MS:-}

pair() { # pair I: three runs, two gates, one tally line
    local i=$1 seed=$((${SEED_BASE:-100000} + 3 * $1)) dir="$work/pair-$1"
    local band=()
    [ -n "$BAND_RELATIVE" ] && band+=(--band-relative "$BAND_RELATIVE")
    [ -n "$BAND_MS" ] && band+=(--band-ms "$BAND_MS")
    mkdir -p "$dir"
    run() { # run NAME SCENARIO SEED
        "$LATLAB" run "$work/$2.toml" --out "$dir/$1" --seed "$3" --speed "$SPEED" \
            --calls "$CALLS" $RUN_ARGS --quiet --no-report >"$dir/$1.log" 2>&1 ||
            { echo "pair $i: $1 failed" >&2; cat "$dir/$1.log" >&2; return 1; }
    }
    local sides=(same)
    [ "$i" -le "$SLOW_PAIRS" ] && sides+=(slow)
    run base same "$seed" && run same same $((seed + 1)) || return 1
    if [ "$i" -le "$SLOW_PAIRS" ]; then run slow slow $((seed + 2)) || return 1; fi
    "$LATLAB" baseline save base "$dir/base" --root "$dir/baselines" >/dev/null
    for side in "${sides[@]}"; do
        "$LATLAB" gate "$dir/$side" --targets "$work/targets.toml" \
            --baseline "$dir/baselines/base" --json "$dir/$side.gate.json" "${band[@]}" \
            >/dev/null 2>&1 || true
    done
    python3 - "$dir" "$i" <<'PY' >>"$work/tally.jsonl"
import json, sys
d, i = sys.argv[1], int(sys.argv[2])
def keep(side):
    try:
        g = json.load(open(f"{d}/{side}.gate.json"))
    except FileNotFoundError:
        return []
    return [{"profile": c["profile"], "stage": c["stage"], "metric": c["metric"],
             "n": [c["baseline_samples"], c["candidate_samples"]],
             "baseline_ms": c["baseline_ms"], "difference_ms": c["difference_ms"],
             "band_ms": c["band_ms"], "detectable_ms": c["detectable_ms"],
             "needs_samples": c["needs_samples"], "change": c["change"]} for c in g["comparisons"]]
lag = json.load(open(f"{d}/same/manifest.json")).get("pacing", {})
print(json.dumps({"pair": i, "same": keep("same"), "slow": keep("slow"), "pacing": lag}))
PY
    rm -rf "$dir"
}
export -f pair

start=$(date +%s)
seq 1 "$PAIRS" | xargs -P "$JOBS" -I{} bash -c 'pair {} && printf "." >&2'
echo >&2
echo "$PAIRS pairs in $(($(date +%s) - start)) s ($JOBS at once, speed $SPEED, $CALLS calls per profile)"
python3 "$here/benches/calibrate_gate.py" "$work/tally.jsonl"
echo "per-pair details: $work/tally.jsonl"
