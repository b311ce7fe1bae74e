"""How a mapping job runs (kept apart from `job` so the CLI can declare options cheaply)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Executor(StrEnum):
    local = "local"
    ray = "ray"


@dataclass(frozen=True)
class MapOptions:
    concurrency: int = 4  # papers in flight against the model server (per Ray worker)
    attempts: int = 3  # per paper, before it is recorded as failed
    backoff_s: float = 1.0  # doubled after each failed attempt
    executor: Executor = Executor.local
    workers: int = 2  # Ray actors
    batch_size: int = 8  # papers per Ray batch
