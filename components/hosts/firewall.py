"""The host firewall of a host with a public address (`firewall-apply.sh`): nftables, a table of
its own (`inet hybrid_ai`). From outside the overlay only SSH, the VPN port, 80/443 on
ingress hosts and the API server from the admin networks on control planes are reachable;
the VPN interface, Calico's interfaces and the loopback pass untouched. Removed on destroy
(`firewall-remove.sh`). A changed parameter is an in-place update: the script runs again and
replaces the table atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell

HTTP_PORTS = (80, 443)


@dataclass
class HostFirewallArgs:
    target: SshTarget
    """Where to apply it (once the base bootstrap is done)."""
    ssh_port: int
    """The SSH port the program logs in on (open to all)."""
    vpn_ports: Sequence[str]
    """The VPN's UDP ports or ranges `low-high` (open to all: NAT'd peers have no fixed address)."""
    vpn_interface: str
    """The VPN interface: the overlay, never filtered."""
    cluster_cidrs: Sequence[str]
    """Pod and service networks: forwarding into them from outside the overlay is dropped."""
    public_tcp: Sequence[int] = ()
    """TCP ports open to all: 80/443 on ingress hosts (hostPorts) and the Netmaker hub (Docker)."""
    api_port: int | None = None
    """On control planes: the API server port, open to `admin_cidrs` only."""
    admin_cidrs: Sequence[str] = ()
    """Networks that may reach the API server port from outside the overlay."""


class HostFirewall(pulumi.ComponentResource):
    """nftables table `inet hybrid_ai` on one host; removed on destroy."""

    changed: pulumi.Output[str]
    """The script's report of what it changed (`changed=none` on a re-run)."""

    def __init__(self, name: str, args: HostFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:host:Firewall", name, None, opts)
        sudo = args.target.sudo
        params = {
            "SSH_PORT": str(args.ssh_port), "VPN_PORT": " ".join(args.vpn_ports), "VPN_INTERFACE": args.vpn_interface,
            "PUBLIC_TCP": " ".join(str(p) for p in sorted(set(args.public_tcp))),
            "API_PORT": str(args.api_port) if args.api_port is not None else "",
            "ADMIN_CIDRS": " ".join(args.admin_cidrs) if args.api_port is not None else "",
            "CLUSTER_CIDRS": " ".join(args.cluster_cidrs),
        }
        rules = remote.Command(
            f"{name}-rules",
            connection=args.target.connection,
            create=shell.remote_command("firewall-apply.sh", params, sudo=sudo),
            delete=shell.remote_command("firewall-remove.sh", {}, sudo=sudo),
            add_previous_output_in_env=False,
            opts=command_options(self),
        )
        self.changed = rules.stdout
        self.register_outputs({"changed": self.changed})
