"""Backups: the snapshots must live on a host of the stack other than the control plane."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.config import StackConfig


def backup_host(cfg: StackConfig) -> list[str]:
    b = cfg.backup
    if not b.enabled or b.host is None:
        return []
    host = next((h for h in cfg.hosts if h.name == b.host), None)
    if host is None:
        return [f"backup.host: no host named '{b.host}'; name one of `hosts`"]
    if "control-plane" in host.roles:
        return [f"backup.host: '{b.host}' is a control plane, and a snapshot kept there is lost with it; name another host"]
    return []
