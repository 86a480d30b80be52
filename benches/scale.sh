#!/usr/bin/env bash
# How many concurrent real-time calls latlab sustains on this machine against the loopback
# emulator running in its own process, with the harness's own scheduling lag (audio frames
# and call starts: actual − scheduled) at p99 ≤ 1 ms.
#
#   benches/scale.sh N [SECONDS] [FRAME_MS]
#
# Runs the smoke dataset's calls in a closed loop of N calls in flight, starting calls for
# SECONDS (default 30) of real time, then lets the calls in flight finish; one profile
# (balanced), real time, 20 ms frames unless FRAME_MS says otherwise. With `taskset`, latlab
# is pinned to CPU 0 and the emulator to CPU 1, so "per core" means what it says. Prints one
# JSON line: calls in flight, frames, p50/p99/max frame lag, p99 call-start lag, turns, failed
# turns, CPU seconds of latlab and the emulator, whether p99 ≤ 1 ms held.
#
# Needs: target/release/latlab (cargo build --release --bin latlab), or LATLAB=path.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: benches/scale.sh N [SECONDS] [FRAME_MS]}
SECONDS_=${2:-30}
FRAME_MS=${3:-20}
LATLAB=${LATLAB:-$PWD/target/release/latlab}
PIN=${PIN:-1} # 0: let the OS place both processes
[ -x "$LATLAB" ] || { echo "no latlab binary at $LATLAB (cargo build --release --bin latlab)" >&2; exit 2; }

work=$(mktemp -d)
emu_pid=""
cleanup() {
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The emulator: smoke.toml's timings, on free ports, in its own process.
python3 - "$PWD" "$work/emulator.toml" <<'PY'
import sys, tomllib
root, out = sys.argv[1], sys.argv[2]
smoke = tomllib.load(open(f"{root}/scenarios/smoke.toml", "rb"))
emu = smoke["emulator"]
def table(d):
    return ", ".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in d.items())
lines = [f'dataset = "{root}/datasets/smoke"', "seed = 42"]
for service, settings in emu.items():
    lines.append(f"[{service}]")
    for k, v in settings.items():
        if isinstance(v, dict):
            lines.append(f"{k} = {{ {table(v)} }}")
        else:
            lines.append(f"{k} = {v!r}")
open(out, "w").write("\n".join(lines).replace("'", '"') + "\n")
PY
emu=("$LATLAB" emulate --config "$work/emulator.toml")
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    emu=(taskset -c 1 "${emu[@]}") # taskset execs the emulator: $! is its pid
fi
"${emu[@]}" >"$work/emulator.out" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do
    grep -q "press Ctrl-C" "$work/emulator.out" && break
    sleep 0.1
done
stt=$(sed -n 's/^stt: \(ws:\/\/[^/]*\).*/\1/p' "$work/emulator.out")
llm=$(sed -n 's/^llm: \(http:\/\/[^ ]*\/v1\).*/\1/p' "$work/emulator.out")
tts=$(sed -n 's/^tts: \(http:\/\/[^/]*\).*/\1/p' "$work/emulator.out")
[ -n "$stt" ] && [ -n "$llm" ] && [ -n "$tts" ] || { cat "$work/emulator.out" >&2; exit 1; }

cat >"$work/scale.toml" <<TOML
name = "scale"
dataset = "$PWD/datasets/smoke"
seed = 42
concurrency = $N
stagger_ms = $(( 1000 * 2 / N > 0 ? 1000 * 2 / N : 1 ))
frame_ms = $FRAME_MS
profiles_file = "$PWD/scenarios/profiles.toml"
run_profiles = ["balanced"]

[load]
duration_s = $SECONDS_

[backends.stt]
kind = "deepgram"
base_url = "$stt"

[backends.llm]
kind = "openai"
base_url = "$llm"

[backends.tts]
kind = "elevenlabs"
base_url = "$tts"
output_format = "wav_16000"
TOML

start_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
emu_before=$(start_cpu "$emu_pid")
cmd=("$LATLAB" run "$work/scale.toml" --out "$work/out" --quiet --no-report)
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    cmd=(taskset -c 0 "${cmd[@]}")
fi
/usr/bin/time -f "%U %S" -o "$work/latlab.time" "${cmd[@]}" >"$work/run.out" 2>&1 ||
    { cat "$work/run.out" >&2; exit 1; }
emu_after=$(start_cpu "$emu_pid")
ticks=$(getconf CLK_TCK)
python3 - "$work/out/manifest.json" "$work/latlab.time" "$(( emu_after - emu_before ))" "$ticks" "$N" "$FRAME_MS" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
emu_s = int(sys.argv[3]) / int(sys.argv[4])
p, c, counts = m["pacing"], m["call_starts"], m["counts"]
ok = p["p99_ns"] <= 1_000_000 and c["p99_ns"] <= 1_000_000
print(json.dumps({
    "tool": "latlab", "calls_in_flight": int(sys.argv[5]), "frame_ms": int(sys.argv[6]),
    "max_in_flight_seen": counts["max_in_flight"], "calls": counts["calls"],
    "frames": p["frames"], "lag_p50_ms": p["p50_ns"] / 1e6, "lag_p99_ms": p["p99_ns"] / 1e6,
    "lag_max_ms": p["max_ns"] / 1e6, "call_start_p99_ms": c["p99_ns"] / 1e6,
    "turns": counts["turns"], "failed_turns": counts["failed_turns"],
    "cpu_latlab_s": round(user + system, 2), "cpu_emulator_s": round(emu_s, 2),
    "duration_s": round(m["duration_s"], 1), "p99_within_1ms": ok,
}))
PY
