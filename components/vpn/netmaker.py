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
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import remote

from components.hosts.ssh import command_options
from components.kit import shell
from components.vpn.wireguard import VXLAN_OVERHEAD, MeshMember

INTERFACE = "netmaker"
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
    cluster_mtu: int
    """MTU for the cluster network inside the tunnel."""
    applied: dict[str, pulumi.Output[str]]
    """Per host: resolves once the host has its configured overlay address."""

    def __init__(self, name: str, args: NetmakerMeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:vpn:NetmakerMesh", name, None, opts)
        self.interface = INTERFACE
        self.cluster_mtu = args.mtu - VXLAN_OVERHEAD
        (hub,) = [m for m in args.members if m.hub]
        assert hub.public_endpoint is not None
        child = command_options(self)
        # Commands whose stdin or stdout carries a secret log nothing and keep stdout secret.
        secret_io = command_options(self, secret_output=True)
        master_key = random.RandomPassword(f"{name}-master-key", length=48, special=False, opts=pulumi.ResourceOptions(parent=self)).result
        # Each key's tag is this plus "-<8 hex>": Netmaker's tags are at most 32 characters.
        tag = f"hybrid-ai-{pulumi.get_stack()}"[:23]
        api = {"NETWORK": args.network}

        def on_hub(role: str, create: pulumi.Input[str], delete: pulumi.Input[str] | None, target_after: list[pulumi.Output[str]],
                   stdin: pulumi.Input[str], opts: pulumi.ResourceOptions) -> remote.Command:
            target = hub.target.after(*target_after)
            return remote.Command(f"{name}-{role}", connection=target.connection, create=create, delete=delete, stdin=stdin,
                                  logging=remote.Logging.NONE, add_previous_output_in_env=False, opts=opts)

        sudo = hub.target.sudo
        server = on_hub("server", shell.remote_command("netmaker-server.sh", {
            "HOST_NAME": hub.name, "NM_VERSION": args.version, "NM_DOMAIN": args.domain, "PUBLIC_IP": hub.public_endpoint,
            "MIN_MEMORY_MB": str(args.min_memory_mb),
        }, sudo=sudo), shell.remote_command("netmaker-server-remove.sh", {}, sudo=sudo), [], master_key, child)
        network = on_hub("network", shell.remote_command("netmaker-api.sh", {
            **api, "ACTION": "network", "ADDRESS_RANGE": args.overlay_cidr, "MTU": str(args.mtu),
        }, sudo=sudo), shell.remote_command("netmaker-api.sh", {**api, "ACTION": "network-remove"}, sudo=sudo),
            [server.stdout], master_key, child)
        # A fresh key whenever the host set changes (HOSTS), expiring after the TTL.
        key_params = {**api, "TAG": tag, "TTL_S": str(args.key_ttl_hours * 3600),
                      "HOSTS": " ".join(sorted(m.name for m in args.members))}
        enrollment = on_hub("enrollment", shell.remote_command("netmaker-api.sh", {**key_params, "ACTION": "enrollment"}, sudo=sudo),
                            shell.remote_command("netmaker-api.sh", {**api, "ACTION": "enrollment-revoke", "TAG": tag}, sudo=sudo),
                            [network.stdout], master_key, secret_io)
        step = f"{name}-enrollment (on {hub.name})"
        parsed: pulumi.Output[str] = enrollment.stdout.apply(lambda out: enrollment_token(out, step))
        token: pulumi.Output[str] = pulumi.Output.secret(parsed)

        self.applied = {}
        joined: dict[str, pulumi.Output[str]] = {}
        prefix = args.overlay_cidr.split("/")[1]
        for m in args.members:
            join = remote.Command(
                f"{name}-{m.name}-join",
                connection=m.target.connection,
                create=shell.remote_command("netclient-join.sh", {
                    "HOST_NAME": m.name, **api, "NETCLIENT_VERSION": args.version, "IFACE": INTERFACE,
                }, sudo=m.target.sudo),
                delete=shell.remote_command("netclient-leave.sh", api, sudo=m.target.sudo),
                stdin=token, logging=remote.Logging.NONE, add_previous_output_in_env=False, opts=secret_io,
            )
            joined[m.name] = join.stdout
            address = on_hub(f"{m.name}-address", shell.remote_command("netmaker-api.sh", {
                **api, "ACTION": "address", "HOST_NAME": m.name, "ADDRESS": f"{m.address}/{prefix}",
            }, sudo=sudo), None, [join.stdout], master_key, child)
            self.applied[m.name] = address.stdout

        # Once every host has joined, the key goes: a token seen later enrolls nothing. Same
        # parameters as the key's step, so that this runs again after each new key.
        on_hub("enrollment-revoke", shell.remote_command("netmaker-api.sh", {**key_params, "ACTION": "enrollment-revoke"}, sudo=sudo),
               None, list(joined.values()), master_key, child)

        nat = sorted(m.name for m in args.members if m.public_endpoint is None)
        if nat:
            on_hub("relay", shell.remote_command("netmaker-api.sh", {
                **api, "ACTION": "relay", "RELAY_HOST": hub.name, "RELAYED_HOSTS": " ".join(nat),
            }, sudo=sudo), shell.remote_command("netmaker-api.sh", {**api, "ACTION": "relay-remove", "RELAY_HOST": hub.name}, sudo=sudo),
                [joined[n] for n in nat], master_key, child)
        self.register_outputs({"applied": self.applied, "clusterMtu": self.cluster_mtu})
