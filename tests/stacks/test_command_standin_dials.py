"""The pulumi-command stand-in's dials under the real Pulumi CLI, against OpenSSH sshd on lab
hosts: pinned host keys (the jump host's too), the dial budget, pulumi's retry schedule, and what
is not retried. Each test encodes facts of pulumi-command v1.2.1 listed in docs/upstream.md
("pulumi-command v1.2.1 and its lab stand-in")."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import stop_processes
from tests.support.standin import L, Stack, conn, lines, standin_lab
from tools.lab.netlab import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with standin_lab(tmp_path_factory.mktemp("standin-lab")) as up:
        yield up


# -- dials: host keys, budgets, the retry schedule, and what is not retried ----------------------


def test_a_wrong_host_key_is_refused(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    wrong = conn(lab, "hub", host_key=lab.hosts["ws-1"].host_key, dial_error_limit=1)
    result = stack.run("up", [{"name": "pinned", "connection": wrong, "args": {"create": f"touch {L}/pinned"}}])
    assert not result["ok"]
    assert "after 1 failed attempts: ssh: handshake failed: ssh: host key mismatch" in result["error"]
    assert not (lab.hosts["hub"].dir / "labstate" / "pinned").exists()


def test_a_jump_host_has_its_own_pinned_key(lab: Lab, tmp_path: Path) -> None:
    ws2 = lab.hosts["ws-2"]
    target = {"host": ws2.lan, "host_key": ws2.host_key, "dial_error_limit": 1, "per_dial_timeout": 5}
    wrong_jump = conn(lab, "ws-1", host_key=lab.hosts["hub"].host_key, dial_error_limit=1)
    result = Stack(lab, tmp_path / "a").run("up", [{"name": "via", "connection": target | {"proxy": wrong_jump},
                                                    "args": {"create": f"touch {L}/via"}}])
    assert not result["ok"]
    assert "proxy: after 1 failed attempts: ssh: handshake failed: ssh: host key mismatch" in result["error"]
    # The jump host's key right, the target's wrong: refused too. Upstream retries the handshake
    # on the one tunnel the refused first handshake closed, so the error it ends with is EOF.
    wrong_target = target | {"host_key": lab.hosts["hub"].host_key, "proxy": conn(lab, "ws-1")}
    result = Stack(lab, tmp_path / "b").run("up", [{"name": "via", "connection": wrong_target, "args": {"create": f"touch {L}/via"}}])
    assert not result["ok"] and "proxy: after 1 failed attempts: ssh: handshake failed: EOF" in result["error"]
    assert not (ws2.dir / "labstate" / "via").exists()


# Drops the SYNs to port 2200 and keeps each dial's first one (its source port) in a set whose
# entries expire 10 minutes after they were added: `expires` dates each dial in kernel time.
DIAL_PROBE = [
    "add table inet dialprobe",
    "add set inet dialprobe dials { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 10m; }",
    "add chain inet dialprobe input { type filter hook input priority -10; policy accept; }",
    "add rule inet dialprobe input tcp dport 2200 tcp flags & (syn | ack) == syn add @dials { ip saddr . tcp sport } drop",
]


def _dial_starts(listing: str) -> list[float]:
    """Seconds from the first dial to each dial, from `nft list set`'s `expires 9m59s352ms`."""
    left = [60 * int(m or 0) + int(s or 0) + int(ms or 0) / 1000
            for m, s, ms in re.findall(r"expires (?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", listing)]
    return sorted(max(left) - x for x in left)


def test_an_unreachable_host_fails_within_the_dial_budget(lab: Lab, tmp_path: Path) -> None:
    """A host that drops SYNs: dialErrorLimit+1 dials, each given up after perDialTimeout, with
    the retry pauses between them. The dials are counted and dated where the SYNs arrive (the
    kernel's clock), so a loaded machine can make the run slower but cannot pass a wrong schedule."""
    hub = lab.hosts["hub"]
    refused = conn(lab, "hub", port=2201, dial_error_limit=0)
    base = Stack(lab, tmp_path / "base").run("up", [{"name": "down", "connection": refused, "args": {"create": "true"}}])
    assert not base["ok"] and "after 0 failed attempts: dial tcp 192.0.2.10:2201: connect: connection refused" in base["error"]
    for command in DIAL_PROBE:
        lab.exec("hub", "nft", command)
    try:
        limit, per_dial = 2, 2
        dropped = conn(lab, "hub", port=2200, dial_error_limit=limit, per_dial_timeout=per_dial)
        result = Stack(lab, tmp_path / "drop").run("up", [{"name": "down", "connection": dropped, "args": {"create": "true"}}])
        starts = _dial_starts(lab.exec("hub", "nft", "list", "set", "inet", "dialprobe", "dials").stdout)
    finally:
        lab.exec("hub", "nft", "delete", "table", "inet", "dialprobe")
    assert not result["ok"]
    assert f"after {limit} failed attempts: dial tcp {hub.mgmt}:2200: i/o timeout" in result["error"]
    assert len(starts) == limit + 1, starts  # each dial a new connection (source port); no more, no fewer
    for i, gap in enumerate(b - a for a, b in itertools.pairwise(starts)):
        # A dial gives up after perDialTimeout; the next starts after retry.Until's pause.
        expected = per_dial + 0.1 * 1.5**i
        assert expected - 0.05 <= gap <= expected + 1.5, (i, starts)
    budget = (limit + 1) * per_dial + sum(0.1 * 1.5**i for i in range(limit))
    assert result["elapsed"] >= budget - 0.05, (result["elapsed"], budget)  # the last dial waited out its timeout too


