"""Warnings, not errors: a config that deploys, but not the way its author most likely meant."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig


def lan_path_warnings(cfg: StackConfig) -> list[str]:
    """Two hosts of one site without a public address talk directly only when both have a LAN
    address (components/vpn/wireguard_topology.py); otherwise their traffic, GPU to GPU too,
    goes out through the site's uplink to a public peer and back."""
    warnings = []
    for i, site in enumerate(cfg.sites):
        inside = [(j, h) for j, h in enumerate(cfg.hosts) if h.site == site.name and not cfg.has_public_endpoint(h)]
        lost = [(j, h) for j, h in inside if cfg.lan_address(h) is None]
        if len(inside) < 2 or not lost:
            continue
        names = ", ".join(h.name for _, h in lost)
        j = lost[0][0]
        have, their = ("has", "its") if len(lost) == 1 else ("have", "their")
        if site.lan_cidr:
            why, fix = f"{their} `address` is outside `sites[{i}].lanCidr`", f"correct `hosts[{j}].existing.address` or set its `lanAddress`"
        else:
            why, fix = f"`sites[{i}].lanCidr` is not set", f"set `sites[{i}].lanCidr` or `hosts[{j}].existing.lanAddress`"
        warnings.append(f"hybrid-ai:sites[{i}] ({site.name}): {names} {have} no LAN address ({why}), so traffic between this "
                        f"site's hosts goes through the VPN hub; {fix}")
    return warnings
