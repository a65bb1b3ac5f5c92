"""Wire the components into one graph for a validated stack. No config reading here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.cluster.backup import DatastoreBackup, DatastoreBackupArgs
from components.cluster.microk8s import API_PORT, MicroK8sCluster, MicroK8sClusterArgs
from components.cluster.node import ClusterNode, DriverUpgrade
from components.cluster.node_meta import NodeTaint
from components.cluster.nvidia import TOOLKIT_REPO_URL, GpuDriverArgs, gpu_driver
from components.cluster.upgrade import MaintenanceWindow, UpgradeArgs
from components.hosts.bootstrap import ExtraStep, HostBootstrap, HostBootstrapArgs
from components.hosts.firewall import HTTP_PORTS, HostFirewall, HostFirewallArgs
from components.hosts.host import ExistingHost, ExistingHostArgs, HostNode
from components.hosts.openstack import OpenStackNetwork, OpenStackNetworkArgs, OpenStackNode, OpenStackNodeArgs
from components.hosts.ssh import SshLogin
from components.kit.kube import (
    GPU_CAPACITY_LABEL,
    GPU_LABEL,
    GPU_MODEL_LABEL,
    INGRESS_LABEL,
    LOCATION_LABEL,
    SITE_LABEL,
    VPN_ADDRESS_LABEL,
)
from components.vpn.mesh_metrics import MeshMetrics, MeshMetricsArgs
from components.vpn.netmaker import NetmakerMesh, NetmakerMeshArgs
from components.vpn.vpn import VpnMesh
from components.vpn.wireguard import MeshMember, WireGuardMesh, WireGuardMeshArgs
from stacks.config import NETMAKER_MIN_MEMORY_MB, Host, Role, StackConfig, gpu_budget
from stacks.config.cluster import window_days
from stacks.load import Stack
from stacks.mirrors import mirror_setup, snap_files
from stacks.monitoring import host_table, monitoring_outputs, public_urls
from stacks.workloads import Workloads, build_verification, build_workloads


@dataclass
class Built:
    """What the graph exposes to `__main__` (exports) and to tests."""

    hosts: dict[str, HostNode] = field(default_factory=dict)
    bootstraps: dict[str, HostBootstrap] = field(default_factory=dict)
    firewalls: dict[str, HostFirewall] = field(default_factory=dict)
    mesh: VpnMesh | None = None
    cluster: MicroK8sCluster | None = None
    backup: DatastoreBackup | None = None
    workloads: Workloads | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


def _jump_order(cfg: StackConfig) -> list[Host]:
    """Hosts ordered so that every jump host comes before the hosts reached through it."""
    ordered: list[Host] = []
    placed: set[str] = set()
    pending = list(cfg.hosts)
    while pending:
        ready = [h for h in pending if h.ssh.jump_host is None or h.ssh.jump_host in placed]
        ordered += ready
        placed |= {h.name for h in ready}
        pending = [h for h in pending if h.name not in placed]
    return ordered


def _openstack_network(stack: Stack) -> OpenStackNetwork | None:
    cfg = stack.config
    vms = [h for h in cfg.hosts if h.openstack is not None]
    if not vms or cfg.openstack is None:
        return None
    return OpenStackNetwork(
        "openstack",
        OpenStackNetworkArgs(
            external_network=cfg.openstack.external_network,
            cidr=str(cfg.openstack.network_cidr),
            admin_cidrs=[str(c) for c in cfg.openstack.admin_cidrs],
            vpn_port=cfg.vpn.port,
            api_port=API_PORT,
            ssh_public_key=vms[0].ssh.public_key or "",
            dns_nameservers=[str(a) for a in cfg.openstack.dns_nameservers],
        ),
    )


def build_hosts(stack: Stack) -> dict[str, HostNode]:
    cfg = stack.config
    network = _openstack_network(stack)
    hosts: dict[str, HostNode] = {}
    for h in _jump_order(cfg):
        proxy = hosts[h.ssh.jump_host].as_jump_host() if h.ssh.jump_host else None
        login = SshLogin(h.ssh.user, h.ssh.port, stack.secret(h.ssh.private_key_config), proxy)
        if h.existing is not None:
            e = h.existing
            lan = cfg.lan_address(h)
            hosts[h.name] = ExistingHost(h.name, ExistingHostArgs(
                address=e.address, host_key=h.ssh.host_key or "", login=login,
                public_address=str(e.public_address) if e.public_address else None,
                lan_address=str(lan) if lan else None,
            ))
        elif h.openstack is not None and network is not None:
            o = h.openstack
            hosts[h.name] = OpenStackNode(h.name, OpenStackNodeArgs(
                network=network, flavor=o.flavor, image=o.image, login=login, public_ip=o.public_ip,
                ingress=Role.INGRESS.value in h.roles, volume_size_gb=o.volume_size_gb,
                control_plane=Role.CONTROL_PLANE.value in h.roles,
            ))
    return hosts


def build_firewalls(cfg: StackConfig, built: Built) -> dict[str, HostFirewall]:
    """The host firewall on every host with a public address, open to the VPN's UDP ports."""
    if not cfg.firewall.enabled or built.mesh is None:
        return {}
    mesh, cidrs = built.mesh, [str(cfg.cluster.pod_cidr), str(cfg.cluster.service_cidr)]

    def public_tcp(h: Host) -> list[int]:
        return [*(HTTP_PORTS if Role.INGRESS.value in h.roles else ()), *(mesh.hub_tcp_ports if Role.VPN_HUB.value in h.roles else ())]
    return {h.name: HostFirewall(f"{h.name}-firewall", HostFirewallArgs(
        target=built.bootstraps[h.name].target, ssh_port=h.ssh.port, vpn_ports=mesh.udp_ports, vpn_interface=mesh.interface,
        cluster_cidrs=cidrs, public_tcp=public_tcp(h),
        api_port=API_PORT if Role.CONTROL_PLANE.value in h.roles else None, admin_cidrs=cfg.admin_cidrs(),
    )) for h in cfg.hosts if cfg.has_public_endpoint(h)}


