"""The whole stack (`StackConfig`): one field per section and the lookups the wiring uses. The
cross-section checks (`stacks/config/consistency/`) read a built `StackConfig`; the loader runs
them (`stacks/load.py`), so this module does not import the rules that import it."""

from __future__ import annotations

import ipaddress

from pydantic import Field

from stacks.config.backup import Backup
from stacks.config.cluster import Cluster
from stacks.config.firewall import Firewall
from stacks.config.gpu_sharing import TimeSlicing
from stacks.config.hosts import Host, Role, Site
from stacks.config.ingress import Ingress
from stacks.config.mirrors import Mirrors
from stacks.config.models import Model, Registry, TfServing
from stacks.config.monitoring import Monitoring
from stacks.config.openstack import OpenStack
from stacks.config.sources import Sources
from stacks.config.types import Schema
from stacks.config.vpn import Vpn, derived_vpn_address


class StackConfig(Schema):
    """The whole stack: one field per `hybrid-ai:<key>` config key."""

    sites: list[Site] = Field(min_length=1, description="Where hosts live.")
    hosts: list[Host] = Field(min_length=1, description="Every machine of the stack.")
    vpn: Vpn = Field(default_factory=Vpn, description="The VPN mesh.")
    cluster: Cluster = Field(default_factory=Cluster, description="The MicroK8s cluster.")
    time_slicing: TimeSlicing = Field(default_factory=TimeSlicing, description="GPU sharing profiles.")
    models: list[Model] = Field(default_factory=list, description="The model catalog.")
    ingress: Ingress = Field(default_factory=Ingress, description="Public entry and TLS.")
    tf_serving: TfServing = Field(default_factory=TfServing, description="TensorFlow Serving for the catalog's `tf-model` entries.")
    registry: Registry | None = Field(default=None, description="Private registry credentials (an image pull secret for every workload).")
    openstack: OpenStack | None = Field(default=None, description="OpenStack settings; required when any host has `openstack`.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Prometheus, Grafana, GPU and mesh metrics, alerts and dashboards.")
    backup: Backup = Field(default_factory=Backup, description="Scheduled datastore snapshots kept off the control plane.")
    firewall: Firewall = Field(default_factory=Firewall, description="The host firewall of hosts with a public address.")
    sources: Sources = Field(default_factory=Sources, description="Where the pinned charts and the Gateway API CRD bundle come from.")
    mirrors: Mirrors = Field(default_factory=Mirrors, description="Where hosts install from instead of the internet (apt, snaps, registries, files); a site's `mirrors` replaces it for its hosts (docs/airgap.md).")

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def mirrors_of(self, host: Host) -> Mirrors:
        """The mirrors a host installs from: its site's, else the stack-wide ones."""
        return self.site(host.site).mirrors or self.mirrors

    def files_mirrors(self) -> Mirrors:
        """The mirrors TF-Serving's model files come from: those of the sites with GPU nodes (it runs on
        any of them, one Deployment with one source per model; stacks/config/consistency/mirrored.py
        refuses sites that disagree), else the stack-wide ones."""
        gpu = [h for h in self.hosts if h.gpu is not None and h.in_cluster]
        return self.mirrors_of(gpu[0]) if gpu else self.mirrors

    def vpn_address(self, host: Host) -> ipaddress.IPv4Address:
        return host.vpn_address or derived_vpn_address(host.name, self.vpn.overlay_cidr)

    def operator_address(self) -> ipaddress.IPv4Address:
        return self.vpn.operator_address or self.vpn.overlay_cidr.broadcast_address - 1

    def hosts_with(self, role: Role) -> list[Host]:
        return [h for h in self.hosts if role.value in h.roles]

    def profile_of(self, host: Host) -> str | None:
        if host.gpu is None:
            return None
        return host.gpu.profile or self.time_slicing.default_profile or host.gpu.model

    def replicas_of(self, host: Host) -> int:
        """Pods sharing each of the host's GPUs (1 without a time-slicing profile)."""
        profile = self.profile_of(host)
        return next((p.replicas for p in self.time_slicing.profiles if p.name == profile), 1)

    def has_public_endpoint(self, host: Host) -> bool:
        if host.openstack is not None:
            return host.openstack.public_ip
        return host.existing is not None and host.existing.public_address is not None

    def admin_cidrs(self) -> list[str]:
        """Networks that may reach the API server port from outside the overlay."""
        extra = self.openstack.admin_cidrs if self.openstack is not None else []
        return sorted({str(c) for c in [*self.firewall.admin_cidrs, *extra]})

    def lan_address(self, host: Host) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host's LAN address, used as the VPN endpoint by peers in the same site."""
        if host.existing is None:
            return None
        if host.existing.lan_address is not None:
            return host.existing.lan_address
        site = self.site(host.site)
        try:
            addr = ipaddress.ip_address(host.existing.address)
        except ValueError:
            return None
        return addr if site.lan_cidr and addr in site.lan_cidr else None
