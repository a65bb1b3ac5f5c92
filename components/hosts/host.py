"""One interface for every machine, however it came to be: `HostNode`.

`ExistingHost` is a machine you already have (no cloud API); `components/hosts/openstack.py`
builds `OpenStackNode`s. Both end in a `<name>-reachable` probe: the first SSH login,
with the pinned host key, that checks the host can run our scripts. Everything later
connects through `HostNode.connection()`, whose address only resolves once the probe
succeeded, so every later step depends on the host without any `depends_on`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshLogin, SshTarget, command_options
from components.kit import shell


class HostNode(pulumi.ComponentResource):
    """A machine the program can run commands on."""

    ssh_address: pulumi.Output[str]
    """Address SSH connects to; resolves once the host answered the probe."""
    public_address: pulumi.Output[str] | None
    """Address reachable from the internet (VPN endpoint, ingress); None when it has none."""
    lan_address: pulumi.Output[str] | None
    """Address on the site's LAN, used by same-site VPN peers; None when it has none."""
    host_key: pulumi.Output[str]
    """The pinned SSH host key."""
    facts: pulumi.Output[str]
    """What the probe found (`key=value` lines: os, arch, cpus, memory)."""
    target: SshTarget
    """Where later commands connect: resolves once the probe succeeded."""

    def __init__(self, type_token: str, name: str, login: SshLogin, opts: pulumi.ResourceOptions | None):
        super().__init__(type_token, name, None, opts)
        self.host_name = name
        self.login = login

    def _probe(self, name: str, address: pulumi.Input[str], host_key: pulumi.Input[str]) -> None:
        """Register `<name>-reachable` and derive the ready address from it (call once, last)."""
        first = SshTarget(address, host_key, self.login)
        probe = remote.Command(
            f"{name}-reachable",
            connection=first.connection,
            create=shell.remote_command("host-probe.sh", {}, sudo=first.sudo),
            opts=command_options(self),
        )
        self.facts = probe.stdout
        self.target = first.after(probe.stdout)
        self.ssh_address = pulumi.Output.from_input(self.target.address)
        self.host_key = pulumi.Output.from_input(host_key)

    def as_jump_host(self) -> remote.ProxyConnectionArgs:
        return self.target.as_proxy()

    def _register(self) -> None:
        self.register_outputs(
            {
                "sshAddress": self.ssh_address,
                "publicAddress": self.public_address,
                "lanAddress": self.lan_address,
                "hostKey": self.host_key,
            }
        )


@dataclass
class ExistingHostArgs:
    address: pulumi.Input[str]
    """Address to SSH to."""
    host_key: pulumi.Input[str]
    """Pinned SSH host key (`ssh-ed25519 AAAA...`)."""
    login: SshLogin
    """User, port, private key and optional jump host."""
    public_address: pulumi.Input[str] | None = None
    """Public address, if the host has one."""
    lan_address: pulumi.Input[str] | None = None
    """LAN address, if same-site peers should use it."""


class ExistingHost(HostNode):
    """A machine you already have, reached over SSH; no cloud API involved."""

    def __init__(self, name: str, args: ExistingHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:host:ExistingHost", name, args.login, opts)
        self.public_address = None if args.public_address is None else pulumi.Output.from_input(args.public_address)
        self.lan_address = None if args.lan_address is None else pulumi.Output.from_input(args.lan_address)
        self._probe(name, args.address, args.host_key)
        self._register()
