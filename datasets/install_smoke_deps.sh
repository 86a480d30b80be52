#!/usr/bin/env bash
# Install what datasets/generate_smoke.py needs (Debian 12 / bookworm, as root).
# Only needed to REGENERATE the smoke set; the WAVs and manifest are committed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
# espeak-ng, flite: speech synthesis; sox: resampling, mu-law, soxi checks;
# asterisk-core-sounds-en-wav: real recorded English prompts (CC-BY-SA-3.0)
# used by call-09 and call-10.
apt-get install -y --no-install-recommends \
    python3 python3-pip espeak-ng flite sox asterisk-core-sounds-en-wav
# numpy is required; jsonschema is optional (validates the manifest lines).
# Fall back to Debian's packages where pip refuses (externally managed Python).
python3 -m pip install numpy jsonschema \
    || apt-get install -y --no-install-recommends python3-numpy python3-jsonschema
# onnxruntime runs the Piper voice of call-11 and call-12 (the release latlab's
# models folder pins); the voice itself: python3 models/fetch.py piper-joe
python3 -m pip install onnxruntime==1.31.1 \
    || python3 -m pip install --break-system-packages onnxruntime==1.31.1
