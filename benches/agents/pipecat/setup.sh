#!/usr/bin/env bash
# Creates benches/agents/pipecat/.venv with the Pipecat bot's pinned packages (requirements.lock).
# Idempotent: does nothing when the venv already imports pipecat at the pinned version and was
# built from this very lock. Needs Python 3.11 (the lock was frozen there; PYTHON overrides)
# and a reachable PyPI. About 20-45 s and ~925 MB on a fresh machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
lock="$here/requirements.lock"
python="${PYTHON:-python3}"
pinned="$(sed -n 's/^pipecat-ai==//p' "$lock")"
stamp="$venv/.requirements.lock.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] \
    && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
    && "$venv/bin/python" -c "import importlib.metadata as m, pipecat, sys; sys.exit(m.version('pipecat-ai') != '$pinned')" 2>/dev/null; then
    echo "pipecat venv: present ($venv, pipecat-ai $pinned)"
    exit 0
fi

version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$version" != "3.11" ]; then
    echo "error: $python is Python $version; requirements.lock was frozen on 3.11 (set PYTHON=python3.11)" >&2
    exit 1
fi

echo "pipecat venv: installing pipecat-ai $pinned and its pins into $venv ..."
start=$SECONDS
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$lock"
"$venv/bin/python" -c "import pipecat.services.whisper.stt, pipecat.services.piper.tts, pipecat.audio.vad.silero"
echo "$want" > "$stamp"
echo "pipecat venv: ready in $((SECONDS - start)) s ($(du -sh "$venv" | cut -f1))"
