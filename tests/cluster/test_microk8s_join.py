"""Joining MicroK8s nodes under recording stubs: the per-node join token (registered, passed on,
removed once the node is Ready) never in any output, leaving on destroy, and the kubeconfig."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.cluster_scripts import CP, joined_worker, seed_and_token
from tests.support.cluster_stubs import ClusterHost
from tests.support.join_stub import issue_token

TOKEN = "0123456789abcdef0123456789abcdef"
JOIN = {"HOST_NAME": "ws-1", "CONTROL_PLANE": "100.64.0.2", "NODE_IP": "100.64.1.1", "WORKER": "true"}
LEAVE = {k: v for k, v in JOIN.items() if k != "HOST_NAME"}
PLANES = "receipt=100.64.0.2 cp-2=100.64.0.4"
KNOWN = {"CONFIGMAP": "hybrid-ai-known-nodes", "NAMESPACE": "kube-system"}


def test_register_has_microk8s_generate_a_token_for_this_node_with_its_lifetime(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1", TOKEN_TTL_S="3600")
    assert result.returncode == 0, result.stderr
    lock = [c for c in cp.calls() if c.startswith("flock")]
    assert len(lock) == 1 and lock[0].startswith("flock -w 120 ")  # on a file descriptor
    assert cp.state_changes()[-1] == "microk8s add-node --token-ttl 3600 --format token"
    token = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert token not in result.stderr
    tokens = (cp.snap_data / "credentials/cluster-tokens.txt").read_text().splitlines()
    assert [t.split("|")[0] for t in tokens] == [token]
    # Another node gets a token of its own.
    other = cp.run("microk8s-register.sh", NODE_NAME="ws-2", NODE_IP="100.64.1.2").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", other) and other != token


@pytest.mark.parametrize("output", ["not-a-token", "0123456789abcdef0123456789abcdef\nmicrok8s join 1.2.3.4:25000/x",
                                    "0123456789ABCDEF0123456789ABCDEF", "x" * 5000])
def test_register_passes_on_only_a_well_formed_token(tmp_path: Path, output: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (cp.state / "add-node-output").write_text(output + "\n")
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 1 and result.stdout == ""
    assert "hybrid-ai[receipt] register: ERROR: microk8s add-node printed something other than one 32-hex-character token for ws-1" in result.stderr
    assert output.splitlines()[0] not in result.stderr


def test_register_gives_up_on_a_lock_held_too_long_without_registering(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (cp.state / "lock-busy").touch()
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1", LOCK_WAIT_S="30")
    assert result.returncode == 1 and result.stdout == ""
    assert "another registration held the add-node lock for 30s" in result.stderr
    assert [c for c in cp.calls() if c.startswith("flock")] == [c for c in cp.calls() if c.startswith("flock -w 30 ")] != []
    assert not [c for c in cp.calls() if "add-node" in c]


def test_register_refuses_a_name_held_by_another_machine(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.9.9")
    result = cp.run("microk8s-register.sh", stdin=TOKEN, NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 1
    assert "a node named ws-1 with address 100.64.9.9 is already in the cluster" in result.stderr


def test_join_uses_the_vpn_and_pins_the_node_ip_back(tmp_path: Path) -> None:
    seed, token = seed_and_token(tmp_path)
    h = joined_worker(tmp_path / "ws", seed)
    result = h.run("microk8s-join.sh", stdin=token + "\n", **JOIN)
    assert result.returncode == 0, result.stderr
    assert h.state_changes() == [f"microk8s join 100.64.0.2:25000/{token} --worker", "snap restart microk8s.daemon-kubelite"]
    assert "--node-ip=100.64.1.1" in (h.snap_data / "args/kubelet").read_text().splitlines()
    assert token not in result.stdout + result.stderr
    again = h.run("microk8s-join.sh", stdin=token + "\n", **JOIN)
    assert again.returncode == 0 and h.state_changes() == [] and again.stdout.strip() == "changed=none"


def test_join_rejects_a_malformed_token_without_echoing_it(tmp_path: Path) -> None:
    h = joined_worker(tmp_path)
    result = h.run("microk8s-join.sh", stdin="not-a-token-SECRETISH\n", **JOIN)
    assert result.returncode == 1
    assert "not 32 hex characters" in result.stderr and "SECRETISH" not in result.stderr
    assert h.state_changes() == []


def test_leave_then_remove_node_on_destroy(tmp_path: Path) -> None:
    seed, token = seed_and_token(tmp_path)
    h = joined_worker(tmp_path / "ws", seed)
    assert h.run("microk8s-join.sh", stdin=token, **JOIN).returncode == 0
    assert h.run("microk8s-leave.sh", **LEAVE).returncode == 0
    assert h.state_changes() == ["microk8s leave"]
    assert h.run("microk8s-leave.sh", **LEAVE).returncode == 0 and h.state_changes() == []
    cp = ClusterHost(tmp_path / "cp", "receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.1.1")
    cp.add_node("ws-2", "100.64.1.2")
    (cp.state / "known-nodes").write_text("receipt\nws-2\n")  # ws-1 removed from the stack; ws-2 still in it
    cp.run("microk8s-drain.sh", NODE_NAME="ws-2", WORKER="true", **KNOWN)
    cp.state_changes()
    # A replaced step's delete (the name still listed): a live node keeps its Node.
    kept = cp.run("microk8s-remove-node.sh", NODE_NAME="ws-2", PLANES=PLANES, **KNOWN)
    assert kept.returncode == 0 and "still one of the stack's cluster hosts" in kept.stderr
    assert cp.state_changes() == [] and (cp.state / "nodes/ws-2").exists()
    # A removed worker's drain deletes its Node (the node's own leave comes next, and may never run).
    drained = cp.run("microk8s-drain.sh", NODE_NAME="ws-1", WORKER="true", **KNOWN)
    assert drained.returncode == 0 and "deleted the Node of ws-1" in drained.stderr
    assert cp.state_changes() == ["microk8s kubectl drain ws-1 --ignore-daemonsets --delete-emptydir-data --timeout=300s",
                                  "microk8s kubectl delete node ws-1 --ignore-not-found"]
    assert not (cp.state / "nodes/ws-1").exists()
    again = cp.run("microk8s-drain.sh", NODE_NAME="ws-1", WORKER="true", **KNOWN)
    assert again.returncode == 0 and "deleted" not in again.stderr
    removed = cp.run("microk8s-remove-node.sh", NODE_NAME="ws-1", PLANES=PLANES, **KNOWN)
    assert removed.returncode == 0 and "removed" not in removed.stderr


def test_a_worker_posting_no_internal_ip_cannot_block_its_removal(tmp_path: Path) -> None:
    """A kubelet may rewrite its own status.addresses; with no InternalIP, `microk8s remove-node`
    refuses ("not part of the cluster", remove_node.py @ v1.32) before deleting the Node."""
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-1", "")
    env = {"PATH": f"{cp.bin}:/usr/bin:/bin", "STATE": str(cp.state), "HOME": str(cp.root), **cp.env}
    refused = subprocess.run([str(cp.bin / "microk8s"), "remove-node", "ws-1", "--force"], env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and refused.stdout.strip() == "Node ws-1 is not part of the cluster."
    assert (cp.state / "nodes/ws-1").exists()
    result = cp.run("microk8s-remove-node.sh", NODE_NAME="ws-1", PLANES=PLANES, **KNOWN)
    assert result.returncode == 0, result.stderr
    assert not (cp.state / "nodes/ws-1").exists()
    assert not [c for c in cp.calls() if c.startswith("microk8s remove-node")]


def test_the_ready_step_removes_exactly_the_nodes_token_once_it_has_joined(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    mine = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1").stdout.strip()
    other = cp.run("microk8s-register.sh", NODE_NAME="ws-2", NODE_IP="100.64.1.2").stdout.strip()
    tokens = cp.snap_data / "credentials/cluster-tokens.txt"
    with tokens.open("a") as f:  # a token without TTL and one that only starts like ours stay
        f.write(f"{mine[:16]}\n{mine}0|1\n")
    tokens.chmod(0o660)
    before = tokens.read_text().splitlines()
    cp.add_node("ws-1", "100.64.1.1")
    result = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 0, result.stderr
    assert tokens.read_text().splitlines() == [t for t in before if t.split("|")[0] != mine]
    assert [t.split("|")[0] for t in tokens.read_text().splitlines()] == [other, mine[:16], mine + "0"]
    assert tokens.stat().st_mode & 0o777 == 0o660
    assert [c for c in cp.calls() if c.startswith("flock -w 120 ")] and not [c for c in cp.calls() if mine in c]
    assert mine not in result.stdout + result.stderr
    again = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert again.returncode == 0 and [t.split("|")[0] for t in tokens.read_text().splitlines()] == [other, mine[:16], mine + "0"]
    bad = cp.run("microk8s-node-ready.sh", stdin="not-a-token\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert bad.returncode == 1 and "not 32 hex characters" in bad.stderr


def test_kubeconfig_points_at_the_chosen_server(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("microk8s-kubeconfig.sh", SERVER="203.0.113.11")
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout)["clusters"][0]["cluster"]["server"] == "https://203.0.113.11:16443"


@pytest.mark.parametrize("extra", ["    exec: {command: /tmp/x}\n", "- cluster:\n    server: https://198.51.100.66:16443\n",
                                   "    client-key-data: not base64!\n", "kind: Config\n$(reboot)\n"])
def test_kubeconfig_output_is_parsed_strictly_and_never_echoed(tmp_path: Path, extra: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    good = cp.run("microk8s-kubeconfig.sh", SERVER="203.0.113.11").stdout
    (cp.state / "config-output").write_text(good + extra)
    result = cp.run("microk8s-kubeconfig.sh", HOST_NAME="receipt", SERVER="203.0.113.11")
    assert result.returncode == 1 and result.stdout == ""
    assert "hybrid-ai[receipt] kubeconfig: ERROR: microk8s config" in result.stderr
    assert "S0VZUzNDUjNU" not in result.stderr and extra.strip() not in result.stderr


def test_a_control_plane_joins_without_worker_once_and_leaves(tmp_path: Path) -> None:
    seed, token = seed_and_token(tmp_path)
    h = ClusterHost(tmp_path / "cp-2", "cp-2", "100.64.0.4", seed=seed)
    assert h.run("microk8s-install.sh", **dict(CP, HOST_NAME="cp-2", NODE_IP="100.64.0.4", ADDONS="")).returncode == 0
    h.state_changes()
    join = dict(JOIN, HOST_NAME="cp-2", NODE_IP="100.64.0.4", WORKER="false")
    result = h.run("microk8s-join.sh", stdin=token, **join)
    assert result.returncode == 0, result.stderr
    assert h.state_changes()[0] == f"microk8s join 100.64.0.2:25000/{token}"
    assert not (h.snap_data / "var/lock/clustered.lock").exists()  # join.py marks only workers so
    again = h.run("microk8s-join.sh", stdin=token, **join)
    assert again.returncode == 0 and h.state_changes() == [] and again.stdout.strip() == "changed=none"
    assert h.run("microk8s-leave.sh", **dict(LEAVE, NODE_IP="100.64.0.4", WORKER="false")).returncode == 0
    assert h.state_changes() == ["microk8s leave"] and not (h.snap_data / "var/lock/no-cert-reissue").exists()


def test_the_seed_joins_nobody_and_a_promoted_seed_stays_joined(tmp_path: Path) -> None:
    seed = ClusterHost(tmp_path / "seed", "receipt", "100.64.0.2")
    assert seed.run("microk8s-install.sh", **CP).returncode == 0
    seed.state_changes()
    own = dict(JOIN, HOST_NAME="receipt", NODE_IP="100.64.0.2", WORKER="false")  # CONTROL_PLANE: itself
    result = seed.run("microk8s-join.sh", stdin=TOKEN, **own)
    assert result.returncode == 0, result.stderr
    assert not [c for c in seed.state_changes() if "join" in c]
    assert "the seed: it formed the cluster and joins nobody" in result.stderr
    # Its leave (on destroy) is then a no-op: it never joined anyone.
    seed_role = dict(LEAVE, NODE_IP="100.64.0.2", WORKER="false")
    assert seed.run("microk8s-leave.sh", **seed_role).returncode == 0 and seed.state_changes() == []
    # cp-2 joined the first seed; once that one is lost it is the seed: its join step re-runs
    # with its own address and changes nothing (it stays in the cluster it is part of).
    cp2 = ClusterHost(tmp_path / "cp2", "cp-2", "100.64.0.4", seed=seed)
    assert cp2.run("microk8s-install.sh", **dict(CP, HOST_NAME="cp-2", NODE_IP="100.64.0.4", ADDONS="")).returncode == 0
    joined = dict(JOIN, HOST_NAME="cp-2", NODE_IP="100.64.0.4", WORKER="false")
    assert cp2.run("microk8s-join.sh", stdin=issue_token(seed.snap_data), **joined).returncode == 0
    cp2.state_changes()
    promoted = cp2.run("microk8s-join.sh", stdin=TOKEN, **dict(joined, CONTROL_PLANE="100.64.0.4"))
    assert promoted.returncode == 0 and cp2.state_changes() == [] and "already part of the cluster" in promoted.stderr


def test_the_seed_never_removes_itself_from_its_cluster(tmp_path: Path) -> None:
    seed = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    seed.add_node("receipt", "100.64.0.2")
    result = seed.run("microk8s-remove-node.sh", NODE_NAME="receipt", PLANES=PLANES, **KNOWN)
    assert result.returncode == 0 and seed.state_changes() == []
    assert "receipt is this node; not removing it from its own cluster" in result.stderr


def test_the_seed_never_leaves_though_cluster_agent_marked_it_on_a_join(tmp_path: Path) -> None:
    """cluster-agent 1.32 writes var/lock/no-cert-reissue on the node a join goes through (the
    seed), and `microk8s leave` there resets its datastore with the API server stopped."""
    seed = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    assert seed.run("microk8s-install.sh", **CP).returncode == 0
    seed.state_changes()
    (seed.snap_data / "var/lock").mkdir(parents=True, exist_ok=True)
    (seed.snap_data / "var/lock/no-cert-reissue").touch()  # as pkg/api/v2/join.go does for ws-1's join
    result = seed.run("microk8s-leave.sh", **dict(LEAVE, NODE_IP="100.64.0.2", WORKER="false"))
    assert result.returncode == 0, result.stderr
    assert seed.state_changes() == [] and "the seed: it does not leave its own cluster" in result.stderr
    # A worker that never joined (no clustered.lock) does not try either.
    ws = joined_worker(tmp_path / "ws")
    ws.state_changes()
    assert ws.run("microk8s-leave.sh", **LEAVE).returncode == 0 and ws.state_changes() == []


def test_remove_node_never_acts_on_an_address_a_control_plane_holds(tmp_path: Path) -> None:
    """A workstation whose kubelet posts cp-2's VPN address has its Node deleted by name (no
    remove-node, which acts on that address: with --force, remove_node.py @ v1.32 would remove
    cp-2's dqlite member); a control plane posting another's address is refused, naming both."""
    seed = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (seed.state / "dqlite").write_text("100.64.0.4:19001\n")
    seed.add_node("cp-2", "100.64.0.4")
    seed.add_node("cp-3", "100.64.0.4")
    seed.add_node("ws-1", "100.64.0.4")
    planes = PLANES + " cp-3=100.64.0.6"
    result = seed.run("microk8s-remove-node.sh", NODE_NAME="ws-1", PLANES=planes, **KNOWN)
    assert result.returncode == 0, result.stderr
    assert not (seed.state / "nodes/ws-1").exists() and (seed.state / "nodes/cp-2").exists()
    assert (seed.state / "dqlite").read_text() == "100.64.0.4:19001\n"
    refused = seed.run("microk8s-remove-node.sh", NODE_NAME="cp-3", PLANES=planes, **KNOWN)
    assert refused.returncode == 1
    assert "control plane cp-3 posts control plane cp-2's address 100.64.0.4; not removing it" in refused.stderr
    assert (seed.state / "nodes/cp-3").exists()
    assert not [c for c in seed.calls() if "remove-node" in c and c.startswith("microk8s")]
    # cp-2 itself, still a member (its leave did not run): refused by MicroK8s, never forced.
    gone = seed.run("microk8s-remove-node.sh", NODE_NAME="cp-2", PLANES=planes, **KNOWN)
    assert gone.returncode == 1 and "microk8s remove-node cp-2 failed" in gone.stderr
    assert (seed.state / "dqlite").read_text() == "100.64.0.4:19001\n"
    assert not [c for c in seed.calls() if "--force" in c]


@pytest.mark.parametrize("ready", [True, False])
def test_the_window_closing_drops_the_joins_certificate_request_tokens(tmp_path: Path, ready: bool) -> None:
    """cluster-agent 1.32 adds `<token>-kubelet` and `<token>-proxy` to certs-request-tokens.txt
    for every worker join (pkg/api/v2/join.go); they have no expiry and only sign-cert consumes
    them: a joiner that skipped sign-cert must not keep them once its window closes."""
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    mine = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1").stdout.strip()
    other = cp.run("microk8s-register.sh", NODE_NAME="ws-2", NODE_IP="100.64.1.2").stdout.strip()
    requests = cp.snap_data / "credentials/certs-request-tokens.txt"
    kept = [f"{other}-kubelet", f"{other}-proxy", f"{mine}-kubelet0", mine]
    requests.write_text("".join(f"{t}\n" for t in [f"{mine}-kubelet", kept[0], f"{mine}-proxy", *kept[1:]]))
    requests.chmod(0o600)
    if ready:
        cp.add_node("ws-1", "100.64.1.1")
    result = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="10")
    assert result.returncode == (0 if ready else 1), result.stderr
    assert requests.read_text().splitlines() == kept and requests.stat().st_mode & 0o777 == 0o600
    assert "certificate-request tokens of ws-1's join removed" in result.stderr and mine not in result.stderr
    again = cp.run("microk8s-node-ready.sh", stdin=mine + "\n", NODE_NAME="ws-1", NODE_IP="100.64.1.1", WAIT_S="10")
    assert requests.read_text().splitlines() == kept and "certificate-request" not in again.stderr
