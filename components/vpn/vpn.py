"""What the layers above the VPN need from it, whichever backend provides it."""

from __future__ import annotations

from typing import Protocol

import pulumi


class VpnMesh(Protocol):
    interface: str
    """The overlay's interface name on every host (Calico is pinned to it)."""
    cluster_mtu: int
    """MTU the cluster network must use inside the tunnel."""
    applied: dict[str, pulumi.Output[str]]
    """Per host: resolves once the host is on the overlay at its configured address."""
    udp_ports: tuple[str, ...]
    """UDP ports (or ranges `low-high`) its tunnels may listen on: open to all on public hosts."""
    hub_tcp_ports: tuple[int, ...]
    """TCP ports the hub serves to every host (none, or the Netmaker server's)."""
