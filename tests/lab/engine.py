"""Apply the program's remote commands to lab hosts the way `pulumi up` would.

The plan comes from the same mock evaluation `make render` uses, with secrets resolved in
this process only. Commands run over real SSH, each once every command it depends on has
run, in parallel where the graph allows; their real stdout is fed back into the next
evaluation, as the engine feeds outputs to inputs. A command whose `create` changed runs
again (pulumi-command's update falls back to create); a command that left the plan runs
its `delete`, dependents first.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stacks.render.evaluate import Evaluation, Registration
from stacks.render.write import reveal
from tests.helpers import evaluate_config
from tests.lab.netlab import Lab

COMMAND = "command:remote:Command"


@dataclass
class Run:
    name: str
    phase: str
    returncode: int
    stdout: str
    stderr: str


class CommandFailed(RuntimeError):
    pass


@dataclass
class Engine:
    lab: Lab
    secrets: dict[str, str]
    scope: Callable[[str], bool] = lambda name: True
    """Which commands this lab runs (by resource name); others are left out, never run."""
    applied: dict[str, Registration] = field(default_factory=dict)
    stdout: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    last: Evaluation | None = None

    def evaluate(self, raw: dict[str, Any]) -> Evaluation:
        self.last = evaluate_config(raw, self.secrets, stack="lab", command_stdout=self.stdout)
        return self.last

    def _ssh(self, reg: Registration, phase: str) -> Run:
        conn = reveal(reg.inputs["connection"])
        key = self.lab.client_key.read_text()
        assert conn["privateKey"] == key, f"{reg.name}: the plan connects with another key than the lab's"
        known = self.lab.root / f"known_hosts.{reg.name}"
        known.write_text(f"{conn['host']} {conn['hostKey']}\n")  # exactly the key the plan pins
        argv = self.lab.ssh_argv(conn["host"], known, conn.get("user", "root"), int(conn.get("port", 22)))
        stdin = reveal(reg.inputs["stdin"]) if "stdin" in reg.inputs else None
        try:
            result = subprocess.run([*argv, reveal(reg.inputs[phase])], input=stdin or "", capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as err:
            raise CommandFailed(f"{reg.name} ({phase}) timed out") from err
        run = Run(reg.name, phase, result.returncode, result.stdout, result.stderr)
        self.runs.append(run)
        if result.returncode != 0:
            raise CommandFailed(f"{reg.name} ({phase}) failed with {result.returncode}: {result.stderr.strip()[-2000:]}")
        return run

    def run_create(self, reg: Registration) -> Run:
        run = self._ssh(reg, "create")
        self.stdout[reg.name] = run.stdout
        self.applied[reg.name] = reg
        return run

    def up(self, raw: dict[str, Any], *, force: bool = False) -> list[Run]:
        """Run what changed (or, with force, every command once), then delete what left the plan."""
        done: dict[str, Run] = {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            while True:
                ev = self.evaluate(raw)
                commands = {r.name: r for r in ev.of_type(COMMAND) if self.scope(r.name)}
                pending = [n for n in commands if not self._settled(commands[n], done, force)]
                if not pending:
                    break
                ready = [
                    commands[n] for n in pending
                    if all(self._settled(commands[d], done, force) for d in _command_deps(ev, commands[n]) if d in commands)
                ]
                if not ready:
                    raise RuntimeError(f"nothing ready among {pending}")
                for run in pool.map(self.run_create, ready):
                    done[run.name] = run
        gone = [self.applied[n] for n in self.applied if n not in commands]
        for reg in _dependents_first(gone):
            if "delete" in reg.inputs:
                done[reg.name] = self._ssh(reg, "delete")
            self.applied.pop(reg.name)
            self.stdout.pop(reg.name, None)
        return list(done.values())

    def _settled(self, reg: Registration, done: dict[str, Run], force: bool) -> bool:
        """Ran in this `up`, or (without force) unchanged since it last ran."""
        if reg.name in done:
            return True
        previous = self.applied.get(reg.name)
        return not force and previous is not None and previous.inputs["create"] == reg.inputs["create"]

    def run_again(self, name: str) -> Run:
        """Run one command's create again as it stands in the last plan."""
        assert self.last is not None
        return self.run_create(self.last.by_name(name))


def _command_deps(ev: Evaluation, reg: Registration) -> set[str]:
    """Names of the commands `reg` depends on, directly or through other resources."""
    by_urn = {r.urn: r for r in ev.resources}
    return {by_urn[u].name for u in ev.closure(reg.urn) if by_urn[u].type == COMMAND}


def _dependents_first(regs: list[Registration]) -> list[Registration]:
    remaining = {r.urn: r for r in regs}
    ordered: list[Registration] = []
    while remaining:
        needed = {d for r in remaining.values() for d in r.dependencies}
        leaves = [r for u, r in remaining.items() if u not in needed]
        if not leaves:
            raise RuntimeError("dependency cycle among deleted resources")
        ordered += leaves
        for r in leaves:
            remaining.pop(r.urn)
    return ordered

