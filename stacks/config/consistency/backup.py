"""Backups: the snapshots must live on a host of the stack other than the control plane, and on
one trusted like it: every snapshot holds every Secret of the cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig

TRUSTED = "every snapshot holds every Secret of the cluster; name a cloud host (not a control plane) or an on-prem server with a public address and no GPU"


def backup_host(cfg: StackConfig) -> list[str]:
    b = cfg.backup
    if not b.enabled or b.host is None:
        return []
    host = next((h for h in cfg.hosts if h.name == b.host), None)
    if host is None:
        return [f"backup.host: no host named '{b.host}'; name one of `hosts`"]
    if "control-plane" in host.roles:
        return [f"backup.host: '{b.host}' is a control plane, and a snapshot kept there is lost with it; name another host"]
    site = cfg.site(host.site)
    # Workstations are the least trusted tier (physically reachable, running model images).
    if host.gpu is not None and site.kind == "on-prem":
        return [f"backup.host: '{b.host}' is a GPU workstation, and {TRUSTED}"]
    if host.gpu is not None:
        return [f"backup.host: '{b.host}' is a GPU node running model pods, and {TRUSTED}"]
    if site.kind == "on-prem" and site.nat:
        return [f"backup.host: '{b.host}' is in the NAT'd on-prem site '{site.name}', and {TRUSTED}"]
    return []
