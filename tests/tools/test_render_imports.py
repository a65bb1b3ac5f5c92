"""The program and the render run where only requirements.txt is installed (`pulumi install`,
the plan-diff workflow), so they import nothing else: the standard library, the project, and
the pinned runtime packages."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.support.helpers import PROJECT

OWN = {"components", "stacks", "tools"}


def _pinned() -> set[str]:
    names = re.findall(r"^([A-Za-z0-9_.-]+)==", (PROJECT / "requirements.txt").read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    tops = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    tops |= {node.module.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return tops


def test_the_program_and_the_render_import_only_what_requirements_txt_installs() -> None:
    pinned, dists = _pinned(), packages_distributions()
    outside = {}
    sources = [PROJECT / "__main__.py", *(p for d in ("components", "stacks", "tools/render") for p in (PROJECT / d).rglob("*.py"))]
    for path in sorted(sources):
        for name in _imported(path) - OWN - set(sys.stdlib_module_names) - {"__future__"}:
            if not {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(name, [])} & pinned:
                outside[f"{path.relative_to(PROJECT)}: {name}"] = dists.get(name, [])
    assert not outside, f"not installed by requirements.txt: {outside}"
