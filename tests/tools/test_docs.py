"""The documents that make claims about tests keep them: every upstream fact in
docs/upstream.md and every control in docs/security.md names a test that exists."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_REF = re.compile(r"(tests/[\w/]+\.py)?::(\w+)")


@cache
def _test_names(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def _refs(text: str) -> list[tuple[str, str]]:
    """(file, test) pairs; `::name` alone refers to the last file named before it."""
    refs, current = [], None
    for m in TEST_REF.finditer(text):
        current = m.group(1) or current
        assert current is not None, f"`::{m.group(2)}` names no file before it"
        refs.append((current, m.group(2)))
    return refs


def _fact_rows() -> list[list[str]]:
    rows = []
    for line in (ROOT / "docs/upstream.md").read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| fact |"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_every_upstream_fact_has_its_version_source_and_an_existing_test() -> None:
    rows = _fact_rows()
    assert len(rows) >= 40
    for row in rows:
        assert len(row) == 4, row
        fact, version, source, test = row
        assert fact and version and source, row
        refs = _refs(test)
        assert refs, f"no test named for: {fact[:80]}"
        for path, name in refs:
            assert name in _test_names(path), f"{path}::{name} (for: {fact[:60]}) does not exist"


def test_every_control_in_the_threat_model_names_an_existing_test() -> None:
    text = (ROOT / "docs/security.md").read_text()
    refs = _refs(text)
    assert len(refs) >= 10
    for path, name in refs:
        assert name in _test_names(path), f"docs/security.md names {path}::{name}, which does not exist"
    assert "TBD" not in text
