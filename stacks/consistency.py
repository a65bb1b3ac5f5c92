"""Every cross-section rule of the stack config, in one place.

`cross_checks(cfg)` runs after each section has validated on its own; it returns one line
per problem, `<key path>: <what is wrong>; <what would be right>`, and `StackConfig` raises
them together. Rules: what must be unique is unique, what must lie in a range lies in it,
requests fit what the hosts offer, and a setting that would be ignored or overridden is
rejected with the reason rather than silently dropped.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import TYPE_CHECKING

from stacks.config import BUILTIN_SERVICES, NETMAKER_MIN_MEMORY_MB, Role

if TYPE_CHECKING:
    from stacks.config import Host, StackConfig

# Ports MicroK8s binds on every node's default interface (microk8s.io/docs/services-and-ports);
# an SSH daemon moved onto one of them would fight the cluster for it.
MICROK8S_TCP_PORTS = {16443: "API server", 10250: "kubelet", 10255: "kubelet (read-only)", 25000: "cluster-agent",
                      12379: "etcd", 10257: "kube-controller", 10259: "kube-scheduler", 19001: "dqlite"}
CALICO_VXLAN_UDP_PORT = 4789
INGRESS_HOST_PORTS = (80, 443)  # ingress-nginx's hostPorts on ingress nodes


def cross_checks(cfg: StackConfig) -> list[str]:
    if errors := overlay_too_small(cfg):
        return errors
    errors += _unique("sites", [s.name for s in cfg.sites])
    errors += _unique("hosts", [h.name for h in cfg.hosts])
    errors += _unique("models", [m.name for m in cfg.models])
    errors += _unique("timeSlicing.profiles", [p.name for p in cfg.time_slicing.profiles])
    errors += _networks(cfg)
    errors += _hosts(cfg)
    errors += _roles(cfg)
    errors += _gpus_and_models(cfg)
    if not errors:  # the rules below assume names and sites resolve
        errors += _addresses(cfg)
        errors += _ports(cfg)
        errors += _unused_settings(cfg)
        errors += _models(cfg)
        errors += _requests(cfg)
        errors += _secret_keys(cfg)
    return errors


def _networks(cfg: StackConfig) -> list[str]:
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


def _hosts(cfg: StackConfig) -> list[str]:
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


def _roles(cfg: StackConfig) -> list[str]:
    errors = []
    control = cfg.hosts_with(Role.CONTROL_PLANE)
    if len(control) != 1:
        errors.append(f"hosts: {len(control)} hosts have role `control-plane`; exactly one must (the one that mints the join token)")
    elif cfg.cluster.api_server_address == "public" and not cfg.has_public_endpoint(control[0]):
        errors.append(f"cluster.apiServerAddress: 'public' but the control plane '{control[0].name}' has no public address; give it one or use 'vpn'")
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


def _gpus_and_models(cfg: StackConfig) -> list[str]:
    errors = []
    profiles = {p.name for p in cfg.time_slicing.profiles}
    for i, p in enumerate(cfg.time_slicing.profiles):
        if p.replicas > cfg.time_slicing.max_replicas:
            errors.append(f"timeSlicing.profiles[{i}].replicas: {p.replicas} is above timeSlicing.maxReplicas {cfg.time_slicing.max_replicas}")
    if cfg.time_slicing.default_profile and cfg.time_slicing.default_profile not in profiles:
        errors.append(f"timeSlicing.defaultProfile: unknown profile '{cfg.time_slicing.default_profile}'; define it under timeSlicing.profiles")
    gpu_hosts = [h for h in cfg.hosts if h.gpu and h.in_cluster]
    for h in gpu_hosts:
        profile = cfg.profile_of(h)
        if profiles and profile not in profiles:
            errors.append(f"hosts[{cfg.hosts.index(h)}].gpu.profile: unknown time-slicing profile '{profile}'; use one of: {', '.join(sorted(profiles))}")
    model_names = {m.name for m in cfg.models} | set(BUILTIN_SERVICES)
    if any(m.public_path for m in cfg.models) and cfg.ingress.domain is None:
        i = next(i for i, m in enumerate(cfg.models) if m.public_path)
        errors.append(f"models[{i}].publicPath: public models need `ingress.domain`")
    if any(m.public_path for m in cfg.models) and not cfg.hosts_with(Role.INGRESS):
        errors.append("hosts: public models need a host with role `ingress`")
    sharing = bool(profiles)
    gpu_models = [(i, m.name) for i, m in enumerate(cfg.models) if m.placement == "gpu"]
    if gpu_models and not gpu_hosts:
        names = ", ".join(name for _, name in gpu_models)
        errors.append(f"models[{gpu_models[0][0]}].placement: {names} ask for GPU nodes but no cluster host has `gpu`; add a GPU host or use `placement: cloud`")
    for i, m in enumerate(cfg.models):
        if sharing and m.gpus > 1:
            errors.append(f"models[{i}].gpus: {m.gpus} GPUs per pod with time-slicing on (failRequestsGreaterThanOne); request 1")
        if m.name in BUILTIN_SERVICES:
            errors.append(f"models[{i}].name: '{m.name}' is a built-in service; pick another name")
        for j, peer in enumerate(m.talks_to):
            if peer not in model_names:
                errors.append(f"models[{i}].talksTo[{j}]: unknown model '{peer}'")
    return errors


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


def _unique(key: str, names: list[str]) -> list[str]:
    return [
        f"{key}[{names.index(name, names.index(name) + 1)}].name: '{name}' is used twice; names must be unique"
        for name, n in Counter(names).items()
        if n > 1
    ]


def overlay_too_small(cfg: StackConfig) -> list[str]:
    """Checked alone: with too few addresses every derived address would collide."""
    usable = cfg.vpn.overlay_cidr.num_addresses - 3  # network, broadcast, the operator's
    if usable < len(cfg.hosts):
        return [f"vpn.overlayCidr: {cfg.vpn.overlay_cidr} has {max(usable, 0)} usable addresses for {len(cfg.hosts)} hosts "
                "and the operator; use a larger range (e.g. a /24)"]
    return []


def _addresses(cfg: StackConfig) -> list[str]:
    errors = []
    ranges = [("vpn.overlayCidr", cfg.vpn.overlay_cidr), ("cluster.podCidr", cfg.cluster.pod_cidr), ("cluster.serviceCidr", cfg.cluster.service_cidr)]
    seen: dict[tuple[str, str, str], str] = {}
    for i, h in enumerate(cfg.hosts):
        if h.existing is None:
            continue
        e = h.existing
        # A LAN address need only be unique on its own site's LAN.
        for field, value, scope in (("address", e.address, ""), ("publicAddress", e.public_address, ""), ("lanAddress", e.lan_address, h.site)):
            if value is None:
                continue
            key, ident = f"hosts[{i}].existing.{field}", (field, scope, str(value))
            if ident in seen:
                errors.append(f"{key}: {value} is already the {field} of host '{seen[ident]}'; each host needs its own (it is its VPN endpoint)")
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


def _ports(cfg: StackConfig) -> list[str]:
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


def _unused_settings(cfg: StackConfig) -> list[str]:
    """Settings that would be ignored or overridden: say so rather than drop them silently."""
    errors = []
    for i, h in enumerate(cfg.hosts):
        key = f"hosts[{i}]"
        if h.openstack is not None and h.ssh.host_key is not None:
            errors.append(f"{key}.ssh.hostKey: OpenStack VMs get a host key the program generates, which overrides this one; remove it")
        if h.existing is not None and h.ssh.public_key is not None:
            errors.append(f"{key}.ssh.publicKey: only used to create OpenStack VMs (their key pair); remove it from this existing host")
        if h.gpu is None and "nvidia" in h.model_fields_set:
            errors.append(f"{key}.nvidia: only used on hosts with `gpu`; remove it or describe the host's GPUs")
        if not h.in_cluster:
            for field, value in (("gpu", h.gpu), ("labels", h.labels), ("taints", h.taints)):
                if value:
                    errors.append(f"{key}.{field}: '{h.name}' is no cluster node (no `control-plane` or `worker` role), so this is ignored; add role `worker` or remove it")
        elif h.gpu is not None and h.gpu.profile is not None and not cfg.time_slicing.profiles:
            errors.append(f"{key}.gpu.profile: there are no timeSlicing.profiles, so it is ignored; define '{h.gpu.profile}' there or remove it")
    if cfg.vpn.operator_address is not None and cfg.vpn.operator_public_key is None:
        errors.append("vpn.operatorAddress: only used with vpn.operatorPublicKey; set the key or remove the address")
    if cfg.ingress.acme_email is not None and not cfg.ingress.tls.startswith("letsencrypt"):
        errors.append(f"ingress.acmeEmail: only used with `tls: letsencrypt` or `letsencrypt-staging`, not '{cfg.ingress.tls}'; remove it or change `tls`")
    if cfg.ingress.tls_cert_config is not None and cfg.ingress.tls != "byo":
        errors.append(f"ingress.tlsCertConfig: only used with `tls: byo`, not '{cfg.ingress.tls}'; remove it or set `tls: byo`")
    if cfg.openstack is not None and not any(h.openstack for h in cfg.hosts):
        errors.append("openstack: no host has `openstack`, so this section is unused; remove it or add an OpenStack host")
    return errors


def _models(cfg: StackConfig) -> list[str]:
    errors = []
    paths: dict[str, int] = {}
    for i, m in enumerate(cfg.models):
        key = f"models[{i}]"
        if m.public_path is not None:
            path = m.public_path.rstrip("/") or "/"
            if path in paths:
                errors.append(f"{key}.publicPath: '{m.public_path}' already routes to '{cfg.models[paths[path]].name}'; give each public model its own path")
            paths.setdefault(path, i)
        elif m.max_replicas is not None:
            errors.append(f"{key}.maxReplicas: only public models autoscale, so it is ignored; set `publicPath` or remove it")
        if m.kind == "tf-model":
            if m.image is not None:
                errors.append(f"{key}.image: a tf-model is served by TF-Serving (`tfServing.image`), so it is ignored; remove it")
            if m.gpus:
                errors.append(f"{key}.gpus: a tf-model uses TF-Serving's GPU (`tfServing.gpus`), so it is ignored; remove it")
        elif m.tf is not None:
            errors.append(f"{key}.tf: only used with `kind: tf-model`; remove it or set the kind")
        errors += [f"{key}.talksTo: '{peer}' is listed {n} times; list each peer once" for peer, n in Counter(m.talks_to).items() if n > 1]
        if _millicores(m.cpu) > _millicores(m.cpu_limit):
            errors.append(f"{key}.cpu: request {m.cpu} is above `cpuLimit` {m.cpu_limit}; lower the request or raise the limit")
    return errors


def _requests(cfg: StackConfig) -> list[str]:
    """Requests within what the hosts offer: a pod that fits no node stays Pending forever."""
    errors = []
    gpu_hosts = [h for h in cfg.hosts if h.gpu is not None and h.in_cluster]
    if gpu_hosts:
        largest = max(h.gpu.count for h in gpu_hosts if h.gpu)
        for i, m in enumerate(cfg.models):
            if not cfg.time_slicing.profiles and m.gpus > largest:
                errors.append(f"models[{i}].gpus: {m.gpus} GPUs per pod but the largest GPU host has {largest}; request at most {largest}")
        capacity = sum(h.gpu.count * cfg.replicas_of(h) for h in gpu_hosts if h.gpu)
        if errors:  # a pod that fits no host already says what to lower
            return errors
        demand = {m.name: m.replicas * m.gpus for m in cfg.models if m.kind == "service" and m.gpus}
        if any(m.kind == "tf-model" for m in cfg.models):
            demand["tf-serving"] = cfg.tf_serving.gpus
        if sum(demand.values()) > capacity:
            detail = ", ".join(f"{n} {k}" for k, n in demand.items())
            errors.append(f"models: the GPU pods request {sum(demand.values())} GPUs ({detail}) but the GPU hosts offer {capacity} "
                          "(GPUs x time-slicing replicas); lower `replicas` or `gpus`, or add GPU hosts")
    cloud_hosts = [h for h in cfg.hosts if h.in_cluster and cfg.site(h.site).kind == "cloud"]
    for placement, hosts in (("gpu", gpu_hosts), ("cloud", cloud_hosts)):
        if not hosts or any(h.size is None for h in hosts):
            continue  # sizes unknown: nothing to compare with
        biggest = max(h.size.memory_mb for h in hosts if h.size)
        asks = [(f"models[{i}].memory", m.memory) for i, m in enumerate(cfg.models) if m.placement == placement and m.kind == "service"]
        if placement == "gpu" and any(m.kind == "tf-model" for m in cfg.models):
            asks.append(("tfServing.memory", cfg.tf_serving.memory))
        errors += [f"{key}: {memory} is more than any {placement} node has ({biggest} MB in `size.memoryMb`); lower it or use bigger hosts"
                   for key, memory in asks if _mib(memory) > biggest]
    return errors


def _secret_keys(cfg: StackConfig) -> list[str]:
    sections = {f.alias or name for name, f in type(cfg).model_fields.items()}
    uses = [(f"hosts[{i}].ssh.privateKeyConfig", h.ssh.private_key_config, "ssh") for i, h in enumerate(cfg.hosts)]
    if cfg.ingress.tls_cert_config:
        uses.append(("ingress.tlsCertConfig", cfg.ingress.tls_cert_config, "tls"))
    if cfg.registry is not None:
        uses.append(("registry.passwordConfig", cfg.registry.password_config, "registry"))
    errors: list[str] = []
    kind_of: dict[str, str] = {}
    for key, name, kind in uses:
        if name in sections:
            errors.append(f"{key}: '{name}' is a config section, not a secret key; name a key of its own (e.g. '{kind}Secret')")
        elif kind_of.setdefault(name, kind) != kind:
            errors.append(f"{key}: '{name}' already holds the {kind_of[name]} secret; keep each secret in its own key")
    return errors


def _millicores(cpu: str) -> int:
    return int(cpu[:-1]) if cpu.endswith("m") else int(cpu) * 1000


def _mib(memory: str) -> int:
    return int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1)
