"""Cross-section rules about hosts, sites and networks: names resolve, addresses are unique
and inside their ranges, roles add up, ports do not collide with what MicroK8s binds."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from stacks.config.hosts import Role
from stacks.config.vpn import NETMAKER_MIN_MEMORY_MB

if TYPE_CHECKING:
    from stacks.config.hosts import Host
    from stacks.config.stack import StackConfig

# Ports MicroK8s binds on every node's default interface (microk8s.io/docs/services-and-ports);
# an SSH daemon moved onto one of them would fight the cluster for it.
MICROK8S_TCP_PORTS = {16443: "API server", 10250: "kubelet", 10255: "kubelet (read-only)", 25000: "cluster-agent",
                      12379: "etcd", 10257: "kube-controller", 10259: "kube-scheduler", 19001: "dqlite"}
CALICO_VXLAN_UDP_PORT = 4789
INGRESS_HOST_PORTS = (80, 443)  # Traefik's hostPorts on ingress nodes (charts/traefik/values.yaml)


def networks(cfg: StackConfig) -> list[str]:
    named = [("vpn.overlayCidr", cfg.vpn.overlay_cidr), ("cluster.podCidr", cfg.cluster.pod_cidr),
             ("cluster.serviceCidr", cfg.cluster.service_cidr)]
    named += [(f"sites[{i}].lanCidr", s.lan_cidr) for i, s in enumerate(cfg.sites) if s.lan_cidr]
    if cfg.openstack:
        named.append(("openstack.networkCidr", cfg.openstack.network_cidr))
    errors = []
    for i, (key_a, net_a) in enumerate(named):
        for key_b, net_b in named[i + 1:]:
            # LANs of different sites may reuse private ranges; only the cluster/overlay ranges must be unique.
            if key_a.startswith("sites") and key_b.startswith(("sites", "openstack")):
                continue
            if net_a.overlaps(net_b):
                errors.append(f"{key_b}: {net_b} overlaps {key_a} {net_a}; choose ranges that do not overlap")
    return errors


def hosts(cfg: StackConfig) -> list[str]:
    errors = []
    names = {h.name for h in cfg.hosts}
    site_names = {s.name for s in cfg.sites}
    seen_vpn: dict[ipaddress.IPv4Address, str] = {}
    looped: set[str] = set()
    for i, h in enumerate(cfg.hosts):
        key = f"hosts[{i}]"
        if h.site not in site_names:
            errors.append(f"{key}.site: unknown site '{h.site}'; use one of: {', '.join(sorted(site_names))}")
            continue
        site = cfg.site(h.site)
        if h.openstack is not None:
            if site.kind != "cloud":
                errors.append(f"{key}.openstack: site '{site.name}' is on-prem; OpenStack VMs belong to a `kind: cloud` site")
            if cfg.openstack is None:
                errors.append(f"{key}.openstack: needs the `hybrid-ai:openstack` config key (externalNetwork, adminCidrs)")
            if h.ssh.public_key is None:
                errors.append(f"{key}.ssh.publicKey: OpenStack hosts need the public half of the SSH key to install")
        if h.existing is not None:
            if h.ssh.host_key is None:
                errors.append(f"{key}.ssh.hostKey: existing hosts need their pinned host key; get it with `ssh-keyscan -t ed25519 {h.existing.address}`")
            if h.existing.public_address is not None and site.nat:
                errors.append(f"{key}.existing.publicAddress: site '{site.name}' is behind NAT; remove the public address or set the site's `nat: false`")
            lan = cfg.lan_address(h)
            if h.existing.lan_address is not None and site.lan_cidr and lan not in site.lan_cidr:
                errors.append(f"{key}.existing.lanAddress: {lan} is outside site '{site.name}' lanCidr {site.lan_cidr}")
        if h.ssh.jump_host is not None:
            if h.ssh.jump_host == h.name:
                errors.append(f"{key}.ssh.jumpHost: a host cannot be its own jump host")
            elif h.ssh.jump_host not in names:
                errors.append(f"{key}.ssh.jumpHost: unknown host '{h.ssh.jump_host}'; use one of the `hosts` names")
            elif h.name not in looped and (loop := _jump_loop(cfg, h)):
                looped |= loop
                errors.append(f"{key}.ssh.jumpHost: jump hosts loop back to '{h.name}'; one host in the chain must be reachable directly")
            elif h.name not in looped and (via := _jump_via(cfg, h)):
                errors.append(f"{key}.ssh.jumpHost: '{h.ssh.jump_host}' is itself reached through '{via}', and pulumi-command's "
                              f"proxy has no proxy of its own; use a jump host that is reached directly")
        addr = cfg.vpn_address(h)
        if addr not in cfg.vpn.overlay_cidr or addr in (cfg.vpn.overlay_cidr.network_address, cfg.vpn.overlay_cidr.broadcast_address):
            errors.append(f"{key}.vpnAddress: {addr} is not a usable address of vpn.overlayCidr {cfg.vpn.overlay_cidr}")
        elif addr == cfg.operator_address():
            errors.append(f"{key}.vpnAddress: {addr} is the operator peer's address; pick another")
        elif addr in seen_vpn:
            errors.append(f"{key}.vpnAddress: {addr} is already used by host '{seen_vpn[addr]}'; set `vpnAddress` explicitly on one of them")
        else:
            seen_vpn[addr] = h.name
    return errors


def roles(cfg: StackConfig) -> list[str]:
    errors = []
    errors += control_planes(cfg)
    hubs = cfg.hosts_with(Role.VPN_HUB)
    if len(hubs) > 1:
        errors.append(f"hosts: {len(hubs)} hosts have role `vpn-hub`; at most one may")
    for h in hubs:
        i = cfg.hosts.index(h)
        if not cfg.has_public_endpoint(h):
            errors.append(f"hosts[{i}].roles: the `vpn-hub` '{h.name}' needs a public address (`existing.publicAddress` or `openstack.publicIp: true`)")
    nat_sites = [s.name for s in cfg.sites if s.nat and any(h.site == s.name for h in cfg.hosts)]
    if nat_sites and not hubs:
        errors.append(f"hosts: site(s) {', '.join(nat_sites)} are behind NAT but no host with a public address has role `vpn-hub`; give one public host the `vpn-hub` role")
    for h in cfg.hosts_with(Role.INGRESS):
        if not cfg.has_public_endpoint(h):
            errors.append(f"hosts[{cfg.hosts.index(h)}].roles: ingress host '{h.name}' needs a public address")
        if not h.in_cluster:
            errors.append(f"hosts[{cfg.hosts.index(h)}].roles: ingress host '{h.name}' must also be `control-plane` or `worker`")
        if cfg.site(h.site).kind != "cloud":
            # The public entry must outlive an office outage (docs/operations.md, "When an on-prem site goes offline").
            errors.append(f"hosts[{cfg.hosts.index(h)}].roles: ingress host '{h.name}' is at on-prem site '{h.site}', which takes the "
                          "public entry down with the site; give `ingress` to a host at a cloud site")
    if cfg.vpn.operator_public_key and not hubs:
        errors.append("vpn.operatorPublicKey: the operator peer connects through the `vpn-hub`; add a hub host")
    errors += _netmaker(cfg, hubs)
    return errors


def _netmaker(cfg: StackConfig, hubs: list[Host]) -> list[str]:
    vpn = cfg.vpn
    if vpn.backend != "netmaker":
        return ["vpn.netmaker: only used with `backend: netmaker`; set the backend or remove the section"] if vpn.netmaker else []
    errors = []
    if vpn.netmaker is None:
        errors.append("vpn.netmaker: `backend: netmaker` needs this section (at least `domain`)")
    if not hubs:
        errors.append("hosts: the Netmaker server runs on the `vpn-hub`; give one host with a public address that role")
    if vpn.operator_public_key:
        errors.append("vpn.operatorPublicKey: not used with Netmaker; give the operator a Netmaker remote-access client instead")
    for hub in hubs:
        i = cfg.hosts.index(hub)
        if hub.size is None:
            errors.append(f"hosts[{i}].size: declare the hub's size (cpus, memoryMb) so it can be checked for the Netmaker server")
        elif hub.size.memory_mb < NETMAKER_MIN_MEMORY_MB:
            errors.append(f"hosts[{i}].size.memoryMb: {hub.size.memory_mb} MB is too small for the Netmaker server; it needs at least {NETMAKER_MIN_MEMORY_MB} MB")
    return errors


def _jump_via(cfg: StackConfig, host: Host) -> str | None:
    """The jump host of `host`'s jump host, if any (pulumi-command 1.2.1's ProxyConnection has no `proxy`)."""
    jump = next((h for h in cfg.hosts if h.name == host.ssh.jump_host), None)
    return None if jump is None else jump.ssh.jump_host


def _jump_loop(cfg: StackConfig, host: Host) -> set[str]:
    """The hosts of the jump-host loop `host` starts, or an empty set when the chain ends."""
    by_name = {h.name: h for h in cfg.hosts}
    seen = {host.name}
    current = host
    while current.ssh.jump_host is not None and current.ssh.jump_host in by_name:
        if current.ssh.jump_host in seen:
            return seen
        seen.add(current.ssh.jump_host)
        current = by_name[current.ssh.jump_host]
    return set()


def addresses(cfg: StackConfig) -> list[str]:
    errors = []
    ranges = [("vpn.overlayCidr", cfg.vpn.overlay_cidr), ("cluster.podCidr", cfg.cluster.pod_cidr), ("cluster.serviceCidr", cfg.cluster.service_cidr)]
    seen: dict[tuple[str, str, str], str] = {}
    for i, h in enumerate(cfg.hosts):
        if h.existing is None:
            continue
        e = h.existing
        # A LAN address need only be unique on its own site's LAN; hosts behind one router may
        # share the SSH address on different forwarded ports.
        for field, value, scope, fix in (
            ("address", e.address, str(h.ssh.port), "give each host its own address or SSH port"),
            ("publicAddress", e.public_address, "", "each host needs its own (it is its VPN endpoint)"),
            ("lanAddress", e.lan_address, h.site, "each host needs its own (it is its VPN endpoint on the LAN)"),
        ):
            if value is None:
                continue
            key, ident = f"hosts[{i}].existing.{field}", (field, scope, str(value))
            if ident in seen:
                errors.append(f"{key}: {value} is already the {field} of host '{seen[ident]}'; {fix}")
                continue
            seen[ident] = h.name
            try:
                addr = ipaddress.ip_address(value)
            except ValueError:
                continue  # a host name
            if addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_link_local:
                errors.append(f"{key}: {addr} is a loopback, unspecified, multicast or link-local address; use one other hosts can reach")
            elif inside := next((f"{k} {net}" for k, net in ranges if addr in net), None):
                errors.append(f"{key}: {addr} lies inside {inside}, which exists only once the hosts are up; use the host's real address")
    op, overlay = cfg.vpn.operator_address, cfg.vpn.overlay_cidr
    if op is not None and (op not in overlay or op in (overlay.network_address, overlay.broadcast_address)):
        errors.append(f"vpn.operatorAddress: {op} is not a usable address of vpn.overlayCidr {overlay}; pick one inside it")
    return errors


def ports(cfg: StackConfig) -> list[str]:
    errors = []
    if cfg.vpn.port == CALICO_VXLAN_UDP_PORT:
        errors.append(f"vpn.port: UDP {CALICO_VXLAN_UDP_PORT} is Calico's VXLAN port on every cluster node; pick another (the default is 51820)")
    for i, h in enumerate(cfg.hosts):
        port = h.ssh.port
        if h.in_cluster and port in MICROK8S_TCP_PORTS:
            errors.append(f"hosts[{i}].ssh.port: {port} is MicroK8s' {MICROK8S_TCP_PORTS[port]} port on cluster nodes; run SSH on another port")
        elif Role.INGRESS in h.roles and port in INGRESS_HOST_PORTS:
            errors.append(f"hosts[{i}].ssh.port: {port} is the ingress controller's on ingress hosts; run SSH on another port")
    return errors


def control_planes(cfg: StackConfig) -> list[str]:
    """An odd number of control planes (dqlite voters: an even one adds no fault tolerance and
    can split evenly), none behind NAT (an office outage must not cost quorum)."""
    control = cfg.hosts_with(Role.CONTROL_PLANE)
    if len(control) % 2 == 0:
        return [f"hosts: {len(control)} hosts have role `control-plane`; use an odd number (1, or 3 or more for HA: dqlite needs a majority of its voters)"]
    errors = []
    for h in control:
        if cfg.site(h.site).nat:
            errors.append(f"hosts[{cfg.hosts.index(h)}].roles: control plane '{h.name}' is in NAT'd site '{h.site}'; control planes (dqlite voters) must be cloud or public hosts that stay up: make it a `worker`")
    if cfg.cluster.api_server_address == "public" and not cfg.has_public_endpoint(control[0]):
        errors.append(f"cluster.apiServerAddress: 'public' but the first control plane '{control[0].name}' has no public address; give it one or use 'vpn'")
    return errors
