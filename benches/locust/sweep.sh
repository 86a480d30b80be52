#!/usr/bin/env bash
# Runs scale_locust.sh for several N, each only once the machine is otherwise idle (no cargo,
# rustc or other latlab run/emulate process; polled every 30 s, up to WAIT_MAX seconds, default
# 1200). A run during which cargo/rustc/`latlab run` showed up (checked every second), or whose
# other_cpu_s exceeded OTHER_MAX (default 8), is repeated up to RETRIES times (default 2).
# Each output line is scale_locust.sh's JSON plus:
#   waited_s        how long it waited for the machine to go idle
#   idle_at_start   false when it gave up waiting and measured anyway
#   busy_during     true when cargo/rustc/`latlab run` was seen during the run
#   other_cpu_s     CPU seconds used machine-wide while scale_locust.sh ran by anything but
#                   Locust's and the emulator's test window (from /proc/stat; so it includes
#                   both processes' start-up and the scripts: a few seconds)
#   attempt         1 for the first try of this N
# LOCUST_PACER (gevent or thread) and LATLAB_BIN are passed on.
#
#   benches/locust/sweep.sh SECONDS N [N...]
set -euo pipefail
SECONDS_RUN=${1:?usage: sweep.sh SECONDS N [N...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
WAIT_MAX=${WAIT_MAX:-1200}
RETRIES=${RETRIES:-2}
OTHER_MAX=${OTHER_MAX:-8}
FLAG=$(mktemp)
trap 'rm -f "$FLAG"' EXIT

busy() {
    pgrep -x cargo >/dev/null 2>&1 || pgrep -x rustc >/dev/null 2>&1 \
        || pgrep -f 'latlab (run|emulate)' >/dev/null 2>&1
}

busy_now() {  # during a run our own emulator is a `latlab emulate`
    pgrep -x cargo >/dev/null 2>&1 || pgrep -x rustc >/dev/null 2>&1 \
        || pgrep -f 'latlab run' >/dev/null 2>&1
}

busy_jiffies() {  # machine-wide non-idle jiffies
    awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat
}

annotate() {  # LINE WAITED IDLE B0 B1 DURING ATTEMPT
    python3 -c '
import json, os, sys
r = json.loads(sys.argv[1])
total = (int(sys.argv[5]) - int(sys.argv[4])) / os.sysconf("SC_CLK_TCK")
ours = (r.get("cpu_locust_s") or 0) + (r.get("cpu_emulator_s") or 0)
r["waited_s"] = int(sys.argv[2])
r["idle_at_start"] = sys.argv[3] == "true"
r["busy_during"] = sys.argv[6] == "true"
r["other_cpu_s"] = round(total - ours, 2)
r["attempt"] = int(sys.argv[7])
print(json.dumps(r))
' "$@"
}

disturbed() {  # LINE
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(int(r["busy_during"] or not r["idle_at_start"] or r["other_cpu_s"] > float(sys.argv[2])))
' "$1" "$OTHER_MAX"
}

for N in "$@"; do
    attempt=0
    while :; do
        attempt=$((attempt + 1))
        waited=0
        while busy && [ "$waited" -lt "$WAIT_MAX" ]; do
            echo "machine busy (cargo/rustc/latlab running); waiting 30 s (waited ${waited} s)" >&2
            sleep 30
            waited=$((waited + 30))
        done
        idle=true
        if busy; then idle=false; fi
        : > "$FLAG"
        ( while :; do if busy_now; then echo busy >> "$FLAG"; fi; sleep 1; done ) &
        watcher=$!
        b0=$(busy_jiffies)
        line=$("$HERE/scale_locust.sh" "$N" "$SECONDS_RUN")
        b1=$(busy_jiffies)
        kill "$watcher" 2>/dev/null || true
        wait "$watcher" 2>/dev/null || true
        during=false
        if [ -s "$FLAG" ]; then during=true; fi
        out=$(annotate "$line" "$waited" "$idle" "$b0" "$b1" "$during" "$attempt")
        echo "$out"
        if [ "$(disturbed "$out")" = 0 ] || [ "$attempt" -gt "$RETRIES" ]; then break; fi
        echo "N=$N attempt $attempt was disturbed; repeating" >&2
    done
done
