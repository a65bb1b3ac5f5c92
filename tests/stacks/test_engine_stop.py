"""An Engine operation past its time limit is stopped whole (tests/support/engine.py stop_group)."""

from __future__ import annotations

import time
from pathlib import Path

import pulumi
import pytest
from pulumi import automation as auto

from tests.support import engine as engine_support
from tests.support.engine import Engine

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


def sleeping_program() -> None:
    """Registers a stack output, then works far past the operation's time limit."""
    pulumi.export("started", "yes")
    time.sleep(600)


def _processes_with(needle: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_an_operation_past_its_time_is_interrupted_then_killed_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past OP_TIMEOUT_S the operation's process group gets SIGINT (the CLI cancels, waiting for
    the program), after the grace SIGINT again (the CLI terminates: plugins stopped, the stack
    unlocked), then SIGKILL: nothing of it is left running and the stack is not left locked (a
    SIGKILL alone leaves the lock)."""
    monkeypatch.setattr(engine_support, "OP_TIMEOUT_S", 15)  # the CLI well into the update, even on a loaded machine
    monkeypatch.setattr(engine_support, "STOP_GRACE_S", 10)
    eng = Engine(tmp_path, sleeping_program)
    home = eng.env["PULUMI_HOME"]
    start = time.monotonic()
    with pytest.raises(auto.errors.CommandError):  # the CLI's own failure, after it unlocked
        eng.run("up")
    assert time.monotonic() - start < 70  # the time limit, then at most the grace and 10 s
    deadline = time.monotonic() + 10
    while _processes_with(f"PULUMI_HOME={home}") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_with(f"PULUMI_HOME={home}")
    assert not [p for p in eng.state.rglob("*") if "locks" in p.parts and p.is_file()], "\n".join(eng.log[-20:])
