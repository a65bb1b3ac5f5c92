"""A Node as its kubelet registers it, marked for kwok: for the lab's control plane
(tools/lab/kube.py) and the MicroK8s stand-in's kubelet (tests/support/microk8s_host.py). Its
own module, importing nothing of the program: the stand-in runs as a fresh process on every
`microk8s` call of a host script, and the program's modules (pulumi, pulumi_kubernetes) took
0.4 s of CPU to import there."""

from __future__ import annotations

from typing import Any

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")  # kwok's default annotation selector


def kwok_node(name: str, address: str, gpus: int = 0, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Node as its kubelet registers it (the labels every kubelet sets on itself, and its
    own), marked for kwok, which then keeps its status and runs its pods; `gpus`: the
    nvidia.com/gpu the device plugin advertises."""
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
    own = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
           "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": dict([KWOK_ANNOTATION]), "labels": own | (labels or {})},
        "status": {"capacity": capacity, "allocatable": capacity,
                   "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]},
    }
