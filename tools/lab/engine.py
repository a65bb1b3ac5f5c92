"""Apply the program's remote commands to lab hosts the way `pulumi up` would.

The plan comes from the same mock evaluation `make render` uses, with secrets resolved in
this process only. Commands run over real SSH, each once every command it depends on has
run, in parallel where the graph allows; their real stdout is fed back into the next
evaluation, as the engine feeds outputs to inputs. A command whose `create` changed runs
again (pulumi-command's update falls back to create); a command that left the plan runs
its `delete`, dependents first.

As pulumi-command 1.2.1 does, each command dials with its own connection's settings: the
pinned `hostKey` (a proxy's too), `perDialTimeout` per attempt, and `dialErrorLimit` failed
dials allowed before the next failure ends it (limit + 1 dials), pausing 0.1 s x 1.5^n (at
most 5 s) between them. A changed host key is a failed dial like any other. When the program
itself fails (e.g. a host printed something that is not its key), the commands it did
register still run, nothing is deleted, and `up` raises ProgramFailed, as `pulumi up` does.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tools.lab.netlab import Lab
from tools.render.evaluate import Evaluation, Registration, evaluate_raw
from tools.render.write import reveal

COMMAND = "command:remote:Command"
# What OpenSSH prints when it never got a session: the dial failed (refused, unreachable,
# timed out, or the host key is not the pinned one). Anything else is the command's own.
DIAL_FAILURE = re.compile(r"ssh: connect to host|Host key verification failed|Connection timed out during banner|"
                          r"kex_exchange_identification|Connection closed by .* port|No route to host|Connection refused")
DEFAULT_DIAL_ERROR_LIMIT, DEFAULT_PER_DIAL_TIMEOUT = 10, 15  # pulumi-command's defaults


@dataclass
class Run:
    name: str
    phase: str
    returncode: int
    stdout: str
    stderr: str
    dials: int = 1


class CommandFailed(RuntimeError):
    pass


class ProgramFailed(CommandFailed):
    """The program raised while registering resources; those it registered were applied."""


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
    program_error: Exception | None = None

    def evaluate(self, raw: dict[str, Any]) -> Evaluation:
        """The plan for `raw`; if the program fails part-way, what it registered until then."""
        partial = Evaluation("lab")
        self.program_error = None
        try:
            self.last = evaluate_raw(raw, self.secrets, "lab", into=partial, command_stdout=self.stdout)
        except Exception as err:  # noqa: BLE001 - `pulumi up` goes on with what was registered
            self.program_error, self.last = err, partial
        return self.last

    def _ssh(self, reg: Registration, phase: str) -> Run:
        conn = reveal(reg.inputs["connection"])
        key = self.lab.client_key.read_text()
        assert conn["privateKey"] == key, f"{reg.name}: the plan connects with another key than the lab's"
        argv = self._argv(reg.name, conn)
        stdin = reveal(reg.inputs["stdin"]) if "stdin" in reg.inputs else None
        limit = int(conn.get("dialErrorLimit", DEFAULT_DIAL_ERROR_LIMIT))
        dials, pause = 0, 0.1
        while True:
            dials += 1
            try:
                result = subprocess.run([*argv, reveal(reg.inputs[phase])], input=stdin or "", capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired as err:
                raise CommandFailed(f"{reg.name} ({phase}) timed out") from err
            dial_failed = result.returncode == 255 and DIAL_FAILURE.search(result.stderr) is not None
            if not dial_failed or (limit != -1 and dials > limit):
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 5.0)
        run = Run(reg.name, phase, result.returncode, result.stdout, result.stderr, dials)
        self.runs.append(run)
        if result.returncode != 0:
            raise CommandFailed(f"{reg.name} ({phase}) failed with {result.returncode} after {dials} dial(s): {result.stderr.strip()[-2000:]}")
        return run

    def _argv(self, name: str, conn: dict[str, Any]) -> list[str]:
        """ssh with exactly the plan's pinned key(s) and per-dial timeout, through its proxy if any."""
        known = self.lab.root / f"known_hosts.{name}"
        lines = [f"{conn['host']} {conn['hostKey']}\n"] if conn.get("hostKey") else []
        proxy = conn.get("proxy")
        if proxy and proxy.get("hostKey"):
            lines.append(f"{proxy['host']} {proxy['hostKey']}\n")
        known.write_text("".join(lines))
        argv = self.lab.ssh_argv(conn["host"], known, conn.get("user", "root"), int(conn.get("port", 22)))
        at = argv.index("-F")
        options = ["-o", f"ConnectTimeout={int(conn.get('perDialTimeout', DEFAULT_PER_DIAL_TIMEOUT))}"]
        if proxy:
            jump = self.lab.ssh_argv(proxy["host"], known, proxy.get("user", "root"), int(proxy.get("port", 22)))
            jump = jump[jump.index("ssh"):-2]  # without the namespace prefix (ssh runs it there) and "user@host --"
            jump += ["-o", f"ConnectTimeout={int(proxy.get('perDialTimeout', DEFAULT_PER_DIAL_TIMEOUT))}", "-W", "%h:%p",
                     f"{proxy.get('user', 'root')}@{proxy['host']}"]
            options += ["-o", "ProxyCommand=" + " ".join(jump)]
        return [*argv[:at], *options, *argv[at:]]

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
        if self.program_error is not None:
            # The program failed: `pulumi up` deletes nothing then.
            raise ProgramFailed(f"the program failed: {self.program_error}") from self.program_error
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

