"""The README and the pages it leads to stay true: every `make` target they name exists, every
path and test they name exists, every relative link lands on a file and heading, the README
stays short, and its quick start renders, passes the policy check and draws the picture shown."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from stacks.config import StackConfig
from tests.support.helpers import PROJECT

README = PROJECT / "README.md"
# The pages the README's sections moved to (other docs/ pages are checked by their own tests).
PAGES = [README, *(PROJECT / "docs" / f"{name}.md" for name in ("architecture", "operations", "testing", "performance"))]
TOP = ("components", "stacks", "tools", "tests", "docs", "policy", "engine", "charts", ".github", ".ci")


def make_targets() -> set[str]:
    text = (PROJECT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*:(?!=)", text, re.M)) | {
        t for line in re.findall(r"^\.PHONY:(.*)$", text, re.M) for t in line.split()}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    in_code = False
    for line in path.read_text().splitlines():
        in_code ^= line.startswith("```")
        if not in_code and (m := re.match(r"#+ (.*)", line)):
            base, n = slug(m.group(1)), 0
            while (candidate := base if n == 0 else f"{base}-{n}") in found:
                n += 1
            found.add(candidate)
    return found


def test_the_readme_is_short() -> None:
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_make_target_named_exists(page: Path) -> None:
    named = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", page.read_text())) - {"sure", "a", "the", "it", "them"}
    assert named or page != README
    assert not named - make_targets(), f"{page.name} names make targets that do not exist: {sorted(named - make_targets())}"


@cache
def _test_names(path: str) -> frozenset[str]:
    tree = ast.parse((PROJECT / path).read_text())
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_path_and_test_named_exists(page: Path) -> None:
    missing = []
    for token in re.findall(r"`([^`\s]+)`", page.read_text()):
        path, _, test = token.partition("::")
        path = path.rstrip(".,;:")
        if any(c in path for c in "<*{") or "mine" in path or not (path.startswith(tuple(f"{t}/" for t in TOP)) or re.fullmatch(r"Pulumi\.\w+\.yaml", path)):
            continue
        if not (PROJECT / path).exists():
            missing.append(path)
        elif test and path.endswith(".py") and test.split("(")[0] not in _test_names(path):
            missing.append(token)
    assert not missing, f"{page.name} names what does not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_lands_on_a_file_and_heading(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_readme_lists_every_config_section() -> None:
    listed = re.findall(r"^\| `hybrid-ai:(\w+)` \|", README.read_text(), re.M)
    assert listed == [f.alias or n for n, f in StackConfig.model_fields.items()]


def _quick_start() -> str:
    text = README.read_text()
    section = text.split("### 3. The stack file", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_quick_start_renders_passes_the_policies_and_draws_the_picture(tmp_path: Path) -> None:
    from tools.check import main as check

    stack = _quick_start()
    assert set(yaml.safe_load(stack)["config"]) >= {"hybrid-ai:sites", "hybrid-ai:hosts", "hybrid-ai:models"}
    (tmp_path / "Pulumi.mine.yaml").write_text(stack)
    assert check(["--stack", "mine", "--dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    drawn = (tmp_path / "out" / "topology.mmd").read_text()
    assert "```mermaid\n" + drawn + "```" in README.read_text(), "the README's picture is not the quick start's render"
