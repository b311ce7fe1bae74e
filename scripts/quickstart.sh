#!/usr/bin/env bash
# Fresh machine → the main job on the embedded default store, with a real local model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
EG=.venv/bin/evergraph
PORT=${EVERGRAPH_QUICKSTART_PORT:-8101}
# llama.cpp is the light local engine (loads in about a second); it takes JSON schemas as
# response_format json_object + schema.
export EVERGRAPH_LLM__BASE_URL="http://127.0.0.1:$PORT/v1"
export EVERGRAPH_LLM__STRUCTURED_MODE=json_object
export EVERGRAPH_LLM__MODEL=qwen2.5-coder-0.5b
export EVERGRAPH_LLM__MAX_CONCURRENCY=1  # llama.cpp's server answers one request at a time
grep -q ":$PORT " <<<"$($EG model status)" || $EG model serve --engine llamacpp --port "$PORT" --detach
$EG doctor
# The main job: build a temporal knowledge graph from the first 12 (by date) of 24 shipped arXiv
# abstracts, then show what it learned. Three samples per abstract: llama.cpp ignores `n`, so
# each is a request. Options given to this script are passed on (e.g. --limit 24 for all).
$EG ingest examples/astro/abstracts.jsonl --schema examples/astro/schema.json --samples 3 \
  --limit 12 "$@"
$EG stats
$EG entities --top 10
$EG entities --top 3 --names | while IFS= read -r name; do $EG facts "$name"; done
echo
echo "The model server keeps running on 127.0.0.1:$PORT; stop it with: $EG model stop"
