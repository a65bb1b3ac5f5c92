"""stacks/kubernetes.py: the Kubernetes layer alone, with the kubeconfig given to it (the
injection point until the whole program runs under the real engine). It registers exactly the
program's Kubernetes resources, with no remote command, and the provider gets that kubeconfig,
as a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.kubernetes import build_kubernetes
from stacks.load import NAMESPACE, ConfigError, load
from tests.support.helpers import TEST_SECRETS, evaluate_config, stack_config, taint_gpu_host
from tools.render.evaluate import Evaluation, evaluate
from tools.render.write import reveal

KUBECONFIG = '{"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "canary-cluster"}]}'


def layer(raw: dict[str, Any]) -> Evaluation:
    config = {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    config |= {f"{NAMESPACE}:{k}": v for k, v in TEST_SECRETS.items()}
    return evaluate("layer", config, {f"{NAMESPACE}:{k}" for k in TEST_SECRETS},
                    main=lambda: {"models": build_kubernetes(load(), KUBECONFIG).endpoints})


def kube_resources(ev: Evaluation) -> set[tuple[str, str]]:
    return {(r.type, r.name) for r in ev.resources if r.type.startswith("kubernetes:") or r.type.startswith("hybridai:k8s")}


def test_the_layer_registers_the_programs_kubernetes_resources_and_no_command() -> None:
    raw = stack_config("dev")
    alone, whole = layer(raw), evaluate_config(raw)
    assert not [r for r in alone.resources if r.type.startswith("command:")]
    # But the known-nodes policy: its ConfigMap is a host step's, which the layer alone has not
    # (bound without it, no node could register).
    known = {r for r in kube_resources(whole) if "known-nodes" in str(r)}
    assert len(known) == 4 and kube_resources(alone) == kube_resources(whole) - known  # two policies, their bindings
    assert len(alone.of_type("kubernetes:core/v1:NodePatch")) == 4  # receipt, interface, ws-1, ws-2 (not the hub)


def test_the_provider_gets_the_given_kubeconfig_as_a_secret() -> None:
    ev = layer(stack_config("dev"))
    provider = ev.by_name("cluster-k8s")
    assert reveal(provider.inputs["kubeconfig"]) == KUBECONFIG
    assert provider.inputs["kubeconfig"] != KUBECONFIG, "the kubeconfig is not marked secret"
    assert provider.inputs["clusterIdentifier"] == "hybrid-ai-cluster"  # as MicroK8sCluster's: the objects stay in place


def test_a_host_with_taints_is_refused_with_its_key() -> None:
    """Taints are set with kubectl over SSH on the control plane (components/cluster/node_meta.py),
    which the layer alone does not reach: one line naming the key, before anything is registered."""
    raw = stack_config("dev")
    taint_gpu_host(raw, "ws-1", [{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    with pytest.raises(ConfigError) as err:
        layer(raw)
    assert err.value.problems == ["hybrid-ai:hosts[3].taints: taints need the control plane over SSH; apply the whole program"]
