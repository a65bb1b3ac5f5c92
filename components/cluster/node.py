"""A cluster node as the cluster components see it: where it is, its role, labels and taints,
and the driver upgrade it is in (the rolls in `upgrade` and `driver_upgrade` read it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.cluster.node_meta import NodeTaint
from components.hosts.ssh import SshTarget


@dataclass(frozen=True)
class DriverUpgrade:
    version: str
    """The branch to roll to (`nvidia.driverVersion`), e.g. 550 or 550-server."""
    gpu_count: int
    """GPUs the host must show once back."""


@dataclass
class ClusterNode:
    name: str
    """Node name; must be the machine's hostname."""
    target: SshTarget
    """The node, once its VPN (and GPU driver) is up."""
    vpn_address: str
    """Its overlay address: node IP, advertise address, join address."""
    public_address: pulumi.Input[str] | None = None
    """Added to the API certificate on the control plane."""
    control_plane: bool = False
    """Runs a control plane (a dqlite voter); the first one in `nodes` is the seed."""
    gpu: bool = False
    """Configure containerd's NVIDIA runtime."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Node labels."""
    taints: Sequence[NodeTaint] = ()
    """Node taints (the program's own; others on the node are left alone)."""
    driver_upgrade: DriverUpgrade | None = None
    """While its NVIDIA driver upgrade is rolled: to what."""
    snap_files: str = ""
    """Mirrored sites: `<snap>_<revision>` files the host's mirror step staged, installed instead of the channel."""
