"""The offline render skips the SDK's call-stack capture (tools/render/stacktrace.py): the SDK
does that work at every typed registration, the mock monitor drops its result, the plan is the
same without it, and the render and the bench's floor both skip it."""

from __future__ import annotations

import contextlib
import json
import traceback
from typing import Any

import pytest

from tests.support.helpers import evaluate_config, stack_config
from tools import floor
from tools.render import evaluate, mockrun, stacktrace


def _without_the_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs from here on capture the stack as the SDK does on its own."""
    monkeypatch.setattr(stacktrace, "skipped", contextlib.nullcontext)


def _count_stack_walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    walks = [0]
    real = traceback.extract_stack

    def counted(*args: Any, **kwargs: Any) -> Any:
        walks[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(traceback, "extract_stack", counted)
    return walks


def _register_one_command() -> tuple[Any, Any]:
    """The stack trace and source position the SDK sends for one typed resource, in a program
    run as the render runs its own."""
    import pulumi_command as command
    from pulumi.runtime import mocks

    sent: list[Any] = []

    class Capturing(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            if request.type == "command:remote:Command":
                sent.append((request.stackTrace, request.sourcePosition if request.HasField("sourcePosition") else None))
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    bare = floor.bare_mocks()

    async def program() -> None:
        command.remote.Command("c", create="true", connection=command.remote.ConnectionArgs(host="192.0.2.10"))

    mockrun.run(program, bare, project="hybrid-ai", stack="t", monitor=Capturing(bare))
    [(stack, position)] = sent
    return stack, position


def test_the_sdk_sends_each_typed_resources_call_stack_and_the_skip_sends_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """The upstream fact the skip rests on (pulumi 3.272.0 runtime/resource.py, register_resource
    and _get_stack_trace): a resource made by a resource class's constructor goes to the monitor
    with the frames of its caller and their source positions. If an upgrade stops sending them,
    the skip saves nothing and this test says so; if it renames the function, the skip skips
    nothing and this test says that too."""
    with monkeypatch.context() as for_now:
        _without_the_skip(for_now)
        stack, position = _register_one_command()
    assert stack.frames and position is not None
    assert position.uri.startswith("file://") and position.uri.endswith(__file__.rsplit("/", 1)[-1])

    stack, position = _register_one_command()
    assert not stack.frames and position is None
    # ... and only inside the run: the SDK's own capture is back after it.
    with monkeypatch.context() as for_now:
        _without_the_skip(for_now)
        stack, _ = _register_one_command()
    assert stack.frames


def test_the_skip_is_undone_even_when_the_program_fails() -> None:
    from pulumi.runtime import resource

    captured = resource._get_stack_trace
    with pytest.raises(RuntimeError), stacktrace.skipped():
        raise RuntimeError("the program failed")
    assert resource._get_stack_trace is captured


def test_the_plan_is_the_same_with_or_without_the_call_stacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock monitor (and the render's recorder) never read the stack: resources, inputs,
    secrets, edges, timeouts and outputs come out the same."""
    def plan(ev: evaluate.Evaluation) -> str:
        # In URN order: registrations reach the monitor from a thread pool.
        resources = sorted(floor.replay_of(ev), key=lambda r: str(r["urn"]))
        return json.dumps([resources, repr(ev.outputs)], sort_keys=True, default=repr)

    skipped = plan(evaluate_config(stack_config("dev")))
    _without_the_skip(monkeypatch)
    assert plan(evaluate_config(stack_config("dev"))) == skipped


def test_the_render_and_the_floor_walk_no_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both skip the walk, so the render cannot beat its floor by skipping work the floor does."""
    walks = _count_stack_walks(monkeypatch)
    ev = evaluate_config(stack_config("dev"))
    assert len(ev.resources) > 100 and walks[0] == 0
    floor.register(json.loads(json.dumps(floor.replay_of(ev))))
    assert walks[0] == 0
    # The counter counts: the same registrations walk the stack once each without the skip.
    _without_the_skip(monkeypatch)
    evaluate_config(stack_config("dev"))
    assert walks[0] >= len(ev.resources)
