"""WireGuard mesh across cloud and NAT'd on-prem sites.

Per host, two commands: `<mesh>-<host>-wg-key` creates the key pair on the host and prints
only the public key; `<mesh>-<host>-wg` installs the config, built from the public keys of
exactly the peers the topology gives that host (so it depends on those and no others).

What a host prints is checked before it goes anywhere (components/vpn/wireguard_check.py): a
host whose key output is not exactly one public key is left out of its peers' configs, and
its own `-wg` step fails naming it. A key printed by two hosts (or equal to the operator's)
fails every `-wg` step whose config would hold it twice, naming both; those hosts keep their
current configs.

Rotation (`key_epoch`): a new epoch re-runs every key step, which makes a new key pair on the
host; every `-wg` step then holds changed public keys, so all of them run again, in parallel,
and each host switches to its new private key with `wg syncconf` (live tunnels are kept).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import remote

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell
from components.vpn.wireguard_check import check_config, public_key, require_distinct_keys, require_public_key
from components.vpn.wireguard_topology import OPERATOR, Node, Peer, plan

# Calico's VXLAN encapsulation inside the tunnel costs 50 bytes.
VXLAN_OVERHEAD = 50


@dataclass
class MeshMember:
    name: str
    """Host name."""
    site: str
    """Site name; same-site members talk over their LAN."""
    address: str
    """Overlay address (stable)."""
    target: SshTarget
    """Where the host's commands run (after its base bootstrap)."""
    public_endpoint: pulumi.Input[str] | None = None
    """Public address, if reachable from the internet."""
    lan_endpoint: pulumi.Input[str] | None = None
    """LAN address for same-site peers, if any."""
    hub: bool = False
    """Relays between NAT'd sites."""


@dataclass
class WireGuardMeshArgs:
    members: Sequence[MeshMember]
    """Every host of the mesh."""
    overlay_cidr: str
    """The overlay network, e.g. 100.64.0.0/16."""
    port: int = 51820
    """UDP listen port on every host."""
    mtu: int = 1380
    """Tunnel MTU."""
    keepalive_seconds: int = 25
    """PersistentKeepalive from NAT'd hosts."""
    interface: str = "wg0"
    """Interface name on every host."""
    operator_public_key: pulumi.Input[str] | None = None
    """The operator laptop's public key: it becomes a peer of the hub."""
    operator_address: str | None = None
    """The operator's overlay address."""
    key_epoch: int = 0
    """Key generation: a new value makes every host create a new key pair (on the host)."""


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _valid_key(stdout: str) -> str:
    """The printed key, or "" when the output is not exactly one public key."""
    return public_key(stdout) or ""


def render_config(host: MeshMember, args: WireGuardMeshArgs, own_key: str, peers: list[tuple[Peer, str, str | None]]) -> str:
    """wg-quick config without PrivateKey (the host adds it). `peers`: (peer, public key, endpoint address);
    a peer whose key is "" (its host printed no valid key) is left out. Every line is checked
    against the grammar of a mesh config before it is sent (ValueError otherwise)."""
    prefix = ipaddress.IPv4Network(args.overlay_cidr).prefixlen
    lines = [
        f"# hybrid-ai mesh: {host.name}; PrivateKey is added on the host from /etc/wireguard/{args.interface}.key",
        f"# this host's public key: {own_key}",
        "[Interface]",
        f"Address = {host.address}/{prefix}",
        f"ListenPort = {args.port}",
        f"MTU = {args.mtu}",
        "Table = off",
    ]
    for peer, key, endpoint in peers:
        if not key:
            continue
        how = {"lan": "direct over the site LAN", "public": "direct to its public address", None: "it connects to us"}[peer.endpoint]
        lines += ["", "[Peer]", f"# {peer.name}: {how}", f"PublicKey = {key}", f"AllowedIPs = {', '.join(peer.allowed_ips)}"]
        if endpoint is not None:
            lines.append(f"Endpoint = {_endpoint(endpoint, args.port)}")
        if peer.keepalive:
            lines.append(f"PersistentKeepalive = {args.keepalive_seconds}")
    return check_config(host.name, "\n".join(lines) + "\n")


