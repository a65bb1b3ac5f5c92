"""`hybrid-ai:cluster`: MicroK8s channel, pod and service networks, join tokens, kubeconfig."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stacks.config.types import (
    DnsLabel,
    IPv4Network,
    Schema,
)


class Cluster(Schema):
    channel: str = Field(default="1.32/stable", pattern=r"^[0-9]+\.[0-9]+(-[a-z]+)?/(stable|candidate|beta|edge)$", description="MicroK8s snap channel.")
    pod_cidr: IPv4Network = Field(default=IPv4Network("10.1.0.0/16"), description="Pod network (Calico).")
    service_cidr: IPv4Network = Field(default=IPv4Network("10.152.183.0/24"), description="Service network.")
    join_token_ttl_seconds: int = Field(default=3600, ge=300, le=86400, description="Lifetime of each node's join token; the control plane removes it once the node is Ready.")
    image_pull_timeout: str = Field(
        default="30m", pattern=r"^[1-9][0-9]*[smh]$",
        description="Kubelet runtime request timeout, so multi-GB model images on slow on-prem links are not cut off.",
    )
    namespace: DnsLabel = Field(default="hybrid-ai", description="Namespace of the workloads (Pod Security `restricted`).")
    api_server_address: Literal["public", "vpn"] = Field(
        default="public",
        description="Server address in the exported kubeconfig: the control plane's public address, or its VPN address when the operator is a VPN peer.",
    )
