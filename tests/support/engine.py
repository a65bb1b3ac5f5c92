"""The real Pulumi CLI (`make engine` builds it) driving one stack of an inline program through the
automation API, on a local file backend with the passphrase secrets provider."""

from __future__ import annotations

import base64
import os
import pickle
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from tests.support.engine_op import LINE, RESULT
from tests.support.helpers import PROJECT, unavailable

ENGINE = PROJECT / ".engine"
OP_TIMEOUT_S = 900
"""The longest operation of the tests (the lab's `up`) takes minutes; one that hangs is stopped."""
STOP_GRACE_S = 30
"""How long a stopped operation's process group has to end on SIGINT before it is killed."""


def stop_group(proc: subprocess.Popen[Any], grace_s: float | None = None) -> None:
    """SIGINT `proc`'s process group: the CLI cancels (it waits for the steps in flight). If it
    has not ended after `grace_s`, SIGINT again: the CLI terminates, stopping its plugins (each in
    a group of its own) and unlocking the stack. SIGKILL what is left 10 s later. The operation's
    own process (engine_op) outlives the SIGINTs, reading the CLI's output until it exits."""
    grace = STOP_GRACE_S if grace_s is None else grace_s

    def signal_group(sig: int) -> bool:
        proc.poll()  # reap the leader, so that an ended one no longer counts
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def ended_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while signal_group(0):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True
    for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGINT, 10.0)):
        if not signal_group(sig) or ended_within(wait_s):
            return
    signal_group(signal.SIGKILL)


def _in_process(*_: Any) -> None:
    raise AssertionError("run an Engine's operations with Engine.run (their program in a process of its own)")


class Engine:
    """One stack of one inline program, driven through the real CLI; every line it prints is kept."""

    def __init__(self, root: Path, program: Callable[[], Awaitable[None] | None], stack: str = "lab", project: str = "hybrid-ai-lab",
                 env: dict[str, str] | None = None) -> None:
        """`program`: a module's function (or a functools.partial of one), so that the process
        of each operation can import it."""
        cli = ENGINE / "bin" / "pulumi"
        if not cli.exists():
            unavailable(f"the Pulumi CLI is not built ({cli}): run `make engine`")
        self.program = pickle.dumps(program)  # fails here, not in an operation, for a closure or a lambda
        self.state = root / "state"
        self.state.mkdir()
        self.passphrase = secrets.token_hex(16)
        env = {
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_HOME": str(root / "home"),  # no plugin or credential of the machine leaks in
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        } | (env or {})
        settings = auto.ProjectSettings(name=project, runtime="python")
        ws = auto.LocalWorkspaceOptions(
            work_dir=str(root), project_settings=settings, env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(ENGINE)),
        )
        self.stack = auto.create_stack(stack, project_name=settings.name, program=_in_process, opts=ws)
        self.root, self.env, self.project = root, env, project
        self.log: list[str] = []
        self.returned_at = 0.0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The CLI itself on this stack (what the automation API does not wrap)."""
        return subprocess.run([str(ENGINE / "bin" / "pulumi"), *args, "--stack", self.stack.name, "--non-interactive"],
                              cwd=self.root, env={**self.env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                              check=False, timeout=120)

    def out(self, line: str) -> None:
        self.log.append(line)

    def summary(self, since: int, op: str, seconds: float | None = None) -> list[str]:
        """The CLI's own `Resources:` block of the last operation, printed to the test log."""
        lines = self.log[since:]
        start = next(i for i, line in enumerate(lines) if line.strip() == "Resources:")
        block = []
        for line in lines[start:]:
            if not line.strip() or line.lstrip().startswith("Duration"):
                break
            block.append(line.rstrip())
        took = f"  ({seconds:.1f} s)" if seconds is not None else ""
        print(f"\n$ pulumi {op}{took}", *block, sep="\n", flush=True)
        return block

    def run(self, op: str, *, linger: bool = False, **options: Any) -> Any:
        """`op` (preview, up, refresh, destroy) with the automation API's `options`; the CLI's lines
        are added to `log` as they come. Its result, or its CommandError raised here.

        The program runs in a process of its own that ends with the operation
        (tests/support/engine_op.py), as a language host's process ends with the CLI under
        `pulumi up`. In one process, the SDK's inline language server is stopped when its CLI
        exits but the program it runs is not (docs/upstream.md): after a failed operation that
        program goes on in its own thread beside the next operations, its calls to the exited
        CLI failing, and grpc keeps one pool of connections per process, in which an address that
        refused a connection fails any new channel's call at once while it backs off. The next
        operations failed so now and then ("Resource monitor has terminated", or "Exception calling
        application" naming a refused 127.0.0.1 port) although their own CLI was alive.
        `linger`: this process lets such a program go on to its end, as the SDK's own does (only
        to show that it does).

        `returned_at`: when the operation returned (time.time()), before its process ended."""
        job = {"work_dir": str(self.root), "project": self.project, "stack": self.stack.name, "env": dict(self.stack.workspace.env_vars),
               "program": pickle.loads(self.program), "op": op, "options": options, "linger": linger}
        proc = subprocess.Popen([sys.executable, "-m", "tests.support.engine_op"], cwd=PROJECT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        timer = threading.Timer(OP_TIMEOUT_S, stop_group, (proc,))
        timer.start()
        outcome: list[Any] = []
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(base64.b64encode(pickle.dumps(job)).decode())
            proc.stdin.close()
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                if line.startswith(LINE):
                    self.out(line.removeprefix(LINE))
                elif line.startswith(RESULT):
                    self.returned_at = time.time()
                    outcome.append(pickle.loads(base64.b64decode(line.removeprefix(RESULT))))
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                stop_group(proc)
                proc.wait()
        assert outcome, f"`{op}`'s process ended ({code}) without a result (stopped after {OP_TIMEOUT_S} s?): see stderr"
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def preview(self, label: str = "preview", **options: Any) -> list[str]:
        mark, start = len(self.log), time.monotonic()
        self.run("preview", **options)
        return self.summary(mark, label, time.monotonic() - start)

    def up(self, label: str = "up", **options: Any) -> tuple[auto.UpResult, list[str]]:
        mark, start = len(self.log), time.monotonic()
        result = self.run("up", **options)
        return result, self.summary(mark, label, time.monotonic() - start)

    def destroy(self, label: str = "destroy", **options: Any) -> list[str]:
        mark, start = len(self.log), time.monotonic()
        self.run("destroy", **options)
        return self.summary(mark, label, time.monotonic() - start)

    def state_file(self) -> str:
        files = list(self.state.rglob(f"{self.stack.name}.json"))
        assert len(files) == 1, f"one state file expected under {self.state}: {files}"
        return files[0].read_text()

    def urns(self) -> set[str]:
        deployment = self.stack.export_stack().deployment
        return {r["urn"] for r in (deployment or {}).get("resources", [])}
