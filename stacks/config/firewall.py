"""`hybrid-ai:firewall`: the host firewall of every host with a public address."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field

from stacks.config.types import (
    IPv4Network,
    Schema,
)


def _not_the_world(cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    if cidr.prefixlen == 0:
        raise ValueError("the API server open to the world; list your admin networks instead")
    return cidr


AdminCidr = Annotated[IPv4Network, AfterValidator(_not_the_world)]


class Firewall(Schema):
    enabled: bool = Field(default=True, description="An nftables table of the program's own (`inet hybrid_ai`) on every host with a public address: from outside the overlay only SSH, the VPN's UDP ports, 80/443 on ingress hosts and the Netmaker hub and the API server port from `adminCidrs` on control planes are reachable (docs/ports.md).")
    admin_cidrs: list[AdminCidr] = Field(default_factory=list, description="Networks that may reach the control planes' API server port (16443) from outside the overlay: where `pulumi up` and kubectl run, with `cluster.apiServerAddress: public`. `openstack.adminCidrs` are added.")
