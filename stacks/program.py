"""The Pulumi program: load the stack config, build the graph, export outputs."""

from __future__ import annotations

import sys
from typing import Any

import pulumi

from stacks.build import build
from stacks.load import ConfigError, load


def run() -> dict[str, Any]:
    """Load, validate and build; export and return the stack outputs. Raises ConfigError."""
    outputs = build(load()).outputs
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def main() -> None:
    try:
        run()
    except ConfigError as err:
        # A clear message and no traceback; nothing has been registered yet.
        pulumi.log.error(str(err))
        sys.exit(1)
