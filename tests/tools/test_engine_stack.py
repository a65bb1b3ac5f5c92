"""tools/engine_stack.py::operate skips the CLI's checkpoints for a preview only: an `up` on the
same stack keeps them (a crash mid-`up` would otherwise lose every step since its start)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tools.engine_stack import PREVIEW_ENV, operate


class _Stack:
    """What operate uses of an automation API stack; records the environment each op ran with."""

    def __init__(self) -> None:
        self.workspace = SimpleNamespace(env_vars={"PULUMI_BACKEND_URL": "file:///x"})
        self.seen: dict[str, dict[str, str]] = {}

    def preview(self, **_: Any) -> Any:
        self.seen["preview"] = dict(self.workspace.env_vars)
        return SimpleNamespace(change_summary={"create": 1})

    def up(self, **_: Any) -> Any:
        self.seen["up"] = dict(self.workspace.env_vars)
        return SimpleNamespace(summary=SimpleNamespace(resource_changes={"create": 1}))


def test_only_a_preview_skips_checkpoints() -> None:
    stack = _Stack()
    assert operate(stack, "preview")["ok"]  # type: ignore[arg-type]
    assert operate(stack, "up")["ok"]  # type: ignore[arg-type]
    assert stack.seen["preview"] == {"PULUMI_BACKEND_URL": "file:///x", "PULUMI_SKIP_CHECKPOINTS": "true"}
    assert stack.seen["up"] == {"PULUMI_BACKEND_URL": "file:///x"}
    assert stack.workspace.env_vars == {"PULUMI_BACKEND_URL": "file:///x"}
    assert PREVIEW_ENV == {"PULUMI_SKIP_CHECKPOINTS": "true"}
