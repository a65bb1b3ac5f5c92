"""`hybrid-ai:cluster`: MicroK8s channel, pod and service networks, join tokens, kubeconfig."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from stacks.config.types import (
    DnsLabel,
    IPv4Network,
    Schema,
    strict,
)

CHANNEL = re.compile(r"[0-9]+\.[0-9]+(-[a-z]+)?/(stable|candidate|beta|edge)")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# `Sat,Sun 02:00-06:00`, `Mon-Fri 22:00-04:00` (past midnight: the window opens on the days named).
WINDOW = re.compile(r"(?P<days>(\w{3}(-\w{3})?)(,\w{3}(-\w{3})?)*) (?P<start>([01][0-9]|2[0-3]):[0-5][0-9])-(?P<end>([01][0-9]|2[0-3]):[0-5][0-9])")


def _channel(value: str) -> str:
    # `latest/...` (and any other track) names no Kubernetes minor: the rolling upgrade waits for
    # a node's kubelet on the new minor, and the downgrade check compares minors.
    if not CHANNEL.fullmatch(value):
        raise ValueError("must be `<major>.<minor>/<risk>`, e.g. `1.32/stable` (a track named by its Kubernetes minor, not `latest`)")
    return value


def minor(channel: str) -> tuple[int, int]:
    """A validated channel's Kubernetes minor, e.g. (1, 32)."""
    major, rest = channel.split(".", 1)
    return int(major), int(rest.split("/")[0].split("-")[0])


def window_days(spec: str) -> list[str]:
    """The days a validated window opens on, in week order."""
    found = WINDOW.fullmatch(spec)
    assert found is not None
    days: set[str] = set()
    for part in found["days"].split(","):
        first, _, last = part.partition("-")
        i, j = DAYS.index(first), DAYS.index(last or first)
        days.update(DAYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8))
    return [d for d in DAYS if d in days]


def _window(value: str) -> str:
    found = WINDOW.fullmatch(value)
    if found is None or any(d not in DAYS for d in re.split(r"[,-]", found["days"])):
        raise ValueError("must be `<days> HH:MM-HH:MM` in UTC, days as `Mon`..`Sun`, lists and ranges, e.g. `Sat,Sun 02:00-06:00` or `Mon-Fri 22:00-04:00`")
    if found["start"] == found["end"]:
        raise ValueError("opens and closes at the same minute; give an end after the start (an end before it runs past midnight)")
    return value


Channel = Annotated[str, AfterValidator(_channel)]
Window = Annotated[str, AfterValidator(_window)]


class Upgrade(Schema):
    from_channel: Channel | None = Field(
        default=None,
        description="Set, with a new `channel` (the next minor, or another risk of the same one; never an older one), to the channel the nodes run now: `pulumi up` then rolls the upgrade (control planes one at a time, then workers), drained. Remove it once the roll is done.",
    )
    max_unavailable: int = Field(default=1, ge=1, le=50, description="Workers upgraded at a time (control planes: always one).")
    drain_timeout_seconds: int = Field(default=600, ge=60, le=7200, description="Bound of each node's drain (which respects PodDisruptionBudgets).")
    paused: bool = Field(
        default=False,
        description="Hold both rolls while `fromChannel` / `fromDriverVersion` stay set: no node is drained or upgraded, the nodes keep the channel and driver they run, and everything else in `pulumi up` (workloads) goes ahead. Remove it to resume the roll where it stopped.",
    )
    window: Window | None = Field(
        default=None,
        description="Maintenance window of both rolls (channel and NVIDIA driver), in UTC, e.g. `Sat,Sun 02:00-06:00` (an end before the start runs past midnight). Each node's roll starts only inside it, by the seed control plane's clock; a roll that reaches the window's end stops before the next node. Unset: any time.",
    )


class Cluster(Schema):
    channel: Channel = Field(default="1.32/stable", description="MicroK8s snap channel, `<major>.<minor>/<risk>`; a change is rolled with `upgrade.fromChannel`, and only upwards.")
    pod_cidr: IPv4Network = Field(default=IPv4Network("10.1.0.0/16"), description="Pod network (Calico).")
    service_cidr: IPv4Network = Field(default=IPv4Network("10.152.183.0/24"), description="Service network.")
    join_token_ttl_seconds: int = Field(default=3600, ge=300, le=86400, description="Lifetime of each node's join token; the control plane removes it once the node is Ready.")
    image_pull_timeout: Annotated[str, strict(r"[1-9][0-9]*[smh]", "not a timeout; a whole number of seconds, minutes or hours, e.g. '30m'")] = Field(
        default="30m",
        description="Kubelet runtime request timeout, so multi-GB model images on slow on-prem links are not cut off.",
    )
    namespace: DnsLabel = Field(default="hybrid-ai", description="Namespace of the workloads (Pod Security `restricted`, deny by default), theirs alone: not `default`, `kube-system`, `kube-public`, `kube-node-lease` nor a namespace the program creates for a chart (`cert-manager`, `monitoring`, `nvidia-device-plugin`, `traefik`).")
    api_server_address: Literal["public", "vpn"] = Field(
        default="public",
        description="Server address in the exported kubeconfig: the control plane's public address, or its VPN address when the operator is a VPN peer.",
    )
    upgrade: Upgrade = Field(default_factory=Upgrade, description="Rolling upgrades of the channel and of the NVIDIA driver.")
