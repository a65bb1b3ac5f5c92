"""Who peers with whom, over which endpoint: the NAT-aware WireGuard topology, pure data.

Rules (A configures peer B):
- A and B talk directly when either has a public endpoint, or both sit in the same site
  and B has a LAN address there. Endpoint: B's LAN address for same-site peers, else B's
  public address, else none (B is behind NAT and will reach A first).
- Two NAT'd hosts in different sites cannot reach each other: they route through the hub,
  so B's overlay address joins the AllowedIPs of A's hub peer (AllowedIPs is a
  longest-prefix table: an address belongs to exactly one peer).
- A host without a public endpoint keeps every peer with an endpoint alive
  (PersistentKeepalive), so its NAT mapping stays open for return traffic.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

EndpointKind = Literal["public", "lan"]
OPERATOR = "operator"
"""Peer name of the operator's laptop (a hub peer only; everyone else reaches it via the hub)."""


@dataclass(frozen=True)
class Node:
    name: str
    site: str
    address: ipaddress.IPv4Address
    public: bool
    """Has a public endpoint other peers can reach."""
    lan: bool
    """Has a LAN address same-site peers can reach."""
    hub: bool = False


@dataclass(frozen=True)
class Peer:
    name: str
    endpoint: EndpointKind | None
    allowed_ips: tuple[str, ...]
    keepalive: bool


class TopologyError(ValueError):
    pass


def _direct(a: Node, b: Node) -> bool:
    return a.public or b.public or (a.site == b.site and a.lan and b.lan)


def plan(nodes: list[Node], operator: ipaddress.IPv4Address | None = None) -> dict[str, list[Peer]]:
    """Peers of every node, in a stable order (by name)."""
    hubs = [n for n in nodes if n.hub]
    if len(hubs) > 1:
        raise TopologyError("at most one hub")
    hub = hubs[0] if hubs else None
    if hub is not None and not hub.public:
        raise TopologyError(f"hub '{hub.name}' needs a public endpoint")
    ordered = sorted(nodes, key=lambda n: n.name)
    peers: dict[str, list[Peer]] = {}
    for a in ordered:
        routed: list[str] = []
        direct: list[Node] = []
        for b in ordered:
            if b is a:
                continue
            if _direct(a, b):
                direct.append(b)
            elif hub is None:
                raise TopologyError(f"'{a.name}' and '{b.name}' are both behind NAT in different sites and there is no hub")
            else:
                routed.append(f"{b.address}/32")
        if operator is not None and hub is not None and a is not hub:
            routed.append(f"{operator}/32")
        peers[a.name] = []
        for b in direct:
            endpoint: EndpointKind | None = "lan" if (a.site == b.site and a.lan and b.lan) else ("public" if b.public else None)
            extra = tuple(routed) if b is hub else ()
            peers[a.name].append(Peer(b.name, endpoint, (f"{b.address}/32", *extra), keepalive=not a.public and endpoint is not None))
    if operator is not None and hub is not None:
        peers[hub.name].append(Peer(OPERATOR, None, (f"{operator}/32",), keepalive=False))
    return peers
