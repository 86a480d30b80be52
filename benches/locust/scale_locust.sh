#!/usr/bin/env bash
# Locust's side of the scale benchmark (issue 5, item 8): N concurrent real-time calls driven by
# one Locust process (benches/locust/locustfile.py) against latlab's emulator in its own process.
#
#   benches/locust/scale_locust.sh N [SECONDS]
#
# Prints progress on stderr and one line of JSON on stdout:
#   {"tool":"locust","users":N,"frames":..,"lag_p50_ms":..,"lag_p99_ms":..,"lag_max_ms":..,
#    "turns":..,"errors":..,"cpu_locust_s":..,"cpu_emulator_s":.., ...}
# Needs: a built latlab (target/release/latlab, or LATLAB_BIN) and the Python packages of
# benches/locust/requirements.txt. With taskset, the emulator is pinned to CPU 1 and Locust to
# CPU 0 (LOCUST_CPU / EMULATOR_CPU override), so Locust's CPU is one core's worth.
set -euo pipefail

N=${1:?usage: scale_locust.sh N [SECONDS]}
SECONDS_RUN=${2:-30}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${LATLAB_BIN:-$ROOT/target/release/latlab}
LOCUST_CPU=${LOCUST_CPU:-0}
EMULATOR_CPU=${EMULATOR_CPU:-1}
PYTHON=${PYTHON:-python3}

[ -x "$BIN" ] || { echo "no latlab binary at $BIN (cargo build --release, or set LATLAB_BIN)" >&2; exit 2; }
"$PYTHON" -c 'import locust, websocket' 2>/dev/null \
    || { echo "missing Python packages: pip install -r benches/locust/requirements.txt" >&2; exit 2; }

TMP=$(mktemp -d)
EMU_PID=
cleanup() {
    if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2>/dev/null; then
        kill -INT "$EMU_PID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$EMU_PID" 2>/dev/null || break; sleep 0.3; done
        kill -KILL "$EMU_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# The emulator's timings: scenarios/smoke.toml's [emulator.*] tables, its seed and dataset.
cat > "$TMP/emulator.toml" <<EOF
dataset = "$ROOT/datasets/smoke"
seed = 42

[stt]
port = 0
final_delay = { dist = "lognormal", median_ms = 60.0, sigma = 0.25 }
interim_delay = { dist = "constant", ms = 30.0 }
interim_interval_ms = 300

[llm]
port = 0
ttft = { dist = "lognormal", median_ms = 250.0, sigma = 0.3 }
inter_token = { dist = "lognormal", median_ms = 20.0, sigma = 0.3 }

[tts]
port = 0
ttfb = { dist = "lognormal", median_ms = 150.0, sigma = 0.3 }
chunk_ms = 100
chunk_gap = { dist = "gamma", shape = 4.0, scale_ms = 5.0 }
leading_silence_ms = 120
ms_per_char = 60
EOF

PIN_EMU=()
PIN_LOCUST=()
if command -v taskset >/dev/null 2>&1; then
    PIN_EMU=(taskset -c "$EMULATOR_CPU")
    PIN_LOCUST=(taskset -c "$LOCUST_CPU")
    echo "pinning: emulator to CPU $EMULATOR_CPU, locust to CPU $LOCUST_CPU (taskset)" >&2
else
    echo "pinning: none (no taskset); CPU seconds are still per process" >&2
fi

"${PIN_EMU[@]}" "$BIN" emulate --config "$TMP/emulator.toml" > "$TMP/emulator.out" 2> "$TMP/emulator.err" &
EMU_PID=$!
for _ in $(seq 1 100); do
    grep -q '^tts: ' "$TMP/emulator.out" 2>/dev/null && break
    kill -0 "$EMU_PID" 2>/dev/null || { cat "$TMP/emulator.err" >&2; echo "emulator exited" >&2; exit 2; }
    sleep 0.1
done
STT_URL=$(sed -n 's/^stt: //p' "$TMP/emulator.out")
LLM_URL=$(sed -n 's/^llm: //p' "$TMP/emulator.out")
TTS_URL=$(sed -n 's/^tts: \(.*\)\/{voice_id}\/stream$/\1/p' "$TMP/emulator.out")
[ -n "$STT_URL" ] && [ -n "$LLM_URL" ] && [ -n "$TTS_URL" ] \
    || { cat "$TMP/emulator.out" "$TMP/emulator.err" >&2; echo "could not read the emulator's URLs" >&2; exit 2; }
echo "emulator pid $EMU_PID: $STT_URL $LLM_URL $TTS_URL" >&2

export LATLAB_STT_URL=$STT_URL LATLAB_LLM_URL=$LLM_URL LATLAB_TTS_URL=$TTS_URL
export LATLAB_DATASET=$ROOT/datasets/smoke LATLAB_EMU_PID=$EMU_PID LOCUST_LAG_OUT=$TMP/lag.json
set +e
"${PIN_LOCUST[@]}" "$PYTHON" -m locust --headless -f "$ROOT/benches/locust/locustfile.py" \
    -u "$N" -r "$N" -t "${SECONDS_RUN}s" --only-summary --stop-timeout 0 \
    --loglevel WARNING > "$TMP/locust.out" 2>&1
LOCUST_RC=$?
set -e
if [ -n "${LOCUST_LOG:-}" ]; then cp "$TMP/locust.out" "$LOCUST_LOG"; fi
[ -s "$TMP/lag.json" ] || { tail -40 "$TMP/locust.out" >&2; echo "locust wrote no results (rc $LOCUST_RC)" >&2; exit 1; }

"$PYTHON" - "$TMP/lag.json" "$N" "$SECONDS_RUN" "$LOCUST_RC" "${#PIN_LOCUST[@]}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
out = {"tool": "locust", "users": int(sys.argv[2]), "seconds": int(sys.argv[3])}
for k in ("frames", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "turns", "errors",
          "cpu_locust_s", "cpu_emulator_s"):
    out[k] = r.get(k)
out.update({k: v for k, v in r.items() if k not in out})
out["locust_rc"] = int(sys.argv[4])
out["pinned"] = sys.argv[5] != "0"
print(json.dumps(out))
EOF
