"""Only the stack's own cluster hosts register a Node (components/cluster/known_nodes.py): the
seed writes their names into a ConfigMap before any registration or join, and a bound admission
policy refuses a Node created or updated by any other node identity. The rendered policy is evaluated here
(CEL); the real API server refuses a removed workstation's kubelet in the engine lab
(tests/stacks/test_engine_lab.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.cluster.known_nodes import CONFIGMAP, NAMESPACE, POLICY_NAME
from components.kit.shell import split_command
from stacks.load import validate
from tests.support.admission import Request, admits, dev_policy, node
from tests.support.cluster_stubs import ClusterHost
from tests.support.helpers import deps_closure, evaluate_config, stack_config
from tools.render.write import reveal

KUBELET = ("system:node:ws-1", ("system:nodes", "system:authenticated"))
ADMIN = ("admin", ("system:masters", "system:authenticated"))
LIST = {"CONFIGMAP": CONFIGMAP, "NAMESPACE": NAMESPACE}
KNOWN = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"receipt": "cluster host", "ws-1": "cluster host"}}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dev_policy(POLICY_NAME)


@pytest.fixture(scope="module")
def updates() -> dict[str, Any]:
    return dev_policy(f"{POLICY_NAME}-updates")


def test_a_node_identity_registers_only_a_listed_node(spec: dict[str, Any]) -> None:
    create = Request(*KUBELET, "CREATE", "nodes", "", node("ws-1", {}), None)
    assert admits(spec, create, KNOWN)
    assert not admits(spec, create, KNOWN | {"data": {"receipt": "cluster host"}})  # ws-1 removed from the stack
    assert not admits(spec, create, {"apiVersion": "v1", "kind": "ConfigMap"})  # an empty ConfigMap has no data
    # Updates are the other policy's (below); the program's own requests are no node identity's.
    assert admits(spec, Request(*KUBELET, "UPDATE", "nodes", "status", node("ws-1", {}), node("ws-1", {})), None)
    assert admits(spec, Request(*ADMIN, "CREATE", "nodes", "", node("ws-9", {}), None), KNOWN)
    # No ConfigMap: no Node is created at all, the params are looked up before the match
    # conditions (k8s.io/apiserver validating/dispatcher.go, docs/upstream.md).
    assert not admits(spec, create, None) and not admits(spec, Request(*ADMIN, "CREATE", "nodes", "", node("ws-9", {}), None), None)
    # (As the API server would, had the binding said Allow, or the policy failurePolicy Ignore.)
    assert admits(spec, create, None, not_found="Allow") and admits(spec | {"failurePolicy": "Ignore"}, create, None)


@pytest.mark.parametrize("sub", ["", "status"])
def test_a_node_identity_updates_only_a_listed_node_and_a_missing_list_stops_no_update(updates: dict[str, Any], sub: str) -> None:
    """A kubelet left running on a removed host (its Node not yet deleted) cannot keep it alive.
    Without the list every update passes: refusing them would stop the node lifecycle
    controller's too (the params are looked up before the match conditions)."""
    update = Request(*KUBELET, "UPDATE", "nodes", sub, node("ws-1", {}), node("ws-1", {}))
    assert admits(updates, update, KNOWN)
    assert not admits(updates, update, KNOWN | {"data": {"receipt": "cluster host"}})  # ws-1 removed from the stack
    assert admits(updates, Request(*ADMIN, "UPDATE", "nodes", sub, node("ws-9", {}), node("ws-9", {})), KNOWN)
    assert admits(updates, update, None, not_found="Allow") and not admits(updates, update, None, not_found="Deny")
    assert admits(updates, Request(*KUBELET, "CREATE", "nodes", "", node("ws-1", {}), None), {"data": {}})  # creates: the other policy's


def test_the_list_is_every_cluster_host_and_written_before_any_registration_or_join() -> None:
    cfg = validate(stack_config("dev"))
    ev = evaluate_config(stack_config("dev"))
    step = ev.by_name("cluster-known-nodes")
    script, params = split_command(step.inputs["create"])
    assert "kubectl replace -f" in script and params["CONFIGMAP"] == CONFIGMAP and params["NAMESPACE"] == NAMESPACE
    hosts = [h.name for h in cfg.hosts if h.in_cluster]
    assert sorted(params["NODE_NAMES"].split()) == sorted(hosts) and "ws-1" in hosts
    assert ev.by_name("cluster-receipt-microk8s").urn in deps_closure(ev, step.urn)  # on the seed, once it runs MicroK8s
    for host in hosts:
        for role in ("register", "join"):
            assert step.urn in deps_closure(ev, ev.by_name(f"cluster-{host}-{role}").urn), (host, role)
    for role, not_found in (("known-nodes", "Deny"), ("known-nodes-updates", "Allow")):
        binding = ev.by_name(f"cluster-{role}-policy-binding")
        assert step.urn in deps_closure(ev, binding.urn)
        ref = reveal(binding.inputs)["spec"]["paramRef"]
        assert ref == {"name": CONFIGMAP, "namespace": NAMESPACE, "parameterNotFoundAction": not_found}, role
    assert step.inputs["delete"].endswith("hybrid-ai/known-nodes-remove")
    assert step.delete_before_replace, "a replacement's delete would remove what it wrote"


@pytest.mark.parametrize("bad", ["WS-1", "ws_1", "ws-1\\\"", "-ws"])
def test_a_name_that_is_no_node_name_is_refused_before_anything_is_written(tmp_path: Path, bad: str) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    result = cp.run("known-nodes-apply.sh", NODE_NAMES=f"receipt {bad}", CONFIGMAP=CONFIGMAP, NAMESPACE=NAMESPACE)
    assert result.returncode == 1 and "not a node name" in result.stderr
    assert not [c for c in cp.calls() if "kubectl" in c]


def test_a_control_planes_drain_leaves_its_node_to_remove_node(tmp_path: Path) -> None:
    """A control plane is a dqlite member: remove-node (after its leave) removes it, not its drain."""
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("cp-2", "100.64.0.4")
    assert cp.run("microk8s-drain.sh", NODE_NAME="cp-2", WORKER="false", **LIST).returncode == 0
    assert cp.state_changes() == ["microk8s kubectl drain cp-2 --ignore-daemonsets --delete-emptydir-data --timeout=300s"]
    assert (cp.state / "nodes/cp-2").exists()


def test_no_known_nodes_list_names_nobody_and_one_that_cannot_be_read_deletes_nothing(tmp_path: Path) -> None:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("ws-2", "100.64.1.2")
    assert cp.run("microk8s-remove-node.sh", NODE_NAME="ws-2", PLANES="receipt=100.64.0.2", **LIST).returncode == 0
    assert not (cp.state / "nodes/ws-2").exists()
    cp.add_node("ws-3", "100.64.1.3")
    (cp.state / "api-down").touch()
    down = cp.run("microk8s-drain.sh", NODE_NAME="ws-3", WORKER="true", **LIST)
    assert down.returncode == 1 and "could not read the known-nodes list (kube-system/hybrid-ai-known-nodes)" in down.stderr
    assert (cp.state / "nodes/ws-3").exists()
