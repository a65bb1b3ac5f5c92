"""tests/support/program_driver.py's job, run with the engine's events recorded: when each
resource's step started and ended (as this process received the events, within 0.1 s, the
automation API's polling of the CLI's event log), for `make bench`'s timeline of an `up`.

Job on stdin as program_driver's, plus `parallel` (the CLI's `--parallel`; 0 or absent: its
default); result as its, plus `steps`: [urn, op, start_s, end_s] from the operation's start, and
`elapsed` ends at the engine's summary event, `import_s` (the process's time up to its imports
done: the program's import, which `elapsed` leaves out), and `dependencies`: {urn: [urn it waits on]} of every
resource in the state before or after the operation (its dependencies and its provider)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from tests.support.program_driver import stack_of
from tools.engine_stack import deployment, operate


def dependencies(resources: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What each resource waits on: its dependencies and its provider (`<urn>::<id>`); a
    component's (its span is no step of its own) under `component:<urn>`."""
    return {("" if r.get("custom") else "component:") + r["urn"]:
            [*r.get("dependencies", []), *([r["provider"].rsplit("::", 1)[0]] if r.get("provider") else [])] for r in resources}


def process_age_s() -> float:
    """Seconds since this process started (/proc/self/stat starttime), interpreter start included."""
    start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_s(stat: str | None = None) -> float:
    """CPU seconds the machine's processes have run since boot: /proc/stat's `cpu` line (user nice
    system idle iowait irq softirq steal ...) less idle, iowait and steal (a hypervisor's other
    guests); guest time is already in user. Every process: the engine, the lab's hosts and
    control plane, anything else running."""
    fields = [int(v) for v in (stat or Path("/proc/stat").read_text()).split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def run(job: dict[str, Any]) -> dict[str, Any]:
    import stacks.program  # noqa: F401  (stack_of's import, done here to be timed)
    imported_s = process_age_s()
    stack = stack_of(job)
    before = dependencies(deployment(stack))
    started: dict[str, tuple[str, float]] = {}
    steps: list[list[Any]] = []
    summary: dict[str, float] = {}
    start, machine = time.monotonic(), machine_cpu_s()

    def on_event(event: auto.EngineEvent) -> None:
        now = time.monotonic() - start
        if event.summary_event is not None:
            summary["at"], summary["machine_cpu_s"] = now, machine_cpu_s() - machine
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            started[meta.urn] = (meta.op.value, now)
        done = event.res_outputs_event or event.res_op_failed_event
        if done is not None and (meta := done.metadata).urn in started:
            op, begun = started.pop(meta.urn)
            steps.append([meta.urn, op, round(begun, 2), round(now, 2)])

    # The CLI's default is 4 per CPU; `parallel` in the job overrides it (0: the default).
    opts: dict[str, Any] = {"parallel": job["parallel"]} if job.get("parallel") else {}
    result = operate(stack, job["op"], on_event=on_event, **opts)
    # The operation's own time ends with the engine's summary: after it the automation API runs
    # two more CLI commands (the stack's outputs and its history).
    result["elapsed"] = summary.get("at", time.monotonic() - start)
    result["machine_cpu_s"] = round(summary.get("machine_cpu_s", machine_cpu_s() - machine), 2)  # over `elapsed`
    # The process's start and its imports (pulumi's, the program's), as a render's time has them.
    result["import_s"] = round(imported_s, 2)
    result["steps"] = steps
    after = deployment(stack)
    result["resources"] = [{"urn": r["urn"], "type": r["type"]} for r in after]
    result["dependencies"] = before | dependencies(after)
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))), flush=True)
