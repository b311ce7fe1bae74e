"""playbooks/ sits below agents/ and llm/ (DESIGN.md): its rules must run without a model.
Checked on the source, so an import from above fails here, not later as an import cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import evergraph.playbooks

ABOVE = (
    "evergraph.agents",
    "evergraph.llm",
    "evergraph.memory",
    "evergraph.server",
    "evergraph.cli",
)


def imported(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_playbooks_import_nothing_above_them() -> None:
    root = Path(evergraph.playbooks.__file__).parent
    found = [
        (path.name, module)
        for path in sorted(root.rglob("*.py"))
        for module in imported(path)
        if module.startswith(ABOVE)
    ]
    assert found == []
