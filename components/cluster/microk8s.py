"""A MicroK8s cluster over the VPN: every node installed and joined in parallel.

The first control plane (the seed) forms the cluster and registers every other node. Further
control planes (HA: three or more, odd, so dqlite has three voters) join without `--worker`,
one after the other: each one's registration waits until the previous one is Ready, because
a control-plane join restarts the joiner's dqlite with the voters of that moment and a raft
leader applies one membership change at a time (docs/upstream.md). Workers do not wait for
them. Every control plane's API certificate names every control plane's VPN and public
addresses, so the kubeconfig's server (the seed's) can be switched to any of them.

Per node: `<c>-<node>-microk8s` installs MicroK8s pinned to the node's VPN address. Then, per
node, the seed included, once it is installed: `<c>-<node>-register` (on the seed) has
`microk8s add-node` generate a token for this node alone (a secret output: a stale
registration can never block another node, and no token is on any command line there),
`<c>-<node>-join` joins through the seed's VPN address with it on stdin (the seed itself
joins nobody), `<c>-<node>-ready` (on the seed) waits until the node is Ready on its VPN
address, then removes the node's token from the tokens file (cluster-agent never consumes a
token with a TTL). Nothing of one worker waits on another node's steps.

The seed has the same steps as every node so that losing it changes no one's resources but
its own: when it is removed from `hosts`, the next control plane becomes the seed and keeps
its join step (a re-run that finds it joined), where a seed without one would have had that
step deleted, and a deleted join step runs `microk8s leave` (docs/operations.md, Losing the seed).

Destroy runs in reverse: drain (ready), `microk8s leave` (join), `remove-node` (register),
then MicroK8s is removed from the node.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import yaml
from pulumi_command import remote
from pulumi_kubernetes.provider import Provider

from components.cluster.agent_guard import agent_guard
from components.cluster.api import ClusterApi, NodeMarks, cluster_api
from components.cluster.driver_upgrade import driver_roll
from components.cluster.known_nodes import KNOWN_LIST, known_nodes, known_nodes_policy

# The node, importable from here as before it had a module of its own.
from components.cluster.node import ClusterNode as ClusterNode
from components.cluster.upgrade import UpgradeArgs, rolling_upgrade
from components.hosts.ssh import SshTarget, command_options
from components.kit import shell
from components.kit.outputs import after

API_PORT = 16443
CONTROL_PLANE_ADDONS = ("rbac", "dns", "metrics-server", "hostpath-storage")
"""RBAC first (MicroK8s 1.32's API server defaults to --authorization-mode=AlwaysAllow: every
token and node credential would be cluster-admin; `rbac` sets RBAC,Node), CoreDNS (the bundled launch configuration enabled it; ours replaces that one), the HPA's
metrics, and the default StorageClass `microk8s-hostpath`."""
ADMISSION_PLUGINS = "EventRateLimit,NodeRestriction"
"""kube-apiserver's `--enable-admission-plugins` on every control plane: MicroK8s 1.32's own
(EventRateLimit, default-args/kube-apiserver) and NodeRestriction, which limits each kubelet's
writes to its own Node and mirror pods (microk8s-install.sh adds it to an existing node's list)."""
AUTHORIZATION_MODE = "RBAC,Node"
"""From the first start (MicroK8s 1.32's default is AlwaysAllow until the rbac addon runs)."""
STORAGE_CLASS = "microk8s-hostpath"
"""The StorageClass the hostpath-storage addon creates (and marks default)."""


@dataclass
class MicroK8sClusterArgs:
    nodes: Sequence[ClusterNode]
    """Every node; an odd number with control_plane."""
    channel: str
    """Snap channel, e.g. 1.32/stable."""
    cni_mtu: int
    """Calico's MTU: below the tunnel MTU."""
    pod_cidr: str = "10.1.0.0/16"
    """Pod network."""
    service_cidr: str = "10.152.183.0/24"
    """Service network."""
    vpn_interface: str = "wg0"
    """Interface Calico must use."""
    token_ttl_seconds: int = 3600
    """Lifetime of each join token registration."""
    image_pull_timeout: str = "30m"
    """Kubelet runtime request timeout (large model images)."""
    api_server_address: Literal["public", "vpn"] = "public"
    """Which control-plane address the kubeconfig points at."""
    upgrade_from: str | None = None
    """The channel the nodes run now, while an upgrade to `channel` is rolled; else None."""
    upgrade: UpgradeArgs = field(default_factory=UpgradeArgs)
    """How the rolls go (used only with upgrade_from or a node's driver_upgrade)."""


class MicroK8sCluster(pulumi.ComponentResource):
    """MicroK8s on every node, joined in parallel over the VPN; kubeconfig and provider."""

    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig (secret)."""
    provider: Provider
    """Kubernetes provider built from the kubeconfig."""
    ready: dict[str, pulumi.Output[str]]
    """Per node: resolves once the node is Ready on its VPN address."""
    control_plane: SshTarget
    """The control plane, once MicroK8s runs there (for cluster-wide checks)."""
    upgraded: pulumi.Output[str] | None
    """With an upgrade (channel or driver): resolves once every rolled node is back."""
    labelled: dict[str, pulumi.Output[str]]
    """Per node: its name, once its labels and taints are set."""
    api: ClusterApi
    """The provider, readiness and labels together (what the workloads use)."""

    def __init__(self, name: str, args: MicroK8sClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:cluster:MicroK8sCluster", name, None, opts)
        child = command_options(self)
        planes = [n for n in args.nodes if n.control_plane]
        cp = planes[0]
        sans = control_plane_sans(planes)
        plane_addresses = [n.vpn_address for n in planes]
        held = " ".join(f"{n.name}={n.vpn_address}" for n in planes)  # what remove-node never acts on
        installs = {n.name: self._install(name, n, args, child, seed=n is cp, sans=sans, planes=plane_addresses) for n in args.nodes}
        cp_target = cp.target.after(installs[cp.name])
        self.control_plane = cp_target
        # Every registration and join waits for the list of the stack's hosts (known_nodes.py).
        known = known_nodes(name, self, cp_target, [n.name for n in args.nodes])
        installs = {n: after(done, known) for n, done in installs.items()}

        server = cp.public_address if args.api_server_address == "public" and cp.public_address is not None else cp.vpn_address
        kubeconfig = remote.Command(
            f"{name}-kubeconfig",
            connection=cp_target.connection,
            create=shell.remote_command("microk8s-kubeconfig.sh", {"SERVER": server}, sudo=cp_target.sudo),
            logging=remote.Logging.NONE,
            add_previous_output_in_env=False,
            opts=command_options(self, secret_output=True),
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)

        self.ready = {}
        previous: pulumi.Output[str] | None = None
        for plane in planes:  # serial, the seed first: see the module docstring
            installed = installs[plane.name] if previous is None else pulumi.Output.all(installs[plane.name], previous)[0]
            previous = self._join(name, plane, args, cp, cp_target, installed, child, held)
            self.ready[plane.name] = previous
        for node in args.nodes:
            if not node.control_plane:
                self.ready[node.name] = self._join(name, node, args, cp, cp_target, installs[node.name], child, held)

        self.upgraded = None
        start = pulumi.Output.all(*self.ready.values()).apply(lambda _: "")
        rolling = not args.upgrade.paused  # paused: the install and GPU set-up steps still accept the old versions
        if rolling and args.upgrade_from is not None:
            self.upgraded = start = rolling_upgrade(name, self, args.nodes, args.channel, cp_target, start, args.upgrade)
        if rolling and any(n.driver_upgrade is not None for n in args.nodes):  # after the channel roll: one node down at a time overall
            self.upgraded = driver_roll(name, self, args.nodes, cp_target, start, args.upgrade)
        # During a roll the API server (the seed's kubelite) restarts and pods are evicted: no
        # Kubernetes resource may be applied or awaited until the last batch is back.
        provider_kubeconfig = self.kubeconfig if self.upgraded is None else after(self.kubeconfig, self.upgraded)
        marks = [NodeMarks(n.name, n.labels, n.taints) for n in args.nodes]
        self.api = cluster_api(name, provider_kubeconfig, marks, self.ready, parent=self, control_plane=cp_target)
        self.provider, self.labelled = self.api.provider, self.api.labelled
        known_nodes_policy(name, self, self.provider, known)
        self.register_outputs({"kubeconfig": self.kubeconfig, "ready": self.ready})

    @staticmethod
    def _install(
        name: str, node: ClusterNode, args: MicroK8sClusterArgs, opts: pulumi.ResourceOptions, seed: bool, sans: pulumi.Output[list[str]],
        planes: Sequence[str],
    ) -> pulumi.Output[str]:
        own_sans = sans if node.control_plane else pulumi.Output.from_input([node.vpn_address])
        params: dict[str, pulumi.Input[str]] = {
            "HOST_NAME": node.name,
            "CHANNEL": args.channel,
            "NODE_IP": node.vpn_address,
            "VPN_IFACE": args.vpn_interface,
            "CNI_MTU": str(args.cni_mtu),
            "ROLE": "control-plane" if node.control_plane else "worker",
            "EXTRA_SANS": own_sans.apply(lambda extra: " ".join(a for a in extra if a != node.vpn_address)),
            "POD_CIDR": args.pod_cidr,
            "SERVICE_CIDR": args.service_cidr,
            "UPGRADE_FROM": args.upgrade_from or "", "SNAP_FILES": node.snap_files,
            "PULL_TIMEOUT": args.image_pull_timeout,
            "GPU": str(node.gpu).lower(),
            "CLUSTER_DNS": cluster_dns(args.service_cidr),
            # Addons are cluster-wide: the seed enables them; a joining control plane's own
            # datastore is replaced by the cluster's when it joins.
            "ADDONS": " ".join(CONTROL_PLANE_ADDONS) if seed else "",
            "LAUNCH_CONFIG": own_sans.apply(lambda extra: launch_config(node, args, extra, seed)),
        }
        guard = agent_guard(f"{name}-{node.name}", node.target, planes, args.pod_cidr, opts) if node.control_plane else None
        target = node.target.after(guard) if guard is not None else node.target
        install = remote.Command(
            f"{name}-{node.name}-microk8s",
            connection=target.connection,
            create=shell.remote_command("microk8s-install.sh", params, sudo=target.sudo),
            delete=shell.remote_command("microk8s-uninstall.sh", {}, sudo=target.sudo),
            add_previous_output_in_env=False,
            opts=opts,
        )
        return install.stdout

    def _join(
        self, name: str, node: ClusterNode, args: MicroK8sClusterArgs, cp: ClusterNode, cp_target: SshTarget,
        installed: pulumi.Output[str], opts: pulumi.ResourceOptions, planes: str,
    ) -> pulumi.Output[str]:
        secret_output = command_options(self, secret_output=True)
        # Registered only once the node is installed, so the token's lifetime starts when it can be used.
        register = remote.Command(
            f"{name}-{node.name}-register",
            connection=cp_target.after(installed).connection,
            create=shell.remote_command("microk8s-register.sh", {
                "NODE_NAME": node.name, "NODE_IP": node.vpn_address, "TOKEN_TTL_S": str(args.token_ttl_seconds),
            }, sudo=cp_target.sudo),
            delete=shell.remote_command("microk8s-remove-node.sh", {"NODE_NAME": node.name, "PLANES": planes, **KNOWN_LIST},
                                        sudo=cp_target.sudo),
            logging=remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=secret_output,
        )
        token: pulumi.Output[str] = pulumi.Output.secret(register.stdout)
        # Beside the join, not after it: whether the join step succeeds or fails (the node decides
        # that), the token and the node's cluster-agent access end once it is Ready or WAIT_S is up.
        remote.Command(
            f"{name}-{node.name}-join-window",
            connection=cp_target.connection,
            create=shell.remote_command("microk8s-node-ready.sh", {"NODE_NAME": node.name, "NODE_IP": node.vpn_address}, sudo=cp_target.sudo),
            stdin=token,
            logging=remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=opts,
        )
        join_target = node.target.after(installed)
        role = {"CONTROL_PLANE": cp.vpn_address, "NODE_IP": node.vpn_address, "WORKER": str(not node.control_plane).lower()}
        join = remote.Command(
            f"{name}-{node.name}-join",
            connection=join_target.connection,
            create=shell.remote_command("microk8s-join.sh", {"HOST_NAME": node.name, **role, "KUBELET_ARGS": " ".join(
                f"{flag}={value}" for flag, value in kubelet_args(node, args).items())}, sudo=join_target.sudo),
            delete=shell.remote_command("microk8s-leave.sh", role, sudo=join_target.sudo),
            stdin=token,
            logging=remote.Logging.NONE,
            add_previous_output_in_env=False,
            opts=secret_output,
        )
        ready_target = cp_target.after(join.stdout)
        ready = remote.Command(
            f"{name}-{node.name}-ready",
            connection=ready_target.connection,
            create=shell.remote_command("microk8s-node-ready.sh", {"NODE_NAME": node.name, "NODE_IP": node.vpn_address}, sudo=ready_target.sudo),
            delete=shell.remote_command("microk8s-drain.sh", {"NODE_NAME": node.name, "WORKER": role["WORKER"], **KNOWN_LIST},
                                        sudo=ready_target.sudo),
            stdin=token,  # removed from the tokens file once the node is Ready (cluster-agent keeps tokens with a TTL)
            logging=remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=opts,
        )
        return ready.stdout


def cluster_dns(service_cidr: str) -> str:
    """CoreDNS's service address: the tenth of the service network (10.152.183.10 by default,
    the address the bundled launch configuration gives the kubelet)."""
    return str(ipaddress.ip_network(service_cidr)[10])


def control_plane_sans(planes: Sequence[ClusterNode]) -> pulumi.Output[list[str]]:
    """Every control plane's VPN and public addresses, in node order, each once."""
    addresses: list[pulumi.Input[str]] = [n.vpn_address for n in planes]
    addresses += [n.public_address for n in planes if n.public_address is not None]
    return pulumi.Output.all(*addresses).apply(lambda found: list(dict.fromkeys(found)))


