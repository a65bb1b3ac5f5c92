"""The floor of a plan (`make bench-render`): what the Pulumi SDK alone needs to register the plan's
resources, replayed as plain resources under bare mocks with no program logic."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

SECRET_MARK = "[secret]"


def replay_of(ev: Any) -> list[dict[str, Any]]:
    """The plan's resources in registration order, each secret input as {SECRET_MARK: its value}
    (the bench renders with a placeholder login key; the other secrets are the mocks' own)."""
    from tools.render.evaluate import Secret

    def encode(value: Any) -> Any:
        if isinstance(value, Secret):
            return {SECRET_MARK: encode(value.value)}
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [encode(v) for v in value]
        return value

    # Our records fold the explicit provider into the dependencies; split it out again.
    providers = {r.urn for r in ev.resources if r.type.startswith("pulumi:providers:")}
    return [{"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom,
             "provider": next((d for d in r.dependencies if d in providers and r.custom), None),
             "dependencies": [d for d in r.dependencies if not (d in providers and r.custom)],
             # A component of a provider's package (a helm v4 Chart) is remote: its children are
             # the provider's, and depending on it is an edge to it, not to its children.
             "remote": not r.custom and not r.type.startswith("hybridai:"),
             "inputs": encode(r.inputs), "timeouts": r.timeouts} for r in ev.resources]


def held_secret(value: Any) -> Any:
    """One secret Output, already resolved, holding `value` whole: a secret input takes at least
    one. (`Output.secret(value)` would first unwrap a dict into an Output per key and value, more
    than even the render's typed connection costs it: docs/performance.md.)"""
    import asyncio

    import pulumi

    def resolved(x: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(x)
        return future

    return pulumi.Output(set(), resolved(value), resolved(True), resolved(True))


def replay(resources: list[dict[str, Any]]) -> None:
    """Register `resources` as plain Pulumi resources (run inside a Pulumi program)."""
    import pulumi

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {SECRET_MARK}:
                # The value itself, as the program registered it (a marker in its place would
                # spare the SDK serializing each command's connection), and no more.
                return held_secret(decode(value[SECRET_MARK]))
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    made: dict[str, pulumi.Resource] = {}  # by the URN recorded in the plan
    for r in resources:
        opts = pulumi.ResourceOptions(
            parent=made.get(r["parent"]), depends_on=[made[d] for d in r["dependencies"] if d in made],
            provider=made[r["provider"]] if r["provider"] else None,  # type: ignore[arg-type]
            custom_timeouts=pulumi.CustomTimeouts(**r["timeouts"]) if r["timeouts"] else None)
        props = decode(r["inputs"])
        if r["type"].startswith("pulumi:providers:"):
            res: pulumi.Resource = pulumi.ProviderResource(r["type"].removeprefix("pulumi:providers:"), r["name"], props, opts)
        elif r["custom"]:
            res = pulumi.CustomResource(r["type"], r["name"], props, opts)
        else:
            res = pulumi.ComponentResource(r["type"], r["name"], props, opts, remote=r["remote"])
        made[r["urn"]] = res


def bare_mocks() -> Any:
    """Mocks that give each resource an id and no state."""
    from pulumi.runtime import mocks

    class Bare(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return args.name + "-id", {}

        def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
            return {}, None

    return Bare()


def register(resources: list[dict[str, Any]]) -> None:
    """Replay `resources` as a Pulumi program of their own, under bare mocks, run as the render
    runs its own: without the SDK's call-stack capture, so that the render cannot beat its floor
    by skipping work the floor does (tools/render/stacktrace.py)."""
    from tools.render import mockrun

    async def program() -> None:
        replay(resources)

    mockrun.run(program, bare_mocks(), project="hybrid-ai", stack="bench")


def time_replay(path: str, same_gc: bool = False) -> None:
    """Time the replay of one plan in this (fresh) process, under bare mocks; prints a JSON line.
    `same_gc`: with the collector tuned as the program tunes its own (stacks.program.tune_gc),
    so the two differ in program logic only (docs/performance.md)."""
    resources = json.loads(Path(path).read_text())
    # Imported before the clock starts, as the render's `ratio` leaves its import out (and before
    # tune_gc's freeze, as the program freezes after its imports).
    from tools.render import mockrun  # noqa: F401

    if same_gc:
        from stacks.program import tune_gc

        tune_gc()
    start, cpu = time.perf_counter(), time.process_time()
    register(resources)
    print(json.dumps({"floor_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu, "resources": len(resources)}))
