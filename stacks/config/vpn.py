"""`hybrid-ai:vpn`: the backend (WireGuard or Netmaker), overlay, port, MTU, operator peer."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Annotated, Literal

from pydantic import Field

from stacks.config.types import (
    DnsLabel,
    HostAddress,
    IPv4Network,
    Port,
    Schema,
    WireGuardPublicKey,
    strict,
)

NETMAKER_MIN_MEMORY_MB = 2048


class NetmakerConfig(Schema):
    version: Annotated[str, strict(r"v[0-9]+\.[0-9]+\.[0-9]+", "not a release; use v<major>.<minor>.<patch>, e.g. 'v0.90.0'")] = Field(default="v0.90.0", description="Netmaker server and netclient version (pinned).")
    domain: HostAddress = Field(description="Domain of the Netmaker server; `api.`, `broker.` and `dashboard.` under it must resolve to the hub's public address.")
    network: DnsLabel = Field(default="hybrid-ai", description="Netmaker network name.")
    enrollment_key_ttl_hours: int = Field(default=24, ge=1, le=720, description="Lifetime of the stack's enrollment key.")


class Vpn(Schema):
    backend: Literal["wireguard", "netmaker"] = Field(default="wireguard", description="VPN implementation: WireGuard declared by the program, or a Netmaker server on the hub.")
    netmaker: NetmakerConfig | None = Field(default=None, description="Netmaker settings; required with `backend: netmaker`.")
    overlay_cidr: IPv4Network = Field(
        default=IPv4Network("100.64.0.0/16"), description="Overlay network for VPN addresses; must not overlap pod, service or LAN CIDRs."
    )
    port: Port = Field(default=51820, description="WireGuard UDP listen port on every host.")
    mtu: int = Field(
        default=1380, ge=1280, le=1420,
        description="Tunnel MTU. The cluster network uses 50 bytes less (VXLAN inside WireGuard).",
    )
    keepalive_seconds: int = Field(default=25, ge=1, le=300, description="PersistentKeepalive of NAT'd hosts.")
    key_epoch: int = Field(
        default=0, ge=0, le=1_000_000,
        description="WireGuard key generation: raise it (e.g. by 1) to make every host create a new key pair on the host at the next `pulumi up`; peers learn the new public keys in the same run.",
    )
    operator_public_key: WireGuardPublicKey | None = Field(
        default=None, description="WireGuard public key of the operator's laptop; adds it as a peer of the hub."
    )
    operator_address: ipaddress.IPv4Address | None = Field(
        default=None, description="The operator peer's overlay address; the last usable address of the overlay when unset."
    )


def derived_vpn_address(name: str, overlay: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """A stable overlay address from the host name alone, so adding a host never moves another."""
    usable = overlay.num_addresses - 3  # network, broadcast and the operator's last address
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return overlay.network_address + 1 + digest % usable
