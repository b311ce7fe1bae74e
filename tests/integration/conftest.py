"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os

import pytest

from tests.integration.test_llm_real import SERVERS, Server, require_server


@pytest.fixture
def fastest_server() -> Server:
    """vLLM when configured (n samples in one request), else llama.cpp: for the agent tests,
    which check flow and structure, not the server."""
    configured = [name for name, (url_env, _, _) in SERVERS.items() if os.environ.get(url_env)]
    return require_server("vllm" if "vllm" in configured else "llamacpp")
