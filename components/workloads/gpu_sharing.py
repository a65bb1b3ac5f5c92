"""GPU sharing by time-slicing: the NVIDIA device plugin with one config profile per GPU kind.

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


def profile_config(replicas: int) -> str:
    """One device-plugin config: every GPU shared by `replicas` pods, no multi-GPU requests."""
    return yaml.safe_dump({
        "version": "v1",
        "flags": {"migStrategy": "none"},
        "sharing": {"timeSlicing": {
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}],
        }},
    }, sort_keys=True)


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


class GpuSharing(pulumi.ComponentResource):
    """RuntimeClass `nvidia`, the time-slicing ConfigMap, and the device plugin."""

    runtime_class: pulumi.Output[str]
    """Name of the RuntimeClass GPU pods use."""

    def __init__(self, name: str, args: GpuSharingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:gpu:TimeSlicing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The plugin is privileged by nature; its namespace says so, nothing else runs there.
        namespace = open_namespace(name, args.chart.namespace, "privileged", child)
        runtime = RuntimeClass(f"{name}-runtime-class", metadata=metadata("nvidia", None, "runtime"), handler="nvidia", opts=child)
        data = {profile: profile_config(replicas) for profile, replicas in sorted(args.profiles.items())}
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
