"""One Pulumi program run under mocks, as the offline render and the bench's floor run theirs:
from a clean slate, and without the SDK's call-stack capture (tools/render/stacktrace.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tools.render import stacktrace


def run(
    program: Callable[[], Awaitable[None] | None], stack_mocks: mocks.Mocks, *, project: str, stack: str,
    monitor: mocks.MockMonitor | None = None, logger: logging.Logger | None = None,
) -> None:
    """Run `program` under `stack_mocks` (`monitor`: a MockMonitor of them, to see the requests)."""
    # Nothing of an earlier run in this process: its pending RPCs, its outputs, and its root
    # Stack, which set_mocks would keep (it makes one only when there is none) as the parent
    # of this run's resources, under the other run's stack name.
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    settings.set_root_resource(None)  # type: ignore[arg-type]
    with stacktrace.skipped():
        mocks.set_mocks(stack_mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger)
        _sync_await(run_pulumi_func(program))
