#!/usr/bin/env bash
# Device side, the last call: `bash benches/gpu/run.sh .gpu/cN`. Stages the last folder, joins
# the carried models, waits for the builds and measures; every measurement fails on its own
# (steps.tsv says which), and everything lands in $OUT (7 files):
#   facts.txt  steps.tsv  whisper.tsv  llama.md  summary.md  telemetry-run.tar.gz  logs.tar.gz
set -euo pipefail
: "${OUT:?run on the device machine, where OUT is set}"
W=/root/latlab-gpu; repo="$PWD"
bash benches/gpu/stage.sh "$1"
mkdir -p "$W/logs" "$W/models/whisper" "$W/models/gemma"
printf 'step\tstatus\tseconds\n' > "$OUT/steps.tsv"
step() {  # step NAME CMD...: time it, log it, never stop the script
  local name=$1; shift; local t0; t0=$(date +%s.%N)
  if "$@" > "$W/logs/$name.log" 2>&1; then s=ok; else s="failed($?)"; fi
  printf '%s\t%s\t%.1f\n' "$name" "$s" "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" | tee -a "$OUT/steps.tsv"
}
facts() {
  nvidia-smi; nvidia-smi -q -d CLOCK,POWER,MEMORY,COMPUTE
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit,compute_cap --format=csv
  nvcc --version || true; cmake --version | head -1; uname -a; nproc; free -g; cat /etc/os-release
  cat "$W/logs/build-times.txt" 2>/dev/null || true
}
assemble() {
  cd "$W" && [ "$(ls parts | wc -l)" = "$(cat parts.count)" ] || { echo "missing parts: have $(ls parts | wc -l) of $(cat parts.count)"; return 1; }
  cat parts/part.* > bulk.tar.zst && sha256sum -c bulk.sha256 && tar -I zstd -xf bulk.tar.zst -C "$W" && rm bulk.tar.zst &&
  (cd "$W" && sha256sum -c models.sha256) &&
  python3 "$repo/benches/gpu/gguf_skeleton.py" grow <(zstd -dc gemma.head.zst) "$(cat gemma.size)" models/gemma/gemma0.gguf &&
  zstd -d -f latlab.zst -o latlab && chmod +x latlab
}
wait_builds() {  # builds started on the first call; up to 7 minutes more here
  for _ in $(seq 420); do ls "$W"/build-whisper.* "$W"/build-llama.* >/dev/null 2>&1 && break; sleep 1; done
  cat "$W/logs/build-times.txt"; ls "$W"/build-*.ok
}
whisper_rtf() {
  printf 'device\tfa\tthreads\trep\taudio_ms\tinfer_ms\trtf\ttext\twav\tmodel\n' > "$OUT/whisper.tsv"
  for m in $(ls "$W"/models/whisper/ggml-*.bin); do
    for wav in call-01 call-09 call-11; do
      for cfg in "gpu fa 4" "gpu nofa 4" "cpu nofa 8" "cpu nofa 15"; do
        set -- $cfg
        "$W/whisper_rtf" "$m" "$repo/datasets/smoke/$wav.wav" "$1" "$2" "$3" 6 2>>"$W/logs/whisper-stderr.log" |
          sed "s|\$|\t$wav\t$(basename "$m")|" >> "$OUT/whisper.tsv" || echo "failed: $m $wav $cfg"
      done
    done
  done
}
llama_tps() {
  B="$W/build/llama/bin/llama-bench"; M="$W/models/gemma/gemma0.gguf"
  { echo "## GPU, all layers offloaded"; "$B" -m "$M" -ngl 99 -fa 0,1 -p 512 -n 128 -r 5 -o md
    echo; echo "## CPU"; "$B" -m "$M" -ngl 0 -t 8,15 -p 512 -n 128 -r 3 -o md; } > "$OUT/llama.md"
}
telemetry_run() {  # a real latlab run (emulator smoke suite) while llama-bench loads the GPU
  cd "$repo"; L="$W/latlab"
  if ldd "$L" | grep -q 'not found'; then export LD_LIBRARY_PATH="$W/lib"; fi
  ldd "$L"
  ( timeout 90 "$W/build/llama/bin/llama-bench" -m "$W/models/gemma/gemma0.gguf" -ngl 99 -p 2048 -n 512 -r 100 > /dev/null 2>&1 || true ) &
  local load=$!
  "$L" run scenarios/smoke.toml --out "$W/telemetry-run" --quiet; local rc=$?
  kill "$load" 2>/dev/null || true; wait || true
  tar -C "$W" -czf "$OUT/telemetry-run.tar.gz" telemetry-run
  python3 - "$W/telemetry-run/telemetry.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
gpu = [r for r in rows if any(k.startswith("gpu") and r[k] for k in r)]
print(f"telemetry.jsonl: {len(rows)} samples, {len(gpu)} with GPU fields")
if rows: print("keys:", sorted(rows[-1].keys())); print("last:", json.dumps(rows[-1])[:600])
sys.exit(0 if gpu else 1)
PY
  return $rc
}
summary() {
  python3 - "$OUT/whisper.tsv" > "$OUT/summary.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
groups = {}
for r in rows:
    if r["rep"] == "0": continue  # warm-up: first inference after load
    groups.setdefault((r["model"], r["device"], r["fa"], r["threads"]), []).append(float(r["rtf"]))
print("| model | device | flash attn | threads | RTF median | RTF max | n |\n|---|---|---|---|---|---|---|")
for k, v in sorted(groups.items()):
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {statistics.median(v):.4f} | {max(v):.4f} | {len(v)} |")
PY
  cat "$OUT/summary.md"
}
step facts facts; cp "$W/logs/facts.log" "$OUT/facts.txt"
step assemble assemble
step wait_builds wait_builds
step whisper_rtf whisper_rtf
step llama_tps llama_tps
step telemetry_run telemetry_run
step summary summary
cp "$W/logs/build-times.txt" "$W/logs/" 2>/dev/null || true
tar -C "$W" -czf "$OUT/logs.tar.gz" logs
cat "$OUT/steps.tsv"
