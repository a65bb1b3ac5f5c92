"""The host firewall in the plan: which hosts get it, with which ports open, and that destroy
removes it. (Its rules against real nftables: tests/hosts/test_e2e_firewall.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.kit.shell import split_command
from stacks.load import ConfigError
from tests.support.helpers import deps_closure, evaluate_config, stack_config
from tools.render.evaluate import Evaluation

CLUSTER_CIDRS = "10.1.0.0/16 10.152.183.0/24"


def firewalls(ev: Evaluation) -> dict[str, dict[str, str]]:
    """Host -> the parameters its firewall-apply.sh runs with."""
    found = {}
    for r in ev.resources:
        if r.name.endswith("-firewall-rules"):
            script, params = split_command(r.inputs["create"])
            assert "firewall-apply.sh" in script
            assert "firewall-remove.sh" in split_command(r.inputs["delete"])[0]  # destroy removes it
            found[r.name.removesuffix("-firewall-rules")] = params
    return found


def test_every_host_with_a_public_address_gets_the_firewall_with_its_roles_ports() -> None:
    fw = firewalls(evaluate_config(stack_config("dev")))
    assert set(fw) == {"vpn-hub", "receipt", "interface"}  # ws-1, ws-2 sit behind the office NAT
    common = {"SSH_PORT": "22", "VPN_PORT": "51820", "VPN_INTERFACE": "wg0", "CLUSTER_CIDRS": CLUSTER_CIDRS}
    assert fw["vpn-hub"] == common | {"PUBLIC_TCP": "", "API_PORT": "", "ADMIN_CIDRS": ""}
    assert fw["receipt"] == common | {"PUBLIC_TCP": "80 443", "API_PORT": "16443", "ADMIN_CIDRS": "198.51.100.0/24"}
    assert fw["interface"] == common | {"PUBLIC_TCP": "80 443", "API_PORT": "", "ADMIN_CIDRS": ""}


def test_openstack_vms_get_it_too_with_the_openstack_admin_networks_and_their_ssh_port() -> None:
    raw = stack_config("prod")
    next(h for h in raw["hosts"] if h["name"] == "receipt")["ssh"]["port"] = 2222
    fw = firewalls(evaluate_config(raw, stack="prod"))
    assert set(fw) == {"vpn-hub", "receipt", "interface"}
    assert fw["receipt"]["ADMIN_CIDRS"] == "198.51.100.0/26" and fw["receipt"]["SSH_PORT"] == "2222"


def test_switched_off_no_host_gets_it() -> None:
    raw = stack_config("dev")
    raw["firewall"]["enabled"] = False
    assert firewalls(evaluate_config(raw)) == {}


def test_with_netmaker_public_hosts_get_it_open_to_netclients_ports_and_the_hubs_server() -> None:
    """netclient v0.90.0 names its interface `netmaker` and listens on UDP 443 if free, else the
    first free port from 51821 up (docs/upstream.md); TCP stays SSH, 80/443 where something
    serves them (ingress, the Netmaker server's Caddy on the hub), the API from admin networks."""
    fw = firewalls(evaluate_config(stack_config("netmaker"), stack="netmaker"))
    assert set(fw) == {"vpn-hub", "receipt", "interface"}  # ws-1, ws-2 sit behind the office NAT
    common = {"SSH_PORT": "22", "VPN_PORT": "443 51821-65535", "VPN_INTERFACE": "netmaker", "CLUSTER_CIDRS": CLUSTER_CIDRS}
    assert fw["vpn-hub"] == common | {"PUBLIC_TCP": "80 443", "API_PORT": "", "ADMIN_CIDRS": ""}
    assert fw["receipt"] == common | {"PUBLIC_TCP": "80 443", "API_PORT": "16443", "ADMIN_CIDRS": "198.51.100.0/24"}
    assert fw["interface"] == common | {"PUBLIC_TCP": "80 443", "API_PORT": "", "ADMIN_CIDRS": ""}


def test_with_netmaker_the_admin_networks_are_asked_for_too() -> None:
    raw = stack_config("netmaker")
    raw.pop("firewall", None)
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, stack="netmaker")
    assert err.value.problems[0].startswith("hybrid-ai:firewall.adminCidrs:")


def _without_admin_networks(raw: dict[str, Any]) -> None:
    del raw["firewall"]


def _world(raw: dict[str, Any]) -> None:
    raw["firewall"]["adminCidrs"] = ["0.0.0.0/0"]


@pytest.mark.parametrize(("mutate", "key", "fix"), [
    (_without_admin_networks, "hybrid-ai:firewall.adminCidrs:", "list the networks `pulumi up` and kubectl run from"),
    (_world, "hybrid-ai:firewall.adminCidrs[0]:", "list your admin networks"),
], ids=["API server closed to the deployer", "API server open to the world"])
def test_admin_networks_the_firewall_needs_are_asked_for_before_anything_is_registered(mutate: Callable[[dict[str, Any]], None], key: str, fix: str) -> None:
    raw = stack_config("dev")
    mutate(raw)
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, into=seen)
    (problem,) = err.value.problems
    assert problem.startswith(key) and fix in problem, problem
    assert seen.resources == []


@pytest.mark.parametrize("name", ["dev", "ha", "prod"])
def test_microk8s_is_installed_only_behind_the_hosts_firewall(name: str) -> None:
    """MicroK8s listens on every address as soon as it is installed: a public host's firewall comes first."""
    ev = evaluate_config(stack_config(name))
    installs = {r.name.removeprefix("cluster-").removesuffix("-microk8s"): r for r in ev.resources if r.name.endswith("-microk8s")}
    guarded = [host for host in firewalls(ev) if host in installs]
    assert guarded
    for host in guarded:
        assert ev.by_name(f"{host}-firewall-rules").urn in deps_closure(ev, installs[host].urn), host