def build_mesh(cfg: StackConfig, built: Built) -> VpnMesh:
    """The overlay, by the configured backend; nothing above it depends on which."""
    members = []
    for h in cfg.hosts:
        node = built.hosts[h.name]
        members.append(MeshMember(
            name=h.name,
            site=h.site,
            address=str(cfg.vpn_address(h)),
            target=built.bootstraps[h.name].target,
            public_endpoint=node.public_address,
            lan_endpoint=node.lan_address,
            hub=Role.VPN_HUB.value in h.roles,
        ))
    vpn = cfg.vpn
    if vpn.backend == "netmaker" and vpn.netmaker is not None:
        nm = vpn.netmaker
        return NetmakerMesh("mesh", NetmakerMeshArgs(
            members=members, overlay_cidr=str(vpn.overlay_cidr), domain=nm.domain, version=nm.version, network=nm.network,
            mtu=vpn.mtu, key_ttl_hours=nm.enrollment_key_ttl_hours,
            min_memory_mb=NETMAKER_MIN_MEMORY_MB,
        ))
    return WireGuardMesh("mesh", WireGuardMeshArgs(
        members=members, overlay_cidr=str(vpn.overlay_cidr), port=vpn.port, mtu=vpn.mtu,
        keepalive_seconds=vpn.keepalive_seconds, key_epoch=vpn.key_epoch, operator_public_key=vpn.operator_public_key,
        operator_address=str(cfg.operator_address()),
    ))


ZONE_LABEL = "topology.kubernetes.io/zone"


