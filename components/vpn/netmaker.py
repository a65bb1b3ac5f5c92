"""Netmaker as the VPN: a server on the hub, one enrollment key per stack, netclient on every
host, stable addresses from config, the hub relaying NAT'd sites.

Graph: `<m>-server` -> `<m>-network` -> `<m>-enrollment` -> per host `<m>-<host>-join` ->
`<m>-<host>-address` (on the hub), and `<m>-relay`. Destroy runs backwards: the relay goes,
each host leaves, the key is revoked, the network and then the server are removed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import remote

from components.hosts.ssh import command_options
from components.kit import shell
from components.vpn.wireguard import VXLAN_OVERHEAD, MeshMember

INTERFACE = "netmaker"
# netclient v0.90.0 (ncutils.GetFreePort): UDP 443 if free at registration, else the first
# free port from 51821 up, re-chosen at each daemon start, so the whole range stays open.
UDP_PORTS = ("443", "51821-65535")
# The server's Caddy publishes 80 (ACME) and 443 (API, broker, dashboard) on the hub.
HUB_TCP_PORTS = (80, 443)
# Netmaker v0.90.0 logic/enrollmentkey.go (Tokenize): base64 (standard) of the JSON
# models.EnrollmentToken {"server": ..., "value": ...}.
TOKEN_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
TOKEN_SERVER = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?")
TOKEN_VALUE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def enrollment_token(stdout: str, step: str) -> str:
    """The hub's output, accepted only if it is exactly one well-formed enrollment token: it
    goes to every host's stdin. Anything else fails here, naming the step, never echoed."""
    text = stdout.strip()
    try:
        doc = json.loads(base64.b64decode(text, validate=True)) if TOKEN_B64.fullmatch(text) else None
    except ValueError:
        doc = None
    if not (isinstance(doc, dict) and set(doc) == {"server", "value"}
            and isinstance(doc["server"], str) and TOKEN_SERVER.fullmatch(doc["server"])
            and isinstance(doc["value"], str) and TOKEN_VALUE.fullmatch(doc["value"])):
        raise ValueError(f"{step}: printed something that is not a Netmaker enrollment token "
                         "(base64 of {server, value}); check the Netmaker server's API on that host")
    return text


@dataclass
class NetmakerMeshArgs:
    members: Sequence[MeshMember]
    """Every host; exactly one is the hub (public address)."""
    overlay_cidr: str
    """The network's address range."""
    domain: str
    """Server domain (api., broker., dashboard.)."""
    version: str = "v0.90.0"
    """Server and netclient version."""
    network: str = "hybrid-ai"
    """Netmaker network name."""
    mtu: int = 1380
    """Tunnel MTU (the network's default MTU)."""
    key_ttl_hours: int = 24
    """Enrollment key lifetime (it is also revoked once every host has joined)."""
    min_memory_mb: int = 2048
    """The server refuses a smaller hub."""


