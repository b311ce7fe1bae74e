"""Ctrl-C or SIGTERM in the middle of a real run: one message, exit 130, everything committed
is kept."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evergraph.graph.store.sqlite import SQLiteGraphStore

pytestmark = pytest.mark.embed


def silent_server() -> tuple[socket.socket, threading.Event]:
    """A loopback server that accepts connections and never answers: a hung LLM endpoint."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    called = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
            called.set()

    threading.Thread(target=accept, daemon=True).start()
    return srv, called


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_kill_while_waiting_for_the_model_keeps_stored_documents(
    tmp_path: Path, sent: signal.Signals
) -> None:
    """SIGTERM (`kill`, `docker stop`) ends a run as Ctrl-C does (it was a plain death)."""
    srv, called = silent_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGRAPH_")}
    env |= {
        "EVERGRAPH_HOME": str(tmp_path),
        "EVERGRAPH_LLM__BASE_URL": f"http://127.0.0.1:{srv.getsockname()[1]}/v1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "evergraph", "smoke"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert called.wait(120), "the smoke run never reached the model server"
        proc.send_signal(sent)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        srv.close()
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    with SQLiteGraphStore(tmp_path / "evergraph.db") as store:
        stats = store.stats()
    assert stats.sources == 3 and stats.chunks > 3
