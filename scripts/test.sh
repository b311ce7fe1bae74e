#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up, start the real model servers, lint, type-check,
# run unit + conformance + integration tests, stop what was started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
EG=.venv/bin/evergraph
LLAMA_PORT=${EVERGRAPH_TEST_LLAMACPP_PORT:-8101}
VLLM_PORT=${EVERGRAPH_TEST_VLLM_PORT:-8100}
MODEL=qwen2.5-coder-0.5b

started=()
cleanup() {
  for p in "${started[@]}"; do $EG model stop --port "$p" || true; done
}
trap cleanup EXIT

serve() {  # engine port: reuse a server already running there, else start one
  if grep -q ":$2 " <<<"$($EG model status)"; then return; fi  # not a pipe: grep -q would cut it
  $EG model serve --engine "$1" --model "$MODEL" --port "$2" --detach
  started+=("$2")
}

.venv/bin/ruff check evergraph tests benchmarks examples
.venv/bin/ruff format --check evergraph tests benchmarks examples
.venv/bin/mypy

serve llamacpp "$LLAMA_PORT"
serve vllm "$VLLM_PORT"

export EVERGRAPH_REQUIRE_SERVICES=1
export EVERGRAPH_TEST_LLAMACPP_URL="http://127.0.0.1:$LLAMA_PORT/v1"
export EVERGRAPH_TEST_LLAMACPP_MODEL=$MODEL
export EVERGRAPH_TEST_VLLM_URL="http://127.0.0.1:$VLLM_PORT/v1"
export EVERGRAPH_TEST_VLLM_MODEL=$MODEL
.venv/bin/python -m pytest -q -ra "$@"