LISTENER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 2202)); s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept(); print(time.monotonic(), flush=True); c.close()
"""


def test_failed_dials_pause_on_pulumis_retry_schedule(lab: Lab, tmp_path: Path) -> None:
    """A server that closes every connection: each dial fails its handshake at once; the gaps
    between the dials are retry.Until's defaults, 100 ms growing x1.5."""
    hub = lab.hosts["hub"]
    listener = subprocess.Popen(["ip", "netns", "exec", hub.ns, sys.executable, "-c", LISTENER, hub.mgmt],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        limit = 5
        closing = conn(lab, "hub", port=2202, dial_error_limit=limit)
        result = Stack(lab, tmp_path).run("up", [{"name": "closed", "connection": closing, "args": {"create": "true"}}])
    finally:
        stop_processes([listener])
    assert not result["ok"] and f"after {limit} failed attempts: ssh: handshake failed: " in result["error"]
    assert listener.stdout is not None
    times = [float(t) for t in listener.stdout.read().split()]
    assert len(times) == limit + 1, times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for i, gap in enumerate(gaps):
        pause = 0.1 * 1.5**i
        assert pause - 0.01 <= gap <= pause + 0.25, (i, gaps)


def test_a_dropped_session_is_an_error_and_not_retried(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    drop = f"echo ran >> {L}/dropped.log; kill -9 $PPID"  # the session's sshd process goes away
    result = stack.run("up", [{"name": "dropped", "connection": conn(lab, "hub"), "args": {"create": drop}}])
    assert not result["ok"]
    assert "remote command exited without exit status or exit signal" in result["error"]
    assert lines(lab, "hub", "dropped.log") == ["ran"]


def test_environment_the_server_refuses_is_an_error(lab: Lab, tmp_path: Path) -> None:
    stack = Stack(lab, tmp_path)
    spec = {"name": "env", "connection": conn(lab, "ws-1"), "args": {"create": f"touch {L}/env", "environment": {"LAB_X": "1"}}}
    result = stack.run("up", [spec])
    assert not result["ok"] and 'could not set environment variable "LAB_X"' in result["error"]
    assert not (lab.hosts["ws-1"].dir / "labstate" / "env").exists()


def test_a_custom_timeout_ends_the_dial_loop_but_not_a_running_command(lab: Lab, tmp_path: Path) -> None:
    """pulumi-go-provider cancels the operation's context at its custom timeout, and the engine
    waits for the provider: the dial loop stops at its next pause (a dial in progress runs on),
    while `session.Run` takes no context, so a running command has no ceiling at all."""
    refused = conn(lab, "hub", port=2201, dial_error_limit=0)
    base = Stack(lab, tmp_path / "base").run("up", [{"name": "down", "connection": refused, "args": {"create": "true"}}])
    lab.exec("hub", "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "2203", "-j", "DROP")
    try:
        dropped = conn(lab, "hub", port=2203, dial_error_limit=10, per_dial_timeout=2)
        result = Stack(lab, tmp_path / "drop").run("up", [{"name": "down", "connection": dropped, "timeouts": {"create": "3s"},
                                                            "args": {"create": "true"}}])
    finally:
        lab.exec("hub", "iptables", "-D", "INPUT", "-p", "tcp", "--dport", "2203", "-j", "DROP")
    assert not result["ok"] and "context deadline exceeded" in result["error"], result["error"][-800:]
    extra = result["elapsed"] - base["elapsed"]
    assert 3 - 0.5 <= extra <= 3 + 2 + 3, extra  # the timeout, the dial in progress; not 11 dials of 2 s

    slow = Stack(lab, tmp_path / "slow").run("up", [{"name": "slow", "connection": conn(lab, "hub"), "timeouts": {"create": "1s"},
                                                     "args": {"create": f"sleep 4; echo done >> {L}/slow.log"}}])
    # The step outlives its 1 s timeout, runs to the end and succeeds: no ceiling on a running command.
    assert slow["ok"] and slow["changes"] == {"create": 2}, slow["error"][-800:]
    assert lines(lab, "hub", "slow.log") == ["done"] and slow["elapsed"] - base["elapsed"] >= 4 - 0.5
