"""No join token on a command line other users can read in `ps`, sampled while the register
and join scripts run under stubs that take their time (a lock held elsewhere, a slow join).
The one exception is documented: `microk8s join` takes the token only inside its argument."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.cluster_stubs import ClusterHost, start

TOKEN = "5eed0f0e5eed0f0e5eed0f0e5eed0f0e"
# The lock is held by another registration for a while; flock as upstream takes it (-w N FD,
# or the old form --timeout N FILE COMMAND...).
SLOW_FLOCK = '/bin/sleep 0.6; if [ "$1" = --timeout ]; then shift 3; exec "$@"; fi; exit 0\n'


def slow(host: ClusterHost) -> None:
    (host.bin / "flock").write_text("#!/usr/bin/env bash\nset -u\n" + SLOW_FLOCK)
    microk8s = host.bin / "microk8s"
    microk8s.write_text(microk8s.read_text().replace("set -u\n", "set -u\n/bin/sleep 0.5\n", 1))


def sample(proc: subprocess.Popen[str]) -> tuple[list[str], str]:
    """Every command line seen on the machine while `proc` runs, and its stdout."""
    seen: list[str] = []
    while proc.poll() is None:
        seen += subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True, check=False).stdout.splitlines()
        time.sleep(0.02)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, err
    return seen, out


def test_register_puts_no_token_on_any_command_line(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    slow(cp)
    seen, out = sample(start(cp, "microk8s-register.sh", TOKEN + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1"))
    assert any("microk8s add-node" in line for line in seen)  # the sampling did see the scripts' processes
    token = out.strip().splitlines()[-1]
    assert [line for line in seen if token in line or TOKEN in line] == []


def test_join_shows_the_token_only_in_the_one_microk8s_join_call(tmp_path: Path) -> None:
    node = ClusterHost(tmp_path)
    (node.snap_data / "var/lock").mkdir(parents=True)
    (node.snap_data / "args").mkdir(parents=True)
    (node.snap_data / "args/kubelet").write_text("--node-ip=100.64.1.1\n")
    slow(node)
    seen, _ = sample(start(node, "microk8s-join.sh", TOKEN + "\n", HOST_NAME="ws-1", CONTROL_PLANE="100.64.0.2", NODE_IP="100.64.1.1"))
    with_token = [line for line in seen if TOKEN in line]
    assert with_token, "the sampling never saw the join"
    assert all(line.split()[1].endswith("/microk8s") and line.split()[2] == "join" for line in with_token), with_token
