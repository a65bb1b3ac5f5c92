"""GPU sharing by time-slicing or MPS: the NVIDIA device plugin with one config profile per GPU
kind (a profile of one replica gives whole GPUs).

Each node picks its profile through the label `nvidia.com/device-plugin.config`. The plugin
does not always pick up edits of its ConfigMap, so a checksum of the config is part of the
chart values: a change rolls the plugin's pods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import yaml
from pulumi_kubernetes.core.v1 import ConfigMap
from pulumi_kubernetes.node.v1 import RuntimeClass

from components.kit.helm import ChartSpec, install
from components.kit.kube import GPU_NODES, metadata
from components.workloads.namespace import open_namespace

CONFIG_NAME = "time-slicing-config"


def profile_config(replicas: int, sharing: str = "time-slicing") -> str:
    """One device-plugin config: every GPU shared by `replicas` pods (time-slicing or MPS), no
    multi-GPU requests; with one replica, whole GPUs (no `sharing`: the plugin refuses a
    replicated resource of fewer than 2 replicas, api/config/v1/replicas.go at v0.18.2)."""
    config: dict[str, object] = {"version": "v1", "flags": {"migStrategy": "none"}}
    if replicas > 1 and sharing == "mps":
        # The plugin forces failRequestsGreaterThanOne for MPS; its daemon caps each client's
        # memory at the GPU's / replicas.
        config["sharing"] = {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}}
    elif replicas > 1:
        config["sharing"] = {"timeSlicing": {
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}],
        }}
    return yaml.safe_dump(config, sort_keys=True)


@dataclass
class GpuSharingArgs:
    chart: ChartSpec
    """The pinned device-plugin chart."""
    profiles: Mapping[str, int]
    """Profile name -> pods per GPU."""
    default_profile: str
    """Profile for GPU nodes whose label names none."""
    tolerations: Sequence[Mapping[str, str]] = ()
    """GPU node taints to tolerate."""
    mps: Sequence[str] = ()
    """Profiles whose GPUs are shared by MPS rather than time-slicing."""


class GpuSharing(pulumi.ComponentResource):
    """RuntimeClass `nvidia`, the sharing profiles' ConfigMap, and the device plugin (whose chart
    also runs the MPS control daemon on nodes labelled `nvidia.com/mps.capable`)."""

    runtime_class: pulumi.Output[str]
    """Name of the RuntimeClass GPU pods use."""

    def __init__(self, name: str, args: GpuSharingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:gpu:TimeSlicing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The plugin is privileged by nature; its namespace says so, nothing else runs there.
        namespace = open_namespace(name, args.chart.namespace, "privileged", child)
        runtime = RuntimeClass(f"{name}-runtime-class", metadata=metadata("nvidia", None, "runtime"), handler="nvidia", opts=child)
        data = {profile: profile_config(replicas, "mps" if profile in args.mps else "time-slicing")
                for profile, replicas in sorted(args.profiles.items())}
        config = ConfigMap(f"{name}-config", metadata=metadata(CONFIG_NAME, namespace, "gpu-sharing"), data=data, opts=child)
        checksum = hashlib.sha256(yaml.safe_dump(data, sort_keys=True).encode()).hexdigest()
        install(f"{name}-device-plugin", args.chart, {
            "config": {"name": config.metadata.apply(lambda m: m["name"]), "default": args.default_profile},
            "nodeSelector": dict(GPU_NODES),  # with the chart's default affinity (nvidia.com/gpu.present and friends)
            "podAnnotations": {"hybrid-ai/time-slicing-checksum": checksum},
            "tolerations": [dict(t) for t in args.tolerations] + [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        }, namespace, child)
        self.runtime_class = runtime.metadata.apply(lambda m: str(m["name"]))
        self.register_outputs({"runtimeClass": self.runtime_class})
