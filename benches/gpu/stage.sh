#!/usr/bin/env bash
# Device side, every call: `bash benches/gpu/stage.sh .gpu/cN`. Checks and keeps the carried
# folder's files under /root/latlab-gpu (kept while the machine stays warm: 30 s after a call),
# and, on the call that brings early.tar, unpacks it and starts build.sh in the background.
set -euo pipefail
dir="$1"; W=/root/latlab-gpu; repo="$PWD"
mkdir -p "$W/parts" "$W/logs"
(cd "$dir" && sha256sum -c --quiet SHA256SUMS) || { echo "stage: $dir: checksum mismatch" >&2; exit 1; }
for f in "$dir"/part.*; do [ -e "$f" ] && cp -f "$f" "$W/parts/"; done
if [ -f "$dir/early.tar" ]; then
  tar -C "$W" -xf "$dir/early.tar"
  cp -f benches/gpu/whisper_rtf.c benches/gpu/build.sh "$W/"
  if [ ! -e "$W/build.started" ]; then
    touch "$W/build.started"
    setsid nohup bash "$W/build.sh" > "$W/logs/build.log" 2>&1 < /dev/null &
  fi
fi
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true;
  echo "parts here: $(ls "$W/parts" | wc -l) of $(cat "$W/parts.count" 2>/dev/null || echo '?')";
  ls "$W"/build-*.ok "$W"/build-*.fail 2>/dev/null || echo "builds: running"; } | tee "${OUT:-/tmp}/stage-$(basename "$dir").txt"
cd "$repo"
