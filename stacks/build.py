"""Wire the components into one graph for a validated stack. No config reading here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.bootstrap import HostBootstrap, HostBootstrapArgs
from components.host import ExistingHost, ExistingHostArgs, HostNode
from components.openstack import OpenStackNetwork, OpenStackNetworkArgs, OpenStackNode, OpenStackNodeArgs
from components.ssh import SshLogin
from stacks.config import Host, Role, StackConfig
from stacks.load import Stack


@dataclass
class Built:
    """What the graph exposes to `__main__` (exports) and to tests."""

    hosts: dict[str, HostNode] = field(default_factory=dict)
    bootstraps: dict[str, HostBootstrap] = field(default_factory=dict)
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
            ))
    return hosts


def build(stack: Stack) -> Built:
    built = Built(hosts=build_hosts(stack))
    for name, host in built.hosts.items():
        built.bootstraps[name] = HostBootstrap(f"{name}-bootstrap", HostBootstrapArgs(host=host))
    built.outputs["hosts"] = {
        name: {"sshAddress": host.ssh_address, "publicAddress": host.public_address}
        for name, host in built.hosts.items()
    }
    return built
