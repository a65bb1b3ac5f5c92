"""cluster-agent (25000) and dqlite (19001) from the control planes only: every control plane
gets the agent guard before MicroK8s, with every control plane's VPN address; a joining node is
let into cluster-agent (never dqlite) by its register step for the token's lifetime and out again
by its ready step (stand-in nft; the real table is tested in tests/cluster/test_e2e_agent_guard.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.kit.shell import split_command
from stacks.load import validate
from tests.support.cluster_stubs import ClusterHost
from tests.support.helpers import deps_closure, evaluate_config, stack_config

TOKEN_RE = r"[0-9a-f]{32}"


@pytest.mark.parametrize("name", ["dev", "ha"])
def test_every_control_plane_gets_the_guard_before_microk8s(name: str) -> None:
    cfg = validate(stack_config(name))
    ev = evaluate_config(stack_config(name))
    planes = [h for h in cfg.hosts if h.in_cluster and "control-plane" in h.roles]
    addresses = sorted(str(cfg.vpn_address(h)) for h in planes)
    assert planes
    for h in (h for h in cfg.hosts if h.in_cluster):
        names = {r.name for r in ev.resources}
        if h in planes:
            guard = ev.by_name(f"cluster-{h.name}-agent-guard")
            script, params = split_command(guard.inputs["create"])
            assert guard.inputs["create"].endswith("hybrid-ai/agent-guard-apply") and "table inet hybrid_ai_agent" in script
            assert sorted(params["CONTROL_PLANES"].split()) == addresses and params["PORTS"].split() == ["25000", "19001"]
            assert params["JOIN_PORTS"].split() == ["25000"]  # dqlite never to a joiner
            assert params["POD_CIDR"] == str(cfg.cluster.pod_cidr)  # this host's pods are dropped on their way to another's
            assert guard.urn in deps_closure(ev, ev.by_name(f"cluster-{h.name}-microk8s").urn), h.name
            assert guard.inputs["delete"].endswith("hybrid-ai/agent-guard-remove")
        else:
            assert f"cluster-{h.name}-agent-guard" not in names


def test_register_lets_the_joiner_in_for_the_tokens_lifetime_and_ready_lets_it_out(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    registered = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1", TOKEN_TTL_S="1800")
    assert registered.returncode == 0, registered.stderr
    assert (cp.state / "joiners/100.64.1.1").read_text().strip() == "timeout 1800s"
    cp.add_node("ws-1", "100.64.1.1")
    ready = cp.run("microk8s-node-ready.sh", stdin=registered.stdout, NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert ready.returncode == 0, ready.stderr
    assert not (cp.state / "joiners/100.64.1.1").exists()
    again = cp.run("microk8s-node-ready.sh", stdin=registered.stdout, NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert again.returncode == 0, again.stderr  # a re-run: nothing left to remove


def test_register_refuses_without_the_guard_and_passes_on_no_token(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    (cp.state / "no-agent-guard").touch()
    result = cp.run("microk8s-register.sh", NODE_NAME="ws-1", NODE_IP="100.64.1.1")
    assert result.returncode == 1 and result.stdout == ""
    assert "agent guard (nftables table inet hybrid_ai_agent) is missing" in result.stderr


def test_the_guard_lets_joiners_reach_only_ports_it_guards(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("agent-guard-apply.sh", CONTROL_PLANES="100.64.0.2", PORTS="25000 19001", JOIN_PORTS="25000 19002", POD_CIDR="10.1.0.0/16")
    assert result.returncode == 1 and "JOIN_PORTS names 19002, which is not among PORTS" in result.stderr
    assert cp.state_changes() == []


@pytest.mark.parametrize("cidr", ["10.1.0.0", "10.1.0.0/16; flush ruleset", "fd00::/64", ""])
def test_the_guard_refuses_a_pod_network_that_is_not_an_ipv4_cidr(tmp_path: Path, cidr: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("agent-guard-apply.sh", CONTROL_PLANES="100.64.0.2", PORTS="25000 19001", JOIN_PORTS="25000", POD_CIDR=cidr)
    assert result.returncode == 1 and "POD_CIDR" in result.stderr
    assert cp.state_changes() == []
