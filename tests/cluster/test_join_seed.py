"""A node's join under the cluster stubs asks the seed as MicroK8s 1.32 does
(tests/support/join_stub.py): only a live token the seed issued joins, and the seed's kubelet
args replace the node's, so the join step puts the node's own flags back."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from tests.support.cluster_scripts import joined_worker, seed_and_token
from tests.support.cluster_stubs import ClusterHost
from tests.support.join_stub import issue_token

JOIN = {"HOST_NAME": "ws-1", "CONTROL_PLANE": "100.64.0.2", "NODE_IP": "100.64.1.1", "WORKER": "true"}


def test_join_needs_a_live_token_the_seed_issued(tmp_path: Path) -> None:
    """cluster-agent 1.32 (the stub, tests/support/join_stub.py): a token the seed never issued,
    or one past its expiry, joins nobody; one without a TTL joins once."""
    seed, _ = seed_and_token(tmp_path)
    h = joined_worker(tmp_path / "ws", seed)
    for token in (secrets.token_hex(16), issue_token(seed.snap_data, ttl=-60)):
        refused = h.run("microk8s-join.sh", stdin=token, **JOIN)
        assert refused.returncode == 1 and "could not join through 100.64.0.2:25000" in refused.stderr
        assert not (h.snap_data / "var/lock/clustered.lock").exists() and token not in refused.stderr
    once = issue_token(seed.snap_data, ttl=-1)
    assert h.run("microk8s-join.sh", stdin=once, **JOIN).returncode == 0
    assert once not in (seed.snap_data / "credentials/cluster-tokens.txt").read_text()
    other = joined_worker(tmp_path / "ws-2", seed)
    assert other.run("microk8s-join.sh", stdin=once, **dict(JOIN, NODE_IP="100.64.1.2")).returncode == 1


def test_a_join_takes_the_seeds_kubelet_args_and_the_node_puts_its_own_back(tmp_path: Path) -> None:
    """join.py @ v1.32 writes the seed's kubelet args over the node's (store_base_kubelet_args):
    the join step puts the node's own flags (its launch configuration's) back, every run."""
    seed, token = seed_and_token(tmp_path)
    seed_args = seed.snap_data / "args/kubelet"
    seed_args.write_text(re.sub(r"--runtime-request-timeout=\S+", "--runtime-request-timeout=2m", seed_args.read_text())
                         + "--hostname-override=receipt\n")
    h = joined_worker(tmp_path / "ws", seed)
    own = "--node-ip=100.64.1.1 --runtime-request-timeout=45m --cluster-domain=cluster.local --cluster-dns=10.152.183.10"
    result = h.run("microk8s-join.sh", stdin=token, **JOIN, KUBELET_ARGS=own)
    assert result.returncode == 0, result.stderr
    args = (h.snap_data / "args/kubelet").read_text().splitlines()
    assert set(own.split()) <= set(args) and "--runtime-request-timeout=2m" not in args
    assert not [a for a in args if a.startswith("--hostname-override")]
    assert result.stdout.strip() == "changed=joined node-ip runtime-request-timeout"
    assert h.state_changes()[-1] == "snap restart microk8s.daemon-kubelite"
    again = h.run("microk8s-join.sh", stdin=token, **JOIN, KUBELET_ARGS=own)
    assert again.returncode == 0 and again.stdout.strip() == "changed=none" and h.state_changes() == []
    bad = h.run("microk8s-join.sh", stdin=token, **JOIN, KUBELET_ARGS="--node-ip=1.2.3.4|x")
    assert bad.returncode == 1 and "not a kubelet flag" in bad.stderr and h.state_changes() == []


def stub_join(h: ClusterHost, token: str) -> int:
    """The stub's `microk8s join` with any token, as join.py would send it (the program's join
    step passes only 32 hex characters)."""
    env = {"PATH": f"{h.bin}:/usr/bin:/bin", "STATE": str(h.state), "HOME": str(h.root), **h.env}
    argv = [str(h.bin / "microk8s"), "join", f"100.64.0.2:25000/{token}", "--worker"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30).returncode


def test_the_stub_checks_and_removes_tokens_as_cluster_agent_does(tmp_path: Path) -> None:
    """IsValidToken and RemoveToken @ 1.32 (docs/upstream.md): a whitespace-only token matches
    the "" after the file's final newline and consumes nothing; removal drops the first line
    that starts with the token, a longer token's line included."""
    seed, live = seed_and_token(tmp_path)
    h = joined_worker(tmp_path / "ws", seed)
    tokens = seed.snap_data / "credentials/cluster-tokens.txt"
    before = tokens.read_text()
    assert stub_join(h, " ") == 0 and stub_join(h, "\t") == 0 and tokens.read_text() == before
    assert stub_join(h, "") == 1
    tokens.write_text(f"{live}|1\nabcdef\nabc\nabc")
    assert stub_join(h, " ") == 1  # no final newline: no empty line
    assert stub_join(h, "abc") == 0 and tokens.read_text() == f"{live}|1\nabc\nabc"
    assert stub_join(h, live) == 1  # expired
    assert stub_join(h, "abc") == 0 and stub_join(h, "abc") == 0 and tokens.read_text() == f"{live}|1"
    assert stub_join(h, "abc") == 1  # consumed: refused
