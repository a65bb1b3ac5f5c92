"""Shared test helpers: stack configs as plain dicts, and mock evaluation of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from stacks.render.evaluate import Evaluation, evaluate

PROJECT = Path(__file__).resolve().parents[1]
NS = "hybrid-ai"


def stack_config(stack: str = "dev") -> dict[str, Any]:
    """The `config:` of Pulumi.<stack>.yaml with the namespace stripped, as plain data."""
    doc = yaml.safe_load((PROJECT / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: copy.deepcopy(v) for k, v in doc["config"].items()}


def evaluate_config(
    raw: dict[str, Any], secrets: dict[str, str] | None = None, stack: str = "test", into: Evaluation | None = None,
    command_stdout: dict[str, str] | None = None,
) -> Evaluation:
    """Evaluate the program under mocks for this config; secrets are marked secret as the CLI would."""
    secrets = {"sshPrivateKey": "test-ssh-key"} if secrets is None else secrets
    config = {f"{NS}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    config |= {f"{NS}:{k}": v for k, v in secrets.items()}
    return evaluate(stack, config, {f"{NS}:{k}" for k in secrets}, into=into, command_stdout=command_stdout)


def deps_closure(ev: Evaluation, urn: str) -> set[str]:
    """Every resource `urn` depends on, directly or through others."""
    by_urn = {r.urn: r for r in ev.resources}
    seen: set[str] = set()
    todo = list(by_urn[urn].dependencies)
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo += by_urn[u].dependencies
    return seen


def depth(ev: Evaluation) -> int:
    """Longest dependency chain (in resources) of the plan."""
    by_urn = {r.urn: r for r in ev.resources}
    memo: dict[str, int] = {}

    def d(urn: str) -> int:
        if urn not in memo:
            memo[urn] = 1 + max((d(x) for x in by_urn[urn].dependencies), default=0)
        return memo[urn]

    return max(d(u) for u in by_urn)