def node_labels(cfg: StackConfig, h: Host) -> dict[str, str]:
    """The labels the program sets on a node, then the host's own. Every label it places pods by
    is one no kubelet may set on itself (components/kit/kube.py); `nvidia.com/*` are for the
    NVIDIA charts (the device plugin's default affinity, its config), which it never places by alone."""
    site = cfg.site(h.site)
    labels = {SITE_LABEL: site.name, LOCATION_LABEL: site.kind, VPN_ADDRESS_LABEL: str(cfg.vpn_address(h)),
              # The node-lifecycle controller judges disruption per zone: without zones the whole
              # cluster is one, and an office holding most nodes would never have its pods evicted.
              ZONE_LABEL: site.name}
    if Role.INGRESS.value in h.roles:
        labels[INGRESS_LABEL] = "true"
    if h.gpu is not None:
        labels[GPU_LABEL] = "true"
        labels[GPU_MODEL_LABEL] = h.gpu.model
        labels["nvidia.com/gpu.present"] = "true"
        labels["nvidia.com/device-plugin.config"] = cfg.profile_of(h) or h.gpu.model
        labels[GPU_CAPACITY_LABEL] = str(h.gpu.count * cfg.replicas_of(h))
        labels |= gpu_budget.node_labels(cfg, h)  # sharing mode and memory share, matched by budgeted pods
    return labels | dict(h.labels)


def build_cluster(cfg: StackConfig, built: Built) -> MicroK8sCluster:
    assert built.mesh is not None
    nodes = []
    for h in (h for h in cfg.hosts if h.in_cluster):
        bootstrap = built.bootstraps[h.name]
        target = bootstrap.target if bootstrap.gpu_ready is None else bootstrap.target.after(bootstrap.gpu_ready)
        if (firewall := built.firewalls.get(h.name)) is not None:  # MicroK8s listens on every address from its start
            target = target.after(firewall.changed)
        nodes.append(ClusterNode(
            name=h.name,
            target=target.after(built.mesh.applied[h.name]),
            vpn_address=str(cfg.vpn_address(h)),
            public_address=built.hosts[h.name].public_address,
            control_plane=Role.CONTROL_PLANE.value in h.roles,
            gpu=h.gpu is not None,
            labels=node_labels(cfg, h),
            taints=[NodeTaint(t.key, t.value, t.effect) for t in h.taints],
            driver_upgrade=_driver_upgrade(h),
            snap_files=snap_files(cfg.mirrors_of(h)),
        ))
    c = cfg.cluster
    return MicroK8sCluster("cluster", MicroK8sClusterArgs(
        nodes=nodes, channel=c.channel, cni_mtu=built.mesh.cluster_mtu, pod_cidr=str(c.pod_cidr),
        service_cidr=str(c.service_cidr), token_ttl_seconds=c.join_token_ttl_seconds, vpn_interface=built.mesh.interface,
        image_pull_timeout=c.image_pull_timeout, api_server_address=c.api_server_address, upgrade_from=c.upgrade.from_channel,
        upgrade=UpgradeArgs(max_unavailable=c.upgrade.max_unavailable, drain_timeout_seconds=c.upgrade.drain_timeout_seconds, paused=c.upgrade.paused,
                            window=MaintenanceWindow(w, tuple(window_days(w))) if (w := c.upgrade.window) else None),
    ))


def _driver_upgrade(h: Host) -> DriverUpgrade | None:
    """A roll only while asked for, and only where the program owns the driver (config rules)."""
    n = h.nvidia
    if h.gpu is None or n.from_driver_version is None or n.driver_version is None:
        return None
    return DriverUpgrade(version=n.driver_version, gpu_count=h.gpu.count)


def build_backup(stack: Stack, built: Built) -> DatastoreBackup | None:
    """Datastore snapshots from the control plane to `backup.host`, if enabled."""
    cfg, b = stack.config, stack.config.backup
    if not b.enabled or b.host is None:
        return None
    assert built.cluster is not None and built.mesh is not None
    cp = cfg.hosts_with(Role.CONTROL_PLANE)[0]
    store = next(h for h in cfg.hosts if h.name == b.host)
    storage = b.object_storage
    return DatastoreBackup("datastore-backup", DatastoreBackupArgs(
        control_plane=built.cluster.control_plane, control_plane_address=str(cfg.vpn_address(cp)),
        store=built.bootstraps[store.name].target.after(built.mesh.applied[store.name]), store_address=str(cfg.vpn_address(store)),
        schedule=b.schedule, keep=b.keep, max_bytes=b.max_size_gb * 1024**3,
        s3_url=storage.url if storage else None, s3_region=storage.region if storage else "us-east-1",
        s3_credentials=stack.secret(storage.credentials_config) if storage else None,
    ))


