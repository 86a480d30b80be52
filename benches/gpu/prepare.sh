#!/usr/bin/env bash
# Here (the CPU machine), in the checkout the session was started in (the one the device tool
# sends): stages what the GPU calls carry into .gpu/c1, .gpu/c2, … (git-ignored through
# .git/info/exclude), each within 64 MiB together with the working tree, and prints the calls.
#   benches/gpu/prepare.sh [--with-base]
# Needs: models fetched (python3 models/fetch.py whisper-tiny.en gemma-3-270m [whisper-base]),
# a release latlab (target/release/latlab or LATLAB_BIN), the crates' sources (cargo fetch), zstd.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
exclude="$(git rev-parse --git-path info/exclude)"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
G=.gpu; rm -rf "$G"; mkdir -p "$G/early/lib" "$G/bulk"
ver() { awk -v n="$1" '$0=="name = \""n"\"" {getline; gsub(/version = |"/,""); print; exit}' Cargo.lock; }
src() { find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "$1-$(ver "$1")" | head -1; }
W=$(src whisper-rs-sys); L=$(src llama-cpp-sys-2)
[ -n "$W" ] && [ -n "$L" ] || { echo "crate sources missing: run cargo fetch" >&2; exit 1; }
echo "sources: $W, $L"
tar -C "$W" -cf - whisper.cpp | zstd -q -T0 -19 > "$G/early/whisper.cpp.tar.zst"
tar -C "$L" -cf - llama.cpp | zstd -q -T0 -19 > "$G/early/llama.cpp.tar.zst"
BIN=${LATLAB_BIN:-target/release/latlab}
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release --bin latlab" >&2; exit 1; }
strip -o "$G/latlab" "$BIN" && zstd -q -T0 -19 --rm "$G/latlab" -o "$G/early/latlab.zst"
# Fallbacks for libraries latlab links that the device image may lack (used only if ldd misses them).
for l in libfontconfig.so.1 libfreetype.so.6 libpng16.so.16 libexpat.so.1 libbrotlidec.so.1 libbrotlicommon.so.1 libssl.so.3 libcrypto.so.3; do
  cp -L "/usr/lib/x86_64-linux-gnu/$l" "$G/early/lib/" 2>/dev/null || echo "note: $l not found here"
done
python3 benches/gpu/gguf_skeleton.py cut models/gemma/gemma-3-270m-q4_k_m.gguf "$G/gemma.head" > "$G/early/gemma.size"
zstd -q -19 --rm "$G/gemma.head" -o "$G/early/gemma.head.zst"
models=(models/whisper/ggml-tiny.en.bin)
[ "${1:-}" = --with-base ] && models+=(models/whisper/ggml-base.bin)
sha256sum "${models[@]}" > "$G/early/models.sha256"
tar -cf - "${models[@]}" | zstd -q -T0 -10 > "$G/bulk.tar.zst"
(cd "$G" && sha256sum bulk.tar.zst > early/bulk.sha256)
split -b 4M -d -a 3 "$G/bulk.tar.zst" "$G/bulk/part." && rm "$G/bulk.tar.zst"
ls "$G/bulk" | wc -l | tr -d ' ' > "$G/early/parts.count"
tar -C "$G/early" -cf "$G/early.tar" . && rm -rf "$G/early"
# What travels anyway: tracked and untracked-not-ignored files of this checkout.
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s}')
budget=$(( 64 * 1048576 - tree - 2 * 1048576 ))
echo "working tree travels: $tree bytes; carry budget per call: $budget bytes"
n=1; used=0; mkdir -p "$G/c1"; mv "$G/early.tar" "$G/c1/"; used=$(stat -c %s "$G/c1/early.tar")
for p in "$G"/bulk/part.*; do
  s=$(stat -c %s "$p")
  if [ $(( used + s )) -gt "$budget" ]; then n=$((n + 1)); used=0; mkdir -p "$G/c$n"; fi
  mv "$p" "$G/c$n/"; used=$(( used + s ))
done
rmdir "$G/bulk"
for d in "$G"/c*; do (cd "$d" && sha256sum * > SHA256SUMS); done
echo; echo "device calls (back to back: the machine stays warm 30 s after each):"
for i in $(seq "$n"); do
  sz=$(du -sb "$G/c$i" | cut -f1)
  if [ "$i" = "$n" ]; then cmd="bash benches/gpu/run.sh .gpu/c$i"; t=600; else cmd="bash benches/gpu/stage.sh .gpu/c$i"; t=120; fi
  echo "  call $i: carry [\".gpu/c$i\"] ($sz bytes), timeout_s $t, command: $cmd"
done
