"""The cluster in the plan: parallel joins over the VPN, constant depth, labels, secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cluster.microk8s import API_PORT, STORAGE_CLASS
from components.kit.shell import split_command
from stacks.load import ConfigError
from tests.support.helpers import PROJECT, deps_closure, depth, evaluate_config, stack_config, taint_gpu_host
from tools.render.evaluate import Evaluation, Secret
from tools.render.fleet import fleet
from tools.render.write import reveal, write_all


def names(ev: Evaluation, urns: set[str]) -> set[str]:
    by_urn = {r.urn: r.name for r in ev.resources}
    return {by_urn[u] for u in urns}


def params(ev: Evaluation, name: str) -> dict[str, str]:
    return split_command(ev.by_name(name).inputs["create"])[1]


def test_each_join_depends_on_its_own_vpn_install_and_its_own_token_and_no_other_join() -> None:
    ev = evaluate_config(fleet(workstations=12, models=5))
    joins = [r for r in ev.resources if r.name.endswith("-join")]
    assert len(joins) == 14  # 12 workstations, the interface node and the seed (receipt)
    for join in joins:
        node = join.name.removeprefix("cluster-").removesuffix("-join")
        direct = names(ev, set(join.dependencies))
        assert {f"cluster-{node}-microk8s", f"cluster-{node}-register", f"mesh-{node}-wg"} <= direct
        assert not {n for n in direct if n.endswith("-register")} - {f"cluster-{node}-register"}
        closure = names(ev, deps_closure(ev, join.urn))
        assert not {n for n in closure if n.endswith("-join")}, f"{join.name} waits on another join"
        assert not {n for n in closure if n.endswith("-microk8s")} - {f"cluster-{node}-microk8s", "cluster-receipt-microk8s"}


def test_depth_does_not_grow_with_workstations() -> None:
    small = evaluate_config(fleet(workstations=2, models=5))
    large = evaluate_config(fleet(workstations=50, models=5))
    assert len(large.resources) > len(small.resources) + 48 * 8
    assert depth(small) == depth(large)


def test_nodes_are_pinned_to_their_overlay_addresses() -> None:
    ev = evaluate_config(stack_config("dev"))
    for node, vpn in {"receipt": "100.64.0.2", "interface": "100.64.0.3", "ws-1": "100.64.1.1", "ws-2": "100.64.1.2"}.items():
        assert params(ev, f"cluster-{node}-microk8s")["NODE_IP"] == vpn
    join = params(ev, "cluster-ws-1-join")
    assert join.pop("KUBELET_ARGS").split()[0] == "--node-ip=100.64.1.1"  # put back after the join
    assert join == {"HOST_NAME": "ws-1", "CONTROL_PLANE": "100.64.0.2", "NODE_IP": "100.64.1.1", "WORKER": "true"}
    install = params(ev, "cluster-receipt-microk8s")
    assert install["ROLE"] == "control-plane" and install["EXTRA_SANS"] == "203.0.113.11" and install["CNI_MTU"] == "1330"
    assert params(ev, "cluster-kubeconfig")["SERVER"] == "203.0.113.11"
    assert "cluster-vpn-hub-microk8s" not in {r.name for r in ev.resources}  # the hub is not a node


def test_kubeconfig_can_point_at_the_vpn_address() -> None:
    raw = stack_config("dev")
    raw["cluster"]["apiServerAddress"] = "vpn"
    raw["vpn"]["operatorPublicKey"] = "A" * 43 + "="  # the deployer is a VPN peer
    assert params(evaluate_config(raw), "cluster-kubeconfig")["SERVER"] == "100.64.0.2"


def test_gpu_steps_only_on_gpu_hosts_and_skippable() -> None:
    ev = evaluate_config(stack_config("dev"))
    gpu = {r.name for r in ev.resources if "-gpu-" in r.name}
    assert gpu == {"ws-1-bootstrap-gpu-setup", "ws-1-bootstrap-gpu-check", "ws-2-bootstrap-gpu-setup", "ws-2-bootstrap-gpu-check"}
    assert params(ev, "ws-2-bootstrap-gpu-setup")["INSTALL_DRIVER"] == "false"
    assert params(ev, "ws-1-bootstrap-gpu-setup")["INSTALL_DRIVER"] == "true"
    assert "ws-1-bootstrap-gpu-check" in names(ev, deps_closure(ev, ev.by_name("cluster-ws-1-microk8s").urn))


def test_labels_and_taints_per_node() -> None:
    raw = stack_config("dev")
    raw["hosts"][3]["labels"] = {"team": "ocr"}
    taint_gpu_host(raw, raw["hosts"][3]["name"], [{"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"}])
    ev = evaluate_config(raw)
    ws1 = ev.by_name("cluster-ws-1-labels").inputs
    assert ws1["metadata"]["labels"] == {
        "hybrid-ai.node-restriction.kubernetes.io/site": "office", "topology.kubernetes.io/zone": "office", "hybrid-ai.node-restriction.kubernetes.io/location": "on-prem", "hybrid-ai.node-restriction.kubernetes.io/gpu-model": "rtx-3090",
        "hybrid-ai.node-restriction.kubernetes.io/gpu": "true", "nvidia.com/gpu.present": "true", "nvidia.com/device-plugin.config": "rtx-3090", "team": "ocr",
        "hybrid-ai.node-restriction.kubernetes.io/vpn-address": "100.64.1.1", "hybrid-ai.node-restriction.kubernetes.io/gpu-capacity": "4",
        "hybrid-ai.node-restriction.kubernetes.io/gpu-sharing": "time-slicing",  # no `memory` in dev's profile: no share label
    }
    assert ws1["metadata"]["name"] == "ws-1"
    assert params(ev, "cluster-ws-1-taints")["TAINTS"] == "example.com/gpu=true:NoSchedule"
    assert ev.by_name("cluster-receipt-labels").inputs["metadata"]["labels"] == {
        "hybrid-ai.node-restriction.kubernetes.io/site": "cloud", "topology.kubernetes.io/zone": "cloud", "hybrid-ai.node-restriction.kubernetes.io/location": "cloud", "hybrid-ai.node-restriction.kubernetes.io/ingress": "true", "hybrid-ai.node-restriction.kubernetes.io/vpn-address": "100.64.0.2",
    }
    assert ev.by_name("cluster-k8s").urn in ev.by_name("cluster-ws-1-labels").dependencies


def test_teardown_order_is_drain_leave_remove(tmp_path: Path) -> None:
    ev = evaluate_config(stack_config("dev"))
    ready, join, register = (ev.by_name(f"cluster-ws-1-{s}") for s in ("ready", "join", "register"))
    # Destroy deletes dependents first: ready (drain), then join (leave), then register (remove-node).
    assert join.urn in ready.dependencies and register.urn in join.dependencies
    assert "microk8s-drain.sh" in ready.inputs["delete"]
    assert "microk8s-leave.sh" in join.inputs["delete"]
    assert "microk8s-remove-node.sh" in register.inputs["delete"]
    assert "microk8s-uninstall.sh" in ev.by_name("cluster-ws-1-microk8s").inputs["delete"]


def test_each_node_has_its_own_token_registered_once_it_is_installed_and_kept_secret(tmp_path: Path) -> None:
    ev = evaluate_config(stack_config("dev"))
    assert not [r for r in ev.resources if r.type == "random:index/randomPassword:RandomPassword" and "join" in r.name]
    tokens = {}
    for node in ("interface", "ws-1", "ws-2"):
        register, join = ev.by_name(f"cluster-{node}-register"), ev.by_name(f"cluster-{node}-join")
        assert f"cluster-{node}-microk8s" in names(ev, set(register.dependencies))  # registered once installed
        assert "stdin" not in register.inputs  # add-node generates it: no token goes in
        assert register.inputs["logging"] == "stderr"
        assert isinstance(join.inputs["stdin"], Secret) and join.inputs["logging"] == "none"
        tokens[node] = join.inputs["stdin"].value.strip()
        ready = ev.by_name(f"cluster-{node}-ready")  # removes the token once the node has joined
        assert isinstance(ready.inputs["stdin"], Secret) and ready.inputs["stdin"].value == join.inputs["stdin"].value
        assert ready.inputs["logging"] == "stderr"
    assert len(set(tokens.values())) == 3 and all(t in ev.secret_values for t in tokens.values())
    assert isinstance(ev.outputs["kubeconfig"], Secret)
    assert isinstance(ev.by_name("cluster-k8s").inputs["kubeconfig"], Secret)
    write_all(ev, tmp_path)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        text = path.read_text()
        assert not [t for t in tokens.values() if t in text], path
        assert "MOCK-CLIENT-KEY" not in text, path


def test_install_carries_a_launch_config_with_dns_and_addons_on_the_control_plane_only() -> None:
    ev = evaluate_config(stack_config("dev"))
    cp = yaml.safe_load(params(ev, "cluster-receipt-microk8s")["LAUNCH_CONFIG"])
    assert [a["name"] for a in cp["addons"]] == ["rbac", "dns", "metrics-server", "hostpath-storage"]
    assert cp["extraSANs"] == ["100.64.0.2", "203.0.113.11"]
    assert params(ev, "cluster-receipt-microk8s")["ADDONS"] == "rbac dns metrics-server hostpath-storage"
    ws = yaml.safe_load(params(ev, "cluster-ws-1-microk8s")["LAUNCH_CONFIG"])
    assert "addons" not in ws and ws["extraKubeletArgs"]["--cluster-dns"] == "10.152.183.10"
    assert params(ev, "cluster-ws-1-microk8s")["ADDONS"] == ""
    assert STORAGE_CLASS == "microk8s-hostpath"
    assert params(ev, "cluster-ws-1-join")["KUBELET_ARGS"].split() == [f"{k}={v}" for k, v in ws["extraKubeletArgs"].items()]


def test_gpu_check_gets_the_setup_report_with_its_boot_id() -> None:
    ev = evaluate_config(stack_config("dev"))
    check = params(ev, "ws-1-bootstrap-gpu-check")
    assert check["SETUP_REPORT"] == "changed=none\n"  # the mock's set-up output, passed on whole
    assert ev.by_name("ws-1-bootstrap-gpu-setup").urn in ev.by_name("ws-1-bootstrap-gpu-check").dependencies


def test_gpu_check_keeps_dialing_a_rebooting_host_for_10_minutes_even_when_refused() -> None:
    from components.hosts.ssh import refused_dial_budget_s
    # pulumi-command v1.2.1 dialWithRetry + pulumi retry.Until: N allowed failures, N pauses of
    # 100 ms x 1.5^n capped at 5 s; refused dials cost nothing else. 40 gave only 161 s.
    assert round(refused_dial_budget_s(4), 4) == 0.8125 and round(refused_dial_budget_s(40), 2) == 161.33
    ev = evaluate_config(stack_config("dev"))
    connection = reveal(ev.by_name("ws-1-bootstrap-gpu-check").inputs["connection"])
    limit = int(connection["dialErrorLimit"])
    assert refused_dial_budget_s(limit) >= 600 > refused_dial_budget_s(limit - 1)
    # Dials that hang (bounded by perDialTimeout) still end within the step's 30-minute timeout.
    assert limit * connection["perDialTimeout"] + refused_dial_budget_s(limit) < 30 * 60


def test_openstack_opens_the_api_port_to_admin_cidrs_on_the_control_plane_only() -> None:
    ev = evaluate_config(stack_config("prod"))
    rules = [r for r in ev.of_type("openstack:networking/secGroupRule:SecGroupRule") if r.inputs.get("portRangeMin") == API_PORT]
    assert [(r.inputs["protocol"], r.inputs["remoteIpPrefix"], r.inputs["portRangeMax"]) for r in rules] == [("tcp", "198.51.100.0/26", API_PORT)]
    api_group = ev.by_name("openstack-api").urn
    control = [h["name"] for h in stack_config("prod")["hosts"] if "control-plane" in h["roles"]]
    for port in ev.of_type("openstack:networking/port:Port"):
        assert (api_group in port.dependencies) == (port.name.removesuffix("-port") in control), port.name


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw["cluster"].update(apiServerAddress="vpn"),
     "cluster.apiServerAddress: 'vpn' but the deployer is no VPN peer; set vpn.operatorPublicKey"),
    (lambda raw: raw["hosts"][3].setdefault("ssh", {}).update(jumpHost="vpn-hub"),
     "hosts[3].ssh.jumpHost: 'ws-1' is reached on its LAN address in NAT'd site 'office'; its jump host must sit on that site, not on 'cloud'"),
])
def test_config_rejects_what_the_deployer_cannot_reach(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    raw = stack_config("dev")
    mutate(raw)
    with pytest.raises(ConfigError) as error:
        evaluate_config(raw)
    assert message in str(error.value)


def test_a_same_site_jump_host_is_accepted() -> None:
    raw = stack_config("dev")
    raw["hosts"][4].setdefault("ssh", {}).update(jumpHost="ws-1")
    assert evaluate_config(raw).by_name("cluster-ws-2-join")


def test_deploy_runs_on_a_self_hosted_runner_that_can_reach_the_hosts() -> None:
    workflow = yaml.safe_load((PROJECT / ".github/workflows/deploy.yml").read_text())
    runs_on = workflow["jobs"]["up"]["runs-on"]
    assert isinstance(runs_on, list) and {"self-hosted", "hybrid-ai-deployer"} <= set(runs_on)
    doc = (PROJECT / "docs" / "operations.md").read_text()
    assert "## Where `pulumi up` runs from" in doc and "hybrid-ai-deployer" in doc


def test_ha_control_planes_join_as_voters_one_after_the_other_and_workers_do_not_wait() -> None:
    ev = evaluate_config(stack_config("ha"))
    assert params(ev, "cluster-cp-2-join")["WORKER"] == "false" and params(ev, "cluster-cp-3-join")["WORKER"] == "false"
    assert params(ev, "cluster-ws-1-join")["WORKER"] == "true"
    # cp-3 registers only once cp-2 is Ready: one dqlite membership change at a time.
    assert "cluster-cp-2-ready" in names(ev, set(ev.by_name("cluster-cp-3-register").dependencies))
    assert "cluster-cp-2-ready" not in names(ev, deps_closure(ev, ev.by_name("cluster-cp-2-register").urn))
    for worker in ("ws-1", "ws-2", "interface"):
        closure = names(ev, deps_closure(ev, ev.by_name(f"cluster-{worker}-ready").urn))
        assert not {n for n in closure if n.startswith(("cluster-cp-2-", "cluster-cp-3-"))}, worker
    # Every join goes through the seed's VPN address.
    assert {params(ev, f"cluster-{n}-join")["CONTROL_PLANE"] for n in ("cp-2", "cp-3", "ws-1")} == {"100.64.0.2"}


def test_ha_every_control_plane_certificate_names_every_control_plane_and_only_the_seed_enables_addons() -> None:
    ev = evaluate_config(stack_config("ha"))
    every = {"100.64.0.2", "100.64.0.4", "100.64.0.5", "203.0.113.11", "203.0.113.13", "203.0.113.14"}
    for cp, vpn in (("receipt", "100.64.0.2"), ("cp-2", "100.64.0.4"), ("cp-3", "100.64.0.5")):
        install = params(ev, f"cluster-{cp}-microk8s")
        assert set(install["EXTRA_SANS"].split()) | {vpn} == every and install["ROLE"] == "control-plane"
        launch = yaml.safe_load(install["LAUNCH_CONFIG"])
        assert set(launch["extraSANs"]) == every and launch["extraKubeAPIServerArgs"]["--advertise-address"] == vpn
        assert ("addons" in launch) == (cp == "receipt") and (install["ADDONS"] != "") == (cp == "receipt")
    assert params(ev, "cluster-ws-1-microk8s")["EXTRA_SANS"] == ""
    assert params(ev, "cluster-kubeconfig")["SERVER"] == "203.0.113.11"


def test_ha_depth_grows_only_with_the_control_planes() -> None:
    """Each further control plane adds at most its register-join-ready chain (the first one
    runs beside the workers' chains); the workers add nothing."""
    dev, ha = evaluate_config(stack_config("dev")), evaluate_config(stack_config("ha"))
    assert depth(dev) < depth(ha) <= depth(dev) + 3 * 2


def upgrading(stack: str, **upgrade: Any) -> Evaluation:
    raw = stack_config(stack)
    raw["cluster"] = {**raw["cluster"], "channel": "1.33/stable", "upgrade": {"fromChannel": "1.32/stable", **upgrade}}
    return evaluate_config(raw)


def chain(ev: Evaluation, node: str) -> tuple[Any, Any, Any]:
    return tuple(ev.by_name(f"cluster-{node}-upgrade-{step}") for step in ("drain", "refresh", "uncordon"))  # type: ignore[return-value]


def test_a_plain_up_has_no_upgrade_step_and_keeps_its_depth() -> None:
    for stack in ("dev", "ha"):
        ev = evaluate_config(stack_config(stack))
        assert not [r for r in ev.resources if "-upgrade-" in r.name], stack


def test_an_upgrade_is_strictly_serial_control_planes_first_each_node_drained_refreshed_and_back() -> None:
    ev = upgrading("ha")
    order = ["receipt", "cp-2", "cp-3", "interface", "ws-1", "ws-2"]
    for before, node in zip([None, *order], order, strict=False):
        drain, refresh, uncordon = chain(ev, node)
        assert refresh.urn in uncordon.dependencies and drain.urn in refresh.dependencies
        assert params(ev, f"cluster-{node}-upgrade-refresh")["CHANNEL"] == "1.33/stable"
        closure = names(ev, deps_closure(ev, drain.urn))
        upgraded_before = {n.removeprefix("cluster-").removesuffix("-upgrade-uncordon") for n in closure if n.endswith("-upgrade-uncordon")}
        assert upgraded_before == set(order[:order.index(node)]), node  # every node before it, and only those
        if before is not None:
            assert chain(ev, before)[2].urn in drain.dependencies
    assert params(ev, "cluster-ws-1-microk8s")["UPGRADE_FROM"] == "1.32/stable"
    # The roll starts once every node is Ready and adds its 3 steps per node; the Kubernetes work,
    # beside the joins in a plain up, comes after the roll (see the next test), no more.
    plain = depth(evaluate_config(stack_config("ha")))
    assert plain + 3 * len(order) < depth(ev) <= 2 * plain + 3 * len(order)


def test_max_unavailable_upgrades_that_many_workers_at_a_time_but_control_planes_alone() -> None:
    ev = upgrading("dev", maxUnavailable=2)
    receipt, interface, ws1, ws2 = (chain(ev, n) for n in ("receipt", "interface", "ws-1", "ws-2"))
    for first in (interface, ws1):
        assert receipt[2].urn in first[0].dependencies
        assert first[2].urn in ws2[0].dependencies
    assert interface[2].urn not in deps_closure(ev, ws1[0].urn) and ws1[2].urn not in deps_closure(ev, interface[0].urn)
    assert params(ev, "cluster-ws-2-upgrade-drain")["DRAIN_TIMEOUT_S"] == "600"


def test_verification_expects_high_availability_with_three_control_planes_only() -> None:
    assert params(evaluate_config(stack_config("ha")), "cluster-verify-check")["VOTERS"] == "3"
    assert params(evaluate_config(stack_config("dev")), "cluster-verify-check")["VOTERS"] == "1"


def test_kubernetes_resources_and_verification_wait_for_the_end_of_the_roll() -> None:
    """Review 4 #1: the provider's kubeconfig and the verification come after the last uncordon."""
    ev = upgrading("dev")
    last = ev.by_name("cluster-ws-2-upgrade-uncordon").urn
    assert last in deps_closure(ev, ev.by_name("cluster-verify-check").urn)
    provider = next(r for r in ev.resources if r.name == "cluster-k8s")
    assert last in deps_closure(ev, provider.urn)
    k8s = [r for r in ev.resources if r.type.startswith("kubernetes:")]
    assert k8s
    for r in k8s:  # every workload, chart and CR is managed through that provider
        assert last in deps_closure(ev, r.urn), r.name