def kubelet_args(node: ClusterNode, args: MicroK8sClusterArgs) -> dict[str, str]:
    """The node's own kubelet flags: its launch configuration's, and put back by its join step
    (a join replaces the kubelet args with the seed's: join.py store_base_kubelet_args)."""
    return {"--node-ip": node.vpn_address, "--runtime-request-timeout": args.image_pull_timeout,
            "--cluster-domain": "cluster.local", "--cluster-dns": cluster_dns(args.service_cidr)}


def launch_config(node: ClusterNode, args: MicroK8sClusterArgs, sans: Sequence[str], seed: bool) -> str:
    """The node's MicroK8s launch configuration (cluster-agent schema 0.2.0), as YAML. It
    replaces the bundled default, so it repeats what that one set (cluster DNS, the dns addon)."""
    dns = cluster_dns(args.service_cidr)
    config: dict[str, object] = {
        "version": "0.2.0",
        "extraSANs": list(dict.fromkeys([node.vpn_address, *sans])),
        "extraKubeletArgs": kubelet_args(node, args),
        "extraCNIEnv": {"IPv4_CLUSTER_CIDR": args.pod_cidr, "IPv4_SERVICE_CIDR": args.service_cidr},
    }
    if node.control_plane:
        config["extraKubeAPIServerArgs"] = {"--advertise-address": node.vpn_address, "--authorization-mode": AUTHORIZATION_MODE,
                                            "--enable-admission-plugins": ADMISSION_PLUGINS}
    if seed:
        # dns's arguments: upstream resolvers (the host's), then the service address.
        config["addons"] = [{"name": a, **({"args": ["/etc/resolv.conf", dns]} if a == "dns" else {})} for a in CONTROL_PLANE_ADDONS]
    return yaml.safe_dump(config, sort_keys=False)
