"""Process, port and readiness helpers for the local model servers, on top of psutil.

A server is known by its pid *and* its creation time: a pid is reused once its process is
gone (after a reboot, say), and the program that gets it must be neither taken for the
server nor killed. Zombies count as gone: they hold a pid but serve nothing.

A server runs in its own process group (`start_new_session=True`); its workers (vLLM
spawns some) stay in that group even when their parent dies first and they are re-parented,
so stopping signals the group and waits for the group, not for the process tree.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import httpx
import psutil

from evergraph.errors import ServiceError
from evergraph.llm.local.assets import log_tail

log = logging.getLogger(__name__)

# psutil adds the boot time to a process's start, and the kernel recomputes the boot time on
# each read, so one process's create_time can drift by a second between reads. A reused pid
# starts at least as long after the server as the server ran, so a second keeps them apart.
# A step of the system clock (NTP) moves every create_time as well: the server then looks
# gone and its run file is forgotten, which is safe (nothing is signalled) if unhelpful.
CREATE_TIME_TOLERANCE_S = 1.0

# Processes started by this Python process, so they are reaped (no zombies) when they exit.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def adopt(proc: subprocess.Popen[bytes]) -> None:
    """Remember a child we started, so that `is_running` and `group_alive` reap it."""
    _CHILDREN[proc.pid] = proc


def _reap(pid: int) -> None:
    """Collect the exit status of our own child, so it does not linger as a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def create_time(pid: int) -> float | None:
    """When `pid` was created (seconds since the epoch); None once it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def create_time_from_ticks(ticks: int) -> float:
    """Convert a start time in clock ticks since boot (/proc/<pid>/stat, as run files written
    before psutil recorded it) to a create_time, the way psutil computes one on Linux."""
    return psutil.boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def is_running(pid: int, created: float | None) -> bool:
    """True while `pid` is alive (not a zombie) and is still the process created at `created`.

    `created` None (unknown) trusts the pid alone. A process we may not inspect is not ours,
    so it is taken for gone: better to forget a run file than to signal a stranger.
    """
    _reap(pid)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(proc.create_time() - created) <= CREATE_TIME_TOLERANCE_S
    except psutil.Error:  # NoSuchProcess (ZombieProcess among them), AccessDenied
        return False


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in the process group `pgid`."""
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False  # no member at all, not even a zombie
    except PermissionError:
        pass
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):  # exited meanwhile
            continue
    return False


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate_group(pgid: int, timeout: float) -> None:
    """SIGTERM the process group `pgid`; SIGKILL whatever is left after `timeout` seconds.

    Check first (`is_running`) that the group leader is the process you mean to stop.
    """
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if _wait_group_gone(pgid, wait_s):
            return
        log.warning("process group %d outlived %s for %.0f s", pgid, sig.name, wait_s)
    raise ServiceError(f"process group {pgid} survived SIGKILL")


def port_in_use(host: str, port: int) -> bool:
    """Whether a server could not bind `host:port` (tested the way uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def listener(port: int) -> str | None:
    """'pid N (command)' of the process listening on TCP `port`, for error messages.

    Best effort: listing sockets needs root on macOS, and the owner of a socket may be
    hidden from us; then None.
    """
    try:
        pids = [
            conn.pid
            for conn in psutil.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
            and conn.laddr
            and conn.laddr.port == port
            and conn.pid is not None
        ]
    except (psutil.Error, OSError):
        return None
    if not pids:
        return None
    pid = pids[0]
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return f"pid {pid}"
    return f"pid {pid} ({command})"


def wait_healthy(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    *,
    model: str | None = None,
    health_path: str | None = None,
    log_path: Path | None = None,
) -> list[str]:
    """Poll `GET {url}/models` until it answers (listing `model`, if given); return the ids.

    Fails fast, quoting the log's last lines, when `proc` exits first: a server that could
    not bind its port must not be mistaken for another one that answers there.
    """
    root = url.removesuffix("/v1")
    deadline = time.monotonic() + timeout
    problem = "no answer yet"
    with httpx.Client(timeout=5.0) as client:
        while True:
            if proc is not None and (code := proc.poll()) is not None:
                tail = log_tail(log_path) if log_path else ""
                raise ServiceError(
                    f"the model server exited with status {code} while starting:\n{tail}",
                    fix=f"read the full log in {log_path}" if log_path else None,
                )
            try:
                if health_path is not None:
                    client.get(root + health_path).raise_for_status()
                response = client.get(f"{url}/models")
                response.raise_for_status()
                ids = [str(entry["id"]) for entry in response.json()["data"]]
                if model is None or model in ids:
                    return ids
                problem = f"serves {ids}, not {model!r}"
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                problem = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"{url} was not healthy after {timeout:.0f} s ({problem})",
                    fix=f"read the log in {log_path}" if log_path else None,
                )
            time.sleep(0.5)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (docker stop, systemd) like Ctrl-C, so a server we wait on is stopped."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread, where signals cannot be handled
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
