"""The lab's systemd stand-in (tools/lab/shims/systemctl) where the host scripts rely on
systemctl(1): `enable --now` also starts a unit, `disable --now` also stops it, and without
`--now` neither starts nor stops anything."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.helpers import unavailable
from tools.lab.base import SHIMS, missing_requirements

pytestmark = pytest.mark.e2e

CALLS = """set -e
mount -t tmpfs lab-run /run
mkdir -p /run/hybrid-ai-lab
s() { bash "$SHIM" "$@"; }
state() { echo "$1: $(s is-enabled --quiet "$2" && echo enabled || echo disabled) $(s is-active --quiet "$2" && echo active || echo inactive)"; }
s enable a.timer; state enable a.timer
s start a.timer; s disable a.timer; state disable a.timer
s enable --now b.timer; state "enable --now" b.timer
s disable --now b.timer; state "disable --now" b.timer
"""


def test_now_starts_and_stops_as_systemctl_does() -> None:
    why = missing_requirements()
    if why:
        unavailable(why)
    # Its own mount namespace with a private /run: the shim keeps its state in /run/hybrid-ai-lab.
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", "-c", CALLS], env={"SHIM": str(SHIMS / "systemctl"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                         capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    assert out == ["enable: enabled inactive", "disable: disabled active", "enable --now: enabled active", "disable --now: disabled inactive"]
