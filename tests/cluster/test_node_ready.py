"""The ready check on the control plane (components/cluster/scripts/microk8s-node-ready.sh): it
waits within a bound for the node to be Ready on its VPN address, says what is wrong, and
revokes the node's join token and cluster-agent access either way; what a node's kubelet posts
about itself is never trusted or printed raw."""

from __future__ import annotations

from pathlib import Path

from tests.support.cluster_scripts import sleeps
from tests.support.cluster_stubs import ClusterHost

TOKEN = "0123456789abcdef0123456789abcdef"


def test_node_ready_waits_within_a_bound_and_says_what_is_wrong(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "198.51.100.11")  # Ready, but on its LAN address
    result = cp.run("microk8s-node-ready.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="30")
    assert result.returncode == 1
    assert "not Ready on 100.64.1.1 after 30s (Ready=True, InternalIP=198.51.100.11)" in result.stderr
    assert len(sleeps(cp)) == 5
    cp.add_node("ws-1", "100.64.1.1")
    ok = cp.run("microk8s-node-ready.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert ok.returncode == 0 and ok.stdout.strip() == "node=ws-1"


def test_a_status_the_node_made_up_is_neither_ready_nor_printed_raw(tmp_path: Path) -> None:
    """A compromised workstation's kubelet writes its Node's status as it likes: a Ready status
    holding the separator of the one-call poll and its VPN address, with no InternalIP, is not
    Ready; control characters and length do not reach the step's output."""
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "")
    (cp.state / "ready-status").mkdir()
    (cp.state / "ready-status" / "ws-1").write_text("True|100.64.1.1")
    forged = cp.run("microk8s-node-ready.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="10")
    assert forged.returncode == 1 and "(Ready=True, InternalIP=100.64.1.1|)" in forged.stderr
    (cp.state / "ready-status" / "ws-1").write_text("False\n\x1b[2J+ fake line" + "x" * 100)
    hostile = cp.run("microk8s-node-ready.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="10")
    line = next(x for x in hostile.stderr.splitlines() if "not Ready on" in x)
    assert "(Ready=False???2J??fake?line" + "x" * 43 + ", InternalIP=none)" in line and "\x1b" not in hostile.stderr


def test_a_node_that_never_gets_ready_loses_its_token_and_agent_access(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    mine = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1").stdout.strip()
    other = cp.run("microk8s-register.sh", NODE_NAME="ws-2", NODE_IP="100.64.1.2").stdout.strip()
    assert (cp.state / "joiners/100.64.1.1").exists()
    result = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="10")
    assert result.returncode == 1 and "not Ready on 100.64.1.1 after 10s" in result.stderr
    assert "join token and cluster-agent access are revoked" in result.stderr and mine not in result.stderr
    tokens = (cp.snap_data / "credentials/cluster-tokens.txt").read_text().splitlines()
    assert [t.split("|")[0] for t in tokens] == [other]
    assert not (cp.state / "joiners/100.64.1.1").exists() and (cp.state / "joiners/100.64.1.2").exists()
