#!/usr/bin/env python3
"""Markdown table of scale_locust.sh / sweep.sh JSON lines.

    python3 benches/locust/table.py RESULTS.jsonl [...]

CPU per call = CPU seconds / (users x test seconds), in milliseconds of CPU per second of call
(1000 would be one core per call); calls/core by CPU = 1000 / that, what the CPU alone would
allow, before any lag limit.
"""

import json
import sys


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def main(paths):
    rows = [json.loads(line) for p in paths for line in open(p) if line.strip()]
    print("| pacer | N | frames | lag p50 ms | lag p99 ms | lag max ms | p99 ≤ 1 ms | turns | errors "
          "| CPU Locust s | CPU emulator s | Locust CPU ms/call-s | emulator CPU ms/call-s "
          "| note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | --- |")
    for r in rows:
        n, t = r["users"], r.get("test_s") or r.get("seconds")
        per = lambda cpu: None if cpu is None else cpu / (n * t) * 1000.0  # noqa: E731
        note = []
        if r.get("busy_during") or r.get("idle_at_start") is False:
            note.append("disturbed: build/other run during it")
        if r.get("attempt", 1) > 1:
            note.append(f"attempt {r['attempt']}")
        print(f"| {r.get('pacer', 'gevent')} | {n} | {r['frames']} | {fmt(r['lag_p50_ms'])} "
              f"| {fmt(r['lag_p99_ms'])} | {fmt(r['lag_max_ms'])} "
              f"| {'yes' if r['lag_p99_ms'] is not None and r['lag_p99_ms'] <= 1.0 else 'no'} "
              f"| {r['turns']} | {r['errors']} | {fmt(r['cpu_locust_s'], 2)} "
              f"| {fmt(r['cpu_emulator_s'], 2)} | {fmt(per(r['cpu_locust_s']), 2)} "
              f"| {fmt(per(r['cpu_emulator_s']), 2)} | {'; '.join(note)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
