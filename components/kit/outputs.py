"""Output helpers every layer shares."""

from __future__ import annotations

from typing import Any

import pulumi


def after(value: pulumi.Input[str], *done: pulumi.Output[Any]) -> pulumi.Output[str]:
    """`value`, resolving only once every `done` output has: it carries their resources as
    dependencies into whatever uses it, with no `depends_on`."""
    return pulumi.Output.all(value, *done).apply(lambda v: str(v[0]))