class NetmakerMesh(pulumi.ComponentResource):
    """The overlay through a Netmaker server on the hub."""

    interface: str
    """Netmaker's interface name."""
    udp_ports: tuple[str, ...]
    """The UDP ports netclient may pick (`UDP_PORTS`)."""
    hub_tcp_ports: tuple[int, ...]
    """The Netmaker server's published ports on the hub."""
    cluster_mtu: int
    """MTU for the cluster network inside the tunnel."""
    applied: dict[str, pulumi.Output[str]]
    """Per host: resolves once the host has its configured overlay address."""

    def __init__(self, name: str, args: NetmakerMeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:vpn:NetmakerMesh", name, None, opts)
        self.interface = INTERFACE
        self.udp_ports, self.hub_tcp_ports = UDP_PORTS, HUB_TCP_PORTS
        self.cluster_mtu = args.mtu - VXLAN_OVERHEAD
        (hub,) = [m for m in args.members if m.hub]
        assert hub.public_endpoint is not None
        self._name, self._hub = name, hub
        self._master_key = random.RandomPassword(f"{name}-master-key", length=48, special=False, opts=pulumi.ResourceOptions(parent=self)).result
        # Each key's tag is this plus "-<8 hex>": Netmaker's tags are at most 32 characters.
        tag = f"hybrid-ai-{pulumi.get_stack()}"[:23]
        api = {"NETWORK": args.network}
        # A fresh key whenever the host set changes (HOSTS), expiring after the TTL.
        key_params = {**api, "TAG": tag, "TTL_S": str(args.key_ttl_hours * 3600),
                      "HOSTS": " ".join(sorted(m.name for m in args.members))}
        token = self._server(args, api, key_params)
        joined = self._members(args, api, token)

        # Once every host has joined, the key goes: a token seen later enrolls nothing. Same
        # parameters as the key's step, so that this runs again after each new key.
        self._on_hub("enrollment-revoke", self._api({**key_params, "ACTION": "enrollment-revoke"}), None, list(joined.values()))
        nat = sorted(m.name for m in args.members if m.public_endpoint is None)
        if nat:
            self._on_hub("relay", self._api({**api, "ACTION": "relay", "RELAY_HOST": hub.name, "RELAYED_HOSTS": " ".join(nat)}),
                         self._api({**api, "ACTION": "relay-remove", "RELAY_HOST": hub.name}), [joined[n] for n in nat])
        self.register_outputs({"applied": self.applied, "clusterMtu": self.cluster_mtu})

    def _api(self, params: Mapping[str, pulumi.Input[str]]) -> pulumi.Input[str]:
        return shell.remote_command("netmaker-api.sh", params, sudo=self._hub.target.sudo)

    def _on_hub(self, role: str, create: pulumi.Input[str], delete: pulumi.Input[str] | None,
                target_after: list[pulumi.Output[str]], *, secret_io: bool = False) -> remote.Command:
        """A step on the hub, with the master key on stdin; commands whose stdin or stdout
        carries a secret log nothing and keep stdout secret."""
        target = self._hub.target.after(*target_after)
        return remote.Command(f"{self._name}-{role}", connection=target.connection, create=create, delete=delete,
                              stdin=self._master_key, logging=remote.Logging.NONE, add_previous_output_in_env=False,
                              opts=command_options(self, secret_output=secret_io))

    def _server(self, args: NetmakerMeshArgs, api: Mapping[str, str],
                key_params: Mapping[str, str]) -> pulumi.Output[str]:
        """Server, network and the enrollment key on the hub; the key, parsed strictly, as a secret."""
        hub, sudo = self._hub, self._hub.target.sudo
        assert hub.public_endpoint is not None
        server = self._on_hub("server", shell.remote_command("netmaker-server.sh", {
            "HOST_NAME": hub.name, "NM_VERSION": args.version, "NM_DOMAIN": args.domain, "PUBLIC_IP": hub.public_endpoint,
            "MIN_MEMORY_MB": str(args.min_memory_mb),
        }, sudo=sudo), shell.remote_command("netmaker-server-remove.sh", {}, sudo=sudo), [])
        network = self._on_hub("network", self._api({**api, "ACTION": "network", "ADDRESS_RANGE": args.overlay_cidr, "MTU": str(args.mtu)}),
                               self._api({**api, "ACTION": "network-remove"}), [server.stdout])
        enrollment = self._on_hub("enrollment", self._api({**key_params, "ACTION": "enrollment"}),
                                  self._api({**api, "ACTION": "enrollment-revoke", "TAG": key_params["TAG"]}), [network.stdout], secret_io=True)
        step = f"{self._name}-enrollment (on {hub.name})"
        parsed: pulumi.Output[str] = enrollment.stdout.apply(lambda out: enrollment_token(out, step))
        return pulumi.Output.secret(parsed)

    def _members(self, args: NetmakerMeshArgs, api: Mapping[str, str], token: pulumi.Output[str]) -> dict[str, pulumi.Output[str]]:
        """Every host joins at once with the key on stdin, then gets its configured address."""
        self.applied = {}
        joined: dict[str, pulumi.Output[str]] = {}
        prefix = args.overlay_cidr.split("/")[1]
        for m in args.members:
            join = remote.Command(
                f"{self._name}-{m.name}-join",
                connection=m.target.connection,
                create=shell.remote_command("netclient-join.sh", {
                    "HOST_NAME": m.name, **api, "NETCLIENT_VERSION": args.version, "IFACE": INTERFACE,
                }, sudo=m.target.sudo),
                delete=shell.remote_command("netclient-leave.sh", api, sudo=m.target.sudo),
                stdin=token, logging=remote.Logging.NONE, add_previous_output_in_env=False,
                opts=command_options(self, secret_output=True),
            )
            joined[m.name] = join.stdout
            address = self._on_hub(f"{m.name}-address", self._api({
                **api, "ACTION": "address", "HOST_NAME": m.name, "ADDRESS": f"{m.address}/{prefix}",
            }), None, [join.stdout])
            self.applied[m.name] = address.stdout
        return joined
