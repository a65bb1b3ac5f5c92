"""No join token on a command line other users can read in `ps`, sampled while the register
and join scripts run under stubs that take their time (a lock held elsewhere, a slow join).
The one exception is documented: `microk8s join` takes the token only inside its argument."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from tests.support.cluster_scripts import start
from tests.support.cluster_stubs import ClusterHost
from tests.support.helpers import command_lines_while
from tests.support.join_stub import issue_token

# `ps` sees every process on the machine, other tests' too (xdist runs them side by side):
# each test looks for a token of its own.
TOKEN = secrets.token_hex(16)
# The lock is held by another registration for a while; flock as upstream takes it (-w N FD,
# or the old form --timeout N FILE COMMAND...).
SLOW_FLOCK = '/bin/sleep 0.6; if [ "$1" = --timeout ]; then shift 3; exec "$@"; fi; exit 0\n'


def slow(host: ClusterHost) -> None:
    (host.bin / "flock").write_text("#!/usr/bin/env bash\nset -u\n" + SLOW_FLOCK)
    microk8s = host.bin / "microk8s"
    microk8s.write_text(microk8s.read_text().replace("set -u\n", "set -u\n/bin/sleep 0.5\n", 1))


def sample(proc: subprocess.Popen[str]) -> tuple[list[str], str]:
    """Every command line seen on the machine while `proc` runs, and its stdout."""
    seen = command_lines_while(proc)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, err
    return seen, out


def test_register_puts_no_token_on_any_command_line(tmp_path: Path) -> None:
    token_in = secrets.token_hex(16)
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    slow(cp)
    seen, out = sample(start(cp, "microk8s-register.sh", token_in + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1"))
    assert any("microk8s add-node" in line and str(cp.bin) in line for line in seen)  # it saw this test's own processes
    token = out.strip().splitlines()[-1]
    assert [line for line in seen if token in line or token_in in line] == []


def test_join_shows_the_token_only_in_the_one_microk8s_join_call(tmp_path: Path) -> None:
    seed = ClusterHost(tmp_path / "seed", "receipt", "100.64.0.2")
    (seed.snap_data / "args").mkdir(parents=True)
    (seed.snap_data / "args/kubelet").write_text("--node-ip=100.64.0.2\n")
    issue_token(seed.snap_data, token=TOKEN)
    node = ClusterHost(tmp_path, seed=seed)
    (node.snap_data / "var/lock").mkdir(parents=True)
    (node.snap_data / "args").mkdir(parents=True)
    (node.snap_data / "args/kubelet").write_text("--node-ip=100.64.1.1\n")
    slow(node)
    seen, _ = sample(start(node, "microk8s-join.sh", TOKEN + "\n", HOST_NAME="ws-1", CONTROL_PLANE="100.64.0.2", NODE_IP="100.64.1.1"))
    with_token = [line for line in seen if TOKEN in line]
    assert with_token, "the sampling never saw the join"
    assert all(is_microk8s_join(line) for line in with_token), with_token


def is_microk8s_join(line: str) -> bool:
    """The stub's own command line: `bash <bin>/microk8s join ...`, or, sampled between the
    kernel running the shebang and env exec'ing bash, `/usr/bin/env bash <bin>/microk8s join ...`."""
    words = line.split()
    script = next((i for i, word in enumerate(words) if word.endswith("/microk8s")), None)
    if script is None or script + 1 >= len(words):
        return False
    return words[:script] in (["bash"], ["/usr/bin/env", "bash"]) and words[script + 1] == "join"


def test_the_join_check_accepts_only_the_microk8s_join_call() -> None:
    join = f"/t/bin/microk8s join 100.64.0.2:25000/{TOKEN} --worker"
    assert is_microk8s_join(f"bash {join}") and is_microk8s_join(f"/usr/bin/env bash {join}")
    assert not is_microk8s_join(f"bash -c echo {TOKEN}")
    assert not is_microk8s_join(f"curl {join}")
    assert not is_microk8s_join(f"bash /t/bin/microk8s add-node {TOKEN}")
