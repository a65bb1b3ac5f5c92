"""A stack with mirrors: what Pulumi fetches for it goes over HTTPS (or from a file), and nothing
it installs has no mirror path."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.config import StackConfig


def mirrored_stack(cfg: StackConfig) -> list[str]:
    if all(cfg.mirrors_of(h).empty for h in cfg.hosts):
        return []
    errors = [f"sources.{key}: a stack with mirrors fetches it over https:// (or oci://, or from a file): over http it could be "
              "swapped on the way and is applied with cluster-admin; serve it over https"
              for key, value in (("charts", cfg.sources.charts), ("gatewayApiCrds", cfg.sources.gateway_api_crds))
              if value is not None and value.startswith("http://")]
    if cfg.vpn.backend == "netmaker":
        errors.append("vpn.backend: netmaker has no mirror path (its hosts install from apt.netmaker.org and its server pulls "
                      "through dockerd, which the registry mirrors do not configure); use the wireguard backend on a stack with mirrors")
    return errors
