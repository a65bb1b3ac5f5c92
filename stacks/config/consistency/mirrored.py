"""A stack with mirrors: what Pulumi fetches for it goes over HTTPS (or from a file), and nothing
it installs has no mirror path."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stacks.config import StackConfig
    from stacks.config.hosts import Site


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
    errors += [f"hosts[{i}].nvidia.driverVersion: {h.name} installs the NVIDIA driver from its site's apt mirror, which must hold that "
               "driver branch and its signed kernel modules (linux-modules-nvidia-<branch>-<flavour>); set the branch to carry, "
               "as `ubuntu-drivers list` on the host shows it (e.g. '550'), or installDriver: false where the driver is installed"
               for i, h in enumerate(cfg.hosts) if h.gpu is not None and h.in_cluster and h.nvidia.install_driver
               and h.nvidia.driver_version is None and cfg.mirrors_of(h).apt is not None]
    return errors + shared_credentials(cfg) + files_mirrors(cfg)


def files_mirrors(cfg: StackConfig) -> list[str]:
    """TF-Serving is one Deployment on any GPU node, each model with one source URL: the sites with
    GPU nodes fetch model files from one `files` mirror (and CA), or the pods on some would fail."""
    if not any(m.kind == "tf-model" and m.tf is not None and m.tf.source for m in cfg.models):
        return []
    seen: dict[tuple[str | None, str | None, tuple[str, ...]], list[str]] = {}
    errors = []
    for i, site in enumerate(cfg.sites):
        if any(h.site == site.name and h.gpu is not None and h.in_cluster for h in cfg.hosts):
            m = site.mirrors or cfg.mirrors
            seen.setdefault((m.files, m.files_ca_config, tuple(map(str, m.files_addresses))), []).append(site.name)
            host = m.files_host()
            if site.kind == "on-prem" and host is not None and not m.files_addresses and not _is_ip(host):
                # The fetcher asks cluster DNS (CoreDNS, on cloud nodes, forwarding to the cloud's
                # resolvers), not the office's: the name could resolve elsewhere or not at all.
                path = f"sites[{i}].mirrors" if site.mirrors is not None else "mirrors"
                errors.append(f"{path}.filesAddresses: on-prem site {site.name}'s GPU nodes fetch model files from {host}, a name cluster DNS "
                              f"(on the cloud nodes) may not resolve as the office does; set {path}.filesAddresses to its address(es) on the office LAN")
    if len(seen) < 2:
        return errors
    which = "; ".join(f"{', '.join(sites)}: {files or 'the sources as given'}{f' (CA {ca})' if ca else ''}{f' at {list(addrs)}' if addrs else ''}"
                      for (files, ca, addrs), sites in seen.items())
    return [*errors, f"mirrors.files: TF-Serving's model files come from one place for every GPU node, but the sites with GPU nodes differ ({which}); "
            "give those sites the same `files`, `filesCaConfig` and `filesAddresses` in their `mirrors` (or in the stack-wide `mirrors`)"]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def shared_credentials(cfg: StackConfig) -> list[str]:
    """A registry credential an on-prem site's nodes hold (in containerd's hosts.toml, which a
    workstation's root reads) that cloud nodes pull with too: workstations are the lowest trust
    tier, and a registry credential may push (htpasswd), so one per site kind (docs/airgap.md)."""
    def credentials(site: Site) -> dict[str, str]:
        """credential key -> where the site's cluster nodes get it."""
        if not any(h.site == site.name and h.in_cluster for h in cfg.hosts):
            return {}
        mirrors, path = (site.mirrors, f"sites[{cfg.sites.index(site)}].mirrors") if site.mirrors is not None else (cfg.mirrors, "mirrors")
        found: dict[str, str] = {}
        for j, r in enumerate(mirrors.registries):
            if r.credentials_config:
                found.setdefault(r.credentials_config, f"{path}.registries[{j}].credentialsConfig")
        return found
    cloud = {key for s in cfg.sites if s.kind == "cloud" for key in credentials(s)}
    errors = []
    for i, site in enumerate(cfg.sites):
        for key, path in credentials(site).items() if site.kind == "on-prem" else ():
            if key in cloud:
                where, fix = (path, "give it a pull-only credential of its own") if site.mirrors is not None else \
                    (f"sites[{i}].mirrors", "give the site its own `mirrors` with a pull-only credential of its own")
                errors.append(f"{where}: on-prem site {site.name} pulls with registry credential `{key}`, which cloud nodes use too; a "
                              f"workstation's root reads it from containerd's hosts.toml and could push what cloud nodes run: {fix} "
                              "(docs/airgap.md, \"Registry credentials\")")
    return errors
