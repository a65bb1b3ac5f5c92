"""The Pulumi program: load the stack config, build the graph, export outputs."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pulumi

from stacks.build import build
from stacks.load import ConfigError, load


def tune_gc() -> None:
    """The program is a short batch that allocates hundreds of thousands of small objects
    (Outputs, futures) that live until it ends: frequent full collections cost ~30% of its
    time and grow with the fleet. Collect cycles, just less often (see README, Performance)."""
    gc.freeze()
    gc.set_threshold(200_000, 20, 100)


def run() -> dict[str, Any]:
    """Load, validate and build; export and return the stack outputs. Raises ConfigError."""
    tune_gc()
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
