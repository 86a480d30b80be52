#!/usr/bin/env bash
# Starts the Pipecat bot on loopback with the repo's models and the venv setup.sh built:
#   benches/agents/pipecat/run.sh [--port 8765] [--llm-url http://127.0.0.1:8766/v1] [--self-report FILE]
# The LLM is latlab's emulator; start it first (its LLM listens on 8766 with this config):
#   latlab emulate --config benches/agents/pipecat/emulator.toml
# Prints `READY ws://127.0.0.1:PORT/ws` when it accepts calls. Other bot.py flags pass through.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
port=8765
llm_url="http://127.0.0.1:8766/v1"
self_report="$repo/results/pipecat-self-report.jsonl"
rest=()
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --llm-url) llm_url="$2"; shift 2 ;;
        --self-report) self_report="$2"; shift 2 ;;
        *) rest+=("$1"); shift ;;
    esac
done
if [ ! -x "$here/.venv/bin/python" ]; then
    echo "error: no venv at $here/.venv; run $here/setup.sh first" >&2
    exit 1
fi
exec "$here/.venv/bin/python" "$here/bot.py" --port "$port" --llm-url "$llm_url" \
    --models "$repo/models" --self-report "$self_report" ${rest[@]+"${rest[@]}"}
