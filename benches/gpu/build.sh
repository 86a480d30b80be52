#!/usr/bin/env bash
# Device side, started by stage.sh in the background (setsid): builds whisper.cpp and llama.cpp
# with CUDA for sm_90 (H100/H200) from the sources latlab's crates vendor, plus whisper_rtf.
# Writes $W/build-{whisper,llama}.{ok,fail}; logs in $W/logs/.
set -uo pipefail
W=/root/latlab-gpu
mkdir -p "$W/src" "$W/logs" && cd "$W"
export CUDACXX="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
gen="$(command -v ninja >/dev/null && echo Ninja || echo 'Unix Makefiles')"
common=(-DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON)
whisper() {
  tar -I zstd -xf whisper.cpp.tar.zst -C src &&
  cmake -S src/whisper.cpp -B build/whisper -G "$gen" "${common[@]}" -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=OFF &&
  cmake --build build/whisper -j 8 &&
  rp=$(find "$W/build/whisper" -name '*.so*' -printf '%h\n' | sort -u | sed 's/^/-Wl,-rpath,/' | tr '\n' ' ') &&
  lp=$(find "$W/build/whisper" -name '*.so' -printf '-L%h\n' | sort -u | tr '\n' ' ') &&
  gcc -O2 -o whisper_rtf whisper_rtf.c -Isrc/whisper.cpp/include -Isrc/whisper.cpp/ggml/include $lp $rp -lwhisper -lggml -lggml-base
}
llama() {
  tar -I zstd -xf llama.cpp.tar.zst -C src &&
  cmake -S src/llama.cpp -B build/llama -G "$gen" "${common[@]}" -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF &&
  cmake --build build/llama -j 8 --target llama-bench
}
t0=$(date +%s)
( whisper > logs/build-whisper.log 2>&1 && touch build-whisper.ok || touch build-whisper.fail; echo "whisper build $(( $(date +%s) - t0 )) s" >> logs/build-times.txt ) &
( llama > logs/build-llama.log 2>&1 && touch build-llama.ok || touch build-llama.fail; echo "llama build $(( $(date +%s) - t0 )) s" >> logs/build-times.txt ) &
wait
