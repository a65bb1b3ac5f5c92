"""`hybrid-ai:cluster`: MicroK8s channel, pod and service networks, join tokens, kubeconfig."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stacks.config.types import (
    DnsLabel,
    IPv4Network,
    Schema,
)

CHANNEL = r"^[0-9]+\.[0-9]+(-[a-z]+)?/(stable|candidate|beta|edge)$"


class Upgrade(Schema):
    from_channel: str | None = Field(
        default=None, pattern=CHANNEL,
        description="Set, with a new `channel`, to the channel the nodes run now: `pulumi up` then rolls the upgrade (control planes one at a time, then workers), drained. Remove it once the roll is done.",
    )
    max_unavailable: int = Field(default=1, ge=1, le=50, description="Workers upgraded at a time (control planes: always one).")
    drain_timeout_seconds: int = Field(default=600, ge=60, le=7200, description="Bound of each node's drain (which respects PodDisruptionBudgets).")


class Cluster(Schema):
    channel: str = Field(default="1.32/stable", pattern=CHANNEL, description="MicroK8s snap channel.")
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
    upgrade: Upgrade = Field(default_factory=Upgrade, description="Rolling upgrade of the channel.")
