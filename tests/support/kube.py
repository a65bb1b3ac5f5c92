"""The lab control plane for a stack (tools/lab/kube.py) and the Kubernetes layer's stack on it,
driven by the real CLI with the real pulumi-kubernetes provider (on PATH, as `make engine`
builds it), its charts and Gateway API bundle from the local stand-in mirror."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, cast

import yaml
from pulumi import automation as auto

from components.cluster.microk8s import ClusterNode, MicroK8sClusterArgs, launch_config
from components.hosts.ssh import SshTarget
from stacks.config import Role, StackConfig
from stacks.kubernetes import program
from stacks.load import secret_keys_of, validate
from tests.support.chart_mirror import Mirror
from tests.support.engine import ENGINE, Engine
from tools.lab.kube import ControlPlane, KubeNode
from tools.lab.kube_args import apiserver_args


def apiserver_flags(raw: dict[str, Any]) -> dict[str, str]:
    """kube-apiserver's flags on the stack's seed: its launch configuration's and the install script's."""
    cfg = validate(raw)
    seed = cfg.hosts_with(Role.CONTROL_PLANE)[0]
    address = str(cfg.vpn_address(seed))
    node = ClusterNode(seed.name, cast(SshTarget, None), address, control_plane=True)  # launch_config reads no target
    args = MicroK8sClusterArgs(nodes=[node], channel=cfg.cluster.channel, cni_mtu=1280, pod_cidr=str(cfg.cluster.pod_cidr),
                               service_cidr=str(cfg.cluster.service_cidr))
    launch = yaml.safe_load(launch_config(node, args, [], seed=True)).get("extraKubeAPIServerArgs", {})
    return apiserver_args({"SERVICE_CIDR": str(cfg.cluster.service_cidr), "NODE_IP": address}, launch)


def control_plane(raw: dict[str, Any], *more: dict[str, Any]) -> ControlPlane:
    """A control plane for the stack: API server flags as its seed gets them, one kwok node per
    cluster host (its VPN address, its GPUs as the device plugin advertises them). With `more`
    stacks on the same machines, the union of their hosts (one API server for all of them); a
    host they share must be the same node in each."""
    nodes: dict[str, KubeNode] = {}
    for cfg in (validate(r) for r in (raw, *more)):
        for h in cfg.hosts:
            if not h.in_cluster:
                continue
            node = KubeNode(h.name, str(cfg.vpn_address(h)), gpus=(h.gpu.count * cfg.replicas_of(h)) if h.gpu else 0)
            assert nodes.setdefault(h.name, node) == node, f"{h.name} differs between the stacks: {nodes[h.name]} / {node}"
    cfg = validate(raw)
    return ControlPlane(list(nodes.values()), apiserver_flags(raw), pod_cidr=str(cfg.cluster.pod_cidr))


def with_mirror(raw: dict[str, Any], mirror: Mirror) -> dict[str, Any]:
    return raw | {"sources": {"charts": mirror.url, "gatewayApiCrds": mirror.gateway_api_crds}}


def kube_program(kubeconfig: str) -> None:
    """The Kubernetes layer's program on `kubeconfig`, importable by an Engine operation's process."""
    program(kubeconfig)()


class KubeStack(Engine):
    """The Kubernetes layer of one stack config on the lab's API server."""

    def __init__(self, root: Path, plane: ControlPlane, name: str = "dev") -> None:
        helm = root / "helm"  # Helm's caches and repositories config, the provider's own
        env = {"PATH": f"{ENGINE / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "HELM_CACHE_HOME": str(helm / "cache"), "HELM_CONFIG_HOME": str(helm / "config"), "HELM_DATA_HOME": str(helm / "data"),
               "KUBECONFIG": "/dev/null"}  # the provider gets the lab's kubeconfig only from the program
        super().__init__(root, functools.partial(kube_program, plane.kubeconfig_inline()), stack=name, project="hybrid-ai", env=env)
        self.plane = plane

    def configure(self, raw: dict[str, Any]) -> None:
        """The stack's config, as `pulumi config set` would store it (the SSH key: unused by this layer)."""
        values = {f"hybrid-ai:{k}": auto.ConfigValue(json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in raw.items()}
        values["hybrid-ai:sshPrivateKey"] = auto.ConfigValue("unused-by-the-kubernetes-layer", secret=True)
        for key in secret_keys_of(validate(raw)):  # the models' secrets (an API key), as `--secret` stores them
            values.setdefault(f"hybrid-ai:{key}", auto.ConfigValue(f"lab-{key}", secret=True))
        self.stack.set_all_config(values)

    def validated(self, raw: dict[str, Any]) -> StackConfig:
        return validate(raw)
