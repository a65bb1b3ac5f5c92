"""The plan an evaluation records: every registration whole, the stack outputs and the secret
values seen, with the queries the render, the diff and the tests ask of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tools.render.scrub import SECRET


@dataclass(frozen=True)
class Secret:
    """A value the program marked secret; `value` is real only inside this process."""

    value: Any


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    dependencies: list[str]
    """Explicit and Output-implied dependencies, plus the explicit provider it is managed by."""
    inputs: dict[str, Any]
    timeouts: dict[str, str] = field(default_factory=dict)
    """Custom create/update/delete timeouts from the resource options (not part of plan.json)."""
    delete_before_replace: bool = False
    """The resource option (not part of plan.json)."""


class PlanChanges(NamedTuple):
    added: set[str]
    removed: set[str]
    changed: set[str]
    """Resources in both plans whose inputs differ."""


@dataclass
class Evaluation:
    stack: str
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_values: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def by_name(self, name: str) -> Registration:
        return next(r for r in self.resources if r.name == name)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def closure(self, urn: str) -> set[str]:
        """Every resource `urn` depends on, directly or through others."""
        by_urn = {r.urn: r for r in self.resources}
        seen: set[str] = set()
        todo = list(by_urn[urn].dependencies)
        while todo:
            u = todo.pop()
            if u not in seen and u in by_urn:
                seen.add(u)
                todo += by_urn[u].dependencies
        return seen

    def changes(self, after: Evaluation) -> PlanChanges:
        """What `after` adds, removes, and gives other inputs, compared with this plan (by name)."""
        before_by_urn = {r.urn: r for r in self.resources}
        after_by_urn = {r.urn: r for r in after.resources}
        return PlanChanges(
            added={after_by_urn[u].name for u in after_by_urn.keys() - before_by_urn.keys()},
            removed={before_by_urn[u].name for u in before_by_urn.keys() - after_by_urn.keys()},
            changed={after_by_urn[u].name for u in after_by_urn.keys() & before_by_urn.keys()
                     if after_by_urn[u].inputs != before_by_urn[u].inputs},
        )

    def depth(self) -> int:
        """The longest dependency chain of the plan, in resources."""
        by_urn = {r.urn: r for r in self.resources}
        memo: dict[str, int] = {}

        def d(urn: str) -> int:
            if urn not in memo:
                memo[urn] = 1 + max((d(x) for x in by_urn[urn].dependencies if x in by_urn), default=0)
            return memo[urn]

        return max(d(u) for u in by_urn)


def redact(value: Any) -> Any:
    if isinstance(value, Secret):
        return SECRET
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """The in-process value with secret wrappers removed (never write this out)."""
    if isinstance(value, Secret):
        return reveal(value.value)
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
