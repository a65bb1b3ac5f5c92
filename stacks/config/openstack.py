"""`hybrid-ai:openstack`: the network the program creates for OpenStack VMs, and who may reach it."""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from stacks.config.types import (
    IPv4Network,
    Schema,
)


class OpenStack(Schema):
    external_network: str = Field(description="Name of the external network floating IPs come from.")
    network_cidr: IPv4Network = Field(default=IPv4Network("192.0.2.0/24"), description="CIDR of the private network the program creates.")
    dns_nameservers: list[ipaddress.IPv4Address] = Field(default_factory=list, description="DNS servers for the private subnet.")
    admin_cidrs: list[IPv4Network] = Field(min_length=1, description="Networks allowed to SSH in; never `0.0.0.0/0`.")

    @model_validator(mode="after")
    def _no_world_ssh(self) -> OpenStack:
        for i, cidr in enumerate(self.admin_cidrs):
            if cidr.prefixlen == 0:
                raise ValueError(f"adminCidrs[{i}]: SSH open to the world; list your admin networks instead")
        return self
