"""The render of every example stack is byte-identical to the golden digests (see
`tests/support/golden.py` for what is compared and how to refresh after an intended change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.golden import GOLDEN, STACKS, digests, render


def changes(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """The rendered files that differ from the golden digests, named."""
    return ([f"changed: {f}" for f in sorted(expected.keys() & actual.keys()) if expected[f] != actual[f]]
            + [f"missing: {f}" for f in sorted(expected.keys() - actual.keys())]
            + [f"new: {f}" for f in sorted(actual.keys() - expected.keys())])


@pytest.mark.parametrize("stack", STACKS)
def test_render_of_example_stack_is_byte_identical_to_the_golden_digests(stack: str, tmp_path: Path) -> None:
    render(stack, tmp_path)
    found = changes(json.loads(GOLDEN.read_text())[stack], digests(tmp_path))
    assert not found, f"{stack}: render differs from {GOLDEN.name} (refresh with `make golden` if intended):\n" + "\n".join(found)


def test_a_changed_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "graph.svg").write_text("<svg/>")
    before = digests(tmp_path)
    assert list(before) == ["plan.json"]
    (tmp_path / "plan.json").write_text("{ }")
    assert changes(before, digests(tmp_path)) == ["changed: plan.json"]