def _gpu_step(host: HostNode, args: GpuDriverArgs) -> ExtraStep:
    """The cluster layer's GPU driver as the extra step of the host's bootstrap (same names, same parent)."""
    return lambda name, target, parent: gpu_driver(name, host.host_name, target, args, parent)


def build_below_cluster(stack: Stack) -> Built:
    """The layers under the cluster: hosts with their bootstrap (GPU driver included), the mesh
    and the host firewalls. Nothing here talks to Kubernetes (tests run it on their own)."""
    cfg = stack.config
    built = Built(hosts=build_hosts(stack))
    for h in cfg.hosts:
        gpu = None
        if h.gpu is not None and h.in_cluster:
            gpu = _gpu_step(built.hosts[h.name], GpuDriverArgs(gpu_count=h.gpu.count, install_driver=h.nvidia.install_driver,
                                                               driver_version=h.nvidia.driver_version, install_toolkit=h.nvidia.install_toolkit,
                                                               driver_from=h.nvidia.from_driver_version,
                                                               toolkit_repo=None if cfg.mirrors_of(h).nvidia_apt else TOOLKIT_REPO_URL))
        built.bootstraps[h.name] = HostBootstrap(f"{h.name}-bootstrap", HostBootstrapArgs(host=built.hosts[h.name], gpu=gpu,
                                                                                          mirrors=mirror_setup(stack, h)))
    built.mesh = build_mesh(cfg, built)
    built.firewalls = build_firewalls(cfg, built)
    return built


def build(stack: Stack) -> Built:
    cfg = stack.config
    built = build_below_cluster(stack)
    built.cluster = build_cluster(cfg, built)
    built.backup = build_backup(stack, built)
    built.outputs["hosts"] = {
        h.name: {"sshAddress": built.hosts[h.name].ssh_address, "publicAddress": built.hosts[h.name].public_address,
                 "vpnAddress": str(cfg.vpn_address(h))}
        for h in cfg.hosts
    }
    mesh = built.mesh
    assert mesh is not None
    built.outputs["vpn"] = {"backend": cfg.vpn.backend, "interface": mesh.interface, "clusterMtu": mesh.cluster_mtu}
    if isinstance(mesh, WireGuardMesh):
        # Secret: no key in it, but it maps the overlay and the hub's endpoint for whoever reads the state.
        operator: pulumi.Output[str] | None = None
        if mesh.operator_config is not None:
            operator = pulumi.Output.secret(mesh.operator_config)
        built.outputs["vpn"] |= {"publicKeys": mesh.public_keys, "operatorConfig": operator}
    built.outputs["kubeconfig"] = built.cluster.kubeconfig
    if cfg.monitoring.enabled:
        for h in (h for h in cfg.hosts if h.in_cluster):
            MeshMetrics(f"{h.name}-mesh-metrics", MeshMetricsArgs(built.bootstraps[h.name].target, mesh.interface, cfg.monitoring.mesh_interval_seconds))
    workloads = build_workloads(stack, built.cluster.api)
    workloads.verification = verification = build_verification(cfg, built.cluster, built.hosts, workloads.wait_for)
    built.workloads = workloads
    built.outputs["models"] = workloads.endpoints
    built.outputs["verification"] = verification.report
    built.outputs["publicEndpoints"] = public_urls(cfg)
    built.outputs["sites"] = host_table(cfg)
    if (grafana := monitoring_outputs(workloads.monitoring)) is not None:
        built.outputs["monitoring"] = grafana
    return built
