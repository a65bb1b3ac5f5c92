"""`PULUMI_SKIP_CHECKPOINTS=true` (what every preview through tools/engine_stack.py::operate sets:
`make preview`, `make bench`, the lab's) leaves a preview's result as it is: the same printed
plan, change summary, saved update plan and `--expect-no-changes` verdict, and no state written
either way (docs/upstream.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pulumi
import pytest
from pulumi import automation as auto

from tests.support.engine import Engine
from tools.engine_stack import PREVIEW_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.engine]
SKIP = "PULUMI_SKIP_CHECKPOINTS"


def chain_program() -> None:
    """A chain of built-in resources (no plugin), one input secret; `version` changes two of them."""
    version = pulumi.Config().get("version") or "1"
    previous: pulumi.Resource | None = None
    for n in range(6):
        value = {"n": n, "v": version if n in (2, 4) else "1", "key": pulumi.Output.secret(f"canary-{n}")}
        previous = pulumi.Stash(f"step-{n}", input=value, opts=pulumi.ResourceOptions(depends_on=[previous] if previous else []))


def _plan_lines(log: list[str]) -> list[str]:
    """The printed preview without its timings."""
    return [line.rstrip() for line in log if line.strip() and not re.match(r"\s*Duration:", line)]


def _stable(value: object) -> object:
    """A saved plan without what differs from one run to the next: its time, each resource's
    random seed and each secret's ciphertext."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in ("time", "seed", "ciphertext")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _preview(eng: Engine, skip: bool, tmp: Path, expect_no_changes: bool) -> dict[str, object]:
    env = dict(eng.stack.workspace.env_vars)
    env.pop(SKIP, None)
    eng.stack.workspace.env_vars = env | (PREVIEW_ENV if skip else {})
    state = sorted((p.relative_to(eng.state), p.read_bytes()) for p in eng.state.rglob("*") if p.is_file())
    mark = len(eng.log)
    plan = tmp / f"plan-{skip}-{expect_no_changes}.json"
    try:
        result = eng.run("preview", plan=str(plan), expect_no_changes=expect_no_changes)
        outcome: dict[str, object] = {"ok": True, "changes": dict(result.change_summary)}
    except auto.errors.CommandError as failed:
        outcome = {"ok": False, "error": "expected no changes" in str(failed).lower() or "no changes were expected" in str(failed)}
    after = sorted((p.relative_to(eng.state), p.read_bytes()) for p in eng.state.rglob("*") if p.is_file())
    assert after == state, "a preview wrote state"
    return outcome | {"plan": _plan_lines(eng.log[mark:]), "saved": _stable(json.loads(plan.read_text())) if plan.exists() else None}


def test_skipping_checkpoints_leaves_a_preview_as_it_is(tmp_path: Path) -> None:
    assert PREVIEW_ENV == {SKIP: "true"}
    eng = Engine(tmp_path, chain_program)
    try:
        first = {skip: _preview(eng, skip, tmp_path, expect_no_changes=False) for skip in (False, True)}
        assert first[False]["changes"] == {"create": 7}  # the stack and its six steps
        assert first[True] == first[False]
        eng.run("up")
        same = {skip: _preview(eng, skip, tmp_path, expect_no_changes=True) for skip in (False, True)}
        assert same[False]["ok"] and same[False]["changes"] == {"same": 7}
        assert same[True] == same[False]
        eng.stack.set_config("version", auto.ConfigValue("2"))
        changed = {skip: _preview(eng, skip, tmp_path, expect_no_changes=True) for skip in (False, True)}
        assert changed[False]["ok"] is False and changed[False]["error"], changed[False]
        assert changed[True] == changed[False]
        unchecked = {skip: _preview(eng, skip, tmp_path, expect_no_changes=False) for skip in (False, True)}
        assert unchecked[False]["changes"] == {"same": 5, "update": 2}
        assert unchecked[True] == unchecked[False]
        assert "canary-" not in json.dumps([unchecked[True]["plan"], unchecked[True]["saved"]])
    finally:
        eng.stack.workspace.remove_stack(eng.stack.name, force=True)