class WireGuardMesh(pulumi.ComponentResource):
    """Keys generated on each host; configs from public keys only; NAT'd sites via the hub."""

    public_keys: dict[str, pulumi.Output[str]]
    """Each host's WireGuard public key, checked ("" when the host printed anything else)."""
    configs: dict[str, pulumi.Output[str]]
    """Each host's config as sent (no private key)."""
    applied: dict[str, pulumi.Output[str]]
    """Each host's apply report; resolves once that host's tunnel is up."""
    operator_config: pulumi.Output[str] | None
    """Client config for the operator's laptop (its private key left for the operator to add)."""
    cluster_mtu: int
    """MTU the cluster network must use inside the tunnel."""
    interface: str
    """The WireGuard interface on every host."""
    udp_ports: tuple[str, ...]
    """Its one UDP port (`ListenPort` on every host)."""
    hub_tcp_ports: tuple[int, ...] = ()
    """The hub serves nothing over TCP."""

    def __init__(self, name: str, args: WireGuardMeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:vpn:WireGuardMesh", name, None, opts)
        self.cluster_mtu = args.mtu - VXLAN_OVERHEAD
        self.interface = args.interface
        self.udp_ports = (str(args.port),)
        members = {m.name: m for m in args.members}
        operator = ipaddress.IPv4Address(args.operator_address) if args.operator_public_key and args.operator_address else None
        topology = plan(
            [Node(m.name, m.site, ipaddress.IPv4Address(m.address), m.public_endpoint is not None, m.lan_endpoint is not None, m.hub)
             for m in args.members],
            operator,
        )
        params = {"WG_IFACE": args.interface}
        # The epoch is a parameter of the key step, not a trigger: a changed `create` is an
        # in-place update that re-runs it (the script makes the new key), whereas a trigger would
        # replace the step, and the old step's delete would then remove the new key. Epoch 0 adds
        # no parameter: a host whose key predates epochs counts as epoch 0 and keeps its key.
        key_params = {**params, "WG_KEY_EPOCH": str(args.key_epoch)} if args.key_epoch else params

        self._mesh_name = name
        self._printed: dict[str, pulumi.Output[str]] = {}
        self.public_keys = {}
        for m in args.members:
            key = remote.Command(
                f"{name}-{m.name}-wg-key",
                connection=m.target.connection,
                create=shell.remote_command("wg-keygen.sh", key_params, sudo=m.target.sudo),
                delete=shell.remote_command("wg-key-remove.sh", params, sudo=m.target.sudo),
                add_previous_output_in_env=False,
                logging=remote.Logging.NONE,  # untrusted output: a logged line over 64 KiB hangs pulumi-command
                opts=command_options(self),
            )
            self._printed[m.name] = key.stdout
            self.public_keys[m.name] = key.stdout.apply(_valid_key)

        self.configs, self.applied = {}, {}
        for m in args.members:
            config = self._config(m, topology[m.name], members, args)
            self.configs[m.name] = config
            apply = remote.Command(
                f"{name}-{m.name}-wg",
                connection=m.target.connection,
                create=shell.remote_command("wg-apply.sh", {**params, "WG_CONFIG": config}, sudo=m.target.sudo),
                delete=shell.remote_command("wg-teardown.sh", params, sudo=m.target.sudo),
                add_previous_output_in_env=False,
                opts=command_options(self),
            )
            self.applied[m.name] = apply.stdout

        self.operator_config = None
        hub = next((m for m in args.members if m.hub), None)
        if operator is not None and hub is not None and hub.public_endpoint is not None:
            address = str(operator)

            def client(values: list[str]) -> str:
                return _operator_config(args, address, values[0], values[1])

            self.operator_config = pulumi.Output.all(self.public_keys[hub.name], hub.public_endpoint).apply(client)
        self.register_outputs({"publicKeys": self.public_keys, "clusterMtu": self.cluster_mtu, "operatorConfig": self.operator_config})


    def _config(self, member: MeshMember, peers: list[Peer], members: dict[str, MeshMember], args: WireGuardMeshArgs) -> pulumi.Output[str]:
        """The member's config from its own key and its peers' keys and endpoints (and nothing else)."""

        def key(peer: Peer) -> pulumi.Input[str]:
            return (args.operator_public_key or "") if peer.name == OPERATOR else self.public_keys[peer.name]

        def endpoint(peer: Peer) -> pulumi.Input[str] | None:
            other = members.get(peer.name)
            if peer.endpoint is None or other is None:
                return None
            return other.lan_endpoint if peer.endpoint == "lan" else other.public_endpoint

        def render(values: list[Any]) -> str:
            printed, keys, endpoints, operator_key = values
            # A host that printed anything but its key fails here, in its own step.
            own_key = require_public_key(f"{self._mesh_name}-{member.name}-wg-key", member.name, printed)
            # ... and so does every step whose config would hold one key twice (the operator's included).
            require_distinct_keys(f"{self._mesh_name}-{member.name}-wg", [
                (member.name, own_key), (OPERATOR, operator_key), *[(p.name, k) for p, k in zip(peers, keys, strict=True) if p.name != OPERATOR],
            ])
            return render_config(member, args, own_key, list(zip(peers, keys, endpoints, strict=True)))

        return pulumi.Output.all(
            self._printed[member.name],
            pulumi.Output.all(*[key(p) for p in peers]),
            pulumi.Output.all(*[endpoint(p) for p in peers]),
            args.operator_public_key or "",
        ).apply(render)


def _operator_config(args: WireGuardMeshArgs, address: str, hub_key: str, hub_endpoint: str) -> str:
    return "\n".join([
        "[Interface]",
        "# PrivateKey = <the private key matching vpn.operatorPublicKey; it stays on your laptop>",
        f"Address = {address}/32",
        f"MTU = {args.mtu}",
        "",
        "[Peer]",
        "# the VPN hub",
        f"PublicKey = {hub_key}",
        f"Endpoint = {_endpoint(hub_endpoint, args.port)}",
        f"AllowedIPs = {args.overlay_cidr}",
        f"PersistentKeepalive = {args.keepalive_seconds}",
    ]) + "\n"
