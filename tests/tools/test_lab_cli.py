"""`make lab-up` / `make lab-down`: the lab comes up with its mesh, and goes away completely."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.helpers import PROJECT, unavailable
from tools.lab.base import missing_requirements

pytestmark = pytest.mark.e2e


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_lab_up_then_down_leaves_nothing() -> None:
    why = missing_requirements()
    if why:
        unavailable(f"lab: {why}")
    if (PROJECT / "build" / "lab.json").exists():
        pytest.skip("a lab from make lab-up is running; make lab-down first")
    before = namespaces()
    try:
        up = subprocess.run([sys.executable, "-m", "tools.lab", "up"], cwd=PROJECT, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        assert "6 hosts up, mesh applied" in up.stdout
        started = namespaces() - before
        assert len(started) == 10  # internet, operator, 2 site routers, 6 hosts
        assert (PROJECT / "build" / "lab.json").exists()
    finally:
        down = subprocess.run([sys.executable, "-m", "tools.lab", "down"], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert namespaces() == before
    assert not (PROJECT / "build" / "lab.json").exists()
